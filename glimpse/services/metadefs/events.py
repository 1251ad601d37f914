"""Metadef notifications: the one hook every metadef change goes through.

Services call :func:`emit` after their transaction committed, with Glance's event type
(``metadef_namespace.create``, ``metadef_tag.delete``...) and the payload built here in
Glance's shape; :func:`emit` hands them to the runtime's notifier.
"""

from __future__ import annotations

import datetime
from typing import Any

from glimpse.context import RequestContext
from glimpse.runtime import Runtime
from glimpse.services.metadefs.records import (
    AssociationRecord,
    NamespaceRecord,
    ObjectRecord,
    PropertyRecord,
    TagRecord,
)


def emit(rt: Runtime, context: RequestContext, event_type: str, payload: dict[str, Any]) -> None:
    """Announce a committed metadef change."""
    del context  # Glance's metadef notifications carry no request context.
    rt.notifier.info(event_type, payload)


def _time(value: datetime.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _deleted(deleted: bool) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"deleted": deleted, "deleted_at": now if deleted else None}


def namespace_payload(
    ns: NamespaceRecord, old_name: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    return {
        "namespace": ns.namespace,
        "namespace_old": old_name or ns.namespace,
        "display_name": ns.display_name,
        "protected": ns.protected,
        "visibility": ns.visibility,
        "owner": ns.owner,
        "description": ns.description,
        "created_at": _time(ns.created_at),
        "updated_at": _time(ns.updated_at),
        **_deleted(deleted),
    }


def object_payload(
    obj: ObjectRecord, old_name: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    return {
        "namespace": obj.namespace,
        "name": obj.name,
        "name_old": old_name or obj.name,
        "properties": [{"name": name, **definition} for name, definition in obj.properties.items()],
        "required": obj.required,
        "description": obj.description,
        "created_at": _time(obj.created_at),
        "updated_at": _time(obj.updated_at),
        **_deleted(deleted),
    }


def property_payload(
    prop: PropertyRecord, old_name: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    return {
        "namespace": prop.namespace,
        "name": prop.name,
        "name_old": old_name or prop.name,
        **prop.definition,
        **_deleted(deleted),
    }


def tag_payload(
    tag: TagRecord, old_name: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    return {
        "namespace": tag.namespace,
        "name": tag.name,
        "name_old": old_name or tag.name,
        "created_at": _time(tag.created_at),
        "updated_at": _time(tag.updated_at),
        **_deleted(deleted),
    }


def association_payload(assoc: AssociationRecord, deleted: bool = False) -> dict[str, Any]:
    return {
        "namespace": assoc.namespace,
        "name": assoc.name,
        "name_old": assoc.name,
        "prefix": assoc.prefix,
        "properties_target": assoc.properties_target,
        "created_at": _time(assoc.created_at),
        "updated_at": _time(assoc.updated_at),
        **_deleted(deleted),
    }
