"""A perf event's mmap'd ring buffer (kernel/events/ring_buffer.c), in the real layout.

The mapping is one ``struct perf_event_mmap_page`` header page followed by
2^n data pages. The kernel writes records at ``data_head`` and publishes the
new head after each record; the reader consumes from ``data_tail`` and
stores the new tail in the header page. Records are 8-byte aligned and may
wrap around the end of the data area.

When a record does not fit between head and tail, the kernel drops it and
counts it in ``rb->lost``; the next record that fits is preceded by one
``PERF_RECORD_LOST`` record carrying that count (``perf_output_begin``), so a
reader learns exactly how many samples it missed. The writer never touches
bytes between tail and head, so an overflow never corrupts a record.
"""
from __future__ import annotations

import struct

from ...uapi.perf_event import (
    MMAP_PAGE_DATA_HEAD,
    MMAP_PAGE_DATA_OFFSET,
    MMAP_PAGE_DATA_SIZE,
    MMAP_PAGE_DATA_TAIL,
    PAGE_SIZE,
    PERF_RECORD_MISC_KERNEL,
    PerfEventType,
)

__all__ = ["PerfRing", "LOST_RECORD", "SAMPLE_RAW_HEADER"]

_U64 = struct.Struct("<Q")
#: perf_event_header + u32 raw size (PERF_SAMPLE_RAW only)
SAMPLE_RAW_HEADER = struct.Struct("<IHHI")
#: perf_event_header + u64 id + u64 lost
LOST_RECORD = struct.Struct("<IHHQQ")
_SAMPLE = int(PerfEventType.PERF_RECORD_SAMPLE)
_ZEROS = memoryview(bytes(8))
_LOST = int(PerfEventType.PERF_RECORD_LOST)


class PerfRing:
    """The header page and data pages of one perf event; ``buf`` is what mmap returns."""

    __slots__ = ("buf", "view", "data_size", "_mask", "head", "lost", "event_id", "_data")

    def __init__(self, data_pages: int, event_id: int) -> None:
        self.data_size = data_pages * PAGE_SIZE
        self._mask = self.data_size - 1
        self.buf = bytearray(PAGE_SIZE + self.data_size)
        self.view = memoryview(self.buf)
        self._data = self.view[PAGE_SIZE:]
        self.head = 0
        #: samples dropped since the last PERF_RECORD_LOST (``rb->lost``)
        self.lost = 0
        self.event_id = event_id
        _U64.pack_into(self.buf, MMAP_PAGE_DATA_OFFSET, PAGE_SIZE)
        _U64.pack_into(self.buf, MMAP_PAGE_DATA_SIZE, self.data_size)
        struct.pack_into("<I", self.buf, 72, 1104)  # perf_event_mmap_page.size = offsetof(aux_size) + 8

    @property
    def tail(self) -> int:
        return int(_U64.unpack_from(self.buf, MMAP_PAGE_DATA_TAIL)[0])

    def _copy_in(self, pos: int, data: bytes | bytearray | memoryview) -> None:
        off = pos & self._mask
        n = len(data)
        first = min(n, self.data_size - off)
        self._data[off:off + first] = data[:first]
        if first < n:
            self._data[0:n - first] = data[first:]

    def output_raw(self, prefix: bytes, raw: bytes | bytearray | memoryview) -> bool:
        """Write one PERF_RECORD_SAMPLE: ``prefix`` (the sample fields before RAW, 8-aligned) and RAW ``raw``.

        The u32 raw size counts the padding that aligns the record to 8 bytes
        (``perf_prepare_sample``: round_up(size + sizeof(u32), 8) - sizeof(u32)).
        Returns False (and counts a lost sample) when the ring is full.
        """
        n = len(raw)
        raw_size = ((n + 11) & ~7) - 4
        size = 12 + len(prefix) + raw_size
        if size > 0xFFFF:
            self.lost += 1
            return False
        head = self.head
        lost = self.lost
        need = size + 24 if lost else size
        # ring_buffer_has_space(): CIRC_SPACE, so the writer stays strictly behind the reader's tail
        if need > ((_U64.unpack_from(self.buf, MMAP_PAGE_DATA_TAIL)[0] - head - 1) & self._mask):
            self.lost = lost + 1
            return False
        if lost:
            self._copy_in(head, LOST_RECORD.pack(_LOST, 0, LOST_RECORD.size, self.event_id, lost))
            head += LOST_RECORD.size
            self.lost = 0
        off = head & self._mask
        data = self._data
        if off + size <= self.data_size and not prefix:
            SAMPLE_RAW_HEADER.pack_into(data, off, _SAMPLE, PERF_RECORD_MISC_KERNEL, size, raw_size)
            end = off + 12 + n
            data[off + 12:end] = raw
            pad = raw_size - n
            if pad:
                data[end:end + pad] = _ZEROS[:pad]
        else:
            rec = bytearray(size)
            struct.pack_into("<IHH", rec, 0, _SAMPLE, PERF_RECORD_MISC_KERNEL, size)
            rec[8:8 + len(prefix)] = prefix
            p = 8 + len(prefix)
            struct.pack_into("<I", rec, p, raw_size)
            rec[p + 4:p + 4 + n] = raw
            self._copy_in(head, rec)
        head += size
        self.head = head
        _U64.pack_into(self.buf, MMAP_PAGE_DATA_HEAD, head)
        return True
