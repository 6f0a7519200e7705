"""What a syscall walks through, as a plan of probe steps built once per attach/detach.

For syscall ``nr`` the machine runs, in Linux's order
(arch/x86/entry/common.c ``do_syscall_64``, kernel/entry/common.c):

entry
  1. kprobe ``sys_enter(struct pt_regs *regs, long id)`` (rdi = the task's user
     ``pt_regs``, rsi = id), the raw tracepoint ``sys_enter`` (ctx = u64 {regs, id}),
     ``raw_syscalls:sys_enter`` and ``syscalls:sys_enter_<name>`` (their records);
  2. kprobe ``dragonos_kernel::syscall::Syscall::handle`` (rsi = id), then Linux's dispatcher
     ``x64_sys_call(const struct pt_regs *regs, unsigned int nr)`` (rsi = nr);
  3. kprobe ``__x64_sys_<name>(const struct pt_regs *regs)``;
  4. kprobes on the deeper functions of its path (``do_sys_openat2``, ``vfs_read``…),
     outermost first, each with its own C arguments in rdi, rsi, rdx, rcx, r8, r9;
   (a uprobe on the libc function that wraps the syscall fires before all of these,
   a uretprobe after all of the exit events: see ``uprobes.py``)
exit
  5. kretprobes (rax = return value) innermost first, then ``__x64_sys_<name>`` and
     ``Syscall::handle``;
  6. ``syscalls:sys_exit_<name>``, ``raw_syscalls:sys_exit``, the raw tracepoint
     ``sys_exit`` and kprobe ``sys_exit(struct pt_regs *regs, long ret)``.

Only events with attached programs become steps, so a syscall nobody watches
costs a list lookup. A step packs its context into the CPU's preallocated
context region and runs the programs (no allocation per event).
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..vm.fault import BpfFault
from .kallsyms import DRAGONOS_SYSCALL_HANDLE
from .pt_regs import EFLAGS_IF, KERNEL_CS, KERNEL_SS, PT_REGS_STRUCT, USER_CS, USER_SS
from .syscalls import BY_NR, NR_syscalls
from .tracepoints import RAW_SYSCALLS_ENTER, RAW_SYSCALLS_EXIT, SYSCALL_EXIT

if TYPE_CHECKING:
    from ..machine import Machine, Task
    from .core import Attachment

__all__ = ["Step", "build_plans", "DEEP_PATHS", "M64"]

M64 = (1 << 64) - 1
AT_FDCWD = -100 & M64
#: step(task, cpu, nr, args (six u64), ret (signed))
Step = Callable[[Any, int, int, tuple[int, ...], int], None]
Regs = Callable[[Any, tuple[int, ...]], tuple[int, int, int, int, int, int]]
_RAW_TP_ARGS = struct.Struct("<QQ")
_U64 = struct.Struct("<Q")


def _same(ret: int) -> int:
    return ret


def _zero(ret: int) -> int:
    return 0


def task_regs_nr(task: Any, a: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
    """``sys_enter(struct pt_regs *regs, long id)``: rdi = the task's user ``pt_regs``, rsi = the number."""
    return task.regs_addr, task.cur_nr, 0, 0, 0, 0


