"""`tmc docs api`: write the API reference (see tmc.docsgen). The generator is imported when the command runs, so
`tmc --help` does not pay for markdown-it and Jinja2."""

from __future__ import annotations

from pathlib import Path

import click

from tmc.cli.errors import CliError, explain
from tmc.cli.kubeconfig_flags import client_flags, connect

_FORMATS = ("markdown", "html")


def _formats(values: tuple[str, ...]) -> list[str]:
    chosen = sorted({v.strip() for value in values for v in value.split(",") if v.strip()})
    for value in chosen:
        if value not in _FORMATS:
            raise CliError(f"unknown --format {value!r}", f"use {' or '.join(_FORMATS)} (repeat it for both)")
    return chosen or ["markdown"]


@click.command("api")
@click.option(
    "--output",
    default="docs/reference",
    show_default=True,
    help="Directory to write the reference to (created if missing).",
)
@click.option(
    "--format",
    "format_values",
    multiple=True,
    metavar="markdown|html",
    help="Markdown pages (the default) or a static HTML site with a sidebar; repeat for both. "
    "The OpenAPI v3 JSON is always written.",
)
@click.option(
    "--from-server",
    is_flag=True,
    help="Read the OpenAPI v3 of a running hub (the kubeconfig's, in --workspace) instead of building TMC's "
    "groups offline: every group-version except Kubernetes' built-in ones, CRDs included.",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="With --from-server: document only these API groups (repeatable; 'core' for the core group).",
)
@client_flags(namespaced=False)
def api(output: str, format_values: tuple[str, ...], from_server: bool, groups: tuple[str, ...]) -> None:
    """Generate the API reference from the hub's OpenAPI v3: one page per group-version, a section per kind
    (fields with type, required, default, validation and description; an example manifest)."""
    formats = _formats(format_values)
    if groups and not from_server:
        raise CliError("--group needs --from-server", "the offline reference always covers TMC's own groups")
    from tmc.docsgen.generate import offline_files, server_files
    from tmc.docsgen.output import OutputError, write

    if from_server:
        hub = connect()
        try:
            files = server_files(hub.client, hub.workspace, groups, formats)
        except Exception as e:
            message = explain(e)
            if message is None:
                raise
            raise CliError(message) from None
    else:
        files = offline_files(formats)
    pages = sum(1 for name in files if name.endswith((".md", ".html")))
    documents = sum(1 for name in files if name.startswith("openapi/"))
    try:
        write(Path(output), files, formats)
    except OutputError as e:
        raise CliError(str(e), "choose another --output") from None
    click.echo(f"wrote the API reference to {output} ({pages} pages, {documents} OpenAPI documents)")
