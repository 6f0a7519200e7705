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

import ctypes
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
_TAIL_Q = MMAP_PAGE_DATA_TAIL // 8
assert MMAP_PAGE_DATA_TAIL % 8 == 0


class PerfRing:
    """The header page and data pages of one perf event; ``buf`` is what mmap returns."""

    __slots__ = ("buf", "view", "data_size", "_mask", "event_id", "_data", "ctl", "_keep", "_hq")

    def __init__(self, data_pages: int, event_id: int) -> None:
        self.data_size = data_pages * PAGE_SIZE
        self._mask = self.data_size - 1
        self.buf = bytearray(PAGE_SIZE + self.data_size)
        self.view = memoryview(self.buf)
        self._data = self.view[PAGE_SIZE:]
        #: the header page as u64 words (``_hq[_TAIL_Q]`` is ``data_tail``, one load)
        self._hq = self.view[:PAGE_SIZE].cast("Q")
        #: head, lost, samples written, then (for the native tier) the header and data host addresses,
        #: the data size and the event id: one ctypes block machine code updates like this class does
        self.ctl = (ctypes.c_uint64 * 8)()
        self._keep = (ctypes.c_char * len(self.buf)).from_buffer(self.buf)
        host = ctypes.addressof(self._keep)
        self.ctl[3], self.ctl[4], self.ctl[5], self.ctl[6] = host, host + PAGE_SIZE, self.data_size, event_id
        self.event_id = event_id
        _U64.pack_into(self.buf, MMAP_PAGE_DATA_OFFSET, PAGE_SIZE)
        _U64.pack_into(self.buf, MMAP_PAGE_DATA_SIZE, self.data_size)
        struct.pack_into("<I", self.buf, 72, 1104)  # perf_event_mmap_page.size = offsetof(aux_size) + 8

    @property
    def head(self) -> int:
        """Where the next record goes (``rb->head``)."""
        return int(self.ctl[0])

    @head.setter
    def head(self, v: int) -> None:
        self.ctl[0] = v

    @property
    def lost(self) -> int:
        """Samples dropped since the last PERF_RECORD_LOST (``rb->lost``)."""
        return int(self.ctl[1])

    @lost.setter
    def lost(self, v: int) -> None:
        self.ctl[1] = v

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

    def sample(self, src: bytes | bytearray | memoryview, o: int, n: int) -> bool:
        """``output_raw(b"", src[o:o + n])`` and, when written, one more sample counted (``ctl[2]``): the
        event path of ``bpf_perf_event_output`` for a RAW-only event. The ring's space is checked before
        anything is sliced or copied (a full ring drops the sample: the common case when the reader
        polls less often than the program writes)."""
        raw_size = ((n + 11) & ~7) - 4
        size = 12 + raw_size
        ctl = self.ctl
        if size > 0xFFFF:
            ctl[1] += 1
            return False
        head = ctl[0]
        lost = ctl[1]
        # ring_buffer_has_space(): CIRC_SPACE, so the writer stays strictly behind the reader's tail
        if (size + 24 if lost else size) > ((self._hq[_TAIL_Q] - head - 1) & self._mask):
            ctl[1] = lost + 1
            return False
        if lost:
            self._copy_in(head, LOST_RECORD.pack(_LOST, 0, LOST_RECORD.size, self.event_id, lost))
            head += LOST_RECORD.size
            ctl[1] = 0
        off = head & self._mask
        data = self._data
        if off + size <= self.data_size:
            SAMPLE_RAW_HEADER.pack_into(data, off, _SAMPLE, PERF_RECORD_MISC_KERNEL, size, raw_size)
            end = off + 12 + n
            data[off + 12:end] = src[o:o + n]
            pad = raw_size - n
            if pad:
                data[end:end + pad] = _ZEROS[:pad]
        else:
            rec = bytearray(size)
            SAMPLE_RAW_HEADER.pack_into(rec, 0, _SAMPLE, PERF_RECORD_MISC_KERNEL, size, raw_size)
            rec[12:12 + n] = src[o:o + n]
            self._copy_in(head, rec)
        head += size
        ctl[0] = head
        _U64.pack_into(self.buf, MMAP_PAGE_DATA_HEAD, head)
        ctl[2] += 1
        return True

    def output_raw(self, prefix: bytes, raw: bytes | bytearray | memoryview) -> bool:
        """Write one PERF_RECORD_SAMPLE: ``prefix`` (the sample fields before RAW, 8-aligned) and RAW ``raw``.

        The u32 raw size counts the padding that aligns the record to 8 bytes
        (``perf_prepare_sample``: round_up(size + sizeof(u32), 8) - sizeof(u32)).
        Returns False (and counts a lost sample) when the ring is full.
        """
        n = len(raw)
        raw_size = ((n + 11) & ~7) - 4
        size = 12 + len(prefix) + raw_size
        ctl = self.ctl
        if size > 0xFFFF:
            ctl[1] += 1
            return False
        head = ctl[0]
        lost = ctl[1]
        need = size + 24 if lost else size
        # ring_buffer_has_space(): CIRC_SPACE, so the writer stays strictly behind the reader's tail
        if need > ((_U64.unpack_from(self.buf, MMAP_PAGE_DATA_TAIL)[0] - head - 1) & self._mask):
            ctl[1] = lost + 1
            return False
        if lost:
            self._copy_in(head, LOST_RECORD.pack(_LOST, 0, LOST_RECORD.size, self.event_id, lost))
            head += LOST_RECORD.size
            ctl[1] = 0
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
        ctl[0] = head
        _U64.pack_into(self.buf, MMAP_PAGE_DATA_HEAD, head)
        return True
