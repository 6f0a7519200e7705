"""Static register liveness: which registers an instruction's continuation may read before writing.

The kernel tracks liveness along verified paths (REG_LIVE_READ); a static backward data-flow over each
subprogram's control-flow graph gives a sound superset, which is what state pruning needs: a register
that is dead at an instruction cannot make two states differ.
"""
from __future__ import annotations

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op

from .cfg import is_pseudo_call, jump_target

ALL = frozenset(range(10))
ARGS = frozenset(range(1, 6))
CALLER_SAVED = frozenset(range(0, 6))


def _use_def(i: Insn) -> tuple[frozenset[int], frozenset[int]]:
    cls = op.BPF_CLASS(i.code)
    o = op.BPF_OP(i.code)
    if i.code == op.LD_IMM64:
        return frozenset(), frozenset({i.dst})
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        uses = set()
        if o != op.BPF_MOV:
            uses.add(i.dst)
        if op.BPF_SRC(i.code) == op.BPF_X and o not in (op.BPF_NEG, op.BPF_END):
            uses.add(i.src)
        return frozenset(uses), frozenset({i.dst})
    if cls == op.BPF_LDX:
        return frozenset({i.src}), frozenset({i.dst})
    if cls == op.BPF_ST:
        return frozenset({i.dst}), frozenset()
    if cls == op.BPF_STX:
        if op.BPF_MODE(i.code) == op.BPF_ATOMIC:
            if i.imm == op.BPF_CMPXCHG:
                return frozenset({i.dst, i.src, 0}), frozenset({0})
            if i.imm & op.BPF_FETCH:
                return frozenset({i.dst, i.src}), frozenset({i.src})
        return frozenset({i.dst, i.src}), frozenset()
    if cls == op.BPF_LD:  # LD_ABS / LD_IND
        return frozenset({6, i.src}), CALLER_SAVED
    if cls in (op.BPF_JMP, op.BPF_JMP32):
        if o == op.BPF_CALL:
            return ARGS, CALLER_SAVED
        if o == op.BPF_EXIT:
            return frozenset({0}), frozenset()
        if o in (op.BPF_JA, op.BPF_JCOND):
            return frozenset(), frozenset()
        uses = {i.dst}
        if op.BPF_SRC(i.code) == op.BPF_X:
            uses.add(i.src)
        return frozenset(uses), frozenset()
    return ALL, frozenset()


def compute_live_in(insns: list[Insn], subprog_starts: list[int]) -> list[frozenset[int]]:
    n = len(insns)
    bounds = subprog_starts + [n]
    succs: list[list[int]] = [[] for _ in range(n)]
    for pc, i in enumerate(insns):
        cls = op.BPF_CLASS(i.code)
        o = op.BPF_OP(i.code)
        if i.code == op.LD_IMM64:
            succs[pc] = [pc + 2]
        elif cls in (op.BPF_JMP, op.BPF_JMP32) and o == op.BPF_EXIT:
            succs[pc] = []
        elif cls in (op.BPF_JMP, op.BPF_JMP32) and o == op.BPF_CALL:
            succs[pc] = [pc + 1]
        elif cls in (op.BPF_JMP, op.BPF_JMP32) and o == op.BPF_JA:
            succs[pc] = [jump_target(pc, i)]
        elif cls in (op.BPF_JMP, op.BPF_JMP32):
            succs[pc] = [pc + 1, jump_target(pc, i)]
        else:
            succs[pc] = [pc + 1]
        _ = is_pseudo_call
    ud = [_use_def(i) for i in insns]
    live: list[frozenset[int]] = [frozenset()] * n
    for k in range(len(subprog_starts)):
        lo, hi = bounds[k], bounds[k + 1]
        changed = True
        while changed:
            changed = False
            for pc in range(hi - 1, lo - 1, -1):
                out: set[int] = set()
                for s in succs[pc]:
                    if lo <= s < hi:
                        out |= live[s]
                uses, defs = ud[pc]
                new = frozenset(uses | (out - defs))
                if new != live[pc]:
                    live[pc] = new
                    changed = True
    return live


# -- stack slot liveness ------------------------------------------------------------------------------------
SlotSet = frozenset[int] | None  # 8-aligned fp offsets; None: every slot


