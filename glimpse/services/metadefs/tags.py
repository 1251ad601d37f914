"""Metadef tags: plain names a namespace suggests for tagging resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import MetadefNamespace, MetadefTag, utcnow
from glimpse.runtime import Runtime
from glimpse.schemas import metadefs as schemas
from glimpse.services.access import require_writable_context
from glimpse.services.metadefs import access, events, paging
from glimpse.services.metadefs.records import NamespaceRecord, TagRecord
from glimpse.services.validation import check_text

SORT_KEYS = ("created_at", "updated_at", "name")


def not_found(name: str, namespace: str) -> errors.NotFound:
    return errors.NotFound(
        f"The metadata definition tag with name={name} was not found in namespace={namespace}."
    )


def duplicate(name: str, namespace: str) -> errors.Duplicate:
    return errors.Duplicate(
        f"A metadata tag with name={name} already exists in namespace={namespace}."
    )


def find(session: Session, namespace: MetadefNamespace, name: str) -> MetadefTag | None:
    return session.scalars(
        select(MetadefTag).where(MetadefTag.namespace_id == namespace.id, MetadefTag.name == name)
    ).first()


def _get(session: Session, namespace: MetadefNamespace, name: str) -> MetadefTag:
    row = find(session, namespace, name)
    if row is None:
        raise not_found(name, namespace.namespace)
    return row


def add(session: Session, namespace: MetadefNamespace, name: str) -> MetadefTag:
    """Add one tag (no access checks); 409 if the namespace has it already."""
    if find(session, namespace, name) is not None:
        raise duplicate(name, namespace.namespace)
    now = utcnow()
    row = MetadefTag(namespace=namespace, name=name, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def replace_all(
    session: Session, namespace: MetadefNamespace, names: Sequence[str]
) -> list[MetadefTag]:
    """Make ``names`` the namespace's tags, dropping the others (no access checks)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise duplicate(name, namespace.namespace)
        seen.add(name)
    namespace.tags.clear()
    session.flush()
    return [add(session, namespace, name) for name in names]


def list_tags(
    rt: Runtime, context: RequestContext, namespace: str, params: Sequence[tuple[str, str]]
) -> list[TagRecord]:
    """A namespace's tags, newest first unless ``sort_key``/``sort_dir`` say otherwise;
    ``limit`` and ``marker`` (a tag name) page through them."""
    page = paging.parse(rt, params, SORT_KEYS, default_limit=False)
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace)
        rt.policy.enforce(context, "get_metadef_tags", access.policy_target(ns))
        keys = _sort_columns(page.sort_key)
        query = select(MetadefTag).where(MetadefTag.namespace_id == ns.id)
        if page.marker is not None:
            marker = _get(session, ns, page.marker)
            query = query.where(
                paging.after(keys, _sort_values(marker, page.sort_key), page.sort_dir)
            )
        query = query.order_by(*paging.order_by(keys, page.sort_dir))
        if page.limit is not None:
            query = query.limit(page.limit)
        return [TagRecord.of(row) for row in session.scalars(query)]


def _sort_columns(sort_key: str) -> list[paging.SortColumn]:
    """The sort key, then ``created_at`` and the id to break ties."""
    keys: list[paging.SortColumn] = [MetadefTag.created_at, MetadefTag.id]
    if sort_key == "updated_at":
        keys.insert(0, func.coalesce(MetadefTag.updated_at, MetadefTag.created_at))
    elif sort_key == "name":
        keys.insert(0, MetadefTag.name)
    return keys


def _sort_values(row: MetadefTag, sort_key: str) -> list[Any]:
    """``row``'s values for :func:`_sort_columns`."""
    values: list[Any] = [row.created_at, row.id]
    if sort_key == "updated_at":
        values.insert(0, row.updated_at or row.created_at)
    elif sort_key == "name":
        values.insert(0, row.name)
    return values


def show(rt: Runtime, context: RequestContext, namespace: str, name: str) -> TagRecord:
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace)
        rt.policy.enforce(context, "get_metadef_tag", access.policy_target(ns))
        return TagRecord.of(_get(session, ns, name))


def create(rt: Runtime, context: RequestContext, namespace: str, name: str) -> TagRecord:
    """Add the tag ``name`` to a namespace the caller owns."""
    require_writable_context(context)
    schemas.validate("tag", {"name": name})
    check_text(name, "Metadata definition tag")
    with access.writing(rt, duplicate(name, namespace).message) as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "add_metadef_tag", access.policy_target(ns))
        access.require_modify(context, ns, f"create tags in namespace {namespace}")
        record = TagRecord.of(add(session, ns, name))
    events.emit(rt, context, "metadef_tag.create", events.tag_payload(record))
    return record


def create_many(rt: Runtime, context: RequestContext, namespace: str, body: Any) -> list[TagRecord]:
    """Rocky's bulk create: the listed tags REPLACE all existing ones.

    An empty list changes nothing, as in Rocky (which only replaced when given tags).
    """
    require_writable_context(context)
    schemas.validate("tags", body)
    check_text(body, "Metadata definition tag")
    names = [item["name"] for item in body.get("tags") or []]
    with access.writing(rt, f"Metadata tags of namespace={namespace} conflict.") as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "add_metadef_tags", access.policy_target(ns))
        access.require_modify(context, ns, f"create tags in namespace {namespace}")
        if not names:
            return []
        records = [TagRecord.of(row) for row in replace_all(session, ns, names)]
    for record in records:
        events.emit(rt, context, "metadef_tag.create", events.tag_payload(record))
    return records


def update(rt: Runtime, context: RequestContext, namespace: str, name: str, body: Any) -> TagRecord:
    """Rename a tag."""
    require_writable_context(context)
    schemas.validate("tag", body)
    check_text(body, "Metadata definition tag")
    new_name = body["name"]
    with access.writing(rt, duplicate(new_name, namespace).message) as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "modify_metadef_tag", access.policy_target(ns))
        row = _get(session, ns, name)
        access.require_modify(context, ns, f"modify tags in namespace {namespace}")
        if new_name != name and find(session, ns, new_name) is not None:
            raise duplicate(new_name, namespace)
        row.name = new_name
        row.updated_at = utcnow()
        session.flush()
        record = TagRecord.of(row)
    events.emit(rt, context, "metadef_tag.update", events.tag_payload(record, old_name=name))
    return record


def delete(rt: Runtime, context: RequestContext, namespace: str, name: str) -> None:
    require_writable_context(context)
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "delete_metadef_tag", access.policy_target(ns))
        row = _get(session, ns, name)
        access.require_modify(context, ns, f"delete tags in namespace {namespace}")
        access.require_unprotected(ns, f"Metadata definition tag {name}")
        record = TagRecord.of(row)
        session.delete(row)
    events.emit(rt, context, "metadef_tag.delete", events.tag_payload(record, deleted=True))


def delete_all(rt: Runtime, context: RequestContext, namespace: str) -> None:
    """Remove every tag of a namespace."""
    require_writable_context(context)
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "delete_metadef_tags", access.policy_target(ns))
        access.require_modify(context, ns, f"delete tags in namespace {namespace}")
        access.require_unprotected(ns, f"Metadata definition namespace {namespace}")
        ns.tags.clear()
        session.flush()
        record = NamespaceRecord.of(ns)
    payload = events.namespace_payload(record)
    events.emit(rt, context, "metadef_namespace.delete_tags", payload)
