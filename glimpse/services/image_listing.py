"""Listing images: filters, both sort syntaxes, keyset paging and who sees what."""

from __future__ import annotations

import dataclasses
import datetime
import re
import urllib.parse
from collections.abc import Callable, Sequence
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
#: The integer columns filters compare, with the largest value each can hold
#: (PostgreSQL refuses to compare an INTEGER column with a value past its range).
_INT_COLUMNS = {
    "size": 2**63 - 1,
    "virtual_size": 2**63 - 1,
    "min_ram": 2**31 - 1,
    "min_disk": 2**31 - 1,
}
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
    # MySQL/MariaDB's default collations ignore case and trailing spaces; filters
    # and ownership must still match byte for byte there.
    strict = rt.db.backend == "mysql"
    conditions = _filters(
        params, strict, lambda name: rt.property_protection.allows(context, name, "read")
    )
    with rt.db.transaction() as session:
        conditions.extend(_visibility(context, params, strict))
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
    keys = [k.strip() for k in _all(params, "sort_key")]
    dirs = [d.strip() for d in _all(params, "sort_dir")]
    sort = _all(params, "sort")
    if sort and (keys or dirs):
        raise errors.BadRequest(
            "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'."
        )
    order: list[tuple[str, str]] = []
    given_dirs: list[str] = []
    if sort:
        for item in ",".join(sort).split(","):
            key, _, direction = item.strip().partition(":")
            direction = direction.strip() or "desc"
            order.append((_sort_key(key.strip()), _sort_dir(direction)))
        given_dirs = [direction for _, direction in order]
    else:
        for d in dirs:
            _sort_dir(d)
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise errors.BadRequest("Number of sort dirs does not match the number of sort keys")
        if not keys:
            keys = ["created_at"]
        for i, key in enumerate(keys):
            direction = dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")
            order.append((_sort_key(key), direction))
        given_dirs = dirs
    # As Glance does: the tiebreakers follow the direction only when the request
    # gave exactly one; with several (or none) they sort descending.
    tiebreak_dir = given_dirs[0] if len(given_dirs) == 1 else "desc"
    present = {k for k, _ in order}
    for tiebreak in ("created_at", "id"):
        if tiebreak not in present:
            order.append((tiebreak, tiebreak_dir))
    return order


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise errors.BadRequest(
            f"Invalid sort key: {key}. It should be one of the following: "
            + ", ".join(SORT_KEYS)
            + "."
        )
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


def _split_op(value: str) -> tuple[str, str]:
    """Split ``op:value``; no colon, or a whole value that is an ISO 8601 date, means ``eq``."""
    op, sep, rest = value.partition(":")
    if not sep:
        return "eq", value
    try:
        timeutils.parse_isotime(value)
    except ValueError:
        return op, rest
    return "eq", value


# A double-quoted value (which may hold commas), or a run of non-commas, or an
# empty value between two commas — the API working group's rule Glance follows.
_IN_VALUE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)",?|([^,]+),?|,')


def _in_values(text: str) -> list[str]:
    inside = False
    for i, ch in enumerate(text):
        if ch != '"' or (i and text[i - 1] == "\\"):
            continue
        if not inside and i and text[i - 1] != ",":
            raise errors.BadRequest(
                f"Invalid filter value {text}. There is no comma before opening quotation mark."
            )
        if inside and i + 1 != len(text) and text[i + 1] != ",":
            raise errors.BadRequest(
                f"Invalid filter value {text}. There is no comma after closing quotation mark."
            )
        inside = not inside
    if inside:
        raise errors.BadRequest(f"Invalid filter value {text}. The quote is not closed.")
    return [quoted or plain for quoted, plain in _IN_VALUE.findall(text)]


def _equals(column: Any, value: Any, strict: bool) -> ColumnElement[bool]:
    if not strict:
        return column == value
    return and_(column == value, func.binary(column) == value)


def _one_of(column: Any, values: list[str], strict: bool) -> ColumnElement[bool]:
    if not strict:
        return column.in_(values)
    return and_(column.in_(values), func.binary(column).in_(values))


