"""The writer object stores share: an upload of unknown size sent in pieces.

Swift (Static Large Object segments) and S3 (multipart upload parts) take a large
object the same way, and neither knows an upload's size when it starts. So a
:class:`SegmentedWriter` keeps one piece in a buffer (in memory, then in a file)
and sends it only once more data arrives: an image that ends within its first
buffer, and within the store's ``large_object_size``, is still sent as one plain
object. Anything larger goes up piece by piece and is joined at commit.

A driver subclasses it with the four requests that differ: send the whole
object, send one piece, join the pieces, throw the sent pieces away.
"""

from __future__ import annotations

import abc
import tempfile
from typing import IO

from glimpse.store.base import BytesLike, StoredObject, StoreWriter
from glimpse.store.errors import StoreConflict

# A piece stays in memory up to this size, then spills to a file.
BUFFER_IN_MEMORY = 4 << 20


class SegmentedWriter(StoreWriter):
    """Buffers ``piece_size`` bytes at a time; sends, joins or discards through its hooks.

    The hooks raise :class:`~glimpse.store.errors.StoreError` (drivers translate
    their clients' errors themselves); a :class:`StoreConflict` at commit is
    reported as data existing at the image's location. Data handed to
    :meth:`write` is copied into the buffer, so callers may reuse it.
    """

    def __init__(
        self,
        *,
        piece_size: int,
        large_object_size: int,
        buffer_dir: str | None,
        uri: str,
        public_uri: str,
    ) -> None:
        self._piece_size = piece_size
        self._large_object_size = large_object_size
        self._uri = uri
        self._public_uri = public_uri
        self._buffer: IO[bytes] | None = tempfile.SpooledTemporaryFile(
            max_size=BUFFER_IN_MEMORY, dir=buffer_dir
        )
        self._buffered = 0
        self._size = 0
        #: How many pieces were sent so far.
        self.pieces_sent = 0
        self._committed = False

    # --- what each store does ---------------------------------------------------

    @abc.abstractmethod
    def _put_whole(self, buffer: IO[bytes], length: int) -> None:
        """Store the whole image, ``length`` bytes of ``buffer``, as one object."""

    @abc.abstractmethod
    def _put_piece(self, buffer: IO[bytes], length: int, number: int) -> None:
        """Send piece ``number`` (from 1), ``length`` bytes of ``buffer``."""

    @abc.abstractmethod
    def _join(self) -> None:
        """Make the pieces sent so far the image's object; never overwrite one."""

    @abc.abstractmethod
    def _discard_pieces(self) -> None:
        """Remove every piece sent, or whose sending may have landed; log what cannot be."""

    # --- the StoreWriter contract -----------------------------------------------

    def write(self, data: BytesLike) -> None:
        if self._buffer is None:
            raise ValueError("write() on a writer that was committed or aborted")
        view = memoryview(data)
        while view:
            # Send a full buffer only once more data arrives, so an image of
            # exactly one buffer can still be a plain object.
            if self._buffered == self._piece_size:
                self._send_piece()
            piece = view[: self._piece_size - self._buffered]
            self._buffer.write(piece)
            self._buffered += len(piece)
            self._size += len(piece)
            view = view[len(piece) :]

    def commit(self) -> StoredObject:
        buffer = self._buffer
        if buffer is None:
            raise ValueError("commit() on a writer that was committed or aborted")
        try:
            if not self.pieces_sent and self._size <= self._large_object_size:
                buffer.seek(0)
                self._put_whole(buffer, self._size)
            else:
                if self._buffered or not self.pieces_sent:
                    self._send_piece()
                self._join()
        except StoreConflict as exc:
            self._discard()
            raise StoreConflict(f"Image data already exists at {self._public_uri}") from exc
        except BaseException:
            self._discard()
            raise
        self._close_buffer()
        self._committed = True
        return StoredObject(uri=self._uri, size=self._size)

    def abort(self) -> None:
        if not self._committed:
            self._discard()

    def _send_piece(self) -> None:
        assert self._buffer is not None
        self._buffer.seek(0)
        self._put_piece(self._buffer, self._buffered, self.pieces_sent + 1)
        self.pieces_sent += 1
        self._buffer.seek(0)
        self._buffer.truncate()
        self._buffered = 0

    def _close_buffer(self) -> None:
        if self._buffer is not None:
            buffer, self._buffer = self._buffer, None
            buffer.close()

    def _discard(self) -> None:
        self._close_buffer()
        self._discard_pieces()
