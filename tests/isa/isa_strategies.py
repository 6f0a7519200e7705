"""Hypothesis strategies for canonical, valid eBPF instructions (unused fields zero, RFC 9669 / Linux 6.x).

``valid_insns()`` draws one instruction as a list of slots (two for ld_imm64). Other layers may
reuse it (``from isa_strategies import valid_insns`` with ``tests/isa`` on sys.path).
"""
from __future__ import annotations

from hypothesis import strategies as st

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op

REG = st.integers(0, 10)
IMM = st.integers(-(1 << 31), (1 << 31) - 1)
OFF = st.integers(-(1 << 15), (1 << 15) - 1)
SIZES = st.sampled_from([op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW])
_BINARY_ALU = [o for o in op.ALU_OP_NAMES if o not in (op.BPF_NEG, op.BPF_MOV)]


@st.composite
def _alu(draw: st.DrawFn) -> list[Insn]:
    cls = draw(st.sampled_from([op.BPF_ALU, op.BPF_ALU64]))
    dst = draw(REG)
    kind = draw(st.sampled_from(["binary", "neg", "mov", "movsx", "end", "addr_space_cast"]))
    if kind == "neg":
        return [Insn(cls | op.BPF_NEG, dst)]
    if kind == "end":
        imm = draw(st.sampled_from(op.END_WIDTHS))
        src_bit = op.BPF_K if cls == op.BPF_ALU64 else draw(st.sampled_from([op.BPF_TO_LE, op.BPF_TO_BE]))
        return [Insn(cls | op.BPF_END | src_bit, dst, 0, 0, imm)]
    if kind == "movsx":
        return [Insn(cls | op.BPF_MOV | op.BPF_X, dst, draw(REG), draw(st.sampled_from(op.MOVSX_OFFS[cls])))]
    if kind == "addr_space_cast":
        return [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, dst, draw(REG), op.BPF_ADDR_SPACE_CAST_OFF, draw(IMM))]
    o = op.BPF_MOV if kind == "mov" else draw(st.sampled_from(_BINARY_ALU))
    off = draw(st.sampled_from([0, op.SIGNED_ALU_OFF])) if o in (op.BPF_DIV, op.BPF_MOD) else 0
    if draw(st.booleans()):
        return [Insn(cls | o | op.BPF_X, dst, draw(REG), off)]
    return [Insn(cls | o | op.BPF_K, dst, 0, off, draw(IMM))]


@st.composite
def _jmp(draw: st.DrawFn) -> list[Insn]:
    kind = draw(st.sampled_from(["cond", "ja", "gotol", "call", "callx", "exit", "may_goto"]))
    if kind == "ja":
        return [Insn(op.BPF_JMP | op.BPF_JA, 0, 0, draw(OFF))]
    if kind == "gotol":
        return [Insn(op.BPF_JMP32 | op.BPF_JA, 0, 0, 0, draw(IMM))]
    if kind == "call":
        src = draw(st.sampled_from([0, op.BPF_PSEUDO_CALL, op.BPF_PSEUDO_KFUNC_CALL]))
        return [Insn(op.BPF_JMP | op.BPF_CALL, 0, src, 0, draw(IMM))]
    if kind == "callx":
        return [Insn(op.BPF_JMP | op.BPF_CALL | op.BPF_X, draw(REG))]
    if kind == "exit":
        return [Insn(op.BPF_JMP | op.BPF_EXIT)]
    if kind == "may_goto":
        return [Insn(op.BPF_JMP | op.BPF_JCOND, 0, 0, draw(OFF))]
    cls = draw(st.sampled_from([op.BPF_JMP, op.BPF_JMP32]))
    o = draw(st.sampled_from(sorted(op.JMP_COND_NAMES)))
    if draw(st.booleans()):
        return [Insn(cls | o | op.BPF_X, draw(REG), draw(REG), draw(OFF))]
    return [Insn(cls | o | op.BPF_K, draw(REG), 0, draw(OFF), draw(IMM))]


@st.composite
def _mem(draw: st.DrawFn) -> list[Insn]:
    kind = draw(st.sampled_from(["ld_imm64", "ld_abs", "ld_ind", "ldx", "ldsx", "st", "stx", "atomic"]))
    size = draw(SIZES)
    if kind == "ld_imm64":
        src = draw(st.integers(0, 6))
        return [Insn(op.LD_IMM64, draw(REG), src, 0, draw(IMM)), Insn(0, 0, 0, 0, draw(IMM))]
    small = draw(st.sampled_from([op.BPF_B, op.BPF_H, op.BPF_W]))
    if kind == "ld_abs":
        return [Insn(op.BPF_LD | op.BPF_ABS | small, 0, 0, 0, draw(IMM))]
    if kind == "ld_ind":
        return [Insn(op.BPF_LD | op.BPF_IND | small, 0, draw(REG), 0, draw(IMM))]
    if kind == "ldx":
        return [Insn(op.BPF_LDX | op.BPF_MEM | size, draw(REG), draw(REG), draw(OFF))]
    if kind == "ldsx":
        return [Insn(op.BPF_LDX | op.BPF_MEMSX | small, draw(REG), draw(REG), draw(OFF))]
    if kind == "st":
        return [Insn(op.BPF_ST | op.BPF_MEM | size, draw(REG), 0, draw(OFF), draw(IMM))]
    if kind == "stx":
        return [Insn(op.BPF_STX | op.BPF_MEM | size, draw(REG), draw(REG), draw(OFF))]
    width = draw(st.sampled_from([op.BPF_W, op.BPF_DW]))
    imm = draw(st.sampled_from(sorted(op.ATOMIC_IMMS)))
    return [Insn(op.BPF_STX | op.BPF_ATOMIC | width, draw(REG), draw(REG), draw(OFF), imm)]


def valid_insns() -> st.SearchStrategy[list[Insn]]:
    """One valid instruction, as its slots."""
    return st.one_of(_alu(), _jmp(), _mem())


def valid_programs(max_size: int = 20) -> st.SearchStrategy[list[Insn]]:
    """A list of valid instructions (jump targets are arbitrary: this is about encoding, not control flow)."""
    return st.lists(valid_insns(), min_size=1, max_size=max_size).map(lambda xs: [s for x in xs for s in x])
