"""kprobes, kretprobes, tracepoints and raw tracepoints: what fires, in which order, with which context."""
from __future__ import annotations

import errno
import struct

import pytest
from tracing_helpers import install_prog, recording, regs

from tinyaya import sys as bpfsys
from tinyaya.sim_kernel.tracing.pt_regs import PT_REGS_OFFSET
from tinyaya.sim_kernel.tracing.syscalls import syscall_nr
from tinyaya.uapi.bpf import BpfProgType
from tinyaya.uapi.perf_event import (
    PERF_EVENT_IOC_SET_BPF,
    PerfEventAttr,
)

KPROBE = BpfProgType.BPF_PROG_TYPE_KPROBE
TRACEPOINT = BpfProgType.BPF_PROG_TYPE_TRACEPOINT
RAW_TP = BpfProgType.BPF_PROG_TYPE_RAW_TRACEPOINT
M64 = (1 << 64) - 1


def kprobe(kernel, fn: str, name: str, retprobe: bool = False, offset: int = 0) -> int:
    prog, pfd = install_prog(kernel, KPROBE, name)
    efd = bpfsys.perf_event_open_probe(kernel, fn, offset, retprobe=retprobe)
    bpfsys.perf_event_ioc_set_bpf(kernel, efd, pfd)
    kernel.close(pfd)
    return efd


def tracepoint(kernel, cat: str, tp: str, name: str) -> int:
    prog, pfd = install_prog(kernel, TRACEPOINT, name)
    efd = bpfsys.perf_event_open_trace_point(kernel, bpfsys.tracepoint_id(kernel, cat, tp))
    bpfsys.perf_event_ioc_set_bpf(kernel, efd, pfd)
    kernel.close(pfd)
    return efd


def test_sys_enter_kprobe_sees_id_in_rsi_and_user_regs_behind_rdi(kernel) -> None:
    vm = recording(kernel)
    kprobe(kernel, "sys_enter", "enter")
    p = kernel.machine.process(comm="cat", uid=1000, cpu=1)
    ret = p.syscall("openat", -100, "/etc/passwd", 0o2000000, 0)
    assert ret == 3
    (run,) = vm.runs
    r = regs(run.ctx)
    assert r["si"] == syscall_nr("openat") and run.cpu == 1 and run.pid == p.pid
    fn = kernel.tracing.kallsyms.by_name["sys_enter"]
    assert r["ip"] == fn.addr and r["cs"] == 0x10
    user = regs(kernel.aspace.read(r["di"], 168))  # struct pt_regs *regs: the syscall's own registers
    assert user["orig_ax"] == 257 and user["di"] == (-100 & M64) and user["dx"] == 0o2000000
    assert kernel.aspace.read_cstr(user["si"], 64) == b"/etc/passwd"
    assert user["cs"] == 0x33 and user["ss"] == 0x2B


def test_x64_sys_wrapper_kretprobe_and_deeper_functions(kernel) -> None:
    vm = recording(kernel)
    kprobe(kernel, "do_sys_openat2", "openat2")
    kprobe(kernel, "__x64_sys_openat", "wrapper")
    kprobe(kernel, "__x64_sys_openat", "wrapper_ret", retprobe=True)
    kprobe(kernel, "do_sys_openat2", "openat2_ret", retprobe=True)
    p = kernel.machine.process(comm="cat")
    p.syscall("read", 0, None, 10)  # not on the path: nothing fires
    assert vm.runs == []
    p.syscall("openat", -100, "/nonexistent", 0, ret=-2)
    assert [r.prog for r in vm.runs] == ["wrapper", "openat2", "openat2_ret", "wrapper_ret"]
    wrapper, openat2, openat2_ret, wrapper_ret = (regs(r.ctx) for r in vm.runs)
    assert regs(kernel.aspace.read(wrapper["di"], 168))["orig_ax"] == 257
    assert openat2["di"] == (-100 & M64) and kernel.aspace.read_cstr(openat2["si"], 64) == b"/nonexistent"
    assert openat2_ret["ax"] == (-2 & M64) and wrapper_ret["ax"] == (-2 & M64)


