"""The single-pass upload pipeline and streamed reads.

Most tests write through the real filesystem store. A recording writer stands
in for the store only where a test needs the store to misbehave on cue (fail
mid-write, stall) or to observe which thread did what.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from glimpse.data.pipeline import (
    DEFAULT_BLOCK_SIZE,
    PipelineResult,
    SizeMismatch,
    iter_store,
    store_stream,
    validate_hash_algorithm,
)
from glimpse.store import (
    StoredObject,
    StoreDriver,
    StoreFull,
    StoreNotFound,
    StoreUnavailable,
    StoreWriter,
)
from glimpse.store.base import BytesLike
from glimpse.store.filesystem import FilesystemStore

pytestmark = pytest.mark.anyio

KiB = 1 << 10
MiB = 1 << 20
BLOCK = 64 * KiB


class TooLarge(Exception):
    """What the service would map to 413."""


class Body:
    """An upload body that counts how many bytes the pipeline took from it."""

    def __init__(
        self,
        data: bytes | None = None,
        *,
        total: int = 0,
        chunk_sizes: Iterator[int] | None = None,
        then_raise: BaseException | None = None,
        then_hang: bool = False,
    ) -> None:
        self.data = data
        self.total = len(data) if data is not None else total
        self.chunk_sizes = chunk_sizes
        self.then_raise = then_raise
        self.then_hang = then_hang
        self.consumed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        zeros = bytes(64 * KiB)
        while self.consumed < self.total:
            size = next(self.chunk_sizes) if self.chunk_sizes else 64 * KiB
            size = min(size, self.total - self.consumed)
            if self.data is not None:
                chunk = self.data[self.consumed : self.consumed + size]
            else:
                chunk = zeros[:size] if size <= len(zeros) else bytes(size)
            self.consumed += size
            yield chunk
            # A real client body makes the loop wait between chunks.
            await asyncio.sleep(0)
        if self.then_raise is not None:
            raise self.then_raise
        if self.then_hang:
            await asyncio.Event().wait()


class RecordingWriter(StoreWriter):
    """A store writer that records calls and can fail or stall on cue."""

    def __init__(self, fail_after: int | None = None, gate: threading.Event | None = None):
        self.fail_after = fail_after
        self.gate = gate
        self.events: list[str] = []
        self.writes: list[int] = []
        self.threads: set[str] = set()
        self.written = 0

    def write(self, data: BytesLike) -> None:
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait()
        if self.fail_after is not None and self.written + len(data) > self.fail_after:
            self.events.append("write failed")
            raise StoreFull("No space left on device")
        self.writes.append(len(data))
        self.written += len(data)

    def commit(self) -> StoredObject:
        self.threads.add(threading.current_thread().name)
        self.events.append("commit")
        return StoredObject(uri="fake://image", size=self.written)

    def abort(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append("abort")


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "images")


def new_writer(store: FilesystemStore) -> StoreWriter:
    return store.begin_write(str(uuid.uuid4()))


async def upload(
    body: Body,
    writer: StoreWriter,
    *,
    hash_algo: str = "sha512",
    size_limit: int | None = None,
    expected_size: int | None = None,
    block_size: int = BLOCK,
) -> PipelineResult:
    return await store_stream(
        aiter(body),
        writer,
        hash_algo=hash_algo,
        size_limit=size_limit,
        expected_size=expected_size,
        on_limit=lambda limit: TooLarge(f"over {limit}"),
        block_size=block_size,
    )


def random_chunk_sizes(seed: int, largest: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        yield rng.randint(1, largest)


# --- digests and data ------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 3 * BLOCK + 7, 1_000_003]
)
@pytest.mark.parametrize("algorithm", ["sha512", "sha256", "md5", "sha3_256", "blake2b"])
async def test_digests_and_stored_bytes_match(
    store: FilesystemStore, size: int, algorithm: str
) -> None:
    data = os.urandom(size)
    body = Body(data, chunk_sizes=random_chunk_sizes(size, 3 * BLOCK))

    result = await upload(body, new_writer(store), hash_algo=algorithm, expected_size=size)

    assert result.size == size
    assert result.checksum == hashlib.md5(data).hexdigest()
    assert result.os_hash_algo == algorithm
    assert result.os_hash_value == hashlib.new(algorithm, data).hexdigest()
    assert result.stored.size == size
    assert b"".join(store.read(result.stored.uri)) == data


@pytest.mark.parametrize("chunk", [1000, BLOCK - 1, BLOCK, BLOCK + 1, 10 * BLOCK])
async def test_chunk_sizes_around_the_block_size(store: FilesystemStore, chunk: int) -> None:
    data = os.urandom(5 * BLOCK + 3)
    body = Body(data, chunk_sizes=iter(lambda: chunk, None))

    result = await upload(body, new_writer(store))

    assert result.os_hash_value == hashlib.sha512(data).hexdigest()
    assert b"".join(store.read(result.stored.uri)) == data


async def test_default_block_size(store: FilesystemStore) -> None:
    data = os.urandom(5 * DEFAULT_BLOCK_SIZE + 12345)
    body = Body(data, chunk_sizes=random_chunk_sizes(7, 200 * KiB))

    result = await store_stream(
        aiter(body),
        new_writer(store),
        hash_algo="sha512",
        size_limit=None,
        expected_size=None,
        on_limit=TooLarge,
    )

    assert result.checksum == hashlib.md5(data).hexdigest()
    assert result.os_hash_value == hashlib.sha512(data).hexdigest()


async def test_tiny_chunks_are_coalesced_into_blocks() -> None:
    writer = RecordingWriter()
    body = Body(os.urandom(300 * KiB), chunk_sizes=iter(lambda: 100, None))

    result = await upload(body, writer)

    assert result.size == 300 * KiB
    assert all(size >= BLOCK for size in writer.writes[:-1])
    assert len(writer.writes) <= 300 * KiB // BLOCK + 1
    assert writer.events == ["commit"]


async def test_work_happens_in_worker_threads_while_the_loop_stays_free() -> None:
    started, release = threading.Event(), threading.Event()

    class BlockingWriter(RecordingWriter):
        def write(self, data: BytesLike) -> None:
            started.set()
            # Only the event loop releases this write: had it run on the loop, it
            # would wait here in vain.
            assert release.wait(10), "the event loop stalled while a write blocked"
            super().write(data)

    writer = BlockingWriter()
    uploading = asyncio.create_task(upload(Body(total=10 * BLOCK), writer))
    while not started.is_set():
        await asyncio.sleep(0.001)
    release.set()
    await uploading

    assert writer.written == 10 * BLOCK
    assert writer.threads and all(
        name.startswith("glimpse-upload-write") for name in writer.threads
    )
    assert threading.current_thread().name not in writer.threads


# --- limits and sizes --------------------------------------------------------------


async def test_size_limit_stops_the_upload_early(store: FilesystemStore) -> None:
    body = Body(total=256 * MiB)

    with pytest.raises(TooLarge, match=f"over {MiB}"):
        await upload(body, new_writer(store), size_limit=MiB)

    # Stopped at the chunk that crossed the limit, not at the end of the body.
    assert MiB < body.consumed <= MiB + 64 * KiB
    assert os.listdir(store.datadir) == []


async def test_size_limit_is_inclusive(store: FilesystemStore) -> None:
    result = await upload(Body(total=MiB), new_writer(store), size_limit=MiB)

    assert result.size == MiB


async def test_announced_size_over_the_limit_is_refused_before_reading(
    store: FilesystemStore,
) -> None:
    body = Body(total=2 * MiB)

    with pytest.raises(TooLarge):
        await upload(body, new_writer(store), size_limit=MiB, expected_size=2 * MiB)

    assert body.consumed == 0
    assert os.listdir(store.datadir) == []


async def test_short_body_is_refused(store: FilesystemStore) -> None:
    with pytest.raises(SizeMismatch) as caught:
        await upload(Body(total=1000), new_writer(store), expected_size=1001)

    assert (caught.value.expected, caught.value.received) == (1001, 1000)
    assert os.listdir(store.datadir) == []


async def test_long_body_is_refused_as_soon_as_it_overflows(store: FilesystemStore) -> None:
    body = Body(total=64 * MiB)

    with pytest.raises(SizeMismatch):
        await upload(body, new_writer(store), expected_size=MiB)

    assert body.consumed <= MiB + 64 * KiB
    assert os.listdir(store.datadir) == []


async def test_unknown_algorithm_is_refused_before_reading() -> None:
    body = Body(total=MiB)
    writer = RecordingWriter()

    with pytest.raises(ValueError, match="nope"):
        await upload(body, writer, hash_algo="nope")

    assert body.consumed == 0
    assert writer.events == ["abort"]


@pytest.mark.parametrize(
    "name", ["sha512", "sha256", "md5", "sha1", "sha3_512", "blake2b", "blake2s", "sha512_256"]
)
def test_usable_algorithms(name: str) -> None:
    validate_hash_algorithm(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("nope", "Unknown hashing algorithm 'nope'"),
        ("", "Unknown hashing algorithm ''"),
        ("shake_128", "variable-length digest"),
        ("shake_256", "variable-length digest"),
    ],
)
def test_unusable_algorithms(name: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_hash_algorithm(name)


# --- failures and cancellation ------------------------------------------------------


async def test_client_error_mid_body_aborts(store: FilesystemStore) -> None:
    body = Body(total=3 * MiB, then_raise=ConnectionResetError("client went away"))

    with pytest.raises(ConnectionResetError):
        await upload(body, new_writer(store))

    assert os.listdir(store.datadir) == []


async def test_cancellation_aborts_and_leaves_no_file(store: FilesystemStore) -> None:
    body = Body(total=3 * MiB, then_hang=True)
    task = asyncio.create_task(upload(body, new_writer(store)))
    while body.consumed < body.total:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert len(os.listdir(store.datadir)) == 1  # the temporary, mid-upload

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert os.listdir(store.datadir) == []
    await _no_upload_threads_remain()


async def test_store_failure_stops_the_upload_early() -> None:
    writer = RecordingWriter(fail_after=2 * MiB)
    body = Body(total=256 * MiB)

    with pytest.raises(StoreFull):
        await upload(body, writer)

    assert body.consumed < 4 * MiB
    assert writer.events == ["write failed", "abort"]
    await _no_upload_threads_remain()


async def test_commit_failure_propagates_and_aborts() -> None:
    class FailingCommit(RecordingWriter):
        def commit(self) -> StoredObject:
            self.events.append("commit failed")
            raise StoreUnavailable("backend went away")

    writer = FailingCommit()

    with pytest.raises(StoreUnavailable):
        await upload(Body(total=MiB), writer)

    assert writer.events == ["commit failed", "abort"]


async def test_a_stalled_store_holds_back_the_body() -> None:
    gate = threading.Event()
    writer = RecordingWriter(gate=gate)
    body = Body(total=1 << 40)
    task = asyncio.create_task(upload(body, writer))
    await asyncio.sleep(0.3)

    # The writer is stuck on its first block: the pipeline holds at most its
    # queue depth (4 by default) plus the block being filled, not the body.
    assert body.consumed <= 6 * BLOCK + 64 * KiB

    task.cancel()
    await asyncio.sleep(0.05)
    # The pipeline does not return while its write thread could still touch
    # the writer: the abort is queued behind the stalled write.
    assert not task.done()
    assert writer.events == []
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writer.events == ["abort"]
    assert len(writer.writes) == 1  # queued blocks were dropped, not written
    assert writer.threads == {next(iter(writer.threads))}  # abort ran in the write thread


async def _no_upload_threads_remain() -> None:
    # Worker threads exit once their lane is closed; give them a moment.
    for _ in range(200):
        if not any(t.name.startswith("glimpse-upload") for t in threading.enumerate()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("upload worker threads are still running")


# --- streamed reads -----------------------------------------------------------------


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, None),
        (0, 1),
        (1, None),
        (999_999, None),
        (999_999, 5),
        (1_000_000, None),
        (12345, 100_000),
    ],
)
async def test_iter_store_streams_a_range(
    store: FilesystemStore, offset: int, length: int | None
) -> None:
    data = os.urandom(1_000_000)
    writer = new_writer(store)
    writer.write(data)
    stored = writer.commit()
    end = None if length is None else offset + length

    body = await iter_store(store, stored.uri, offset, length, chunk_size=64 * KiB)

    assert await collect(body) == data[offset:end]


async def test_iter_store_raises_not_found_before_iterating(store: FilesystemStore) -> None:
    with pytest.raises(StoreNotFound):
        await iter_store(store, store.uri_for(str(uuid.uuid4())))


async def test_iter_store_releases_the_file_when_stopped_early(store: FilesystemStore) -> None:
    writer = new_writer(store)
    writer.write(os.urandom(4 * MiB))
    stored = writer.commit()
    open_before = len(os.listdir("/proc/self/fd"))

    body = await iter_store(store, stored.uri, chunk_size=64 * KiB)
    assert len(await anext(body)) == 64 * KiB
    await body.aclose()

    for _ in range(200):
        if len(os.listdir("/proc/self/fd")) == open_before:
            break
        await asyncio.sleep(0.01)
    assert len(os.listdir("/proc/self/fd")) == open_before


class EndlessDriver(StoreDriver):
    """A store whose objects never end; counts reads and notices being closed."""

    scheme = "endless"
    store_id = "endless"

    def __init__(self, fail_after: int | None = None, delay: float = 0) -> None:
        self.delay = delay
        self.pulled = 0
        self.closed = threading.Event()
        self.fail_after = fail_after

    def begin_write(self, image_id: str, size: int | None = None) -> StoreWriter:
        raise NotImplementedError

    def read(
        self, uri: str, offset: int = 0, length: int | None = None, chunk_size: int = MiB
    ) -> Iterator[bytes]:
        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    if self.fail_after is not None and self.pulled >= self.fail_after:
                        raise StoreUnavailable("connection reset by the backend")
                    time.sleep(self.delay)
                    self.pulled += 1
                    yield b"x" * chunk_size
            finally:
                self.closed.set()

        return chunks()

    def delete(self, uri: str) -> None:
        raise NotImplementedError

    def stat(self, uri: str) -> int:
        raise NotImplementedError


async def test_iter_store_reads_ahead_a_bounded_number_of_chunks() -> None:
    driver = EndlessDriver()

    body = await iter_store(driver, "endless://x", chunk_size=KiB, read_ahead=3)
    await anext(body)
    await asyncio.sleep(0.2)

    # 3 queued, 1 handed out, at most 1 more held by the reading thread.
    assert driver.pulled <= 5
    await body.aclose()
    assert await asyncio.to_thread(driver.closed.wait, 2)


async def test_iter_store_cancelled_while_waiting_for_a_chunk_closes_the_read() -> None:
    driver = EndlessDriver(delay=0.2)
    body = await iter_store(driver, "endless://x", chunk_size=KiB)
    task = asyncio.create_task(anext(body))
    await asyncio.sleep(0.05)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Closed by the thread once the read in progress returns, not during it.
    assert await asyncio.to_thread(driver.closed.wait, 2)


async def test_iter_store_dropped_by_a_cancelled_consumer_closes_the_read() -> None:
    driver = EndlessDriver()

    async def consume() -> None:
        body = await iter_store(driver, "endless://x", chunk_size=KiB)
        async for _ in body:
            await asyncio.sleep(0.001)  # cancelled here, between chunks

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Async generators abandoned mid-iteration are closed by the event
    # loop's finaliser once unreferenced, as asyncio does for any of them.
    assert await asyncio.to_thread(driver.closed.wait, 2)


async def test_iter_store_closed_before_reading_releases_the_file(
    store: FilesystemStore,
) -> None:
    writer = new_writer(store)
    writer.write(b"never read")
    stored = writer.commit()
    open_before = len(os.listdir("/proc/self/fd"))

    body = await iter_store(store, stored.uri)
    assert len(os.listdir("/proc/self/fd")) == open_before + 1
    await body.aclose()

    assert len(os.listdir("/proc/self/fd")) == open_before
    with pytest.raises(StopAsyncIteration):
        await anext(body)


async def test_iter_store_passes_on_errors_after_the_chunks_before_them() -> None:
    driver = EndlessDriver(fail_after=2)
    body = await iter_store(driver, "endless://x", chunk_size=KiB)

    received = []
    with pytest.raises(StoreUnavailable):
        async for chunk in body:
            received.append(chunk)

    assert len(received) == 2
