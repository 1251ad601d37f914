"""Metadef properties: the property definitions a namespace holds directly."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import MetadefNamespace, MetadefProperty, utcnow
from glimpse.runtime import Runtime
from glimpse.schemas import metadefs as schemas
from glimpse.services.access import require_writable_context
from glimpse.services.metadefs import access, events, resource_types
from glimpse.services.metadefs.records import NamespaceRecord, PropertyRecord
from glimpse.services.validation import check_text, storable_text


def not_found(name: str, namespace: str) -> errors.NotFound:
    return errors.NotFound(
        f"The metadata definition property with name={name} was not found in namespace={namespace}."
    )


def duplicate(name: str, namespace: str) -> errors.Duplicate:
    return errors.Duplicate(
        f"A metadata definition property with name={name} already exists in namespace={namespace}."
    )


def find(session: Session, namespace: MetadefNamespace, name: str) -> MetadefProperty | None:
    return session.scalars(
        select(MetadefProperty).where(
            MetadefProperty.namespace_id == namespace.id, MetadefProperty.name == name
        )
    ).first()


def _get(session: Session, namespace: MetadefNamespace, name: str) -> MetadefProperty:
    row = find(session, namespace, name)
    if row is None:
        raise not_found(name, namespace.namespace)
    return row


def assign(row: MetadefProperty, name: str, definition: dict[str, Any]) -> None:
    """Make ``row`` the property ``name`` with a schema-valid definition."""
    row.name = name
    row.json_schema = storable_text(
        json.dumps(schemas.property_definition(definition)), "The property definition"
    )


def add(
    session: Session, namespace: MetadefNamespace, name: str, definition: dict[str, Any]
) -> MetadefProperty:
    """Add a property from a schema-valid definition (no access checks); 409 if taken."""
    if find(session, namespace, name) is not None:
        raise duplicate(name, namespace.namespace)
    now = utcnow()
    row = MetadefProperty(namespace=namespace, created_at=now, updated_at=now)
    assign(row, name, definition)
    session.add(row)
    session.flush()
    return row


def list_properties(rt: Runtime, context: RequestContext, namespace: str) -> list[PropertyRecord]:
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace)
        rt.policy.enforce(context, "get_metadef_properties", access.policy_target(ns))
        return [PropertyRecord.of(row) for row in ns.properties]


def show(
    rt: Runtime,
    context: RequestContext,
    namespace: str,
    name: str,
    resource_type: str | None = None,
) -> PropertyRecord:
    """One property; with ``resource_type``, ``name`` is spelt with that association's
    prefix (e.g. ``hw_cpu_policy`` for the property ``cpu_policy``)."""
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace)
        target = access.policy_target(ns)
        rt.policy.enforce(context, "get_metadef_property", target)
        if resource_type:
            rt.policy.enforce(context, "get_metadef_resource_type", target)
            prefix = resource_types.get_association(ns, resource_type).prefix
            if not prefix or not name.startswith(prefix):
                raise errors.NotFound(
                    f"Property {name} does not start with the expected resource type "
                    f"association prefix of '{prefix}'."
                )
            name = name[len(prefix) :]
        return PropertyRecord.of(_get(session, ns, name))


def create(rt: Runtime, context: RequestContext, namespace: str, body: Any) -> PropertyRecord:
    """Add a property to a namespace the caller owns."""
    require_writable_context(context)
    schemas.validate("property", body)
    check_text(body, "Metadata definition property")
    name = body["name"]
    with access.writing(rt, duplicate(name, namespace).message) as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "add_metadef_property", access.policy_target(ns))
        access.require_modify(context, ns, f"create properties in namespace {namespace}")
        record = PropertyRecord.of(add(session, ns, name, body))
    events.emit(rt, context, "metadef_property.create", events.property_payload(record))
    return record


def update(
    rt: Runtime, context: RequestContext, namespace: str, name: str, body: Any
) -> PropertyRecord:
    """Replace a property's definition (a rename included)."""
    require_writable_context(context)
    schemas.validate("property", body)
    check_text(body, "Metadata definition property")
    new_name = body["name"]
    with access.writing(rt, duplicate(new_name, namespace).message) as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "modify_metadef_property", access.policy_target(ns))
        row = _get(session, ns, name)
        access.require_modify(context, ns, f"modify properties in namespace {namespace}")
        if new_name != name and find(session, ns, new_name) is not None:
            raise duplicate(new_name, namespace)
        assign(row, new_name, body)
        row.updated_at = utcnow()
        session.flush()
        record = PropertyRecord.of(row)
    payload = events.property_payload(record, old_name=name)
    events.emit(rt, context, "metadef_property.update", payload)
    return record


def delete(rt: Runtime, context: RequestContext, namespace: str, name: str) -> None:
    require_writable_context(context)
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "remove_metadef_property", access.policy_target(ns))
        row = _get(session, ns, name)
        access.require_modify(context, ns, f"delete properties in namespace {namespace}")
        access.require_unprotected(ns, f"Metadata definition property {name}")
        record = PropertyRecord.of(row)
        session.delete(row)
    payload = events.property_payload(record, deleted=True)
    events.emit(rt, context, "metadef_property.delete", payload)


def delete_all(rt: Runtime, context: RequestContext, namespace: str) -> None:
    """Remove every property a namespace holds directly (objects keep theirs)."""
    require_writable_context(context)
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        rt.policy.enforce(context, "remove_metadef_property", access.policy_target(ns))
        access.require_modify(context, ns, f"delete properties in namespace {namespace}")
        access.require_unprotected(ns, f"Metadata definition namespace {namespace}")
        ns.properties.clear()
        session.flush()
        record = NamespaceRecord.of(ns)
    payload = events.namespace_payload(record)
    events.emit(rt, context, "metadef_namespace.delete_properties", payload)
