"""The generated API reference against a real hub: its example manifests are accepted by `kubectl apply
--dry-run=server`, `kubectl explain` prints its descriptions, the hub serves the OpenAPI it was built from,
`tmc docs api --from-server` documents a workspace's CRDs, and headless Chromium renders its HTML."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.e2e.conftest import Workspace
from tests.e2e.harness import Hub, Kubectl, wait_until
from tmc.docsgen.model import Field, GroupVersion, Kind, read_group_version
from tmc.docsgen.source import kube_minor

pytestmark = pytest.mark.usefixtures("kubectl_binary")

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"
CHROMIUM_MISSING = "chromium is not installed (apt-get install chromium, or make install as root)"


def _committed() -> list[GroupVersion]:
    out = []
    for path in sorted((REFERENCE / "openapi").glob("*.json")):
        document = orjson.loads(path.read_bytes())
        group, _, version = path.stem.rpartition("-")
        out.append(read_group_version(group, version, document, kube_minor(document)))
    return out


def _fields(kind: Kind) -> dict[str, Field]:
    return {f.path: f for section in kind.sections for f in section.fields}


def _words(text: str) -> str:
    return " ".join(text.split())


def test_every_example_manifest_is_accepted_by_a_server_side_dry_run(
    make_workspace: Callable[[str], Workspace],
) -> None:
    examples = [
        block
        for page in sorted(REFERENCE.glob("*.md"))
        for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), flags=re.S)
    ]
    manifests = [yaml.safe_load(e) for e in examples]
    assert sorted(m["kind"] for m in manifests) == [
        "CanaryDeployment",
        "Location",
        "Placement",
        "RollbackPolicy",
        "SyncTarget",
        "WorkloadRevision",
        "Workspace",
    ]
    ws = make_workspace("docs-examples")
    result = ws.kubectl.run("apply", "--dry-run=server", "-f", "-", input="\n---\n".join(examples))
    created = re.findall(r"^(\S+) created \(server dry run\)$", result.stdout, flags=re.M)
    expected = [f"{m['kind'].lower()}.{m['apiVersion'].split('/')[0]}/{m['metadata']['name']}" for m in manifests]
    assert sorted(created) == sorted(expected), result.stdout
    # A dry run stores nothing.
    assert ws.kubectl.run("get", "placement", "web", check=False).returncode != 0


_SAMPLE = (
    ("SyncTarget", "spec.resourceFilter"),
    ("SyncTarget", "status.syncerStatus"),
    ("Placement", "spec.replicaScheduling.type"),
    ("Placement", "spec.tolerations"),
    ("Location", "spec"),
    ("Workspace", "status"),
)


def _explain(text: str) -> tuple[str, dict[str, str]]:
    """kubectl explain's DESCRIPTION and its FIELDS (name -> "one of: <enum> " + description), whitespace
    normalised."""
    description = re.search(r"^DESCRIPTION:\n(.*?)(?=^FIELDS:|\Z)", text, flags=re.S | re.M)
    fields: dict[str, str] = {}
    block = text.split("\nFIELDS:\n", 1)[1] if "\nFIELDS:\n" in text else ""
    entry = r"^  (\S+)\t<[^>]*>(?: -required-)?\n(?:  enum: (.*)\n)?((?:    .*\n?|\s*\n)*)"
    for match in re.finditer(entry, block, flags=re.M):
        enum = f"one of: {match.group(2)} " if match.group(2) else ""
        fields[match.group(1)] = enum + _words(match.group(3))
    return _words(description.group(1) if description else ""), fields


def test_kubectl_explain_prints_the_reference_descriptions(kubectl: Kubectl) -> None:
    kinds = {k.kind: k for gv in _committed() for k in gv.kinds}
    for kind_name, path in _SAMPLE:
        fields = _fields(kinds[kind_name])
        field = fields[path]
        out = kubectl.run("explain", f"{kinds[kind_name].plural}.{path}").stdout
        description, children = _explain(out)
        expected_description = field.description
        if field.type.text.startswith("[]") and field.type.anchor:
            # For a list of objects kubectl prints the field's text and then its items' (the `[]` section).
            items = next(s for s in kinds[kind_name].sections if s.anchor == field.type.anchor)
            expected_description += " " + items.description
        assert description == _words(expected_description), (path, out)
        expected = {
            f.name: "".join(f"{v} " for v in f.validation if v.startswith("one of: ")) + _words(f.description)
            for p, f in fields.items()
            if p.rpartition(".")[0] == path
        }
        assert children == expected, (path, out)


def test_the_hub_serves_the_openapi_the_reference_was_built_from(hub: Hub) -> None:
    committed = _committed()
    assert [gv.api_version for gv in committed] == [
        "scheduling.kcp.io/v1alpha1",
        "tenancy.kcp.io/v1alpha1",
        "tmc.kcp.io/v1alpha1",
        "workload.kcp.io/v1alpha1",
    ]
    for gv in committed:
        status, served = hub.request("GET", f"/clusters/root/openapi/v3/apis/{gv.group}/{gv.version}")
        assert status == 200
        assert served == gv.document, f"{gv.api_version}: the hub serves another document; run make docs"
        # So every field's description is the one kubectl explain reads.
        live = read_group_version(gv.group, gv.version, served, kube_minor(served))
        assert [(k.kind, sorted(_fields(k).items())) for k in live.kinds] == [
            (k.kind, sorted(_fields(k).items())) for k in gv.kinds
        ]


_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gizmos.docs.example.io"},
    "spec": {
        "group": "docs.example.io",
        "scope": "Namespaced",
        "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "Gizmo is a CRD documented from a running hub.",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "description": "What the gizmo should be.",
                                "required": ["size"],
                                "properties": {
                                    "size": {
                                        "type": "integer",
                                        "minimum": 1,
                                        "description": "How big the gizmo is.",
                                    },
                                    "colour": {
                                        "type": "string",
                                        "default": "blue",
                                        "enum": ["blue", "red"],
                                        "description": "Paint.",
                                    },
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_from_server_documents_the_crds_of_a_workspace(
    hub: Hub, make_workspace: Callable[[str], Workspace], tmp_path: Path
) -> None:
    ws = make_workspace("docs-crd")
    ws.kubectl.apply(_CRD)
    wait_until(lambda: ws.kubectl.run("get", "gizmos", check=False).returncode == 0, what="gizmos served")
    out = tmp_path / "ref"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    cmd = [sys.executable, "-m", "tmc", "docs", "api", "--from-server", "--kubeconfig", hub.kubeconfig]
    cmd += ["--workspace", f"root:{ws.name}", "--output", str(out), "--format", "markdown", "--format", "html"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    # The workspace's CRD and TMC's own groups; none of Kubernetes' built-in groups.
    pages = sorted(p.name for p in out.glob("*.md"))
    assert pages == [
        "README.md",
        "docs.example.io-v1.md",
        "scheduling.kcp.io-v1alpha1.md",
        "tenancy.kcp.io-v1alpha1.md",
        "tmc.kcp.io-v1alpha1.md",
        "workload.kcp.io-v1alpha1.md",
    ]
    page = (out / "docs.example.io-v1.md").read_text()
    assert "Gizmo is a CRD documented from a running hub." in page
    assert '| `colour` | string |  | `"blue"` | one of: blue, red | Paint. |' in page
    assert "| `size` | integer | yes |  | minimum: 1 | How big the gizmo is. |" in page
    assert (out / "html" / "docs.example.io-v1.html").is_file()
    # The skeleton example of a kind without a hand-written one is accepted too.
    (skeleton,) = re.findall(r"```yaml\n(.*?)```", page, flags=re.S)
    ws.kubectl.run("apply", "--dry-run=server", "-f", "-", input=skeleton)


def _png_gray(path: Path) -> tuple[int, int, bytes]:
    """(width, height, one luminance byte per pixel) of an 8-bit RGB/RGBA PNG, such as Chromium writes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    gray = bytearray()
    for row in range(height):
        filt = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if filt == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filt == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        gray += bytes((line[i] * 3 + line[i + 1] * 6 + line[i + 2]) // 10 for i in range(0, stride, channels))
        previous = line
    return width, height, bytes(gray)


def test_chromium_renders_the_html_reference(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip(CHROMIUM_MISSING)
    page = (REFERENCE / "html" / "workload.kcp.io-v1alpha1.html").as_uri()
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "page.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,900", page], capture_output=True, timeout=90)
    width, height, gray = _png_gray(shot)
    assert (width, height) == (1280, 900)
    mean = sum(gray) / len(gray)
    variance = sum((g - mean) ** 2 for g in gray[::7]) / len(gray[::7])
    dark = sum(1 for g in gray[::7] if g < 128) / len(gray[::7])
    assert variance > 500 and 0.005 < dark < 0.5, (variance, dark)  # text on a light page, not blank
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=90).stdout
    assert '<nav id="sidebar"' in dom and 'href="scheduling.kcp.io-v1alpha1.html#placement"' in dom
    assert '<h3 id="synctargetspecresourcefilter">' in dom and "<th>Field</th>" in dom
