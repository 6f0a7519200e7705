"""Conditional jumps: check_cond_jmp_op(), is_branch_taken(), mark_ptr_or_null_regs(),
find_good_pkt_pointers() and sync_linked_regs() of kernel/bpf/verifier.c (a mixin of ``Env``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op

from .backtrack import mark_chain_precision
from .branches import FLIP, REV, branch_taken, feasible, refine
from .errors import EACCES, EINVAL
from .regs import PTR_MAYBE_NULL, Reg, RegType, mark_known
from .state import VState

if TYPE_CHECKING:
    from .check import Env

T = RegType


# -- conditional jumps -------------------------------------------------------------------------

def check_cond_jmp(env: Env, pc: int, i: Insn) -> int | None:
    jmp32 = op.BPF_CLASS(i.code) == op.BPF_JMP32
    o = op.BPF_OP(i.code)
    x = op.BPF_SRC(i.code) == op.BPF_X
    if x and i.imm or not x and i.src:
        raise env.reject(EINVAL, "BPF_JMP/JMP32 uses reserved fields")
    dst = env.check_reg_read(i.dst)
    if x:
        src = env.check_reg_read(i.src)
    else:
        src = Reg()
        mark_known(src, i.imm if not jmp32 else i.imm & 0xFFFFFFFF)
        if not jmp32:
            mark_known(src, i.imm)
    target = pc + 1 + i.off
    # pointer cases
    if dst.is_pointer or src.is_pointer:
        return ptr_cond(env, pc, i, o, jmp32, x, target)
    if dst.is_scalar and dst.id or (x and src.is_scalar and src.id):
        env.cur_rec[2] = linked_regs(env, {dst.id, src.id if x else 0} - {0})
    t = branch_taken(dst, src, o, jmp32)
    if t >= 0:
        # the branch was decided by these values: they must be precise (check_cond_jmp_op)
        mark_chain_precision(env, i.dst)
        if x:
            mark_chain_precision(env, i.src)
        return target if t == 1 else pc + 1
    taken_state = env.state.copy()
    # both possible: refine each side
    tregs = taken_state.cur.regs
    tdst = tregs[i.dst]
    tsrc = tregs[i.src] if x else src.copy()
    refine(tdst, tsrc, o, jmp32)
    fsrc = src if x else src.copy()
    refine(dst, fsrc, REV[o], jmp32)
    if x:
        # each operand's bounds now depend on the other's history
        both = dst.precise and src.precise
        tdst.precise = tsrc.precise = dst.precise = src.precise = both
    taken_ok = feasible(tdst) and feasible(tsrc)
    fall_ok = feasible(dst) and feasible(fsrc)
    if taken_ok:
        sync_linked(env, taken_state, tdst)
        if x:
            sync_linked(env, taken_state, tsrc)
    if fall_ok:
        sync_linked(env, env.state, dst)
        if x:
            sync_linked(env, env.state, src)
    if taken_ok and fall_ok:
        env.push_branch(taken_state, target, pc)
        return pc + 1
    if taken_ok:
        env.state = taken_state
        return target
    if fall_ok:
        return pc + 1
    return None


def linked_regs(env: Env, ids: set[int]) -> frozenset[tuple[int, int]]:
    """(frame, regno) of the scalars sharing an id with a jump's operands (the kernel's linked_regs)."""
    out = set()
    for d, f in enumerate(env.state.frames):
        for r, reg in enumerate(f.regs):
            if reg.is_scalar and reg.id in ids:
                out.add((d, r))
    return frozenset(out)


def sync_linked(env: Env, st: VState, reg: Reg) -> None:
    """sync_linked_regs(): scalars copied from one another share an id and learn the same bounds."""
    if not reg.is_scalar or not reg.id:
        return
    for f in st.frames:
        for r in f.regs:
            if r is not reg and r.is_scalar and r.id == reg.id:
                keep = r.id
                r.assign(reg)
                r.id = keep


def ptr_cond(env: Env, pc: int, i: Insn, o: int, jmp32: bool, x: bool, target: int) -> int | None:
    dst = env.regs[i.dst]
    src = env.regs[i.src] if x else None
    other = src
    is_zero = (not x and i.imm == 0) or (other is not None and other.is_null())
    if not jmp32 and o in (op.BPF_JEQ, op.BPF_JNE) and is_zero and dst.is_pointer:
        if dst.maybe_null:
            taken = env.state.copy()
            # mark_ptr_or_null_regs(): on one side it is NULL, on the other a valid pointer
            null_st, ok_st = (taken, env.state) if o == op.BPF_JEQ else (env.state, taken)
            mark_ptr_or_null(env, null_st, dst.id, True)
            mark_ptr_or_null(env, ok_st, dst.id, False)
            env.push_branch(taken, target, pc)
            return pc + 1
        if dst.type != T.PTR_TO_BTF_ID:
            # a pointer that cannot be NULL: the branch is decided
            return target if o == op.BPF_JNE else pc + 1
    pkt_types = (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META)
    if not env.allow_ptr_leaks and not is_zero and not (
            src is not None and {dst.type, src.type} <= {T.PTR_TO_PACKET, T.PTR_TO_PACKET_META, T.PTR_TO_PACKET_END}):
        raise env.reject(EACCES, f"R{i.dst if dst.is_pointer else i.src} pointer comparison prohibited")
    if not jmp32 and src is not None and o in (op.BPF_JGT, op.BPF_JGE, op.BPF_JLT, op.BPF_JLE) and (
            (dst.type in pkt_types and src.type == T.PTR_TO_PACKET_END)
            or (dst.type == T.PTR_TO_PACKET_END and src.type in pkt_types)):
        # normalise to "pkt OP pkt_end"
        pkt_regno, oo = (i.dst, o) if dst.type in pkt_types else (i.src, FLIP[o])
        pkt = env.regs[pkt_regno]
        t = pkt_branch_taken(pkt, oo)
        if t >= 0:
            return target if t else pc + 1
        taken = env.state.copy()
        fall = env.state
        good, good_open, end_st, end_open = {
            op.BPF_JGT: (fall, False, taken, True), op.BPF_JGE: (fall, True, taken, False),
            op.BPF_JLT: (taken, True, fall, False), op.BPF_JLE: (taken, False, fall, True)}[oo]
        mark_pkt_end(end_st, pkt_regno, end_open)
        find_good_pkt_pointers(good, pkt, good_open)
        env.push_branch(taken, target, pc)
        return pc + 1
    taken = env.state.copy()
    env.push_branch(taken, target, pc)
    return pc + 1


BEYOND_PKT_END = -1
AT_PKT_END = -2
MAX_PACKET_OFF = 0xFFFF


def pkt_branch_taken(pkt: Reg, o: int) -> int:
    """is_pkt_ptr_branch_taken(): a pointer known to be at or past pkt_end decides the comparison."""
    if pkt.range >= 0:
        return -1
    if o in (op.BPF_JLE, op.BPF_JGT) and pkt.range == BEYOND_PKT_END:
        return int(o == op.BPF_JGT)
    if o in (op.BPF_JLT, op.BPF_JGE):
        return int(o == op.BPF_JGE)
    return -1


def mark_pkt_end(st: VState, regno: int, range_open: bool) -> None:
    """mark_pkt_end(): the compared pointer is past (or at) pkt_end on this side."""
    reg = st.cur.regs[regno]
    if reg.type != T.PTR_TO_PACKET:
        return
    reg.range = BEYOND_PKT_END if range_open else AT_PKT_END


def find_good_pkt_pointers(st: VState, pkt: Reg, right_open: bool) -> None:
    """find_good_pkt_pointers(): where ``pkt <= pkt_end`` (or ``<``) holds, every packet pointer with the
    same id may access ``pkt.off`` (+1) bytes."""
    if pkt.off < 0 or (pkt.off == 0 and right_open):
        return
    if pkt.umax > MAX_PACKET_OFF or pkt.umax + pkt.off > MAX_PACKET_OFF:
        return
    rng = pkt.off + (1 if right_open else 0)
    for f in st.frames:
        for r in f.regs:
            if r.type == pkt.type and r.id == pkt.id and r.range < rng:
                r.range = rng
        for k, (types, sp) in list(f.stack.items()):
            if sp is not None and sp.type == pkt.type and sp.id == pkt.id and sp.range < rng:
                sp2 = sp.copy()
                sp2.range = rng
                f.stack[k] = (types, sp2)


def mark_ptr_or_null(env: Env, st: VState, id_: int, is_null: bool) -> None:
    if not id_:
        return
    ref = next((r for r in st.refs if r.id == id_), None)
    if is_null and ref is not None:
        st.refs.remove(ref)

    def fix(r: Reg) -> Reg:
        if r.id != id_ or not (r.flags & PTR_MAYBE_NULL):
            return r
        if is_null:
            nr = Reg()
            mark_known(nr, 0)
            return nr
        nr = r.copy()
        nr.flags &= ~PTR_MAYBE_NULL
        nr.id = 0
        inner = getattr(nr.map, "inner_meta", None) if nr.type == T.PTR_TO_MAP_VALUE else None
        if inner is not None:
            # a map-in-map lookup yields the inner map (mark_ptr_or_null_reg)
            nr.type = T.CONST_PTR_TO_MAP
            nr.map = inner
        return nr

    for f in st.frames:
        for k, r in enumerate(f.regs):
            nr = fix(r)
            if nr is not r:
                f.regs[k] = nr
        for off, (types, sp) in list(f.stack.items()):
            if sp is not None:
                nsp = fix(sp)
                if nsp is not sp:
                    f.stack[off] = (types, nsp)
