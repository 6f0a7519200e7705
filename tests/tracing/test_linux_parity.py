"""The simulated tracing semantics that are easy to get wrong, checked against the real kernel.

A program attached to a tracepoint runs even while its perf event is disabled
(``perf_trace_run_bpf_submit`` calls ``trace_call_bpf`` before it looks at the
enabled events); the simulated kernel does the same.
"""
from __future__ import annotations

import os
import struct

import pytest
from tracing_helpers import FIXTURES, sim_kernel

from tinyaya import sys as bpfsys
from tinyaya.uapi.perf_event import (
    ATTR_FLAG_DISABLED,
    PERF_ATTR_SIZE_VER8,
    PERF_EVENT_IOC_SET_BPF,
    PERF_FLAG_FD_CLOEXEC,
    PerfEventAttr,
    PerfTypeId,
)

GETPPID = 110
LOOPS = 500


def _count_with_disabled_event(kernel, issue) -> int:
    from tinyaya.programs import Ebpf

    with Ebpf.load_file(FIXTURES / "count_tracepoint.bpf.o", kernel=kernel) as bpf:
        prog = bpf.program_mut("count_tracepoint")
        prog.load()
        attr = PerfEventAttr()
        attr.size = PERF_ATTR_SIZE_VER8
        attr.type = PerfTypeId.PERF_TYPE_TRACEPOINT
        attr.config = bpfsys.tracepoint_id(kernel, "raw_syscalls", "sys_enter")
        attr.sample_period = 1
        attr.flags = ATTR_FLAG_DISABLED
        efd = kernel.perf_event_open(attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)
        try:
            kernel.ioctl(efd, PERF_EVENT_IOC_SET_BPF, prog.fd)  # and never PERF_EVENT_IOC_ENABLE
            issue()
            value = bpfsys.bpf_map_lookup_elem(kernel, bpf.map("SYSCALL_COUNTS").fd, struct.pack("<I", GETPPID), 8)
        finally:
            kernel.close(efd)
    return struct.unpack("<Q", value)[0] if value else 0


def test_sim_runs_programs_on_a_disabled_tracepoint_event() -> None:
    k = sim_kernel()
    p = k.machine.process(comm="loop")
    assert _count_with_disabled_event(k, lambda: [p.syscall("getppid") for _ in range(LOOPS)]) == LOOPS


@pytest.mark.linux
def test_linux_runs_programs_on_a_disabled_tracepoint_event() -> None:
    from tinyaya.linux import LinuxKernel, linux_bpf_available

    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    if not os.path.exists("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id"):
        pytest.skip("tracefs is not mounted at /sys/kernel/tracing")
    before = set(os.listdir("/proc/self/fd"))
    count = _count_with_disabled_event(LinuxKernel(), lambda: [os.getppid() for _ in range(LOOPS)])
    # other processes may call getppid too: at least our loop was counted, with the event never enabled
    assert count >= LOOPS
    assert set(os.listdir("/proc/self/fd")) <= before | {str(n) for n in range(3)}


def _opened_paths(kernel, issue) -> dict[bytes, int]:
    from tinyaya.programs import Ebpf

    with Ebpf.load_file(FIXTURES / "openat_path.bpf.o", kernel=kernel) as bpf:
        prog = bpf.program_mut("openat_path")
        prog.load()
        prog.attach("syscalls", "sys_enter_openat")
        issue()
        out = {}
        fd = bpf.map("OPEN_PATHS").fd
        key = None
        while (key := bpfsys.bpf_map_get_next_key(kernel, fd, key, 64)) is not None:
            value = bpfsys.bpf_map_lookup_elem(kernel, fd, key, 8)
            if value is not None:
                out[key.rstrip(b"\0")] = struct.unpack("<Q", value)[0]
    return out


PATH = "/etc/hostname"


def test_sim_openat_tracepoint_reads_the_path() -> None:
    k = sim_kernel()
    p = k.machine.process(comm="python3")
    got = _opened_paths(k, lambda: [p.syscall("openat", -100, PATH, 0o2000000) for _ in range(3)])
    assert got == {PATH.encode(): 3}


@pytest.mark.linux
def test_linux_openat_tracepoint_reads_the_path() -> None:
    from tinyaya.linux import LinuxKernel, linux_bpf_available

    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    if not os.path.exists("/sys/kernel/tracing/events/syscalls/sys_enter_openat/id"):
        pytest.skip("no syscalls:sys_enter_openat tracepoint here (tracefs not mounted?)")

    def issue() -> None:
        for _ in range(3):
            os.close(os.open(PATH, os.O_RDONLY | os.O_CLOEXEC))

    got = _opened_paths(LinuxKernel(), issue)
    assert got.get(PATH.encode(), 0) >= 3  # the same layout and helper give the same data on both kernels


