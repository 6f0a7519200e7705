"""Runs of stores through one base register, written under one bounds check.

A run is a stretch of a basic block that starts with a store ``*(base + off) = v`` (``off >= 0``)
and holds only such stores through the same base register (of immediates, of registers whose value
is known, or of any other register) and pure register ALU instructions that do not write the base
(no loads, calls, jumps, atomics, ld_imm64). Its code is::

    if o<base> + <extent> <= len(w<base>):   # the whole run fits the kept writable region
        <ALU statements and variable stores, in program order>
        <the final bytes: constant runs and deferred variable stores, one pack_into per span>
        <ALU statements sunk past the final bytes>
    else:
        <the instructions one by one, exactly as without the run>

Inside the check nothing can fault: the ALU statements cannot, and every store is inside the
region. Per byte the last writer wins: a variable store whose bytes later stores all overwrite is
not written; the bytes whose last writer is a constant store are written after the variable stores
that stay in order, so they win over earlier variable bytes and lose to none. A variable store
that is the last writer of all its bytes is deferred to the final bytes when nothing written after
it changes the registers its value reads, and an ALU statement whose register neither the final
bytes nor a later statement before them reads or writes (and whose inputs none of those writes)
is written after them; a span of final bytes with a variable field in it is one precompiled
``struct.Struct.pack_into`` of ``Ns`` constant runs and the fields. ALU statements whose value
nothing reads (in the run, or after it: opt.live_out) are not written, and a one-line value read
once is folded into its reader. Outside the check (the region too small, read-only or unmapped)
the first store that does not fit faults at its own pc with the interpreter's message, after the
earlier ones are done.

The translator's state (``Ctx``: constants, frame offsets, kept region lookups) is the same after
the run as after translating its instructions one by one: the checked branch is generated on a
copy, the other branch is that one-by-one translation itself.
"""
from __future__ import annotations

import re
import struct
from typing import Any

from ....isa.insn import Insn
from .insns import _UFMT, MASK, _addr, alu, straight

_SIZE = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
_READS = re.compile(r"\br(\d)\b")
#: stores a run needs to be worth its check
MIN_STORES = 4


def _is_plain_store(ins: Insn) -> bool:
    """ST/STX with BPF_MEM (no atomics)."""
    return ins.code & 0x07 in (0x02, 0x03) and ins.code & 0xE0 == 0x60


def _pure_alu(ins: Insn) -> bool:
    """An ALU/ALU64 instruction on registers r0-r9 only (not r10: frame-pointer arithmetic)."""
    if ins.code & 0x07 not in (0x04, 0x07) or ins.dst > 9:
        return False
    if ins.code & 0x08 and ins.src > 9:
        return False
    return alu(ins) is not None


def _base_store(ins: Insn, base: int) -> bool:
    return (_is_plain_store(ins) and ins.dst == base and ins.off >= 0
            and not (ins.code & 0x07 == 0x03 and ins.src > 9))


def store_run(t: Any, pc: int, end: int) -> list[int] | None:
    """The slots of the run starting at ``pc`` (inside the block ending at ``end``), or None."""
    insns: list[Insn] = t.insns
    first = insns[pc]
    if not _is_plain_store(first) or first.dst > 9 or first.off < 0:
        return None
    base = first.dst
    leaders = t.fn.leaders
    pcs: list[int] = []
    stores = 0
    q = pc
    while q < end:
        if q != pc and (q in leaders or q == t.mg_skip):
            break
        ins = insns[q]
        if _base_store(ins, base):
            stores += 1
        elif not (_pure_alu(ins) and ins.dst != base):
            break
        pcs.append(q)
        q += 1
    while pcs and not _is_plain_store(insns[pcs[-1]]):
        pcs.pop()
    return pcs if stores >= MIN_STORES else None


def _reads(stmts: list[str], d: int | None) -> set[int]:
    """Registers the statements read (the left side of ``rD = ...`` is not a read)."""
    out: set[int] = set()
    lhs = f"r{d} = " if d is not None else None
    for s in stmts:
        text = s[len(lhs):] if lhs is not None and s.startswith(lhs) else s
        out.update(int(m) for m in _READS.findall(text))
    return out


def _single(stmts: list[str], d: int) -> str | None:
    """The right side of a one-statement ``rD = E`` (a pure expression), else None."""
    lhs = f"r{d} = "
    if len(stmts) != 1 or not stmts[0].startswith(lhs):
        return None
    return stmts[0][len(lhs):]


def _count(text: str, r: int) -> int:
    return len(re.findall(rf"\br{r}\b", text))


#: a line of the checked branch: (pc, text, register it writes or None, the store it is:
#: (item index, offset, size, value) or None)
Line = tuple[int, str, int | None, tuple[int, int, int, str] | None]


