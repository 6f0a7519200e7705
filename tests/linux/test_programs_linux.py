"""The programs and maps API on the real kernel: load, attach to raw_syscalls/sys_enter, count exactly."""
from __future__ import annotations

import logging
import os
import re
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinyaya import Ebpf, EbpfLoader
from tinyaya.linux import LinuxKernel
from tinyaya.maps import Array, HashMap, PerfEventArray, RingBuf, u32, u64
from tinyaya.programs import AttachError, EbpfLogger, KProbe, LoadError, NotAttached, RawTracePoint, TracePoint

from .conftest import FIXTURES

pytestmark = pytest.mark.linux

GETPPID = 110  # x86-64
COUNT = FIXTURES / "count_syscalls.o"
EXAMPLE = Path(__file__).parents[2] / "examples/syscall_ebpf/syscall_ebpf-ebpf/syscall_ebpf.o"


def load_counter(kernel: LinuxKernel, watch: int = 0xFFFFFFFF) -> Ebpf:
    return (EbpfLoader(kernel=kernel).override_global("target_tgid", os.getpid())
            .override_global("watch_id", watch).load_file(COUNT))


def test_tracepoint_counts_getppid_exactly(linux_kernel: LinuxKernel, tracefs: str) -> None:
    with load_counter(linux_kernel) as ebpf:
        tp = ebpf.program_mut("count_syscalls")
        assert isinstance(tp, TracePoint)
        tp.load()
        counts = HashMap(ebpf.map("COUNTS"), key=u32, value=u64)
        link = tp.attach("raw_syscalls", "sys_enter")
        n = 1234
        before = counts.get(GETPPID) if GETPPID in counts else 0
        for _ in range(n):
            os.getppid()
        after = counts.get(GETPPID)
        tp.detach(link)
        assert after - before == n
        for _ in range(10):  # detached: no more counting
            os.getppid()
        assert counts.get(GETPPID) == after
        with pytest.raises(NotAttached):
            tp.detach(link)


def test_rodata_is_frozen_and_readonly(linux_kernel: LinuxKernel) -> None:
    with load_counter(linux_kernel) as ebpf:
        rodata = Array(ebpf.map(".rodata"), value=8)
        assert struct.unpack("<II", rodata.get(0)) == (os.getpid(), 0xFFFFFFFF)
        with pytest.raises(OSError):
            rodata.set(0, bytes(8))


def test_ring_buffer_and_perf_array_readers(linux_kernel: LinuxKernel, tracefs: str) -> None:
    with load_counter(linux_kernel, watch=GETPPID) as ebpf:
        tp = ebpf.program_mut("count_syscalls")
        tp.load()
        ring = RingBuf(ebpf.map("EVENTS"))
        perf = PerfEventArray(ebpf.map("PERF_EVENTS"))
        perf.open_all(page_count=1)
        try:
            link = tp.attach("raw_syscalls", "sys_enter")
            for _ in range(20):
                os.getppid()
            tp.detach(link)
            records = ring.drain()
            samples, events = perf.read_all()
        finally:
            ring.close()
            perf.close()
        assert len(records) == 20 and all(struct.unpack("<QQ", r)[0] == GETPPID for r in records)
        assert events.read == 20 and events.lost == 0
        assert all(len(s) == 20 and struct.unpack_from("<Q", s)[0] == GETPPID for s in samples)


def test_raw_tracepoint_attach_and_take_link(linux_kernel: LinuxKernel) -> None:
    with load_counter(linux_kernel) as ebpf:
        raw = ebpf.program_mut("raw_enter")
        assert isinstance(raw, RawTracePoint)
        raw.load()
        link_id = raw.attach("sys_enter")
        link = raw.take_link(link_id)
        raw.unload()  # the taken link keeps the program attached
        link.detach()


def test_socket_filter_test_run(linux_kernel: LinuxKernel) -> None:
    with load_counter(linux_kernel) as ebpf:
        prog = ebpf.program_mut("ret_len")
        prog.load()
        # skb->len: the frame minus the Ethernet header that eth_type_trans pulled
        assert prog.test_run(data=bytes(60)).retval == 60 - 14


def test_example_kprobe_loads_but_attach_says_no_kprobes(linux_kernel: LinuxKernel) -> None:
    if os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
        pytest.skip("this kernel has kprobes")
    with Ebpf.load_file(EXAMPLE, kernel=linux_kernel) as ebpf:
        prog = ebpf.program_mut("syscall_ebpf")
        assert isinstance(prog, KProbe)
        prog.load()
        with pytest.raises(AttachError) as ei:
            prog.attach("sys_enter", 0)
        msg = str(ei.value)
        assert "no kprobes" in msg and "\n" not in msg