def _may_stack_pointers(insns: list[Insn], succs: list[list[int]], lo: int, hi: int) -> list[frozenset[int]]:
    """Forward: registers that may hold a pointer into some stack frame before each instruction of [lo, hi)."""
    ms: list[frozenset[int] | None] = [None] * (hi - lo)
    ms[0] = frozenset({1, 2, 3, 4, 5, 10}) if lo else frozenset({10})
    work = [lo]
    while work:
        pc = work.pop()
        cur = ms[pc - lo]
        assert cur is not None
        i = insns[pc]
        s = set(cur)
        cls = op.BPF_CLASS(i.code)
        o = op.BPF_OP(i.code)
        if i.code == op.LD_IMM64:
            s.discard(i.dst)
        elif cls in (op.BPF_ALU, op.BPF_ALU64):
            x = op.BPF_SRC(i.code) == op.BPF_X
            if o == op.BPF_MOV:
                if x and i.src in cur and cls == op.BPF_ALU64 and not i.off:
                    s.add(i.dst)
                else:
                    s.discard(i.dst)
            elif cls == op.BPF_ALU64 and o in (op.BPF_ADD, op.BPF_SUB):
                if x and o == op.BPF_ADD and i.src in cur:
                    s.add(i.dst)
            else:
                s.discard(i.dst)
        elif cls == op.BPF_LDX:
            if i.src in cur:
                s.add(i.dst)  # a filled spill may be a stack pointer
            else:
                s.discard(i.dst)
        elif cls == op.BPF_STX and op.BPF_MODE(i.code) == op.BPF_ATOMIC:
            s.discard(0 if i.imm == op.BPF_CMPXCHG else i.src)
        elif cls == op.BPF_LD or (cls in (op.BPF_JMP, op.BPF_JMP32) and o == op.BPF_CALL):
            s -= set(range(6))
        out = frozenset(s | {10})
        for t in succs[pc]:
            if lo <= t < hi:
                old = ms[t - lo]
                new = out if old is None else old | out
                if new != old:
                    ms[t - lo] = new
                    work.append(t)
    return [m if m is not None else frozenset({10}) for m in ms]


def _slot_transfer(i: Insn, out: SlotSet, stackp: frozenset[int]) -> SlotSet:
    cls = op.BPF_CLASS(i.code)
    o = op.BPF_OP(i.code)
    if cls == op.BPF_LDX:
        if i.src == 10:
            return None if out is None else out | {i.off & ~7}
        return None if i.src in stackp else out
    if cls in (op.BPF_ST, op.BPF_STX):
        if cls == op.BPF_STX and op.BPF_MODE(i.code) == op.BPF_ATOMIC:
            if i.dst == 10:
                return None if out is None else out | {i.off & ~7}
            return None if i.dst in stackp else out
        if i.dst == 10 and out is not None and op.BPF_SIZE(i.code) == op.BPF_DW and i.off % 8 == 0:
            return out - {i.off}
        return out
    if cls in (op.BPF_JMP, op.BPF_JMP32) and o == op.BPF_CALL:
        return None  # helpers and callees may read the stack through pointer arguments
    if cls == op.BPF_LD and i.code != op.LD_IMM64:
        return out
    return out


def compute_stack_live(insns: list[Insn], subprog_starts: list[int]) -> list[SlotSet]:
    """Per instruction: the stack slots of its frame that may be read later (None: possibly all)."""
    n = len(insns)
    bounds = subprog_starts + [n]
    succs: list[list[int]] = []
    for pc, i in enumerate(insns):
        cls = op.BPF_CLASS(i.code)
        o = op.BPF_OP(i.code)
        if i.code == op.LD_IMM64:
            succs.append([pc + 2])
        elif cls in (op.BPF_JMP, op.BPF_JMP32) and o == op.BPF_EXIT:
            succs.append([])
        elif cls in (op.BPF_JMP, op.BPF_JMP32) and o == op.BPF_CALL:
            succs.append([pc + 1])
        elif cls in (op.BPF_JMP, op.BPF_JMP32) and o == op.BPF_JA:
            succs.append([jump_target(pc, i)])
        elif cls in (op.BPF_JMP, op.BPF_JMP32):
            succs.append([pc + 1, jump_target(pc, i)])
        else:
            succs.append([pc + 1])
    live: list[SlotSet] = [frozenset()] * n
    for k in range(len(subprog_starts)):
        lo, hi = bounds[k], bounds[k + 1]
        stackp = _may_stack_pointers(insns, succs, lo, hi)
        changed = True
        while changed:
            changed = False
            for pc in range(hi - 1, lo - 1, -1):
                out: SlotSet = frozenset()
                for s in succs[pc]:
                    if lo <= s < hi:
                        ls = live[s]
                        out = None if out is None or ls is None else out | ls
                new = _slot_transfer(insns[pc], out, stackp[pc - lo])
                if new != live[pc]:
                    live[pc] = new
                    changed = True
    return live
