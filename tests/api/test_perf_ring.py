"""The perf ring reader over a hand-built perf_event_mmap_page ring: wrap-around, samples, PERF_RECORD_LOST."""
from __future__ import annotations

import struct

import pytest

from tinyaya.maps.perf import PerfBufferError, read_ring
from tinyaya.uapi.perf_event import MMAP_PAGE_DATA_HEAD, MMAP_PAGE_DATA_TAIL, PerfEventType

PAGE = 4096


class Ring:
    """A writer that lays records out as the kernel does (perf_output_begin/perf_output_put_handle)."""

    def __init__(self, data_pages: int = 1) -> None:
        self.mem = bytearray(PAGE * (1 + data_pages))
        self.size = PAGE * data_pages
        self.head = 0

    def put(self, rec: bytes) -> None:
        for i, b in enumerate(rec):
            self.mem[PAGE + (self.head + i) % self.size] = b
        self.head += len(rec)
        struct.pack_into("<Q", self.mem, MMAP_PAGE_DATA_HEAD, self.head)

    def sample(self, raw: bytes) -> None:
        size = (4 + len(raw) + 7) // 8 * 8  # raw size + u32, padded to 8 bytes
        body = struct.pack("<I", size - 4) + raw.ljust(size - 4, b"\0")
        self.put(struct.pack("<IHH", PerfEventType.PERF_RECORD_SAMPLE, 0, 8 + len(body)) + body)

    def lost(self, n: int) -> None:
        self.put(struct.pack("<IHHQQ", PerfEventType.PERF_RECORD_LOST, 0, 24, 0, n))


def test_samples_lost_and_wraparound() -> None:
    ring = Ring()
    view = memoryview(ring.mem)
    for i in range(100):  # 100 x 24 bytes: wraps past the 4096-byte data area after a read
        ring.sample(struct.pack("<QQ", i, i * i)[:12])
    samples, lost = read_ring(view, PAGE)
    assert lost == 0 and len(samples) == 100
    assert struct.unpack_from("<Q", view, MMAP_PAGE_DATA_TAIL)[0] == ring.head
    for i in range(100, 250):  # 150 samples + 3 LOST records fit in the free space
        ring.sample(struct.pack("<QQ", i, i * i)[:12])
        if i % 50 == 0:
            ring.lost(7)
    samples, lost = read_ring(view, PAGE)
    assert lost == 7 * 3
    assert [struct.unpack_from("<Q", s)[0] for s in samples] == list(range(100, 250))
    assert all(len(s) == 12 for s in samples)  # 12 raw bytes + the u32 size is already 8-aligned


def test_overrun_head_is_a_typed_error() -> None:
    ring = Ring()
    struct.pack_into("<Q", ring.mem, MMAP_PAGE_DATA_HEAD, 2 * ring.size)  # more than the ring can hold
    with pytest.raises(PerfBufferError):
        read_ring(memoryview(ring.mem), PAGE)


def test_corrupt_record_is_a_typed_error() -> None:
    ring = Ring()
    ring.put(struct.pack("<IHH", PerfEventType.PERF_RECORD_SAMPLE, 0, 0))  # size 0 would loop forever
    with pytest.raises(PerfBufferError):
        read_ring(memoryview(ring.mem), PAGE)
