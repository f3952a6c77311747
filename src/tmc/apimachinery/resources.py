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


def builtin_resource(
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
    builtin_resource("", "v1", "Namespace", "namespaces", False, ("ns",), (), ("status", "finalize")),
    builtin_resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    builtin_resource("", "v1", "Secret", "secrets", True),
    builtin_resource("", "v1", "Service", "services", True, ("svc",), ("all",), ("status",)),
    builtin_resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    builtin_resource("", "v1", "Event", "events", True, ("ev",)),
    builtin_resource("", "v1", "Pod", "pods", True, ("po",), ("all",), ("status",)),
    builtin_resource("", "v1", "Node", "nodes", False, ("no",), (), ("status",)),
    builtin_resource("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",), ("status", "scale")),
    builtin_resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",), ("status", "scale")),
    builtin_resource("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",), ("status", "scale")),
    builtin_resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",), ("status",)),
    builtin_resource("batch", "v1", "Job", "jobs", True, (), ("all",), ("status",)),
    builtin_resource("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("all",), ("status",)),
    builtin_resource("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), (), ("status",)),
    builtin_resource("coordination.k8s.io", "v1", "Lease", "leases", True),
    builtin_resource("events.k8s.io", "v1", "Event", "events", True, ("ev",)),
    builtin_resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    builtin_resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    builtin_resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    builtin_resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    builtin_resource(
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