def test_dispatchers_have_the_number_in_rsi(kernel) -> None:
    vm = recording(kernel)
    kprobe(kernel, "dragonos_kernel::syscall::Syscall::handle", "dragonos")
    kprobe(kernel, "x64_sys_call", "linux")
    kprobe(kernel, "x64_sys_call", "linux_ret", retprobe=True)
    kernel.machine.process().syscall("getppid", ret=77)
    assert [(r.prog, regs(r.ctx)["si"]) for r in vm.runs] == [("dragonos", 110), ("linux", 110), ("linux_ret", 110)]
    assert regs(vm.runs[2].ctx)["ax"] == 77


def test_kprobe_at_offset_and_by_address(kernel) -> None:
    vm = recording(kernel)
    fn = kernel.tracing.kallsyms.by_name["vfs_read"]
    kprobe(kernel, "vfs_read", "at_off", offset=4)
    kernel.machine.process().syscall("read", 3, None, 100)
    assert regs(vm.runs[0].ctx)["ip"] == fn.addr + 4
    assert regs(vm.runs[0].ctx)["dx"] == 100  # vfs_read(file, buf, count, pos)
    # by address: config1 = 0, config2 = the address (kprobe_addr)
    attr = PerfEventAttr()
    attr.size = 136
    attr.type = 6
    attr.config2 = fn.addr + 8
    efd = kernel.perf_event_open(attr, -1, 0, -1, 0)
    _, pfd = install_prog(kernel, KPROBE, "by_addr")
    kernel.ioctl(efd, PERF_EVENT_IOC_SET_BPF, pfd)
    vm.runs.clear()
    kernel.machine.process().syscall("read", 3, None, 100)
    assert [(r.prog, regs(r.ctx)["ip"] - fn.addr) for r in vm.runs] == [("at_off", 4), ("by_addr", 8)]


def test_kprobe_errors(kernel) -> None:
    with pytest.raises(OSError) as e:
        bpfsys.perf_event_open_probe(kernel, "no_such_function")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        bpfsys.perf_event_open_probe(kernel, "vfs_read", 8, retprobe=True)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        bpfsys.perf_event_open_probe(kernel, "vfs_read", 0x1000)
    assert e.value.errno == errno.EINVAL


def test_set_bpf_checks_program_type_and_one_program_per_event(kernel) -> None:
    efd = bpfsys.perf_event_open_probe(kernel, "sys_enter")
    _, tp_fd = install_prog(kernel, TRACEPOINT)
    with pytest.raises(OSError) as e:
        kernel.ioctl(efd, PERF_EVENT_IOC_SET_BPF, tp_fd)
    assert e.value.errno == errno.EINVAL
    _, kp_fd = install_prog(kernel, KPROBE)
    kernel.ioctl(efd, PERF_EVENT_IOC_SET_BPF, kp_fd)
    with pytest.raises(OSError) as e:
        kernel.ioctl(efd, PERF_EVENT_IOC_SET_BPF, kp_fd)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        kernel.ioctl(efd, PERF_EVENT_IOC_SET_BPF, 999)
    assert e.value.errno == errno.EBADF


def test_several_programs_run_in_attach_order_and_close_detaches(kernel) -> None:
    vm = recording(kernel)
    a = kprobe(kernel, "sys_enter", "a")
    kprobe(kernel, "sys_enter", "b")
    tracepoint(kernel, "raw_syscalls", "sys_enter", "tp")
    p = kernel.machine.process()
    p.syscall("getpid")
    assert [r.prog for r in vm.runs] == ["a", "b", "tp"]
    kernel.close(a)
    vm.runs.clear()
    p.syscall("getpid")
    assert [r.prog for r in vm.runs] == ["b", "tp"]


