"""The CLI's output formatting, flag parsing and shared rules, without a hub."""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from tmc.api import scheduling, workload
from tmc.apimachinery import printers
from tmc.cli import contract, names
from tmc.cli.errors import explain
from tmc.cli.kubeconfig_flags import context_namespace, kubeconfig_path, valid_workspace
from tmc.cli.output import Column, OutputFormat, OutputType, Printer, SortBy, render_table
from tmc.cli.placement_spec import capabilities, selector_object, spec_from_flags, spread, weights
from tmc.cli.plugin.ws import resolve


def st(name: str, ready: str = "True", synced: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "workload.kcp.io/v1alpha1",
        "kind": "SyncTarget",
        "metadata": {"name": name, "labels": {"region": name[-1]}},
        "status": {"conditions": [{"type": "Ready", "status": ready}], "syncerStatus": {"syncedResources": synced}},
    }


COLUMNS = (
    Column("NAME", lambda o: o["metadata"]["name"]),
    Column("READY", lambda o: o["status"]["conditions"][0]["status"]),
    Column("SYNCED", lambda o: o["status"]["syncerStatus"]["syncedResources"], wide=True),
)


def parse(value: str) -> OutputFormat:
    return OutputType().convert(value, None, None)


def test_tables_are_aligned_like_kubectl_tabwriter() -> None:
    # Each column is its widest cell plus 3 spaces (at least 6 wide); the last one is not padded.
    out = render_table(["NAME", "READY"], [["cluster-1", "True"], ["c", "False"]], no_headers=False, color=False)
    assert out == "NAME        READY\ncluster-1   True\nc           False\n"
    assert render_table(["A", "B"], [["x", "y"]], no_headers=True, color=False) == "x     y\n"


def test_table_wide_and_no_headers_and_sort() -> None:
    objects = [st("b-2", synced=5), st("a-1", "False", synced=2)]
    printer = Printer(OutputFormat("table"), columns=COLUMNS)
    assert printer.render(objects).splitlines() == ["NAME   READY", "b-2    True", "a-1    False"]
    wide = Printer(OutputFormat("wide"), columns=COLUMNS, sort_by=".metadata.name").render(objects)
    assert wide.splitlines() == ["NAME   READY   SYNCED", "a-1    False   2", "b-2    True    5"]
    by_number = Printer(parse("name"), sort_by=".status.syncerStatus.syncedResources").render(objects)
    assert by_number == "synctarget.workload.kcp.io/a-1\nsynctarget.workload.kcp.io/b-2\n"
    assert Printer(OutputFormat("table"), no_headers=True, columns=COLUMNS).render(objects).startswith("b-2")


def test_watch_lines_keep_growing_widths() -> None:
    printer = Printer(OutputFormat("table"), columns=COLUMNS)
    assert printer.row(st("a-1"), header=True) == "NAME   READY\na-1    True\n"
    assert printer.row(st("a-very-long-1"), header=False) == "a-very-long-1   True\n"
    assert printer.row(st("b-2"), header=False) == "b-2             True\n"


def test_json_and_yaml_are_lists_kubectl_can_apply() -> None:
    objects = [st("a-1"), st("b-2")]
    listed = json.loads(Printer(parse("json")).render(objects))
    assert listed["kind"] == "List" and listed["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a-1", "b-2"]
    single = yaml.safe_load(Printer(parse("yaml")).render(objects[:1], single=True))
    assert single == objects[0]


def test_jsonpath_and_custom_columns() -> None:
    objects = [st("a-1"), st("b-2")]
    assert Printer(parse("jsonpath={.items[*].metadata.name}")).render(objects) == "a-1 b-2"
    template = parse('jsonpath={.metadata.name}{"\\n"}')
    assert Printer(template).render(objects[:1], single=True) == "a-1\n"
    custom = parse("custom-columns=NAME:.metadata.name,REGION:.metadata.labels.region")
    assert Printer(custom).render(objects).splitlines() == ["NAME   REGION", "a-1    1", "b-2    2"]


@pytest.mark.parametrize(
    "value",
    ["xml", "jsonpath=", "jsonpath={.a[}", "custom-columns=NAME", "wide=1", "jsonpath={range .items[*]}{end}"],
)
def test_bad_output_formats_are_usage_errors(value: str) -> None:
    with pytest.raises(click.BadParameter):
        parse(value)


