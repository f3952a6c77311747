"""Object operations with Kubernetes semantics (create, update, patch, delete, scale), independent of HTTP.

The HTTP handlers and the in-process controllers both go through this layer, so every write gets the same
metadata rules, validation, finalizer handling and dry-run behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tmc.api.tenancy import GROUP as TENANCY_GROUP
from tmc.apimachinery import errors, meta
from tmc.apimachinery.fieldpath import object_type
from tmc.apimachinery.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.observability import tracing
from tmc.registry import applier, bodies, managedfields
from tmc.registry.admission import admit, decode, field_decoder
from tmc.registry.contention import Turn, Turns
from tmc.registry.deleteoptions import check_deletable_namespace, check_delete_options
from tmc.registry.resources import CRDS, ResourceRegistry
from tmc.registry.strategies import apply_strategy
from tmc.storage.interface import ConflictError, Entry, KeyExistsError, KeyNotFoundError, Store

MAX_OBJECT_BYTES = 1_572_864  # 1.5 MiB, the largest object a default etcd accepts
NAMESPACES = next(r for r in BUILTIN_RESOURCES if r.group == "" and r.plural == "namespaces")
_GENERATION_GROUPS = {"apps", "batch", "networking.k8s.io", "apiextensions.k8s.io", "policy"}
_TMC_GROUPS = {TENANCY_GROUP, "workload.kcp.io", "scheduling.kcp.io", "tmc.kcp.io"}
_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_UPDATE_ATTEMPTS = 8

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Strict"  # Strict | Warn | Ignore
    field_manager: str = ""
    user: str = ""  # the authenticated user, for write hooks (revision authors); not stored on the object
    force: bool | None = None  # apply only: take fields other managers own
    warnings: list[str] = field(default_factory=list)
    # The caller hands the body over (an HTTP request's freshly decoded body): create and update may change it in
    # place instead of taking a defensive deep copy first. Update changes only its top level and `metadata` before
    # it copies, so a body that is a new top level and metadata over shared nested values qualifies too.
    body_owned: bool = False


class _Retry(Exception):
    """An unconditional write lost a race; read again (once pending_rev is committed) and retry."""

    def __init__(self, pending_rev: int = 0) -> None:
        super().__init__()
        self.pending_rev = pending_rev


def tracks_generation(info: ResourceInfo) -> bool:
    return info.crd or info.group in _GENERATION_GROUPS or info.group in _TMC_GROUPS


class ObjectService:
    def __init__(self, store: Store, registry: ResourceRegistry) -> None:
        self.store = store
        self.registry = registry
        self._turns = Turns()  # unconditional writers of one object that collided take turns (contention.py)
        # Where clients reach this server; Workspaces report their URL under it.
        self.external_url = ""
        # (group, plural) -> what a server-side dry run of a create or update answers instead of the object as it
        # would be stored: (workspace, object) -> object. The placement scheduler registers its simulation here.
        self.dry_run_views: dict[tuple[str, str], Callable[[str, dict[str, Any]], dict[str, Any]]] = {}
        # (group, kind) -> more value rules for spec writes, from a package this layer cannot import (the canary
        # controller registers its analysis engine's check): object -> 422 causes.
        self.validators: dict[tuple[str, str], Callable[[dict[str, Any]], list[dict[str, str]]]] = {}
        # Called before a create or update (not of a subresource) is validated and stored: (resource, options, old
        # object or None, new object), and may change the new object. The rollback controller stamps who changed a
        # pod template or ConfigMap/Secret content on the object here, in the same write, so it survives restarts.
        self.stamp_hooks: list[Callable[[ResourceInfo, WriteOptions, dict[str, Any] | None, dict[str, Any]], None]] = []

    # ---------------------------------------------------------------- reads

    def get(self, info: ResourceInfo, cluster: str, namespace: str | None, name: str) -> Entry:
        entry = self.store.get(info.key(cluster, namespace, name))
        if entry is None:
            raise errors.not_found(info.plural, name, info.group)
        return entry

    async def _lost_race(self, retry: _Retry, turn: Turn, info: ResourceInfo, name: str, pinned: str = "") -> None:
        """Another write of the object won. A writer that named a resourceVersion gets its 409; the others let the
        queued winner commit (or the retry would read the same state) and then take their turn."""
        if pinned:
            raise errors.conflict(info.plural, name, info.group) from None
        if retry.pending_rev:
            await self.store.wait_for_rev(retry.pending_rev, 5.0)
        await turn.take()

    def served(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """The stored object as the requested version presents it (CRD versions share one storage form)."""
        if obj.get("apiVersion") == info.api_version:
            return obj
        out = dict(obj)
        out["apiVersion"] = info.api_version
        return out

    # ---------------------------------------------------------------- create

    async def create(
        self,
        info: ResourceInfo,
        cluster: str,
        namespace: str | None,
        body: Any,
        opts: WriteOptions,
        *,
        managed: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """`managed`: the managedFields an apply worked out; a plain create records an Update by its manager."""
        obj = self._decode(info, body, namespace, None, opts.body_owned)
        decode(info, obj, opts)
        md = obj["metadata"]
        requested = managedfields.requested_from(md)
        for key in (*_SERVER_OWNED, "resourceVersion", "selfLink", "managedFields"):
            md.pop(key, None)
        generated = not md.get("name") and bool(md.get("generateName"))
        if generated:
            md["name"] = meta.generate_name(str(md["generateName"]))
        if info.namespaced:
            self._check_namespace_open(info, cluster, str(namespace), str(md.get("name", "")))
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = meta.now_rfc3339()
        if tracks_generation(info):
            md["generation"] = 1
        if "status" in info.subresources and info.kind != "Namespace":
            obj.pop("status", None)
        apply_strategy(info.group, info.kind, obj, None, cluster)
        for hook in self.stamp_hooks:
            hook(info, opts, None, obj)
        if info.group == TENANCY_GROUP and info.kind == "Workspace" and self.external_url:
            obj["spec"]["URL"] = f"{self.external_url}/clusters/{obj['spec']['cluster']}"
        admit(info, obj, None, opts)
        self._validate_more(info, obj)
        if managed is None:
            base = managedfields.requested_entries(requested, [])
            managed = managedfields.record_update(
                info, object_type(info.schema), None, obj, opts.field_manager, "", base, md["creationTimestamp"]
            )
        managedfields.set_entries(obj, managed)
        if tracing.enabled:
            tracing.record_on(obj)
        self._check_size(obj)
        name = str(md["name"])
        key = info.key(cluster, namespace, name)
        if opts.dry_run:
            if self.store.get(key) is not None:
                raise errors.already_exists(info.plural, name, info.group)
            return self._dry_run_view(info, cluster, obj)
        for _ in range(5 if generated else 1):
            try:
                entry = await self.store.create(key, obj)
                break
            except KeyExistsError:
                if not generated:
                    raise errors.already_exists(info.plural, name, info.group) from None
                md["name"] = name = meta.generate_name(str(md["generateName"]))
                key = info.key(cluster, namespace, name)
        else:
            raise errors.already_exists(info.plural, name, info.group)
        await self._after_create(info, cluster, entry.obj)
        return entry.obj

    def _validate_more(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        rule = None if info.crd else self.validators.get((info.group, info.kind))
        causes = rule(obj) if rule is not None else []
        if causes:
            raise errors.invalid(info.kind, str(obj.get("metadata", {}).get("name", "")), causes, info.group)

    def _dry_run_view(self, info: ResourceInfo, cluster: str, obj: dict[str, Any]) -> dict[str, Any]:
        view = self.dry_run_views.get((info.group, info.plural))
        return obj if view is None else view(cluster, obj)

    async def _after_create(self, info: ResourceInfo, cluster: str, obj: dict[str, Any]) -> None:
        if info is CRDS or (info.group, info.plural) == (CRDS.group, CRDS.plural):
            self.registry.invalidate(cluster)
        elif info.group == TENANCY_GROUP and info.kind == "Workspace":
            child = obj["spec"]["cluster"]
            await self.ensure_namespace(child, "default")

    async def ensure_namespace(self, cluster: str, name: str) -> None:
        if self.store.get(NAMESPACES.key(cluster, None, name)) is None:
            try:
                await self.create(NAMESPACES, cluster, None, {"metadata": {"name": name}}, WriteOptions())
            except errors.StatusError as e:
                if e.code != 409:
                    raise

    def _check_namespace_open(self, info: ResourceInfo, cluster: str, namespace: str, name: str) -> None:
        ns = self.store.get(NAMESPACES.key(cluster, None, namespace))
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if ns.obj.get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden(
                f'{info.qualified} "{name}" is forbidden: unable to create new content in namespace {namespace} '
                "because it is being terminated"
            )

    # ---------------------------------------------------------------- update / patch

    async def update(
        self,
        info: ResourceInfo,
        cluster: str,
        namespace: str | None,
        name: str,
        body: Any,
        opts: WriteOptions,
        subresource: str = "",
    ) -> dict[str, Any]:
        if subresource == "scale":
            return await self._update_scale(info, cluster, namespace, name, body, opts)
        new = self._decode(info, body, namespace, name, opts.body_owned)
        decode(info, new, opts)
        wanted_rv = str(new["metadata"].get("resourceVersion") or "")
        async with self._turns.of(info.key(cluster, namespace, name)) as turn:
            for _ in range(_UPDATE_ATTEMPTS):
                entry = self.get(info, cluster, namespace, name)
                if wanted_rv and wanted_rv != str(entry.rev):
                    raise errors.conflict(info.plural, name, info.group)
                try:
                    return await self._write_update(info, cluster, entry, meta.deep_copy(new), opts, subresource)
                except _Retry as retry:
                    await self._lost_race(retry, turn, info, name, wanted_rv)
            raise errors.conflict(info.plural, name, info.group)

    async def patch(
        self,
        info: ResourceInfo,
        cluster: str,
        namespace: str | None,
        name: str,
        content_type: str,
        body: bytes,
        opts: WriteOptions,
        subresource: str = "",
    ) -> dict[str, Any]:
        applier.check_options(opts, content_type == APPLY_PATCH)
        if content_type == APPLY_PATCH:
            return await self._apply(info, cluster, namespace, name, body, opts, subresource)
        if content_type == STRATEGIC_PATCH and info.crd:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}"
            )
        if content_type not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
            raise errors.unsupported_media_type(
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH}, {APPLY_PATCH}"
            )
        patch = bodies.decode_patch(body, content_type == JSON_PATCH)
        pinned_rv = bodies.pinned_resource_version(patch)
        async with self._turns.of(info.key(cluster, namespace, name)) as turn:
            for _ in range(_UPDATE_ATTEMPTS):
                entry = self.get(info, cluster, namespace, name)
                if pinned_rv and pinned_rv != str(entry.rev):
                    raise errors.conflict(info.plural, name, info.group)
                base = self.scale_of(info, entry) if subresource == "scale" else self.served(info, entry.obj)
                patched = self._apply_patch(info, base, content_type, patch, subresource)
                if subresource == "scale":
                    patched = bodies.check_patched_scale(patched, patch, opts, name)
                else:
                    patched = bodies.check_patched(
                        field_decoder(info), patched, patch, opts, kind=info.kind, version=info.version, name=name,
                        group=info.group,
                    )  # fmt: skip
                try:
                    if subresource == "scale":
                        return await self._write_scale(info, cluster, entry, patched, opts)
                    self._check_identity(info, patched, entry.obj)
                    return await self._write_update(info, cluster, entry, patched, opts, subresource)
                except _Retry as retry:
                    await self._lost_race(retry, turn, info, name, pinned_rv)
            raise errors.conflict(info.plural, name, info.group)

    async def _apply(
        self,
        info: ResourceInfo,
        cluster: str,
        namespace: str | None,
        name: str,
        body: bytes,
        opts: WriteOptions,
        subresource: str,
    ) -> dict[str, Any]:
        """Server-side apply: create the object when it is missing, else merge, prune and check conflicts."""
        if subresource not in ("", "status"):
            raise errors.unsupported_media_type(f"apply is not supported on the {subresource} subresource")
        config = applier.check_config(info, body, namespace, name, opts)
        pinned_rv = bodies.pinned_resource_version(config)
        t = object_type(info.schema)
        pristine = orjson.dumps(config)  # the merge takes the configuration's values over: retries start afresh
        async with self._turns.of(info.key(cluster, namespace, name)) as turn:
            for attempt in range(_UPDATE_ATTEMPTS):
                entry = self.store.get(info.key(cluster, namespace, name))
                fresh = config if attempt == 0 else orjson.loads(pristine)
                if entry is None:
                    if subresource or pinned_rv:
                        raise errors.not_found(info.plural, name, info.group)
                    done = managedfields.apply(info, t, None, fresh, opts.field_manager, "", bool(opts.force))
                    try:
                        return await self.create(info, cluster, namespace, done.obj, opts, managed=done.entries)
                    except errors.StatusError as e:
                        if e.code != 409 or e.reason != "AlreadyExists":
                            raise
                        continue  # created meanwhile: apply onto it
                if pinned_rv and pinned_rv != str(entry.rev):
                    raise errors.conflict(info.plural, name, info.group)
                live = self.served(info, entry.obj)
                done = managedfields.apply(info, t, live, fresh, opts.field_manager, subresource, bool(opts.force))
                try:
                    return await self._write_update(
                        info, cluster, entry, done.obj, opts, subresource, managed=done.entries
                    )
                except _Retry as retry:
                    await self._lost_race(retry, turn, info, name, pinned_rv)
            raise errors.conflict(info.plural, name, info.group)

    def _apply_patch(
        self, info: ResourceInfo, base: dict[str, Any], content_type: str, patch: Any, subresource: str
    ) -> Any:
        if content_type == JSON_PATCH:
            return apply_json_patch(base, patch)
        if content_type == MERGE_PATCH:
            return apply_merge_patch(base, patch)
        schema = None if subresource == "scale" else info.schema
        return apply_strategic_merge_patch(base, patch, schema)

    def _check_identity(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> None:
        md, old_md = new.get("metadata") or {}, old.get("metadata") or {}
        if md.get("name") != old_md.get("name"):
            raise errors.invalid(
                info.kind,
                str(old_md.get("name")),
                [{"type": "FieldValueInvalid", "field": "metadata.name", "message": "field is immutable"}],
                info.group,
            )

    async def _write_update(
        self,
        info: ResourceInfo,
        cluster: str,
        entry: Entry,
        new: dict[str, Any],
        opts: WriteOptions,
        subresource: str,
        *,
        managed: list[dict[str, Any]] | None = None,
        managed_sub: str | None = None,
    ) -> dict[str, Any]:
        """`managed`: the managedFields an apply worked out; other writes record an Update by their manager
        (`managed_sub` names the subresource an entry records when it is not `subresource`, e.g. scale)."""
        old = entry.obj
        result = self._merge_update(info, old, new, subresource)
        apply_strategy(info.group, info.kind, result, old, cluster)
        if not subresource:
            for hook in self.stamp_hooks:
                hook(info, opts, old, result)
        admit(info, result, old, opts)
        if not subresource:
            self._validate_more(info, result)
        old_md, md = old["metadata"], result["metadata"]
        if tracks_generation(info) and meta.spec_part(result) != meta.spec_part(old):
            md["generation"] = int(old_md.get("generation", 1)) + 1
        md["resourceVersion"] = str(entry.rev)
        if managed is None:
            live = managedfields.live_entries(old)
            base = live if subresource else managedfields.requested_entries(managedfields.requested_from(md), live)
            sub = subresource if managed_sub is None else managed_sub
            managed = managedfields.record_update(
                info, object_type(info.schema), old, result, opts.field_manager, sub, base
            )
        managedfields.set_entries(result, managed)
        if result == old and not (opts.dry_run and not subresource):
            return old  # a no-op write changes nothing, not even the resourceVersion
        if tracing.enabled and not subresource:
            # Spec writes only: a status or finalize write leaves the trace of the write that changed the object.
            tracing.record_on(result)
        self._check_size(result)
        finished = self._deletion_finished(result)
        if opts.dry_run:
            return result if subresource else self._dry_run_view(info, cluster, result)
        try:
            updated = await self.store.update(entry.key, result, expected_rev=entry.rev)
        except (ConflictError, KeyNotFoundError) as e:
            raise _Retry(e.pending_rev) from None
        if finished:
            try:
                await self.store.delete(entry.key, expected_rev=updated.rev)
            except (ConflictError, KeyNotFoundError):
                pass  # someone else wrote or deleted it since: their write decides
        if (info.group, info.plural) == (CRDS.group, CRDS.plural):
            self.registry.invalidate(cluster)
        return updated.obj

    def _merge_update(
        self, info: ResourceInfo, old: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        if subresource == "finalize":
            result = meta.deep_copy(old)
            result.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
            return result
        if subresource == "status":
            result = meta.deep_copy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            return result
        result = new
        result["apiVersion"] = old.get("apiVersion", info.api_version)
        result["kind"] = info.kind
        md, old_md = result["metadata"], old["metadata"]
        for key in (*_SERVER_OWNED, "name", "namespace"):
            if key in old_md:
                md[key] = old_md[key]
            else:
                md.pop(key, None)
        if "status" in info.subresources or info.kind == "Namespace":
            if "status" in old:
                result["status"] = old["status"]
            else:
                result.pop("status", None)
        if old_md.get("deletionTimestamp"):
            added = sorted(set(md.get("finalizers") or []) - set(old_md.get("finalizers") or []))
            if added:
                raise errors.invalid(
                    info.kind,
                    str(old_md.get("name")),
                    [
                        {
                            "type": "FieldValueForbidden",
                            "field": "metadata.finalizers",
                            "message": "Forbidden: no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers {added}",
                        }
                    ],
                    info.group,
                )
        return result

    def _deletion_finished(self, obj: dict[str, Any]) -> bool:
        md = obj["metadata"]
        if not md.get("deletionTimestamp") or md.get("finalizers"):
            return False
        return not (obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"))

    # ---------------------------------------------------------------- scale

    def scale_of(self, info: ResourceInfo, entry: Entry) -> dict[str, Any]:
        if "scale" not in info.subresources:
            raise errors.not_found(f"{info.plural}/scale", str(entry.obj["metadata"].get("name")), info.group)
        return bodies.scale_of(info, entry.obj)

    async def _update_scale(
        self, info: ResourceInfo, cluster: str, namespace: str | None, name: str, body: Any, opts: WriteOptions
    ) -> dict[str, Any]:
        body = bodies.decode_scale(body, opts)
        wanted_rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
        async with self._turns.of(info.key(cluster, namespace, name)) as turn:
            for _ in range(_UPDATE_ATTEMPTS):
                entry = self.get(info, cluster, namespace, name)
                if wanted_rv and wanted_rv != str(entry.rev):
                    raise errors.conflict(f"{info.plural}", name, info.group)
                try:
                    return await self._write_scale(info, cluster, entry, body, opts)
                except _Retry as retry:
                    await self._lost_race(retry, turn, info, name, wanted_rv)
            raise errors.conflict(info.plural, name, info.group)

    async def _write_scale(
        self, info: ResourceInfo, cluster: str, entry: Entry, scale: dict[str, Any], opts: WriteOptions
    ) -> dict[str, Any]:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale",
                str(entry.obj["metadata"].get("name")),
                [
                    {
                        "type": "FieldValueInvalid",
                        "field": "spec.replicas",
                        "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                    }
                ],
                "autoscaling",
            )
        new = meta.deep_copy(entry.obj)
        path = info.scale_paths.get("specReplicasPath", ".spec.replicas") if info.crd else ".spec.replicas"
        bodies.write_path(new, path, replicas)
        result = await self._write_update(info, cluster, entry, new, opts, "", managed_sub="scale")
        current = self.store.get(entry.key)
        return self.scale_of(
            info, current if current and not opts.dry_run else Entry(entry.key, entry.rev, result, b"")
        )

    # ---------------------------------------------------------------- delete

    async def delete(
        self,
        info: ResourceInfo,
        cluster: str,
        namespace: str | None,
        name: str,
        options: dict[str, Any],
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Returns (body, gone): the object still being finalized, or a Success Status once it is removed."""
        check_delete_options(options)
        async with self._turns.of(info.key(cluster, namespace, name)) as turn:
            for _ in range(_UPDATE_ATTEMPTS):
                entry = self.get(info, cluster, namespace, name)
                if info is NAMESPACES or (info.group, info.plural) == ("", "namespaces"):
                    check_deletable_namespace(name)
                try:
                    return await self._delete_once(info, cluster, entry, options, dry_run)
                except _Retry as retry:
                    await self._lost_race(retry, turn, info, name)
            raise errors.conflict(info.plural, name, info.group)

    async def _delete_once(
        self, info: ResourceInfo, cluster: str, entry: Entry, options: dict[str, Any], dry_run: bool
    ) -> tuple[dict[str, Any], bool]:
        old = entry.obj
        old_md = old["metadata"]
        name = str(old_md.get("name"))
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old_md.get("uid"):
            raise errors.conflict(
                info.plural,
                name,
                info.group,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {old_md.get('uid')}",
            )
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(entry.rev):
            raise errors.conflict(
                info.plural,
                name,
                info.group,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {entry.rev}",
            )
        policy = options.get("propagationPolicy")
        if not policy and options.get("orphanDependents") is True:
            policy = "Orphan"
        finalizers = list(old_md.get("finalizers") or [])
        if policy == "Orphan" and "orphan" not in finalizers and not old_md.get("deletionTimestamp"):
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers and not old_md.get("deletionTimestamp"):
            finalizers.append("foregroundDeletion")
        ns_pending = info.kind == "Namespace" and not info.group and bool((old.get("spec") or {}).get("finalizers"))
        if finalizers or ns_pending:
            if old_md.get("deletionTimestamp") and finalizers == list(old_md.get("finalizers") or []):
                return self.served(info, old), False
            obj = meta.deep_copy(old)
            md = obj["metadata"]
            md.setdefault("deletionTimestamp", meta.now_rfc3339())
            md.setdefault("deletionGracePeriodSeconds", 0)
            if finalizers:
                md["finalizers"] = finalizers
            if info.kind == "Namespace" and not info.group:
                obj.setdefault("status", {})["phase"] = "Terminating"
            if dry_run:
                return self.served(info, obj), False
            try:
                updated = await self.store.update(entry.key, obj, expected_rev=entry.rev)
            except (ConflictError, KeyNotFoundError) as e:
                raise _Retry(e.pending_rev) from None
            return self.served(info, updated.obj), False
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": info.group, "kind": info.plural, "uid": old_md.get("uid")},
        }
        if dry_run:
            return status, True
        if (info.group, info.plural) == (CRDS.group, CRDS.plural):
            await self._delete_custom_resources(cluster, old)
        try:
            await self.store.delete(entry.key, expected_rev=entry.rev)
        except (ConflictError, KeyNotFoundError) as e:
            raise _Retry(e.pending_rev) from None
        if (info.group, info.plural) == (CRDS.group, CRDS.plural):
            self.registry.invalidate(cluster)
        return status, True

    async def _delete_custom_resources(self, cluster: str, crd: dict[str, Any]) -> None:
        """Deleting a CRD deletes every object of its kind in the workspace (upstream's cleanup finalizer)."""
        spec = crd.get("spec") or {}
        prefix = f"/registry/{spec.get('group')}/{(spec.get('names') or {}).get('plural')}/{cluster}/"
        for entry in list(self.store.list(prefix)):
            try:
                await self.store.delete(entry.key, expected_rev=None)
            except KeyNotFoundError:
                pass

    # ---------------------------------------------------------------- helpers

    def _decode(
        self, info: ResourceInfo, body: Any, namespace: str | None, name: str | None, owned: bool = False
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request must be a {info.kind} object")
        obj = body if owned else meta.deep_copy(body)
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version is not None and api_version != info.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({info.api_version})"
            )
        if kind is not None and kind != info.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind
        md = obj.get("metadata")
        if md is None:
            md = obj["metadata"] = {}
        if not isinstance(md, dict):
            raise errors.bad_request(f"{info.kind}.metadata must be an object")
        if info.namespaced:
            if md.get("namespace") and md["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        if name is not None and md.get("name") not in (None, "", name):
            raise errors.bad_request("the name of the object does not match the name on the URL")
        if name is not None:
            md["name"] = name
        return obj

    def _check_size(self, obj: dict[str, Any]) -> None:
        try:
            size = len(orjson.dumps(obj))
        except orjson.JSONEncodeError as e:  # nested deeper than 254 levels, or an integer beyond 64 bits
            raise errors.bad_request(f"the object cannot be stored: {e}") from None
        if size > MAX_OBJECT_BYTES:
            raise errors.too_large(f"object is too large: {size} bytes, the limit is {MAX_OBJECT_BYTES} bytes")
