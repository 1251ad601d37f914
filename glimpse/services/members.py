"""Image members: sharing a ``shared`` image with other projects."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import Image, ImageMember, utcnow
from glimpse.notifications import payloads
from glimpse.runtime import Runtime
from glimpse.schemas.member import MEMBER_STATUSES
from glimpse.services import access
from glimpse.services.records import MemberRecord
from glimpse.services.validation import check_text, quota_exceeded


def _shared_image(
    session: Session, context: RequestContext, image_id: str, for_update: bool = False
) -> Image:
    image = access.load_visible(session, context, image_id, for_update=for_update)
    if image.visibility != "shared":
        raise errors.Forbidden("Only shared images have members.")
    return image


def _find(image: Image, member_id: str) -> ImageMember | None:
    for member in image.members:
        if member.member == member_id and not member.deleted:
            return member
    return None


def _target(context: RequestContext, image: Image) -> dict[str, Any]:
    """The member rules' target, as Glance builds it.

    ``member_id`` is the caller's project when the image is shared and the caller
    does not own it (it can only have found the image as a member), whichever member
    the request names; the services check that a member acts on its own record.
    """
    target = access.policy_target(image)
    shared_with_caller = image.visibility == "shared" and context.owner != image.owner
    target["member_id"] = context.owner if shared_with_caller else None
    return target


def _enforce(rt: Runtime, context: RequestContext, action: str, image: Image) -> None:
    # As Glance: get_image first (an image the caller may not see is 404), then the rule.
    access.enforce(rt.policy, context, "get_image", image)
    rt.policy.enforce(context, action, _target(context, image))


def list_members(rt: Runtime, context: RequestContext, image_id: str) -> list[MemberRecord]:
    """Members of an image: all for its owner or an admin, only their own for a member."""
    with rt.db.transaction() as session:
        image = _shared_image(session, context, image_id)
        _enforce(rt, context, "get_members", image)
        members = [m for m in image.members if not m.deleted]
        if not access.can_modify(context, image):
            members = [m for m in members if m.member == context.owner]
            if not members:
                # Someone who sees the image (e.g. one without an owner) but is no member.
                raise errors.Forbidden(f"You cannot get image member for {image_id}")
        ordered = sorted(members, key=lambda m: (m.created_at, m.id))
        return [MemberRecord.of(m, image_id) for m in ordered]


def show(rt: Runtime, context: RequestContext, image_id: str, member_id: str) -> MemberRecord:
    """One member record; every refusal is a 404 so nothing leaks about other members."""
    try:
        return _show(rt, context, image_id, member_id)
    except errors.Forbidden as exc:
        raise errors.NotFound(exc.message) from exc


def _show(rt: Runtime, context: RequestContext, image_id: str, member_id: str) -> MemberRecord:
    with rt.db.transaction() as session:
        image = _shared_image(session, context, image_id)
        _enforce(rt, context, "get_member", image)
        member = _find(image, member_id)
        if member is None or not (
            access.can_modify(context, image) or member.member == context.owner
        ):
            raise errors.NotFound(f"Member {member_id} not found for image {image_id}.")
        return MemberRecord.of(member, image_id)


def create(rt: Runtime, context: RequestContext, image_id: str, body: Any) -> MemberRecord:
    """Share an image with ``body['member']``; the new member starts ``pending``."""
    access.require_writable_context(context)
    if not isinstance(body, dict) or "member" not in body:
        raise errors.BadRequest("Member to be added not specified")
    member_id = body["member"]
    if not isinstance(member_id, str) or not member_id.strip():
        raise errors.BadRequest("Member can't be empty")
    if len(member_id) > 255:
        raise errors.BadRequest("Member id is longer than 255 characters.")
    check_text(member_id, "Member")
    with rt.db.transaction() as session:
        image = access.load_visible(session, context, image_id, for_update=True)
        access.require_modify(context, image, "You are not permitted to share this image.")
        if image.visibility != "shared":
            raise errors.Forbidden("Only shared images have members.")
        _enforce(rt, context, "add_member", image)
        live = [m for m in image.members if not m.deleted]
        if _find(image, member_id) is not None:
            raise errors.Duplicate(f"Member {member_id} already exists for image {image_id}.")
        if quota_exceeded(len(live) + 1, rt.conf.image_member_quota):
            raise errors.RequestEntityTooLarge(
                f"Maximum number of image members ({rt.conf.image_member_quota}) exceeded."
            )
        # A row left from an earlier share (soft-deleted) would collide with the unique key.
        for stale in [m for m in image.members if m.deleted and m.member == member_id]:
            image.members.remove(stale)
            session.flush()
        now = utcnow()
        member = ImageMember(
            member=member_id,
            status="pending",
            can_share=False,
            created_at=now,
            updated_at=now,
            deleted=False,
        )
        image.members.append(member)
        session.flush()
        record = MemberRecord.of(member, image_id)
    rt.notifier.info("image.member.create", payloads.member(record))
    return record


def update(
    rt: Runtime, context: RequestContext, image_id: str, member_id: str, body: Any
) -> MemberRecord:
    """Accept or reject a share; only the member itself (or an admin) may."""
    access.require_writable_context(context)
    if not isinstance(body, dict) or "status" not in body:
        raise errors.BadRequest("Status not specified")
    status = body["status"]
    if status not in MEMBER_STATUSES:
        raise errors.BadRequest(
            f"Invalid status: {status}. Allowed values: " + ", ".join(MEMBER_STATUSES)
        )
    with rt.db.transaction() as session:
        image = _shared_image(session, context, image_id, for_update=True)
        member = _find(image, member_id)
        if member is None:
            raise errors.NotFound(f"Member {member_id} not found for image {image_id}.")
        if not context.is_admin and context.owner != member_id:
            raise errors.Forbidden("You are not permitted to modify this image member.")
        _enforce(rt, context, "modify_member", image)
        if member.status != status:
            member.status = status
            member.updated_at = utcnow()
        record = MemberRecord.of(member, image_id)
    rt.notifier.info("image.member.update", payloads.member(record))
    return record


def delete(rt: Runtime, context: RequestContext, image_id: str, member_id: str) -> None:
    access.require_writable_context(context)
    with rt.db.transaction() as session:
        image = _shared_image(session, context, image_id, for_update=True)
        access.require_modify(context, image, "You are not permitted to remove image members.")
        _enforce(rt, context, "delete_member", image)
        member = _find(image, member_id)
        if member is None:
            raise errors.NotFound(f"Member {member_id} not found for image {image_id}.")
        record = MemberRecord.of(member, image_id)
        image.members.remove(member)
    rt.notifier.info("image.member.delete", payloads.member(record, deleted=True))
