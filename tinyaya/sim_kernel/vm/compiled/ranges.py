"""Value ranges of the registers, so the translation can drop wrap checks that can never fire.

A forward abstract interpretation over one function's instructions: every register ``r0``..``r9``
holds an unsigned interval ``(lo, hi)`` with ``0 <= lo <= hi < 2**64`` (``TOP`` when nothing is
known). Constants come from ``mov``/``ld_imm64``, loads of fewer than 8 bytes are below
``2**(8 * size)`` (except where a rewritten context field may hand back a 64-bit pointer), ALU
operations map intervals when the exact result cannot wrap, and conditional jumps narrow their
register on each edge (``jlt r1, 1000000`` leaves ``r1 <= 999999`` on the taken edge). Anything
else (calls, atomics, instructions the analysis does not model) makes what it writes ``TOP``.

Loops: the state at a back-edge target is widened to ``TOP`` per bound once it has changed a few
times, which reaches a post-fixpoint; a few descending passes then narrow it again (each pass
recomputes every state from its predecessors, which stays above the least fixpoint), so a loop
counter bounded by its exit test gets its bound back.

``analyse(insns, start, end, ctx_rewrite)`` returns the state before each reachable slot.
The translation only asks one question of it (``no_wrap``): can this add/sub/mul/shift's exact
result leave ``[0, 2**64)``? If not, the wrap check (or mask) is not written.
"""
from __future__ import annotations

from ....isa.insn import Insn

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
TOP = (0, M64)
Iv = tuple[int, int]
State = tuple[Iv, ...]
_ALL_TOP: State = (TOP,) * 10
WIDEN_AFTER = 3
NARROW_PASSES = 3
#: functions longer than this are not analysed (the translation keeps every check)
MAX_INSNS = 4096


def _s32(imm: int) -> int:
    imm &= M32
    return imm - (1 << 32) if imm >> 31 else imm


def _join(a: State | None, b: State | None) -> State | None:
    if a is None:
        return b
    if b is None:
        return a
    return tuple((min(x[0], y[0]), max(x[1], y[1])) for x, y in zip(a, b, strict=True))


def _set(st: State, r: int, iv: Iv) -> State:
    out = list(st)
    out[r] = iv
    return tuple(out)


def _bits(hi: int) -> Iv:
    return (0, (1 << hi.bit_length()) - 1)


