"""``ValueArena``: fixed-size value slots a program can point at, allocated as elements are made.

The map types of this package that keep their elements in Python structures
(the LPM trie's nodes, the stack trace map's buckets, device map entries)
still hand programs the *address* of a value, as ``map_lookup_elem`` does.
The arena gives each live element a slot in ``RegionKind.MAP_VALUE`` chunks
of the simulated address space: chunks are added (and charged to the map's
memory accounting) only when a slot in them is first needed, so a map with a
huge ``max_entries`` costs nothing until it is filled. Freed slots are reused
(newest first), like the kernel's slab reuses a freed node's memory.
"""
from __future__ import annotations

from typing import Any

from ..memory import Region, RegionKind
from .base import round_up

__all__ = ["ValueArena"]

#: bytes per chunk (a chunk holds at least one slot)
CHUNK_BYTES = 1 << 16


class ValueArena:
    """Slots of ``slot_size`` bytes for ``owner`` (a ``BpfMap``), handed out by ``alloc`` and taken back by ``free``."""

    def __init__(self, owner: Any, slot_size: int, *, writable: bool = True) -> None:
        self.owner = owner
        self.slot_size = max(8, round_up(slot_size, 8))
        self.per_chunk = max(1, CHUNK_BYTES // self.slot_size)
        self.writable = writable
        self.chunks: list[Region] = []
        self._free: list[int] = []
        self._next = 0

    def alloc(self) -> int:
        """A free slot's index (its bytes are zeroed); charges a new chunk when needed (ENOMEM past the limit)."""
        if self._free:
            i = self._free.pop()
        else:
            i = self._next
            if i // self.per_chunk >= len(self.chunks):
                size = self.per_chunk * self.slot_size
                self.owner.charge(size)
                aspace = self.owner.kernel.aspace
                self.chunks.append(aspace.add(bytearray(size), RegionKind.MAP_VALUE,
                                              f"map_value:{self.owner.map_type}", writable=self.writable,
                                              owner=self.owner))
            self._next += 1
        r, off = self._locate(i)
        r.buf[off:off + self.slot_size] = bytes(self.slot_size)
        return i

    def free(self, i: int) -> None:
        self._free.append(i)

    def _locate(self, i: int) -> tuple[Region, int]:
        return self.chunks[i // self.per_chunk], (i % self.per_chunk) * self.slot_size

    def addr(self, i: int) -> int:
        """The kernel address of slot ``i`` (what a lookup returns to a program)."""
        r, off = self._locate(i)
        return r.base + off

    def read(self, i: int, n: int) -> bytes:
        r, off = self._locate(i)
        return bytes(r.buf[off:off + n])

    def write(self, i: int, data: bytes) -> None:
        r, off = self._locate(i)
        r.buf[off:off + len(data)] = data

    def close(self) -> None:
        """Unregister every chunk (the map is being freed)."""
        aspace = self.owner.kernel.aspace
        for r in self.chunks:
            aspace.remove(r)
        self.chunks.clear()
        self._free.clear()
        self._next = 0
