"""The sched tracepoints a process's life fires: sched_process_fork, _exec and _exit.

Records as include/trace/events/sched.h lays them out (see their ``format``
files); strings are ``__data_loc`` (u32 ``len << 16 | offset``, the bytes after
the fixed fields). The raw tracepoints get the TP_PROTO arguments:
``(parent, child)``, ``(p, old_pid, bprm)`` and ``(p, group_dead)``.
Also fires the kprobes on ``do_exit`` for exit paths that reach it here.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..machine import Machine, Task

__all__ = ["fire_fork", "fire_exec", "fire_exit"]

_EXEC = struct.Struct("<HBBiIii")
_EXIT = struct.Struct("<HBBi16siiB")
_FORK = struct.Struct("<HBBiIiIi")
_RAW2 = struct.Struct("<QQ")
_RAW3 = struct.Struct("<QQQ")


def _loc(off: int, s: bytes) -> int:
    return ((len(s) + 1) << 16) | off


def fire_fork(m: Machine, parent: Task, child: Task) -> None:
    tr = m.tracing
    tp = tr.tracepoints_by_name["sched:sched_process_fork"]
    raw = tr.raw_tracepoints["sched_process_fork"]
    if not tp.progs and not raw:
        return
    cpu = parent.cpu
    m.current[cpu] = parent
    buf, addr = m.ctx_bufs[cpu], m.ctx_addrs[cpu]
    if tp.progs:
        pc, cc = parent.comm.encode()[:15], child.comm.encode()[:15]
        _FORK.pack_into(buf, 0, tp.id, 0, 0, parent.pid, _loc(24, pc), parent.pid, _loc(25 + len(pc), cc), child.pid)
        buf[24:24 + len(pc) + 1] = pc + b"\0"
        buf[25 + len(pc):26 + len(pc) + len(cc)] = cc + b"\0"
        tr.run_progs(tp.progs, addr, cpu)  # type: ignore[arg-type]
    if raw:
        _RAW2.pack_into(buf, 0, parent.task_addr, child.task_addr)
        tr.run_progs(raw, addr, cpu)
    m.current[cpu] = None


def fire_exec(m: Machine, task: Task, path: bytes) -> None:
    tr = m.tracing
    tp = tr.tracepoints_by_name["sched:sched_process_exec"]
    raw = tr.raw_tracepoints["sched_process_exec"]
    if not tp.progs and not raw:
        return
    cpu = task.cpu
    m.current[cpu] = task
    buf, addr = m.ctx_bufs[cpu], m.ctx_addrs[cpu]
    if tp.progs:
        p = path[:4000]
        _EXEC.pack_into(buf, 0, tp.id, 0, 0, task.pid, _loc(20, p), task.pid, task.pid)
        buf[20:21 + len(p)] = p + b"\0"
        tr.run_progs(tp.progs, addr, cpu)  # type: ignore[arg-type]
    if raw:
        _RAW3.pack_into(buf, 0, task.task_addr, task.pid, task.k_filename)
        tr.run_progs(raw, addr, cpu)
    m.current[cpu] = None


def fire_exit(m: Machine, task: Task, group_dead: bool) -> None:
    tr = m.tracing
    tp = tr.tracepoints_by_name["sched:sched_process_exit"]
    raw = tr.raw_tracepoints["sched_process_exit"]
    if not tp.progs and not raw:
        return
    cpu = task.cpu
    m.current[cpu] = task
    buf, addr = m.ctx_bufs[cpu], m.ctx_addrs[cpu]
    if tp.progs:
        _EXIT.pack_into(buf, 0, tp.id, 0, 0, task.pid, task.comm.encode()[:15], task.pid, 120, int(group_dead))
        tr.run_progs(tp.progs, addr, cpu)  # type: ignore[arg-type]
    if raw:
        _RAW2.pack_into(buf, 0, task.task_addr, int(group_dead))
        tr.run_progs(raw, addr, cpu)
    m.current[cpu] = None
