"""Page requests for metadef listings (namespaces, tags): limit, marker, sort key and direction.

One direction applies to every key, and ``created_at`` then the row id break ties, as in
Glance's ``paginate_query``; a marker names the last row of the previous page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import QueryableAttribute

from glimpse import errors
from glimpse.runtime import Runtime
from glimpse.services.validation import check_text

#: What a listing sorts on: a mapped column or an expression over columns.
SortColumn = ColumnElement[Any] | QueryableAttribute[Any]


@dataclasses.dataclass(frozen=True)
class PageRequest:
    limit: int | None
    marker: str | None
    sort_key: str
    sort_dir: str


def last(params: Sequence[tuple[str, str]], key: str) -> str | None:
    values = [v for k, v in params if k == key]
    return values[-1] if values else None


def parse(
    rt: Runtime,
    params: Sequence[tuple[str, str]],
    sort_keys: Sequence[str],
    default_limit: bool,
) -> PageRequest:
    """Read the paging parameters; without ``limit`` the page is unbounded unless
    ``default_limit`` (then ``limit_param_default``). ``api_limit_max`` always caps it."""
    for key, value in params:
        check_text(key, "Query parameter name")
        check_text(value, "Query parameter value")
    sort_dir = last(params, "sort_dir") or "desc"
    if sort_dir not in ("asc", "desc"):
        raise errors.BadRequest(f"Invalid sort direction: {sort_dir}")
    sort_key = last(params, "sort_key") or "created_at"
    if sort_key not in sort_keys:
        raise errors.BadRequest(
            f"Invalid sort key: {sort_key}. It should be one of the following: "
            + ", ".join(sort_keys)
            + "."
        )
    raw = last(params, "limit")
    limit: int | None = None
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError as exc:
            raise errors.BadRequest("limit param must be an integer") from exc
        if limit < 0:
            raise errors.BadRequest("limit param must be positive")
    elif default_limit:
        limit = int(rt.conf.limit_param_default)
    if limit is not None:
        limit = min(limit, int(rt.conf.api_limit_max))
    return PageRequest(
        limit=limit, marker=last(params, "marker"), sort_key=sort_key, sort_dir=sort_dir
    )


def order_by(keys: Sequence[SortColumn], direction: str) -> list[ColumnElement[Any]]:
    return [k.asc() if direction == "asc" else k.desc() for k in keys]


def after(keys: Sequence[SortColumn], values: Sequence[Any], direction: str) -> ColumnElement[bool]:
    """Rows strictly beyond the marker row whose sort values are ``values``."""
    clauses = []
    for i, key in enumerate(keys):
        equal = [keys[j] == values[j] for j in range(i)]
        beyond = key > values[i] if direction == "asc" else key < values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)
