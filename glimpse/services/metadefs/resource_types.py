"""Resource types (``OS::Glance::Image``, ``OS::Nova::Flavor``...) and their associations.

An association says a namespace applies to a resource type, and with which ``prefix`` its
property names are spelt there. Resource types are created on first association and kept.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
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
from glimpse.services.metadefs import access, events
from glimpse.services.metadefs.records import AssociationRecord, ResourceTypeRecord
from glimpse.services.validation import check_text


def association_not_found(name: str, namespace: str) -> errors.NotFound:
    return errors.NotFound(
        f"The metadata definition resource-type association of resource-type={name} to "
        f"namespace={namespace}, was not found."
    )


def duplicate(name: str, namespace: str) -> errors.Duplicate:
    return errors.Duplicate(
        f"The metadata definition resource-type association of resource-type={name} to "
        f"namespace={namespace} already exists."
    )


def find_association(namespace: MetadefNamespace, name: str) -> MetadefNamespaceResourceType | None:
    for association in namespace.associations:
        if association.resource_type.name == name:
            return association
    return None


def get_association(namespace: MetadefNamespace, name: str) -> MetadefNamespaceResourceType:
    association = find_association(namespace, name)
    if association is None:
        raise association_not_found(name, namespace.namespace)
    return association


def associate(
    session: Session, namespace: MetadefNamespace, definition: dict[str, Any]
) -> MetadefNamespaceResourceType:
    """Associate a namespace with a resource type, creating the type if it is new
    (no access checks); 409 if already associated."""
    name = definition["name"]
    if find_association(namespace, name) is not None:
        raise duplicate(name, namespace.namespace)
    now = utcnow()
    resource_type = session.scalars(
        select(MetadefResourceType).where(MetadefResourceType.name == name)
    ).first()
    if resource_type is None:
        resource_type = MetadefResourceType(
            name=name, protected=False, created_at=now, updated_at=now
        )
        session.add(resource_type)
    association = MetadefNamespaceResourceType(
        namespace=namespace,
        resource_type=resource_type,
        prefix=definition.get("prefix"),
        properties_target=definition.get("properties_target"),
        created_at=now,
        updated_at=now,
    )
    session.add(association)
    session.flush()
    return association


def list_resource_types(rt: Runtime, context: RequestContext) -> list[ResourceTypeRecord]:
    """Every resource type known, associated or not."""
    rt.policy.enforce(context, "list_metadef_resource_types", {})
    with rt.db.transaction() as session:
        rows = session.scalars(select(MetadefResourceType).order_by(MetadefResourceType.id))
        return [ResourceTypeRecord.of(row) for row in rows]


def list_associations(
    rt: Runtime, context: RequestContext, namespace: str
) -> list[AssociationRecord]:
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace)
        rt.policy.enforce(context, "get_metadef_resource_type", access.policy_target(ns))
        return [AssociationRecord.of(a) for a in ns.associations]


def create_association(
    rt: Runtime, context: RequestContext, namespace: str, body: Any
) -> AssociationRecord:
    """Associate a namespace the caller owns with a resource type."""
    require_writable_context(context)
    schemas.validate("resource_type", body)
    check_text(body, "Metadata definition resource type association")
    with access.writing(rt, duplicate(body["name"], namespace).message) as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        target = access.policy_target(ns)
        rt.policy.enforce(context, "add_metadef_resource_type_association", target)
        access.require_modify(context, ns, f"associate namespace {namespace}")
        record = AssociationRecord.of(associate(session, ns, body))
    payload = events.association_payload(record)
    events.emit(rt, context, "metadef_resource_type.create", payload)
    return record


def delete_association(rt: Runtime, context: RequestContext, namespace: str, name: str) -> None:
    require_writable_context(context)
    with rt.db.transaction() as session:
        ns = access.load_namespace(session, context, namespace, for_update=True)
        target = access.policy_target(ns)
        rt.policy.enforce(context, "remove_metadef_resource_type_association", target)
        association = get_association(ns, name)
        access.require_modify(context, ns, f"dissociate namespace {namespace}")
        access.require_unprotected(ns, f"Metadata definition resource-type-association {name}")
        record = AssociationRecord.of(association)
        ns.associations.remove(association)
        session.flush()
    payload = events.association_payload(record, deleted=True)
    events.emit(rt, context, "metadef_resource_type.delete", payload)
