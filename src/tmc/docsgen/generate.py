"""The entry points: the reference of TMC's own API groups (offline), or of what a running hub serves."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tmc.docsgen.render import render
from tmc.docsgen.source import offline_documents, server_documents

if TYPE_CHECKING:
    from tmc.client import SyncClient

DEFAULT_OUTPUT = Path("docs/reference")
OFFLINE_SOURCE = (
    "The TMC API groups, generated from the OpenAPI v3 the hub serves for them (built from the Python API types "
    "by the hub's own OpenAPI builder, so the two cannot differ)."
)


def offline_files(formats: Iterable[str]) -> dict[str, bytes]:
    """The committed reference: every group-version of TMC's own kinds."""
    return render(offline_documents(), formats, OFFLINE_SOURCE)


def server_files(client: SyncClient, workspace: str, groups: Iterable[str], formats: Iterable[str]) -> dict[str, bytes]:
    """The reference of a running hub's group-versions in `workspace` (see `source.server_documents`)."""
    documents = server_documents(client, workspace, groups)
    source = f"The group-versions served in workspace {workspace}, from the hub's OpenAPI v3 (CRDs included)."
    return render(documents, formats, source)