def _forwarded(kept: list[tuple[int, str, Any, Any, Any]], live_after: set[int], w: str, o: str,
               c: Any, index: list[int]) -> list[Line]:
    """The checked branch's ALU statements and variable stores in program order, with the value of a
    one-statement ``rD = E`` that exactly one later statement reads (before ``rD`` is written again,
    and not read after the run) substituted into that reader as ``(E)`` instead of written to ``rD``.
    A pending ``E`` is written out to ``rD`` before anything writes a register it reads, or when a
    statement that is not one expression reads it, so every substitution reads the values ``E`` read."""
    # texts read by each item (an ALU's right side, a store's value)
    def read_text(it: tuple[int, str, Any, Any, Any]) -> str:
        _q, kind, a, b, v = it
        if kind == "var":
            return str(v)
        rhs = _single(b, a)
        return rhs if rhs is not None else "\n".join(b)

    texts = [read_text(it) for it in kept]
    fwd: set[int] = set()
    for i, (_q, kind, d, b, _v) in enumerate(kept):
        if kind != "alu" or _single(b, d) is None:
            continue
        reads = 0
        rewritten = False
        for j in range(i + 1, len(kept)):
            reads += _count(texts[j], d)
            if kept[j][1] == "alu" and kept[j][2] == d:
                rewritten = True
                break
        if reads == 1 and (rewritten or d not in live_after):
            fwd.add(i)
    out: list[Line] = []
    pending: dict[int, str] = {}

    def flush(q: int, regs: set[int]) -> None:
        for r in [r for r in pending if r in regs]:
            out.append((q, f"r{r} = {pending.pop(r)}", r, None))

    def subst(text: str) -> str:
        for r in [r for r in pending if _count(text, r)]:
            e = pending.pop(r)
            text = re.sub(rf"\br{r}\b", "(" + e.replace("\\", "\\\\") + ")", text)
        return text

    for i, (q, kind, a, b, v) in enumerate(kept):
        if kind == "var":
            val = subst(str(v))
            at = f"{o} + {a}" if a else o
            text = f"{w}[{at}] = {val}" if b == 1 else f"{c.use('P' + _UFMT[b])}({w}, {at}, {val})"
            out.append((q, text, None, (index[i], a, b, val)))
            continue
        rhs = _single(b, a)
        if rhs is None:
            flush(q, _reads(b, None))
        else:
            rhs = subst(rhs)
        # a pending value that reads the register written here is written out first
        flush(q, {r for r, e in pending.items() if _count(e, a)} | {a})
        if rhs is None:
            out.extend((q, s_, a, None) for s_ in b)
        elif i in fwd:
            pending[a] = rhs
        else:
            out.append((q, f"r{a} = {rhs}", a, None))
    if pending:
        flush(kept[-1][0], set(pending))
    return out


#: a span with at least this many pieces (constant runs and variable fields) is one pack_into
PACK_PIECES = 2


def _final_bytes(t: Any, ind: int, items: list[tuple[int, str, Any, Any, Any]], last: dict[int, int],
                 deferred: dict[int, tuple[int, str]], w: str, o: str, pc: int) -> None:
    """The bytes whose last writer is a constant store or a deferred variable store: per contiguous
    span, one ``struct.pack_into`` of the constant runs (``Ns``) and the fields when the span has a
    field and at least PACK_PIECES pieces, else a slice write per constant run and a store per field."""
    add = t.src.add
    c = t.c
    # byte -> ("c", value) | ("v", item index)
    final: dict[int, tuple[str, int]] = {}
    for x, i in last.items():
        _q, kind, off, _size, v = items[i]
        if kind == "const":
            final[x] = ("c", (v >> (8 * (x - off))) & 0xFF)
        elif i in deferred:
            final[x] = ("v", i)
    offs = sorted(final)
    k = 0
    while k < len(offs):
        j = k
        while j + 1 < len(offs) and offs[j + 1] == offs[j] + 1:
            j += 1
        lo, hi = offs[k], offs[j] + 1
        k = j + 1
        # pieces: ("c", start, bytes) | ("v", start, item index)
        pieces: list[tuple[str, int, Any]] = []
        x = lo
        while x < hi:
            kind, v = final[x]
            if kind == "v":
                pieces.append(("v", x, v))
                x += items[v][3]
                continue
            y = x
            while y < hi and final[y][0] == "c":
                y += 1
            pieces.append(("c", x, bytes(final[z][1] for z in range(x, y))))
            x = y
        at = f"{o} + {lo}" if lo else o
        if len(pieces) >= PACK_PIECES and any(p[0] == "v" for p in pieces):
            fmt = "<" + "".join(f"{len(p[2])}s" if p[0] == "c" else _UFMT[items[p[2]][3]] for p in pieces)
            args = ", ".join(repr(p[2]) if p[0] == "c" else deferred[p[2]][1] for p in pieces)
            add(ind, f"{_packer(t, fmt)}({w}, {at}, {args})", pc)
            continue
        for kind, start, v in pieces:
            at = f"{o} + {start}" if start else o
            if kind == "v":
                size = items[v][3]
                val = deferred[v][1]
                add(ind, f"{w}[{at}] = {val}" if size == 1 else f"{c.use('P' + _UFMT[size])}({w}, {at}, {val})",
                    items[v][0])
            elif len(v) == 1:
                add(ind, f"{w}[{at}] = {v[0]}", pc)
            else:
                add(ind, f"{w}[{at}:{o} + {start + len(v)}] = {v!r}", pc)


