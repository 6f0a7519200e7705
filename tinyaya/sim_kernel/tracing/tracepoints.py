"""Tracepoints of the simulated kernel: their ids, tracefs ``format`` files and context layouts.

A tracepoint program's context is the raw trace record (include/linux/trace_events.h
``struct trace_entry``, then the event's fields): 8 bytes of common fields
(``common_type`` u16 = the event id, ``common_flags`` u8, ``common_preempt_count``
u8, ``common_pid`` s32), then the fields at the offsets the ``format`` file
names. The syscall events follow kernel/trace/trace_syscalls.c
(``struct syscall_trace_enter``: ``int nr`` at 8, ``unsigned long args[]`` from
16; ``struct syscall_trace_exit``: ``long ret`` at 16); raw_syscalls and sched
follow include/trace/events/{syscalls,sched}.h. Variable-length strings are
``__data_loc``: a u32 of ``(length << 16) | offset`` with the bytes after the
fixed fields.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .syscalls import SYSCALLS, TRACEPOINT_IDS, Syscall

__all__ = ["Field", "Tracepoint", "build_tracepoints", "COMMON_FIELDS", "RAW_TP_ARGS",
           "RAW_SYSCALLS_ENTER", "RAW_SYSCALLS_EXIT", "SYSCALL_ENTER_HDR", "SYSCALL_EXIT"]


@dataclass(frozen=True, slots=True)
class Field:
    decl: str  # "long id", "unsigned long args[6]", "__data_loc char[] filename"
    offset: int
    size: int
    signed: bool


COMMON_FIELDS = (
    Field("unsigned short common_type", 0, 2, False),
    Field("unsigned char common_flags", 2, 1, False),
    Field("unsigned char common_preempt_count", 3, 1, False),
    Field("int common_pid", 4, 4, True),
)

#: struct trace_entry + the raw_syscalls records (include/trace/events/syscalls.h)
RAW_SYSCALLS_ENTER = struct.Struct("<HBBiq6Q")
RAW_SYSCALLS_EXIT = struct.Struct("<HBBiqq")
#: struct syscall_trace_enter without its args (which follow at 16) and struct syscall_trace_exit
SYSCALL_ENTER_HDR = struct.Struct("<HBBii4x")
SYSCALL_EXIT = struct.Struct("<HBBii4xq")

#: TP_PROTO arguments of each raw tracepoint: a raw_tracepoint program's ctx is ``u64 args[]`` of these
RAW_TP_ARGS: dict[str, tuple[str, ...]] = {
    "sys_enter": ("struct pt_regs *regs", "long id"),
    "sys_exit": ("struct pt_regs *regs", "long ret"),
    "sched_process_exec": ("struct task_struct *p", "pid_t old_pid", "struct linux_binprm *bprm"),
    "sched_process_exit": ("struct task_struct *p", "bool group_dead"),
    "sched_process_fork": ("struct task_struct *parent", "struct task_struct *child"),
}


@dataclass(eq=False)
class Tracepoint:
    """One trace event (``events/<category>/<name>``)."""

    category: str
    name: str
    id: int
    fields: tuple[Field, ...]
    print_fmt: str
    #: the syscall of a ``syscalls:sys_{enter,exit}_<name>`` event
    syscall: Syscall | None = None
    #: (prog, cookie) of the programs attached through perf events, in attach order
    progs: list[tuple[object, int]] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.category}:{self.name}"

    @property
    def size(self) -> int:
        """Bytes of the fixed record (what ``trace_event_get_offsets`` bounds a program's ctx reads by)."""
        last = max(self.fields, key=lambda f: f.offset) if self.fields else COMMON_FIELDS[-1]
        return last.offset + last.size

    def format_text(self) -> str:
        """The tracefs ``format`` file, as kernel/trace/trace_events.c ``f_show`` writes it."""
        lines = [f"name: {self.name}", f"ID: {self.id}", "format:"]
        for f in COMMON_FIELDS:
            lines.append(f"\tfield:{f.decl};\toffset:{f.offset};\tsize:{f.size};\tsigned:{int(f.signed)};")
        lines.append("")
        for f in self.fields:
            lines.append(f"\tfield:{f.decl};\toffset:{f.offset};\tsize:{f.size};\tsigned:{int(f.signed)};")
        lines.append("")
        lines.append(f"print fmt: {self.print_fmt}")
        return "\n".join(lines) + "\n"


def _decl(ctype: str, name: str) -> str:
    """As the syscall format files print a field: ``const char * filename`` (type, space, name)."""
    return f"{ctype} {name}"


def _syscall_events(sc: Syscall) -> tuple[Tracepoint, Tracepoint]:
    assert sc.args is not None
    fields = [Field("int __syscall_nr", 8, 4, True)]
    for i, (ctype, name) in enumerate(sc.args):
        fields.append(Field(_decl(ctype, name), 16 + 8 * i, 8, False))
    if sc.args:
        fmt = '"' + ", ".join(f"{n}: 0x%08lx" for _, n in sc.args) + '", ' + ", ".join(
            f"((unsigned long)(REC->{n}))" for _, n in sc.args)
    else:
        fmt = '""'
    enter = Tracepoint("syscalls", f"sys_enter_{sc.kname}", sc.enter_id, tuple(fields), fmt, sc)
    exit_fields = (Field("int __syscall_nr", 8, 4, True), Field("long ret", 16, 8, True))
    exit_ = Tracepoint("syscalls", f"sys_exit_{sc.kname}", sc.exit_id, exit_fields, '"0x%lx", REC->ret', sc)
    return enter, exit_


def build_tracepoints() -> list[Tracepoint]:
    """Every trace event of the simulated kernel, with Linux 6.18's ids."""
    tps = [
        Tracepoint("raw_syscalls", "sys_enter", TRACEPOINT_IDS["raw_syscalls:sys_enter"],
                   (Field("long id", 8, 8, True), Field("unsigned long args[6]", 16, 48, False)),
                   '"NR %ld (%lx, %lx, %lx, %lx, %lx, %lx)", REC->id, REC->args[0], REC->args[1], '
                   'REC->args[2], REC->args[3], REC->args[4], REC->args[5]'),
        Tracepoint("raw_syscalls", "sys_exit", TRACEPOINT_IDS["raw_syscalls:sys_exit"],
                   (Field("long id", 8, 8, True), Field("long ret", 16, 8, True)),
                   '"NR %ld = %ld", REC->id, REC->ret'),
        Tracepoint("sched", "sched_process_exec", TRACEPOINT_IDS["sched:sched_process_exec"],
                   (Field("__data_loc char[] filename", 8, 4, False), Field("pid_t pid", 12, 4, True),
                    Field("pid_t old_pid", 16, 4, True)),
                   '"filename=%s pid=%d old_pid=%d", __get_str(filename), REC->pid, REC->old_pid'),
        Tracepoint("sched", "sched_process_exit", TRACEPOINT_IDS["sched:sched_process_exit"],
                   (Field("char comm[16]", 8, 16, False), Field("pid_t pid", 24, 4, True),
                    Field("int prio", 28, 4, True), Field("bool group_dead", 32, 1, False)),
                   '"comm=%s pid=%d prio=%d group_dead=%s", REC->comm, REC->pid, REC->prio, '
                   'REC->group_dead ? "true" : "false"'),
        Tracepoint("sched", "sched_process_fork", TRACEPOINT_IDS["sched:sched_process_fork"],
                   (Field("__data_loc char[] parent_comm", 8, 4, False), Field("pid_t parent_pid", 12, 4, True),
                    Field("__data_loc char[] child_comm", 16, 4, False), Field("pid_t child_pid", 20, 4, True)),
                   '"comm=%s pid=%d child_comm=%s child_pid=%d", __get_str(parent_comm), REC->parent_pid, '
                   '__get_str(child_comm), REC->child_pid'),
    ]
    seen: set[str] = set()
    for sc in SYSCALLS:
        if sc.args is None or sc.kname in seen:
            continue
        seen.add(sc.kname)
        tps.extend(_syscall_events(sc))
    return tps
