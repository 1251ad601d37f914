"""Storage quota: ``user_storage_quota`` in Glance's format, and what an owner already uses;
what ``GET /v2/info/usage`` reports."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from glimpse.db.models import Image, ImageLocation

_UNITS = {"": 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_QUOTA = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|TB)?\s*$")


def parse_storage_quota(text: str) -> int:
    """Bytes allowed per owner; 0 means unlimited. Units are binary and case-sensitive."""
    match = _QUOTA.match(text or "0")
    if not match:
        raise ValueError(
            f"Invalid user_storage_quota {text!r}: expected an integer with an optional unit "
            "B, KB, MB, GB or TB"
        )
    return int(match.group(1)) * _UNITS[match.group(2) or ""]


def storage_used(session: Session, owner: str | None, excluding: str | None = None) -> int:
    """Bytes stored for ``owner``: size times active locations of its live images."""
    query = (
        select(func.coalesce(func.sum(Image.size), 0))
        .select_from(Image)
        .join(ImageLocation, ImageLocation.image_id == Image.id)
        .where(
            Image.owner == owner if owner is not None else Image.owner.is_(None),
            Image.deleted.is_(False),
            Image.status.not_in(("killed", "deleted")),
            ImageLocation.deleted.is_(False),
            ImageLocation.status == "active",
        )
    )
    if excluding is not None:
        query = query.where(Image.id != excluding)
    return int(session.scalar(query) or 0)


def usage() -> dict[str, dict[str, int]]:
    """The caller's project's usage of each limit, for ``GET /v2/info/usage`` (API 2.13).

    Glance reports only the per-project limits of Keystone's unified limits
    (``use_keystone_limits``), and answers ``{}`` without them, whatever its static
    quotas (``user_storage_quota``, ``image_*_quota``). Glimpse has no unified limits,
    so it answers as Glance does without them.
    """
    return {}
