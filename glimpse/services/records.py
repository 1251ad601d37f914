"""Plain snapshots of database rows, safe to use after the session that read them closed."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

from glimpse.db.models import Image, ImageMember


@dataclasses.dataclass(frozen=True)
class LocationRecord:
    url: str
    metadata: dict[str, Any]
    status: str


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """An image as the services hand it to the HTTP layer."""

    id: str
    name: str | None
    status: str
    visibility: str
    protected: bool
    os_hidden: bool
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    owner: str | None
    size: int | None
    virtual_size: int | None
    container_format: str | None
    disk_format: str | None
    min_ram: int
    min_disk: int
    created_at: datetime.datetime
    updated_at: datetime.datetime | None
    deleted_at: datetime.datetime | None
    properties: dict[str, Any]
    tags: list[str]
    locations: list[LocationRecord]

    @classmethod
    def of(cls, image: Image) -> ImageRecord:
        return cls(
            id=image.id,
            name=image.name,
            status=image.status,
            visibility=image.visibility,
            protected=image.protected,
            os_hidden=image.os_hidden,
            checksum=image.checksum,
            os_hash_algo=image.os_hash_algo,
            os_hash_value=image.os_hash_value,
            owner=image.owner,
            size=image.size,
            virtual_size=image.virtual_size,
            container_format=image.container_format,
            disk_format=image.disk_format,
            min_ram=image.min_ram,
            min_disk=image.min_disk,
            created_at=image.created_at,
            updated_at=image.updated_at,
            deleted_at=image.deleted_at,
            properties={p.name: p.value for p in image.properties if not p.deleted},
            tags=sorted(t.value for t in image.tags if not t.deleted),
            locations=[
                LocationRecord(loc.value, json.loads(loc.meta_data or "{}"), loc.status)
                for loc in image.locations
                if not loc.deleted
            ],
        )


@dataclasses.dataclass(frozen=True)
class MemberRecord:
    image_id: str
    member_id: str
    status: str
    created_at: datetime.datetime
    updated_at: datetime.datetime | None

    @classmethod
    def of(cls, member: ImageMember, image_id: str) -> MemberRecord:
        return cls(image_id, member.member, member.status, member.created_at, member.updated_at)
