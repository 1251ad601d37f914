"""The storage-driver interface every store implements.

Drivers are synchronous: they block on disks and sockets, and callers run them
in worker threads (see :mod:`glimpse.data.pipeline`). They move bytes only;
checksums, size limits and quotas belong to the pipeline, which computes them
once for every driver.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from types import TracebackType
from typing import Any, ClassVar, Self, TypeAlias
from urllib.parse import urlsplit

#: Chunk size of reads unless the caller asks otherwise.
DEFAULT_CHUNK_SIZE = 1 << 20

#: What :meth:`StoreWriter.write` accepts: any contiguous bytes-like object.
BytesLike: TypeAlias = bytes | bytearray | memoryview


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """What a committed write produced: where the data lives and how big it is.

    ``metadata`` is the driver's location metadata (Glance's
    ``locations[].metadata``); most drivers leave it empty.
    """

    uri: str
    size: int
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


class StoreWriter(abc.ABC):
    """One write in progress, started by :meth:`StoreDriver.begin_write`.

    Nothing written becomes visible at the final URI before :meth:`commit`
    returns. Exactly one of :meth:`commit` or :meth:`abort` ends the write; a
    writer is used by one thread at a time; :meth:`write` or :meth:`commit`
    after the write ended raise ValueError. Used as a context manager, it
    aborts on exit unless it was committed.
    """

    @abc.abstractmethod
    def write(self, data: BytesLike) -> None:
        """Append ``data``; raise :class:`~glimpse.store.errors.StoreFull` when out of room.

        ``data`` is only valid during the call (the upload pipeline reuses its
        buffers): a driver that keeps bytes for later copies them.
        """

    @abc.abstractmethod
    def commit(self) -> StoredObject:
        """Make the data durable at its final URI and return where it is.

        When commit raises, nothing is stored: the driver has removed every
        partial byte itself.
        """

    def commit_with_md5(self, md5: str) -> StoredObject:
        """:meth:`commit`, for a caller that computed the MD5 of everything written.

        A driver whose store computes one too (an object's ETag) compares them
        rather than hashing the bytes again, and fails the commit, storing
        nothing, when they differ. By default, :meth:`commit`.
        """
        return self.commit()

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard every byte written so far.

        Idempotent, and a no-op after a successful :meth:`commit`, so callers
        can call it on every error path without tracking state.
        """

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class StoreDriver(abc.ABC):
    """A place image data is written to and read from.

    ``scheme`` is the URI scheme of the locations the driver produces (``file``,
    ``swift``...); ``store_id`` names the configured store (the multi-store
    backend id, or the scheme in single-store deployments).

    Every driver must pass ``tests/store/test_conformance.py``.
    """

    scheme: str
    store_id: str
    #: The driver's type as ``enabled_backends`` names it (``file``, ``swift``...).
    store_type: ClassVar[str]
    #: Every scheme of the locations the driver reads (``scheme`` is the one it writes).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: True for drivers that only read (``begin_write`` and ``delete`` are unsupported).
    read_only: ClassVar[bool] = False
    #: Chunk size of whole-image streamed reads (downloads, imports): larger for
    #: stores where each chunk costs more than a system call.
    read_chunk_size: ClassVar[int] = DEFAULT_CHUNK_SIZE

    def properties(self) -> dict[str, Any]:
        """What ``GET /v2/info/stores/detail`` shows of the store, under Glance's names.

        Sizes in bytes; never a credential. Nothing by default.
        """
        return {}

    def public_uri(self, uri: str) -> str:
        """``uri`` as it may be shown to users and logs: without credentials.

        The default suits drivers whose locations never carry a secret.
        """
        return uri

    def owns(self, uri: str) -> bool:
        """Whether ``uri`` is a location of this store, decided without any I/O.

        The default accepts every URI of the driver's schemes; drivers that can
        tell their own locations apart (a folder, an endpoint) say so, which
        lets several stores of one type live side by side.
        """
        return urlsplit(uri).scheme in self.schemes

    def lends_credentials(self, uri: str) -> bool:
        """Whether reading ``uri`` would use the store's own secret rather than one it carries.

        Such a location is only safe when the service wrote it: a user who sets it
        could read any object the store's account can. False by default.
        """
        return False

    @abc.abstractmethod
    def begin_write(self, image_id: str, size: int | None = None) -> StoreWriter:
        """Start writing the data of ``image_id``.

        ``size``, when the caller knows it, is exactly how many bytes it will
        write: a driver may then choose how to store the data up front (one
        object or pieces) and stream each request. Other amounts are the
        caller's error: drivers that use the size raise ValueError on a write
        past it and on a commit short of it (discarding what was written).
        ``None`` (unknown) always works.

        Raises :class:`~glimpse.store.errors.StoreConflict` when data for that
        image already exists in this store.
        """

    @abc.abstractmethod
    def read(
        self,
        uri: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Return the bytes ``[offset, offset + length)`` of the object, in chunks.

        ``length=None`` reads to the end; a range running past the end is cut
        short, and an ``offset`` at or past the end yields nothing. Errors about
        the object itself (:class:`~glimpse.store.errors.StoreNotFound`) are
        raised by this call, before any chunk, so a caller can still choose the
        response status. Closing the iterator early releases the object.
        """

    @abc.abstractmethod
    def delete(self, uri: str) -> None:
        """Remove the object; :class:`~glimpse.store.errors.StoreNotFound` when it is missing."""

    @abc.abstractmethod
    def stat(self, uri: str) -> int:
        """Return the size in bytes; :class:`~glimpse.store.errors.StoreNotFound` when missing."""

    def discard_temporaries(self, image_id: str) -> list[str]:
        """Remove what unfinished writes of ``image_id`` left, once their writers are dead.

        Crash recovery calls it for a write whose process died; committed data of
        the image stays. A write still running would lose its bytes and fail at
        commit, so it must not be called while one may run. Returns what was
        removed, as names for logs; nothing by default.
        """
        return []

    def cleanup_stale_temporaries(
        self, older_than_seconds: float, *, dry_run: bool = False
    ) -> list[str]:
        """Remove leftovers of unfinished writes untouched for ``older_than_seconds``.

        For leftovers no crash recovery knows of (a node that never came back, a
        cleanup that failed): choose the age longer than the longest pause an
        upload may take. Returns what was removed, or would be with ``dry_run``;
        nothing by default.
        """
        return []

    def local_path(self, uri: str) -> str | None:
        """Return a filesystem path holding the object's bytes, for zero-copy sends.

        ``None`` when the driver has no such path (the default).
        """
        return None


def check_read_range(offset: int, length: int | None, chunk_size: int) -> None:
    """Reject read arguments no driver can honour; shared so drivers agree."""
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")
    if length is not None and length < 0:
        raise ValueError(f"length must not be negative, got {length}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
