"""Who may see and who may change an image: the rules every image operation shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import Image
from glimpse.policy import Policy


def is_member(image: Image, member: str | None) -> bool:
    return member is not None and any(m.member == member and not m.deleted for m in image.members)


def can_see(context: RequestContext, image: Image) -> bool:
    """Single-image visibility (GET, data, members); lists apply their own narrower rule."""
    if context.is_admin or image.owner is None:
        return True
    if image.visibility in ("public", "community"):
        return True
    if context.owner is not None and image.owner == context.owner:
        return True
    return image.visibility == "shared" and is_member(image, context.owner)


def can_modify(context: RequestContext, image: Image) -> bool:
    """Only an administrator or the owner changes an image; null-owner images are admin-only."""
    if context.is_admin:
        return True
    return context.owner is not None and image.owner == context.owner


def not_found(image_id: str) -> errors.NotFound:
    return errors.NotFound(f"No image found with ID {image_id}")


def load_visible(
    session: Session, context: RequestContext, image_id: str, for_update: bool = False
) -> Image:
    """The live image ``image_id`` if the caller may see it; 404 otherwise (never 403)."""
    query = select(Image).where(Image.id == image_id, Image.deleted.is_(False))
    if for_update and session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    image = session.scalars(query).first()
    if image is None or not can_see(context, image):
        raise not_found(image_id)
    return image


def enforce(policy: Policy, context: RequestContext, action: str, image: Image) -> None:
    """Enforce the policy rule ``action`` on an existing image, as Glance does.

    A refusal is 403 only when the caller may see the image under ``get_image``;
    otherwise the image is hidden: 404, exactly as for a missing one (so a
    system-scoped token under ``enforce_scope``, refused by every project-scoped
    rule, learns nothing about a project's images).
    """
    target = policy_target(image)
    if policy.check(context, action, target):
        return
    if action == "get_image" or not policy.check(context, "get_image", target):
        raise not_found(image.id)
    policy.enforce(context, action, target)


def require_modify(context: RequestContext, image: Image, message: str | None = None) -> None:
    if not can_modify(context, image):
        raise errors.Forbidden(message or "You are not permitted to modify this image.")


def require_writable_context(context: RequestContext) -> None:
    if context.read_only:
        raise errors.ReadOnlyContext()


def policy_target(image: Image) -> dict[str, Any]:
    """The target oslo.policy rules see: image attributes plus its extra properties."""
    target: dict[str, Any] = {
        "id": image.id,
        "image_id": image.id,
        "name": image.name,
        "owner": image.owner,
        "project_id": image.owner,
        "visibility": image.visibility,
        "status": image.status,
        "protected": image.protected,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
    }
    for prop in image.properties:
        if not prop.deleted:
            target.setdefault(prop.name, prop.value)
    return target
