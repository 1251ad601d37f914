"""glimpse-manage db purge and db purge_images_table, on every database backend.

The database is filled through SQLAlchemy core with thousands of soft-deleted rows
(old and recent), live rows and a pending_delete image; the real command purges them
in a separate process and the in-process API shows what that means for image ids
(OSSN-0075).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import pty
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, insert, select

from glimpse.db.models import (
    Image,
    ImageLocation,
    ImageMember,
    ImageProperty,
    ImageTag,
    Task,
    utcnow,
)
from tests.support.client import Api

NOW = utcnow()
OLD = NOW - datetime.timedelta(days=40)  # older than purge's 30 days, younger than 180
ANCIENT = NOW - datetime.timedelta(days=400)  # older than purge_images_table's 180 days
RECENT = NOW - datetime.timedelta(days=10)
CHILDREN = (ImageProperty, ImageTag, ImageMember, ImageLocation)


def manage(
    conf: str, *args: str, stderr: Any = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glimpse.cmd.manage", "--config-file", conf, *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=300,
        check=False,
    )


def manage_on_a_terminal(conf: str, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run glimpse-manage with its stderr on a pseudo-terminal; returns what it showed there."""
    controller, terminal = pty.openpty()
    shown: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the last holder of the terminal side closed it
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        result = manage(conf, *args, stderr=terminal)
    finally:
        os.close(terminal)
        reader.join(timeout=30)
        os.close(controller)
    return result, b"".join(shown).decode()


@pytest.fixture
def conf(tmp_path: pathlib.Path, database_url: str) -> str:
    path = tmp_path / "glance-api.conf"
    path.write_text(
        f"[DEFAULT]\ndata_dir = {tmp_path / 'data'}\n"
        f"[database]\nconnection = {database_url.replace('$', '$$')}\n"
    )
    return str(path)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


class Filled:
    """What :func:`fill` put in the database, by kind."""

    def __init__(self) -> None:
        self.old: list[str] = []  # deleted 40 days ago, children too
        self.ancient: list[str] = []  # deleted 400 days ago, children too
        self.recent: list[str] = []  # deleted 10 days ago, children too
        self.live: list[str] = []
        self.pending: list[str] = []  # pending_delete for 400 days, not scrubbed yet


def fill(engine: Engine, old: int, ancient: int, recent: int) -> Filled:
    filled = Filled()
    images: list[dict[str, Any]] = []
    rows: dict[type, list[dict[str, Any]]] = {model: [] for model in (*CHILDREN, Task)}

    def image(kind: list[str], status: str, deleted_at: datetime.datetime | None) -> None:
        image_id = str(uuid.uuid4())
        kind.append(image_id)
        deleted = deleted_at is not None
        images.append(
            dict(
                id=image_id,
                name="x",
                status=status,
                visibility="shared",
                min_disk=0,
                min_ram=0,
                protected=False,
                os_hidden=False,
                created_at=ANCIENT - datetime.timedelta(days=1),
                updated_at=deleted_at or NOW,
                deleted=deleted,
                deleted_at=deleted_at,
            )
        )
        gone = dict(created_at=ANCIENT, deleted=deleted, deleted_at=deleted_at)
        for name in ("os_distro", "hw_disk_bus"):
            rows[ImageProperty].append(dict(image_id=image_id, name=name, value="v", **gone))
        rows[ImageTag].append(dict(image_id=image_id, value="t", **gone))
        rows[ImageMember].append(
            dict(image_id=image_id, member="p", can_share=False, status="accepted", **gone)
        )
        location_status = {"deleted": "deleted", "active": "active"}.get(status, status)
        rows[ImageLocation].append(
            dict(
                image_id=image_id,
                value=f"file:///nowhere/{image_id}",
                meta_data="{}",
                status=location_status,
                position=0,
                created_at=ANCIENT,
                deleted=status == "deleted",
                deleted_at=deleted_at if status == "deleted" else None,
            )
        )
        rows[Task].append(
            dict(
                id=str(uuid.uuid4()),
                type="import",
                status="success",
                image_id=image_id,
                created_at=ANCIENT,
                **{k: v for k, v in gone.items() if k != "created_at"},
            )
        )

    for _ in range(old):
        image(filled.old, "deleted", OLD)
    for _ in range(ancient):
        image(filled.ancient, "deleted", ANCIENT)
    for _ in range(recent):
        image(filled.recent, "deleted", RECENT)
    for _ in range(3):
        image(filled.live, "active", None)
    image(filled.pending, "pending_delete", ANCIENT)
    # A live image may carry a row soft-deleted long ago (Glance did that to members).
    rows[ImageMember].append(
        dict(
            image_id=filled.live[0],
            member="former",
            can_share=False,
            status="accepted",
            created_at=ANCIENT,
            deleted=True,
            deleted_at=OLD,
        )
    )
    with engine.begin() as conn:
        conn.execute(insert(Image), images)
        for model, values in rows.items():
            conn.execute(insert(model), values)
    return filled


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            model.__tablename__: int(conn.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Image, *CHILDREN, Task)
        }


