"""Liveness of registers and promoted stack slots: writes nobody reads are not translated.

A backward dataflow over one function's instructions. Bits 0-9 are ``r0``..``r9``; bit
``11 + i`` is the i-th promoted stack slot (``promote_stack``: a frame slot kept in a local and
written back to the stack at exit and on a fault). What reads what:

* ALU, ld_imm64, loads and stores read their operands; conditional jumps their registers;
* ``exit`` reads r0 (a bpf-to-bpf function's exit r0-r5, which go back to the caller) and every
  promoted slot (written back);
* everything that may leave the function another way reads everything: calls (helpers see the
  run state, tail calls continue with the registers), loads and stores through a pointer and
  atomics (a fault writes the locals back: the slots are memory afterwards), backward jumps (the
  budget may run out there), and anything the translation hands to the interpreter's closure.

An ALU instruction, ``ld_imm64`` or promoted slot store whose result is dead (not read before it
is overwritten, on every path) cannot fault and has no other effect, so it is not written at all
(``dead``). Registers are not observable after a fault (the ``BpfFault`` reports the pc, the
instruction and the address computed from the live base register), so only the promoted slots
must be right there.
"""
from __future__ import annotations

from ....isa.insn import Insn

ALL = (1 << 64) - 1
R0_5 = 0x3F
_REGS = 0x3FF
MAX_INSNS = 4096


def _uses_defs(insns: list[Insn], pc: int, main: bool, slots: dict[int, int], slot_bits: int,
               plain_helpers: frozenset[int], sub: dict[int, int]) -> tuple[int, int]:
    """(bits read, bits written for sure) by the instruction at ``pc``; ``sub``: the registers whose
    reads the translation replaces by the variable they copy (``copies``)."""
    from .cfg import is_exit, jump_target

    ins = insns[pc]
    c, d, s = ins.code, ins.dst, ins.src
    cls = c & 0x07
    if d > 10 or s > 10:
        return ALL, 0
    if cls in (0x04, 0x07):
        if d == 10:
            return ALL, 0
        op = c & 0xF0
        use = 0 if op == 0xB0 else 1 << d
        if c & 0x08 and op != 0xD0 and s != 10:  # r10: the frame pointer, a constant local
            use |= 1 << sub.get(s, s)
        return use, 1 << d
    if c == 0x18:
        return (0, 1 << d) if d <= 9 else (ALL, 0)
    if cls == 0x01 and c & 0xE0 in (0x60, 0x80):  # ldx / ldsx
        if d == 10:
            return ALL, 0
        if s == 10 and ins.off in slots:
            return 1 << slots[ins.off], 1 << d
        if s == 10:
            return ALL, 1 << d
        return (1 << s) | slot_bits, 1 << d
    if cls in (0x02, 0x03) and c & 0xE0 == 0x60:  # st / stx
        use = 0 if cls == 0x02 else 1 << sub.get(s, s)
        if d == 10 and ins.off in slots:
            return use, 1 << slots[ins.off]
        return use | (1 << d) | slot_bits, 0
    if is_exit(ins):
        return (1 if main else R0_5) | slot_bits, 0
    if c == 0x85 and s == 0 and ins.imm in plain_helpers:
        # a helper that neither continues elsewhere (tail call) nor runs a callback on the run
        # state: it reads r1-r5 (a fault there reports no register), and writes r0
        return 0x3E | slot_bits, 1
    t = jump_target(ins, pc)
    if t is not None:
        op = c & 0xF0
        use = 0
        if op not in (0x00, 0xE0):
            use = 1 << sub.get(d, d)
            if c & 0x08:
                use |= 1 << sub.get(s, s)
        if t <= pc or not 0 <= t < len(insns):
            use |= slot_bits | _REGS  # the budget may run out here / the interpreter's trap
        return use, 0
    return ALL, 0


