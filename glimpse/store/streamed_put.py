"""One HTTP PUT whose body is sent as a store writer receives it.

The object stores' client libraries want a body they can read or iterate, and
block until the answer: fed from a writer that gets an image a block at a
time, they need a thread per request, a copy of every block, and a whole piece
buffered before its request can start. A :class:`StreamedPut` is driven by the
writer's own thread instead:

* its headers go out at once with ``Expect: 100-continue``, so refusals that do
  not depend on the body (credentials, a missing container or bucket, existing
  data under ``If-None-Match: *``, a quota over the declared length) arrive
  before any byte of the body, when the request can still be retried;
* :meth:`StreamedPut.send` hands the caller's buffer to the socket without
  copying it, and feeds the MD5 the store's ETag is checked against in the same
  pass;
* :meth:`StreamedPut.finish` reads the answer.

A body of unknown length goes out with chunked transfer coding. A request given
up before its body is complete (:meth:`StreamedPut.cancel`) stores nothing:
Swift and S3 only store complete bodies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import io
import socket
import ssl
import threading
from collections.abc import Mapping
from typing import NoReturn
from urllib.parse import urlsplit

from glimpse.store.base import BytesLike

#: How long a server may take to say ``100 Continue`` before the body is sent
#: anyway (servers that ignore ``Expect`` never say it; botocore waits as long).
CONTINUE_TIMEOUT = 1.0
#: How long a server that broke the connection mid-body is given to say why.
REFUSAL_TIMEOUT = 2.0
#: Error answers are read up to this size.
_MAX_ANSWER_BODY = 64 << 10
_MAX_HEAD = 64 << 10


@dataclasses.dataclass(frozen=True)
class PutAnswer:
    """The store's final answer to a PUT."""

    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes


class PutRefused(Exception):
    """The server answered with an error status, before or after the body."""

    def __init__(self, answer: PutAnswer) -> None:
        self.answer = answer
        super().__init__(f"{answer.status} {answer.reason}")


class PutCancelled(ConnectionAbortedError):
    """The request was cancelled (:meth:`StreamedPut.cancel`) while it was sent."""


