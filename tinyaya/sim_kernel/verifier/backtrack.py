"""Precision tracking: mark_chain_precision() / backtrack_insn() / propagate_precision() of kernel/bpf/verifier.c.

A scalar becomes *precise* when its exact range decided something: a branch the verifier did not explore,
a pointer offset, a helper's size argument, a return value. The mark then travels backwards through the
instructions of the current path (``Env.hist`` and each checkpoint's ``hist``) to the registers and stack
slots the value came from, and is set on those in every checkpointed state on the way. When pruning,
an imprecise scalar of an explored state matches any scalar; when a path is pruned against an explored
state, that state's precise scalars are propagated to the path's own checkpoints, because the path's
safety now rests on them.

History records are ``[pc, depth, extra]``: ``depth`` is the frame index that executed the instruction;
``extra`` is ``(frameno, slot)`` for a stack access with a fixed offset, or, for a conditional jump, the
``(depth, regno)`` pairs of registers linked (same scalar id) to its operands.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tinyaya.isa import opcodes as op

from .regs import RegType

if TYPE_CHECKING:
    from .check import Env, Explored
    from .state import VState

T = RegType
Regs = dict[int, set[int]]


# instruction kinds for backtracking, precomputed once per program (decode_for_backtrack)
K_NOP, K_KILL, K_MOVX, K_ALUX, K_LDX, K_STORE, K_STX, K_ATOMIC, K_LD, K_CALL, K_PCALL, K_JCOND = range(12)


def decode_for_backtrack(insns: list) -> list[tuple[int, int, int, int]]:  # type: ignore[type-arg]
    """Per instruction: (kind, dst, src, aux) so that backtracking does not decode opcodes again."""
    out: list[tuple[int, int, int, int]] = []
    for i in insns:
        cls = op.BPF_CLASS(i.code)
        o = op.BPF_OP(i.code)
        x = op.BPF_SRC(i.code) == op.BPF_X
        if i.code == op.LD_IMM64:
            out.append((K_KILL, i.dst, 0, 0))
        elif cls in (op.BPF_ALU, op.BPF_ALU64):
            if o == op.BPF_MOV:
                out.append((K_MOVX, i.dst, i.src, 0) if x else (K_KILL, i.dst, 0, 0))
            elif x and o not in (op.BPF_NEG, op.BPF_END):
                out.append((K_ALUX, i.dst, i.src, 0))
            else:
                out.append((K_NOP, 0, 0, 0))
        elif cls == op.BPF_LDX:
            out.append((K_LDX, i.dst, i.src, 0))
        elif cls == op.BPF_ST:
            out.append((K_STORE, i.dst, 0, 0))
        elif cls == op.BPF_STX:
            if op.BPF_MODE(i.code) == op.BPF_ATOMIC:
                load = 0 if i.imm == op.BPF_CMPXCHG else i.src
                out.append((K_ATOMIC, load if i.imm & op.BPF_FETCH else -1, i.src, 0))
            else:
                out.append((K_STX, i.dst, i.src, 0))
        elif cls == op.BPF_LD:
            out.append((K_LD, 0, i.src, int(op.BPF_MODE(i.code) == op.BPF_IND)))
        elif cls in (op.BPF_JMP, op.BPF_JMP32):
            if o == op.BPF_CALL:
                out.append((K_PCALL if i.src == op.BPF_PSEUDO_CALL else K_CALL, 0, 0, 0))
            elif o in (op.BPF_EXIT, op.BPF_JA, op.BPF_JCOND):
                out.append((K_NOP, 0, 0, 0))
            else:
                out.append((K_JCOND, i.dst, i.src if x else -1, 0))
        else:
            out.append((K_NOP, 0, 0, 0))
    return out


def _backtrack_insn(env: Env, rec: list[object], later_depth: int, regs: Regs, slots: Regs) -> bool:
    """Undo one instruction: which registers/slots held, before it, what is needed after it.
    Returns False when the history cannot be followed (the caller then marks everything precise)."""
    pc, depth, extra = rec
    assert isinstance(pc, int) and isinstance(depth, int)
    kind, dst, src, aux = env.bt_info[pc]
    if later_depth != depth:
        if later_depth == depth + 1:
            # a call entered a callee (bpf-to-bpf) or a callback: callee arguments come from the caller
            callee = regs.pop(depth + 1, set())
            slots.pop(depth + 1, None)
            if kind == K_PCALL:
                regs.setdefault(depth, set()).update(r for r in callee if 1 <= r <= 5)
            return True
        if later_depth == depth - 1:
            # the callee's exit returned r0 to the caller
            caller = regs.setdefault(depth - 1, set())
            if 0 in caller:
                caller.discard(0)
                regs.setdefault(depth, set()).add(0)
            return True
        return False
    if kind == K_NOP:
        return True
    s = regs.get(depth)
    if s is None:
        s = regs[depth] = set()
    if kind == K_KILL:
        s.discard(dst)
    elif kind == K_MOVX:
        if dst in s:
            s.discard(dst)
            s.add(src)
    elif kind == K_ALUX:
        if dst in s:
            s.add(src)
    elif kind == K_LDX:
        if dst in s:
            s.discard(dst)
            if isinstance(extra, tuple):
                slots.setdefault(extra[0], set()).add(extra[1])
    elif kind in (K_STORE, K_STX):
        if isinstance(extra, tuple):
            fs = slots.get(extra[0])
            if fs is not None and extra[1] in fs:
                fs.discard(extra[1])
                if kind == K_STX:
                    s.add(src)
    elif kind == K_ATOMIC:
        if dst >= 0:
            s.discard(dst)
        if isinstance(extra, tuple) and extra[1] in slots.get(extra[0], ()):
            s.add(src)  # the slot now mixes the old value and src
    elif kind == K_LD:
        for r in range(6):
            s.discard(r)
        if aux and s:
            s.add(src)
    elif kind in (K_CALL, K_PCALL):
        for r in range(6):
            s.discard(r)
    elif kind == K_JCOND:
        linked = extra if isinstance(extra, frozenset) else frozenset()
        if dst in s or (src >= 0 and src in s) or any(r in regs.get(d, ()) for d, r in linked):
            s.add(dst)
            if src >= 0:
                s.add(src)
            for d, r in linked:
                regs.setdefault(d, set()).add(r)
    return True


def _mark_state(st: VState, regs: Regs, slots: Regs) -> None:
    """Set the marks on a checkpointed state; drop what is already precise there or is not a scalar."""
    for d in list(regs):
        if d >= len(st.frames):
            regs.pop(d)
            continue
        f = st.frames[d]
        for r in list(regs[d]):
            reg = f.regs[r]
            if reg.type != T.SCALAR_VALUE or reg.precise:
                regs[d].discard(r)
            else:
                reg.precise = True
    for d in list(slots):
        if d >= len(st.frames):
            slots.pop(d)
            continue
        f = st.frames[d]
        for slot in list(slots[d]):
            types, sp = f.stack.get(slot, ("?" * 8, None))
            if sp is None or sp.type != T.SCALAR_VALUE or sp.precise:
                slots[d].discard(slot)
            else:
                sp.precise = True


def _mark_all(env: Env) -> None:
    """The fallback when the history cannot be followed: every scalar of every checkpoint is precise."""
    e: Explored | None = env.parent
    while e is not None:
        for f in e.state.frames:
            for reg in f.regs:
                if reg.type == T.SCALAR_VALUE:
                    reg.precise = True
            for _types, sp in f.stack.values():
                if sp is not None and sp.type == T.SCALAR_VALUE:
                    sp.precise = True
        e = e.parent


def backtrack(env: Env, regs: Regs, slots: Regs) -> None:
    """Walk the current path backwards from the instruction being checked, marking ``regs``/``slots``
    (per frame) precise in every checkpoint they flow through."""
    depth = len(env.state.frames) - 1
    hist = env.hist
    e: Explored | None = env.parent
    later = depth
    # the instruction being checked is the last record; its own effect is what needs the precision
    records = hist
    end = len(hist) - 1 if hist and hist[-1] is env.cur_rec and env.insn_idx >= 0 else len(hist)
    while True:
        for k in range(end - 1, -1, -1):
            rec = records[k]
            if not _backtrack_insn(env, rec, later, regs, slots):
                _mark_all(env)
                return
            later = rec[1]  # type: ignore[assignment]
            if k % 16 == 0 and not any(regs.values()) and not any(slots.values()):
                return
        if not any(regs.values()) and not any(slots.values()):
            return
        if e is None:
            return
        _mark_state(e.state, regs, slots)
        if not any(regs.values()) and not any(slots.values()):
            return
        later = len(e.state.frames) - 1
        records = e.hist
        end = len(records)
        e = e.parent


def mark_chain_precision(env: Env, regno: int) -> None:
    """Invariant: a precise scalar of the current state already has its history marked (the ALU and
    jump code clear the flag when a value starts depending on an unmarked one), so it stops here."""
    reg = env.regs[regno]
    if reg.type != T.SCALAR_VALUE or reg.precise:
        return
    reg.precise = True
    backtrack(env, {len(env.state.frames) - 1: {regno}}, {})


def mark_slot_precision(env: Env, frameno: int, slot: int) -> None:
    types, sp = env.state.frames[frameno].stack.get(slot, ("?" * 8, None))
    if sp is not None and sp.type == T.SCALAR_VALUE:
        sp.precise = True
    backtrack(env, {}, {frameno: {slot}})


def propagate_precision(env: Env, old: VState, live: list[frozenset[int]]) -> None:
    """A path pruned against ``old`` relies on ``old``'s precise scalars: make them precise on this path."""
    regs: Regs = {}
    slots: Regs = {}
    for d, f in enumerate(old.frames):
        lv = live[d] if d < len(live) else frozenset(range(10))
        for r in range(10):
            reg = f.regs[r]
            if r in lv and reg.type == T.SCALAR_VALUE and reg.precise:
                regs.setdefault(d, set()).add(r)
        for slot, (_types, sp) in f.stack.items():
            if sp is not None and sp.type == T.SCALAR_VALUE and sp.precise:
                slots.setdefault(d, set()).add(slot)
    if regs or slots:
        # the pruned state's own registers are the starting point, before any instruction of it ran
        env.insn_idx = -1
        backtrack(env, regs, slots)
