"""UProbe (entry and return) on libc, and PerfEvent on a software clock, on the real kernel."""
from __future__ import annotations

import os
import time

import pytest

from tinyaya import EbpfLoader
from tinyaya.linux import LinuxKernel
from tinyaya.maps import Array, u64
from tinyaya.programs import AttachError, PerfEvent, ProbeKind, UProbe

from .conftest import FIXTURES

pytestmark = pytest.mark.linux

PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK = 1, 0


def libc_path() -> str:
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "/libc.so" in path or "/libc-" in path:
                return path
    pytest.skip("libc is not mapped in this process")


@pytest.fixture
def uprobe_pmu() -> None:
    if not os.path.exists("/sys/bus/event_source/devices/uprobe/type"):
        pytest.skip("this kernel has no uprobe PMU")


def test_uprobe_and_uretprobe_count_libc_calls(linux_kernel: LinuxKernel, uprobe_pmu: None) -> None:
    libc = libc_path()
    with EbpfLoader(kernel=linux_kernel).override_global("target_tgid", os.getpid()).load_file(
            FIXTURES / "probes.o") as ebpf:
        calls = Array(ebpf.map("CALLS"), value=u64)
        entry, ret = ebpf.program_mut("count_calls"), ebpf.program_mut("count_returns")
        assert isinstance(entry, UProbe) and isinstance(ret, UProbe)
        assert (entry.kind, ret.kind) == (ProbeKind.UProbe, ProbeKind.URetProbe)
        entry.load()
        ret.load()
        links = [entry.attach("getppid", 0, libc), ret.attach("getppid", 0, libc)]
        for _ in range(37):
            os.getppid()
        entry.detach(links[0])
        ret.detach(links[1])
        os.getppid()
        assert (calls[0], calls[1]) == (37, 37)


def test_uprobe_unknown_symbol_is_a_clear_error(linux_kernel: LinuxKernel, uprobe_pmu: None) -> None:
    with EbpfLoader(kernel=linux_kernel).load_file(FIXTURES / "probes.o") as ebpf:
        prog = ebpf.program_mut("count_calls")
        prog.load()
        with pytest.raises(AttachError, match="no_such_symbol_here"):
            prog.attach("no_such_symbol_here", 0, libc_path())


def test_perf_event_samples_a_software_clock(linux_kernel: LinuxKernel) -> None:
    with EbpfLoader(kernel=linux_kernel).load_file(FIXTURES / "probes.o") as ebpf:
        calls = Array(ebpf.map("CALLS"), value=u64)
        prog = ebpf.program_mut("count_samples")
        assert isinstance(prog, PerfEvent)
        prog.load()
        link = prog.attach(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, cpu=0, sample_period=100_000)
        deadline = time.monotonic() + 10  # wait for samples, not for a duration
        while calls[2] == 0 and time.monotonic() < deadline:
            sum(range(10000))
        prog.detach(link)
        assert calls[2] > 0