def _regs(*idx: int) -> Regs:
    """Function arguments taken straight from syscall arguments ``idx`` (-1 → 0)."""
    def regs(task: Any, a: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
        v = [a[i] if i >= 0 else 0 for i in idx] + [0] * (6 - len(idx))
        return v[0], v[1], v[2], v[3], v[4], v[5]
    return regs


#: syscall name -> [(function, registers from (task, args), return value from the syscall's)], outermost first.
#: Kernel pointers (struct file *, loff_t *, struct filename *…) point into the task's scratch area.
DEEP_PATHS: dict[str, list[tuple[str, Regs, Callable[[int], int]]]] = {
    "read": [("ksys_read", _regs(0, 1, 2), _same),
             ("vfs_read", lambda t, a: (t.k_file, a[1], a[2], t.k_pos, 0, 0), _same)],
    "write": [("ksys_write", _regs(0, 1, 2), _same),
              ("vfs_write", lambda t, a: (t.k_file, a[1], a[2], t.k_pos, 0, 0), _same)],
    "pread64": [("vfs_read", lambda t, a: (t.k_file, a[1], a[2], t.k_pos, 0, 0), _same)],
    "pwrite64": [("vfs_write", lambda t, a: (t.k_file, a[1], a[2], t.k_pos, 0, 0), _same)],
    "open": [("do_sys_openat2", lambda t, a: (AT_FDCWD, a[0], t.k_how, 0, 0, 0), _same),
             ("do_filp_open", lambda t, a: (AT_FDCWD, t.k_filename, t.k_how, 0, 0, 0), _zero)],
    "openat": [("do_sys_openat2", lambda t, a: (a[0], a[1], t.k_how, 0, 0, 0), _same),
               ("do_filp_open", lambda t, a: (a[0], t.k_filename, t.k_how, 0, 0, 0), _zero),
               ("vfs_open", lambda t, a: (t.k_path, t.k_file, 0, 0, 0, 0), _zero)],
    "openat2": [("do_sys_openat2", _regs(0, 1, 2), _same)],
    "close": [("close_fd", _regs(0), _same)],
    "newfstatat": [("vfs_fstatat", lambda t, a: (a[0], a[1], t.k_kstat, a[3], 0, 0), _same)],
    "execve": [("do_execveat_common", lambda t, a: (AT_FDCWD, t.k_filename, 0, a[1], 0, a[2]), _same)],
    "execveat": [("do_execveat_common", lambda t, a: (a[0], t.k_filename, 0, a[2], 0, a[3]), _same)],
    "exit": [("do_exit", lambda t, a: (((a[0] & 0xFF) << 8), 0, 0, 0, 0, 0), _zero)],
    "exit_group": [("do_group_exit", lambda t, a: (((a[0] & 0xFF) << 8), 0, 0, 0, 0, 0), _zero),
                   ("do_exit", lambda t, a: (((a[0] & 0xFF) << 8), 0, 0, 0, 0, 0), _zero)],
    "clone": [("kernel_clone", lambda t, a: (t.k_clone_args, 0, 0, 0, 0, 0), _same),
              ("wake_up_new_task", lambda t, a: (t.k_child, 0, 0, 0, 0, 0), _zero)],
    "clone3": [("kernel_clone", lambda t, a: (t.k_clone_args, 0, 0, 0, 0, 0), _same),
               ("wake_up_new_task", lambda t, a: (t.k_child, 0, 0, 0, 0, 0), _zero)],
    "fork": [("kernel_clone", lambda t, a: (t.k_clone_args, 0, 0, 0, 0, 0), _same),
             ("wake_up_new_task", lambda t, a: (t.k_child, 0, 0, 0, 0, 0), _zero)],
    "vfork": [("kernel_clone", lambda t, a: (t.k_clone_args, 0, 0, 0, 0, 0), _same),
              ("wake_up_new_task", lambda t, a: (t.k_child, 0, 0, 0, 0, 0), _zero)],
    "connect": [("__sys_connect", _regs(0, 1, 2), _same),
                ("tcp_v4_connect", lambda t, a: (t.k_sock, a[1], a[2], 0, 0, 0), _same),
                ("tcp_connect", lambda t, a: (t.k_sock, 0, 0, 0, 0, 0), _zero)],
    "sendto": [("__sys_sendto", _regs(0, 1, 2, 3, 4, 5), _same)],
    "recvfrom": [("__sys_recvfrom", _regs(0, 1, 2, 3, 4, 5), _same)],
    "socket": [("__sys_socket", _regs(0, 1, 2), _same)],
    "accept": [("__sys_accept4", _regs(0, 1, 2, -1), _same)],
    "accept4": [("__sys_accept4", _regs(0, 1, 2, 3), _same)],
    "futex": [("do_futex", lambda t, a: (a[0], a[1], a[2], t.k_timeout if a[3] else 0, a[4], a[5]), _same)],
    "epoll_wait": [("do_epoll_wait", lambda t, a: (a[0], a[1], a[2], t.k_timeout if a[3] != M64 else 0, 0, 0),
                    _same)],
    "epoll_pwait": [("do_epoll_wait", lambda t, a: (a[0], a[1], a[2], t.k_timeout, 0, 0), _same)],
    "mmap": [("ksys_mmap_pgoff", lambda t, a: (a[0], a[1], a[2], a[3], a[4], a[5] >> 12), _same)],
    "nanosleep": [("hrtimer_nanosleep", lambda t, a: (1_000_000, 1, 1, 0, 0, 0), _same)],
    "clock_nanosleep": [("hrtimer_nanosleep", lambda t, a: (1_000_000, a[1], a[0], 0, 0, 0), _same)],
}


def _kprobe_step(m: Machine, progs: list[Attachment], ip: int, regs: Regs, ret_fn: Callable[[int], int] | None,
                 ) -> Step:
    pack = PT_REGS_STRUCT.pack_into
    bufs = m.ctx_bufs
    addrs = m.ctx_addrs
    ips = m.current_ips
    run = m.tracing.run_progs
    ip_offset = 8 * 16
    # probes at function+offset see their own ip: then each program runs with its own
    ip = progs[0][2] if progs else ip
    one_ip = all(a[2] == ip for a in progs)
    # the common case, one program: call the VM directly (the list cannot change without a new plan)
    tr = m.tracing
    vm_run = m.kernel.prog_runner()
    cookies = tr.cookies
    single, cookie = (progs[0][0], progs[0][1]) if len(progs) == 1 else (None, 0)
    if single is not None and regs is task_regs_nr and ret_fn is None:
        # kprobe sys_enter/sys_exit with one program: the event path's hottest step, its registers inlined
        def step_regs_nr(task: Task, cpu: int, nr: int, args: tuple[int, ...], ret: int) -> None:
            sp = task.kstack_sp
            pack(bufs[cpu], 0, 0, 0, 0, 0, sp + 0x40, 0, 0, 0, 0, 0, 0, 0, 0, task.cur_nr, task.regs_addr, nr, ip,
                 KERNEL_CS, EFLAGS_IF, sp, KERNEL_SS)
            ips[cpu] = ip
            cookies[cpu] = cookie
            try:
                vm_run(single, addrs[cpu], cpu)
            except BpfFault as e:
                tr.record_fault(single, cpu, e)
        return step_regs_nr

    def step(task: Task, cpu: int, nr: int, args: tuple[int, ...], ret: int) -> None:
        di, si, dx, cx, r8, r9 = regs(task, args)
        ax = (ret_fn(ret) & M64) if ret_fn is not None else 0
        sp = task.kstack_sp
        buf = bufs[cpu]
        pack(buf, 0, 0, 0, 0, 0, sp + 0x40, 0, 0, 0, r9, r8, ax, cx, dx, si, di, nr, ip, KERNEL_CS,
             EFLAGS_IF, sp, KERNEL_SS)
        ips[cpu] = ip
        if single is not None:
            cookies[cpu] = cookie
            try:
                vm_run(single, addrs[cpu], cpu)
            except BpfFault as e:
                tr.record_fault(single, cpu, e)
            return
        if one_ip:
            run(progs, addrs[cpu], cpu)
            return
        for a in progs:
            _U64.pack_into(buf, ip_offset, a[2])
            ips[cpu] = a[2]
            run([a], addrs[cpu], cpu)
    return step


def _uprobe_step(m: Machine, progs: list[tuple[Any, int, int, int]], ip: int, retprobe: bool) -> Step:
    """A uprobe on the libc wrapper of the syscall: user registers, the pid filter of each perf event."""
    pack = PT_REGS_STRUCT.pack_into
    bufs = m.ctx_bufs
    addrs = m.ctx_addrs
    ips = m.current_ips
    tr = m.tracing
    vm_run = m.kernel.prog_runner()
    cookies = tr.cookies

    def step(task: Task, cpu: int, nr: int, a: tuple[int, ...], ret: int) -> None:
        ax = ((ret if ret >= 0 else -1) & M64) if retprobe else 0
        pack(bufs[cpu], 0, 0, 0, 0, 0, 0, 0, EFLAGS_IF, 0, a[5], a[4], ax, a[3], a[2], a[1], a[0], M64, ip,
             USER_CS, EFLAGS_IF, task.process.user_sp, USER_SS)
        ips[cpu] = ip
        for prog, cookie, _ip, pid in progs:
            if pid >= 0 and pid != task.tgid and pid != task.pid:
                continue
            cookies[cpu] = cookie
            try:
                vm_run(prog, addrs[cpu], cpu)
            except BpfFault as e:
                tr.record_fault(prog, cpu, e)
    return step


def _record_step(m: Machine, progs: list[Attachment], fill: Callable[[Any, int, Task, int, tuple[int, ...], int],
                                                                      None]) -> Step:
    bufs = m.ctx_bufs
    addrs = m.ctx_addrs
    run = m.tracing.run_progs

    def step(task: Task, cpu: int, nr: int, args: tuple[int, ...], ret: int) -> None:
        fill(bufs[cpu], cpu, task, nr, args, ret)
        run(progs, addrs[cpu], cpu)
    return step


def build_plans(m: Machine) -> tuple[list[list[Step] | None], list[list[Step] | None]]:
    """Entry and exit steps per syscall number (index NR_syscalls: an unknown number)."""
    tr = m.tracing
    kp = tr.kprobes
    tps = tr.tracepoints_by_name
    raw = tr.raw_tracepoints
    enter_common: list[Step] = []
    exit_common: list[Step] = []

    def site(name: str) -> tuple[list[Attachment], list[Attachment], int]:
        s = kp.get(name)
        if s is None:
            return [], [], 0
        return s.entry, s.ret, s.fn.addr

    e, r, addr = site("sys_enter")
    if e:
        enter_common.append(_kprobe_step(m, e, addr, task_regs_nr, None))
    if raw["sys_enter"]:
        def fill_raw_enter(buf: Any, cpu: int, task: Task, nr: int, a: tuple[int, ...], ret: int) -> None:
            _RAW_TP_ARGS.pack_into(buf, 0, task.regs_addr, nr & M64)
        enter_common.append(_record_step(m, raw["sys_enter"], fill_raw_enter))
    tp = tps["raw_syscalls:sys_enter"]
    if tp.progs:
        tp_id = tp.id

        def fill_enter(buf: Any, cpu: int, task: Task, nr: int, a: tuple[int, ...], ret: int) -> None:
            RAW_SYSCALLS_ENTER.pack_into(buf, 0, tp_id, 0, 0, task.pid, nr, a[0], a[1], a[2], a[3], a[4], a[5])
        enter_common.append(_record_step(m, tp.progs, fill_enter))  # type: ignore[arg-type]
    if r:
        enter_common.append(_kprobe_step(m, r, addr, task_regs_nr, _zero))

    tp = tps["raw_syscalls:sys_exit"]
    if tp.progs:
        tp_x = tp.id

        def fill_exit(buf: Any, cpu: int, task: Task, nr: int, a: tuple[int, ...], ret: int) -> None:
            RAW_SYSCALLS_EXIT.pack_into(buf, 0, tp_x, 0, 0, task.pid, nr, ret)
        exit_common.append(_record_step(m, tp.progs, fill_exit))  # type: ignore[arg-type]
    if raw["sys_exit"]:
        def fill_raw_exit(buf: Any, cpu: int, task: Task, nr: int, a: tuple[int, ...], ret: int) -> None:
            _RAW_TP_ARGS.pack_into(buf, 0, task.regs_addr, ret & M64)
        exit_common.append(_record_step(m, raw["sys_exit"], fill_raw_exit))
    e, r, addr = site("sys_exit")
    if e:
        exit_common.append(_kprobe_step(m, e, addr, lambda t, a: (t.regs_addr, t.cur_ret & M64, 0, 0, 0, 0), None))
    if r:
        exit_common.append(_kprobe_step(m, r, addr, lambda t, a: (t.regs_addr, t.cur_ret & M64, 0, 0, 0, 0), _zero))
    d_e, d_r, d_addr = site(DRAGONOS_SYSCALL_HANDLE)
    c_e, c_r, c_addr = site("x64_sys_call")

    def dispatch_regs(t: Task, a: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
        return t.regs_addr, t.cur_nr, 0, 0, 0, 0

    def dragonos_regs(t: Task, a: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
        return t.regs_addr, t.cur_nr, t.regs_addr + 0x70, 6, 0, 0

    u_enter: dict[int, list[Step]] = {}
    u_exit: dict[int, list[Step]] = {}
    for us in tr.uprobes.values():
        if us.nr is None:
            continue
        if us.entry:
            u_enter.setdefault(us.nr, []).append(_uprobe_step(m, us.entry, us.ip, False))
        if us.ret:
            u_exit.setdefault(us.nr, []).append(_uprobe_step(m, us.ret, us.ip, True))

    enters: list[list[Step] | None] = []
    exits: list[list[Step] | None] = []
    for nr in range(NR_syscalls + 1):
        en = u_enter.get(nr, []) + enter_common
        ex: list[Step] = []
        sc = BY_NR.get(nr)
        if sc is not None and sc.args is not None:
            tpe = tps.get(f"syscalls:sys_enter_{sc.kname}")
            if tpe is not None and tpe.progs:
                hdr = struct.Struct(f"<HBBii4x{len(sc.args)}Q")
                n_args = len(sc.args)
                tpe_id = tpe.id

                def fill_sc(buf: Any, cpu: int, task: Task, nr: int, a: tuple[int, ...], ret: int,
                            hdr: struct.Struct = hdr, n: int = n_args, tid: int = tpe_id) -> None:
                    hdr.pack_into(buf, 0, tid, 0, 0, task.pid, nr, *a[:n])
                en.append(_record_step(m, tpe.progs, fill_sc))  # type: ignore[arg-type]
        if d_e:
            en.append(_kprobe_step(m, d_e, d_addr, dragonos_regs, None))
        if c_e:
            en.append(_kprobe_step(m, c_e, c_addr, dispatch_regs, None))
        if sc is not None:
            x_e, x_r, x_addr = site(sc.entry_symbol)
            if x_e:
                en.append(_kprobe_step(m, x_e, x_addr, lambda t, a: (t.regs_addr, 0, 0, 0, 0, 0), None))
            deep_exit: list[Step] = []
            for fname, regs, ret_fn in DEEP_PATHS.get(sc.name, ()):
                f_e, f_r, f_addr = site(fname)
                if f_e:
                    en.append(_kprobe_step(m, f_e, f_addr, regs, None))
                if f_r:
                    deep_exit.insert(0, _kprobe_step(m, f_r, f_addr, regs, ret_fn))
            ex.extend(deep_exit)
            if x_r:
                ex.append(_kprobe_step(m, x_r, x_addr, lambda t, a: (t.regs_addr, 0, 0, 0, 0, 0), _same))
        if c_r:
            ex.append(_kprobe_step(m, c_r, c_addr, dispatch_regs, _same))
        if d_r:
            ex.append(_kprobe_step(m, d_r, d_addr, dragonos_regs, _same))
        if sc is not None and sc.args is not None:
            tpx = tps.get(f"syscalls:sys_exit_{sc.kname}")
            if tpx is not None and tpx.progs:
                tpx_id = tpx.id

                def fill_sx(buf: Any, cpu: int, task: Task, nr: int, a: tuple[int, ...], ret: int,
                            tid: int = tpx_id) -> None:
                    SYSCALL_EXIT.pack_into(buf, 0, tid, 0, 0, task.pid, nr, ret)
                ex.append(_record_step(m, tpx.progs, fill_sx))  # type: ignore[arg-type]
        ex.extend(exit_common)
        ex.extend(u_exit.get(nr, ()))
        enters.append(en or None)
        exits.append(ex or None)
    return enters, exits
