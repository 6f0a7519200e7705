"""The RingBuf reader over a hand-built BPF ring buffer mapping: wrap-around, discarded and busy records."""
from __future__ import annotations

import struct
from typing import Any

from tinyaya.maps import MapData, RingBuf
from tinyaya.maps.ring_buf import BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT
from tinyaya.uapi.bpf import BpfMapType

PAGE = 4096
SIZE = 4096


class FakeRingKernel:
    """Just the mmap of one ring buffer map: consumer page, producer page, data (bpf_ringbuf_mmap_user)."""

    backend = "fake"

    def __init__(self) -> None:
        self.mem = bytearray(PAGE + PAGE + 2 * SIZE)
        self.prod = 0

    def mmap(self, fd: int, length: int, prot: int, flags: int, offset: int = 0) -> memoryview:
        return memoryview(self.mem)[offset:offset + length]

    def munmap(self, mem: memoryview) -> None:
        mem.release()

    def close(self, fd: int) -> None:
        pass

    def produce(self, payload: bytes, flags: int = 0) -> int:
        """Reserve and commit a record as bpf_ringbuf_reserve/commit do; returns its position."""
        pos = self.prod
        hdr = struct.pack("<II", len(payload) | flags, 0)
        for i, b in enumerate(hdr + payload):
            self.mem[2 * PAGE + (pos + i) % SIZE] = b
        self.prod += (len(payload) + 8 + 7) // 8 * 8
        struct.pack_into("<Q", self.mem, PAGE, self.prod)
        return pos

    def consumer_pos(self) -> int:
        return int(struct.unpack_from("<Q", self.mem, 0)[0])


def ring(kernel: Any) -> RingBuf:
    md = MapData(kernel=kernel, fd=99, map_type=BpfMapType.BPF_MAP_TYPE_RINGBUF, key_size=0, value_size=0,
                 max_entries=SIZE)
    return RingBuf(md, page_size=PAGE)


def test_records_wrap_discard_and_busy() -> None:
    k = FakeRingKernel()
    rb = ring(k)
    for i in range(150):  # 150 x 24 bytes = 3600: most of the ring
        k.produce(struct.pack("<QQ", i, i))
    assert [struct.unpack("<QQ", r)[0] for r in rb.drain()] == list(range(150))
    k.produce(b"skip me", BPF_RINGBUF_DISCARD_BIT)
    for i in range(150, 160):  # these wrap past the end of the data area
        k.produce(struct.pack("<QQ", i, i) + bytes(i % 5))
    busy = k.produce(b"not yet", BPF_RINGBUF_BUSY_BIT)
    k.produce(b"after busy")
    got = rb.drain()
    assert [struct.unpack_from("<Q", r)[0] for r in got] == list(range(150, 160))
    assert [len(r) for r in got] == [16 + i % 5 for i in range(150, 160)]
    assert k.consumer_pos() == busy  # the reader stops at an uncommitted record
    struct.pack_into("<I", k.mem, 2 * PAGE + busy % SIZE, len(b"not yet"))  # commit it
    assert rb.drain() == [b"not yet", b"after busy"]
    assert rb.next() is None
    rb.close()