def _perf_records(kernel, pid_of_issuer: int, issue) -> list[tuple[int, int, int, bytes]]:
    """(record type, record size, raw size, raw) of the OPEN_EVENTS samples that ``issue`` produced."""
    import mmap as _mmap

    from test_perf_ring import read_records

    from tinyaya.kernel import possible_cpus
    from tinyaya.programs import Ebpf

    out = []
    with Ebpf.load_file(FIXTURES / "openat_path.bpf.o", kernel=kernel) as bpf:
        prog = bpf.program_mut("openat_path")
        prog.load()
        events = bpf.map("OPEN_EVENTS").fd
        opened: list[tuple[int, memoryview]] = []
        try:
            for cpu in possible_cpus(kernel):
                fd = bpfsys.perf_event_open_bpf_output(kernel, cpu)
                mem = kernel.mmap(fd, 4096 * 9, _mmap.PROT_READ | _mmap.PROT_WRITE, _mmap.MAP_SHARED, 0)
                opened.append((fd, mem))
                bpfsys.bpf_map_update_elem(kernel, events, struct.pack("<I", cpu), struct.pack("<I", fd))
            prog.attach("syscalls", "sys_enter_openat")
            issue()
            for _fd, mem in opened:
                for rtype, payload in read_records(mem):
                    (raw_size,) = struct.unpack_from("<I", payload)
                    raw = payload[4:4 + raw_size]
                    if rtype == 9 and struct.unpack_from("<I", raw)[0] == pid_of_issuer:
                        out.append((rtype, 8 + len(payload), raw_size, raw))
        finally:
            for fd, mem in opened:
                kernel.munmap(mem)
                kernel.close(fd)
    return out


def test_sim_perf_samples_have_the_kernels_shape() -> None:
    k = sim_kernel()
    p = k.machine.process(comm="python3")
    recs = _perf_records(k, p.pid, lambda: p.syscall("openat", -100, PATH, 0))
    assert [(t, size, raw_size) for t, size, raw_size, _ in recs] == [(9, 88, 76)]
    assert recs[0][3][8:8 + len(PATH)] == PATH.encode()


@pytest.mark.linux
def test_linux_perf_samples_have_the_same_shape() -> None:
    from tinyaya.linux import LinuxKernel, linux_bpf_available

    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    if not os.path.exists("/sys/kernel/tracing/events/syscalls/sys_enter_openat/id"):
        pytest.skip("no syscalls:sys_enter_openat tracepoint here (tracefs not mounted?)")
    recs = _perf_records(LinuxKernel(), os.getpid(), lambda: os.close(os.open(PATH, os.O_RDONLY)))
    mine = [r for r in recs if r[3][8:8 + len(PATH)] == PATH.encode()]
    assert mine and {(t, size, raw_size) for t, size, raw_size, _ in mine} == {(9, 88, 76)}


def _overflow(kernel, cpu: int, issue) -> list[tuple[int, int]]:
    """Fill a one-page ring without reading, then read, emit once more and read: (type, size) of records."""
    import mmap as _mmap

    from test_perf_ring import read_records

    from tinyaya.kernel import possible_cpus
    from tinyaya.programs import Ebpf

    shapes: list[tuple[int, int]] = []
    with Ebpf.load_file(FIXTURES / "openat_path.bpf.o", kernel=kernel) as bpf:
        prog = bpf.program_mut("openat_path")
        prog.load()
        events = bpf.map("OPEN_EVENTS").fd
        opened = []
        try:
            for c in possible_cpus(kernel):
                fd = bpfsys.perf_event_open_bpf_output(kernel, c)
                mem = kernel.mmap(fd, 4096 * 2, _mmap.PROT_READ | _mmap.PROT_WRITE, _mmap.MAP_SHARED, 0)
                opened.append((fd, mem))
                bpfsys.bpf_map_update_elem(kernel, events, struct.pack("<I", c), struct.pack("<I", fd))
            prog.attach("syscalls", "sys_enter_openat")
            issue(100)  # 100 samples of 88 bytes cannot fit in 4096 bytes
            mem = opened[cpu][1]
            shapes += [(t, 8 + len(p)) for t, p in read_records(mem)]
            issue(1)
            shapes += [(t, 8 + len(p)) for t, p in read_records(mem)]
        finally:
            for fd, mem in opened:
                kernel.munmap(mem)
                kernel.close(fd)
    return shapes


