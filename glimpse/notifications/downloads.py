"""image.send: announcing a finished download, with the bytes that actually went out.

As in Glance, the event is sent when the body has been streamed to its end, at
ERROR priority if fewer (or more) bytes went out than the response promised; a
download the client abandons sends nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from glimpse.context import RequestContext
from glimpse.notifications import payloads
from glimpse.notifications.notifier import Notifier
from glimpse.services.records import ImageRecord


def announce_send(
    notifier: Notifier,
    context: RequestContext,
    image: ImageRecord,
    expected: int,
    bytes_sent: int,
) -> None:
    """Send image.send for ``bytes_sent`` of the ``expected`` bytes of ``image``."""
    payload = payloads.image_send(image, context, bytes_sent)
    if bytes_sent == expected:
        notifier.info("image.send", payload)
    else:
        notifier.error("image.send", payload)


class CountedStream(AsyncIterator[bytes]):
    """Passes a download's chunks on, and reports how many bytes once they are exhausted."""

    def __init__(self, chunks: AsyncIterator[bytes], on_finished: Callable[[int], None]) -> None:
        self._chunks = chunks
        self._on_finished = on_finished
        self._sent = 0
        self._finished = False

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            if not self._finished:
                self._finished = True
                self._on_finished(self._sent)
            raise
        self._sent += len(chunk)
        return chunk

    async def aclose(self) -> None:
        """Stop early: close the underlying stream; nothing is announced."""
        self._finished = True
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()
