"""x86-64 ``struct pt_regs`` (arch/x86/include/asm/ptrace.h), 21 × 8 = 168 bytes.

A kprobe program's context is a ``struct pt_regs``: the function's arguments
in rdi, rsi, rdx, rcx, r8, r9 (the System V calling convention), its return
value in rax for a kretprobe. A syscall's own user registers (saved on entry
at the top of the task's kernel stack) hold the arguments in rdi, rsi, rdx,
r10, r8, r9 and the number in orig_ax (arch/x86/entry/entry_64.S).
"""
from __future__ import annotations

import struct

__all__ = ["PT_REGS_FIELDS", "PT_REGS_SIZE", "PT_REGS_OFFSET", "PT_REGS_STRUCT", "CALL_ARG_REGS",
           "SYSCALL_ARG_REGS", "USER_CS", "USER_SS", "KERNEL_CS", "KERNEL_SS", "EFLAGS_IF"]

#: field order of struct pt_regs on x86-64
PT_REGS_FIELDS: tuple[str, ...] = (
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8",
    "ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss",
)
PT_REGS_SIZE = 8 * len(PT_REGS_FIELDS)
PT_REGS_OFFSET: dict[str, int] = {name: 8 * i for i, name in enumerate(PT_REGS_FIELDS)}
#: the whole struct as one pack: ``PT_REGS_STRUCT.pack_into(buf, off, *values)`` (21 unsigned longs)
PT_REGS_STRUCT = struct.Struct("<21Q")

#: argument registers of a function call (System V AMD64 ABI)
CALL_ARG_REGS = ("di", "si", "dx", "cx", "r8", "r9")
#: argument registers of a syscall (r10 replaces rcx, which `syscall` clobbers)
SYSCALL_ARG_REGS = ("di", "si", "dx", "r10", "r8", "r9")

#: segment selectors and flags a real machine shows (arch/x86/include/asm/segment.h)
USER_CS = 0x33
USER_SS = 0x2B
KERNEL_CS = 0x10
KERNEL_SS = 0x18
EFLAGS_IF = 0x246

assert PT_REGS_SIZE == 168 and PT_REGS_OFFSET["si"] == 104 and PT_REGS_OFFSET["di"] == 112
