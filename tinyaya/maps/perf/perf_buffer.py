"""``PerfBuffer``: reading one CPU's mmap'd perf ring (aya/src/maps/perf/perf_buffer.rs).

The mapping is one metadata page (``struct perf_event_mmap_page``) followed by
``page_count`` data pages (a power of two). The kernel writes records at
``data_head``; the reader consumes from ``data_tail`` and publishes the new
tail when done (``perf_output_put_handle`` / tools/include/linux/ring_buffer.h).
Each record starts with ``struct perf_event_header``; a record may wrap past
the end of the data area. Records handled:

* ``PERF_RECORD_SAMPLE`` with ``PERF_SAMPLE_RAW``: ``u32 size`` then ``size``
  bytes of raw data (the kernel pads size + 4 to 8 bytes; aya hands the padded
  bytes over, and so do we);
* ``PERF_RECORD_LOST``: ``u64 id, u64 lost``: ``lost`` samples were dropped
  because the ring was full.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from ...kernel import Kernel
from ...uapi.perf_event import (
    MMAP_PAGE_DATA_HEAD,
    MMAP_PAGE_DATA_OFFSET,
    MMAP_PAGE_DATA_SIZE,
    MMAP_PAGE_DATA_TAIL,
    PerfEventType,
)

__all__ = ["PerfBuffer", "Events", "PerfBufferError", "read_ring"]

PROT_READ, PROT_WRITE, MAP_SHARED = 1, 2, 1
_HEADER = struct.Struct("<IHH")


class PerfBufferError(Exception):
    """The ring holds something that is not a well-formed record (a record size of 0 or past the head)."""


@dataclass(frozen=True)
class Events:
    """aya's ``Events``: how many samples were read and how many the kernel reported lost."""

    read: int
    lost: int


def _copy(ring: memoryview, data_off: int, size: int, pos: int, n: int) -> bytes:
    """``n`` bytes of the data area starting at ring position ``pos``, wrapping at ``size``."""
    start = pos % size
    first = min(n, size - start)
    out = bytes(ring[data_off + start:data_off + start + first])
    if first < n:
        out += bytes(ring[data_off:data_off + n - first])
    return out


def read_ring(ring: memoryview, page_size: int, max_records: int | None = None) -> tuple[list[bytes], int]:
    """Consume records from a mmap'd perf ring: returns (raw samples, lost count) and advances data_tail."""
    head = struct.unpack_from("<Q", ring, MMAP_PAGE_DATA_HEAD)[0]
    tail = struct.unpack_from("<Q", ring, MMAP_PAGE_DATA_TAIL)[0]
    data_off = struct.unpack_from("<Q", ring, MMAP_PAGE_DATA_OFFSET)[0] or page_size
    size = struct.unpack_from("<Q", ring, MMAP_PAGE_DATA_SIZE)[0] or (len(ring) - page_size)
    samples: list[bytes] = []
    lost = 0
    if size <= 0 or head - tail > size:
        raise PerfBufferError(f"perf ring state is inconsistent: head {head}, tail {tail}, data_size {size}")
    while tail < head and (max_records is None or len(samples) < max_records):
        rtype, _misc, rsize = _HEADER.unpack(_copy(ring, data_off, size, tail, 8))
        if rsize < 8 or tail + rsize > head:
            raise PerfBufferError(f"bad perf record at {tail}: size {rsize}, head {head}")
        body = _copy(ring, data_off, size, tail + 8, rsize - 8)
        if rtype == PerfEventType.PERF_RECORD_SAMPLE:
            if len(body) < 4:
                raise PerfBufferError(f"short PERF_RECORD_SAMPLE at {tail}")
            n = struct.unpack_from("<I", body)[0]
            if 4 + n > len(body):
                raise PerfBufferError(f"PERF_RECORD_SAMPLE at {tail} says {n} raw bytes, has {len(body) - 4}")
            samples.append(body[4:4 + n])
        elif rtype == PerfEventType.PERF_RECORD_LOST:
            if len(body) >= 16:
                lost += struct.unpack_from("<QQ", body)[1]
        tail += rsize
    struct.pack_into("<Q", ring, MMAP_PAGE_DATA_TAIL, tail)
    return samples, lost


class PerfBuffer:
    """One CPU's BPF_OUTPUT perf event with its mmap'd ring (1 + ``page_count`` pages)."""

    def __init__(self, kernel: Kernel, cpu: int, perf_fd: int, page_count: int, page_size: int) -> None:
        if page_count <= 0 or page_count & (page_count - 1):
            raise ValueError(f"page_count must be a power of two, got {page_count}")
        self.kernel = kernel
        self.cpu = cpu
        self.fd = perf_fd
        self.page_size = page_size
        self.size = page_size * (page_count + 1)
        self.ring = kernel.mmap(perf_fd, self.size, PROT_READ | PROT_WRITE, MAP_SHARED, 0)
        self.closed = False

    def readable(self) -> bool:
        head = struct.unpack_from("<Q", self.ring, MMAP_PAGE_DATA_HEAD)[0]
        tail = struct.unpack_from("<Q", self.ring, MMAP_PAGE_DATA_TAIL)[0]
        return bool(head != tail)

    def read_events(self, max_records: int | None = None) -> tuple[list[bytes], Events]:
        """Read what the ring holds now: the raw samples and an ``Events`` count (read, lost)."""
        samples, lost = read_ring(self.ring, self.page_size, max_records)
        return samples, Events(read=len(samples), lost=lost)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.kernel.munmap(self.ring)
        finally:
            self.kernel.close(self.fd)