class StreamedPut:
    """A PUT of ``length`` bytes (``None``: unknown, chunked) to ``url``.

    The constructor connects and sends the headers; it raises
    :class:`PutRefused` when the server answers before the body, and
    ``OSError`` when it cannot be reached. ``digest=False`` spares the MD5 of
    the body when the caller knows it already. Used by one thread, except
    :meth:`cancel`, which any thread may call.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        length: int | None,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        digest: bool = True,
    ) -> None:
        if length is not None and length < 0:
            raise ValueError("length must not be negative")
        self.length = length
        #: Bytes of the body sent so far.
        self.sent = 0
        #: MD5 of the body sent so far (None with ``digest=False``).
        self.md5 = hashlib.md5(usedforsecurity=False) if digest else None
        self._timeout = timeout
        self._lock = threading.Lock()
        # Set once the last bytes of the body are on their way: from then on
        # the store may keep the object, so cancel() no longer interrupts.
        self._completing = False
        self._cancelled = False
        self._closed = False
        # The answer to an empty body may come without 100 Continue.
        self._early: PutAnswer | None = None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.hostname}")
        default_port = 443 if parts.scheme == "https" else 80
        port = parts.port or default_port
        # As signers (S3's) see it: no default port.
        host = parts.netloc.rpartition("@")[2]
        if parts.port == default_port:
            host = host.rpartition(":")[0]
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if parts.scheme == "https":
                context = ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=parts.hostname)
            self._sock = sock
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            lines = [f"PUT {target} HTTP/1.1", f"Host: {host}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            if length is None:
                lines.append("Transfer-Encoding: chunked")
            else:
                lines.append(f"Content-Length: {length}")
            lines.append("Expect: 100-continue")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            self._await_continue()
        except BaseException:
            sock.close()
            self._closed = True
            raise

    def send(self, data: BytesLike) -> None:
        """Send the next bytes of the body; ``data`` may be reused once this returns."""
        view = memoryview(data).cast("B")
        if not view:
            return
        if self.length is not None and self.sent + len(view) > self.length:
            raise ValueError(f"more than the {self.length} bytes announced")
        with self._lock:
            if self._cancelled or self._closed:
                raise PutCancelled("the request was cancelled")
            if self.length is not None and self.sent + len(view) == self.length:
                self._completing = True
        if self.md5 is not None:
            self.md5.update(view)
        try:
            if self.length is None:
                self._sock.sendall(b"%x\r\n" % len(view))
                self._sock.sendall(view)
                self._sock.sendall(b"\r\n")
            else:
                self._sock.sendall(view)
        except OSError as exc:
            self._refused_or_raise(exc)
        self.sent += len(view)

    def finish(self) -> PutAnswer:
        """End the body and return the answer; :class:`PutRefused` for an error status."""
        if self.length is not None and self.sent != self.length:
            raise ValueError(f"{self.sent} of the {self.length} bytes announced were sent")
        with self._lock:
            if self._cancelled or self._closed:
                raise PutCancelled("the request was cancelled")
            self._completing = True
        try:
            if self._early is not None:
                answer = self._early
            elif self.length is None:
                self._sock.sendall(b"0\r\n\r\n")
                answer = self._read_answer(b"")
            else:
                answer = self._read_answer(b"")
        except OSError as exc:
            self._refused_or_raise(exc)
        except http.client.HTTPException as exc:
            self.close()
            raise ConnectionError(f"the server's answer is malformed: {exc!r}") from exc
        self.close()
        if answer.status >= 300:
            raise PutRefused(answer)
        return answer

    def cancel(self) -> bool:
        """Give the request up unless its body is complete; safe from any thread.

        Returns False when the body was complete already: the store may keep
        the object, so the caller must wait for :meth:`finish` to learn
        whether it did.
        """
        with self._lock:
            if self._completing or self._closed:
                return not self._completing
            self._cancelled = True
        try:
            # Not close(): another thread may be inside sendall() on this socket.
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    def close(self) -> None:
        """Release the connection (by the thread that sends)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._sock.close()

    # --- answers ---------------------------------------------------------------

    def _await_continue(self) -> bool:
        """Wait for ``100 Continue``; False when none came in time: the body goes anyway."""
        self._sock.settimeout(CONTINUE_TIMEOUT)
        head = bytearray()
        try:
            while b"\r\n\r\n" not in head:
                received = self._sock.recv(4096)
                if not received:
                    raise ConnectionResetError("the server closed the connection")
                head += received
                if len(head) > _MAX_HEAD:
                    raise ConnectionError("the server sent an oversized answer")
        except TimeoutError:
            if head:
                raise
            return False
        finally:
            self._sock.settimeout(self._timeout)
        status_line, _, rest = bytes(head).partition(b"\r\n\r\n")
        words = status_line.split(None, 2)
        if len(words) >= 2 and words[1] == b"100":
            if not rest:
                return True
            head = bytearray(rest)  # anything after 100 Continue belongs to the final answer
        try:
            answer = self._read_answer(bytes(head))
        except http.client.HTTPException as exc:
            raise ConnectionError(f"the server's answer is malformed: {exc!r}") from exc
        if answer.status >= 300:
            raise PutRefused(answer)
        if self.length != 0:
            raise ConnectionError(f"the server answered {answer.status} before the body")
        self._early = answer
        return True

    def _read_answer(self, received: bytes) -> PutAnswer:
        response = http.client.HTTPResponse(
            _AnswerSource(self._sock, received),  # type: ignore[arg-type]
            method="PUT",
        )
        response.begin()
        body = response.read(_MAX_ANSWER_BODY)
        return PutAnswer(response.status, response.reason, response.headers, body)

    def _refused_or_raise(self, exc: OSError) -> NoReturn:
        """The connection broke while sending: raise the server's answer if it gave one."""
        with self._lock:
            cancelled = self._cancelled
        if cancelled:
            self.close()
            raise PutCancelled("the request was cancelled") from exc
        try:
            self._sock.settimeout(REFUSAL_TIMEOUT)
            answer = self._read_answer(b"")
        except (OSError, http.client.HTTPException):
            self.close()
            raise exc from None
        self.close()
        if answer.status >= 300:
            raise PutRefused(answer) from exc
        raise exc


class _AnswerSource:
    """What an HTTPResponse reads from: the bytes already received, then the socket."""

    def __init__(self, sock: socket.socket, received: bytes) -> None:
        self._raw = _Prefixed(sock, received)

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(self._raw)


class _Prefixed(io.RawIOBase):
    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        self._sock = sock
        self._prefix = prefix

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            count = min(len(buffer), len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        return self._sock.recv_into(buffer)