def test_raw_syscalls_tracepoint_records(kernel) -> None:
    vm = recording(kernel)
    tracepoint(kernel, "raw_syscalls", "sys_enter", "enter")
    tracepoint(kernel, "raw_syscalls", "sys_exit", "exit")
    p = kernel.machine.process(comm="sh")
    p.syscall("write", 1, "hi", 2, 9, 8, 7, ret=2)
    enter, exit_ = vm.runs
    common_type, _flags, _preempt, pid, nr = struct.unpack_from("<HBBiq", enter.ctx)
    args = struct.unpack_from("<6Q", enter.ctx, 16)
    assert (common_type, pid, nr) == (443, p.pid, 1)
    assert args[0] == 1 and kernel.aspace.read_cstr(args[1], 8) == b"hi" and args[2:] == (2, 9, 8, 7)
    common_type, _, _, pid, nr, ret = struct.unpack_from("<HBBiqq", exit_.ctx)
    assert (common_type, pid, nr, ret) == (442, p.pid, 1, 2)


def test_syscalls_tracepoints_records(kernel) -> None:
    vm = recording(kernel)
    tracepoint(kernel, "syscalls", "sys_enter_openat", "enter")
    tracepoint(kernel, "syscalls", "sys_exit_openat", "exit")
    p = kernel.machine.process()
    p.syscall("getpid")
    p.syscall("openat", -100, "/etc/hosts", 0, 0o644, ret=5)
    enter, exit_ = vm.runs
    tp_id, _, _, pid, nr = struct.unpack_from("<HBBii", enter.ctx)
    dfd, filename, flags, mode = struct.unpack_from("<qQQQ", enter.ctx, 16)
    assert tp_id == kernel.tracing.tracepoints_by_name["syscalls:sys_enter_openat"].id
    assert (pid, nr, dfd, flags, mode) == (p.pid, 257, -100, 0, 0o644)
    assert kernel.aspace.read_cstr(filename, 64) == b"/etc/hosts"
    assert struct.unpack_from("<iq", exit_.ctx, 8)[0] == 257 and struct.unpack_from("<q", exit_.ctx, 16)[0] == 5


def test_sys_exit_kprobe_and_raw_tracepoint(kernel) -> None:
    vm = recording(kernel)
    kprobe(kernel, "sys_exit", "exit")
    _, pfd = install_prog(kernel, RAW_TP, "raw")
    link = kernel.tracing.raw_tracepoint_open("sys_enter", kernel.fds.get(pfd))
    p = kernel.machine.process()
    p.syscall("close", 7, ret=-9)
    raw, ex = vm.runs
    regs_ptr, nr = struct.unpack_from("<QQ", raw.ctx)
    assert nr == 3 and regs(kernel.aspace.read(regs_ptr, 168))["di"] == 7
    assert regs(ex.ctx)["si"] == (-9 & M64)
    kernel.close(link)
    vm.runs.clear()
    p.syscall("close", 7)
    assert [r.prog for r in vm.runs] == ["exit"]
    with pytest.raises(OSError) as e:
        kernel.tracing.raw_tracepoint_open("no_such_tp", kernel.fds.get(pfd))
    assert e.value.errno == errno.ENOENT


def test_sched_tracepoints_follow_fork_exec_exit(kernel) -> None:
    vm = recording(kernel)
    for tp in ("sched_process_fork", "sched_process_exec", "sched_process_exit"):
        tracepoint(kernel, "sched", tp, tp)
    bash = kernel.machine.process(comm="bash")
    child_pid = bash.syscall("clone", 0x01200011, 0, 0, 0, 0)
    child = kernel.machine.tasks[child_pid]
    assert child.comm == "bash" and child.tgid == child_pid
    child.process.syscall("execve", "/usr/bin/ls", 0, 0, ret=0)
    assert child.comm == "ls"
    child.process.syscall("exit_group", 0)
    assert [r.prog for r in vm.runs] == ["sched_process_fork", "sched_process_exec", "sched_process_exit"]
    fork, exec_, exit_ = (r.ctx for r in vm.runs)
    loc, ppid, loc2, cpid = struct.unpack_from("<IiIi", fork, 8)
    assert (ppid, cpid) == (bash.pid, child_pid)
    assert fork[loc & 0xFFFF:(loc & 0xFFFF) + (loc >> 16)] == b"bash\0"
    loc, pid, old_pid = struct.unpack_from("<Iii", exec_, 8)
    assert exec_[loc & 0xFFFF:(loc & 0xFFFF) + (loc >> 16)] == b"/usr/bin/ls\0" and pid == child_pid
    assert exit_[8:10] == b"ls" and struct.unpack_from("<i", exit_, 24)[0] == child_pid
    assert child_pid not in kernel.machine.processes  # reaped