def test_load_error_carries_verifier_log(linux_kernel: LinuxKernel) -> None:
    with load_counter(linux_kernel) as ebpf:
        prog = ebpf.program_mut("count_syscalls")
        prog.prog_type = 1  # as a SOCKET_FILTER, bpf_get_current_pid_tgid is not allowed: rejected
        with pytest.raises(LoadError) as ei:
            prog.load()
        assert "bpf_get_current_pid_tgid" in ei.value.verifier_log


def test_ebpf_logger_over_perf_array(linux_kernel: LinuxKernel, tracefs: str,
                                     caplog: pytest.LogCaptureFixture) -> None:
    loader = EbpfLoader(kernel=linux_kernel).override_global("target_tgid", os.getpid())
    with loader.override_global("watch_id", GETPPID).load_file(FIXTURES / "aya_log_tp.o") as ebpf:
        logger = EbpfLogger.init(ebpf)
        prog = ebpf.program_mut("log_syscall")
        prog.load()
        with caplog.at_level(logging.INFO, logger="aya_log_tp"):
            link = prog.attach("raw_syscalls", "sys_enter")
            for _ in range(3):
                os.getppid()
            prog.detach(link)
            records = logger.poll()
        logger.close()
    assert len(records) == 3 and logger.errors == 0
    assert all(re.fullmatch(r"\[\d+\] invoke syscall 110", r.message) for r in records)
    assert [r.args[1] for r in records] == [GETPPID] * 3
    got = [r for r in caplog.records if r.name == "aya_log_tp"]
    assert len(got) == 3
    assert (got[0].levelno, got[0].module, got[0].filename, got[0].getMessage()) == (
        logging.WARNING, "aya_log_tp::probe", "aya_log_tp.c", records[0].message)


PIN_SCRIPT = textwrap.dedent("""
    import os, sys
    from tinyaya import EbpfLoader
    from tinyaya.linux import LinuxKernel
    from tinyaya.maps import HashMap, MapData, u32, u64
    from tinyaya.programs import Program
    k = LinuxKernel()
    root = sys.argv[1]
    ebpf = EbpfLoader(kernel=k).override_global("target_tgid", 1).load_file(sys.argv[2])
    counts = HashMap(ebpf.map("COUNTS"), key=u32, value=u64)
    counts.insert(7, 49)
    counts.pin(root + "/COUNTS")
    prog = ebpf.program_mut("ret_len"); prog.load(); prog.pin(root + "/ret_len")
    ebpf.close()
    again = HashMap.from_pin(root + "/COUNTS", k, key=u32, value=u64)
    assert again.get(7) == 49, again.get(7)
    p = Program.from_pin(root + "/ret_len", k)
    assert p.test_run(data=bytes(33)).retval == 33 - 14
    p.unload(); again.close()
    print("ok")
""")


def test_pins_in_a_private_bpffs(linux_kernel: LinuxKernel, tmp_path: Path) -> None:
    """Pins go into a bpffs mounted in a private mount namespace only, never /sys/fs/bpf."""
    root = tmp_path / "bpffs"
    root.mkdir()
    script = tmp_path / "pin.py"
    script.write_text(PIN_SCRIPT)
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
           f'mount -t bpf bpf "{root}" && exec "{sys.executable}" "{script}" "{root}" "{COUNT}"']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    if r.returncode != 0 and "unshare" in r.stderr and "Operation not permitted" in r.stderr:
        pytest.skip(f"no private mount namespace here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert not list(root.iterdir())  # the bpffs lived only in the child's namespace


@pytest.mark.parametrize("name", ["p_tp_btf", "p_iter_task", "p_syscall_prog"])
def test_btf_typed_and_sleepable_programs_load(linux_kernel: LinuxKernel, name: str) -> None:
    """tp_btf and iter need attach_btf_id from vmlinux BTF; SYSCALL programs must be sleepable."""
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("no /sys/kernel/btf/vmlinux")
    objs = Path(__file__).parents[1] / "fixtures/obj"
    with EbpfLoader(kernel=linux_kernel).allow_unsupported_maps().load_file(objs / "sections.o") as ebpf:
        prog = ebpf.program_mut(name)
        prog.load()
        assert prog.info().type == prog.prog_type


def test_pinning_by_name_in_a_private_bpffs(linux_kernel: LinuxKernel, tmp_path: Path) -> None:
    root = tmp_path / "bpffs"
    root.mkdir()
    script = tmp_path / "pinning.py"
    script.write_text("import sys\nfrom tinyaya.linux import LinuxKernel\nfrom api.pinning_scenario import run\n"
                      "run(LinuxKernel(), sys.argv[1])\nprint('ok')\n")
    tests_dir = Path(__file__).parents[1]
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
           f'mount -t bpf bpf "{root}" && exec "{sys.executable}" "{script}" "{root}"']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": f"{tests_dir.parent}:{tests_dir}"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