def _parse_date(text: str) -> datetime.datetime:
    try:
        parsed = timeutils.parse_isotime(text)
    except ValueError as exc:
        raise errors.BadRequest(f"Invalid date format '{text}'") from exc
    try:
        return timeutils.normalize_time(parsed)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 and 9999-12-31T23:59:59-01:00 have no UTC time.
        raise errors.BadRequest(f"Date '{text}' is out of range once in UTC") from None


def _date_filter(column: Any, raw: str) -> ColumnElement[bool]:
    op, text = _split_op(raw)
    if op not in _DATE_OPS:
        raise errors.BadRequest(f"Invalid operator '{op}' for date filter")
    value = _parse_date(text)
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


def _int_param(key: str, value: str, largest: int = 2**63 - 1) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise errors.BadRequest(
            f"Invalid value '{value}' for '{key}': expected an integer."
        ) from exc
    if abs(number) > largest:
        raise errors.BadRequest(f"Value of '{key}' is out of range.")
    return number


def _filters(
    params: Sequence[tuple[str, str]], strict: bool, readable: Callable[[str], bool]
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Image.deleted.is_(False),
        Image.status.not_in(_HIDDEN_STATUSES),
    ]
    hidden = _last(params, "os_hidden")
    shown = _bool_param("os_hidden", hidden) if hidden is not None else False
    conditions.append(Image.os_hidden.is_(shown))
    for key, value in params:
        if key in _PAGING_KEYS or key in ("member_status", "visibility", "os_hidden"):
            continue
        if key == "changes-since":
            raise errors.BadRequest("The 'changes-since' filter is not available in v2.")
        if key in _IN_FILTERS:
            op, rest = _split_op(value)
            column = getattr(Image, key)
            if op == "in":
                conditions.append(_one_of(column, _in_values(rest), strict))
            elif op == "eq":
                conditions.append(_equals(column, rest, strict))
            else:
                raise errors.BadRequest(f"Unable to filter on a unknown operator '{op}'.")
        elif key in ("created_at", "updated_at"):
            conditions.append(_date_filter(getattr(Image, key), value))
        elif key == "protected":
            conditions.append(Image.protected.is_(_bool_param(key, value)))
        elif key == "tag":
            conditions.append(
                select(ImageTag.id)
                .where(
                    ImageTag.image_id == Image.id,
                    _equals(ImageTag.value, value.strip(), strict),
                    ImageTag.deleted.is_(False),
                )
                .exists()
            )
        elif key.endswith(("_min", "_max")) and key[:-4] in _INT_COLUMNS:
            column = getattr(Image, key[:-4])
            number = _int_param(key, value, _INT_COLUMNS[key[:-4]])
            conditions.append(column >= number if key.endswith("_min") else column <= number)
        elif key in _INT_COLUMNS:
            conditions.append(getattr(Image, key) == _int_param(key, value, _INT_COLUMNS[key]))
        elif key in _EXACT_COLUMNS:
            conditions.append(_equals(getattr(Image, key), value, strict))
        elif not readable(key):
            # A property the caller may not read must not be found by its value either.
            conditions.append(false())
        else:
            conditions.append(
                select(ImageProperty.id)
                .where(
                    ImageProperty.image_id == Image.id,
                    _equals(ImageProperty.name, key, strict),
                    _equals(ImageProperty.value, value, strict),
                    ImageProperty.deleted.is_(False),
                )
                .exists()
            )
    return conditions


def _visibility(
    context: RequestContext, params: Sequence[tuple[str, str]], strict: bool
) -> list[ColumnElement[bool]]:
    visibility = _last(params, "visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise errors.BadRequest(
            f"Invalid visibility value: {visibility}. Allowed values: " + ", ".join(VISIBILITIES)
        )
    member_status = _last(params, "member_status")
    if member_status is None:
        member_status = "accepted"
    if member_status not in _MEMBER_STATUSES:
        raise errors.BadRequest(
            f"Invalid status value: {member_status}. Allowed values: " + ", ".join(_MEMBER_STATUSES)
        )
    owner = context.owner
    mine = _equals(Image.owner, owner, strict) if owner is not None else false()
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
        _equals(ImageMember.member, owner, strict),
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
