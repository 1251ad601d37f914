"""Metadef namespaces: create (with everything they define), list, show, update, delete."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import (
    MetadefNamespace,
    MetadefNamespaceResourceType,
    MetadefResourceType,
    utcnow,
)
from glimpse.runtime import Runtime
from glimpse.schemas import metadefs as schemas
from glimpse.services.access import require_writable_context
from glimpse.services.metadefs import (
    access,
    events,
    objects,
    paging,
    properties,
    resource_types,
    tags,
)
from glimpse.services.metadefs.records import NamespaceDetail, NamespaceRecord
from glimpse.services.validation import check_text

SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "visibility", "owner")
_NULLABLE_SORT_KEYS = ("display_name", "owner")


@dataclasses.dataclass(frozen=True)
class NamespacePage:
    namespaces: list[NamespaceRecord]
    first: str
    next: str | None


def duplicate(name: str) -> errors.Duplicate:
    return errors.Duplicate(f"The metadata definition namespace={name} already exists.")


def _require_names(items: Sequence[Any], what: str, extra: Sequence[str] = ()) -> None:
    """Nested definitions need a name of at most 80 characters (the schema for a namespace
    does not say so; each item's own endpoint does)."""
    for item in items:
        name = item.get("name")
        if not isinstance(name, str):
            raise errors.BadRequest(f"Each {what} needs a 'name'.")
        for key in ("name", *extra):
            value = item.get(key)
            if isinstance(value, str) and len(value) > schemas.NAME_MAX:
                raise errors.BadRequest(
                    f"The {key} of {what} '{name[:40]}' is longer than "
                    f"{schemas.NAME_MAX} characters."
                )


def check_definition(body: Any) -> None:
    """Validate a namespace definition as create (and a definitions loader) accepts it."""
    schemas.validate("namespace", body)
    check_text(body, "Metadata definition namespace")
    _require_names(body.get("objects") or [], "object")
    _require_names(body.get("tags") or [], "tag")
    _require_names(
        body.get("resource_type_associations") or [],
        "resource type association",
        extra=("prefix", "properties_target"),
    )
    for name in body.get("properties") or {}:
        if len(name) > schemas.NAME_MAX:
            raise errors.BadRequest(
                f"Property name '{name[:40]}...' is longer than {schemas.NAME_MAX} characters."
            )


def _exists(session: Session, name: str) -> bool:
    query = select(MetadefNamespace.id).where(MetadefNamespace.namespace == name)
    return session.scalars(query).first() is not None


def insert(session: Session, body: dict[str, Any], owner: str | None) -> MetadefNamespace:
    """Store a checked namespace definition with its associations, objects, tags and
    properties (no access checks); 409 if the namespace or any item in it repeats."""
    name = body["namespace"]
    if _exists(session, name):
        raise duplicate(name)
    now = utcnow()
    namespace = MetadefNamespace(
        namespace=name,
        display_name=body.get("display_name"),
        description=body.get("description"),
        visibility=body.get("visibility", "private"),
        protected=bool(body.get("protected", False)),
        owner=owner,
        created_at=now,
        updated_at=now,
    )
    session.add(namespace)
    session.flush()
    for association in body.get("resource_type_associations") or []:
        resource_types.associate(session, namespace, association)
    for obj in body.get("objects") or []:
        objects.add(session, namespace, obj)
    for tag in body.get("tags") or []:
        tags.add(session, namespace, tag["name"])
    for prop_name, definition in (body.get("properties") or {}).items():
        properties.add(session, namespace, prop_name, definition)
    return namespace


def create(rt: Runtime, context: RequestContext, body: Any) -> NamespaceDetail:
    """Create a namespace, and whatever it defines, in one transaction."""
    require_writable_context(context)
    check_definition(body)
    owner = body.get("owner", context.owner)
    if not context.is_admin and (owner is None or owner != context.owner):
        raise errors.Forbidden(f"You are not permitted to create namespace owned by '{owner}'")
    target = {
        "namespace": body["namespace"],
        "owner": owner,
        "project_id": owner,
        "visibility": body.get("visibility", "private"),
        "protected": bool(body.get("protected", False)),
    }
    rt.policy.enforce(context, "add_metadef_namespace", target)
    nested_rules = {
        "resource_type_associations": "add_metadef_resource_type_association",
        "objects": "add_metadef_object",
        "tags": "add_metadef_tag",
        "properties": "add_metadef_property",
    }
    for key, rule in nested_rules.items():
        if body.get(key):
            rt.policy.enforce(context, rule, target)
    with access.writing(rt, duplicate(body["namespace"]).message) as session:
        detail = NamespaceDetail.of(insert(session, body, owner))
    events.emit(rt, context, "metadef_namespace.create", events.namespace_payload(detail.namespace))
    return detail


def show(
    rt: Runtime, context: RequestContext, name: str, resource_type: str | None = None
) -> NamespaceDetail:
    """A namespace with everything it defines; with ``resource_type``, property names carry
    the prefix of the namespace's association with that resource type."""
    with rt.db.transaction() as session:
        namespace = access.load_namespace(session, context, name)
        rt.policy.enforce(context, "get_metadef_namespace", access.policy_target(namespace))
        detail = NamespaceDetail.of(namespace)
        if resource_type:
            association = resource_types.find_association(namespace, resource_type)
            if association is not None and association.prefix:
                detail = detail.with_prefix(association.prefix)
        return detail


def update(rt: Runtime, context: RequestContext, name: str, body: Any) -> NamespaceRecord:
    """Replace a namespace's own attributes (PUT); what it defines is left alone.

    As in Glance, an absent display name or description is cleared, and absent visibility
    and protection fall back to their defaults (private, unprotected). An absent owner keeps
    the current one; only an admin gives a namespace to another project.
    """
    require_writable_context(context)
    schemas.validate("namespace", body)
    check_text(body, "Metadata definition namespace")
    new_name = body["namespace"]
    with access.writing(rt, duplicate(new_name).message) as session:
        namespace = access.load_namespace(session, context, name, for_update=True)
        rt.policy.enforce(context, "modify_metadef_namespace", access.policy_target(namespace))
        access.require_modify(context, namespace, f"modify namespace {name}")
        owner = body.get("owner", namespace.owner)
        if owner != namespace.owner and not context.is_admin:
            raise errors.Forbidden("Owner can't be updated by non admin.")
        if new_name != name and _exists(session, new_name):
            raise duplicate(new_name)
        namespace.namespace = new_name
        namespace.display_name = body.get("display_name")
        namespace.description = body.get("description")
        namespace.visibility = body.get("visibility") or "private"
        namespace.protected = bool(body.get("protected", False))
        namespace.owner = owner
        namespace.updated_at = utcnow()
        session.flush()
        record = NamespaceRecord.of(namespace)
    payload = events.namespace_payload(record, old_name=name)
    events.emit(rt, context, "metadef_namespace.update", payload)
    return record


def delete(rt: Runtime, context: RequestContext, name: str) -> None:
    """Delete an unprotected namespace and everything it defines."""
    require_writable_context(context)
    with rt.db.transaction() as session:
        namespace = access.load_namespace(session, context, name, for_update=True)
        rt.policy.enforce(context, "delete_metadef_namespace", access.policy_target(namespace))
        access.require_modify(context, namespace, "delete this namespace")
        access.require_unprotected(namespace, f"Metadata definition namespace {name}")
        record = NamespaceRecord.of(namespace)
        session.delete(namespace)
    payload = events.namespace_payload(record, deleted=True)
    events.emit(rt, context, "metadef_namespace.delete", payload)


def list_namespaces(
    rt: Runtime, context: RequestContext, params: Sequence[tuple[str, str]]
) -> NamespacePage:
    """One page of the namespaces the caller sees.

    Query: ``limit``, ``marker`` (a namespace name), ``sort_key``, ``sort_dir``,
    ``visibility`` (public or private) and ``resource_types`` (comma separated: namespaces
    associated with any of them).
    """
    rt.policy.enforce(context, "get_metadef_namespaces", {"project_id": context.project_id})
    page = paging.parse(rt, params, SORT_KEYS, default_limit=True)
    conditions = [access.visible_clause(context)]
    visibility = paging.last(params, "visibility")
    if visibility:
        if visibility not in schemas.VISIBILITIES:
            raise errors.BadRequest(f"Invalid visibility value: {visibility}")
        conditions.append(MetadefNamespace.visibility == visibility)
    wanted = paging.last(params, "resource_types")
    if wanted:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        conditions.append(
            select(MetadefNamespaceResourceType.namespace_id)
            .join(MetadefResourceType)
            .where(
                MetadefNamespaceResourceType.namespace_id == MetadefNamespace.id,
                MetadefResourceType.name.in_(names),
            )
            .exists()
        )
    keys = _sort_columns(page.sort_key)
    with rt.db.transaction() as session:
        query = select(MetadefNamespace).where(*conditions)
        if page.marker is not None:
            marker = access.load_namespace(session, context, page.marker)
            values = _sort_values(marker, page.sort_key)
            query = query.where(paging.after(keys, values, page.sort_dir))
        query = query.order_by(*paging.order_by(keys, page.sort_dir))
        if page.limit is not None:
            query = query.limit(page.limit)
        found = [NamespaceRecord.of(row) for row in session.scalars(query)]
    kept = [(k, v) for k, v in params if k != "marker"]
    first = "/v2/metadefs/namespaces" + _query_string(kept)
    next_link = None
    if found and len(found) == page.limit:
        next_link = "/v2/metadefs/namespaces" + _query_string(
            [*kept, ("marker", found[-1].namespace)]
        )
    return NamespacePage(namespaces=found, first=first, next=next_link)


def _query_string(params: list[tuple[str, str]]) -> str:
    return "?" + urllib.parse.urlencode(params) if params else ""


def _sort_columns(sort_key: str) -> list[paging.SortColumn]:
    """The sort key, then ``created_at`` and the id to break ties; nulls sort as ''."""
    keys: list[paging.SortColumn] = [MetadefNamespace.created_at, MetadefNamespace.id]
    if sort_key == "created_at":
        return keys
    column: paging.SortColumn = getattr(MetadefNamespace, sort_key)
    if sort_key in _NULLABLE_SORT_KEYS:
        column = func.coalesce(column, "")
    elif sort_key == "updated_at":
        column = func.coalesce(column, MetadefNamespace.created_at)
    return [column, *keys]


def _sort_values(row: MetadefNamespace, sort_key: str) -> list[Any]:
    """``row``'s values for :func:`_sort_columns`."""
    values: list[Any] = [row.created_at, row.id]
    if sort_key == "created_at":
        return values
    value = getattr(row, sort_key)
    if value is None:
        value = row.created_at if sort_key == "updated_at" else ""
    return [value, *values]
