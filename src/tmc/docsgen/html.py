"""The reference as static HTML: each Markdown page rendered by markdown-it-py (raw HTML off, so schema text can never
become markup) inside a Jinja2 layout (autoescaped) with a navigation sidebar of every group-version and kind.

Heading ids use the same slug as GitHub, so `#synctargetspecresourcefilter` works in both renderings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

from tmc.docsgen.model import GroupVersion, slug

_LAYOUT = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} - API reference</title>
<link rel="stylesheet" href="style.css">
</head>
<body>
<nav id="sidebar" aria-label="API groups and kinds">
<a class="home" href="index.html">API reference</a>
{%- for gv in nav %}
<div class="group{% if gv.current %} current{% endif %}">
<a class="gv" href="{{ gv.href }}">{{ gv.label }}</a>
<ul>
{%- for kind in gv.kinds %}
<li><a href="{{ kind.href }}">{{ kind.label }}</a></li>
{%- endfor %}
</ul>
</div>
{%- endfor %}
</nav>
<main id="content">
{{ body }}
</main>
</body>
</html>
"""

STYLE = """\
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; display: flex; }
#sidebar { position: sticky; top: 0; height: 100vh; overflow-y: auto; box-sizing: border-box; width: 260px;
  flex: none; padding: 16px; background: #f6f8fa; border-right: 1px solid #d0d7de; }
#sidebar a { color: #0969da; text-decoration: none; }
#sidebar .home { display: block; font-weight: 600; font-size: 17px; margin-bottom: 12px; color: #1f2328; }
#sidebar .gv { display: block; font-weight: 600; margin-top: 10px; }
#sidebar .current .gv { color: #1f2328; }
#sidebar ul { list-style: none; margin: 2px 0 0; padding-left: 12px; }
#content { flex: 1; min-width: 0; padding: 16px 32px 48px; }
h1, h2, h3 { line-height: 1.25; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 40px; }
h3 { margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0 16px; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; vertical-align: top; text-align: left; }
th { background: #f6f8fa; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eff1f3; padding: 1px 4px;
  border-radius: 4px; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
a { color: #0969da; }
"""


def _heading_open(renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    inline = tokens[idx + 1]
    plain = "".join(t.content for t in inline.children or () if t.type in ("text", "text_special", "code_inline"))
    tokens[idx].attrSet("id", slug(plain))
    return renderer.renderToken(tokens, idx, options, env)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("heading_open", _heading_open)
    return md


def _environment() -> jinja2.Environment:
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _nav(gvs: Sequence[GroupVersion], current: str) -> list[dict[str, Any]]:
    out = []
    for gv in gvs:
        page = f"{gv.name}.html"
        kinds = [{"label": k.kind, "href": f"{page}#{k.anchor}"} for k in gv.kinds]
        out.append({"label": gv.api_version, "href": page, "current": gv.name == current, "kinds": kinds})
    return out


class HtmlRenderer:
    """Renders Markdown pages into the layout; one instance per reference (it holds the sidebar)."""

    def __init__(self, gvs: Sequence[GroupVersion]) -> None:
        self._gvs = list(gvs)
        self._md = _markdown()
        self._layout = _environment().from_string(_LAYOUT)

    def page(self, markdown: str, title: str, current: str = "") -> str:
        body = Markup(self._md.render(markdown).rstrip("\n"))  # markdown-it escapes all text; raw HTML is off
        return self._layout.render(title=title, nav=_nav(self._gvs, current), body=body)