def test_sort_by_accepts_braces_and_rejects_junk() -> None:
    assert SortBy().convert("{.metadata.name}", None, None) == ".metadata.name"
    assert SortBy().convert("metadata.name", None, None) == ".metadata.name"
    with pytest.raises(click.BadParameter):
        SortBy().convert(".a[", None, None)


def test_protocol_names_match_their_sources() -> None:
    assert names.STATE_LABEL_PREFIX == workload.STATE_LABEL_PREFIX
    assert names.DELETION_ANNOTATION_PREFIX == workload.DELETION_ANNOTATION_PREFIX
    assert names.STATUS_DIFF_ANNOTATION_PREFIX == workload.STATUS_DIFF_ANNOTATION_PREFIX
    assert names.STATUS_PROMOTED == workload.STATUS_PROMOTED
    assert names.SYNC_TARGET_KEY_LABEL == workload.SYNC_TARGET_KEY_LABEL
    assert names.REGION_LABEL == workload.REGION_LABEL
    assert names.ZONE_LABEL == workload.ZONE_LABEL
    assert names.CONDITION_READY == workload.CONDITION_READY
    assert names.CONDITION_HEALTHY == workload.CONDITION_HEALTHY
    for seconds in [-5, -1, 0, 59, 119, 120, 599, 600, 10_799, 10_800, 28_799, 28_800, 172_799, 172_800, 700_000,
                    63_072_000, 80_000_000, 300_000_000]:  # fmt: skip
        assert names.human_duration(seconds) == printers.human_duration(seconds), seconds
    assert names.parse_time("2026-01-02T03:04:05Z") == printers.parse_time("2026-01-02T03:04:05Z")
    assert names.parse_time("nope") is None


def test_sync_control_names_match_the_api() -> None:
    """cli/contract.py restates tmc.api's sync-control names for the same start-up reason as cli/names.py."""
    assert contract.PAUSED_ANNOTATION == workload.SYNC_PAUSED_ANNOTATION
    assert contract.PAUSED_ALL == workload.SYNC_PAUSED_ALL
    assert contract.STATE_ANNOTATION_PREFIX == workload.SYNC_STATE_ANNOTATION_PREFIX
    assert contract.STATE_PAUSED == workload.SYNC_STATE_PAUSED
    assert contract.FORCE_ANNOTATION_PREFIX == workload.SYNC_FORCE_ANNOTATION_PREFIX
    assert contract.FORCED_ANNOTATION_PREFIX == workload.SYNC_FORCED_ANNOTATION_PREFIX
    assert contract.LAST_SYNC_ANNOTATION_PREFIX == workload.SYNC_LAST_SYNC_ANNOTATION_PREFIX
    assert contract.ERROR_ANNOTATION_PREFIX == workload.SYNC_ERROR_ANNOTATION_PREFIX
    assert contract.EVENT_SYNC_PAUSED == workload.REASON_SYNC_PAUSED
    assert contract.EVENT_SYNC_RESUMED == workload.REASON_SYNC_RESUMED
    assert contract.CANDIDATES_FIELD == scheduling.SIMULATION_CANDIDATES_FIELD


def test_pause_values() -> None:
    assert contract.pause_value(None, frozenset()) == "true"
    assert contract.pause_value(None, frozenset({"b", "a"})) == "a,b"
    assert contract.pause_value("a", frozenset({"c"})) == "a,c"
    assert contract.pause_value("true", frozenset({"c"})) == "true"
    assert contract.resume_value("a,b", frozenset({"a"})) == "b"
    assert contract.resume_value("a", frozenset({"a"})) is None
    assert contract.resume_value("a,b", frozenset()) is None
    assert contract.is_paused_for({contract.PAUSED_ANNOTATION: "true"}, "x")
    assert contract.is_paused_for({contract.PAUSED_ANNOTATION: "x,y"}, "y")
    assert not contract.is_paused_for({contract.PAUSED_ANNOTATION: "x"}, "y")
    assert contract.force_annotation("K") == "sync.tmc.kcp.io/force.K"
    assert contract.forced_annotation("K") == "sync.tmc.kcp.io/forced.K"