def test_sched_raw_tracepoints_get_task_pointers(kernel) -> None:
    vm = recording(kernel)
    for name in ("sched_process_fork", "sched_process_exit"):
        _, pfd = install_prog(kernel, RAW_TP, name)
        kernel.tracing.raw_tracepoint_open(name, kernel.fds.get(pfd))
    bash = kernel.machine.process(comm="bash")
    child_pid = bash.syscall("fork")
    child = kernel.machine.tasks[child_pid]
    child_addr = child.task_addr
    child.process.syscall("exit_group", 3)
    fork, exit_ = vm.runs
    assert struct.unpack_from("<QQ", fork.ctx) == (bash.leader.task_addr, child_addr)
    assert struct.unpack_from("<QQ", exit_.ctx) == (child_addr, 1)


def test_thread_clone_joins_the_process(kernel) -> None:
    p = kernel.machine.process(comm="python3")
    tid = p.syscall("clone", 0x3D0F00, 0, 0, 0, 0)  # CLONE_VM|CLONE_FS|...|CLONE_THREAD
    t = kernel.machine.tasks[tid]
    assert t.tgid == p.tgid and t.pid == tid and t in p.threads


def test_task_struct_fields_at_linux_offsets(kernel) -> None:
    from tinyaya.sim_kernel.machine import CRED, TASK_STRUCT

    p = kernel.machine.process(comm="nginx", uid=33, gid=34)
    t = p.leader
    read = kernel.aspace.read
    assert struct.unpack("<ii", read(t.task_addr + TASK_STRUCT["pid"], 8)) == (p.pid, p.pid)
    assert read(t.task_addr + TASK_STRUCT["comm"], 16).rstrip(b"\0") == b"nginx"
    cred = struct.unpack("<Q", read(t.task_addr + TASK_STRUCT["cred"], 8))[0]
    assert struct.unpack("<II", read(cred + CRED["uid"], 8)) == (33, 34)
    parent = struct.unpack("<Q", read(t.task_addr + TASK_STRUCT["real_parent"], 8))[0]
    assert struct.unpack("<i", read(parent + TASK_STRUCT["tgid"], 4))[0] == 1  # init
    assert p.syscall("getppid") == 1
    stack = struct.unpack("<Q", read(t.task_addr + TASK_STRUCT["stack"], 8))[0]
    assert t.regs_addr == stack + 16384 - 168  # task_pt_regs()


def test_default_task_outside_syscalls(kernel) -> None:
    t = kernel.machine.current_task(0)
    assert t.comm == "tinyaya" and t.uid == 0
    assert kernel.machine.current_task(1).comm == "tinyaya"


def test_runtime_fault_is_counted_and_logged(kernel) -> None:
    from tinyaya.sim_kernel.vm.fault import BpfFault

    vm = recording(kernel)
    vm.fail_with = BpfFault("boom", 3, "r0 = *(u64 *)(r1 + 0x0)", 0, "invalid read")
    kprobe(kernel, "sys_enter", "boom")
    kernel.machine.process(comm="sh").syscall("getpid")
    kernel.machine.process(comm="sh").syscall("getpid")
    (prog,) = [p for p in kernel.tracing.fault_counts]
    assert kernel.tracing.fault_counts[prog] == 2 and prog.fault_count == 2
    pipe = kernel.read_file("/sys/kernel/tracing/trace_pipe").decode().splitlines()
    assert len(pipe) == 2 and "bpf_fault: boom: pc 3" in pipe[0] and pipe[0].lstrip().startswith("sh-")


