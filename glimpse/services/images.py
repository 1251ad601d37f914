"""Image records: create, show, update (JSON patch), delete, deactivate and reactivate."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import Image, ImageMember, ImageProperty, ImageTag, utcnow
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.schemas.image import READ_ONLY, RESERVED, RESERVED_NAMESPACE
from glimpse.services import access, image_data, locations
from glimpse.services.image_patch import PatchOperation, apply_patch
from glimpse.services.records import ImageRecord
from glimpse.services.validation import check_text, quota_exceeded

_CREATE_RESERVED = (*RESERVED, "locations", "location")
_BASE_COLUMNS = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "container_format",
    "disk_format",
    "min_ram",
    "min_disk",
)


def create(rt: Runtime, context: RequestContext, body: Any) -> ImageRecord:
    """Register a new image (status ``queued``) from a create request body."""
    access.require_writable_context(context)
    if not isinstance(body, dict):
        raise errors.BadRequest("Unexpected body type. Expected list/dict.")
    for key in body:
        if key in _CREATE_RESERVED or key.startswith(RESERVED_NAMESPACE):
            raise errors.ReservedAttribute(key)
        if key in READ_ONLY:
            raise errors.ReadOnlyAttribute(key)
    check_text(body, "Image metadata")
    for key in body:
        if len(key) > 255:
            raise errors.BadRequest(f"Property name '{key[:40]}...' is longer than 255 characters.")
    rt.image_schema.validate(body)

    image_id = body.get("id") or str(uuid.uuid4())
    owner = body.get("owner", context.owner)
    if not context.is_admin and "owner" in body and owner != context.owner:
        raise errors.Forbidden(f"You are not permitted to create images owned by '{owner}'.")
    visibility = body.get("visibility", "shared")
    _enforce_visibility_policy(rt, context, visibility, {"owner": owner, "visibility": visibility})

    extra = {k: v for k, v in body.items() if k not in _BASE_COLUMNS and k not in ("id", "tags")}
    tags = _unique(body.get("tags") or [])
    for name in extra:
        rt.property_protection.require(context, name, "create")
    _check_quotas(rt, len(extra), len(tags))

    target = {"owner": owner, "visibility": visibility, "id": image_id, **extra}
    rt.policy.enforce(context, "add_image", target)

    now = utcnow()
    image = Image(
        id=image_id,
        name=body.get("name"),
        status="queued",
        visibility=visibility,
        protected=bool(body.get("protected", False)),
        os_hidden=bool(body.get("os_hidden", False)),
        owner=owner,
        container_format=body.get("container_format"),
        disk_format=body.get("disk_format"),
        min_ram=body.get("min_ram", 0),
        min_disk=body.get("min_disk", 0),
        created_at=now,
        updated_at=now,
        deleted=False,
    )
    image.properties = [
        ImageProperty(name=k, value=v, created_at=now, updated_at=now, deleted=False)
        for k, v in extra.items()
    ]
    image.tags = [ImageTag(value=t, created_at=now, updated_at=now, deleted=False) for t in tags]
    duplicate = errors.Duplicate(f"Image with identifier {image_id} already exists!")
    try:
        with rt.db.transaction() as session:
            if session.get(Image, image_id) is not None:
                raise duplicate
            session.add(image)
            session.flush()
            record = ImageRecord.of(image)
    except IntegrityError as exc:
        raise duplicate from exc
    rt.notifier.info("image.create", payloads.image(record))
    return record


def show(rt: Runtime, context: RequestContext, image_id: str) -> ImageRecord:
    """The image, if the caller may see it."""
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id)
        access.enforce(rt.policy, context, "get_image", image)
        return ImageRecord.of(image)


def update(
    rt: Runtime, context: RequestContext, image_id: str, operations: list[PatchOperation]
) -> ImageRecord:
    """Apply a parsed JSON patch to an image, atomically."""
    access.require_writable_context(context)
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        access.enforce(rt.policy, context, "get_image", image)
        access.require_modify(context, image)
        access.enforce(rt.policy, context, "modify_image", image)
        changes = apply_patch(rt, context, image, operations)
        doomed = locations.apply_operations(rt, context, image, changes.location_operations)
        live_props = [p for p in image.properties if not p.deleted]
        if changes.properties_added:
            quota = rt.conf.image_property_quota
            if quota_exceeded(len(live_props), quota):
                raise errors.RequestEntityTooLarge(
                    f"Maximum number of image properties ({quota}) exceeded."
                )
        if changes.tags_changed and quota_exceeded(len(image.tags), rt.conf.image_tag_quota):
            raise errors.RequestEntityTooLarge(
                f"Maximum number of tags ({rt.conf.image_tag_quota}) exceeded."
            )
        # As in Glance, an empty patch saves nothing, so updated_at stays.
        if operations:
            image.updated_at = utcnow()
        session.flush()
        record = ImageRecord.of(image)
    # Removed locations lose their data only once no committed row points at it.
    image_data.delete_data(rt, doomed)
    if operations:
        rt.notifier.info("image.update", payloads.image(record))
    return record


def delete(rt: Runtime, context: RequestContext, image_id: str) -> ImageRecord:
    """Delete an image; its data is removed now, or kept for the scrubber with delayed_delete."""
    access.require_writable_context(context)
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        access.enforce(rt.policy, context, "delete_image", image)
        access.require_modify(context, image, "You are not permitted to delete this image.")
        if image.protected:
            raise errors.Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        now = utcnow()
        live_locations = [loc for loc in image.locations if not loc.deleted]
        delayed = bool(rt.conf.delayed_delete) and bool(live_locations)
        if delayed and image.status == "deactivated":
            raise errors.BadRequest(
                "Image status transition from deactivated to pending_delete is not allowed"
            )
        doomed = [(loc.value, json.loads(loc.meta_data or "{}")) for loc in live_locations]
        was_staged = image.status in ("uploading", "importing")
        image.status = "pending_delete" if delayed else "deleted"
        image.deleted = True
        image.deleted_at = now
        image.updated_at = now
        # Glance announces the image with the properties and tags it had.
        deleted_payload = payloads.image_deleted(ImageRecord.of(image))
        children: list[ImageProperty | ImageTag | ImageMember] = [
            *image.properties,
            *image.tags,
            *image.members,
        ]
        for child in children:
            if not child.deleted:
                child.deleted = True
                child.deleted_at = now
        for loc in live_locations:
            if delayed:
                loc.status = "pending_delete"
            else:
                loc.status = "deleted"
                loc.deleted = True
                loc.deleted_at = now
        record = ImageRecord.of(image)
    rt.notifier.info("image.delete", deleted_payload)
    if not delayed:
        image_data.delete_data(rt, doomed)
    if was_staged:
        image_data.discard_staged(rt, image_id)
    return record


def set_active_state(rt: Runtime, context: RequestContext, image_id: str, active: bool) -> None:
    """Reactivate (``active=True``) or deactivate an image; idempotent."""
    action = "reactivate" if active else "deactivate"
    access.require_writable_context(context)
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        access.enforce(rt.policy, context, action, image)
        access.require_modify(context, image, f"You are not permitted to {action} this image.")
        if image.status not in ("active", "deactivated"):
            raise errors.Forbidden(f"Not allowed to {action} image in status '{image.status}'")
        target = "active" if active else "deactivated"
        changed = image.status != target
        if changed:
            image.status = target
            image.updated_at = utcnow()
        record = ImageRecord.of(image)
    if changed:
        rt.notifier.info("image.update", payloads.image(record))


def exists_any(rt: Runtime, image_id: str) -> bool:
    """Whether an image row with this id exists, deleted or not (ids are never reused)."""
    with rt.db.transaction() as session:
        return session.scalars(select(Image.id).where(Image.id == image_id)).first() is not None


def _enforce_visibility_policy(
    rt: Runtime, context: RequestContext, visibility: str, target: dict[str, Any]
) -> None:
    if visibility == "public":
        rt.policy.enforce(context, "publicize_image", target)
    elif visibility == "community":
        rt.policy.enforce(context, "communitize_image", target)


def _check_quotas(rt: Runtime, properties: int, tags: int) -> None:
    if quota_exceeded(properties, rt.conf.image_property_quota):
        raise errors.RequestEntityTooLarge(
            f"Maximum number of image properties ({rt.conf.image_property_quota}) exceeded."
        )
    if quota_exceeded(tags, rt.conf.image_tag_quota):
        raise errors.RequestEntityTooLarge(
            f"Maximum number of tags ({rt.conf.image_tag_quota}) exceeded."
        )


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))
