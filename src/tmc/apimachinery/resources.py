"""What a served resource is (names, scope, verbs, subresources, schema) and the built-in set the hub serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tmc.apimachinery.schemas import Schema, builtin_definition_name, builtin_schema

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale"
    verbs: tuple[str, ...] = ALL_VERBS
    schema: Schema | None = None
    # OpenAPI component name: built-ins use upstream names, CRDs `<reversed group>.<version>.<Kind>`.
    definition_name: str = ""
    crd: bool = False
    # For custom resources: the CRD's additionalPrinterColumns, and its scale subresource paths.
    printer_columns: tuple[dict[str, Any], ...] = ()
    scale_paths: dict[str, str] = field(default_factory=dict)
    # Storage version when a CRD serves several versions (objects are stored once, served under each version).
    storage_version: str = ""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `configmaps`: the form kubectl and error messages use."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key_prefix(self, cluster: str | None, namespace: str | None = None) -> str:
        """Storage prefix for a list: all clusters (None), one cluster, or one namespace of one cluster."""
        base = f"/registry/{self.group or 'core'}/{self.plural}/"
        if cluster is None:
            return base
        if namespace and self.namespaced:
            return f"{base}{cluster}/{namespace}/"
        return f"{base}{cluster}/"

    def key(self, cluster: str, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.group or 'core'}/{self.plural}/{cluster}/{namespace}/{name}"
        return f"/registry/{self.group or 'core'}/{self.plural}/{cluster}/{name}"


def cluster_of_key(key: str) -> str:
    """The logical cluster segment of a storage key."""
    return key.split("/", 5)[4]


def _builtin(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short_names: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short_names,
        categories=categories,
        subresources=subresources,
        schema=builtin_schema(group, version, kind),
        definition_name=builtin_definition_name(group, version, kind) or "",
    )


BUILTIN_RESOURCES: tuple[ResourceInfo, ...] = (
    _builtin("", "v1", "Namespace", "namespaces", False, ("ns",), (), ("status", "finalize")),
    _builtin("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _builtin("", "v1", "Secret", "secrets", True),
    _builtin("", "v1", "Service", "services", True, ("svc",), ("all",), ("status",)),
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    _builtin("", "v1", "Event", "events", True, ("ev",)),
    _builtin("", "v1", "Pod", "pods", True, ("po",), ("all",), ("status",)),
    _builtin("", "v1", "Node", "nodes", False, ("no",), (), ("status",)),
    _builtin("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",), ("status", "scale")),
    _builtin("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",), ("status", "scale")),
    _builtin("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",), ("status", "scale")),
    _builtin("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",), ("status",)),
    _builtin("batch", "v1", "Job", "jobs", True, (), ("all",), ("status",)),
    _builtin("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("all",), ("status",)),
    _builtin("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), (), ("status",)),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases", True),
    _builtin("events.k8s.io", "v1", "Event", "events", True, ("ev",)),
    _builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        ("api-extensions",),
        ("status",),
    ),
)
