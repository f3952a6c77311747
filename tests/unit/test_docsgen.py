"""The API reference generator: the committed reference is current, every field is described, any TMC group-version
is picked up, schema text cannot become markup, links resolve, and bad input changes nothing."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tmc.api.workload import SYNC_TARGETS
from tmc.apimachinery.schemas import Schema, builtin_definitions
from tmc.apiserver.openapi import group_version_document
from tmc.docsgen.generate import offline_files
from tmc.docsgen.model import read_group_version, undocumented
from tmc.docsgen.output import write
from tmc.docsgen.render import FORMATS, read_all, render
from tmc.docsgen.source import offline_documents, tmc_group_versions
from tmc.registry.resources import STATIC_RESOURCES

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"


def _tmc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tmc", *args], capture_output=True, text=True, timeout=60)


def test_committed_reference_is_current() -> None:
    expected = offline_files(FORMATS)
    committed = {
        p.relative_to(REFERENCE).as_posix(): p.read_bytes() for p in sorted(REFERENCE.rglob("*")) if p.is_file()
    }
    missing = sorted(set(expected) - set(committed))
    extra = sorted(set(committed) - set(expected))
    changed = sorted(name for name in set(expected) & set(committed) if expected[name] != committed[name])
    assert not (missing or extra or changed), (
        f"docs/reference is stale (missing {missing}, extra {extra}, changed {changed}): run make docs"
    )


def test_every_tmc_field_is_described_and_every_kind_has_a_written_example() -> None:
    gvs = read_all(offline_documents())
    assert [gv.api_version for gv in gvs] == [
        "scheduling.kcp.io/v1alpha1",
        "tenancy.kcp.io/v1alpha1",
        "tmc.kcp.io/v1alpha1",
        "workload.kcp.io/v1alpha1",
    ]
    kinds = [
        "Location",
        "Placement",
        "Workspace",
        "CanaryDeployment",
        "RollbackPolicy",
        "WorkloadRevision",
        "SyncTarget",
    ]
    assert [k.kind for gv in gvs for k in gv.kinds] == kinds
    assert [name for gv in gvs for name in undocumented(gv)] == []
    pages = offline_files(["markdown"])
    assert "No hand-written example" not in "".join(p.decode() for p in pages.values() if p.startswith(b"<!--"))


def test_the_synctarget_page_shows_types_required_validation_and_nested_links() -> None:
    page = offline_files(["markdown"])["workload.kcp.io-v1alpha1.md"].decode()
    assert "### SyncTarget.spec.resourceFilter" in page
    # The field row links its nested type, and the row states what the schema says.
    assert "| `resourceFilter` | [object](#synctargetspecresourcefilter) |" in page
    assert "| `effect` | string | yes |  | one of: NoSchedule, NoExecute |" in page
    assert (
        "[LabelSelector](https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.32/#labelselector-v1-meta)"
        in page
    )
    assert "kind: SyncTarget" in page and "```yaml" in page


def test_a_new_tmc_group_version_needs_no_code_change() -> None:
    """A kind in a group the generator has never seen (tmc.kcp.io/v1alpha2) is documented like the others."""
    schema = dict(SYNC_TARGETS.schema.raw if SYNC_TARGETS.schema else {})
    schema["x-kubernetes-group-version-kind"] = [{"group": "tmc.kcp.io", "version": "v1alpha2", "kind": "Gadget"}]
    schema["description"] = "Gadget is a kind added later."
    gadget = dataclasses.replace(
        SYNC_TARGETS,
        group="tmc.kcp.io",
        version="v1alpha2",
        kind="Gadget",
        plural="gadgets",
        singular="gadget",
        namespaced=True,
        schema=Schema(schema, builtin_definitions()),
        definition_name="io.kcp.tmc.v1alpha2.Gadget",
    )
    resources = (*STATIC_RESOURCES, gadget)
    assert ("tmc.kcp.io", "v1alpha2") in tmc_group_versions(resources)
    document = group_version_document(resources, "apis/tmc.kcp.io/v1alpha2")
    assert document is not None
    files = render({("tmc.kcp.io", "v1alpha2"): document}, ["markdown", "html"], "test")
    page = files["tmc.kcp.io-v1alpha2.md"].decode()
    assert "## Gadget" in page and "| Namespaced | `gadgets` |" in page and "Gadget is a kind added later." in page
    # No hand-written example: a skeleton, marked as one.
    assert "No hand-written example yet" in page and "namespace: default" in page
    assert "openapi/tmc.kcp.io-v1alpha2.json" in files and "html/tmc.kcp.io-v1alpha2.html" in files


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))


def test_html_links_resolve_and_schema_text_cannot_become_markup() -> None:
    document = dict(group_version_document(STATIC_RESOURCES, "apis/workload.kcp.io/v1alpha1") or {})
    components = dict(document["components"])
    schemas = dict(components["schemas"])
    hostile = dict(schemas["io.kcp.workload.v1alpha1.SyncTarget"])
    hostile["description"] = "Evil <script>alert(1)</script> | pipe `tick` *star*\n\n# not a heading"
    schemas["io.kcp.workload.v1alpha1.SyncTarget"] = hostile
    document["components"] = {**components, "schemas": schemas}
    files = render({("workload.kcp.io", "v1alpha1"): document}, ["html"], "test <b>source</b>")
    pages = {name: files[name].decode() for name in files if name.endswith(".html")}
    for name, html in pages.items():
        parsed = _Page()
        parsed.feed(html)
        assert "script" not in parsed.tags and "b" not in parsed.tags, name
        assert "nav" in parsed.tags and "table" in parsed.tags, name
        for link in parsed.links:
            target, _, anchor = link.partition("#")
            if link.startswith("http"):
                continue
            page = pages.get(f"html/{target}") if target else html
            if target.endswith(".json"):
                assert f"openapi/{Path(target).name}" in files, link
                continue
            assert page is not None, f"{name}: {link} points at no page"
            if anchor:
                other = _Page()
                other.feed(page)
                assert anchor in other.ids, f"{name}: {link} points at no heading"
    workload = pages["html/workload.kcp.io-v1alpha1.html"]
    assert "Evil &lt;script&gt;alert(1)&lt;/script&gt; | pipe" in workload


def test_output_is_deterministic_and_stale_pages_go(tmp_path: Path) -> None:
    out = tmp_path / "ref"
    (out / "openapi").mkdir(parents=True)
    (out / "openapi" / "gone.k8s.io-v1.json").write_text("{}")
    (out / "notes.md").write_text("# mine\n")
    files = offline_files(["markdown"])
    write(out, files, ["markdown"])
    first = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert not (out / "openapi" / "gone.k8s.io-v1.json").exists()
    assert (out / "notes.md").read_text() == "# mine\n"  # not the generator's: left alone
    assert not [p for p in out.iterdir() if p.name.startswith(".tmc-docs-")]
    write(out, offline_files(["markdown"]), ["markdown"])
    again = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert first == again
    assert not re.search(rb"20\d\d-\d\d-\d\d", b"".join(files.values()))  # no timestamps


def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (["--format", "pdf", "--output", str(tmp_path / "a")], "unknown --format 'pdf'"),
        (["--output", str(blocker / "sub")], "cannot write to"),
        (["--output", str(blocker)], "is not a directory"),
        (
            ["--from-server", "--server", "https://127.0.0.1:9", "--token", "t", "--output", str(tmp_path / "b")],
            "cannot reach the hub at https://127.0.0.1:9",
        ),
    ]
    for args, message in cases:
        result = _tmc("docs", "api", *args)
        assert result.returncode != 0, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert blocker.read_text() == "x"


def test_model_reads_refs_defaults_and_rules_of_a_crd_style_schema() -> None:
    document = {
        "paths": {
            "/apis/example.io/v1/namespaces/{namespace}/widgets": {
                "post": {"x-kubernetes-group-version-kind": {"group": "example.io", "version": "v1", "kind": "Widget"}}
            }
        },
        "components": {
            "schemas": {
                "io.example.v1.Widget": {
                    "type": "object",
                    "x-kubernetes-group-version-kind": [{"group": "example.io", "version": "v1", "kind": "Widget"}],
                    "properties": {
                        "spec": {
                            "type": "object",
                            "description": "The widget.",
                            "required": ["size"],
                            "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "too big"}],
                            "properties": {
                                "size": {"type": "integer", "default": 3, "minimum": 1, "description": "Size."},
                                "port": {"x-kubernetes-int-or-string": True, "description": "Port."},
                                "tags": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                    "description": "Tags.",
                                },
                            },
                        }
                    },
                }
            }
        },
    }
    gv = read_group_version("example.io", "v1", document, "32")
    (kind,) = gv.kinds
    assert (kind.kind, kind.plural, kind.namespaced) == ("Widget", "widgets", True)
    spec_row = kind.sections[0].fields[0]
    assert spec_row.validation == ("rule: self.size <= 10 (too big)",)
    spec = {f.name: f for f in kind.sections[1].fields}
    assert (spec["size"].required, spec["size"].default, spec["size"].validation) == (True, 3, ("minimum: 1",))
    assert (spec["port"].type.text, spec["tags"].type.text) == ("int-or-string", "map[string]string")
    assert undocumented(gv) == []


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_one_format_leaves_the_other_alone(tmp_path: Path, fmt: str) -> None:
    write(tmp_path, offline_files(FORMATS), FORMATS)
    before = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    write(tmp_path, offline_files([fmt]), [fmt])
    after = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert before == after
