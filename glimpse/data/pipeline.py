"""The single-pass upload pipeline, and streamed reads from synchronous drivers.

An upload is received once and, as it arrives, counted against the size
limit, fed to MD5 (Glance's ``checksum``) and to the configured multihash
algorithm (``os_hash_value``), and written to the store. Each of those three
consumers runs in its own worker thread so that hashing (hashlib releases the
GIL on large buffers), disk or network writes and receiving the next chunks on
the event loop all overlap. Memory stays bounded: at most ``depth`` blocks of
``block_size`` bytes are in flight per consumer, and the three share the same
immutable blocks.

Any failure, including cancellation, aborts the store write so no partial
data survives, then propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures import Future as ConcurrentFuture
from typing import TypeVar

from glimpse.data.blocks import Block, BlockPool
from glimpse.store.base import BytesLike, StoredObject, StoreDriver, StoreWriter

LOG = logging.getLogger(__name__)

#: Received chunks are copied into blocks this big before hashing and
#: writing: per-call overheads (thread hand-off, syscalls) dominate below it,
#: and O_DIRECT disk writes want large aligned blocks.
DEFAULT_BLOCK_SIZE = 4 << 20
#: Blocks the slowest lane may lag behind the one being filled; with
#: DEFAULT_BLOCK_SIZE about 12 MiB of an upload is in memory at a time.
DEFAULT_DEPTH = 2
#: Idle blocks each process keeps for the next uploads.
_IDLE_BLOCKS_KEPT = 8
#: Bytes a streamed read fetches ahead of the consumer (at least one chunk).
DEFAULT_READ_AHEAD_BYTES = 4 << 20
#: ``os_hash_value`` is a 128-character column (Glance's limit).
MAX_HEXDIGEST_LENGTH = 128

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    """What a completed upload produced: its size, digests and stored location."""

    size: int
    #: MD5 hex digest, Glance's ``checksum``.
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    stored: StoredObject
    #: Set by the caller from format inspection; the pipeline itself never parses data.
    virtual_size: int | None = None


class SizeMismatch(Exception):
    """The body was shorter or longer than the size announced before the upload."""

    def __init__(self, expected: int, received: int) -> None:
        self.expected = expected
        self.received = received
        if received > expected:
            message = f"Received more than the expected {expected} bytes of image data"
        else:
            message = f"Expected {expected} bytes of image data, received {received}"
        super().__init__(message)


def validate_hash_algorithm(name: str) -> None:
    """Raise ValueError unless ``name`` is a hashlib algorithm usable for ``os_hash_value``.

    Called at startup on the configured ``hashing_algorithm`` so a typo fails
    loudly instead of failing every upload.
    """
    try:
        hasher = hashlib.new(name)
    except (TypeError, ValueError) as exc:
        known = ", ".join(sorted(hashlib.algorithms_available))
        raise ValueError(f"Unknown hashing algorithm {name!r}; available: {known}") from exc
    # SHAKE digests have no fixed length (hashlib reports digest_size 0), so
    # there is no single value to store and compare.
    if hasher.digest_size == 0:
        raise ValueError(f"Hashing algorithm {name!r} has a variable-length digest")
    if hasher.digest_size * 2 > MAX_HEXDIGEST_LENGTH:
        raise ValueError(
            f"Hashing algorithm {name!r} gives {hasher.digest_size * 2} hex characters, "
            f"more than the {MAX_HEXDIGEST_LENGTH} that fit in os_hash_value"
        )


async def store_stream(
    chunks: AsyncIterator[bytes],
    writer: StoreWriter,
    *,
    hash_algo: str,
    size_limit: int | None,
    expected_size: int | None,
    on_limit: Callable[[int], Exception],
    block_size: int = DEFAULT_BLOCK_SIZE,
    depth: int = DEFAULT_DEPTH,
) -> PipelineResult:
    """Write ``chunks`` through ``writer`` once, hashing and size-checking on the way.

    ``size_limit`` is the most bytes accepted (``None``: no limit); as soon as
    the bytes received exceed it, or ``expected_size`` alone does, the
    exception ``on_limit(size_limit)`` is raised, so the caller chooses which
    quota or cap it reports. A body longer or shorter than ``expected_size``
    raises :class:`SizeMismatch`; an unusable ``hash_algo`` raises ValueError.

    On any exception, including :class:`asyncio.CancelledError`, the writer is
    aborted (in its worker thread, after any write still running there) before
    the exception propagates. The writer must not be used by the caller while
    this runs. A cancellation arriving while the final commit is already under
    way cannot undo it: the data then stays in the store.
    """
    # The writer's lane comes first so that every failure, even a refused
    # algorithm, aborts the writer off the event loop in the same way.
    writer_lane = _Lane("write", writer.write)
    hash_lanes: list[_Lane] = []
    try:
        if block_size <= 0 or depth <= 0:
            raise ValueError("block_size and depth must be positive")
        validate_hash_algorithm(hash_algo)
        if size_limit is not None and expected_size is not None and expected_size > size_limit:
            raise on_limit(size_limit)
        # usedforsecurity=False: MD5 is a legacy checksum here, and FIPS-mode
        # OpenSSL refuses it otherwise.
        md5 = hashlib.md5(usedforsecurity=False)
        hasher = hashlib.new(hash_algo)
        hash_lanes += [_Lane("md5", md5.update), _Lane(hash_algo, hasher.update)]
        lanes = [writer_lane, *hash_lanes]
        pool = _pool(block_size)
        # Blocks handed to the lanes, oldest first, with each lane's future for them.
        in_flight: deque[tuple[Block, list[asyncio.Future[None]]]] = deque()

        async def settle_oldest() -> None:
            block, futures = in_flight.popleft()
            for future in futures:
                await future
            # Only once every lane is done with it; a failure above drops the block instead.
            pool.give(block)

        async def feed(block: Block, length: int) -> None:
            view = block.view(length)
            in_flight.append((block, [lane.submit(view) for lane in lanes]))
            # Waiting here is the back-pressure: we stop reading from the client
            # while the slowest lane is `depth` blocks behind. It also surfaces a
            # failed write (e.g. a full disk) within a few blocks rather than at
            # the end of the upload.
            while len(in_flight) > depth:
                await settle_oldest()

        received = 0
        block, filled = pool.take(), 0
        async for chunk in chunks:
            if not chunk:
                continue
            received += len(chunk)
            if size_limit is not None and received > size_limit:
                raise on_limit(size_limit)
            if expected_size is not None and received > expected_size:
                raise SizeMismatch(expected_size, received)
            rest: bytes | memoryview = chunk
            while rest:
                copied = block.fill(filled, rest)
                filled += copied
                rest = memoryview(rest)[copied:] if copied < len(rest) else b""
                if filled == block.size:
                    await feed(block, filled)
                    block, filled = pool.take(), 0
        if filled:
            await feed(block, filled)
        else:
            pool.give(block)
        if expected_size is not None and received != expected_size:
            raise SizeMismatch(expected_size, received)
        while in_flight:
            await settle_oldest()
        # The MD5 lane is done: a store that reports an MD5 checks its copy against it.
        stored = await writer_lane.call(functools.partial(writer.commit_with_md5, md5.hexdigest()))
    except BaseException:
        for lane in hash_lanes:
            lane.close()
        await _abort_in_lane(writer_lane, writer)
        raise
    for lane in lanes:
        lane.close()
    return PipelineResult(
        size=received,
        checksum=md5.hexdigest(),
        os_hash_algo=hash_algo,
        os_hash_value=hasher.hexdigest(),
        stored=stored,
    )


async def digest_stream(
    chunks: AsyncIterator[bytes], *, hash_algo: str, expected_size: int | None
) -> PipelineResult:
    """Hash ``chunks`` exactly as :func:`store_stream` hashes an upload, storing nothing.

    For data that stays where it is (a location added with Images API 2.17): its
    ``checksum`` and ``os_hash_value`` come from the same single pass. The result's
    ``stored`` names no location. Raises as :func:`store_stream` does.
    """
    return await store_stream(
        chunks,
        _Discard(),
        hash_algo=hash_algo,
        size_limit=None,
        expected_size=expected_size,
        on_limit=lambda limit: ValueError(f"more than {limit} bytes"),
    )


class _Discard(StoreWriter):
    """A writer that keeps nothing, for :func:`digest_stream`."""

    def __init__(self) -> None:
        self._size = 0

    def write(self, data: BytesLike) -> None:
        self._size += len(data)

    def commit(self) -> StoredObject:
        return StoredObject(uri="", size=self._size)

    def abort(self) -> None:
        pass


_POOLS: dict[int, BlockPool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(block_size: int) -> BlockPool:
    """The process's pool of ``block_size`` blocks (uploads in every thread share it)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(block_size)
        if pool is None:
            pool = _POOLS[block_size] = BlockPool(block_size, keep=_IDLE_BLOCKS_KEPT)
        return pool