def test_workspace_paths_resolve_like_kubectl_ws() -> None:
    assert resolve("root:a", "..", None) == "root"
    assert resolve("root:a", "b", None) == "root:a:b"
    assert resolve("root:a", "b:c", None) == "root:a:b:c"
    assert resolve("root:a", "root:x", None) == "root:x"
    assert resolve("root:a", ":root:x", None) == "root:x"
    assert resolve("root:a:b", ":", None) == "root"
    assert resolve("root:a:b", "~", None) == "root"
    assert resolve("root:a", "-", "root:z") == "root:z"
    with pytest.raises(click.ClickException):
        resolve("root", "..", None)
    with pytest.raises(click.ClickException):
        resolve("root", "-", None)
    assert valid_workspace("root:team-a") == "root:team-a"
    with pytest.raises(click.BadParameter):
        valid_workspace("root::a")


def test_placement_flags() -> None:
    assert selector_object("", "--x") == {}
    assert selector_object("a=b,c in (e,d),!f,g", "--x") == {
        "matchLabels": {"a": "b"},
        "matchExpressions": [
            {"key": "c", "operator": "In", "values": ["d", "e"]},
            {"key": "f", "operator": "DoesNotExist"},
            {"key": "g", "operator": "Exists"},
        ],
    }
    assert weights("region=eu:3") == [{"syncTargetSelector": {"matchLabels": {"region": "eu"}}, "weight": 3}]
    assert spread("zone:2:3") == [{"topologyKey": "zone", "minGroups": 2, "maxGroups": 3}]
    assert capabilities("gpu:true,ssd:false,fpga") == [
        {"type": "gpu", "required": True},
        {"type": "ssd", "required": False},
        {"type": "fpga", "required": True},
    ]
    spec = spec_from_flags({"strategy": "binpack", "replicas": "divided", "targets": 2})
    assert spec == {"strategy": "Binpack", "numberOfTargets": 2, "replicaScheduling": {"type": "Divided"}}
    for call, value in ((weights, "eu:3"), (spread, "zone:0"), (capabilities, "gpu:maybe")):
        with pytest.raises(click.BadParameter):
            call(value)
    with pytest.raises(click.BadParameter):
        selector_object("a=(", "--namespace-selector")
    with pytest.raises(click.BadParameter):
        spec_from_flags({"strategy": "fastest"})


def test_kubeconfig_resolution(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    second.write_text(
        yaml.safe_dump(
            {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "x", "namespace": "shop"}}]}
        )
    )
    assert kubeconfig_path(f"{first}:{second}") == str(second)  # first existing entry of KUBECONFIG
    assert context_namespace(str(second), None) == "shop"
    assert context_namespace(str(second), "other") is None
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kubeconfig_path(None) == str(tmp_path / ".kube" / "config")


def test_client_errors_are_one_line_with_a_hint() -> None:
    from tmc.client import errors as ce

    assert "cannot reach the hub" in str(explain(ce.Unreachable("GET x: refused")))
    assert "401" in str(explain(ce.Unauthorized(401, "Unauthorized", "no")))
    assert "forbidden" in str(explain(ce.Forbidden(403, "Forbidden", "user may not")))
    assert explain(RuntimeError("bug")) is None
    for error in (ce.Unreachable("x\ny"), ce.Invalid(422, "Invalid", "bad")):
        assert "\n" not in str(explain(error))


def _leaves(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    out = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            out += [(f"{name} {n}", c) for n, c in _leaves(command, ctx)]
        else:
            out.append((name, command))
    return out


@pytest.mark.parametrize("module", ["tmc.cli.plugin.main", "tmc.cli.ctl.main"])
def test_every_command_has_help_with_an_example(module: str) -> None:
    import importlib

    root = importlib.import_module(module).cli
    ctx = click.Context(root)
    leaves = _leaves(root, ctx)
    assert len(leaves) >= 5
    for name, command in leaves:
        assert command.help and "Example" in command.help, f"{name} has no example in its help"


def test_usage_errors_exit_2_with_one_line() -> None:
    from tmc.cli.plugin.main import cli

    runner = CliRunner()
    for args in (["get", "pods"], ["get", "st", "-o", "xml"], ["get", "st", "-l", "a=("], ["sync", "force", "x"]):
        result = runner.invoke(cli, args, standalone_mode=True)
        assert result.exit_code == 2, (args, result.output)


def test_plugin_help_imports_no_client() -> None:
    # kubectl tmc --help must stay cheap: nothing from the client layer or the server at start-up.
    import subprocess
    import sys

    code = (
        "import sys; from tmc.cli.plugin.main import cli; "
        "bad = [m for m in sys.modules if m.startswith(('aiohttp', 'tmc.client', 'tmc.server', 'rich', "
        "'opentelemetry', 'prometheus_client', 'kubernetes_validate'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
