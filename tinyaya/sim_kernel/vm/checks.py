"""Structural checks the interpreter relies on when a program did not come through the verifier.

``reserved_fields(insns)`` reports the first instruction whose unused fields are not zero, in
the verifier's words (``BPF_ALU uses reserved fields``...), following the checks of
``check_alu_op``, ``do_check`` and ``resolve_pseudo_ldimm64`` in kernel/bpf/verifier.c. The
conformance plugin applies it (the suite's ``negative/unused-*`` programs test it); programs
loaded through BPF_PROG_LOAD get the same checks from the verifier. One deliberate difference:
``callx`` (BPF_CALL | BPF_X), which Linux does not accept, is allowed, as uBPF and the suite do.
"""
from __future__ import annotations

from ...isa.insn import Insn
from ...isa.opcodes import (
    BPF_ALU,
    BPF_ALU64,
    BPF_CALL,
    BPF_DIV,
    BPF_END,
    BPF_EXIT,
    BPF_JA,
    BPF_JCOND,
    BPF_JMP,
    BPF_JMP32,
    BPF_LD,
    BPF_LDX,
    BPF_MEM,
    BPF_MEMSX,
    BPF_MOD,
    BPF_MOV,
    BPF_NEG,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_ST,
    BPF_STX,
    BPF_X,
    LD_IMM64,
)


def _alu(ins: Insn) -> bool:
    op = ins.code & 0xF0
    x = ins.code & BPF_X
    alu64 = ins.code & 0x07 == BPF_ALU64
    if op == BPF_NEG:
        return bool(x or ins.src or ins.off or ins.imm)
    if op == BPF_END:
        return bool(ins.src or ins.off or ins.imm not in (16, 32, 64) or (alu64 and x))
    if op == BPF_MOV:
        if not x:
            return bool(ins.src or ins.off)
        allowed = (0, 8, 16, 32) if alu64 else (0, 8, 16)
        return bool(ins.off not in allowed or ins.imm)
    bad_off = ins.off not in (0, 1) or (ins.off == 1 and op not in (BPF_DIV, BPF_MOD))
    return bool((ins.imm if x else ins.src) or bad_off)


def _jmp(ins: Insn) -> bool:
    op = ins.code & 0xF0
    x = ins.code & BPF_X
    j32 = ins.code & 0x07 == BPF_JMP32
    if op == BPF_JA:
        return bool(x or ins.src or ins.dst or (ins.imm if not j32 else ins.off))
    if op == BPF_EXIT:
        return bool(x or ins.imm or ins.src or ins.dst or j32)
    if op == BPF_CALL:
        if x:  # callx
            return bool(ins.off or ins.imm or j32)
        return bool((ins.src != BPF_PSEUDO_KFUNC_CALL and ins.off)
                    or ins.src not in (0, BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL) or ins.dst or j32)
    if op == BPF_JCOND:
        return bool(x or ins.src or ins.dst or ins.imm or j32)
    return bool(ins.imm if x else ins.src)


def reserved_fields(insns: list[Insn]) -> str | None:
    """The verifier message for the first instruction with non-zero reserved fields, or None."""
    pc = 0
    while pc < len(insns):
        ins = insns[pc]
        cls = ins.code & 0x07
        bad = False
        name = ""
        if cls in (BPF_ALU, BPF_ALU64):
            bad, name = _alu(ins), "BPF_ALU" if cls == BPF_ALU else "BPF_ALU64"
        elif cls in (BPF_JMP, BPF_JMP32):
            bad, name = _jmp(ins), "BPF_JMP/JMP32"
        elif cls == BPF_LDX:
            bad = ins.code & 0xE0 not in (BPF_MEM, BPF_MEMSX) or ins.imm != 0
            name = "BPF_LDX"
        elif cls == BPF_ST:
            bad, name = ins.src != 0, "BPF_ST"
        elif cls == BPF_STX:
            bad, name = ins.code & 0xE0 == BPF_MEM and ins.imm != 0, "BPF_STX"
        elif cls == BPF_LD and ins.code == LD_IMM64:
            if pc + 1 < len(insns):
                hi = insns[pc + 1]
                if hi.code or hi.dst or hi.src or hi.off:
                    return f"invalid bpf_ld_imm64 insn (pc {pc})"
            pc += 2
            continue
        if bad:
            return f"{name} uses reserved fields (pc {pc})"
        pc += 1
    return None
