"""Admission of CanaryDeployments: an invalid spec is a 422 naming each bad field (the API's own rules and the
analysis engine's), and nothing is stored."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.canary_env import ISTIO, NS, OPTS, WS, canary, hub
from tmc.api.canary import CANARY_DEPLOYMENTS
from tmc.apimachinery import errors

BASE = canary(
    ISTIO, [{"setWeight": 10}, {"analysis": {"thresholds": [{"metric": "error-rate", "operator": "<", "value": 1}]}}]
)


def _metric(o: dict[str, Any]) -> dict[str, Any]:
    metric: dict[str, Any] = o["spec"]["analysis"]["metrics"][0]
    return metric


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("weight", lambda o: o["spec"]["steps"][0].update(setWeight=101), "spec.steps[0].setWeight", "between 0 and 100"),
    (
        "threshold",
        lambda o: o["spec"]["steps"][1]["analysis"]["thresholds"][0].update(metric="latency"),
        "spec.steps[1].analysis.thresholds[0].metric",
        '"latency"',
    ),
    ("router", lambda o: o["spec"].pop("trafficRouting"), "spec.trafficRouting", "Required value"),
    ("two routers", lambda o: o["spec"]["trafficRouting"].update(replicas={}), "spec.trafficRouting", "exactly one"),
    ("step", lambda o: o["spec"]["steps"][0].update(pause={}), "spec.steps[0]", "exactly one"),
    (
        "condition",
        lambda o: _metric(o).update(successCondition="result <"),
        "spec.analysis.metrics[0].successCondition",
        "",
    ),
    (
        "argument",
        lambda o: _metric(o)["provider"]["prometheus"].update(query='up{pod="{{ args.pod }}"}'),
        "spec.analysis.metrics[0].provider.prometheus.query",
        "pod",
    ),
    (
        "duration",
        lambda o: o["spec"]["steps"].append({"pause": {"duration": "soon"}}),
        "spec.steps[2].pause.duration",
        "",
    ),
]


@pytest.mark.parametrize(("change", "field", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_specs_are_422_naming_the_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str, text: str
) -> None:
    async def main() -> None:
        async with hub(tmp_path) as env:
            body = copy.deepcopy(BASE)
            change(body)
            with pytest.raises(errors.StatusError) as caught:
                await env.service.create(CANARY_DEPLOYMENTS, WS, NS, body, OPTS)
            assert caught.value.code == 422
            causes = (caught.value.details or {})["causes"]
            assert any(c["field"] == field and text in c["message"] for c in causes), causes
            assert env.store.get(CANARY_DEPLOYMENTS.key(WS, NS, "web")) is None
            await env.service.create(CANARY_DEPLOYMENTS, WS, NS, copy.deepcopy(BASE), OPTS)  # the valid one is taken

    asyncio.run(main())
