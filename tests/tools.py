"""External programs the tests drive, found one way, and the one rule for when one is missing."""

from __future__ import annotations

import os
import shutil

import pytest

from tmc.apimachinery.protobuf import BINARY_ENV

KUBECTL_MISSING = "kubectl is not installed (make install installs it when run as root)"


def kubectl_path() -> str | None:
    """The kubectl the hub would use for protobuf: $TMC_KUBECTL_BINARY, else kubectl on PATH."""
    return os.environ.get(BINARY_ENV) or shutil.which("kubectl")


def require_kubectl() -> str:
    """kubectl's path. Without kubectl a test skips on a developer machine but fails in CI (`CI` set to a non-empty
    value, as CI services do): there a missing kubectl means a broken runner, and a skip would hide the tests."""
    binary = kubectl_path()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"{KUBECTL_MISSING}; CI must run the tests that need it", pytrace=False)
        pytest.skip(KUBECTL_MISSING)
    return binary


PROMETHEUS_MISSING = "prometheus is not installed (make install installs it when run as root)"


def require_prometheus(binary: str = "promtool") -> str:
    """The path of `promtool` or `prometheus` (one Debian package), with kubectl's rule when it is missing."""
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PROMETHEUS_MISSING}; CI must run the tests that need it", pytrace=False)
        pytest.skip(PROMETHEUS_MISSING)
    return path