def live_out(insns: list[Insn], start: int, end: int, main: bool, slots: dict[int, int],
             plain_helpers: frozenset[int] = frozenset(), cp: dict[int, dict[int, int]] | None = None
             ) -> dict[int, int]:
    """The bits live after each slot of the function ``[start, end)`` (empty: not analysed).
    ``plain_helpers``: helper ids that only read r1-r5 and write r0 (not tail calls, no callbacks)."""
    from .cfg import is_exit, jump_target, width

    if end - start > MAX_INSNS:
        return {}
    slot_bits = 0
    for bit in slots.values():
        slot_bits |= 1 << bit
    pcs: list[int] = []
    succ: dict[int, list[int]] = {}
    ud: dict[int, tuple[int, int]] = {}
    pure: dict[int, bool] = {}
    pc = start
    while pc < end:
        ins = insns[pc]
        nxt = pc + width(insns, pc)
        out: list[int] = []
        t = jump_target(ins, pc)
        if is_exit(ins):
            pass
        elif t is not None:
            if start <= t < end:
                out.append(t)
            if not (ins.code & 0xF0 == 0x00 and ins.code & 0x07 in (0x05, 0x06)) and nxt < end:
                out.append(nxt)
        elif nxt < end:
            out.append(nxt)
        pcs.append(pc)
        succ[pc] = out
        ud[pc] = _uses_defs(insns, pc, main, slots, slot_bits, plain_helpers, (cp or {}).get(pc, {}))
        pure[pc] = _pure(ins, slots)
        pc = nxt
    live_in: dict[int, int] = dict.fromkeys(pcs, 0)
    lout: dict[int, int] = dict.fromkeys(pcs, 0)
    changed = True
    while changed:
        changed = False
        for pc in reversed(pcs):
            o = 0
            for t in succ[pc]:
                o |= live_in.get(t, ALL)
            use, defs = ud[pc]
            if pure[pc] and not o & defs:
                use = 0  # a dead pure write reads nothing: its operands may be dead too
            i = use | (o & ~defs)
            if o != lout[pc] or i != live_in[pc]:
                lout[pc] = o
                live_in[pc] = i
                changed = True
    return lout


def _pure(ins: Insn, slots: dict[int, int]) -> bool:
    """Writes one register or promoted slot and does nothing else (cannot fault)."""
    c, d = ins.code, ins.dst
    cls = c & 0x07
    if ins.src > 10 or d > 10:
        return False
    if (cls in (0x04, 0x07) or c == 0x18) and d <= 9:
        return True
    if cls == 0x01 and c & 0xE0 in (0x60, 0x80) and ins.src == 10 and ins.off in slots:
        return d <= 9  # a load of a promoted slot: a read of a local
    return cls in (0x02, 0x03) and c & 0xE0 == 0x60 and d == 10 and ins.off in slots


def dead(insns: list[Insn], pc: int, lout: dict[int, int], slots: dict[int, int]) -> bool:
    """The instruction at ``pc`` only writes a register (ALU, ld_imm64) or a promoted slot that
    nothing reads afterwards."""
    o = lout.get(pc)
    if o is None:
        return False
    ins = insns[pc]
    if not _pure(ins, slots):
        return False
    if ins.dst <= 9:
        return not (o >> ins.dst) & 1
    return not (o >> slots[ins.off]) & 1


def copies(insns: list[Insn], start: int, end: int, leaders: set[int], slots: dict[int, int]
           ) -> dict[int, dict[int, int]]:
    """Copy propagation inside straight runs: before each slot, the registers known to hold the same
    value as an older register or promoted slot (``mov rX, rY``; ``ldxdw rX, [r10 + off]`` of a
    promoted slot; ``stxdw [r10 + off], rY`` into one), as register -> the bit of that variable.
    A read of the register may read the variable instead; the copy itself then often has no reader
    left, and liveness drops it. Known copies are forgotten at every leader (control may come
    from elsewhere) and when either side is written."""
    from .cfg import width

    out: dict[int, dict[int, int]] = {}
    eq: dict[int, int] = {}  # variable -> the variable it copies
    pc = start
    while pc < end:
        if pc in leaders:
            eq = {}
        ins = insns[pc]
        if eq:
            out[pc] = {v: root for v, root in eq.items() if v <= 9}
        c, d, s = ins.code, ins.dst, ins.src
        cls = c & 0x07
        src: int | None = None
        dst: int | None = None
        if c == 0xBF and ins.off == 0 and d <= 9 and s <= 9 and d != s:
            src, dst = eq.get(s, s), d
        elif c == 0x79 and d <= 9 and s == 10 and ins.off in slots:
            src, dst = eq.get(slots[ins.off], slots[ins.off]), d
        elif c == 0x7B and d == 10 and s <= 9 and ins.off in slots:
            src, dst = eq.get(s, s), slots[ins.off]
        if dst is not None:
            written = [dst]
        elif cls in (0x02, 0x03) and c & 0xE0 == 0x60 and d == 10 and ins.off in slots:
            written = [slots[ins.off]]
        elif cls in (0x04, 0x07, 0x01) or c == 0x18:
            written = [d]
        elif cls in (0x02, 0x03) and c & 0xE0 == 0x60:
            written = []
        elif c == 0x85 and s == 0:
            written = [0]
        elif cls in (0x05, 0x06) and c & 0xF0 not in (0x80, 0x90):
            written = []  # a jump
        else:
            eq = {}
            written = []
        for w in written:
            eq.pop(w, None)
            for v in [v for v, root in eq.items() if root == w]:
                del eq[v]
        if dst is not None and src is not None and src != dst:
            eq[dst] = src
        pc += width(insns, pc)
    return out
