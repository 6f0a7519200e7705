"""Hypothesis strategies for random valid eBPF programs (XDP), for the VM differential tests.

Shape of every program::

    r6 = ctx->data; r7 = ctx->data_end
    if r6 + 80 > r7: return 0           (so the body may touch packet bytes [0, 80))
    the 64 stack bytes below r10 = 0; r0-r5, r8, r9 = random 64-bit constants
    <body>                                 (ALU/ALU32, byte swaps, movsx, sdiv/smod, forward
                                            branches, bounded loops, stack and packet loads and
                                            stores, atomics, map lookups and value updates)
    *(u64 *)(r6 + 8*i) = each of r0-r5, r8, r9;  r0 &= 3;  exit

so data_out holds every register's final value. The body never writes r6, r7 or r10, keeps
shift immediates in range and immediate divisors non-zero: the verifier accepts it, and when it
does not (the body can still trip a limit) the differential test skips that example.
"""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tinyaya.isa import Insn

REGS = [0, 1, 2, 3, 4, 5, 8, 9]
LOOP_REGS = [0, 1, 2, 3, 4, 8]  # r5 is a loop counter, r9 holds the map value pointer in map blocks
ALU_OPS = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0]
JMP_OPS = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0]
SIZES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
PKT_LIMIT = 80
STACK_BYTES = 64

# A body item is a list of instructions, ("jmp", Insn, skip) or ("call", Insn, (subprogram, reinit)),
# resolved after layout.
Item = list[Insn] | tuple[str, Insn, Any]


def _lddw(dst: int, v: int) -> list[Insn]:
    v &= (1 << 64) - 1
    lo, hi = v & 0xFFFF_FFFF, v >> 32
    return [Insn(0x18, dst, 0, 0, lo - (1 << 32) if lo >> 31 else lo),
            Insn(0, 0, 0, 0, hi - (1 << 32) if hi >> 31 else hi)]


#: immediates, with the edge values (sign bits, widths, -1, INT_MIN) drawn often
EDGES32 = [0, 1, -1, 2, 7, 8, 15, 16, 31, 32, 33, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF,
           0x7FFF_FFFF, -0x8000_0000, -2]
s32 = st.one_of(st.sampled_from(EDGES32), st.integers(-(1 << 31), (1 << 31) - 1))
u64 = st.one_of(st.sampled_from([0, 1, (1 << 64) - 1, 1 << 63, (1 << 63) - 1, 0xFFFF_FFFF, 1 << 32, 0x8000_0000]),
                st.integers(0, (1 << 64) - 1))


@st.composite
def alu(draw: st.DrawFn, regs: list[int]) -> list[Insn]:
    cls = draw(st.sampled_from([0x07, 0x04]))
    op = draw(st.sampled_from(ALU_OPS + [0xD0]))
    dst = draw(st.sampled_from(regs))
    if op == 0xD0:  # byte swap: le/be (ALU), bswap (ALU64)
        src_bit = draw(st.sampled_from([0x00, 0x08])) if cls == 0x04 else 0x00
        return [Insn(cls | op | src_bit, dst, 0, 0, draw(st.sampled_from([16, 32, 64])))]
    if op == 0x80:
        return [Insn(cls | op, dst, 0, 0, 0)]
    off = 0
    if op in (0x30, 0x90):
        off = draw(st.sampled_from([0, 1]))  # udiv/umod or sdiv/smod
    use_reg = draw(st.booleans())
    if op == 0xB0 and use_reg:
        off = draw(st.sampled_from([0, 8, 16, 32] if cls == 0x07 else [0, 8, 16]))  # mov or movsx
    if use_reg:
        return [Insn(cls | 0x08 | op, dst, draw(st.sampled_from(regs)), off, 0)]
    width = 64 if cls == 0x07 else 32
    if op in (0x60, 0x70, 0xC0):
        imm = draw(st.integers(0, width - 1))
    elif op in (0x30, 0x90):
        imm = draw(s32.filter(lambda v: v != 0))
    else:
        imm = draw(s32)
    return [Insn(cls | op, dst, 0, off, imm)]


