"""Metadef objects: named groups of property definitions inside a namespace."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import MetadefNamespace, MetadefObject, utcnow
from glimpse.runtime import Runtime
from glimpse.schemas import metadefs as schemas
from glimpse.services.access import require_writable_context
from glimpse.services.metadefs import access, events
from glimpse.services.metadefs.records import NamespaceRecord, ObjectRecord
from glimpse.services.validation import check_text, storable_text


def not_found(name: str, namespace: str) -> errors.NotFound:
    return errors.NotFound(
        f"The metadata definition object with name={name} was not found in namespace={namespace}."
    )


def duplicate(name: str, namespace: str) -> errors.Duplicate:
    return errors.Duplicate(
        f"A metadata definition object with name={name} already exists in namespace={namespace}."
    )


def find(session: Session, namespace: MetadefNamespace, name: str) -> MetadefObject | None:
    return session.scalars(
        select(MetadefObject).where(
            MetadefObject.namespace_id == namespace.id, MetadefObject.name == name
        )
    ).first()


def _get(session: Session, namespace: MetadefNamespace, name: str) -> MetadefObject:
    row = find(session, namespace, name)
    if row is None:
        raise not_found(name, namespace.namespace)
    return row


def assign(row: MetadefObject, definition: dict[str, Any]) -> None:
    """Make ``row`` what a schema-valid definition says (a PUT replaces everything)."""
    properties = definition.get("properties") or {}
    required = definition.get("required")
    description = definition.get("description")
    row.name = definition["name"]
    row.description = None if description is None else storable_text(description, "description")
    row.required = None if required is None else storable_text(json.dumps(required), "'required'")
    row.json_schema = storable_text(
        json.dumps({name: schemas.property_definition(p) for name, p in properties.items()}),
        "The object's properties",
    )


def add(session: Session, namespace: MetadefNamespace, definition: dict[str, Any]) -> MetadefObject:
    """Add an object from a schema-valid definition (no access checks); 409 if taken."""
    if find(session, namespace, definition["name"]) is not None:
        raise duplicate(definition["name"], namespace.namespace)
    now = utcnow()
    row = MetadefObject(namespace=namespace, created_at=now, updated_at=now)
    assign(row, definition)
    session.add(row)
    session.flush()
    return row


def list_objects(rt: Runtime, context: RequestContext, namespace: str) -> list[ObjectRecord]:
    """Every object of a namespace, oldest first (Glance ignores paging parameters here)."""
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace)
        rt.policy.enforce(context, "get_metadef_objects", access.policy_target(ns))
        return [ObjectRecord.of(row) for row in ns.objects]


def show(rt: Runtime, context: RequestContext, namespace: str, name: str) -> ObjectRecord:
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace)
        rt.policy.enforce(context, "get_metadef_object", access.policy_target(ns))
        return ObjectRecord.of(_get(session, ns, name))


def create(rt: Runtime, context: RequestContext, namespace: str, body: Any) -> ObjectRecord:
    """Add an object to a namespace the caller owns."""
    require_writable_context(context)
    schemas.validate("object", body)
    check_text(body, "Metadata definition object")
    with access.writing(rt, duplicate(body["name"], namespace).message) as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "add_metadef_object", access.policy_target(ns))
        access.require_modify(context, ns, f"create objects in namespace {namespace}")
        record = ObjectRecord.of(add(session, ns, body))
    events.emit(rt, context, "metadef_object.create", events.object_payload(record))
    return record


def update(
    rt: Runtime, context: RequestContext, namespace: str, name: str, body: Any
) -> ObjectRecord:
    """Replace an object's definition (a rename included); absent attributes are cleared."""
    require_writable_context(context)
    schemas.validate("object", body)
    check_text(body, "Metadata definition object")
    with access.writing(rt, duplicate(body["name"], namespace).message) as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "modify_metadef_object", access.policy_target(ns))
        row = _get(session, ns, name)
        access.require_modify(context, ns, f"modify objects in namespace {namespace}")
        if body["name"] != name and find(session, ns, body["name"]) is not None:
            raise duplicate(body["name"], namespace)
        assign(row, body)
        row.updated_at = utcnow()
        session.flush()
        record = ObjectRecord.of(row)
    payload = events.object_payload(record, old_name=name)
    events.emit(rt, context, "metadef_object.update", payload)
    return record


def delete(rt: Runtime, context: RequestContext, namespace: str, name: str) -> None:
    require_writable_context(context)
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "delete_metadef_object", access.policy_target(ns))
        row = _get(session, ns, name)
        access.require_modify(context, ns, f"delete objects in namespace {namespace}")
        access.require_unprotected(ns, f"Metadata definition object {name}")
        record = ObjectRecord.of(row)
        session.delete(row)
    events.emit(rt, context, "metadef_object.delete", events.object_payload(record, deleted=True))


def delete_all(rt: Runtime, context: RequestContext, namespace: str) -> None:
    """Remove every object of a namespace."""
    require_writable_context(context)
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "delete_metadef_object", access.policy_target(ns))
        access.require_modify(context, ns, f"delete objects in namespace {namespace}")
        access.require_unprotected(ns, f"Metadata definition namespace {namespace}")
        ns.objects.clear()
        session.flush()
        record = NamespaceRecord.of(ns)
    payload = events.namespace_payload(record)
    events.emit(rt, context, "metadef_namespace.delete_objects", payload)
