"""Conditional jumps on scalars: is_scalar_branch_taken() and regs_refine_cond_op() of kernel/bpf/verifier.c.

``branch_taken`` answers 1 (always), 0 (never) or -1 (unknown); ``refine`` narrows both operands on
the side of the branch where the condition holds. 32-bit jumps (BPF_JMP32) look at the subregisters.
"""
from __future__ import annotations

from tinyaya.isa import opcodes as op

from . import tnum as tn
from .regs import Reg, reg_bounds_sync

JSET_FALSE = 0x100  # internal: the fall-through side of BPF_JSET

#: the condition that holds on the fall-through side (rev_opcode())
REV = {op.BPF_JEQ: op.BPF_JNE, op.BPF_JNE: op.BPF_JEQ, op.BPF_JGT: op.BPF_JLE, op.BPF_JLE: op.BPF_JGT,
       op.BPF_JGE: op.BPF_JLT, op.BPF_JLT: op.BPF_JGE, op.BPF_JSGT: op.BPF_JSLE, op.BPF_JSLE: op.BPF_JSGT,
       op.BPF_JSGE: op.BPF_JSLT, op.BPF_JSLT: op.BPF_JSGE, op.BPF_JSET: JSET_FALSE, JSET_FALSE: op.BPF_JSET}
#: the same condition with the operands swapped (flip_opcode())
FLIP = {op.BPF_JEQ: op.BPF_JEQ, op.BPF_JNE: op.BPF_JNE, op.BPF_JGT: op.BPF_JLT, op.BPF_JLT: op.BPF_JGT,
        op.BPF_JGE: op.BPF_JLE, op.BPF_JLE: op.BPF_JGE, op.BPF_JSGT: op.BPF_JSLT, op.BPF_JSLT: op.BPF_JSGT,
        op.BPF_JSGE: op.BPF_JSLE, op.BPF_JSLE: op.BPF_JSGE, op.BPF_JSET: op.BPF_JSET, JSET_FALSE: JSET_FALSE}


def _view(r: Reg, jmp32: bool) -> tuple[int, int, int, int, tn.Tnum]:
    if jmp32:
        return r.u32_min, r.u32_max, r.s32_min, r.s32_max, tn.subreg(r.var_off)
    return r.umin, r.umax, r.smin, r.smax, r.var_off


def branch_taken(a: Reg, b: Reg, opc: int, jmp32: bool) -> int:
    aumin, aumax, asmin, asmax, at = _view(a, jmp32)
    bumin, bumax, bsmin, bsmax, bt = _view(b, jmp32)
    if opc == op.BPF_JEQ:
        if at[1] == 0 and bt[1] == 0:
            return int(at[0] == bt[0])
        if aumin > bumax or aumax < bumin or asmin > bsmax or asmax < bsmin:
            return 0
        if (at[0] ^ bt[0]) & ~(at[1] | bt[1]):
            return 0
        return -1
    if opc == op.BPF_JNE:
        t = branch_taken(a, b, op.BPF_JEQ, jmp32)
        return -1 if t < 0 else 1 - t
    if opc in (op.BPF_JSET, JSET_FALSE):
        if bt[1] != 0:
            return -1
        if at[0] & bt[0]:
            t = 1
        elif not ((at[0] | at[1]) & bt[0]):
            t = 0
        else:
            return -1
        return t if opc == op.BPF_JSET else 1 - t
    table = {
        op.BPF_JGT: (aumin > bumax, aumax <= bumin), op.BPF_JGE: (aumin >= bumax, aumax < bumin),
        op.BPF_JLT: (aumax < bumin, aumin >= bumax), op.BPF_JLE: (aumax <= bumin, aumin > bumax),
        op.BPF_JSGT: (asmin > bsmax, asmax <= bsmin), op.BPF_JSGE: (asmin >= bsmax, asmax < bsmin),
        op.BPF_JSLT: (asmax < bsmin, asmin >= bsmax), op.BPF_JSLE: (asmax <= bsmin, asmin > bsmax),
    }
    yes, no = table[opc]
    return 1 if yes else 0 if no else -1


