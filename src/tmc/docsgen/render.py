"""The whole reference as files in memory, relative path -> bytes, so nothing touches the disk until every page has
been built.

Layout: `README.md` and `<group>-<version>.md` (markdown), `html/index.html`, `html/<group>-<version>.html` and
`html/style.css` (html), `openapi/<group>-<version>.json` (always: the documents the pages were made from).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from tmc.docsgen.html import STYLE, HtmlRenderer
from tmc.docsgen.markdown import GENERATED, group_version_page, index_page, page_file
from tmc.docsgen.model import GroupVersion, read_group_version
from tmc.docsgen.source import GroupVersionKey, kube_minor

FORMATS = ("markdown", "html")
OPENAPI_DIR = "openapi"
HTML_DIR = "html"


def read_all(documents: Mapping[GroupVersionKey, Mapping[str, Any]]) -> list[GroupVersion]:
    """The reference model of every document, in group-version order."""
    return [read_group_version(g, v, doc, kube_minor(doc)) for (g, v), doc in sorted(documents.items())]


def openapi_json(document: Mapping[str, Any]) -> bytes:
    """Deterministic, reviewable JSON: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def _without_banner(markdown: str) -> str:
    # The banner is an HTML comment; with raw HTML off it would show as text.
    return markdown.removeprefix(GENERATED + "\n\n")


def render(
    documents: Mapping[GroupVersionKey, Mapping[str, Any]], formats: Iterable[str], source: str
) -> dict[str, bytes]:
    """Every file of the reference for `formats` (a subset of FORMATS), keyed by path relative to the output."""
    formats = set(formats)
    unknown = formats - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown format {sorted(unknown)[0]!r}: use one of {', '.join(FORMATS)}")
    gvs = read_all(documents)
    files: dict[str, bytes] = {}
    for gv in gvs:
        files[f"{OPENAPI_DIR}/{gv.name}.json"] = openapi_json(gv.document)
    if "markdown" in formats:
        files["README.md"] = index_page(gvs, "md", source).encode()
        for gv in gvs:
            files[page_file(gv, "md")] = group_version_page(gv, f"{OPENAPI_DIR}/{gv.name}.json").encode()
    if "html" in formats:
        renderer = HtmlRenderer(gvs)
        index = _without_banner(index_page(gvs, "html", source))
        files[f"{HTML_DIR}/index.html"] = renderer.page(index, "Overview").encode()
        files[f"{HTML_DIR}/style.css"] = STYLE.encode()
        for gv in gvs:
            page = _without_banner(group_version_page(gv, f"../{OPENAPI_DIR}/{gv.name}.json"))
            files[f"{HTML_DIR}/{page_file(gv, 'html')}"] = renderer.page(page, gv.api_version, gv.name).encode()
    return dict(sorted(files.items()))
