"""The contract every storage driver honours, written once for all of them.

The ``driver`` and ``harness`` fixtures (``conftest.py``) are parametrised over
every driver; nothing here may depend on which one is running.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from glimpse.store import (
    StoreConflict,
    StoredObject,
    StoreDriver,
    StoreNotFound,
    StoreWriter,
)
from tests.store.conftest import StoreHarness

MiB = 1 << 20


def store_bytes(
    driver: StoreDriver, image_id: str, data: bytes, piece: int = 65536
) -> StoredObject:
    writer = driver.begin_write(image_id)
    for start in range(0, len(data), piece):
        writer.write(data[start : start + piece])
    return writer.commit()


def read_all(driver: StoreDriver, uri: str, **kwargs: int | None) -> bytes:
    chunks = list(driver.read(uri, **kwargs))  # type: ignore[arg-type]
    assert all(chunks), "drivers never yield empty chunks"
    return b"".join(chunks)


def test_round_trip(harness: StoreHarness, image_id: str) -> None:
    driver = harness.driver
    data = os.urandom(300_001)

    stored = store_bytes(driver, image_id, data, piece=7777)

    assert stored.uri.startswith(driver.scheme + "://")
    assert image_id in stored.uri
    assert stored.size == len(data)
    assert isinstance(stored.metadata, dict)
    assert read_all(driver, stored.uri) == data
    assert driver.stat(stored.uri) == len(data)
    assert len(harness.leftovers()) == 1


@pytest.mark.parametrize("size", [0, 1, 300_001, 6 * MiB + 1])
def test_round_trip_with_the_size_announced(
    harness: StoreHarness, image_id: str, size: int
) -> None:
    # The upload service and imports announce the size when they know it.
    driver = harness.driver
    data = os.urandom(size)
    writer = driver.begin_write(image_id, size)
    for start in range(0, size, 777_777):
        writer.write(data[start : start + 777_777])

    stored = writer.commit()

    assert stored.size == size
    assert read_all(driver, stored.uri) == data
    assert driver.stat(stored.uri) == size


def test_zero_byte_object(driver: StoreDriver, image_id: str) -> None:
    stored = driver.begin_write(image_id).commit()

    assert stored.size == 0
    assert driver.stat(stored.uri) == 0
    assert list(driver.read(stored.uri)) == []
    assert list(driver.read(stored.uri, offset=0, length=10)) == []


def test_large_object_is_streamed(driver: StoreDriver, image_id: str) -> None:
    written = hashlib.sha256()
    writer = driver.begin_write(image_id)
    for _ in range(64):
        piece = os.urandom(MiB)
        written.update(piece)
        writer.write(piece)
    stored = writer.commit()

    assert stored.size == 64 * MiB
    assert driver.stat(stored.uri) == 64 * MiB
    read_back = hashlib.sha256()
    largest_chunk = 0
    for chunk in driver.read(stored.uri, chunk_size=MiB):
        largest_chunk = max(largest_chunk, len(chunk))
        read_back.update(chunk)
    assert read_back.hexdigest() == written.hexdigest()
    assert largest_chunk <= MiB


def test_written_buffers_may_be_reused_once_write_returns(
    driver: StoreDriver, image_id: str
) -> None:
    # The upload pipeline refills one page-aligned block after each write(): a driver
    # that kept a reference instead of the bytes would store the later contents.
    from glimpse.data.blocks import Block

    block = Block(MiB)
    pieces = [os.urandom(MiB) for _ in range(6)] + [os.urandom(1234)]
    writer = driver.begin_write(image_id)
    for piece in pieces:
        block.fill(0, piece)
        writer.write(block.view(len(piece)))
    block.fill(0, bytes(MiB))  # scribble over the last one too
    stored = writer.commit()

    assert read_all(driver, stored.uri) == b"".join(pieces)


RANGE_DATA_SIZE = 10_000
RANGE_CHUNK = 1000


@pytest.mark.parametrize(
    "offset",
    [
        0,
        1,
        RANGE_CHUNK - 1,
        RANGE_CHUNK,
        RANGE_CHUNK + 1,
        4321,
        RANGE_DATA_SIZE - RANGE_CHUNK,
        RANGE_DATA_SIZE - 2,
        RANGE_DATA_SIZE - 1,
        RANGE_DATA_SIZE,
        RANGE_DATA_SIZE + 1,
        10 * RANGE_DATA_SIZE,
    ],
)
@pytest.mark.parametrize("length", [None, 0, 1, 2, 999, 1000, 1001, RANGE_DATA_SIZE, 10**9])
def test_ranged_read(driver: StoreDriver, image_id: str, offset: int, length: int | None) -> None:
    data = os.urandom(RANGE_DATA_SIZE)
    stored = store_bytes(driver, image_id, data)
    end = None if length is None else offset + length

    chunks = list(driver.read(stored.uri, offset=offset, length=length, chunk_size=RANGE_CHUNK))

    assert b"".join(chunks) == data[offset:end]
    assert all(0 < len(chunk) <= RANGE_CHUNK for chunk in chunks)


def test_last_byte(driver: StoreDriver, image_id: str) -> None:
    stored = store_bytes(driver, image_id, b"abcdef")

    assert read_all(driver, stored.uri, offset=5) == b"f"
    assert read_all(driver, stored.uri, offset=5, length=1) == b"f"
    assert read_all(driver, stored.uri, offset=6) == b""


@pytest.mark.parametrize(
    ("offset", "length", "chunk_size"), [(-1, None, 10), (0, -1, 10), (0, None, 0)]
)
def test_read_rejects_impossible_ranges(
    driver: StoreDriver, image_id: str, offset: int, length: int | None, chunk_size: int
) -> None:
    stored = store_bytes(driver, image_id, b"data")

    with pytest.raises(ValueError):
        driver.read(stored.uri, offset=offset, length=length, chunk_size=chunk_size)


def test_read_stopped_early_can_be_closed(driver: StoreDriver, image_id: str) -> None:
    stored = store_bytes(driver, image_id, os.urandom(10_000))

    chunks = driver.read(stored.uri, chunk_size=1000)
    assert len(next(chunks)) == 1000
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    # A closed read does not hold the object: it can still be deleted.
    driver.delete(stored.uri)


def test_missing_object_raises_before_iteration(driver: StoreDriver, image_id: str) -> None:
    stored = store_bytes(driver, image_id, b"x")
    missing = stored.uri.replace(image_id, str(uuid.uuid4()))

    # Raised by read() itself, not by the first next(): callers pick the
    # response status before sending anything.
    with pytest.raises(StoreNotFound):
        driver.read(missing)
    with pytest.raises(StoreNotFound):
        driver.stat(missing)
    with pytest.raises(StoreNotFound):
        driver.delete(missing)


def test_delete(harness: StoreHarness, image_id: str) -> None:
    driver = harness.driver
    stored = store_bytes(driver, image_id, b"to be deleted")

    driver.delete(stored.uri)

    assert harness.leftovers() == []
    with pytest.raises(StoreNotFound):
        driver.stat(stored.uri)
    with pytest.raises(StoreNotFound):
        driver.read(stored.uri)
    with pytest.raises(StoreNotFound):
        driver.delete(stored.uri)


#: Past one Swift segment (1 MiB) and one S3 part (5 MiB) of the test stores: a write
#: that dies after this much has put something in the backend already.
ABANDONED = 6 * MiB + 1


def dead_writer(driver: StoreDriver, image_id: str) -> StoreWriter:
    """A write that stops as if its process were killed: neither committed nor aborted."""
    writer = driver.begin_write(image_id)
    for _ in range(ABANDONED // MiB):
        writer.write(os.urandom(MiB))
    writer.write(os.urandom(ABANDONED % MiB))
    return writer


def test_abort_leaves_nothing(harness: StoreHarness, image_id: str) -> None:
    writer = harness.driver.begin_write(image_id)

    writer.abort()

    assert harness.leftovers() == []


def test_abort_after_partial_write_leaves_nothing(harness: StoreHarness, image_id: str) -> None:
    writer = dead_writer(harness.driver, image_id)
    assert harness.leftovers(), "a write this large has reached the backend"

    writer.abort()
    writer.abort()  # idempotent

    assert harness.leftovers() == []
    # Nothing of the aborted write blocks a new one for the same image.
    stored = store_bytes(harness.driver, image_id, b"second try")
    assert read_all(harness.driver, stored.uri) == b"second try"


def test_abort_after_commit_keeps_the_data(driver: StoreDriver, image_id: str) -> None:
    writer = driver.begin_write(image_id)
    writer.write(b"kept")
    stored = writer.commit()

    writer.abort()

    assert read_all(driver, stored.uri) == b"kept"


def test_writer_cannot_be_used_after_it_ended(driver: StoreDriver, image_id: str) -> None:
    committed = driver.begin_write(image_id)
    committed.commit()
    aborted = driver.begin_write(str(uuid.uuid4()))
    aborted.abort()

    for writer in (committed, aborted):
        with pytest.raises(ValueError):
            writer.write(b"late")
        with pytest.raises(ValueError):
            writer.commit()


def test_context_manager_aborts_on_error(harness: StoreHarness, image_id: str) -> None:
    with pytest.raises(RuntimeError), harness.driver.begin_write(image_id) as writer:
        writer.write(b"partial")
        raise RuntimeError("client went away")

    assert harness.leftovers() == []


def test_context_manager_keeps_committed_data(driver: StoreDriver, image_id: str) -> None:
    with driver.begin_write(image_id) as writer:
        writer.write(b"whole")
        stored = writer.commit()

    assert read_all(driver, stored.uri) == b"whole"


def test_existing_data_is_never_overwritten(harness: StoreHarness, image_id: str) -> None:
    driver = harness.driver
    stored = store_bytes(driver, image_id, b"original")

    with pytest.raises(StoreConflict):
        store_bytes(driver, image_id, b"replacement")

    assert read_all(driver, stored.uri) == b"original"
    assert len(harness.leftovers()) == 1


@pytest.mark.parametrize("size", [5, ABANDONED], ids=["small", "in-pieces"])
def test_racing_writers_of_one_image_first_commit_wins(
    harness: StoreHarness, image_id: str, size: int
) -> None:
    driver = harness.driver
    first = driver.begin_write(image_id)
    second = driver.begin_write(image_id)
    winner, loser = os.urandom(size), os.urandom(size)
    for writer, data in ((first, winner), (second, loser)):
        for start in range(0, size, MiB):
            writer.write(data[start : start + MiB])

    stored = first.commit()
    with pytest.raises(StoreConflict):
        second.commit()

    assert read_all(driver, stored.uri) == winner
    # The loser cleaned up after itself: once the winner's data is gone, nothing is left.
    driver.delete(stored.uri)
    assert harness.leftovers() == []


def test_concurrent_writers_of_different_images(harness: StoreHarness) -> None:
    driver = harness.driver
    images = {str(uuid.uuid4()): os.urandom(1_000_000 + n) for n in range(8)}
    # All writers start before any finishes, so their writes interleave.
    started = threading.Barrier(len(images))

    def upload(image_id: str) -> StoredObject:
        writer = driver.begin_write(image_id)
        started.wait()
        data = images[image_id]
        for start in range(0, len(data), 50_000):
            writer.write(data[start : start + 50_000])
        return writer.commit()

    with ThreadPoolExecutor(len(images)) as pool:
        stored = dict(zip(images, pool.map(upload, images), strict=True))

    for image_id, data in images.items():
        assert read_all(driver, stored[image_id].uri) == data
        assert stored[image_id].size == len(data)
    assert len(harness.leftovers()) == len(images)


def test_discard_temporaries_removes_what_dead_writers_left(
    harness: StoreHarness, image_id: str
) -> None:
    driver = harness.driver
    other_id = str(uuid.uuid4())
    dead = dead_writer(driver, image_id)
    left_by_dead = Counter(harness.leftovers())
    assert left_by_dead, "a write this large has reached the backend"
    # A second write of the same image commits after the first one died.
    data = os.urandom(ABANDONED)
    stored = store_bytes(driver, image_id, data, piece=MiB)
    committed = Counter(harness.leftovers()) - left_by_dead
    other = dead_writer(driver, other_id)
    left_by_other = Counter(harness.leftovers()) - left_by_dead - committed

    assert driver.discard_temporaries(image_id)

    assert Counter(harness.leftovers()) == committed + left_by_other
    assert read_all(driver, stored.uri) == data
    assert driver.discard_temporaries(other_id)
    assert Counter(harness.leftovers()) == committed
    assert driver.discard_temporaries(image_id) == []
    assert driver.discard_temporaries(str(uuid.uuid4())) == []
    for writer in (dead, other):
        writer.abort()
    assert read_all(driver, stored.uri) == data


def test_cleanup_stale_temporaries_removes_old_leftovers_only(
    harness: StoreHarness, image_id: str
) -> None:
    driver = harness.driver
    dead = dead_writer(driver, image_id)
    data = os.urandom(ABANDONED)
    stored = store_bytes(driver, str(uuid.uuid4()), data, piece=MiB)
    before = sorted(harness.leftovers())

    # Everything is newer than an hour: a write that may still be running.
    assert driver.cleanup_stale_temporaries(3600) == []
    assert sorted(harness.leftovers()) == before
    time.sleep(1.1)  # past the second that backends round modification times to
    would = driver.cleanup_stale_temporaries(0, dry_run=True)
    assert would
    assert sorted(harness.leftovers()) == before

    assert sorted(driver.cleanup_stale_temporaries(0)) == sorted(would)

    remaining = sorted(harness.leftovers())
    assert len(remaining) < len(before)
    assert image_id not in " ".join(remaining)
    # The committed image, segments included, is whole.
    assert read_all(driver, stored.uri) == data
    dead.abort()


def test_local_path_is_absent_or_holds_the_bytes(driver: StoreDriver, image_id: str) -> None:
    stored = store_bytes(driver, image_id, b"zero-copy")

    path = driver.local_path(stored.uri)

    if path is not None:
        with open(path, "rb") as file:
            assert file.read() == b"zero-copy"
