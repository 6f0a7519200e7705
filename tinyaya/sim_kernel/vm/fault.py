"""How a running program fails: ``BpfFault`` at the VM boundary, and the internal signals behind it.

A runtime fault never escapes the VM as a bare Python exception. Inside the
dispatch loop, instruction closures raise ``VmTrap`` (an explicit fault with a
message and address) or fail naturally (a memory access outside every region
raises AttributeError/IndexError/struct.error); the loop turns either into one
``BpfFault`` naming the program, the pc, the instruction text and the address.
"""
from __future__ import annotations


class BpfFault(Exception):
    """A runtime fault of an eBPF program: ``prog_name``, ``pc`` (slot index), ``insn_text``, ``addr``, ``message``."""

    def __init__(self, prog_name: str, pc: int, insn_text: str, addr: int | None, message: str) -> None:
        where = f" at {addr:#x}" if addr is not None else ""
        super().__init__(f"{prog_name or '<anon>'}: pc {pc}: {insn_text}: {message}{where}")
        self.prog_name = prog_name
        self.pc = pc
        self.insn_text = insn_text
        self.addr = addr
        self.message = message


class VmTrap(Exception):
    """Raised by an instruction or helper to fault the program with a message (and an address).
    ``pc`` names the faulting instruction when the closure that raised it spans several (fuse.py)."""

    def __init__(self, message: str, addr: int | None = None, pc: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.addr = addr
        self.pc = pc


class TailCall(Exception):  # noqa: N818 - a control-flow signal, not an error
    """bpf_tail_call succeeded: the loop continues in ``env.tail_target``."""


class SwitchCode(Exception):  # noqa: N818
    """A subprogram returned into a frame of another program (after a tail call from a subprogram)."""


class LdAbsExit(Exception):  # noqa: N818
    """LD_ABS/LD_IND out of bounds: the program exits with r0 = 0 (Linux's bpf_skb_load_helper path)."""
