"""Listing images: filters, both sort syntaxes, keyset paging and who sees what."""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
from collections.abc import Sequence
from typing import Any

from oslo_utils import timeutils
from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from glimpse import errors
from glimpse.context import RequestContext
from glimpse.db.models import Image, ImageMember, ImageProperty, ImageTag
from glimpse.runtime import Runtime
from glimpse.schemas.image import VISIBILITIES
from glimpse.services.records import ImageRecord
from glimpse.services.validation import check_text

SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)
_MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
_IN_FILTERS = ("name", "id", "status", "container_format", "disk_format")
_EXACT_COLUMNS = ("owner", "checksum", "os_hash_value", "os_hash_algo")
_INT_COLUMNS = ("size", "virtual_size", "min_ram", "min_disk")
_DATE_OPS = ("gt", "gte", "lt", "lte", "eq", "neq")
_PAGING_KEYS = ("limit", "marker", "sort_key", "sort_dir", "sort")
_HIDDEN_STATUSES = ("killed", "deleted", "pending_delete")


@dataclasses.dataclass
class ImagePage:
    images: list[ImageRecord]
    first: str
    next: str | None


def list_images(
    rt: Runtime, context: RequestContext, params: Sequence[tuple[str, str]]
) -> ImagePage:
    """One page of the images the caller may list, per the query ``params``."""
    rt.policy.enforce(context, "get_images", {"project_id": context.project_id})
    for key, value in params:
        check_text(key, "Filter name")
        check_text(value, "Filter value")
    limit = _parse_limit(rt, params)
    order = _parse_sort(params)
    conditions = _filters(params)
    with rt.db.transaction() as session:
        conditions.extend(_visibility(context, params))
        query = select(Image).where(*conditions)
        marker = _last(params, "marker")
        if marker is not None:
            query = query.where(_after_marker(session, context, marker, order))
        order_by = []
        for key, direction in order:
            expr = _sortable(key)
            order_by.append(expr.asc() if direction == "asc" else expr.desc())
        rows = session.scalars(query.order_by(*order_by).limit(limit)).unique()
        images = [ImageRecord.of(row) for row in rows]
    first = "/v2/images" + _query_string([(k, v) for k, v in params if k != "marker"])
    next_link = None
    if images and len(images) == limit:
        kept = [(k, v) for k, v in params if k != "marker"]
        next_link = "/v2/images" + _query_string([*kept, ("marker", images[-1].id)])
    return ImagePage(images=images, first=first, next=next_link)


def _query_string(params: list[tuple[str, str]]) -> str:
    return "?" + urllib.parse.urlencode(params) if params else ""


def _last(params: Sequence[tuple[str, str]], key: str) -> str | None:
    values = [v for k, v in params if k == key]
    return values[-1] if values else None


