"""The x86-64 syscall table as objects: number, name, C arguments, tracepoint ids.

Built once from the generated ``syscall_table.SYSCALL_TABLE`` (numbers from
``<asm/unistd_64.h>``, arguments from the tracefs formats of
``syscalls/sys_enter_<name>``). ``kname`` is the name of the kernel's entry
point: ``__x64_sys_<kname>`` and ``syscalls:sys_enter_<kname>`` (``stat`` is
``newstat`` there, as in arch/x86/entry/syscalls/syscall_64.tbl).
"""
from __future__ import annotations

from dataclasses import dataclass

from .syscall_table import SYSCALL_TABLE, TRACEPOINT_IDS

__all__ = ["Syscall", "SYSCALLS", "BY_NAME", "BY_NR", "syscall_nr", "syscall_name", "NR_syscalls",
           "TRACEPOINT_IDS"]


@dataclass(frozen=True, slots=True)
class Syscall:
    nr: int
    name: str
    kname: str
    #: (C type, name) of each argument, or None if the kernel has no tracepoint for it
    args: tuple[tuple[str, str], ...] | None
    enter_id: int
    exit_id: int

    @property
    def nargs(self) -> int:
        return len(self.args) if self.args is not None else 6

    @property
    def entry_symbol(self) -> str:
        return f"__x64_sys_{self.kname}"


SYSCALLS: tuple[Syscall, ...] = tuple(Syscall(*row) for row in SYSCALL_TABLE)
BY_NR: dict[int, Syscall] = {s.nr: s for s in SYSCALLS}
BY_NAME: dict[str, Syscall] = {s.name: s for s in SYSCALLS}
# strace and the tracepoints sometimes use the kernel's name (newfstat, sendfile64)
for _s in SYSCALLS:
    BY_NAME.setdefault(_s.kname, _s)
NR_syscalls = max(BY_NR) + 1


def syscall_nr(name: str) -> int:
    """x86-64 number of a syscall by name; KeyError if there is none."""
    return BY_NAME[name].nr


def syscall_name(nr: int) -> str:
    """Name of a syscall number, or ``syscall_<nr>`` for an unknown one."""
    s = BY_NR.get(nr)
    return s.name if s is not None else f"syscall_{nr}"
