"""`{{ args.memberNamespaces }}`: the namespace's names in the member clusters, so a query can tell the canary's
workload from Deployments of the same name in other namespaces (Istio labels series with the member's namespace,
`kcp-<hash>`, which the hub's namespace name does not match)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.canary_env import CLUSTERS, ISTIO, NS, WS, canary, hub
from tmc.api.workload import SYNC_TARGETS
from tmc.protocol.keys import downstream_namespace, namespace_locator

QUERY = 'errors{workload="{{ args.canary }}",namespace=~"{{ args.memberNamespaces }}"}'


def test_queries_get_the_namespace_as_each_syncer_names_it(tmp_path: Path) -> None:
    async def main() -> None:
        cd = canary(ISTIO, [{"setWeight": 20}, {"pause": {"duration": "5m"}}])
        cd["spec"]["analysis"]["metrics"][0]["provider"]["prometheus"]["query"] = QUERY
        async with hub(tmp_path, cd) as env:
            await env.until(lambda st: st.get("phase") == "Succeeded")
            await env.set_image("web:2")
            await env.until(lambda st: bool((st.get("analysis") or {}).get("metrics", [{}])[0].get("successful")))
            # What the syncers create in their clusters: kcp-<hash> of each target's namespace locator.
            member = []
            for c in CLUSTERS:
                target = env.store.get(SYNC_TARGETS.key(WS, None, c))
                assert target is not None
                uid = target.obj["metadata"]["uid"]
                member.append(downstream_namespace(namespace_locator(WS, c, uid, WS, NS)))
            member.sort()
            assert all(name.startswith("kcp-") for name in member)
            assert env.prometheus.queries[-1] == f'errors{{workload="web",namespace=~"{"|".join(member)}"}}'

    asyncio.run(main())
