"""JSON representations of images, members and collections."""

from __future__ import annotations

import datetime
from typing import Any

from glimpse.context import RequestContext
from glimpse.runtime import Runtime
from glimpse.services.records import ImageRecord, MemberRecord
from glimpse.services.tasks import PRIVATE_INPUT, TaskRecord


def timestamp(value: datetime.datetime | None) -> str | None:
    """Glance's format: ``YYYY-MM-DDTHH:MM:SSZ``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def image(rt: Runtime, context: RequestContext, img: ImageRecord) -> dict[str, Any]:
    """The image as the API shows it to ``context``."""
    body: dict[str, Any] = rt.property_protection.readable(context, img.properties)
    body.update(
        {
            "id": img.id,
            "name": img.name,
            "status": img.status,
            "visibility": img.visibility,
            "protected": img.protected,
            "os_hidden": img.os_hidden,
            "checksum": img.checksum,
            "os_hash_algo": img.os_hash_algo,
            "os_hash_value": img.os_hash_value,
            "owner": img.owner,
            "size": img.size,
            "virtual_size": img.virtual_size,
            "container_format": img.container_format,
            "disk_format": img.disk_format,
            "min_ram": img.min_ram,
            "min_disk": img.min_disk,
            "tags": list(img.tags),
            "created_at": timestamp(img.created_at),
            "updated_at": timestamp(img.updated_at),
            "self": f"/v2/images/{img.id}",
            "file": f"/v2/images/{img.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    locations = _visible_locations(rt, context, img)
    if rt.conf.show_multiple_locations:
        body["locations"] = locations
    if rt.conf.show_image_direct_url and locations:
        best = max(locations, key=lambda loc: rt.stores.weight(loc["metadata"]))
        body["direct_url"] = best["url"]
    if rt.stores.multi:
        stores = [loc["metadata"].get("store") for loc in locations]
        named = [store for store in stores if isinstance(store, str) and store]
        if named:
            body["stores"] = ",".join(dict.fromkeys(named))
    return body


def _visible_locations(
    rt: Runtime, context: RequestContext, img: ImageRecord
) -> list[dict[str, Any]]:
    if img.status == "deactivated" and not context.is_admin:
        return []
    if not rt.policy.check(context, "get_image_location", {"id": img.id, "owner": img.owner}):
        return []
    # Stored URIs may carry store credentials (Swift keys, S3 secrets): never shown.
    return [
        {"url": rt.stores.public_uri(loc.url, loc.metadata), "metadata": dict(loc.metadata)}
        for loc in img.locations
        if loc.status == "active"
    ]


def member(m: MemberRecord) -> dict[str, Any]:
    return {
        "member_id": m.member_id,
        "image_id": m.image_id,
        "status": m.status,
        "created_at": timestamp(m.created_at),
        "updated_at": timestamp(m.updated_at),
        "schema": "/v2/schemas/member",
    }


def task(t: TaskRecord, *, full: bool = True, with_image: bool = False) -> dict[str, Any]:
    """A task; list entries ("stubs") omit input, result and message."""
    task_input = t.input
    if isinstance(task_input, dict):
        task_input = {k: v for k, v in task_input.items() if k not in PRIVATE_INPUT}
    body: dict[str, Any] = {
        "id": t.id,
        "type": t.type,
        "status": t.status,
        "owner": t.owner,
        "created_at": timestamp(t.created_at),
        "updated_at": timestamp(t.updated_at),
        "self": f"/v2/tasks/{t.id}",
        "schema": "/v2/schemas/task",
    }
    if t.expires_at is not None:
        body["expires_at"] = timestamp(t.expires_at)
    if full:
        body["input"] = task_input
        body["result"] = t.result
        body["message"] = t.message
    if t.status == "processing" and (t.bytes_done is not None or t.bytes_total is not None):
        body["progress"] = {"bytes_done": t.bytes_done, "bytes_total": t.bytes_total}
    if with_image:
        body["image_id"] = t.image_id
        body["request_id"] = t.request_id
        body["user_id"] = t.user_id
    return body