def _all(params: Sequence[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in params if k == key]


def _parse_limit(rt: Runtime, params: Sequence[tuple[str, str]]) -> int:
    raw = _last(params, "limit")
    if raw is None:
        return min(int(rt.conf.limit_param_default), int(rt.conf.api_limit_max))
    try:
        limit = int(raw)
    except ValueError as exc:
        raise errors.BadRequest("limit param must be an integer") from exc
    if limit < 0:
        raise errors.BadRequest("limit param must be positive")
    return min(limit, int(rt.conf.api_limit_max))


def _parse_sort(params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    keys = _all(params, "sort_key")
    dirs = _all(params, "sort_dir")
    sort = _all(params, "sort")
    if sort and (keys or dirs):
        raise errors.BadRequest(
            "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'."
        )
    order: list[tuple[str, str]] = []
    if sort:
        for item in ",".join(sort).split(","):
            key, _, direction = item.strip().partition(":")
            direction = direction.strip() or "desc"
            order.append((_sort_key(key.strip()), _sort_dir(direction)))
    else:
        for d in dirs:
            _sort_dir(d)
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise errors.BadRequest(
                "Number of sort dirs does not match the number of sort keys"
            )
        if not keys:
            keys = ["created_at"]
        for i, key in enumerate(keys):
            direction = dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")
            order.append((_sort_key(key), direction))
    first_dir = order[0][1]
    present = {k for k, _ in order}
    for tiebreak in ("created_at", "id"):
        if tiebreak not in present:
            order.append((tiebreak, first_dir))
    return order


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise errors.BadRequest(f"Invalid sort key: {key}. It should be one of the following: "
                                + ", ".join(SORT_KEYS) + ".")
    return key


def _sort_dir(direction: str) -> str:
    if direction not in ("asc", "desc"):
        raise errors.BadRequest(f"Invalid sort direction: {direction}")
    return direction


def _sortable(key: str) -> ColumnElement[Any]:
    # Nulls sort as the smallest value on every database: PostgreSQL would put
    # them last and MySQL/SQLite first, which would break keyset paging.
    column = getattr(Image, key)
    if key in ("size",):
        return func.coalesce(column, -1)
    if key in ("name", "container_format", "disk_format"):
        return func.coalesce(column, "")
    return column


def _after_marker(
    session: Session, context: RequestContext, marker: str, order: list[tuple[str, str]]
) -> ColumnElement[bool]:
    from glimpse.services.access import can_see

    row = session.get(Image, marker)
    if row is None or row.deleted or not can_see(context, row):
        raise errors.BadRequest(f"Invalid marker. Image {marker} could not be found.")
    values = []
    for key, _ in order:
        value = getattr(row, key)
        if value is None:
            value = -1 if key == "size" else ""
        values.append(value)
    clauses = []
    for i, (key, direction) in enumerate(order):
        equal = [_sortable(k) == values[j] for j, (k, _) in enumerate(order[:i])]
        expr = _sortable(key)
        beyond = expr > values[i] if direction == "asc" else expr < values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def _split_op(value: str) -> tuple[str | None, str]:
    if ":" not in value:
        return None, value
    op, _, rest = value.partition(":")
    return op, rest


def _in_values(text: str) -> list[str]:
    values: list[str] = []
    current = ""
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            values.append(current)
            current = ""
        else:
            current += ch
    if quoted:
        raise errors.BadRequest("Invalid filter value: unmatched quote.")
    values.append(current)
    return values


def _parse_date(text: str) -> datetime.datetime:
    try:
        parsed = timeutils.parse_isotime(text)
    except ValueError as exc:
        raise errors.BadRequest(f"Invalid date format '{text}'") from exc
    return timeutils.normalize_time(parsed)


def _date_filter(column: Any, raw: str) -> ColumnElement[bool]:
    try:
        value = _parse_date(raw)
        op = "eq"
    except errors.BadRequest:
        op_text, rest = _split_op(raw)
        if op_text not in _DATE_OPS:
            raise errors.BadRequest(f"Invalid operator '{op_text}' for date filter") from None
        op = op_text
        value = _parse_date(rest)
    comparisons = {
        "gt": column > value,
        "gte": column >= value,
        "lt": column < value,
        "lte": column <= value,
        "eq": column == value,
        "neq": column != value,
    }
    return comparisons[op]


def _bool_param(key: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise errors.BadRequest(f"Invalid value '{value}' for '{key}': expected true or false.")
    return value == "true"


def _int_param(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise errors.BadRequest(f"Invalid value '{value}' for '{key}': expected an integer.") from exc
    if abs(number) > 2**63 - 1:
        raise errors.BadRequest(f"Value of '{key}' is out of range.")
    return number


def _filters(params: Sequence[tuple[str, str]]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Image.deleted.is_(False),
        Image.status.not_in(_HIDDEN_STATUSES),
    ]
    hidden = _last(params, "os_hidden")
    conditions.append(Image.os_hidden.is_(_bool_param("os_hidden", hidden) if hidden else False))
    for key, value in params:
        if key in _PAGING_KEYS or key in ("member_status", "visibility", "os_hidden"):
            continue
        if key == "changes-since":
            raise errors.BadRequest("The 'changes-since' filter is not available in v2.")
        if key in _IN_FILTERS:
            op, rest = _split_op(value)
            column = getattr(Image, key)
            if op is None:
                conditions.append(column == value)
            elif op == "in":
                conditions.append(column.in_(_in_values(rest)))
            elif op == "eq":
                conditions.append(column == rest)
            else:
                raise errors.BadRequest(f"Unable to filter on a unknown operator '{op}'.")
        elif key in ("created_at", "updated_at"):
            conditions.append(_date_filter(getattr(Image, key), value))
        elif key == "protected":
            conditions.append(Image.protected.is_(_bool_param(key, value)))
        elif key == "tag":
            conditions.append(
                select(ImageTag.id)
                .where(ImageTag.image_id == Image.id, ImageTag.value == value,
                       ImageTag.deleted.is_(False))
                .exists()
            )
        elif key.endswith(("_min", "_max")) and key[:-4] in _INT_COLUMNS:
            column = getattr(Image, key[:-4])
            number = _int_param(key, value)
            conditions.append(column >= number if key.endswith("_min") else column <= number)
        elif key in _INT_COLUMNS:
            conditions.append(getattr(Image, key) == _int_param(key, value))
        elif key in _EXACT_COLUMNS:
            conditions.append(getattr(Image, key) == value)
        else:
            conditions.append(
                select(ImageProperty.id)
                .where(
                    ImageProperty.image_id == Image.id,
                    ImageProperty.name == key,
                    ImageProperty.value == value,
                    ImageProperty.deleted.is_(False),
                )
                .exists()
            )
    return conditions


def _visibility(
    context: RequestContext, params: Sequence[tuple[str, str]]
) -> list[ColumnElement[bool]]:
    visibility = _last(params, "visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise errors.BadRequest(
            f"Invalid visibility value: {visibility}. Allowed values: "
            + ", ".join(VISIBILITIES)
        )
    member_status = _last(params, "member_status") or "accepted"
    if member_status not in _MEMBER_STATUSES:
        raise errors.BadRequest(
            f"Invalid status value: {member_status}. Allowed values: "
            + ", ".join(_MEMBER_STATUSES)
        )
    owner = context.owner
    mine = Image.owner == owner if owner is not None else false()
    if visibility == "community":
        return [Image.visibility == "community"]
    not_foreign_community = or_(Image.visibility != "community", mine)
    if context.is_admin:
        conditions = [not_foreign_community]
        if visibility is not None:
            conditions.append(Image.visibility == visibility)
        return conditions
    member_clause = select(ImageMember.id).where(
        ImageMember.image_id == Image.id,
        ImageMember.member == owner,
        ImageMember.deleted.is_(False),
    )
    if member_status != "all":
        member_clause = member_clause.where(ImageMember.status == member_status)
    shared_with_me = (
        and_(Image.visibility == "shared", member_clause.exists()) if owner is not None else false()
    )
    if visibility == "public":
        return [Image.visibility == "public"]
    if visibility == "private":
        return [Image.visibility == "private", mine]
    if visibility == "shared":
        return [Image.visibility == "shared", or_(mine, shared_with_me)]
    return [or_(Image.visibility == "public", mine, shared_with_me), not_foreign_community]


__all__ = ["SORT_KEYS", "ImagePage", "list_images"]
