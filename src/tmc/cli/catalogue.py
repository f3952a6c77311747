"""`tmc metrics-catalogue`: the metric catalogue as the Markdown table docs/observability.md holds."""

from __future__ import annotations

import importlib
import sys

import click

# The composition roots of the three kinds of process, and the storage backend they load when they open their store:
# importing these defines every metric the processes export.
PROCESS_ROOTS = ("tmc.server.hub", "tmc.server.member", "tmc.syncer.agent", "tmc.storage.sqlite")
BEGIN = "<!-- BEGIN METRICS CATALOGUE"
END = "<!-- END METRICS CATALOGUE -->"


def catalogue_markdown() -> str:
    for module in PROCESS_ROOTS:
        importlib.import_module(module)
    from tmc.observability.catalogue import markdown_table

    return markdown_table()


def replace_generated(document: str, table: str) -> str:
    """`document` with the part between the catalogue markers replaced by `table`."""
    start = document.index(BEGIN)
    head_end = document.index("\n", start) + 1
    end = document.index(END, head_end)
    return document[:head_end] + table + document[end:]


@click.command("metrics-catalogue")
@click.option(
    "--write",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    help="Replace the generated table in this Markdown file (between its catalogue markers) instead of printing.",
)
def metrics_catalogue(path: str | None) -> None:
    """Print every metric tmc processes export: name, type, labels, owner, meaning and an example query."""
    table = catalogue_markdown()
    if path is None:
        sys.stdout.write(table)
        return
    with open(path) as f:
        document = f.read()
    try:
        updated = replace_generated(document, table)
    except ValueError:
        raise click.ClickException(f"{path} has no '{BEGIN} ...' and '{END}' markers") from None
    with open(path, "w") as f:
        f.write(updated)