@st.composite
def stack_op(draw: st.DrawFn, regs: list[int]) -> list[Insn]:
    size_code = draw(st.sampled_from(list(SIZES)))
    size = SIZES[size_code]
    off = -size * draw(st.integers(1, STACK_BYTES // size))
    kind = draw(st.sampled_from(["stx", "st", "ldx", "atomic"]))
    r = draw(st.sampled_from(regs))
    if kind == "stx":
        return [Insn(0x63 | size_code, 10, r, off, 0)]
    if kind == "st":
        return [Insn(0x62 | size_code, 10, 0, off, draw(s32))]
    if kind == "ldx":
        return [Insn(0x61 | size_code, r, 10, off, 0)]
    if size not in (4, 8):
        return [Insn(0x61 | size_code, r, 10, off, 0)]
    imm = draw(st.sampled_from([0x00, 0x40, 0x50, 0xA0, 0x01, 0x41, 0x51, 0xA1, 0xE1, 0xF1]))
    return [Insn(0xC3 | size_code, 10, r, off, imm)]


@st.composite
def packet_op(draw: st.DrawFn, regs: list[int]) -> list[Insn]:
    size_code = draw(st.sampled_from(list(SIZES)))
    size = SIZES[size_code]
    r = draw(st.sampled_from(regs))
    if draw(st.booleans()):
        off = draw(st.integers(0, PKT_LIMIT - size))
        return [Insn(0x61 | size_code, r, 6, off, 0)]
    off = draw(st.integers(64, PKT_LIMIT - size))  # below 64 the epilogue overwrites it
    return [Insn(0x63 | size_code, 6, r, off, 0)]


@st.composite
def branch(draw: st.DrawFn, regs: list[int]) -> tuple[str, Insn, int]:
    cls = draw(st.sampled_from([0x05, 0x06]))
    op = draw(st.sampled_from(JMP_OPS))
    dst = draw(st.sampled_from(regs))
    if draw(st.booleans()):
        ins = Insn(cls | 0x08 | op, dst, draw(st.sampled_from(regs)), 0, 0)
    else:
        ins = Insn(cls | op, dst, 0, 0, draw(s32))
    return ("jmp", ins, draw(st.integers(1, 6)))


@st.composite
def loop(draw: st.DrawFn) -> list[Insn]:
    """r5 = 0; do { k ALU ops } while (++r5 < n), n <= 16."""
    n = draw(st.integers(1, 16))
    body: list[Insn] = []
    for _ in range(draw(st.integers(1, 6))):
        body += draw(alu(LOOP_REGS))
    return [Insn(0xB7, 5, 0, 0, 0), *body, Insn(0x07, 5, 0, 0, 1), Insn(0xA5, 5, 0, -(len(body) + 2), n)]


@st.composite
def map_block(draw: st.DrawFn) -> list[Insn]:
    """value = lookup(map 0, key 0); if value: stores, loads and atomics on it; then r0-r5 re-set."""
    out = [Insn(0x62, 10, 0, -72, 0), Insn(0x18, 1, 1, 0, 0), Insn(0), Insn(0xBF, 2, 10), Insn(0x07, 2, 0, 0, -72),
           Insn(0x85, 0, 0, 0, 1), Insn(0xBF, 9, 0)]
    ops: list[Insn] = []
    for _ in range(draw(st.integers(1, 5))):
        size_code = draw(st.sampled_from(list(SIZES)))
        size = SIZES[size_code]
        off = size * draw(st.integers(0, 32 // size - 1))
        kind = draw(st.sampled_from(["stx", "ldx", "atomic"]))
        if kind == "stx":
            ops.append(Insn(0x63 | size_code, 9, 8, off, 0))
        elif kind == "ldx" or size not in (4, 8):
            ops.append(Insn(0x61 | size_code, 8, 9, off, 0))
        else:
            ops.append(Insn(0xC3 | size_code, 9, 8, off, draw(st.sampled_from([0x00, 0x01, 0x40, 0xA1, 0xE1]))))
    out += [Insn(0x15, 9, 0, len(ops), 0), *ops]
    for r in (0, 1, 2, 3, 4, 5, 9):
        out += _lddw(r, draw(u64))
    return out


@st.composite
def subprogram(draw: st.DrawFn) -> list[Insn]:
    """A bpf-to-bpf callee: its own stack frame, ALU work on its arguments r1-r5, result in r0."""
    body = [Insn(0x7A, 10, 0, -8, 0), Insn(0xBF, 0, 1)]
    for _ in range(draw(st.integers(1, 8))):
        body += draw(st.one_of(alu([0, 1, 2, 3, 4, 5]),
                               st.builds(lambda r, off: [Insn(0x7B, 10, r, -8 * off, 0)],
                                         st.sampled_from([0, 1, 2, 3, 4, 5]), st.just(1)),
                               st.builds(lambda r: [Insn(0x79, r, 10, -8, 0)], st.sampled_from([0, 1, 2, 3, 4, 5]))))
    return body + [Insn(0x95)]


@st.composite
def call_block(draw: st.DrawFn, sub: int | None = None) -> tuple[str, Insn, Any]:
    """``call local sub`` (resolved in layout), then r1-r5 re-set: a call leaves them unreadable."""
    reinit: list[Insn] = []
    for r in (1, 2, 3, 4, 5):
        reinit += _lddw(r, draw(u64))
    return ("call", Insn(0x85, 0, 1, 0, 0), (draw(st.integers(0, 1)) if sub is None else sub, reinit))


@st.composite
def programs(draw: st.DrawFn, *, with_maps: bool = False, with_calls: bool = False) -> list[Insn]:
    items: list[Item] = []
    kinds = ["alu"] * 6 + ["stack", "stack", "packet", "branch", "branch", "loop"] + (["map"] if with_maps else [])
    kinds += ["call"] if with_calls else []
    for _ in range(draw(st.integers(1, 30))):
        k = draw(st.sampled_from(kinds))
        if k == "alu":
            items.append(draw(alu(REGS)))
        elif k == "stack":
            items.append(draw(stack_op(REGS)))
        elif k == "packet":
            items.append(draw(packet_op(REGS)))
        elif k == "branch":
            items.append(draw(branch(REGS)))
        elif k == "loop":
            items.append(draw(loop()))
        elif k == "call":
            items.append(draw(call_block()))
        else:
            items.append(draw(map_block()))
    prologue = [Insn(0x61, 6, 1, 0, 0), Insn(0x61, 7, 1, 4, 0), Insn(0xBF, 2, 6), Insn(0x07, 2, 0, 0, PKT_LIMIT)]
    init = [Insn(0x7A, 10, 0, -8 * (i + 1), 0) for i in range(STACK_BYTES // 8)]
    for r in REGS:
        init += _lddw(r, draw(u64))
    subs = [draw(subprogram()), draw(subprogram())] if with_calls else []
    for k in range(len(subs)):  # every subprogram is called somewhere (else: unreachable insn)
        items.insert(draw(st.integers(0, len(items))), draw(call_block(k)))
    epilogue = [Insn(0x7B, 6, r, 8 * i, 0) for i, r in enumerate(REGS)] + [Insn(0x57, 0, 0, 0, 3), Insn(0x95)]
    out_block = [Insn(0xB7, 0, 0, 0, 0), Insn(0x95)]
    head = len(prologue) + 1 + len(init)
    body = _layout(items, head, head_tail=len(epilogue) + len(out_block), subs=subs)
    main = init + body + epilogue
    # if r2 > r7 goto out (past main)
    return prologue + [Insn(0x2D, 2, 7, len(main), 0)] + main + out_block + [i for sub in subs for i in sub]


def _layout(items: list[Item], base: int = 0, head_tail: int = 0, subs: list[list[Insn]] | None = None
            ) -> list[Insn]:
    """Resolve each branch's "skip k items" to an instruction offset (forward only, at most to the end),
    and each call to its subprogram, placed after the main program (``base`` is the body's first slot,
    ``head_tail`` the slots between the body's end and the first subprogram)."""
    starts: list[int] = []
    pos = 0
    for it in items:
        starts.append(pos)
        pos += (1 + len(it[2][1]) if it[0] == "call" else 1) if isinstance(it, tuple) else len(it)
    starts.append(pos)
    sub_at = []
    at = base + pos + head_tail
    for sub in subs or []:
        sub_at.append(at)
        at += len(sub)
    out: list[Insn] = []
    for i, it in enumerate(items):
        if isinstance(it, tuple):
            kind, ins, arg = it
            if kind == "call":
                out.append(ins.replace(imm=sub_at[arg[0]] - (base + starts[i]) - 1))
                out.extend(arg[1])
                continue
            target = starts[min(i + 1 + arg, len(items))]
            out.append(ins.replace(off=target - starts[i] - 1))
        else:
            out.extend(it)
    return out