def test_perf_event_open_attr_checks(kernel) -> None:
    attr = PerfEventAttr()
    attr.type = 2
    attr.size = 32  # smaller than PERF_ATTR_SIZE_VER0
    attr.config = 443
    with pytest.raises(OSError) as e:
        kernel.perf_event_open(attr, -1, 0, -1, 0)
    assert e.value.errno == errno.E2BIG
    attr.size = 0  # 0 means VER0: accepted
    fd = kernel.perf_event_open(attr, -1, 0, -1, 0)
    kernel.close(fd)
    attr.config = 1  # no tracepoint with this id
    with pytest.raises(OSError) as e:
        kernel.perf_event_open(attr, -1, 0, -1, 0)
    assert e.value.errno == errno.EINVAL
    attr.config = 443
    with pytest.raises(OSError) as e:
        kernel.perf_event_open(attr, -1, -1, -1, 0)
    assert e.value.errno == errno.EINVAL
    attr.type = 99
    with pytest.raises(OSError) as e:
        kernel.perf_event_open(attr, -1, 0, -1, 0)
    assert e.value.errno == errno.ENOENT
    assert PT_REGS_OFFSET["si"] == 104


def _libc() -> tuple[str, int] | None:
    """The host's libc and the file offset of getppid, found independently of tinyaya (pyelftools)."""
    from elftools.elf.elffile import ELFFile

    for path in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"):
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                sym = elf.get_section_by_name(".dynsym").get_symbol_by_name("getppid")[0]
                vaddr = sym["st_value"]
                for seg in elf.iter_segments():
                    if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
                        return path, vaddr - seg["p_vaddr"] + seg["p_offset"]
        except (OSError, TypeError, AttributeError):
            continue
    return None


def test_uprobe_on_libc_wrapper_fires_around_the_syscall(kernel) -> None:
    found = _libc()
    if found is None:
        pytest.skip("no x86-64 glibc on this machine")
    path, off = found
    vm = recording(kernel)
    for name, ret in (("u", False), ("uret", True)):
        _, pfd = install_prog(kernel, KPROBE, name)
        efd = bpfsys.perf_event_open_probe(kernel, path, off, retprobe=ret, pmu="uprobe")
        bpfsys.perf_event_ioc_set_bpf(kernel, efd, pfd)
    kprobe(kernel, "sys_enter", "k")
    other, _ = install_prog(kernel, KPROBE, "only_b")
    efd = bpfsys.perf_event_open_probe(kernel, path, off, pmu="uprobe", pid=4242)  # a pid filter
    kernel.ioctl(efd, PERF_EVENT_IOC_SET_BPF, kernel.fds.install(other))
    a = kernel.machine.process(comm="a")
    a.syscall("getpid")
    a.syscall("getppid", ret=1)
    b = kernel.machine.process(comm="b", pid=4242)
    b.syscall("getppid", ret=-1)
    assert [(r.prog, r.pid) for r in vm.runs] == [
        ("k", a.pid), ("u", a.pid), ("k", a.pid), ("uret", a.pid),
        ("u", b.pid), ("only_b", b.pid), ("k", b.pid), ("uret", b.pid)]
    assert regs(vm.runs[3].ctx)["ax"] == 1 and regs(vm.runs[7].ctx)["ax"] == M64  # -1: glibc's errno convention
    assert regs(vm.runs[1].ctx)["cs"] == 0x33
    with pytest.raises(OSError) as e:
        bpfsys.perf_event_open_probe(kernel, "/no/such/binary", 0, pmu="uprobe")
    assert e.value.errno == errno.ENOENT
