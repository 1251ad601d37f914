"""uvicorn's HTTP protocol, tuned for image data: zero-copy downloads, fewer body messages.

:class:`UvicornProtocol` is uvicorn's httptools protocol (chosen through
uvicorn's own ``http`` setting) with two changes for the data path:

* It offers the ASGI ``http.response.pathsend`` extension, which Starlette's
  ``FileResponse`` uses, and answers it with ``sendfile(2)``: the kernel moves
  the file's pages to the socket without them passing through the process.
  Otherwise a gigabyte image read from the filesystem store would be copied
  from the page cache into Python objects and from them into the socket.
* It hands request bodies to the application in pieces of about
  :data:`BODY_PIECE` bytes rather than whatever one socket read brought (at
  most 64 KiB at a time in uvicorn): an image upload then costs a thousand
  ASGI messages per gigabyte instead of tens of thousands.

The send runs in a worker thread (a file not in the page cache blocks on the
disk) on a duplicate of the connection's descriptor, so the descriptor it
writes to can never be closed and reused under it, and waits for the socket
with ``poll`` rather than the event loop's selector. Nothing else writes to the
connection meanwhile: uvicorn is waiting for this ``send`` to return. TLS
connections (the kernel cannot encrypt) keep the ordinary path: the extension
is not offered on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

PATHSEND = "http.response.pathsend"

#: Request bodies reach the application in pieces of about this size.
BODY_PIECE = 1 << 20
#: Give up on a client that has not taken a byte for this long.
IDLE_TIMEOUT_SECONDS = 300.0
#: Largest count per sendfile call; the socket takes what fits anyway.
_MAX_CALL = 1 << 30
_POLL_MILLISECONDS = 500
#: How far ahead of the send the file's pages are requested from the disk.
_PREFETCH = 16 << 20
# Senders mostly wait for slow clients in poll(): threads are cheap here, and a
# dedicated pool keeps them from starving the loop's default executor.
_SENDERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="glimpse-sendfile")


class UvicornProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``http.response.pathsend`` and large body pieces."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if self.scheme == "http" and self.transport.get_extra_info("socket") is not None:
            extensions = cycle.scope.setdefault("extensions", {})
            extensions[PATHSEND] = {}
        super()._start_asgi_task(cycle, app)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and type(cycle) is RequestResponseCycle:
            # Before its task first runs: the cycle is only created above.
            cycle.__class__ = _GlimpseCycle
            cycle.pieces = []  # type: ignore[attr-defined]
            cycle.buffered = 0  # type: ignore[attr-defined]

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle, _GlimpseCycle):
            super().on_body(body)
            return
        if cycle.response_complete or (self.parser.should_upgrade() and self._should_upgrade()):
            return
        cycle.pieces.append(body)
        cycle.buffered += len(body)
        if cycle.buffered >= BODY_PIECE:
            # Wake the application only for a full piece (or the end of the body,
            # on_message_complete), and stop reading until it has taken it.
            self.flow.pause_reading()
            cycle.message_event.set()


class _GlimpseCycle(RequestResponseCycle):
    pieces: list[bytes]
    buffered: int

    async def receive(self) -> Any:
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not (self.disconnected or self.response_complete):
            self.flow.resume_reading()
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        body = self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)
        self.pieces = []
        self.buffered = 0
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: Any) -> None:
        if message["type"] != PATHSEND:
            await super().send(message)
            return
        if self.disconnected:
            return
        if not self.response_started or self.response_complete:
            raise RuntimeError(f"Unexpected ASGI message {PATHSEND!r} here")
        path = message["path"]
        if self.scope["method"] == "HEAD":
            await super().send({"type": "http.response.body", "body": b""})
            return
        if self.chunked_encoding:
            # No Content-Length was given: the file goes as a single chunk.
            count = os.stat(path).st_size
            self.transport.write(b"%x\r\n" % count)
        else:
            count = self.expected_content_length
        sent = await self._send_file(path, count)
        if sent < count:
            # The client went away, or the file was shorter than announced: the
            # response cannot be completed, so neither can the connection.
            self.disconnected = True
            self.transport.close()
            return
        if self.chunked_encoding:
            self.transport.write(b"\r\n0\r\n\r\n")
        else:
            self.expected_content_length = 0
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()

    async def _send_file(self, path: str, count: int) -> int:
        # What uvicorn wrote (the status line and headers) must reach the socket first.
        while self.transport.get_write_buffer_size():
            if self.transport.is_closing():
                return 0
            await asyncio.sleep(0.001)
        sock = self.transport.get_extra_info("socket")
        sock_fd = os.dup(sock.fileno())
        stop = threading.Event()
        try:
            sending = asyncio.get_running_loop().run_in_executor(
                _SENDERS, _send_blocking, sock_fd, path, count, stop
            )
            try:
                return await asyncio.shield(sending)
            except asyncio.CancelledError:
                stop.set()
                with contextlib.suppress(Exception):
                    await sending
                raise
        finally:
            os.close(sock_fd)


def _send_blocking(sock_fd: int, path: str, count: int, stop: threading.Event) -> int:
    """Send ``count`` bytes of ``path`` to the non-blocking socket; return how many went."""
    try:
        file_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    offset = 0
    idle = 0.0
    # Ask for the pages ahead of the send: reading them from the disk then overlaps with
    # sending (a new image is not in the page cache: the filesystem store wrote it with
    # O_DIRECT), where sendfile alone would wait for each readahead in turn.
    prefetched = 0
    try:
        while offset < count and not stop.is_set():
            if prefetched < min(count, offset + _PREFETCH):
                with contextlib.suppress(OSError):
                    os.posix_fadvise(file_fd, prefetched, _PREFETCH, os.POSIX_FADV_WILLNEED)
                prefetched += _PREFETCH
            try:
                sent = os.sendfile(sock_fd, file_fd, offset, min(count - offset, _MAX_CALL))
            except BlockingIOError:
                # Short waits, so a cancelled send (server shutdown) stops promptly.
                if poller.poll(_POLL_MILLISECONDS):
                    idle = 0.0
                else:
                    idle += _POLL_MILLISECONDS / 1000
                    if idle >= IDLE_TIMEOUT_SECONDS:
                        break
                continue
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                break  # EPIPE, ECONNRESET...: the client is gone
            if sent == 0:
                break  # the file ended early
            offset += sent
    finally:
        os.close(file_fd)
    return offset