def refine(a: Reg, b: Reg, opc: int, jmp32: bool) -> None:
    """regs_refine_cond_op(): narrow ``a`` and ``b`` given that ``a opc b`` holds."""
    if opc in (op.BPF_JGE, op.BPF_JGT, op.BPF_JSGE, op.BPF_JSGT):
        a, b, opc = b, a, FLIP[opc]
    if opc == op.BPF_JEQ:
        if jmp32:
            lo, hi = max(a.u32_min, b.u32_min), min(a.u32_max, b.u32_max)
            slo, shi = max(a.s32_min, b.s32_min), min(a.s32_max, b.s32_max)
            t = tn.intersect(tn.subreg(a.var_off), tn.subreg(b.var_off))
            for r in (a, b):
                r.u32_min, r.u32_max, r.s32_min, r.s32_max = lo, hi, slo, shi
                r.var_off = tn.with_subreg(r.var_off, t)
        else:
            lo, hi = max(a.umin, b.umin), min(a.umax, b.umax)
            slo, shi = max(a.smin, b.smin), min(a.smax, b.smax)
            t = tn.intersect(a.var_off, b.var_off)
            for r in (a, b):
                r.umin, r.umax, r.smin, r.smax, r.var_off = lo, hi, slo, shi, t
    elif opc == op.BPF_JNE:
        if not b.is_const32() if jmp32 else not b.is_const():
            a, b = b, a
        if jmp32 and b.is_const32():
            v = b.var_off[0] & 0xFFFFFFFF
            sv = v - (1 << 32) if v >> 31 else v
            if a.u32_min == v and a.u32_min < a.u32_max:
                a.u32_min += 1
            elif a.u32_max == v and a.u32_min < a.u32_max:
                a.u32_max -= 1
            if a.s32_min == sv and a.s32_min < a.s32_max:
                a.s32_min += 1
            elif a.s32_max == sv and a.s32_min < a.s32_max:
                a.s32_max -= 1
        elif not jmp32 and b.is_const():
            v = b.var_off[0]
            sv = v - (1 << 64) if v >> 63 else v
            if a.umin == v and a.umin < a.umax:
                a.umin += 1
            elif a.umax == v and a.umin < a.umax:
                a.umax -= 1
            if a.smin == sv and a.smin < a.smax:
                a.smin += 1
            elif a.smax == sv and a.smin < a.smax:
                a.smax -= 1
    elif opc in (op.BPF_JSET, JSET_FALSE):
        if b.var_off[1] == 0 or (jmp32 and b.is_const32()):
            v = b.var_off[0] & (0xFFFFFFFF if jmp32 else (1 << 64) - 1)
            if opc == op.BPF_JSET:
                if v and not v & (v - 1):
                    a.var_off = tn.or_(a.var_off, (v, 0))
            else:
                a.var_off = tn.and_(a.var_off, (~v & ((1 << 64) - 1), 0))
    elif opc in (op.BPF_JLE, op.BPF_JLT):
        d = 1 if opc == op.BPF_JLT else 0
        if jmp32:
            a.u32_max = min(a.u32_max, b.u32_max - d)
            b.u32_min = max(b.u32_min, a.u32_min + d)
        else:
            a.umax = min(a.umax, b.umax - d)
            b.umin = max(b.umin, a.umin + d)
    elif opc in (op.BPF_JSLE, op.BPF_JSLT):
        d = 1 if opc == op.BPF_JSLT else 0
        if jmp32:
            a.s32_max = min(a.s32_max, b.s32_max - d)
            b.s32_min = max(b.s32_min, a.s32_min + d)
        else:
            a.smax = min(a.smax, b.smax - d)
            b.smin = max(b.smin, a.smin + d)
    for r in (a, b):
        if r.umin <= r.umax and r.smin <= r.smax and r.u32_min <= r.u32_max and r.s32_min <= r.s32_max:
            reg_bounds_sync(r)


def feasible(r: Reg) -> bool:
    """False when refinement left contradictory bounds: that side of the branch cannot happen."""
    if not (r.umin <= r.umax and r.smin <= r.smax and r.u32_min <= r.u32_max and r.s32_min <= r.s32_max):
        return False
    # the tnum must admit a value in the unsigned range
    return tn.umin(r.var_off) <= r.umax and tn.umax(r.var_off) >= r.umin
