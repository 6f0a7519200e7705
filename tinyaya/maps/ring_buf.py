"""``RingBuf`` (aya/src/maps/ring_buf.rs): the consumer side of a BPF_MAP_TYPE_RINGBUF.

The map's mmap layout (kernel/bpf/ringbuf.c, ``bpf_ringbuf_mmap_user``):

* offset 0, one page, read-write: the consumer page, ``unsigned long consumer_pos`` at 0;
* offset ``page_size``, read-only: the producer page (``producer_pos`` at 0),
  then the data area of ``max_entries`` bytes, mapped twice back to back so a
  record that wraps is contiguous.

Each record has an 8-byte header (``BPF_RINGBUF_HDR_SZ``): ``u32 len`` whose
top bits are ``BPF_RINGBUF_BUSY_BIT`` (31: not committed yet) and
``BPF_RINGBUF_DISCARD_BIT`` (30: skip it), and ``u32 pg_off``. Records are
8-byte aligned. The reader stops at the first busy record and publishes its
new ``consumer_pos`` after each record.
"""
from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator

from ..uapi.bpf import BpfMapType
from .base import MapData, TypedMap, round_up

__all__ = ["RingBuf", "BPF_RINGBUF_BUSY_BIT", "BPF_RINGBUF_DISCARD_BIT", "BPF_RINGBUF_HDR_SZ"]

BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
PROT_READ, PROT_WRITE, MAP_SHARED = 1, 2, 1


class RingBuf(TypedMap):
    """``next()`` returns the next committed record's bytes (or None); iterate to drain."""

    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_RINGBUF,)

    def __init__(self, map: MapData, page_size: int | None = None) -> None:
        super().__init__(map, map.key_size, map.value_size)
        self.page_size = page_size or mmap.PAGESIZE
        size = self.map.max_entries
        if size <= 0 or size & (size - 1) or size % self.page_size:
            raise ValueError(f"ring buffer size {size} is not a power-of-two multiple of the page size")
        self.mask = size - 1
        kernel = self.map.kernel
        self.consumer = kernel.mmap(self.map.fd, self.page_size, PROT_READ | PROT_WRITE, MAP_SHARED, 0)
        try:
            self.producer = kernel.mmap(self.map.fd, self.page_size + 2 * size, PROT_READ, MAP_SHARED,
                                        self.page_size)
        except BaseException:
            kernel.munmap(self.consumer)
            raise
        self.closed = False

    def _consumer_pos(self) -> int:
        return int(struct.unpack_from("<Q", self.consumer, 0)[0])

    def _producer_pos(self) -> int:
        return int(struct.unpack_from("<Q", self.producer, 0)[0])

    def _data(self, pos: int, n: int) -> bytes:
        base = self.page_size
        start = pos & self.mask
        size = self.mask + 1
        first = min(n, size - start)  # wrap by hand: works whether or not the area is mapped twice
        out = bytes(self.producer[base + start:base + start + first])
        if first < n:
            out += bytes(self.producer[base:base + n - first])
        return out

    def next(self) -> bytes | None:
        """The next committed record, skipping discarded ones; None when nothing is ready."""
        cons = self._consumer_pos()
        while True:
            prod = self._producer_pos()
            if cons >= prod:
                return None
            hdr_len = struct.unpack("<I", self._data(cons, 4))[0]
            if hdr_len & BPF_RINGBUF_BUSY_BIT:
                return None
            length = hdr_len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)
            record = None if hdr_len & BPF_RINGBUF_DISCARD_BIT else self._data(cons + BPF_RINGBUF_HDR_SZ, length)
            cons += round_up(length + BPF_RINGBUF_HDR_SZ, 8)
            struct.pack_into("<Q", self.consumer, 0, cons)
            if record is not None:
                return record

    def __iter__(self) -> Iterator[bytes]:
        while (rec := self.next()) is not None:
            yield rec

    def drain(self) -> list[bytes]:
        return list(self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.map.kernel.munmap(self.consumer)
        self.map.kernel.munmap(self.producer)
