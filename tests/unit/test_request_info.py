"""RequestInfo: the facts of a request computed once from its method and path, and the resolver that reads them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import MultiDict, MultiDictProxy

from tmc.apimachinery.errors import StatusError
from tmc.apiserver import request as req
from tmc.apiserver.request import REQUEST_INFO, RequestInfo, RequestInfoFactory, request_info
from tmc.apiserver.resolve import Resolver
from tmc.registry.resources import ResourceRegistry
from tmc.storage.sqlite import SqliteStore

NO_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())
WATCH: MultiDictProxy[str] = MultiDictProxy(MultiDict({"watch": "true"}))


def info(method: str, path: str, query: MultiDictProxy[str] = NO_QUERY, default: str = "root") -> RequestInfo:
    return request_info(method, path, query, default)


def status_of(method: str, path: str, api_path: str | None = None) -> StatusError:
    with pytest.raises(StatusError) as e:
        request_info(method, path, NO_QUERY, "root", api_path=api_path)
    return e.value


@pytest.mark.parametrize(
    ("method", "path", "query", "verb"),
    [
        ("GET", "/api/v1/namespaces/a/configmaps/c", NO_QUERY, "get"),
        ("GET", "/api/v1/namespaces/a/configmaps/c", WATCH, "get"),  # a named GET is a get, watch or not
        ("GET", "/api/v1/namespaces/a/configmaps", NO_QUERY, "list"),
        ("GET", "/api/v1/namespaces/a/configmaps", WATCH, "watch"),
        ("GET", "/api/v1/configmaps", MultiDictProxy(MultiDict({"watch": "1"})), "watch"),
        ("GET", "/api/v1/configmaps", MultiDictProxy(MultiDict({"watch": "True"})), "watch"),
        ("GET", "/api/v1/configmaps", MultiDictProxy(MultiDict({"watch": "false"})), "list"),
        ("POST", "/api/v1/namespaces/a/configmaps", NO_QUERY, "create"),
        ("PUT", "/api/v1/namespaces/a/configmaps/c", NO_QUERY, "update"),
        ("PATCH", "/api/v1/namespaces/a/configmaps/c", NO_QUERY, "patch"),
        ("DELETE", "/api/v1/namespaces/a/configmaps/c", NO_QUERY, "delete"),
        ("DELETE", "/api/v1/namespaces/a/configmaps", NO_QUERY, "deletecollection"),
    ],
)
def test_verbs(method: str, path: str, query: MultiDictProxy[str], verb: str) -> None:
    ri = info(method, path, query)
    assert ri.is_resource_request
    assert ri.verb == verb
    assert ri.unsupported == ""


@pytest.mark.parametrize(
    ("method", "path", "verb", "message"),
    [
        ("POST", "/api/v1/namespaces/a/configmaps/c", "create", "POST is not supported on a named configmaps"),
        ("PUT", "/api/v1/namespaces/a/configmaps", "update", "PUT needs an object name"),
        ("PATCH", "/apis/apps/v1/deployments", "patch", "PATCH needs an object name"),
        ("OPTIONS", "/api/v1/configmaps", "options", "the server does not allow the method OPTIONS"),
        ("HEAD", "/api/v1/namespaces/a/configmaps/c", "head", "the server does not allow the method HEAD"),
    ],
)
def test_methods_that_do_not_fit_the_path_carry_the_405_message(
    method: str, path: str, verb: str, message: str
) -> None:
    """Raised by the handlers after resolution (an unknown resource still answers 404), so kept, not raised here."""
    ri = info(method, path)
    assert (ri.verb, ri.unsupported) == (verb, message)


def test_workspaces() -> None:
    assert info("GET", "/api/v1/namespaces").workspace == "root"
    assert info("GET", "/api/v1/namespaces", default="root:org").workspace == "root:org"
    ri = info("GET", "/clusters/root:team-a/api/v1/namespaces/a/configmaps/c")
    assert (ri.workspace, ri.namespace, ri.resource, ri.name) == ("root:team-a", "a", "configmaps", "c")
    assert not ri.wildcard


def test_wildcard() -> None:
    ri = info("GET", "/clusters/*/apis/apps/v1/deployments", WATCH)
    assert ri == RequestInfo(
        "/clusters/*/apis/apps/v1/deployments", "watch", "*", True, "apps", "v1", "deployments", "", None, None
    )
    assert ri.wildcard
    assert ri.scope == "cluster"


def test_resource_fields_and_scope() -> None:
    ri = info("PUT", "/apis/apps/v1/namespaces/n/deployments/d/scale")
    assert ri == RequestInfo(
        "/apis/apps/v1/namespaces/n/deployments/d/scale",
        "update",
        "root",
        True,
        "apps",
        "v1",
        "deployments",
        "scale",
        "n",
        "d",
    )
    assert ri.scope == "resource"
    assert info("GET", "/api/v1/namespaces/n/configmaps").scope == "namespace"
    assert info("PUT", "/apis/apps/v1/namespaces/n/deployments/d/status").subresource == "status"


@pytest.mark.parametrize(
    ("path", "namespace", "resource", "name", "sub"),
    [
        ("/api/v1/namespaces", None, "namespaces", None, ""),
        ("/api/v1/namespaces/a", None, "namespaces", "a", ""),
        # A Namespace's own subresources address the Namespace, not a resource called "status" in it.
        ("/api/v1/namespaces/a/status", None, "namespaces", "a", "status"),
        ("/api/v1/namespaces/a/finalize", None, "namespaces", "a", "finalize"),
        ("/api/v1/namespaces/a/configmaps", "a", "configmaps", None, ""),
        ("/api/v1/namespaces/a/pods/p/status", "a", "pods", "p", "status"),
        # Outside the core group there is no Namespace: this is a collection called "status" in namespace a.
        ("/apis/example.com/v1/namespaces/a/status", "a", "status", None, ""),
    ],
)
def test_namespace_paths(path: str, namespace: str | None, resource: str, name: str | None, sub: str) -> None:
    ri = info("GET", path)
    assert (ri.namespace, ri.resource, ri.name, ri.subresource) == (namespace, resource, name, sub)


@pytest.mark.parametrize(
    ("path", "kind", "group", "version", "openapi_path"),
    [
        ("/api", req.API, "", "", ""),
        ("/api/v1", req.API_VERSION, "", "v1", ""),
        ("/apis", req.APIS, "", "", ""),
        ("/apis/apps", req.GROUP, "apps", "", ""),
        ("/clusters/root:a/apis/apps/v1", req.GROUP_VERSION, "apps", "v1", ""),
        ("/version", req.VERSION, "", "", ""),
        ("/version/", req.VERSION, "", "", ""),
        ("/openapi/v3", req.OPENAPI, "", "", ""),
        ("/clusters/root/openapi/v3/apis/apps/v1", req.OPENAPI_GV, "", "", "apis/apps/v1"),
    ],
)
def test_discovery_paths(path: str, kind: str, group: str, version: str, openapi_path: str) -> None:
    ri = info("GET", path)
    assert not ri.is_resource_request
    assert (ri.verb, ri.discovery, ri.api_group, ri.api_version, ri.openapi_path) == (
        "get",
        kind,
        group,
        version,
        openapi_path,
    )
    assert info("POST", path).verb == "post"  # the discovery responder answers 405 for anything but get


@pytest.mark.parametrize(
    "path",
    [
        "/nonsense",
        "/",
        "/clusters/root",
        "/clusters/root/",
        "/clusters/BAD",  # unparseable comes before an invalid workspace
        "/openapi/v2",
        "/version/x",
        "/api/v1/namespaces/a/configmaps/c/status/extra",
    ],
)
def test_unparseable_paths_are_404(path: str) -> None:
    err = status_of("GET", path)
    assert err.code == 404
    assert err.message == f"the server could not find the requested resource ({path})"


@pytest.mark.parametrize("workspace", ["Root", "root::a", "", "root:"])
def test_invalid_workspace_is_400(workspace: str) -> None:
    err = status_of("GET", f"/clusters/{workspace}/api/v1/namespaces")
    assert err.code == 400
    assert err.message == f"invalid workspace path {workspace!r}"


def test_workspace_path_syntax() -> None:
    assert req.valid_workspace_path("root:team-a")
    assert req.valid_workspace_path("*")
    assert not req.valid_workspace_path("Root")
    assert not req.valid_workspace_path("root::a")


def test_virtual_workspace_prefix() -> None:
    """A virtual workspace parses what follows its prefix; the path (and 404 messages) stay the whole path."""
    full = "/services/syncer/root/c1/uid-1/clusters/*/api/v1/configmaps"
    ri = request_info("GET", full, NO_QUERY, "root", api_path="/clusters/*/api/v1/configmaps")
    assert (ri.path, ri.workspace, ri.resource, ri.verb) == (full, "*", "configmaps", "list")
    bad = "/services/syncer/root/c1/uid-1/clusters/root/nonsense"
    assert status_of("GET", bad, api_path="/clusters/root/nonsense").message.endswith(f"({bad})")


def test_factory_shares_immutable_infos_and_attaches_them() -> None:
    factory = RequestInfoFactory("root", cache_size=2)
    first = factory.compute("GET", "/api/v1/configmaps", NO_QUERY)
    assert factory.compute("GET", "/api/v1/configmaps", NO_QUERY) is first
    assert factory.compute("GET", "/api/v1/configmaps", WATCH).verb == "watch"
    assert factory.compute("DELETE", "/api/v1/configmaps", NO_QUERY).verb == "deletecollection"
    assert factory.compute("GET", "/api/v1/configmaps", NO_QUERY) == first  # the cache was cleared, not outgrown
    for _ in range(2):  # errors are raised every time, never cached
        with pytest.raises(StatusError):
            factory.compute("GET", "/nonsense", NO_QUERY)
    request = make_mocked_request("GET", "/clusters/root:a/api/v1/namespaces/n/configmaps?watch=1")
    ri = factory.attach(request)
    assert request[REQUEST_INFO] is ri
    assert (ri.workspace, ri.namespace, ri.verb) == ("root:a", "n", "watch")
    with pytest.raises(AttributeError):
        ri.verb = "get"  # type: ignore[misc]


def test_resolver(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
        await store.start()
        try:
            registry = ResourceRegistry(store)
            hub = Resolver(store, registry, "root")
            assert hub.resolve(info("GET", "/apis/apps/v1/namespaces/n/deployments/d/scale")).plural == "deployments"
            assert hub.resolve(info("GET", "/clusters/*/api/v1/configmaps")).plural == "configmaps"
            with pytest.raises(StatusError) as e:
                hub.resolve(info("GET", "/apis/example.com/v1/widgets"))
            assert (e.value.code, e.value.message) == (
                404,
                "the server could not find the requested resource (widgets in example.com/v1)",
            )
            with pytest.raises(StatusError) as e:
                hub.resolve(info("GET", "/api/v1/namespaces/n/nodes"))
            assert e.value.message == "the server could not find the requested resource (nodes is not namespaced)"
            with pytest.raises(StatusError) as e:
                hub.resolve(info("GET", "/api/v1/namespaces/n/configmaps/c/status"))
            assert e.value.code == 404

            # A virtual workspace's narrowing: only some resources, only the status subresource.
            narrow = Resolver(store, registry, "root", served=lambda r: r.namespaced, subresources=("status",))
            assert narrow.resolve(info("GET", "/apis/apps/v1/namespaces/n/deployments/d/status")).kind == "Deployment"
            for path in ("/apis/apps/v1/namespaces/n/deployments/d/scale", "/api/v1/nodes"):
                with pytest.raises(StatusError) as e:
                    narrow.resolve(info("GET", path))
                assert e.value.code == 404
        finally:
            await store.close()

    asyncio.run(main())
