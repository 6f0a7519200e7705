"""Verifier states: ``struct bpf_func_state`` (registers and stack of one frame) and
``struct bpf_verifier_state`` (the call chain, acquired references), plus the pruning comparison
(states_equal / regsafe / stacksafe in kernel/bpf/verifier.c).

Stack slots are keyed by their 8-aligned frame offset (-8, -16, ... -512). A slot is an immutable
``(types, spilled)`` pair: ``types`` has one character per byte (lowest address first) using the
log's letters ``?`` invalid, ``m`` misc, ``0`` zero, ``r`` spilled register; ``spilled`` is the
register saved by an 8-byte spill.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import tnum as tn
from .regs import Reg, RegType, mark_const_zero_ptr, mark_not_init, reg_str

T = RegType
STACK_INVALID, STACK_MISC, STACK_ZERO, STACK_SPILL = "?", "m", "0", "r"
Slot = tuple[str, Reg | None]


class FuncState:
    __slots__ = ("regs", "stack", "frameno", "callsite", "subprog", "allocated_stack", "in_callback")

    def __init__(self, frameno: int, callsite: int, subprog: int) -> None:
        self.regs = [Reg() for _ in range(11)]
        self.stack: dict[int, Slot] = {}
        self.frameno = frameno
        self.callsite = callsite
        self.subprog = subprog
        self.allocated_stack = 0
        #: a callback of bpf_loop / for_each_map_elem: its exit goes back to the calling helper
        self.in_callback = False
        fp = self.regs[10]
        mark_const_zero_ptr(fp, T.PTR_TO_STACK)
        fp.frameno = frameno

    def copy(self) -> FuncState:
        f = FuncState.__new__(FuncState)
        f.regs = [r.copy() for r in self.regs]
        f.stack = dict(self.stack)
        f.frameno, f.callsite, f.subprog = self.frameno, self.callsite, self.subprog
        f.allocated_stack = self.allocated_stack
        f.in_callback = self.in_callback
        return f


@dataclass(eq=False)
class Ref:
    id: int
    insn_idx: int
    kind: str = "ptr"  # "ptr" (ringbuf record) or "lock"


@dataclass(eq=False)
class VState:
    frames: list[FuncState]
    refs: list[Ref] = field(default_factory=list)
    active_lock: int = 0  # id of the held bpf_spin_lock's map value, 0 if none
    active_lock_map: object = None
    insn_idx: int = 0
    parent: VState | None = None
    #: explored-state bookkeeping: how many paths from here are still being explored
    branches: int = 0
    may_goto_depth: int = 0

    @property
    def cur(self) -> FuncState:
        return self.frames[-1]

    def copy(self) -> VState:
        return VState([f.copy() for f in self.frames], [Ref(r.id, r.insn_idx, r.kind) for r in self.refs],
                      self.active_lock, self.active_lock_map, self.insn_idx, self.parent, 0, self.may_goto_depth)


def init_state(ctx_type: RegType = T.PTR_TO_CTX) -> VState:
    f = FuncState(0, -1, 0)
    r1 = f.regs[1]
    mark_const_zero_ptr(r1, ctx_type)
    return VState([f])


# -- pruning -----------------------------------------------------------------------------------
def _range_within(old: Reg, cur: Reg) -> bool:
    return (old.umin <= cur.umin and cur.umax <= old.umax and old.smin <= cur.smin and cur.smax <= old.smax
            and old.u32_min <= cur.u32_min and cur.u32_max <= old.u32_max and old.s32_min <= cur.s32_min
            and cur.s32_max <= old.s32_max)


class IdMap:
    """check_ids(): ids in the old state must map one-to-one onto ids in the current one."""

    def __init__(self) -> None:
        self.fwd: dict[int, int] = {}
        self.rev: dict[int, int] = {}

    def check(self, old_id: int, cur_id: int) -> bool:
        if not old_id and not cur_id:
            return True
        if not old_id or not cur_id:
            return False
        if self.fwd.get(old_id, cur_id) != cur_id or self.rev.get(cur_id, old_id) != old_id:
            return False
        self.fwd[old_id] = cur_id
        self.rev[cur_id] = old_id
        return True


def regsafe(old: Reg, cur: Reg, ids: IdMap, exact: bool, precise: bool = True, all_precise: bool = False) -> bool:
    if exact:
        return (old.type == cur.type and old.flags == cur.flags and old.off == cur.off and old.var_off == cur.var_off
                and old.umin == cur.umin and old.umax == cur.umax and old.smin == cur.smin and old.smax == cur.smax
                and old.u32_min == cur.u32_min and old.u32_max == cur.u32_max and old.s32_min == cur.s32_min
                and old.s32_max == cur.s32_max and old.map is cur.map and old.range == cur.range
                and old.mem_size == cur.mem_size and ids.check(old.id, cur.id)
                and ids.check(old.ref_obj_id, cur.ref_obj_id))
    if old.type == T.NOT_INIT:
        return True
    if cur.type != old.type:
        return False
    if old.type == T.SCALAR_VALUE:
        if not precise or not (old.precise or all_precise):
            return True  # its value decided nothing in the explored state's continuation
        # scalar ids only matter for bounds propagation: an old state with a linked scalar is
        # more precise, so ids must correspond when the old one has one
        if old.id and not ids.check(old.id, cur.id):
            return False
        return _range_within(old, cur) and tn.contains(old.var_off, cur.var_off)
    if old.flags != cur.flags or old.off != cur.off or old.map is not cur.map or old.mem_size != cur.mem_size:
        return False
    if old.frameno != cur.frameno or old.subprog != cur.subprog:
        return False
    if old.type in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META):
        if old.range < 0 or cur.range < 0:
            if old.range != cur.range:
                return False  # [BEYOND|AT]_PKT_END
        elif cur.range < old.range:
            return False
    if not (_range_within(old, cur) and tn.contains(old.var_off, cur.var_off)):
        return False
    if (old.flags & 0x100 or old.type in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META)) and not ids.check(old.id, cur.id):
        return False
    return ids.check(old.ref_obj_id, cur.ref_obj_id) if (old.ref_obj_id or cur.ref_obj_id) else True


def stacksafe(old: FuncState, cur: FuncState, ids: IdMap, exact: bool,
              slots_live: frozenset[int] | None = None, all_precise: bool = False) -> bool:
    for off, (otypes, ospill) in old.stack.items():
        if not exact and slots_live is not None and off not in slots_live:
            continue  # never read again: its contents cannot matter
        cslot = cur.stack.get(off)
        ctypes_, cspill = cslot if cslot is not None else (STACK_INVALID * 8, None)
        if not exact and not all_precise and ospill is not None and ospill.is_scalar and not ospill.precise:
            # a slot whose contents decide nothing later: anything but a spilled pointer will do
            if cspill is not None and not cspill.is_scalar and STACK_SPILL in ctypes_:
                return False
            continue
        if exact:
            if otypes != ctypes_:
                return False
        else:
            for ob, cb in zip(otypes, ctypes_, strict=True):
                if ob == STACK_INVALID:
                    continue
                if ob == STACK_MISC and cb in (STACK_MISC, STACK_ZERO, STACK_INVALID):
                    continue
                if ob == STACK_MISC and cb == STACK_SPILL and cspill is not None and cspill.is_scalar:
                    continue
                if ob != cb:
                    return False
        if ospill is not None and STACK_SPILL in otypes:
            if cspill is None or not regsafe(ospill, cspill, ids, exact, True, all_precise):
                return False
    if exact:
        for off, (ctypes_, _) in cur.stack.items():
            if off not in old.stack and ctypes_ != STACK_INVALID * 8:
                return False
    return True


def states_equal(old: VState, cur: VState, live: list[frozenset[int]] | None, exact: bool = False,
                 need: list[tuple[frozenset[int], frozenset[int] | None]] | None = None,
                 slots_live: list[frozenset[int] | None] | None = None, all_precise: bool = False) -> bool:
    """Does every safe continuation of ``old`` cover ``cur``? ``live[i]`` lists registers read later
    in frame i (None: all); ``need[i]`` the registers and stack slots whose scalar values matter
    (precision.py; None: all)."""
    if len(old.frames) != len(cur.frames) or old.active_lock != cur.active_lock:
        return False
    if len(old.refs) != len(cur.refs):
        return False
    ids = IdMap()
    for ro, rc in zip(old.refs, cur.refs, strict=True):
        if not ids.check(ro.id, rc.id):
            return False
    for i, (fo, fc) in enumerate(zip(old.frames, cur.frames, strict=True)):
        if fo.callsite != fc.callsite or fo.in_callback != fc.in_callback:
            return False
        lv = live[i] if live is not None else None
        nregs = need[i][0] if need is not None else None
        for r in range(10):
            if lv is not None and r not in lv:
                continue
            if not regsafe(fo.regs[r], fc.regs[r], ids, exact, all_precise or nregs is None or r in nregs,
                           all_precise):
                return False
        if not stacksafe(fo, fc, ids, exact, slots_live[i] if slots_live is not None else None, all_precise):
            return False
    return True


def exact_key(st: VState, live: list[frozenset[int]]) -> tuple[object, ...]:
    """A hashable image of everything ``states_equal(..., exact=True)`` compares, with ids renumbered in
    order of appearance: two states have equal keys exactly when they are equal (for loop detection)."""
    ids: dict[int, int] = {}

    def cid(i: int) -> int:
        if not i:
            return 0
        return ids.setdefault(i, len(ids) + 1)

    def rkey(r: Reg) -> tuple[object, ...]:
        return (r.type, r.flags, r.off, r.var_off, r.smin, r.smax, r.umin, r.umax, r.s32_min, r.s32_max,
                r.u32_min, r.u32_max, id(r.map), r.range, r.mem_size, r.frameno, r.subprog, cid(r.id),
                cid(r.ref_obj_id))

    out: list[object] = [st.active_lock, st.may_goto_depth, tuple(cid(r.id) for r in st.refs)]
    for k, f in enumerate(st.frames):
        lv = live[k]
        out.append((f.callsite, f.in_callback))
        out.append(tuple(rkey(f.regs[r]) if r in lv else None for r in range(10)))
        out.append(tuple((off, types, rkey(sp) if sp is not None else None)
                         for off, (types, sp) in sorted(f.stack.items()) if types != STACK_INVALID * 8))
    return tuple(out)


def stack_str(f: FuncState) -> str:
    out: list[str] = []
    for off in sorted(f.stack, reverse=True):
        types, spilled = f.stack[off]
        if types == STACK_INVALID * 8:
            continue
        if spilled is not None and types == STACK_SPILL * 8:
            out.append(f"fp{off}={reg_str(spilled, f.frameno)}")
        else:
            out.append(f"fp{off}={types[::-1]}" if spilled is None or STACK_SPILL not in types
                       else f"fp{off}={reg_str(spilled, f.frameno)}")
    return " ".join(out)


def state_str(f: FuncState, regs: list[int] | None = None, slots: list[int] | None = None) -> str:
    """print_verifier_state(): every initialised register and stack slot, or only the given ones."""
    idx = range(11) if regs is None else regs
    parts = [f"R{i}={reg_str(f.regs[i], f.frameno)}" for i in idx if f.regs[i].type != T.NOT_INIT]
    if slots is None:
        s = stack_str(f)
        if s:
            parts.append(s)
    else:
        for off in slots:
            sl = f.stack.get(off)
            if sl is None or sl[0] == STACK_INVALID * 8:
                continue
            types, spilled = sl
            parts.append(f"fp{off}={reg_str(spilled, f.frameno)}" if spilled is not None and
                         types == STACK_SPILL * 8 else f"fp{off}={types[::-1]}")
    text = " ".join(parts)
    return f"frame{f.frameno}: {text}" if f.frameno else text


__all__ = ["FuncState", "VState", "Ref", "init_state", "states_equal", "state_str", "mark_not_init"]
