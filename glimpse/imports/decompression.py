"""Decompressing a stream on the fly: gzip, xz and zstd, in pieces of bounded size.

web-download's ``decompress`` option names a codec, or ``auto`` to pick one by the
data's magic bytes (data in no known format then passes through unchanged).
Concatenated gzip members, xz streams and zstd frames are all decoded, with the zero
padding the gzip and xz tools accept between them. No piece is longer than the
caller's ``max_length``, so a small input that expands enormously (a "zip bomb") is
still handled ``max_length`` bytes at a time.

Errors::

    CorruptData    the data is not valid in its codec, or ends early
"""

from __future__ import annotations

import lzma
import sys
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Protocol

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

CODECS = ("gzip", "xz", "zstd")
#: What a caller may ask for: a codec, or ``auto``.
MODES = (*CODECS, "auto")

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_MAGIC_LEN = max(len(magic) for magic, _ in _MAGIC)


class CorruptData(Exception):
    """The data is not valid in its codec, or ends early; the message says which."""


async def decompressed(
    raw: AsyncIterator[bytes], mode: str, max_length: int
) -> AsyncGenerator[bytes, None]:
    """``raw`` decoded as ``mode`` (one of :data:`MODES`), in pieces of at most
    ``max_length`` bytes; the caller closes ``raw``.

    :raises CorruptData: while iterating, when the data is not valid ``mode`` data.
    """
    codec: str | None = mode
    head = b""
    if mode == "auto":
        async for chunk in raw:
            head += chunk
            if len(head) >= _MAGIC_LEN:
                break
        codec = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
        if codec is None:  # not compressed in a format we know: pass it through
            for start in range(0, len(head), max_length):
                yield head[start : start + max_length]
            async for chunk in raw:
                yield chunk
            return
    assert codec is not None
    decoder = _Decoder(codec, max_length)
    for piece in decoder.feed(head):
        yield piece
    async for chunk in raw:
        for piece in decoder.feed(chunk):
            yield piece
    for piece in decoder.finish():
        yield piece


class _Decompressor(Protocol):
    """The incremental API shared by :mod:`lzma` and :mod:`compression.zstd`."""

    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _GzipDecompressor:
    """zlib's gzip decoder behind the :class:`_Decompressor` API."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._tail = b""
        # zlib may hold output back when max_length cut a call short, as lzma does.
        self._limited = False

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def needs_input(self) -> bool:
        return not self._tail and not self._limited

    @property
    def unused_data(self) -> bytes:
        return self._zlib.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        pending = self._tail + data if data else self._tail
        out = self._zlib.decompress(pending, max(max_length, 0))
        self._tail = self._zlib.unconsumed_tail
        self._limited = 0 < max_length <= len(out)
        return out


_DECOMPRESSORS: dict[str, Callable[[], _Decompressor]] = {
    "gzip": _GzipDecompressor,
    "xz": lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ),
    "zstd": zstd.ZstdDecompressor,
}
_CODEC_ERRORS = (zlib.error, lzma.LZMAError, zstd.ZstdError, EOFError)


class _Decoder:
    """Streams one codec's data, concatenated members/streams/frames included, no call
    returning more than ``max_length`` bytes."""

    def __init__(self, codec: str, max_length: int) -> None:
        self._codec = codec
        self._new = _DECOMPRESSORS[codec]
        self._current = self._new()
        self._max_length = max_length

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._current.eof:
                if self._codec != "zstd":
                    data = data.lstrip(b"\0")  # padding that gzip and xz tools accept
                if not data:
                    return
                self._current = self._new()  # the next member, stream or frame
            elif not data and self._current.needs_input:
                return
            out = self._decompress(data)
            data = self._current.unused_data if self._current.eof else b""
            if not out and not data and not self._current.eof:
                return  # no progress without more input
            if out:
                yield out

    def finish(self) -> Iterator[bytes]:
        idle_calls = 0
        while not self._current.eof:
            if self._current.needs_input or idle_calls > 2:
                raise CorruptData(
                    f"the {self._codec} data ends early; the source may be truncated."
                )
            out = self._decompress(b"")
            idle_calls = 0 if out else idle_calls + 1
            if out:
                yield out

    def _decompress(self, data: bytes) -> bytes:
        try:
            return self._current.decompress(data, self._max_length)
        except _CODEC_ERRORS as exc:
            raise CorruptData(f"the data is not valid {self._codec}: {exc}.") from None