def purged_lines(output: str) -> dict[str, int]:
    found = {}
    for line in output.splitlines():
        if line.startswith("Purged "):
            words = line.split()
            found[words[4]] = int(words[1])
    return found


def test_purge_spares_images_then_purge_images_table_removes_them(
    make_api: Callable[..., Api], conf: str, engine: Engine
) -> None:
    api = make_api()
    filled = fill(engine, old=1500, ancient=700, recent=300)
    before = counts(engine)
    old_children_per_table = {"image_properties": 2, "image_tags": 1, "image_members": 1}
    deleted_old = len(filled.old) + len(filled.ancient)

    # max_rows caps each table; quiet when stderr is not a terminal.
    capped = manage(conf, "db", "purge", "--max_rows", "100")
    assert capped.returncode == 0, capped.stderr
    assert capped.stderr == ""
    assert purged_lines(capped.stdout) == {
        "image_locations": 100,
        "image_members": 100,
        "image_properties": 100,
        "image_tags": 100,
        "tasks": 100,
    }
    assert counts(engine)["images"] == before["images"]

    # -1 purges every row old enough, in batches, with progress on a terminal.
    everything, terminal = manage_on_a_terminal(conf, "db", "purge", "--max_rows", "-1")
    assert everything.returncode == 0, terminal
    assert "\r" in terminal and "image_properties: " in terminal and "rows purged" in terminal
    after = counts(engine)
    assert after["images"] == before["images"]
    for table, per_image in old_children_per_table.items():
        expected = before[table] - per_image * deleted_old
        if table == "image_members":
            expected -= 1  # the live image's former member
        assert after[table] == expected, table
    assert after["image_locations"] == before["image_locations"] - deleted_old
    assert after["tasks"] == before["tasks"] - deleted_old - len(filled.pending)
    assert sum(purged_lines(capped.stdout).values()) + sum(
        purged_lines(everything.stdout).values()
    ) == sum(before.values()) - sum(after.values())
    with engine.connect() as conn:
        for model in (ImageProperty, ImageTag, ImageMember):
            # The pending_delete image may still be restored: its rows stay.
            left = conn.scalar(
                select(func.count()).select_from(model).where(model.image_id == filled.pending[0])
            )
            assert left, model.__tablename__
            for image_id in (filled.recent[0], filled.live[1]):
                assert conn.scalar(
                    select(func.count()).select_from(model).where(model.image_id == image_id)
                )

    # The rows of deleted images stay, so their ids stay taken (OSSN-0075).
    for image_id in (filled.old[0], filled.ancient[0], filled.pending[0]):
        taken = api.post("/v2/images", json={"id": image_id, "name": "reuse"})
        assert taken.status_code == 409 and "already exists" in taken.text

    # purge_images_table removes image rows (with what is left of their children).
    images_purge = manage(conf, "db", "purge_images_table", "--max_rows", "-1")
    assert images_purge.returncode == 0, images_purge.stderr
    assert purged_lines(images_purge.stdout)["images"] == len(filled.ancient)
    assert "OSSN-0075" in images_purge.stdout
    with engine.connect() as conn:
        remaining = set(conn.scalars(select(Image.id)))
    assert not remaining & set(filled.ancient)
    assert set(filled.old + filled.recent + filled.live + filled.pending) <= remaining

    younger = manage(conf, "db", "purge_images_table", "--age_in_days", "30", "--max_rows", "1000")
    assert younger.returncode == 0, younger.stderr
    assert purged_lines(younger.stdout)["images"] == 1000
    again = manage(conf, "db", "purge_images_table", "--age_in_days", "30", "--max_rows", "-1")
    assert purged_lines(again.stdout)["images"] == len(filled.old) - 1000
    with engine.connect() as conn:
        remaining = set(conn.scalars(select(Image.id)))
        orphans = conn.scalar(
            select(func.count())
            .select_from(ImageLocation)
            .where(ImageLocation.image_id.not_in(select(Image.id)))
        )
    assert remaining == set(filled.recent + filled.live + filled.pending)
    assert orphans == 0

    # Now the id is free again: exactly what OSSN-0075 warns about.
    reused = api.create_image(id=filled.old[0], name="reuse")
    assert reused["id"] == filled.old[0]