def _packer(t: Any, fmt: str) -> str:
    """The name of ``struct.Struct(fmt).pack_into`` among the module's objects (one per format)."""
    extras: dict[str, Any] = t.src.extras
    for name, f in extras.items():
        if name.startswith("SPK") and f.__self__.format == fmt:
            return name
    name = f"SPK{sum(1 for n in extras if n.startswith('SPK'))}"
    extras[name] = struct.Struct(fmt).pack_into
    return name


def emit_store_run(t: Any, ind: int, pcs: list[int]) -> None:
    """Write the run (see the module's docstring); leaves ``t.c`` as the one-by-one translation does."""
    add = t.src.add
    c = t.c
    insns: list[Insn] = t.insns
    base = insns[pcs[0]].dst
    setup, _buf, _o = _addr(c, base, 0, True)
    for line in setup:
        add(ind, line, pcs[0])
    w, o = f"w{base}", f"o{base}"

    # the checked branch, generated on a copy of the state
    saved = (dict(c.consts), dict(c.fpoff), dict(c.cache))
    # items: (pc, kind, a, b, c): ("alu", dst, stmts) | ("var", off, size, expr) | ("const", off, size, value)
    items: list[tuple[int, str, Any, Any, Any]] = []
    maxend = 0
    for q in pcs:
        ins = insns[q]
        if _is_plain_store(ins):
            size = _SIZE[ins.code & 0x18]
            maxend = max(maxend, ins.off + size)
            if ins.code & 0x07 == 0x02:
                items.append((q, "const", ins.off, size, ins.imm & MASK[size]))
            elif ins.src in c.consts:
                items.append((q, "const", ins.off, size, c.consts[ins.src] & MASK[size]))
            else:
                items.append((q, "var", ins.off, size, c.value(ins.src, size, q)))
        else:
            stmts = straight(c, q)
            assert stmts is not None
            c.clobber(ins, q)
            k = c.consts.get(ins.dst)
            items.append((q, "alu", ins.dst, [f"r{ins.dst} = {k}"] if k is not None else stmts, None))
    c.consts, c.fpoff, c.cache = saved

    # per byte, the item that writes it last
    last: dict[int, int] = {}
    for i, (_q, kind, off, size, _v) in enumerate(items):
        if kind != "alu":
            for x in range(off, off + size):
                last[x] = i
    lasts = set(last.values())
    # what must be written: backwards from the registers read after the run
    after = c.live.get(pcs[-1])
    live_after = {r for r in range(10) if after is None or (after >> r) & 1}
    live = set(live_after)
    keep = [False] * len(items)
    for i in range(len(items) - 1, -1, -1):
        _q, kind, a, b, _v = items[i]
        if kind == "var" and i in lasts:
            keep[i] = True
            live |= _reads([str(_v)], None)
        elif kind == "alu" and a in live:
            keep[i] = True
            live.discard(a)
            live |= _reads(b, a)

    add(ind, f"if {o} + {maxend} <= len({w}):", pcs[0])  # w: empty if read-only or unmapped
    index = [i for i in range(len(items)) if keep[i]]
    lines = _forwarded([items[i] for i in index], live_after, w, o, c, index)
    # Lines stay before the final bytes (A) or sink after them (B), each in program order. A store
    # that writes the final value of all its bytes waits for the final bytes (deferred, packed with
    # the constant bytes around it) when no A-line after it writes a register its value reads. An
    # ALU line sinks when no A-line after it or deferred store reads or writes what it writes, and no
    # A-line after it writes what it reads: every line then reads the values it read in order.
    deferred: dict[int, tuple[int, str]] = {}
    a_reads: set[int] = set()
    a_writes: set[int] = set()
    p_reads: set[int] = set()
    before: list[Line] = []
    after_: list[Line] = []
    for ln in reversed(lines):
        q, text, wr, store = ln
        if store is not None:
            i, off, size, val = store
            reads = _reads([val], None)
            if all(last[x] == i for x in range(off, off + size)) and not reads & a_writes:
                deferred[i] = (off, val)
                p_reads |= reads
            else:
                a_reads |= reads
                before.append(ln)
            continue
        assert wr is not None
        reads = _reads([text], wr)
        if wr not in a_reads | a_writes | p_reads and not reads & a_writes:
            after_.append(ln)
        else:
            a_writes.add(wr)
            a_reads |= reads
            before.append(ln)
    for q, text, _wr, _st in reversed(before):
        add(ind + 1, text, q)
    _final_bytes(t, ind + 1, items, last, deferred, w, o, pcs[0])
    for q, text, _wr, _st in reversed(after_):
        add(ind + 1, text, q)

    # otherwise: one by one, as without the run (this also brings the state to the run's end)
    add(ind, "else:")
    for q in pcs:
        stmts = straight(c, q)
        assert stmts is not None
        for s_ in stmts:
            add(ind + 1, s_, q)
        c.clobber(insns[q], q)
