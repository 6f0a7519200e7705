"""The BPF_OUTPUT perf event ring: real perf_event_mmap_page layout, samples, PERF_RECORD_LOST, wrap-around."""
from __future__ import annotations

import errno
import struct

import pytest

from tinyaya import sys as bpfsys
from tinyaya.uapi.perf_event import (
    PERF_EVENT_IOC_DISABLE,
    PERF_EVENT_IOC_ENABLE,
    PerfEventMmapPage,
)

PAGE = 4096
SAMPLE, LOST = 9, 2


def read_records(mem: memoryview) -> list[tuple[int, bytes]]:
    """An independent reader, as aya's PerfBuffer reads: (type, payload) from data_tail to data_head."""
    page = PerfEventMmapPage.from_buffer(mem)
    head, tail, off, size = page.data_head, page.data_tail, page.data_offset, page.data_size
    data = mem[off:off + size]
    out = []
    while tail < head:
        def take(pos: int, n: int) -> bytes:
            start = pos % size
            first = bytes(data[start:start + n])
            return first + bytes(data[0:n - len(first)])
        rtype, _misc, rsize = struct.unpack("<IHH", take(tail, 8))
        assert rsize >= 8 and rsize % 8 == 0, "a record is 8-byte aligned"
        out.append((rtype, take(tail + 8, rsize - 8)))
        tail += rsize
    page.data_tail = tail
    del page
    return out


def raw_of(payload: bytes) -> bytes:
    (n,) = struct.unpack_from("<I", payload)
    return payload[4:4 + n]


def open_output(kernel, cpu: int = 0, pages: int = 1):
    fd = bpfsys.perf_event_open_bpf_output(kernel, cpu)
    ev = kernel.fds.get(fd)
    mem = kernel.mmap(fd, PAGE * (1 + pages), 3, 1, 0)
    return fd, ev, mem


def test_header_page_layout(kernel) -> None:
    _, ev, mem = open_output(kernel, pages=2)
    page = PerfEventMmapPage.from_buffer(mem)
    assert (page.data_offset, page.data_size, page.data_head, page.data_tail) == (PAGE, 2 * PAGE, 0, 0)
    del page


def test_samples_are_raw_records_padded_to_8(kernel) -> None:
    _, ev, mem = open_output(kernel)
    for n in (1, 4, 5, 12, 13):
        assert ev.output(0, bytes(range(n))) == 0
    recs = read_records(mem)
    assert [t for t, _ in recs] == [SAMPLE] * 5
    for (_, payload), n in zip(recs, (1, 4, 5, 12, 13), strict=True):
        assert raw_of(payload)[:n] == bytes(range(n))
        assert (8 + len(payload)) % 8 == 0
        (size,) = struct.unpack_from("<I", payload)
        assert (4 + size) % 8 == 0 and size >= n  # the u32 size counts the padding, as perf_prepare_sample


def test_overflow_reports_lost_with_the_right_count_and_no_corruption(kernel) -> None:
    _, ev, mem = open_output(kernel)  # one data page
    def payload(i):
        return struct.pack("<Q", i) * 7  # 56 bytes: 8 + 4 + 60 (padded) = 72-byte records
    written = []
    lost_expected = 0
    for i in range(200):
        r = ev.output(0, payload(i))
        if r == 0:
            written.append(i)
        else:
            assert r == -errno.ENOSPC
            lost_expected += 1
    assert lost_expected > 0 and len(written) == 4095 // 72  # CIRC_SPACE leaves one byte unused
    recs = read_records(mem)
    assert [raw_of(p)[:56] for _, p in recs] == [payload(i) for i in written]
    # the reader caught up: the next sample comes after one PERF_RECORD_LOST with the count
    assert ev.output(0, payload(1000)) == 0
    recs = read_records(mem)
    assert [t for t, _ in recs] == [LOST, SAMPLE]
    ev_id, lost = struct.unpack("<QQ", recs[0][1])
    assert lost == lost_expected and ev_id == ev.id
    assert raw_of(recs[1][1])[:56] == payload(1000)


def test_wrap_around_keeps_records_whole(kernel) -> None:
    _, ev, mem = open_output(kernel)
    seen = []
    for i in range(500):
        data = bytes([i % 251]) * (1 + i % 90)
        assert ev.output(0, data) == 0
        seen.extend(raw_of(p)[:len(data)] == data for t, p in read_records(mem) if t == SAMPLE)
    assert len(seen) == 500 and all(seen)


def test_output_without_a_mapped_ring_is_enospc(kernel) -> None:
    fd = bpfsys.perf_event_open_bpf_output(kernel, 0)
    assert kernel.fds.get(fd).output(0, b"x") == -errno.ENOSPC


def test_output_needs_the_event_of_this_cpu_enabled(kernel) -> None:
    fd, ev, _ = open_output(kernel, cpu=1)
    assert ev.output(0, b"x") == -errno.EOPNOTSUPP
    assert ev.output(1, b"x") == 0
    kernel.ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)
    assert ev.output(1, b"x") == -errno.EOPNOTSUPP
    kernel.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
    assert ev.output(1, b"x") == 0