def test_purge_images_table_removes_children_that_plain_purge_left(
    make_api: Callable[..., Api], conf: str, engine: Engine
) -> None:
    make_api()
    filled = fill(engine, old=0, ancient=5, recent=0)
    result = manage(conf, "db", "purge_images_table")
    assert result.returncode == 0, result.stderr
    assert purged_lines(result.stdout) == {
        "image_locations": 5,
        "image_members": 5,
        "image_properties": 10,
        "image_tags": 5,
        "images": 5,
    }
    assert counts(engine)["images"] == len(filled.live) + len(filled.pending)


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("purge", ("--age_in_days", "abc"), "Invalid int value for age_in_days: abc"),
        ("purge", ("--age_in_days", "1.5"), "Invalid int value for age_in_days: 1.5"),
        ("purge", ("--age_in_days", "-1"), "Must supply a non-negative value for age."),
        ("purge", ("--age_in_days", "100000"), "Maximal age is count of days since epoch."),
        ("purge", ("--max_rows", "many"), "Invalid int value for max_rows: many"),
        ("purge", ("--max_rows", "0"), "Minimal rows limit is 1"),
        ("purge", ("--max_rows", "-2"), "Minimal rows limit is 1"),
        ("purge", ("--max_rows", "2147483648"), "max_rows must be <= 2147483647"),
        ("purge_images_table", ("--age_in_days", "-7"), "Must supply a non-negative value"),
        ("purge_images_table", ("--max_rows=0",), "Minimal rows limit is 1"),
    ],
)
def test_bad_limits_are_refused(
    tmp_path: pathlib.Path, command: str, args: tuple[str, ...], message: str
) -> None:
    url = f"sqlite:///{tmp_path}/never-touched.sqlite"
    path = tmp_path / "glance-api.conf"
    path.write_text(f"[database]\nconnection = {url}\n")
    result = manage(str(path), "db", command, *args)
    assert result.returncode != 0
    assert result.stderr.startswith(f"ERROR: {message}")
    assert "Purged" not in result.stdout


def test_purge_refuses_a_database_that_is_not_synced(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "glance-api.conf"
    path.write_text(f"[database]\nconnection = sqlite:///{tmp_path}/empty.sqlite\n")
    result = manage(str(path), "db", "purge", "--age_in_days", "0")
    assert result.returncode != 0
    assert "glimpse-manage db sync" in result.stderr
