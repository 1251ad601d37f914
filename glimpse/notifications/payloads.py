"""Glance's (Rocky) notification payloads, built from the services' records.

Image locations are never included: they may carry store credentials. Tasks
leave out their input for the same reason.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from glimpse import errors
from glimpse.context import RequestContext

if TYPE_CHECKING:
    from glimpse.services.records import ImageRecord, MemberRecord
    from glimpse.services.tasks import TaskRecord


def isotime(value: datetime.datetime | None = None) -> str:
    """Glance's ``timeutils.isotime``: second precision, ``Z``; a missing time means now."""
    # Glance formats null timestamps (a task's expires_at before it ends) as the
    # current time; consumers of these payloads have always seen that.
    at = value or datetime.datetime.now(datetime.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def image(record: ImageRecord) -> dict[str, Any]:
    """The payload of image.create/update/prepare/upload/activate: every extra property,
    whoever may read it (the notification bus is the operator's)."""
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "created_at": isotime(record.created_at),
        "updated_at": isotime(record.updated_at),
        "min_disk": record.min_disk,
        "min_ram": record.min_ram,
        "protected": record.protected,
        "checksum": record.checksum,
        "owner": record.owner,
        "disk_format": record.disk_format,
        "container_format": record.container_format,
        "size": record.size,
        "virtual_size": record.virtual_size,
        "is_public": record.visibility == "public",
        "visibility": record.visibility,
        "properties": dict(record.properties),
        "tags": list(record.tags),
        "deleted": False,
        "deleted_at": None,
    }


def image_deleted(record: ImageRecord) -> dict[str, Any]:
    """The payload of image.delete: the image as it was, marked deleted."""
    return {**image(record), "deleted": True, "deleted_at": isotime(record.deleted_at)}


def member(record: MemberRecord, *, deleted: bool = False) -> dict[str, Any]:
    """The payload of image.member.create/update/delete."""
    return {
        "image_id": record.image_id,
        "member_id": record.member_id,
        "status": record.status,
        "created_at": isotime(record.created_at),
        "updated_at": isotime(record.updated_at),
        "deleted": deleted,
        "deleted_at": isotime() if deleted else None,
    }


def task(record: TaskRecord) -> dict[str, Any]:
    """The payload of task.*; result and message are always null, as in Glance."""
    return {
        "id": record.id,
        "type": record.type,
        "status": record.status,
        "result": None,
        "owner": record.owner,
        "message": None,
        "expires_at": isotime(record.expires_at),
        "created_at": isotime(record.created_at),
        "updated_at": isotime(record.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


def image_send(record: ImageRecord, context: RequestContext, bytes_sent: int) -> dict[str, Any]:
    """The payload of image.send: who downloaded how much of whose image."""
    return {
        "bytes_sent": bytes_sent,
        "image_id": record.id,
        "owner_id": record.owner,
        "receiver_tenant_id": context.project_id,
        "receiver_user_id": context.user_id,
    }


def upload_failure(image_id: str, exc: BaseException) -> str:
    """The payload of an ERROR image.upload: a message, worded as Glance's."""
    detail = exc.message if isinstance(exc, errors.GlimpseError) else str(exc)
    if isinstance(exc, errors.Gone):
        return (
            f"Image {image_id} could not be found after upload. The image may have been "
            f"deleted during the upload: {detail}"
        )
    if isinstance(exc, errors.Conflict):
        return f"Unable to upload duplicate image data for image {image_id}: {detail}"
    if isinstance(exc, errors.Forbidden):
        return f"Not allowed to upload image data for image {image_id}: {detail}"
    if isinstance(exc, errors.GlimpseError):
        if detail.startswith("Image storage media is full"):
            return detail
        return f"Failed to upload image data for image {image_id} due to HTTP error: {detail}"
    return f"Failed to upload image data for image {image_id} due to internal error: {detail}"