def test_mmap_sizes(kernel) -> None:
    fd = bpfsys.perf_event_open_bpf_output(kernel, 0)
    for bad in (PAGE, PAGE * 4, PAGE * 2 + 1):
        with pytest.raises(OSError) as e:
            kernel.mmap(fd, bad, 3, 1, 0)
        assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError):
        kernel.mmap(fd, PAGE * 3, 3, 1, PAGE)


def test_sample_type_fields_before_raw(kernel) -> None:
    from tinyaya.uapi.perf_event import PerfEventAttr

    attr = PerfEventAttr()
    attr.size = 136
    attr.type = 1
    attr.config = 10
    attr.sample_type = (1 << 1) | (1 << 7) | (1 << 10)  # TID | CPU | RAW
    fd = kernel.perf_event_open(attr, -1, 0, -1, 0)
    mem = kernel.mmap(fd, PAGE * 2, 3, 1, 0)
    kernel.fds.get(fd).output(0, b"abcd")
    ((t, p),) = read_records(mem)
    pid, tid, cpu, _res = struct.unpack_from("<IIII", p)
    me = kernel.machine.current_task(0)
    assert (t, pid, tid, cpu) == (SAMPLE, me.tgid, me.pid, 0) and raw_of(p[16:])[:4] == b"abcd"


def test_ring_sample_equals_output_raw() -> None:
    """``PerfRing.sample`` (the Python event path of bpf_perf_event_output) writes exactly the bytes,
    head, lost count and samples count of ``output_raw(b"", raw)``: full rings, lost records, wrap-around,
    a reader that consumes some records at random."""
    import random

    from tinyaya.sim_kernel.tracing.perf_ring import PerfRing
    from tinyaya.uapi.perf_event import MMAP_PAGE_DATA_TAIL

    rng = random.Random(9)
    fast, slow = PerfRing(1, 7), PerfRing(1, 7)
    src = bytes(rng.randrange(256) for _ in range(2048))
    for step in range(3000):
        n = rng.choice([0, 1, 4, 5, 12, 13, 56, 282, rng.randrange(600)])
        o = rng.randrange(len(src) - n + 1)
        a = fast.sample(memoryview(src), o, n)
        b = slow.output_raw(b"", src[o:o + n])
        if b:
            slow.ctl[2] += 1
        assert a == b, step
        assert fast.buf == slow.buf and list(fast.ctl[:3]) == list(slow.ctl[:3]), step
        if rng.random() < 0.1:  # the reader catches up to somewhere between its tail and the head
            tail = struct.unpack_from("<Q", fast.buf, MMAP_PAGE_DATA_TAIL)[0]
            tail = rng.randrange(tail, fast.head + 1) & ~7
            for r in (fast, slow):
                struct.pack_into("<Q", r.buf, MMAP_PAGE_DATA_TAIL, tail)
    assert fast.ctl[2] > 100 and fast.ctl[1] + fast.ctl[2] > 0


def test_helper_fast_path_equals_event_output() -> None:
    """bpf_perf_event_output's direct ``PerfRing.sample`` for a RAW-only event gives the results and ring
    bytes of ``PerfEvent.output`` (the fast path turned off on a second event)."""
    import random

    from tinyaya.sim_kernel import SimKernel
    from tinyaya.sim_kernel.maps import create_map
    from tinyaya.sim_kernel.vm.helpers_maps import bpf_perf_event_output
    from tinyaya.sim_kernel.vm.interp import RunEnv

    class A:
        map_type, key_size, value_size, max_entries = 4, 4, 4, 2
        map_flags = map_extra = btf_key_type_id = btf_value_type_id = 0
        numa_node = 0xFFFFFFFF

    runs = []
    for fast in (True, False):
        kernel = SimKernel()  # the same event ids in both runs (a PERF_RECORD_LOST carries the id)
        fd, ev, mem = open_output(kernel, cpu=0)
        arr = create_map(kernel, A())
        arr.sys_update(struct.pack("<I", 0), struct.pack("<I", fd))
        if not fast:
            ev.raw_ring = None  # what an event the fast path does not apply to looks like to the helper
        env = RunEnv(kernel.vm, 0, [], None)  # type: ignore[arg-type]
        buf = kernel.aspace.regions[arr.region.base >> 32]  # any readable region: the map's own struct
        out = []
        r = random.Random(5)
        for _ in range(400):
            n = r.choice([0, 3, 8, 100, 200])
            flags = r.choice([0xFFFFFFFF, 0, 1, 2])
            out.append(bpf_perf_event_output(env, 0, arr.region.base, flags, buf.base + r.randrange(50), n))
            if r.random() < 0.01:
                read_records(mem)
            if r.random() < 0.02:
                kernel.ioctl(fd, PERF_EVENT_IOC_DISABLE if r.random() < 0.5 else PERF_EVENT_IOC_ENABLE, 0)
        runs.append((out, bytes(mem), list(ev.ring.ctl[:3])))
        del mem
        kernel.shutdown()
    assert runs[0] == runs[1]
    assert 0 in runs[0][0] and -errno.ENOSPC in runs[0][0] and -errno.EOPNOTSUPP in runs[0][0]