def _alu64(op: int, a: Iv, s: Iv, off: int) -> Iv:
    if op == 0xB0:  # mov
        return s if off == 0 else TOP
    if op == 0x00:  # add
        return (a[0] + s[0], a[1] + s[1]) if a[1] + s[1] <= M64 else TOP
    if op == 0x10:  # sub
        return (a[0] - s[1], a[1] - s[0]) if a[0] >= s[1] else TOP
    if op == 0x20:  # mul
        return (a[0] * s[0], a[1] * s[1]) if a[1] * s[1] <= M64 else TOP
    if op == 0x30 and off == 0:  # div (by zero: 0)
        return (a[0] // s[1], a[1] // s[0]) if s[0] > 0 else (0, a[1])
    if op == 0x90 and off == 0:  # mod (by zero: the dividend)
        return (0, a[1])
    if op == 0x50:  # and
        return (0, min(a[1], s[1]))
    if op in (0x40, 0xA0):  # or, xor
        return _bits(max(a[1], s[1]))
    if op == 0x60 and s[0] == s[1]:  # lsh by a known amount
        k = s[0] & 63
        return (a[0] << k, a[1] << k) if a[1] << k <= M64 else TOP
    if op == 0x70:  # rsh
        if s[0] == s[1]:
            k = s[0] & 63
            return (a[0] >> k, a[1] >> k)
        return (0, a[1])
    return TOP


def _alu(ins: Insn, st: State) -> State:
    c, d = ins.code, ins.dst
    if d > 9:
        return st
    cls = c & 0x07
    op = c & 0xF0
    if op == 0xD0:  # end
        return _set(st, d, (0, M32) if cls == 0x04 and c & 0x08 == 0 and ins.imm in (16, 32) else TOP)
    if c & 0x08:
        if ins.src > 9:
            return _set(st, d, TOP if cls == 0x07 else (0, M32))
        s = st[ins.src]
    else:
        k = ins.imm & M64 if cls == 0x07 else ins.imm & M32
        s = (k, k)
    if cls == 0x04:  # ALU32: a 32-bit result
        if op == 0xB0 and ins.off == 0:
            return _set(st, d, s if s[1] <= M32 else (0, M32))
        if op == 0x00:
            a = st[d]
            if a[1] <= M32 and s[1] <= M32 and a[1] + s[1] <= M32:
                return _set(st, d, (a[0] + s[0], a[1] + s[1]))
        return _set(st, d, (0, M32))
    if not c & 0x08 and op in (0x00, 0x10) and _s32(ins.imm) < 0:  # add of a negative: a sub, and back
        k = -_s32(ins.imm)
        op = 0x10 if op == 0x00 else 0x00
        s = (k, k)
    return _set(st, d, _alu64(op, st[d], s, ins.off))


def _refine(ins: Insn, st: State, taken: bool) -> State | None:
    """The state on one edge of a 64-bit conditional jump (None: the edge cannot be taken)."""
    c = ins.code
    if c & 0x07 != 0x05 or ins.dst > 9:
        return st
    op = c & 0xF0
    if c & 0x08:
        if ins.src > 9:
            return st
        s = st[ins.src]
    else:
        k = ins.imm & M64
        s = (k, k)
    lo, hi = st[ins.dst]
    if not taken:  # the negation
        op = {0x10: 0x50, 0x50: 0x10, 0x20: 0xB0, 0xB0: 0x20, 0x30: 0xA0, 0xA0: 0x30}.get(op, 0)
    if op == 0x10:  # ==
        lo, hi = max(lo, s[0]), min(hi, s[1])
    elif op == 0x20:  # >
        lo = max(lo, s[0] + 1)
    elif op == 0x30:  # >=
        lo = max(lo, s[0])
    elif op == 0xA0:  # <
        hi = min(hi, s[1] - 1)
    elif op == 0xB0:  # <=
        hi = min(hi, s[1])
    else:
        return st
    if lo > hi:
        return None
    return _set(st, ins.dst, (lo, hi))


def _transfer(insns: list[Insn], pc: int, st: State, ctx_rewrite: bool) -> State:
    """The state after the (non-jump) instruction at ``pc``."""
    ins = insns[pc]
    c = ins.code
    cls = c & 0x07
    if cls in (0x04, 0x07):
        return _alu(ins, st)
    if c == 0x18:
        if ins.dst > 9:
            return st
        if pc + 1 >= len(insns) or ins.src == 4:  # BPF_PSEUDO_FUNC: an address the translation makes
            return _set(st, ins.dst, TOP)
        k = ((insns[pc + 1].imm & M32) << 32) | (ins.imm & M32)
        return _set(st, ins.dst, (k, k))
    if cls == 0x01:  # ldx
        if ins.dst > 9:
            return st
        size = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}[c & 0x18]
        if c & 0xE0 == 0x60 and size < 8 and not ctx_rewrite:
            return _set(st, ins.dst, (0, (1 << (8 * size)) - 1))
        return _set(st, ins.dst, TOP)
    if cls == 0x02 or (cls == 0x03 and c & 0xE0 == 0x60):  # plain stores
        return st
    if cls == 0x05 and c & 0xF0 == 0x80 and ins.src == 0 and not c & 0x08:  # helper: r0-r5
        return (TOP,) * 6 + st[6:]
    return _ALL_TOP