async def _abort_in_lane(lane: _Lane, writer: StoreWriter) -> None:
    # The abort is queued behind any write still running in the lane's thread
    # (queued writes are skipped), so it never races a write on the same
    # writer, and we wait for it so no partial data outlives the exception.
    done = lane.cancel_and_run(writer.abort)
    lane.close()
    waiter = asyncio.wrap_future(done)
    waiter.add_done_callback(_log_abort_failure)
    # Shielded: a second cancellation stops us waiting, not the abort itself.
    with contextlib.suppress(Exception):
        await asyncio.shield(waiter)


def _log_abort_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        LOG.error(
            "Aborting a store write failed; partial data may remain",
            exc_info=future.exception(),
        )


class _Lane:
    """A worker thread applying ``work`` to blocks, in submission order.

    A dedicated single thread rather than a shared pool: hash updates and
    writes must happen in order, and one thread per lane guarantees that
    without locks or reordering buffers.
    """

    def __init__(self, name: str, work: Callable[[BytesLike], None]) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"glimpse-upload-{name}"
        )
        self._work = work
        self._in_flight: deque[asyncio.Future[None]] = deque()
        # Set from either thread; once set, queued blocks are skipped so a
        # failed or abandoned lane stops touching its writer or hasher.
        self._stopped = threading.Event()

    def submit(self, block: BytesLike) -> asyncio.Future[None]:
        """Queue ``block`` for the lane's thread; the future ends when it is done."""
        while self._in_flight and self._in_flight[0].done():
            self._in_flight.popleft()  # the caller awaits these futures itself
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._run, block)
        self._in_flight.append(future)
        return future

    def _run(self, block: BytesLike) -> None:
        if self._stopped.is_set():
            return
        try:
            self._work(block)
        except BaseException:
            self._stopped.set()
            raise

    async def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` in the lane's thread after every submitted block."""
        while self._in_flight:
            await self._in_flight.popleft()
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def cancel_and_run(self, function: Callable[[], None]) -> ConcurrentFuture[None]:
        """Skip queued blocks and run ``function`` once the running one, if any, ends."""
        self._stopped.set()
        return self._executor.submit(function)

    def close(self) -> None:
        """Drop queued work and let the thread exit once idle; does not block."""
        self._stopped.set()
        for future in self._in_flight:
            if future.done():
                # Mark failures as seen: the exception that matters is the
                # one already propagating.
                if not future.cancelled():
                    future.exception()
            else:
                future.cancel()
        self._in_flight.clear()
        self._executor.shutdown(wait=False)


async def iter_store(
    driver: StoreDriver,
    uri: str,
    offset: int = 0,
    length: int | None = None,
    *,
    chunk_size: int | None = None,
    read_ahead: int | None = None,
    executor: Executor | None = None,
) -> StoreStream:
    """Open a ranged read of ``uri`` and return an async iterator of its chunks.

    A coroutine returning the iterator, not an async generator, so that
    opening errors (:class:`~glimpse.store.errors.StoreNotFound`...) are raised
    here, while the caller can still pick the response status::

        body = await iter_store(driver, uri, offset, length)
        async for chunk in body: ...

    The driver runs in ``executor`` (default: the loop's), one call at a time
    per stream, keeping up to ``read_ahead`` chunks ready so disk or network
    reads overlap with sending. ``chunk_size`` defaults to the driver's
    ``read_chunk_size``, ``read_ahead`` to DEFAULT_READ_AHEAD_BYTES worth of
    chunks, at least one.
    """
    if chunk_size is None:
        chunk_size = driver.read_chunk_size
    if read_ahead is None:
        read_ahead = max(1, DEFAULT_READ_AHEAD_BYTES // chunk_size)
    if read_ahead <= 0:
        raise ValueError("read_ahead must be positive")
    loop = asyncio.get_running_loop()
    opening = loop.run_in_executor(
        executor, functools.partial(driver.read, uri, offset, length, chunk_size)
    )
    try:
        # Shielded so that, if we are cancelled, the read still gets opened
        # and can then be closed instead of being left to the GC.
        chunks = await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_abandoned_read)
        raise
    return StoreStream(_ThreadedSource(chunks), read_ahead, executor)


def _close_abandoned_read(opening: asyncio.Future[Iterator[bytes]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        _ThreadedSource(opening.result()).close()


class StoreStream(AsyncIterator[bytes]):
    """The chunks of a store read, fetched ahead in worker threads.

    Stopping early (:meth:`aclose`, a cancellation while waiting for a chunk,
    or dropping the last reference) closes the driver's read once any call in
    progress in a thread returns.
    """

    def __init__(self, source: _ThreadedSource, read_ahead: int, executor: Executor | None) -> None:
        self._source = source
        self._executor = executor
        self._ready: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(read_ahead)
        self._producer: asyncio.Task[None] | None = None
        self._finished = False

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        if self._producer is None:
            # Started on first use so that a stream opened but never read
            # costs no thread time.
            self._producer = asyncio.create_task(
                _read_ahead(self._source, self._ready, self._executor)
            )
        try:
            item = await self._ready.get()
        except BaseException:
            self._finish()
            raise
        if item is None:
            self._finish()
            raise StopAsyncIteration
        if isinstance(item, Exception):
            self._finish()
            raise item
        return item

    async def aclose(self) -> None:
        """Stop reading and release the driver's read."""
        self._finish()

    def _finish(self) -> None:
        self._finished = True
        if self._producer is not None:
            self._producer.cancel()
        self._source.close()

    def __del__(self) -> None:
        # Dropped unfinished, e.g. by a consumer cancelled between chunks.
        if getattr(self, "_finished", True):
            return
        self._source.close()
        producer = self._producer
        if producer is not None and not producer.done():
            # May run in any thread; a closed loop has nothing left to cancel.
            with contextlib.suppress(RuntimeError):
                producer.get_loop().call_soon_threadsafe(producer.cancel)


async def _read_ahead(
    source: _ThreadedSource,
    ready: asyncio.Queue[bytes | Exception | None],
    executor: Executor | None,
) -> None:
    # A free function, not a StoreStream method, so the running task holds no
    # reference to the stream and a dropped stream can be collected.
    loop = asyncio.get_running_loop()
    try:
        while True:
            chunk = await loop.run_in_executor(executor, source.pull)
            await ready.put(chunk)
            if chunk is None:
                return
    except Exception as exc:
        await ready.put(exc)


class _ThreadedSource:
    """A driver's chunk iterator pulled from worker threads and closed safely.

    Closing is requested from the event loop but must not run while a pull is
    in progress in a thread (a generator would raise "already executing", a
    file descriptor could be reused), so a running pull closes it on its way
    out instead.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._lock = threading.Lock()
        self._pulling = False
        self._closed = False

    def pull(self) -> bytes | None:
        """Return the next chunk, or None at the end or once closed."""
        with self._lock:
            if self._closed:
                return None
            self._pulling = True
        try:
            return next(self._chunks, None)
        finally:
            with self._lock:
                self._pulling = False
                close_now = self._closed
            if close_now:
                self._close_chunks()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._pulling:
                return
        self._close_chunks()

    def _close_chunks(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is None:
            return
        try:
            close()
        except Exception:
            LOG.exception("Closing a store read failed")
