"""Plain snapshots of metadef rows, safe to use after the session that read them closed."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
from typing import Any

from glimpse.db.models import (
    MetadefNamespace,
    MetadefNamespaceResourceType,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefTag,
)


@dataclasses.dataclass(frozen=True)
class AssociationRecord:
    """A namespace's association with a resource type."""

    namespace: str
    name: str
    prefix: str | None
    properties_target: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime | None

    @classmethod
    def of(cls, row: MetadefNamespaceResourceType) -> AssociationRecord:
        return cls(
            namespace=row.namespace.namespace,
            name=row.resource_type.name,
            prefix=row.prefix,
            properties_target=row.properties_target,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclasses.dataclass(frozen=True)
class NamespaceRecord:
    namespace: str
    display_name: str | None
    description: str | None
    visibility: str
    protected: bool
    owner: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime | None
    associations: list[AssociationRecord]

    @classmethod
    def of(cls, row: MetadefNamespace) -> NamespaceRecord:
        return cls(
            namespace=row.namespace,
            display_name=row.display_name,
            description=row.description,
            visibility=row.visibility,
            protected=row.protected,
            owner=row.owner,
            created_at=row.created_at,
            updated_at=row.updated_at,
            associations=[AssociationRecord.of(a) for a in row.associations],
        )


@dataclasses.dataclass(frozen=True)
class ObjectRecord:
    namespace: str
    name: str
    description: str | None
    required: list[str] | None
    #: Property name -> property definition.
    properties: dict[str, dict[str, Any]]
    created_at: datetime.datetime
    updated_at: datetime.datetime | None

    @classmethod
    def of(cls, row: MetadefObject) -> ObjectRecord:
        return cls(
            namespace=row.namespace.namespace,
            name=row.name,
            description=row.description,
            required=json.loads(row.required) if row.required is not None else None,
            properties=json.loads(row.json_schema or "{}"),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclasses.dataclass(frozen=True)
class PropertyRecord:
    namespace: str
    name: str
    #: The definition (type, title, enum...), without the name.
    definition: dict[str, Any]

    @classmethod
    def of(cls, row: MetadefProperty) -> PropertyRecord:
        return cls(row.namespace.namespace, row.name, json.loads(row.json_schema or "{}"))


@dataclasses.dataclass(frozen=True)
class TagRecord:
    namespace: str
    name: str
    created_at: datetime.datetime
    updated_at: datetime.datetime | None

    @classmethod
    def of(cls, row: MetadefTag) -> TagRecord:
        return cls(row.namespace.namespace, row.name, row.created_at, row.updated_at)


@dataclasses.dataclass(frozen=True)
class ResourceTypeRecord:
    name: str
    created_at: datetime.datetime
    updated_at: datetime.datetime | None

    @classmethod
    def of(cls, row: MetadefResourceType) -> ResourceTypeRecord:
        return cls(row.name, row.created_at, row.updated_at)


@dataclasses.dataclass(frozen=True)
class NamespaceDetail:
    """A namespace with everything it defines, as ``GET /v2/metadefs/namespaces/{ns}``
    shows it."""

    namespace: NamespaceRecord
    objects: list[ObjectRecord]
    properties: list[PropertyRecord]
    tags: list[TagRecord]

    @classmethod
    def of(cls, row: MetadefNamespace) -> NamespaceDetail:
        return cls(
            namespace=NamespaceRecord.of(row),
            objects=[ObjectRecord.of(o) for o in row.objects],
            properties=[PropertyRecord.of(p) for p in row.properties],
            tags=[TagRecord.of(t) for t in row.tags],
        )

    def with_prefix(self, prefix: str) -> NamespaceDetail:
        """Property names (and objects' required names) as a resource type spells them."""
        objects = [
            dataclasses.replace(
                o,
                properties={prefix + k: copy.deepcopy(v) for k, v in o.properties.items()},
                required=[prefix + r for r in o.required] if o.required else o.required,
            )
            for o in self.objects
        ]
        properties = [dataclasses.replace(p, name=prefix + p.name) for p in self.properties]
        return dataclasses.replace(self, objects=objects, properties=properties)
