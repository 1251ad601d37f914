"""Purging: hard-deleting soft-deleted rows (``glimpse-manage db purge`` and
``db purge_images_table``).

A deleted image keeps its ``images`` row so that its id can never be given to another
image (OSSN-0075, "deleted image IDs may be reassigned"): creating an image with that id
answers 409. So :func:`purge_deleted_rows` removes soft-deleted rows from every table
*except* ``images``, and :func:`purge_images` — to be run rarely, with a long age —
removes image rows themselves, together with whatever of their children is left.

Rows of an image still ``pending_delete`` are never purged: the scrubber has yet to
delete its data, and ``glimpse-scrubber --restore`` revives its properties, tags and
members.

Rows are deleted in batches of :data:`BATCH_ROWS`, one transaction each, walking the
primary key, so a large purge neither holds long locks nor rescans what it removed.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, select, true

from glimpse import errors
from glimpse.db.engine import Database
from glimpse.db.models import Base, utcnow

#: Largest ``max_rows`` (Glance's limit: a signed 32-bit integer).
MAX_ROWS = 2**31 - 1
#: ``max_rows`` meaning "no limit" (Zed).
ALL_ROWS = -1
#: Rows deleted per transaction.
BATCH_ROWS = 1000

#: Reports progress: table name, rows purged from it so far, rows it will purge in all.
Progress = Callable[[str, int, int], None]

_IMAGES = "images"


def check_limits(age_in_days: object, max_rows: object) -> tuple[int, int]:
    """Validate the command's ``--age_in_days`` and ``--max_rows``, as Glance did.

    Raises :class:`~glimpse.errors.InvalidParameter` with Glance's message.
    """
    try:
        age = int(str(age_in_days))
    except ValueError:
        raise errors.InvalidParameter(f"Invalid int value for age_in_days: {age_in_days}") from None
    try:
        rows = int(str(max_rows))
    except ValueError:
        raise errors.InvalidParameter(f"Invalid int value for max_rows: {max_rows}") from None
    if age < 0:
        raise errors.InvalidParameter("Must supply a non-negative value for age.")
    if age >= int(time.time()) // 86400:
        raise errors.InvalidParameter("Maximal age is count of days since epoch.")
    if rows != ALL_ROWS and rows < 1:
        raise errors.InvalidParameter("Minimal rows limit is 1 (or -1 to purge every row).")
    if rows > MAX_ROWS:
        raise errors.InvalidParameter(f"max_rows must be <= {MAX_ROWS}")
    return age, rows


def purgeable_tables() -> list[Table]:
    """Tables with soft-deleted rows, children before parents, ``images`` excluded."""
    return [
        table
        for table in reversed(Base.metadata.sorted_tables)
        if "deleted" in table.c and "deleted_at" in table.c and table.name != _IMAGES
    ]


def purge_deleted_rows(
    db: Database,
    age_in_days: int,
    max_rows: int,
    progress: Progress | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, int]:
    """Hard-delete rows soft-deleted more than ``age_in_days`` ago, at most ``max_rows``
    per table (``-1``: all), from every table but ``images``. Returns rows per table."""
    deleted_before = (now or utcnow()) - datetime.timedelta(days=age_in_days)
    images = _images_table()
    pending = select(images.c.id).where(images.c.status == "pending_delete")
    purged: dict[str, int] = {}
    for table in purgeable_tables():
        condition = and_(table.c.deleted == true(), table.c.deleted_at < deleted_before)
        if _refers_to(table, images):
            condition = and_(condition, table.c.image_id.not_in(pending))
        purged[table.name] = _purge_table(db, table, condition, max_rows, progress)
    return purged


def purge_images(
    db: Database,
    age_in_days: int,
    max_rows: int,
    progress: Progress | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, int]:
    """Hard-delete image rows deleted more than ``age_in_days`` ago (at most ``max_rows``;
    ``-1``: all), each with its remaining child rows. Their ids may then be reused.

    Returns rows removed per table, ``images`` last.
    """
    deleted_before = (now or utcnow()) - datetime.timedelta(days=age_in_days)
    images = _images_table()
    children = [table for table in purgeable_tables() if _refers_to(table, images)]
    condition = and_(
        images.c.deleted == true(),
        images.c.deleted_at < deleted_before,
        images.c.status != "pending_delete",
    )
    purged = {table.name: 0 for table in children}

    def remove(conn: Connection, ids: list[object]) -> None:
        for child in children:
            result = conn.execute(delete(child).where(child.c.image_id.in_(ids)))
            purged[child.name] += result.rowcount
        conn.execute(delete(images).where(images.c.id.in_(ids)))

    purged[_IMAGES] = _in_batches(db, images, condition, max_rows, progress, remove)
    return purged


def _purge_table(
    db: Database,
    table: Table,
    condition: ColumnElement[bool],
    max_rows: int,
    progress: Progress | None,
) -> int:
    (key,) = table.primary_key.columns

    def remove(conn: Connection, ids: list[object]) -> None:
        conn.execute(delete(table).where(key.in_(ids)))

    return _in_batches(db, table, condition, max_rows, progress, remove)


def _in_batches(
    db: Database,
    table: Table,
    condition: ColumnElement[bool],
    max_rows: int,
    progress: Progress | None,
    remove: Callable[[Connection, list[object]], None],
) -> int:
    """Pass the keys of ``table``'s rows matching ``condition`` to ``remove``, a batch per
    transaction, up to ``max_rows``; returns how many."""
    total = _count(db, table, condition, max_rows) if progress else 0
    done = 0
    last: object = None
    while max_rows == ALL_ROWS or done < max_rows:
        size = BATCH_ROWS if max_rows == ALL_ROWS else min(BATCH_ROWS, max_rows - done)
        # Keys first, then a delete by key: MySQL cannot delete from a table with a
        # LIMITed subquery on that same table.
        with db.engine.begin() as conn:
            ids = _next_ids(conn, table, condition, last, size)
            if ids:
                remove(conn, ids)
        done += len(ids)
        if progress and ids:
            progress(table.name, done, max(total, done))
        if len(ids) < size:
            break
        last = ids[-1]
    if progress and done and done < total:
        # Rows that went away meanwhile: finish the report anyway.
        progress(table.name, done, done)
    return done


def _next_ids(
    conn: Connection, table: Table, condition: ColumnElement[bool], after: object, size: int
) -> list[object]:
    (key,) = table.primary_key.columns
    query = select(key).where(condition)
    if after is not None:
        query = query.where(key > after)
    return list(conn.scalars(query.order_by(key).limit(size)))


def _count(db: Database, table: Table, condition: ColumnElement[bool], max_rows: int) -> int:
    with db.engine.connect() as conn:
        found = int(conn.scalar(select(func.count()).select_from(table).where(condition)) or 0)
    return found if max_rows == ALL_ROWS else min(found, max_rows)


def _images_table() -> Table:
    return Base.metadata.tables[_IMAGES]


def _refers_to(table: Table, parent: Table) -> bool:
    return any(fk.column.table is parent for fk in table.foreign_keys)
