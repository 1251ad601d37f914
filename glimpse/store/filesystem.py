"""The filesystem store: one file per image in a flat data directory.

Locations look like ``file:///var/lib/glimpse/images/<image_id>``, the same
form Glance writes, so existing location rows keep working.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import time
from collections.abc import Iterator
from stat import S_ISREG
from typing import Any

from oslo_config import cfg

from glimpse.store.base import (
    DEFAULT_CHUNK_SIZE,
    BytesLike,
    StoredObject,
    StoreDriver,
    StoreWriter,
    check_read_range,
)
from glimpse.store.errors import (
    StoreConflict,
    StoreError,
    StoreFull,
    StoreNotFound,
    StoreUnavailable,
)

_URI_PREFIX = "file://"

# O_DIRECT needs buffers, lengths and offsets aligned to the device's logical
# block; 4 KiB covers every disk in use (512-byte and 4K-native alike).
_DIRECT_IO_ALIGNMENT = 4096

# Temporaries start with a dot so they can never collide with an image id
# (validated below) and so ``ls`` hides them; the random part lets concurrent
# writers of the same image proceed until one of them commits.
_TEMPORARY = re.compile(r"^\.(?P<image_id>.+)\.[0-9a-f]{16}\.tmp$")

# Image data may belong to private images: readable by the service user only.
_FILE_MODE = 0o600

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Glance answers 503 ("store write denied") for these: the store is misconfigured
# or read-only, which an operator fixes, rather than a bad request.
_DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# os.link fails with these on filesystems without hard links (some FUSE and
# SMB mounts); the commit then falls back to check-and-rename.
_NO_LINK_ERRNOS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK})


def options() -> list[cfg.Opt]:
    """The store's options, with Glance's names."""
    return [
        cfg.StrOpt(
            "filesystem_store_datadir",
            help="Directory to which the filesystem backend store writes images. Defaults to "
            "images/<store id> in the data folder.",
        ),
        cfg.BoolOpt(
            "filesystem_store_direct_io",
            default=True,
            help="Write image data with O_DIRECT where the filesystem supports it (Glimpse "
            "only; ignored elsewhere): uploads cost far less CPU and do not evict the images "
            "that downloads are reading from the page cache, but the first download of a new "
            "image reads it from the disk. Set to false to keep new images in the page cache.",
        ),
    ]


def _store_error(exc: OSError, action: str, path: str) -> StoreError:
    message = f"Cannot {action} {path}: {exc.strerror or exc}"
    if exc.errno in _FULL_ERRNOS:
        return StoreFull(message)
    if exc.errno in _DENIED_ERRNOS:
        return StoreUnavailable(message)
    if exc.errno == errno.ENOENT:
        return StoreNotFound(message)
    return StoreError(message)


def _fsync_directory(path: str) -> None:
    # A rename or unlink is only durable once the directory entry itself is
    # on disk; fsync of the file does not cover it.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class FilesystemStore(StoreDriver):
    """Stores each image as ``<datadir>/<image_id>``.

    Writes go to a hidden temporary file in the same directory, are fsynced,
    then linked into place and the directory fsynced, so a crash never leaves
    a truncated file under an image's name. Leftover temporaries from a killed
    process are removed by :meth:`cleanup_stale_temporaries`.

    Only files directly inside ``datadir`` are reachable: a location URI
    pointing anywhere else is treated as missing, so a forged location cannot
    read or delete arbitrary files of the host.
    """

    scheme = "file"
    schemes = ("file",)
    store_type = "file"

    def __init__(
        self, datadir: str | os.PathLike[str], store_id: str = "file", *, direct_io: bool = True
    ) -> None:
        self.datadir = os.path.abspath(os.fspath(datadir))
        self.store_id = store_id
        #: Write aligned blocks with O_DIRECT where the filesystem allows it (see
        #: :class:`_FilesystemWriter`); reads always go through the page cache.
        self.direct_io = direct_io
        os.makedirs(self.datadir, exist_ok=True)

    def __repr__(self) -> str:
        return f"FilesystemStore({self.datadir!r}, store_id={self.store_id!r})"

    def uri_for(self, image_id: str) -> str:
        """The location URI the data of ``image_id`` gets in this store."""
        return _URI_PREFIX + self._final_path(image_id)

    def properties(self) -> dict[str, Any]:
        """The folder, the chunk size of reads, and no sparse writes (Glance's names)."""
        return {
            "data_dir": self.datadir,
            "chunk_size": DEFAULT_CHUNK_SIZE,
            "thin_provisioning": False,
        }

    def begin_write(self, image_id: str, size: int | None = None) -> StoreWriter:
        final_path = self._final_path(image_id)
        # Checked here as well as at commit so a conflicting upload fails
        # before the client has sent its body.
        if os.path.lexists(final_path):
            raise StoreConflict(f"Image data already exists at {final_path}")
        temporary_path = os.path.join(self.datadir, f".{image_id}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(
                temporary_path,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                _FILE_MODE,
            )
        except OSError as exc:
            raise _store_error(exc, "create", temporary_path) from exc
        direct = self.direct_io and _enable_direct_io(fd)
        return _FilesystemWriter(self, final_path, temporary_path, fd, direct)

    def read(
        self,
        uri: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        check_read_range(offset, length, chunk_size)
        path = self._path_of(uri)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise StoreNotFound(f"No image data at {uri}") from exc
        except OSError as exc:
            raise _store_error(exc, "open", path) from exc
        if not S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StoreNotFound(f"No image data at {uri}")
        return _FileChunks(fd, path, offset, length, chunk_size)

    def delete(self, uri: str) -> None:
        path = self._path_of(uri)
        try:
            os.unlink(path)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise StoreNotFound(f"No image data at {uri}") from exc
        except OSError as exc:
            raise _store_error(exc, "delete", path) from exc
        # No directory fsync: should the unlink be lost in a crash the file
        # merely reappears as an orphan, which is wasteful but never wrong.

    def stat(self, uri: str) -> int:
        path = self._path_of(uri)
        try:
            return os.stat(path).st_size
        except FileNotFoundError as exc:
            raise StoreNotFound(f"No image data at {uri}") from exc
        except OSError as exc:
            raise _store_error(exc, "stat", path) from exc

    def local_path(self, uri: str) -> str | None:
        return self._path_of(uri)

    def owns(self, uri: str) -> bool:
        try:
            self._path_of(uri)
        except StoreNotFound:
            return False
        return True

    def cleanup_stale_temporaries(
        self, older_than_seconds: float, *, dry_run: bool = False
    ) -> list[str]:
        """Remove temporaries of writes that never finished (process killed, power loss).

        Only temporaries last modified more than ``older_than_seconds`` ago are
        touched; choose it longer than the longest pause an upload may take,
        or a stalled upload loses its temporary and fails at commit. Returns
        the paths removed, or the ones that would be with ``dry_run``.
        """
        cutoff = time.time() - older_than_seconds
        removed: list[str] = []
        with os.scandir(self.datadir) as entries:
            for entry in entries:
                if not _TEMPORARY.match(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                        continue
                    if not dry_run:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    continue  # its writer finished or another cleaner got there first
                removed.append(entry.path)
        return removed

    def discard_temporaries(self, image_id: str) -> list[str]:
        """Remove the temporaries of ``image_id``'s writes, known to be dead (crash recovery)."""
        removed = []
        prefix = f".{image_id}."
        with os.scandir(self.datadir) as entries:
            for entry in entries:
                if entry.name.startswith(prefix) and _TEMPORARY.match(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed.append(entry.path)
        return removed

    def _final_path(self, image_id: str) -> str:
        # The id becomes a file name: refuse anything that could escape the
        # directory or pass for one of our temporaries.
        if (
            not image_id
            or image_id.startswith(".")
            or "/" in image_id
            or "\0" in image_id
            or (os.altsep is not None and os.altsep in image_id)
        ):
            raise ValueError(f"Image id {image_id!r} cannot be used as a file name")
        return os.path.join(self.datadir, image_id)

    def _path_of(self, uri: str) -> str:
        if not uri.startswith(_URI_PREFIX + "/"):
            raise StoreNotFound(f"{uri!r} is not a location of this filesystem store")
        path = os.path.normpath(uri[len(_URI_PREFIX) :])
        directory, name = os.path.split(path)
        if directory != self.datadir or not name or name.startswith("."):
            raise StoreNotFound(f"{uri!r} is not a location of this filesystem store")
        return path


def _enable_direct_io(fd: int) -> bool:
    """Turn on O_DIRECT for ``fd``; False where the filesystem (tmpfs, some FUSE) refuses it."""
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | direct)
    except OSError:
        return False
    return True


def _disable_direct_io(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~getattr(os, "O_DIRECT", 0))


class _FilesystemWriter(StoreWriter):
    """Writes one temporary file, then links it into place durably at commit.

    With O_DIRECT, whole aligned blocks (the upload pipeline hands over
    page-aligned blocks of a multiple of 4 KiB) go from the caller's memory to
    the disk without a copy into the page cache: a large upload costs a
    fraction of the CPU and does not evict the cached images other clients are
    reading. Anything O_DIRECT cannot take (an unaligned buffer, the short last
    block) switches the file back to buffered writes for the rest of it; the
    fsync at commit makes both kinds durable.
    """

    def __init__(
        self,
        store: FilesystemStore,
        final_path: str,
        temporary_path: str,
        fd: int,
        direct: bool = False,
    ):
        self._store = store
        self._final_path = final_path
        self._temporary_path = temporary_path
        self._fd: int | None = fd
        self._direct = direct
        self._size = 0
        self._committed = False
        # Set once the final name exists, so a failure later in commit can
        # take it back and keep the "commit raised, nothing stored" promise.
        self._linked = False

    @property
    def temporary_path(self) -> str:
        """Where the bytes live until commit (exposed for tests and debugging)."""
        return self._temporary_path

    def write(self, data: BytesLike) -> None:
        if self._fd is None:
            raise ValueError("write() on a writer that was committed or aborted")
        view = memoryview(data).cast("B")
        size = len(view)
        if self._direct and size % _DIRECT_IO_ALIGNMENT:
            # Direct writes must stay whole multiples of the alignment: the aligned head
            # goes directly, the tail (only ever in the last block) through the page cache.
            head = size - size % _DIRECT_IO_ALIGNMENT
            self._write_all(view[:head])
            view = view[head:]
            self._stop_direct_io()
        self._write_all(view)
        self._size += size

    def _write_all(self, view: memoryview) -> None:
        assert self._fd is not None
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError as exc:
                if exc.errno == errno.EINVAL and self._direct:
                    # An unaligned buffer or offset: carry on through the page cache.
                    self._stop_direct_io()
                    continue
                raise _store_error(exc, "write", self._temporary_path) from exc
            view = view[written:]

    def _stop_direct_io(self) -> None:
        if self._direct:
            assert self._fd is not None
            _disable_direct_io(self._fd)
            self._direct = False

    def commit(self) -> StoredObject:
        if self._fd is None:
            raise ValueError("commit() on a writer that was committed or aborted")
        try:
            self._make_durable()
        except BaseException:
            self._discard()
            raise
        self._committed = True
        return StoredObject(uri=_URI_PREFIX + self._final_path, size=self._size)

    def abort(self) -> None:
        if not self._committed:
            self._discard()

    def _make_durable(self) -> None:
        assert self._fd is not None
        fd, self._fd = self._fd, None
        try:
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise _store_error(exc, "flush", self._temporary_path) from exc
        try:
            # Network filesystems may report a failed write only at close.
            os.close(fd)
        except OSError as exc:
            raise _store_error(exc, "close", self._temporary_path) from exc
        try:
            self._link_into_place()
            _fsync_directory(self._store.datadir)
        except OSError as exc:
            raise _store_error(exc, "commit", self._final_path) from exc

    def _link_into_place(self) -> None:
        # link() fails atomically when the name exists, where rename() would
        # silently replace another writer's committed data.
        try:
            os.link(self._temporary_path, self._final_path)
        except FileExistsError as exc:
            raise StoreConflict(f"Image data already exists at {self._final_path}") from exc
        except OSError as exc:
            if exc.errno not in _NO_LINK_ERRNOS:
                raise
            if os.path.lexists(self._final_path):
                raise StoreConflict(f"Image data already exists at {self._final_path}") from None
            os.rename(self._temporary_path, self._final_path)
            self._linked = True
            return
        self._linked = True
        os.unlink(self._temporary_path)

    def _discard(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass  # the bytes are being thrown away; a failed flush is moot
        _unlink_quietly(self._temporary_path)
        if self._linked:
            self._linked = False
            _unlink_quietly(self._final_path)


class _FileChunks(Iterator[bytes]):
    """Chunks of a byte range of an open file; closing it closes the file.

    A class rather than a generator so a caller that drops the iterator
    before the first chunk still has ``close()`` release the file.
    """

    def __init__(self, fd: int, path: str, offset: int, length: int | None, chunk_size: int):
        self._fd: int | None = fd
        self._path = path
        self._position = offset
        self._remaining = length
        self._chunk_size = chunk_size

    def __next__(self) -> bytes:
        if self._fd is None:
            raise StopIteration
        wanted = self._chunk_size
        if self._remaining is not None:
            wanted = min(wanted, self._remaining)
        data = b""
        if wanted:
            # pread: no shared file position, so nothing depends on which
            # worker thread pulls the next chunk.
            try:
                data = os.pread(self._fd, wanted, self._position)
            except OSError as exc:
                self.close()
                raise _store_error(exc, "read", self._path) from exc
        if not data:
            self.close()
            raise StopIteration
        self._position += len(data)
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __del__(self) -> None:
        self.close()
