"""Reusable page-aligned blocks for the upload pipeline.

An upload is cut into blocks that every consumer (the hashers, the store
writer) reads in its own thread. Taking each block from a pool instead of
allocating a new ``bytes`` per block matters more than it looks:

* the memory is already mapped and touched, so a gigabyte upload causes no
  page faults and no zeroing of fresh pages (which, on virtual machines whose
  host hands out memory lazily, costs as much CPU as hashing the data);
* the blocks are page-aligned (``mmap``), so the filesystem store can hand them
  to the disk with O_DIRECT, without copying them into the page cache.

A block goes back to the pool only after every consumer is done with it; the
pool keeps a bounded number of idle blocks and lets the rest go.
"""

from __future__ import annotations

import mmap
import threading


class Block:
    """A page-aligned buffer of ``size`` bytes, filled from the start.

    ``view(n)`` is what consumers get: the first ``n`` bytes, as a read-only
    memoryview, valid until the block is given back to its pool.
    """

    __slots__ = ("_memory", "_view", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._memory = mmap.mmap(-1, size)
        self._view = memoryview(self._memory)

    def fill(self, position: int, data: bytes | memoryview) -> int:
        """Copy as much of ``data`` as fits at ``position``; return how much was copied."""
        count = min(len(data), self.size - position)
        if count < len(data):
            data = memoryview(data)[:count]
        self._view[position : position + count] = data
        return count

    def view(self, length: int) -> memoryview:
        return self._view[:length].toreadonly()


class BlockPool:
    """A thread-safe pool of equally sized :class:`Block` objects.

    ``keep`` bounds the idle blocks retained for later uploads; blocks beyond it
    are released when given back.
    """

    def __init__(self, block_size: int, keep: int) -> None:
        if block_size <= 0 or block_size % mmap.PAGESIZE:
            raise ValueError(f"block_size must be a positive multiple of {mmap.PAGESIZE}")
        self.block_size = block_size
        self._keep = keep
        self._idle: list[Block] = []
        self._lock = threading.Lock()

    def take(self) -> Block:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return Block(self.block_size)

    def give(self, block: Block) -> None:
        if block.size != self.block_size:
            return
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(block)
