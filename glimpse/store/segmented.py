"""The writer object stores share: an image sent as one object or in pieces, as it arrives.

Swift (Static Large Object segments) and S3 (multipart upload parts) take a large
object the same way. A :class:`SegmentedWriter` stores an image as one plain object
when it is at most the store's ``large_object_size``, and otherwise as pieces of
``piece_size`` bytes joined at commit. Every request's body is streamed from the
bytes :meth:`~SegmentedWriter.write` is given
(:class:`~glimpse.store.streamed_put.StreamedPut`): the upload pipeline runs the
writer in its own thread, so sending overlaps with receiving, and no piece waits
in a buffer before it goes. Each piece's MD5, computed as it is sent, is checked
against the ETag the store answers; a plain object's ETag is checked against the
MD5 of the whole image the caller computed anyway (:meth:`commit_with_md5`;
without it, a plain object is not checked).

When the caller gives the image's size (``begin_write(image_id, size)``), plain
object or pieces is decided up front, as Glance does, and every request knows its
length. Without a size:

* a driver that can send a body of unknown length (Swift, with chunked transfer
  coding) holds back the first :data:`HOLD` bytes at most (and no more than
  ``large_object_size`` or ``piece_size``): an image ending within them is one
  plain object; anything longer is streamed in pieces from there on, so such an
  image becomes a large object even below ``large_object_size``;
* a driver that cannot (S3 parts need their length first) fills a piece buffer
  and sends each full piece from a background thread while the next one fills;
  an image that ends within its first piece and ``large_object_size`` is one
  plain object.

What one write holds in memory, beyond the caller's block during a ``write()``:
nothing with a size; up to :data:`HOLD` (4 MiB) for a streaming driver without
one; two pieces for a buffering driver without one, each in memory when
``piece_size`` is at most :data:`MAX_PIECE_IN_MEMORY` (16 MiB) and in a
temporary file in ``buffer_dir`` otherwise.

Nothing appears at the image's final name before :meth:`~SegmentedWriter.commit`:
the last byte of a plain object is held back until then, and pieces are joined
there. A request given up before its body is complete stores nothing; one whose
body is complete is waited for, so an abort knows what to remove.

A driver subclasses it with what differs: starting the plain object's request
and a piece's, checking and recording their answers, joining the pieces,
throwing them away, and naming its errors.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, ClassVar

from glimpse.store.base import BytesLike, StoredObject, StoreWriter
from glimpse.store.errors import StoreConflict, StoreError
from glimpse.store.streamed_put import PutAnswer, PutRefused, StreamedPut

#: Bytes a streaming driver holds back, without a size, before choosing pieces.
HOLD = 4 << 20
#: A buffering driver keeps pieces up to this size in memory, larger ones in files.
MAX_PIECE_IN_MEMORY = 16 << 20
_FILE_READ = 1 << 20


class SegmentedWriter(StoreWriter):
    """Streams an image to its store as one object or in pieces; see the module's docstring.

    The hooks raise :class:`~glimpse.store.errors.StoreError` (drivers translate
    their clients' errors themselves); a :class:`StoreConflict` at commit is
    reported as data existing at the image's location.
    """

    #: Whether a piece may be sent before its length is known (Swift: chunked).
    streams_unknown_length: ClassVar[bool] = False
    #: Whether the answer to a piece is awaited in the background while the next
    #: one streams: worth a thread where pieces are small and answers slow (S3).
    finishes_in_background: ClassVar[bool] = False

    def __init__(
        self,
        *,
        piece_size: int,
        large_object_size: int,
        size: int | None,
        buffer_dir: str | None,
        uri: str,
        public_uri: str,
    ) -> None:
        if size is not None and size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        self._piece_size = piece_size
        self._large_object_size = large_object_size
        self._expected = size
        self._buffer_dir = buffer_dir
        self._uri = uri
        self._public_uri = public_uri
        self._written = 0
        #: How many pieces were started so far.
        self.pieces_sent = 0
        # With a size: one plain object, decided now.
        self._whole = size is not None and size <= large_object_size
        # The request being streamed by write(), and how much more it takes.
        self._request: StreamedPut | None = None
        self._request_left = 0
        # The last byte of a plain object, sent at commit.
        self._tail = b""
        # Streaming without a size: the bytes held back.
        self._held = bytearray()
        # Buffering: the piece being filled and a spare.
        self._filling: _PieceBuffer | None = None
        self._spare: _PieceBuffer | None = None
        self._buffers: list[_PieceBuffer] = []
        # The one piece finishing (or, buffering, being sent) in the background.
        self._background: _Background | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._ended = False
        self._committed = False
        #: The MD5 of the image from :meth:`commit_with_md5`, for the plain object's ETag.
        self.image_md5: str | None = None

    # --- what each store does ---------------------------------------------------

    @abc.abstractmethod
    def _start_whole(self, length: int) -> StreamedPut:
        """Start the request storing the image, ``length`` bytes, at its final name.

        The request must never replace existing data (``If-None-Match: *``),
        and need not hash its body (:attr:`image_md5` is the image's MD5).
        """

    @abc.abstractmethod
    def _start_piece(self, number: int, length: int | None) -> StreamedPut:
        """Start the request of piece ``number`` (from 1); ``length`` None when unknown."""

    @abc.abstractmethod
    def _whole_stored(self, request: StreamedPut, answer: PutAnswer) -> None:
        """Check the answer to the plain object's request against :attr:`image_md5` if set.

        When they differ, remove the object and raise.
        """

    @abc.abstractmethod
    def _piece_stored(self, number: int, request: StreamedPut, answer: PutAnswer) -> None:
        """Check the answer to piece ``number``'s request and record the piece for the join."""

    @abc.abstractmethod
    def _join(self) -> None:
        """Make the pieces recorded the image's object; never overwrite one."""

    @abc.abstractmethod
    def _discard_pieces(self) -> None:
        """Remove every piece sent, or whose sending may have landed; log what cannot be."""

    @abc.abstractmethod
    def _request_error(self, exc: Exception) -> StoreError:
        """The store's error for a streamed request that failed (PutRefused or OSError)."""

    # --- the StoreWriter contract -----------------------------------------------

    def write(self, data: BytesLike) -> None:
        if self._ended:
            raise ValueError("write() on a writer that was committed or aborted")
        view = memoryview(data).cast("B")
        if not view:
            return
        if self._expected is not None and self._written + len(view) > self._expected:
            raise ValueError(f"write() past the {self._expected} bytes announced at begin_write")
        if self._background is not None and self._background.future.done():
            self._wait_for_background()  # a failure surfaces now, not at the next piece
        if self._expected is not None:
            self._stream_known(view)
        elif self.streams_unknown_length:
            self._stream_unknown(view)
        else:
            self._buffer(view)
        self._written += len(view)

    def commit(self) -> StoredObject:
        if self._ended:
            raise ValueError("commit() on a writer that was committed or aborted")
        try:
            if self._expected is not None and self._written != self._expected:
                raise ValueError(
                    f"{self._written} of the {self._expected} bytes announced were written"
                )
            if self._expected is not None:
                self._complete_known()
            elif self.streams_unknown_length:
                self._complete_unknown()
            else:
                self._complete_buffered()
        except StoreConflict as exc:
            self._end()
            raise StoreConflict(f"Image data already exists at {self._public_uri}") from exc
        except BaseException:
            self._end()
            raise
        self._ended = self._committed = True
        self._release()
        return StoredObject(uri=self._uri, size=self._written)

    def commit_with_md5(self, md5: str) -> StoredObject:
        self.image_md5 = md5
        return self.commit()

    def abort(self) -> None:
        if not self._ended:
            self._end()

    # --- with a size ------------------------------------------------------------

    def _stream_known(self, view: memoryview) -> None:
        assert self._expected is not None
        position = self._written
        while view:
            if self._request is None:
                if self._whole:
                    self._request = self._start_whole(self._expected)
                    self._request_left = self._expected
                else:
                    length = min(self._piece_size, self._expected - position)
                    self._request = self._start_next_piece(length)
                    self._request_left = length
            take = view[: self._request_left]
            if self._whole and len(take) == self._request_left:
                # The object would appear once its last byte arrives: that waits for commit.
                self._send(self._request, take[:-1])
                self._tail = bytes(take[-1:])
            else:
                self._send(self._request, take)
            self._request_left -= len(take)
            position += len(take)
            view = view[len(take) :]
            if not self._request_left and not self._whole:
                self._finish_piece()

    def _complete_known(self) -> None:
        if not self._whole:
            self._wait_for_background()
            self._join()  # every piece was sent by write()
            return
        if self._request is None:  # an empty image
            self._request = self._start_whole(0)
        request = self._request
        self._send(request, self._tail)
        self._tail, self._request = b"", None
        self._whole_stored(request, self._finish(request))

    # --- without a size, streaming ------------------------------------------------

    def _stream_unknown(self, view: memoryview) -> None:
        if not self.pieces_sent:
            hold = min(HOLD, self._large_object_size, self._piece_size)
            if len(self._held) + len(view) <= hold:
                self._held += view
                return
            # Too long for one plain object: pieces from here on, starting with what was held.
            held, self._held = self._held, bytearray()
            self._stream_pieces(memoryview(held))
        self._stream_pieces(view)

    def _stream_pieces(self, view: memoryview) -> None:
        while view:
            if self._request is None:
                self._request = self._start_next_piece(None)
                self._request_left = self._piece_size
            take = view[: self._request_left]
            self._send(self._request, take)
            self._request_left -= len(take)
            view = view[len(take) :]
            if not self._request_left:
                self._finish_piece()

    def _complete_unknown(self) -> None:
        if not self.pieces_sent:
            held, self._held = self._held, bytearray()
            self._put_whole([memoryview(held)], len(held))
            return
        if self._request is not None:
            self._finish_piece()
        self._wait_for_background()
        self._join()

    # --- without a size, buffering ------------------------------------------------

    def _buffer(self, view: memoryview) -> None:
        while view:
            if self._filling is None:
                self._filling = self._new_buffer()
            if self._filling.length == self._piece_size:
                # Sent only once more data arrives, so an image of exactly one
                # piece can still be a plain object.
                self._send_in_background()
                continue
            take = view[: self._piece_size - self._filling.length]
            self._filling.write(take)
            view = view[len(take) :]

    def _send_in_background(self) -> None:
        self._wait_for_background()  # one piece in flight at most
        buffer, self._filling = self._filling, self._spare
        self._spare = None
        assert buffer is not None
        # Started here, so the piece's request (and S3's multipart upload) exists
        # once write() returns.
        request = self._start_next_piece(buffer.length)
        number = self.pieces_sent
        future = self._run_in_background(self._send_buffer, number, request, buffer)
        self._background = _Background(future, request, buffer)

    def _send_buffer(self, number: int, request: StreamedPut, buffer: _PieceBuffer) -> None:
        try:
            for chunk in buffer.chunks():
                self._send(request, chunk)
        except BaseException:
            request.close()
            raise
        self._finish_and_record(number, request)

    def _complete_buffered(self) -> None:
        self._wait_for_background()
        filling = self._filling
        length = filling.length if filling is not None else 0
        if not self.pieces_sent and length <= self._large_object_size:
            self._put_whole(filling.chunks() if filling is not None else [], length)
            return
        if filling is not None and filling.length:
            request = self._start_next_piece(filling.length)
            self._request = request
            for chunk in filling.chunks():
                self._send(request, chunk)
            self._finish_piece()
            self._wait_for_background()
        self._join()

    def _new_buffer(self) -> _PieceBuffer:
        buffer = _PieceBuffer(self._piece_size, self._buffer_dir)
        self._buffers.append(buffer)
        return buffer

    # --- requests -------------------------------------------------------------------

    def _start_next_piece(self, length: int | None) -> StreamedPut:
        self.pieces_sent += 1
        return self._start_piece(self.pieces_sent, length)

    def _finish_piece(self) -> None:
        """End the current piece's request: its answer now, or in the background."""
        request, self._request = self._request, None
        assert request is not None
        number = self.pieces_sent
        if not self.finishes_in_background:
            self._finish_and_record(number, request)
            return
        self._wait_for_background()  # one piece in flight at most
        future = self._run_in_background(self._finish_and_record, number, request)
        self._background = _Background(future, request, None)

    def _finish_and_record(self, number: int, request: StreamedPut) -> None:
        self._piece_stored(number, request, self._finish(request))

    def _run_in_background(self, work: Callable[..., None], *args: object) -> Future[None]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="glimpse-store-piece")
        return self._executor.submit(work, *args)

    def _wait_for_background(self) -> None:
        """Wait for the piece in the background, if any; raise its failure."""
        background, self._background = self._background, None
        if background is None:
            return
        background.future.result()
        if background.buffer is not None:
            background.buffer.reset()
            self._spare = background.buffer

    def _put_whole(self, chunks: Iterable[memoryview], length: int) -> None:
        request = self._request = self._start_whole(length)
        for chunk in chunks:
            self._send(request, chunk)
        self._request = None
        self._whole_stored(request, self._finish(request))

    def _send(self, request: StreamedPut, data: BytesLike) -> None:
        try:
            request.send(data)
        except (PutRefused, OSError) as exc:
            raise self._request_error(exc) from exc

    def _finish(self, request: StreamedPut) -> PutAnswer:
        try:
            return request.finish()
        except (PutRefused, OSError) as exc:
            raise self._request_error(exc) from exc

    # --- the end ----------------------------------------------------------------------

    def _end(self) -> None:
        """Stop every request, wait for those that may still land, remove what was sent."""
        self._ended = True
        request, self._request = self._request, None
        if request is not None:
            request.cancel()
            request.close()
        background, self._background = self._background, None
        if background is not None:
            # Unless its body is complete: then its answer is awaited, so that
            # what it stored is known and removed.
            background.request.cancel()
            with contextlib.suppress(BaseException):
                background.future.result()
        self._release()
        self._discard_pieces()

    def _release(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        for buffer in self._buffers:
            buffer.close()
        self._buffers = []
        self._filling = self._spare = None
        self._held = bytearray()


@dataclasses.dataclass(frozen=True)
class _Background:
    """A piece whose request runs in the writer's background thread."""

    future: Future[None]
    request: StreamedPut
    #: Buffering: the piece's bytes, reused once it is sent.
    buffer: _PieceBuffer | None


class _PieceBuffer:
    """One piece's bytes: in memory up to MAX_PIECE_IN_MEMORY, in a temporary file beyond."""

    def __init__(self, capacity: int, directory: str | None) -> None:
        self.length = 0
        self._memory: bytearray | None = None
        self._file: IO[bytes] | None = None
        if capacity <= MAX_PIECE_IN_MEMORY:
            self._memory = bytearray(capacity)
        else:
            self._file = tempfile.TemporaryFile(dir=directory)

    def write(self, data: memoryview) -> None:
        if self._memory is not None:
            self._memory[self.length : self.length + len(data)] = data
        elif self._file is not None:
            self._file.write(data)
        self.length += len(data)

    def chunks(self) -> Iterator[memoryview]:
        if self._memory is not None:
            yield memoryview(self._memory)[: self.length]
            return
        if self._file is None:
            return
        self._file.seek(0)
        scratch = bytearray(_FILE_READ)
        while True:
            count = self._file.readinto(scratch)  # type: ignore[attr-defined]
            if not count:
                return
            yield memoryview(scratch)[:count]

    def reset(self) -> None:
        self.length = 0
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()

    def close(self) -> None:
        self._memory = None
        if self._file is not None:
            file, self._file = self._file, None
            file.close()
