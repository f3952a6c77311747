"""`tmc docs api`: an API reference (Markdown, static HTML, OpenAPI v3 JSON) generated from the OpenAPI documents the
hub serves, built offline from TMC's API types with the hub's own builder, or fetched from a running hub.

Modules: `source` (where documents come from), `model` (a document read as kinds, sections and fields), `examples`
(one manifest per kind), `markdown` and `html` (renderings), `render` (all files in memory), `output` (writing them
without leaving half a reference behind), `generate` (the entry points the CLI calls).
"""
