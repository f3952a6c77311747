"""Markers by directory, and the fixture every test that needs kubectl uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools import require_kubectl

TESTS = Path(__file__).resolve().parent

# Directory under tests/ -> the marker its tests carry, so `-m "not e2e"` or `-m integration` select by kind.
DIRECTORY_MARKERS = {"e2e": "e2e", "integration": "integration"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if top in DIRECTORY_MARKERS:
            item.add_marker(DIRECTORY_MARKERS[top])


@pytest.fixture(scope="session")
def kubectl_binary() -> str:
    """kubectl's path; skips without it, or fails in CI (see tests.tools.require_kubectl). Depend on this fixture, or
    mark a module `pytest.mark.usefixtures("kubectl_binary")`, in every test that needs kubectl."""
    return require_kubectl()
