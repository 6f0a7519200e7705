"""kallsyms, tracefs formats and ids, the kprobe PMU files: shapes and agreement with the real kernel."""
from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest

from tinyaya.sim_kernel.tracing.kallsyms import TEXT_BASE, Kallsyms, kernel_functions
from tinyaya.sim_kernel.tracing.syscalls import BY_NAME, SYSCALLS, syscall_name, syscall_nr
from tinyaya.sim_kernel.tracing.tracepoints import build_tracepoints

HOST_EVENTS = Path("/sys/kernel/tracing/events")


def test_syscall_table_numbers() -> None:
    assert syscall_nr("read") == 0 and syscall_nr("write") == 1 and syscall_nr("openat") == 257
    assert syscall_nr("getppid") == 110 and syscall_nr("exit_group") == 231 and syscall_nr("clone3") == 435
    assert syscall_name(39) == "getpid" and syscall_name(100000) == "syscall_100000"
    assert len(SYSCALLS) > 360
    assert BY_NAME["stat"].kname == "newstat" and BY_NAME["newfstat"].name == "fstat"


def test_kallsyms_signatures_and_addresses() -> None:
    ks = Kallsyms()
    assert ks.by_name["sys_enter"].signature == "void sys_enter(struct pt_regs *regs, long id)"
    assert ks.by_name["sys_exit"].signature == "void sys_exit(struct pt_regs *regs, long ret)"
    assert ks.by_name["__x64_sys_openat"].signature == "long __x64_sys_openat(const struct pt_regs *regs)"
    assert "vfs_read" in ks.by_name and "do_sys_openat2" in ks.by_name and "tcp_connect" in ks.by_name
    assert ks.by_name["dragonos_kernel::syscall::Syscall::handle"].params[1] == ("usize", "syscall_num")
    addrs = [f.addr for f in ks.functions]
    assert addrs == sorted(addrs) and addrs[0] == TEXT_BASE
    fn, off = ks.lookup_addr(ks.by_name["vfs_read"].addr + 5)  # type: ignore[misc]
    assert fn.name == "vfs_read" and off == 5
    assert [f.name for f in ks.match("vfs_*")] == ["vfs_open", "vfs_read", "vfs_write", "vfs_fstatat"] or \
        {f.name for f in ks.match("vfs_*")} == {"vfs_open", "vfs_read", "vfs_write", "vfs_fstatat"}
    assert len(kernel_functions()) == len(ks.functions)


def test_proc_kallsyms_format(kernel) -> None:
    text = kernel.read_file("/proc/kallsyms").decode()
    lines = text.splitlines()
    assert all(re.fullmatch(r"[0-9a-f]{16} T \S.*", ln) for ln in lines)
    assert any(ln.endswith(" T sys_enter") for ln in lines)
    assert any(ln.endswith(" T __x64_sys_getppid") for ln in lines)


def test_kprobe_pmu_files(kernel) -> None:
    assert kernel.read_file("/sys/bus/event_source/devices/kprobe/type") == b"6\n"
    assert kernel.read_file("/sys/bus/event_source/devices/kprobe/format/retprobe") == b"config:0\n"
    with pytest.raises(OSError) as e:
        kernel.read_file("/sys/bus/event_source/devices/nope/type")
    assert e.value.errno == errno.ENOENT


def test_tracepoint_ids_and_available_events(kernel) -> None:
    assert kernel.read_file("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id") == b"443\n"
    avail = kernel.read_file("/sys/kernel/tracing/available_events").decode().splitlines()
    for name in ("raw_syscalls:sys_enter", "raw_syscalls:sys_exit", "syscalls:sys_enter_openat",
                 "syscalls:sys_exit_openat", "sched:sched_process_exec", "sched:sched_process_exit",
                 "sched:sched_process_fork"):
        assert name in avail
    ids = [tp.id for tp in build_tracepoints()]
    assert len(ids) == len(set(ids))
    with pytest.raises(OSError) as e:
        kernel.read_file("/sys/kernel/tracing/events/syscalls/sys_enter_nosuch/id")
    assert e.value.errno == errno.ENOENT


def test_raw_syscalls_format_layout(kernel) -> None:
    text = kernel.read_file("/sys/kernel/tracing/events/raw_syscalls/sys_enter/format").decode()
    assert "\tfield:long id;\toffset:8;\tsize:8;\tsigned:1;" in text
    assert "\tfield:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;" in text
    text = kernel.read_file("/sys/kernel/tracing/events/syscalls/sys_enter_openat/format").decode()
    assert "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;" in text
    assert "\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;" in text


def _host_events() -> list[str]:
    if not (HOST_EVENTS / "raw_syscalls" / "sys_enter" / "format").exists():
        return []
    names = ["raw_syscalls/sys_enter", "raw_syscalls/sys_exit", "sched/sched_process_exec",
             "sched/sched_process_exit", "sched/sched_process_fork"]
    names += [f"syscalls/{p.name}" for p in sorted((HOST_EVENTS / "syscalls").glob("sys_e*"))]
    return names


def test_formats_match_the_real_kernel(kernel) -> None:
    """Every simulated format file is byte-for-byte the running kernel's (same version as the table)."""
    if not _host_events():
        pytest.skip("the host's tracefs is not mounted (no formats to compare with)")
    host_id = (HOST_EVENTS / "raw_syscalls" / "sys_enter" / "id").read_text()
    if host_id.strip() != "443":
        pytest.skip("the host kernel numbers its events differently from the generated table")
    mismatches = []
    for ev in _host_events():
        ours = kernel.read_file(f"/sys/kernel/tracing/events/{ev}/format").decode()
        theirs = (HOST_EVENTS / ev / "format").read_text()
        if ours != theirs:
            mismatches.append(ev)
    assert mismatches == []
