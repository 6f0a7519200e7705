"""RINGBUF: reserve/submit/discard/output/query, and the mmap'd layout user space reads (libbpf, Aya)."""
from __future__ import annotations

import mmap
import struct
from typing import Any

from maps_helpers import err

RB = 27
PAGE = 4096
BUSY, DISCARD = 1 << 31, 1 << 30


def consume(m: Any) -> list[bytes]:
    """A consumer written the way libbpf's ``ringbuf_process_ring`` is, over the mmap'd pages only."""
    cons = m.mmap(PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, 0)
    ro = m.mmap(PAGE + 2 * m.max_entries, mmap.PROT_READ, mmap.MAP_SHARED, PAGE)
    mask = m.max_entries - 1
    out = []
    cpos = struct.unpack_from("<Q", cons, 0)[0]
    while True:
        ppos = struct.unpack_from("<Q", ro, 0)[0]
        if cpos >= ppos:
            break
        off = PAGE + (cpos & mask)
        length, _pg = struct.unpack_from("<II", ro, off)
        if length & BUSY:
            break
        cpos += (((length & ~DISCARD) + 8) + 7) & ~7
        if not length & DISCARD:
            out.append(bytes(ro[off + 8:off + 8 + length]))
        struct.pack_into("<Q", cons, 0, cpos)
    m.munmap(cons)
    return out


def test_output_and_read_back(mk: Any) -> None:
    m = mk(RB, 0, 0, PAGE)
    assert m.output(b"hello", 0) == 0
    assert m.output(b"world!!!", 0) == 0
    assert m.query(0) == 16 + 16
    assert m.query(1) == PAGE
    assert consume(m) == [b"hello", b"world!!!"]
    assert m.query(0) == 0 and m.query(2) == m.query(3) == 32


def test_reserve_busy_blocks_reader_until_submit(mk: Any, kernel: Any) -> None:
    m = mk(RB, 0, 0, PAGE)
    a = m.reserve(10, 0)
    b = m.reserve(4, 0)
    kernel.aspace.write(a, b"0123456789")
    kernel.aspace.write(b, b"abcd")
    m.submit(b, 0)
    assert consume(m) == []  # the first record is still BUSY
    m.discard(a, 0)
    assert consume(m) == [b"abcd"]


def test_full_ring_and_wraparound(mk: Any, kernel: Any) -> None:
    m = mk(RB, 0, 0, PAGE)
    rec = bytes(range(200)) * 5  # 1000 bytes -> 1008 per record
    sent = []
    for i in range(20):
        data = bytes([i]) + rec[1:]
        r = m.output(data, 0)
        if r == -11:  # -EAGAIN: full, drain and go on
            assert consume(m) == sent
            sent = []
            assert m.output(data, 0) == 0
        sent.append(data)
    assert consume(m) == sent
    assert m.reserve(PAGE, 0) == 0  # bigger than the ring
    assert m.reserve(8, 1) == 0  # flags must be 0
    assert m.output(b"x", 4) == -22


def test_record_header_layout(mk: Any, kernel: Any) -> None:
    m = mk(RB, 0, 0, 2 * PAGE)
    addr = m.reserve(3, 0)
    hdr = kernel.aspace.read(addr - 8, 8)
    length, pg_off = struct.unpack("<II", hdr)
    assert length == 3 | BUSY and pg_off == 3
    m.submit(addr, 0)
    assert struct.unpack("<I", kernel.aspace.read(addr - 8, 4))[0] == 3
    assert m.producer_pos == 16


def test_mmap_permissions(mk: Any) -> None:
    m = mk(RB, 0, 0, PAGE)
    assert err(m.mmap, 2 * PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, 0) == "EPERM"
    assert err(m.mmap, PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, PAGE) == "EPERM"
    assert err(m.mmap, 4 * PAGE, mmap.PROT_READ, mmap.MAP_SHARED, PAGE) == "EINVAL"
    assert m.mmap(3 * PAGE, mmap.PROT_READ, mmap.MAP_SHARED, PAGE).readonly
    for op in (m.sys_lookup, m.sys_delete, m.sys_get_next_key):
        assert err(op, None) == "E524"


def test_wakeups(mk: Any) -> None:
    m = mk(RB, 0, 0, PAGE)
    woken: list[int] = []
    m.waiters.append(lambda: woken.append(1))
    m.output(b"a", 1)  # BPF_RB_NO_WAKEUP
    assert woken == []
    m.output(b"b", 2)  # BPF_RB_FORCE_WAKEUP
    assert woken == [1]


def test_bogus_consumer_pos_is_full_not_a_crash(mk: Any) -> None:
    m = mk(RB, 0, 0, PAGE)
    cons = m.mmap(PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, 0)
    struct.pack_into("<Q", cons, 0, 1 << 40)  # user space writes nonsense
    assert m.reserve(8, 0) == 0 and m.output(b"x", 0) == -11
    struct.pack_into("<Q", cons, 0, 0)
    assert m.output(b"x", 0) == 0