def analyse(insns: list[Insn], start: int, end: int, ctx_rewrite: bool) -> dict[int, State]:
    """The register intervals before each reachable slot of the function ``[start, end)``."""
    from .cfg import is_exit, jump_target, width

    if end - start > MAX_INSNS:
        return {}
    succ: dict[int, list[tuple[int, int]]] = {}  # pc -> [(target, kind)]: 0 plain, 1 taken, 2 not taken
    heads: set[int] = set()
    pc = start
    while pc < end:
        ins = insns[pc]
        nxt = pc + width(insns, pc)
        out: list[tuple[int, int]] = []
        t = jump_target(ins, pc)
        if is_exit(ins):
            pass
        elif t is not None:
            cond = ins.code & 0xF0 not in (0x00, 0xE0)
            if start <= t < end:
                out.append((t, 1 if cond else 0))
                if t <= pc:
                    heads.add(t)
            if (ins.code & 0xF0) != 0x00 or ins.code & 0x07 != 0x05 and ins.code & 0x07 != 0x06:
                if nxt < end:
                    out.append((nxt, 2 if cond else 0))
        elif nxt < end:
            out.append((nxt, 0))
        succ[pc] = out
        pc = nxt
    preds: dict[int, list[tuple[int, int]]] = {}
    for p, outs in succ.items():
        for t, kind in outs:
            preds.setdefault(t, []).append((p, kind))

    def edge(p: int, kind: int, st: State) -> State | None:
        ins = insns[p]
        if jump_target(ins, p) is None:
            return _transfer(insns, p, st, ctx_rewrite)
        if kind == 0 or ins.code & 0xF0 == 0xE0:
            return st
        return _refine(ins, st, kind == 1)

    state: dict[int, State] = {start: _ALL_TOP}
    changes: dict[int, int] = {}
    work = [start]
    queued = {start}
    while work:
        work.sort(reverse=True)  # lowest pc first: forward order converges faster
        p = work.pop()
        queued.discard(p)
        st = state[p]
        for t, kind in succ.get(p, ()):
            new = edge(p, kind, st)
            if new is None:
                continue
            old = state.get(t)
            joined = _join(old, new)
            assert joined is not None
            if old is not None and t in heads:
                n = changes[t] = changes.get(t, 0) + 1
                if n >= WIDEN_AFTER and joined != old:
                    joined = tuple((0 if j[0] < o[0] else o[0], M64 if j[1] > o[1] else o[1])
                                   for j, o in zip(joined, old, strict=True))
            if joined != old:
                state[t] = joined
                if t not in queued:
                    queued.add(t)
                    work.append(t)
    for _ in range(NARROW_PASSES):
        for pc in sorted(state):
            acc: State | None = _ALL_TOP if pc == start else None
            for p, kind in preds.get(pc, ()):
                if p in state:
                    acc = _join(acc, edge(p, kind, state[p]))
            if acc is not None:
                state[pc] = acc
    return state


def no_wrap(ins: Insn, st: State | None) -> bool:
    """True when the 64-bit add/sub (immediate or register) or mul/lsh at this state cannot wrap:
    its exact result is already in ``[0, 2**64)``."""
    if st is None:
        return False
    c = ins.code
    if c & 0x07 != 0x07 or ins.dst > 9:
        return False
    op = c & 0xF0
    if c & 0x08:
        if ins.src > 9:
            return False
        s = st[ins.src]
    else:
        k = ins.imm & M64
        s = (k, k)
        if op in (0x00, 0x10) and _s32(ins.imm) < 0:
            op = 0x10 if op == 0x00 else 0x00
            s = (-_s32(ins.imm),) * 2
    a = st[ins.dst]
    if op == 0x00:
        return a[1] + s[1] <= M64
    if op == 0x10:
        return a[0] >= s[1]
    if op == 0x20:
        return a[1] * s[1] <= M64
    if op == 0x60 and s[0] == s[1]:
        return a[1] << (s[0] & 63) <= M64
    return False
