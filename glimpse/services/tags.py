"""Image tags: add one, remove one."""

from __future__ import annotations

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import ImageTag, utcnow
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.services import access
from glimpse.services.records import ImageRecord
from glimpse.services.validation import check_text, quota_exceeded


def add(rt: Runtime, context: RequestContext, image_id: str, tag: str) -> None:
    """Tag an image; adding a tag it already has changes nothing."""
    access.require_writable_context(context)
    check_text(tag, "Tag")
    if len(tag) > 255:
        raise errors.BadRequest("Tag is longer than 255 characters.")
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        access.require_modify(context, image)
        access.enforce(rt.policy, context, "modify_image", image)
        if any(t.value == tag for t in image.tags):
            return
        if quota_exceeded(len(image.tags) + 1, rt.conf.image_tag_quota):
            raise errors.RequestEntityTooLarge(
                f"Maximum number of tags ({rt.conf.image_tag_quota}) exceeded."
            )
        now = utcnow()
        image.tags.append(ImageTag(value=tag, created_at=now, updated_at=now, deleted=False))
        image.updated_at = now
        record = ImageRecord.of(image)
    rt.notifier.info("image.update", payloads.image(record))


def remove(rt: Runtime, context: RequestContext, image_id: str, tag: str) -> None:
    """Remove a tag; 404 when the image does not carry it."""
    access.require_writable_context(context)
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        access.require_modify(context, image)
        access.enforce(rt.policy, context, "modify_image", image)
        for existing in image.tags:
            if existing.value == tag:
                image.tags.remove(existing)
                image.updated_at = utcnow()
                record = ImageRecord.of(image)
                break
        else:
            raise errors.NotFound(f"Tag {tag} not found on image {image_id}.")
    rt.notifier.info("image.update", payloads.image(record))