def test_sim_overflow_shape() -> None:
    k = sim_kernel(ncpus=1)
    p = k.machine.process(comm="python3", cpu=0)
    shapes = _overflow(k, 0, lambda n: [p.syscall("openat", -100, PATH, 0) for _ in range(n)])
    assert shapes == [(9, 88)] * (4095 // 88) + [(2, 24), (9, 88)]


@pytest.mark.linux
def test_linux_overflow_shape() -> None:
    """The real kernel, pinned to CPU 0, reports the dropped samples with one PERF_RECORD_LOST of 24 bytes."""
    from tinyaya.linux import LinuxKernel, linux_bpf_available

    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    if not os.path.exists("/sys/kernel/tracing/events/syscalls/sys_enter_openat/id"):
        pytest.skip("no syscalls:sys_enter_openat tracepoint here (tracefs not mounted?)")
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        def issue(n: int) -> None:
            for _ in range(n):
                os.close(os.open(PATH, os.O_RDONLY))
        shapes = _overflow(LinuxKernel(), 0, issue)
    finally:
        os.sched_setaffinity(0, old)
    # every sample is 88 bytes (whoever opened a file on CPU 0), so exactly as many fit as in the simulation:
    # CIRC_SPACE keeps one byte free, then the first sample after the reader caught up brings the LOST record
    assert shapes[: 4095 // 88 + 1] == [(9, 88)] * (4095 // 88) + [(2, 24)], shapes


TRACE_LINE = r"^ {0,16}(?P<comm>.{1,16})-(?P<pid>\d+) +\[(?P<cpu>\d{3})\] (?P<flags>\S{5}) +(?P<ts>\d+\.\d{6}): bpf_trace_printk: (?P<msg>.*)$"


def _printk_lines(kernel, tgid: int, issue, read) -> list[str]:
    from tinyaya.programs import Ebpf

    with Ebpf.load_file(FIXTURES / "printk_tp.bpf.o", kernel=kernel) as bpf:
        prog = bpf.program_mut("printk_tp")
        prog.load()
        bpfsys.bpf_map_update_elem(kernel, bpf.map("TARGET").fd, struct.pack("<I", 0), struct.pack("<I", tgid))
        prog.attach("raw_syscalls", "sys_enter")
        issue()
    return [ln for ln in read().splitlines() if f"getppid from {tgid}" in ln]


def test_sim_trace_pipe_line_format() -> None:
    import re

    k = sim_kernel()
    p = k.machine.process(comm="python3", cpu=1)
    lines = _printk_lines(k, p.pid, lambda: [p.syscall("getppid") for _ in range(2)],
                          lambda: k.read_file("/sys/kernel/tracing/trace_pipe").decode())
    assert len(lines) == 2
    m = re.match(TRACE_LINE, lines[0])
    assert m and m["comm"].strip() == "python3" and int(m["pid"]) == p.pid and m["cpu"] == "001"
    assert m["flags"] == "...21"  # as the real kernel prints for a tracepoint program
    assert m["msg"] == f"getppid from {p.pid}"


@pytest.mark.linux
def test_linux_trace_line_has_the_same_shape() -> None:
    """Read the (non-consuming) ``trace`` file, so nobody else's trace_pipe reader loses lines."""
    import re

    from tinyaya.linux import LinuxKernel, linux_bpf_available

    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    if not os.path.exists("/sys/kernel/tracing/trace"):
        pytest.skip("tracefs is not mounted at /sys/kernel/tracing")
    lines = _printk_lines(LinuxKernel(), os.getpid(), lambda: [os.getppid() for _ in range(2)],
                          lambda: open("/sys/kernel/tracing/trace", errors="replace").read())
    assert len(lines) >= 2
    m = re.match(TRACE_LINE, lines[-1])
    assert m, lines[-1]
    assert int(m["pid"]) == os.getpid() and m["msg"] == f"getppid from {os.getpid()}"
    assert m["flags"] == "...21"


def _record(kernel, tgid: int, issue) -> bytes:
    from tinyaya.programs import Ebpf

    with Ebpf.load_file(FIXTURES / "ctx_dump.bpf.o", kernel=kernel) as bpf:
        prog = bpf.program_mut("ctx_dump")
        prog.load()
        bpfsys.bpf_map_update_elem(kernel, bpf.map("TARGET").fd, struct.pack("<I", 0), struct.pack("<I", tgid))
        prog.attach("raw_syscalls", "sys_enter")
        issue()
        return bytes(bpfsys.bpf_map_lookup_elem(kernel, bpf.map("LAST").fd, struct.pack("<I", 0), 64) or b"")


def _fields(rec: bytes) -> tuple[int, tuple[int, ...]]:
    """(id, args) of a raw_syscalls:sys_enter record (bytes 0..7, the common fields, are unreadable)."""
    words = struct.unpack("<8Q", rec)
    return words[1], words[2:]


def test_sim_raw_syscalls_record() -> None:
    k = sim_kernel()
    p = k.machine.process(comm="python3")
    nr, args = _fields(_record(k, p.pid, lambda: p.syscall("getppid", 1, 2, 3, 4, 5, 6)))
    assert nr == 110 and args == (1, 2, 3, 4, 5, 6)


@pytest.mark.linux
def test_linux_raw_syscalls_record_matches() -> None:
    from tinyaya.linux import LinuxKernel, linux_bpf_available

    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    if not os.path.exists("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id"):
        pytest.skip("tracefs is not mounted at /sys/kernel/tracing")
    nr, _args = _fields(_record(LinuxKernel(), os.getpid(), os.getppid))
    assert nr == 110  # the same program, the same offset, the same value
