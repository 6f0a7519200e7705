"""Random XDP programs for the differential and soundness fuzzers: packet pointers, data_end checks in
both operand orders, variable offsets, helpers with size arguments, and bounded loops."""
from __future__ import annotations

from hypothesis import strategies as st

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op

from .test_soundness import A64, JMPS, SIZES, alu, alux, ldx, stx

XDP = 6
scal = st.sampled_from([2, 3, 4, 5])
size = st.sampled_from([1, 2, 4, 8])

xdp_snippet = st.one_of(
    # check data + n against data_end, in one of four spellings
    st.builds(lambda n, form, skip: [alux(A64, op.BPF_MOV, 9, 7), alu(A64, op.BPF_ADD, 9, n),
                                     [Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_X, 9, 8, skip),
                                      Insn(op.BPF_JMP | op.BPF_JLT | op.BPF_X, 8, 9, skip),
                                      Insn(op.BPF_JMP | op.BPF_JGE | op.BPF_X, 9, 8, skip),
                                      Insn(op.BPF_JMP | op.BPF_JLE | op.BPF_X, 8, 9, skip)][form]],
              st.integers(0, 40), st.integers(0, 3), st.integers(1, 4)),
    # read or write packet bytes at a constant offset
    st.builds(lambda off, sz, d: [ldx(sz, d, 7, off)], st.integers(-2, 40), size, scal),
    st.builds(lambda off, sz, s: [stx(sz, 7, s, off)], st.integers(-2, 40), size, scal),
    # a variable offset into the packet, maybe masked
    st.builds(lambda s, m, off: [alu(A64, op.BPF_AND, s, m), alux(A64, op.BPF_MOV, 9, 7),
                                 alux(A64, op.BPF_ADD, 9, s), ldx(1, 0, 9, off)],
              scal, st.sampled_from([0, 3, 7, 15, 63, -1]), st.integers(0, 16)),
    # scalars: from the packet, from the ctx, arithmetic, bounds
    st.builds(lambda d, off: [ldx(4, d, 6, off)], scal, st.sampled_from([12, 16])),
    st.builds(lambda d, o, imm: [alu(A64, o, d, imm)], scal,
              st.sampled_from([op.BPF_AND, op.BPF_ADD, op.BPF_RSH, op.BPF_MOV]), st.integers(-8, 64)),
    st.builds(lambda d, j, imm, skip: [Insn(op.BPF_JMP | j | op.BPF_K, d, 0, skip, imm)], scal,
              st.sampled_from(JMPS), st.integers(-8, 64), st.integers(1, 3)),
    # a helper with a size: copy from the packet start into the stack
    st.builds(lambda s, m: [alu(A64, op.BPF_AND, s, m), alux(A64, op.BPF_MOV, 1, 10), alu(A64, op.BPF_ADD, 1, -32),
                            alux(A64, op.BPF_MOV, 2, s), alux(A64, op.BPF_MOV, 3, 7),
                            Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 113), alu(A64, op.BPF_MOV, 1, 0)],
              scal, st.sampled_from([7, 31, 32, 63])),
    # a bounded loop over packet bytes with a re-check each step
    st.builds(lambda n: [alu(A64, op.BPF_MOV, 5, 0),
                         alux(A64, op.BPF_MOV, 9, 7), alux(A64, op.BPF_ADD, 9, 5),
                         alu(A64, op.BPF_ADD, 9, 1),
                         Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_X, 9, 8, 3),
                         ldx(1, 0, 9, -1),
                         alu(A64, op.BPF_ADD, 5, 1),
                         Insn(op.BPF_JMP | op.BPF_JLT | op.BPF_K, 5, 0, -7, n)],
              st.integers(1, 12)),
)

XDP_PROLOGUE = [
    alux(A64, op.BPF_MOV, 6, 1),
    ldx(4, 7, 6, 0),   # data
    ldx(4, 8, 6, 4),   # data_end
    alu(A64, op.BPF_MOV, 2, 0), alu(A64, op.BPF_MOV, 3, 0), alu(A64, op.BPF_MOV, 4, 0), alu(A64, op.BPF_MOV, 5, 0),
]
XDP_EPILOGUE = [alu(A64, op.BPF_MOV, 0, 2), Insn(op.BPF_JMP | op.BPF_EXIT)]


def build_xdp(snippets: list[list[Insn]]) -> list[Insn]:
    body = [i for s in snippets for i in s]
    out = XDP_PROLOGUE + body + XDP_EPILOGUE
    n = len(out)
    fixed = []
    for k, i in enumerate(out):
        if op.BPF_CLASS(i.code) in (op.BPF_JMP, op.BPF_JMP32) and op.BPF_OP(i.code) not in (op.BPF_CALL, op.BPF_EXIT) \
                and i.off > 0:
            i = i.replace(off=min(i.off, n - 2 - k))
        fixed.append(i)
    return fixed


__all__ = ["xdp_snippet", "build_xdp", "XDP", "SIZES"]
