"""RequestInfo -> ResourceInfo: the registry lookup shared by the API handler and the virtual workspaces."""

from __future__ import annotations

from collections.abc import Callable, Collection

from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo, cluster_of_key
from tmc.apiserver.httputil import path_not_found
from tmc.apiserver.request import WILDCARD, RequestInfo
from tmc.registry.resources import CRDS, ResourceRegistry
from tmc.storage.interface import Store


class Resolver:
    """Finds the resource a request addresses in its workspace, or answers 404 as upstream does.

    The wildcard workspace `*` serves every resource the default workspace serves, plus custom resources defined in
    any workspace. A virtual workspace narrows what it serves with `served` (which resources) and `subresources`
    (which subresources; None: all the resource has)."""

    def __init__(
        self,
        store: Store,
        registry: ResourceRegistry,
        default_workspace: str,
        *,
        served: Callable[[ResourceInfo], bool] | None = None,
        subresources: Collection[str] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.default_workspace = default_workspace
        self.served = served
        self.subresources = subresources

    def resolve(self, ri: RequestInfo) -> ResourceInfo:
        group, version, resource, sub = ri.api_group, ri.api_version, ri.resource, ri.subresource
        if ri.workspace == WILDCARD:
            info = self.registry.lookup(self.default_workspace, group, version, resource)
            if info is None:
                info = self._custom_anywhere(group, version, resource)
        else:
            info = self.registry.lookup(ri.workspace, group, version, resource)
        if info is None or (self.served is not None and not self.served(info)):
            gv = f"{group}/{version}" if group else version
            raise errors.StatusError(
                404, "NotFound", f"the server could not find the requested resource ({resource} in {gv})"
            )
        if ri.namespace is not None and not info.namespaced:
            raise path_not_found(f"{info.plural} is not namespaced")
        if sub and (sub not in info.subresources or (self.subresources is not None and sub not in self.subresources)):
            raise errors.not_found(f"{info.plural}/{sub}", ri.name or "", info.group)
        return info

    def _custom_anywhere(self, group: str, version: str, resource: str) -> ResourceInfo | None:
        """A custom resource any workspace defines (the wildcard workspace lists it across all of them)."""
        for entry in self.store.list(CRDS.key_prefix(None)):
            info = self.registry.lookup(cluster_of_key(entry.key), group, version, resource)
            if info is not None:
                return info
        return None
