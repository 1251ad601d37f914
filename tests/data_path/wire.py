"""Raw HTTP/1.1 uploads, so a test decides every byte and every chunk boundary on the wire.

httpx and http.client hide what the tests here are about: how big each chunk is,
sending fewer bytes than announced, hanging up half-way, and noticing that the
server answered while the body is still being sent.
"""

from __future__ import annotations

import dataclasses
import errno
import http.client
import select
import socket
import struct
import urllib.parse
from collections.abc import Iterable, Mapping

#: How long a test waits for the server to answer before failing.
TIMEOUT = 30.0


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Upload:
    """One ``PUT /v2/images/{id}/file`` whose body is sent piece by piece.

    With ``content_length`` the body is sent raw and must add up to it (or not,
    to test short bodies); without, every :meth:`send` is one chunk of
    ``Transfer-Encoding: chunked``.
    """

    def __init__(
        self,
        base_url: str,
        image_id: str,
        headers: Mapping[str, str] | None = None,
        *,
        content_length: int | None = None,
        content_type: str | None = "application/octet-stream",
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=TIMEOUT)
        self.chunked = content_length is None
        self.sent = 0
        lines = [f"PUT /v2/images/{image_id}/file HTTP/1.1", f"Host: {url.netloc}"]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append(f"Content-Length: {content_length}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        """Send ``data`` (as one chunk when chunked); an empty ``data`` sends nothing."""
        if not data:
            return
        self.sock.sendall(self._frame(data))
        self.sent += len(data)

    def finish(self) -> Answer:
        """End the body (the last chunk when chunked) and read the response."""
        if self.chunked:
            self.sock.sendall(b"0\r\n\r\n")
        return self.answer()

    def send_until_answered(self, chunks: Iterable[bytes]) -> Answer | None:
        """Send ``chunks`` while watching for a response; stop as soon as one arrives.

        Returns the early response, or None when every chunk went out unanswered
        (then call :meth:`finish`). :attr:`sent` counts the payload bytes handed to
        the kernel before the server answered or hung up.
        """
        for data in chunks:
            frame = memoryview(self._frame(data))
            while frame:
                readable, writable, _ = select.select([self.sock], [self.sock], [], TIMEOUT)
                if readable:
                    return self.answer()
                if not writable:
                    raise TimeoutError("the server neither read the body nor answered")
                try:
                    written = self.sock.send(frame)
                except OSError as exc:
                    if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                        return self.answer()
                    raise
                frame = frame[written:]
            self.sent += len(data)
        return None

    def answer(self) -> Answer:
        """Read the response the server sent or is about to send."""
        response = http.client.HTTPResponse(self.sock, method="PUT")
        response.begin()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, body)

    def hang_up(self) -> None:
        """Drop the connection abruptly (RST), as a crashed client would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()

    def _frame(self, data: bytes) -> bytes:
        if self.chunked:
            return b"%x\r\n" % len(data) + data + b"\r\n"
        return data
