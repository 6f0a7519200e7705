"""One eBPF instruction as Python statements over local registers ``r0``..``r9``.

The statements are ``semantics.py``'s templates with the operands bound, exactly as the
interpreter binds them (``decode.py``), with the mask constants pasted in as literals. Memory
accesses repeat the interpreter's address arithmetic (``regions[a >> 32]``, the offset
``a & 0xFFFFFFFF``), so the same access fails the same way; frame-pointer accesses inside the
current 512-byte frame go straight to the stack views at an index resolved at translation time.

Anything this module does not translate (LD_ABS/LD_IND, may_goto, invalid encodings that the
interpreter turns into traps) is delegated to the interpreter's own closure for that slot, with
the registers written back to the run state around the call, so rare instructions cannot drift.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ....isa.insn import Insn
from ....isa.opcodes import (
    BPF_ADD,
    BPF_ALU,
    BPF_ALU64,
    BPF_ATOMIC,
    BPF_B,
    BPF_CALL,
    BPF_CMPXCHG,
    BPF_DW,
    BPF_END,
    BPF_FETCH,
    BPF_H,
    BPF_IMM,
    BPF_JMP,
    BPF_JMP32,
    BPF_LD,
    BPF_LDX,
    BPF_MEM,
    BPF_MEMSX,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_ST,
    BPF_STX,
    BPF_SUB,
    BPF_W,
    BPF_X,
    BPF_XCHG,
)
from .. import semantics as sem

M64 = sem.M64
M32 = sem.M32
STACK_FRAME = 512
BPF_LOAD_ACQ = 0x100
BPF_STORE_REL = 0x110
SIZE = {BPF_B: 1, BPF_H: 2, BPF_W: 4, BPF_DW: 8}
MASK = {1: 0xFF, 2: 0xFFFF, 4: M32, 8: M64}
_UFMT = {1: "B", 2: "H", 4: "I", 8: "Q"}
_SFMT = {1: "b", 2: "h", 4: "i"}
_VIEW = {8: ("sQ", 3), 4: ("sI", 2), 2: ("sH", 1), 1: ("sB", 0)}
_LITERALS = {"M64": hex(M64), "M32": hex(M32), "SB64": hex(sem.SB64), "SB32": hex(sem.SB32)}
_LIT_RE = re.compile(r"\b(M64|M32|SB64|SB32)\b")


def bind(template: str, d: str, s: str, o: str = "O") -> str:
    """A template with its operands bound and its mask names replaced by literals."""
    out = re.sub(r"\bD\b", d, template)
    out = re.sub(r"\bS\b", s, out)
    out = re.sub(r"\bO\b", o, out)
    return _LIT_RE.sub(lambda m: _LITERALS[m.group(1)], out)


def reg(n: int) -> str:
    return "fp" if n == 10 else f"r{n}"


@dataclass
class Ctx:
    """What translating one function needs: the program, the helpers, the frame and the views used."""

    insns: list[Insn]
    helpers: dict[int, Any]
    ctx_rewrite: bool
    #: the frame's offset in the stack buffer when it is known (the main function: 512), else None
    fo: int | None
    callback_helpers: frozenset[int]
    names: set[str] = field(default_factory=set)
    fallback: bool = False
    #: base registers whose region lookup is kept in the current suite (_addr); the values are unused
    cache: dict[int, list[bool]] = field(default_factory=dict)

    #: registers whose value is known at this point of the suite (mov of a constant, ld_imm64)
    consts: dict[int, int] = field(default_factory=dict)
    #: stack slots promoted to locals (frame offset -> (size, local name)); see promote_stack
    promoted: dict[int, tuple[int, str]] = field(default_factory=dict)
    #: base registers whose region lookup is kept across suites in s<n> (RESET_SLOTS)
    slot_regs: set[int] = field(default_factory=set)
    #: registers known to hold ``fp + k`` (``mov rX, r10`` then adds of constants): rX -> k
    fpoff: dict[int, int] = field(default_factory=dict)
    #: map objects the program holds (``used_maps``): map helpers on them may be called directly
    maps: dict[int, Any] = field(default_factory=dict)
    #: the interpreter's helper functions that have a direct form here (lookup, update)
    direct: dict[int, Any] = field(default_factory=dict)
    #: register intervals before each slot of the current function (ranges.analyse)
    ranges: dict[int, Any] = field(default_factory=dict)
    #: live bits after each slot of the current function (opt.live_out), promoted slot -> its bit
    live: dict[int, int] = field(default_factory=dict)
    slot_bits: dict[int, int] = field(default_factory=dict)
    #: registers whose adds cannot wrap in the loop copy being written (translate: accumulators)
    nowrap_regs: set[int] = field(default_factory=set)
    #: base registers whose region lookup is made before the loop being written (lookup_line)
    hoisted: set[int] = field(default_factory=set)
    #: before each slot, registers whose reads may read the variable they copy (opt.copies,
    #: filtered by translate to the reads written here): register -> variable bit
    copies: dict[int, dict[int, int]] = field(default_factory=dict)
    #: variable bit -> its local (r0..r9, and the promoted slots' k<off>)
    bit_names: dict[int, str] = field(default_factory=dict)

    def src(self, pc: int, r: int) -> str:
        """The local a read of register ``r`` at ``pc`` reads (the one it copies, if known)."""
        v = self.copies.get(pc, {}).get(r)
        return reg(r) if v is None else self.bit_names[v]

    def clobber(self, ins: Insn | None, pc: int | None = None) -> None:
        """Forget the kept region lookups and constants an instruction invalidates (None: all), then
        note the constant it loads, if any."""
        regs = written(ins) if ins is not None else None
        if regs is None:
            self.cache.clear()
            if ins is not None and ins.code == (BPF_JMP | BPF_CALL) and ins.src == 0:
                for r in range(6):  # a helper call keeps r6-r9 (the regions may change: cache dropped)
                    self.consts.pop(r, None)
                    self.fpoff.pop(r, None)
            else:
                self.consts.clear()
                self.fpoff.clear()
            return
        assert ins is not None
        k = const_value(ins, self.insns, self.consts, pc)
        f = fp_value(ins, self.fpoff)
        for r in regs:
            self.cache.pop(r, None)
            self.consts.pop(r, None)
            self.fpoff.pop(r, None)
        if k is not None:
            self.consts[ins.dst] = k
        if f is not None:
            self.fpoff[ins.dst] = f

    def value(self, s: int, size: int, pc: int | None = None) -> str:
        """The value a store of ``size`` bytes writes from register ``s`` (a literal when known)."""
        if s in self.consts:
            return str(self.consts[s] & MASK[size])
        name = reg(s) if pc is None else self.src(pc, s)
        return name if size == 8 else f"({name} & {hex(MASK[size])})"

    def use(self, name: str) -> str:
        self.names.add(name)
        return name


def _stack_index(c: Ctx, off: int, size: int) -> str | None:
    """The view expression of an aligned frame-pointer access inside the current frame, or None."""
    if not -STACK_FRAME <= off <= -size:
        return None
    view, shift = _VIEW[size]
    c.use(view)
    if off % size:
        return None
    if c.fo is not None:
        return f"{view}[{(c.fo + off) >> shift}]"
    return f"{view}[(fo + {off}) >> {shift}]" if shift else f"{view}[fo + {off}]"


def _stack_offset(c: Ctx, off: int) -> str:
    c.use("sB")
    return str(c.fo + off) if c.fo is not None else f"fo + {off}"


#: forget every region lookup kept across suites (at function entry and after every call); a
#: placeholder line, replaced once the registers that keep one are known (translate.build)
RESET_SLOTS = "__reset_slots__"


def _addr(c: Ctx, base: int, off: int, write: bool) -> tuple[list[str], str, str]:
    """(statements, buffer expression, offset expression) of an access at ``base + off``, and the
    read-only check for a write, as decode.py computes them: the region is ``regions[a >> 32]``, the
    offset ``a & 0xFFFFFFFF``. With ``off >= 0`` the region of the base register is looked up once
    and kept in ``g<n>``/``b<n>``/``o<n>`` while the register and the set of regions cannot change
    (until the register is written, a call, or the end of the suite); ``w<n>`` is ``b<n>`` when the
    region is writable and an empty buffer otherwise. That is the exact address's region as long as
    ``o<n> + off`` stays inside it; an access that leaves it (or finds no region: ``NOREG``, or a
    read-only one for a write: ``w<n>`` is empty) raises, and ``guard`` redoes it exactly."""
    name = reg(base)
    if off < 0:
        out = [f"a = {name} + {off}; g = rget(a >> 32); o = a & 0xFFFFFFFF"]
        if write:
            out.append("if not g.writable: readonly(g, a)")
        return out, "g.buf", "o"
    out = []
    if base not in c.cache:
        c.slot_regs.add(base)
        # the lookup is also kept across suites and loop iterations in s<n> (the slot it was made
        # for), redone only when the register points into another slot; every call forgets it
        # (RESET_SLOTS), since a helper may change the set of regions. In a loop where the
        # register cannot leave its slot, the lookup was made once before the loop (hoisted).
        if base not in c.hoisted:
            out.append(lookup_line(c, base))
        out.append(f"o{base} = {name} & 0xFFFFFFFF")
        c.cache[base] = [True]
    return out, f"w{base}" if write else f"b{base}", f"o{base} + {off}" if off else f"o{base}"


_REGS = ", ".join(f"r{i}" for i in range(10))


def lookup_line(c: Ctx, base: int) -> str:
    """Find the region of the slot ``base`` points into, unless it is the one kept in ``s<n>``:
    ``g<n>`` the region, ``b<n>`` its bytes, ``w<n>`` the bytes when writable (else empty), and in
    programs with rewritten context fields ``c<n>``, whether it is the context."""
    name = reg(base)
    line = (f"if {name} >> 32 != s{base}: s{base} = {name} >> 32; g{base} = rget(s{base}, NOREG); "
            f"b{base} = g{base}.buf; w{base} = b{base} if g{base}.writable else EMPTY")
    if c.ctx_rewrite:
        line += f"; c{base} = g{base}.kind is CTX"
    return line


def guard(c: Ctx, pc: int, off: int, setup: list[str], access: list[str]) -> list[str]:
    """``setup`` then ``access``; with ``off >= 0`` (the kept region of the base register), an access
    that does not fit that region is redone by the interpreter's closure for the slot, which uses
    the exact address ``base + off`` (decode.py) and faults there exactly as the interpreter does."""
    if off < 0:
        return setup + access
    c.fallback = True
    return (setup + ["try:"] + [" " + line for line in access] + ["except MISS:",
            f" R[0:11] = ({_REGS}, fp)", f" OPS[{pc}](R)", f" {_REGS} = R[0:10]"])


def load(c: Ctx, d: int, s: int, off: int, size: int, signed: bool, pc: int) -> list[str]:
    sx = " & 0xFFFFFFFFFFFFFFFF" if signed else ""
    fmt = (_SFMT if signed else _UFMT)[size]
    if s == 10 and off in c.promoted:
        name = c.promoted[off][1]
        if not signed:
            return [f"r{d} = {name}"]
        sb = 1 << (8 * size - 1)
        return [f"r{d} = (({name} ^ {sb}) - {sb}) & 0xFFFFFFFFFFFFFFFF"]
    if s == 10 and -STACK_FRAME <= off <= -size:
        idx = None if signed else _stack_index(c, off, size)
        if idx is not None:
            return [f"r{d} = {idx}"]
        return [f"r{d} = {c.use('U' + fmt)}(sB, {_stack_offset(c, off)})[0]{sx}"]
    out, buf, o = _addr(c, s, off, False)
    g = "g" if off < 0 else f"g{s}"
    plain = f"{buf}[{o}]" if size == 1 and not signed else f"{c.use('U' + fmt)}({buf}, {o})[0]"
    if c.ctx_rewrite and not (off >= 0 and s in c.hoisted):  # a hoisted region is not the context
        is_ctx = f"{g}.kind is CTX" if off < 0 else f"c{s}"
        access = f"r{d} = ctx_load({g}, {o}, {size}, {signed}){sx} if {is_ctx} else {plain}{sx}"
    else:
        access = f"r{d} = {plain}{sx}"
    return guard(c, pc, off, out, [access])


def store(c: Ctx, d: int, value: str, off: int, size: int, pc: int) -> list[str]:
    if d == 10 and off in c.promoted:
        return [f"{c.promoted[off][1]} = {value}"]
    if d == 10 and -STACK_FRAME <= off <= -size:
        idx = _stack_index(c, off, size)
        if idx is not None:
            return [f"{idx} = {value}"]
        return [f"{c.use('P' + _UFMT[size])}(sB, {_stack_offset(c, off)}, {value})"]
    out, buf, o = _addr(c, d, off, True)
    access = f"{buf}[{o}] = {value}" if size == 1 else f"{c.use('P' + _UFMT[size])}({buf}, {o}, {value})"
    return guard(c, pc, off, out, [access])


def atomic(c: Ctx, d: int, s: int, off: int, size: int, imm: int, pc: int) -> list[str] | None:
    mask = hex(MASK[size])
    fmt = _UFMT[size]
    u, p = c.use("U" + fmt), c.use("P" + fmt)
    rs = reg(s)
    rmw = sem.ATOMIC_RMW.get(imm & ~BPF_FETCH)
    if imm not in (BPF_CMPXCHG, BPF_XCHG) and rmw is None:
        return None
    out, buf, o = _addr(c, d, off, True)
    # the read comes first: a miss raises before anything is written
    access = [f"old = {u}({buf}, {o})[0]"]
    if imm == BPF_CMPXCHG:
        access += [f"if old == r0 & {mask}: {p}({buf}, {o}, {rs} & {mask})", "r0 = old"]
    elif imm == BPF_XCHG:
        access += [f"{p}({buf}, {o}, {rs} & {mask})", f"{rs} = old"]
    else:
        assert rmw is not None
        access.append(f"{p}({buf}, {o}, ({bind(rmw, 'D', rs, 'old')}) & {mask})")
        if imm & BPF_FETCH:
            access.append(f"{rs} = old")
    return guard(c, pc, off, out, access)


def const_value(ins: Insn, insns: list[Insn], consts: dict[int, int], pc: int | None = None) -> int | None:
    """The value a constant-producing instruction leaves in its destination (mov imm, mov of a known
    register, ld_imm64 of a number), else None."""
    c = ins.code
    cls = c & 0x07
    if ins.dst > 9:
        return None
    if c == 0x18:
        if pc is None or ins.src == BPF_PSEUDO_FUNC or pc + 1 >= len(insns):
            return None
        return ((insns[pc + 1].imm & M32) << 32) | (ins.imm & M32)
    if cls in (BPF_ALU, BPF_ALU64) and c & 0xF0 == 0xB0 and ins.off == 0:
        if c & BPF_X:
            v = consts.get(ins.src)
            if v is None:
                return None
        else:
            v = ins.imm & M64
        return v if cls == BPF_ALU64 else v & M32
    return None


#: |k| bound for fp + k written without a wrap check: fp is a kernel-half address at least 2**63 and
#: below 2**64 - 2**32 (memory.py), so fp + k stays in [0, 2**64) exactly as (fp + k) & M64 does
FP_SPAN = 1 << 31


def fp_value(ins: Insn, fpoff: dict[int, int]) -> int | None:
    """k when the instruction leaves ``fp + k`` in its destination (``mov rX, r10``; ``add``/``sub``
    of an immediate to a register holding ``fp + k``), else None."""
    c = ins.code
    if ins.dst > 9 or c & 0x07 != BPF_ALU64:
        return None
    op = c & 0xF0
    if op == 0xB0 and c & BPF_X and ins.src == 10 and ins.off == 0:
        return 0
    if op in (BPF_ADD, BPF_SUB) and not c & BPF_X and ins.dst in fpoff:
        k = fpoff[ins.dst] + (ins.imm if op == BPF_ADD else -ins.imm)
        return k if -FP_SPAN <= k <= FP_SPAN else None
    return None


def written(ins: Insn) -> tuple[int, ...] | None:
    """Registers an instruction writes (None: any, or the regions may change: calls and the rest)."""
    cls = ins.code & 0x07
    if cls in (BPF_ALU, BPF_ALU64, BPF_LDX) or ins.code == 0x18:
        return (ins.dst,)
    if cls == BPF_ST or cls == BPF_STX and ins.code & 0xE0 == BPF_MEM:
        return ()
    if cls == BPF_STX and ins.code & 0xE0 == BPF_ATOMIC:
        if ins.imm == BPF_LOAD_ACQ:
            return (ins.dst,)
        if ins.imm == BPF_STORE_REL:
            return ()
        return (0, ins.src) if ins.imm == BPF_CMPXCHG else (ins.src,) if ins.imm & BPF_FETCH else ()
    return None


def alu(ins: Insn, fpoff: dict[int, int] | None = None, nowrap: bool = False, sname: str | None = None
        ) -> list[str] | None:
    """Statements for an ALU instruction; ``nowrap``: its exact result is known to stay below 2**64
    (ranges.no_wrap), so a 64-bit add/sub needs no wrap check and a mul/lsh no mask."""
    c, d, s, off, imm = ins.code, ins.dst, ins.src, ins.off, ins.imm
    cls = c & 0x07
    if d > 9 or s > 10:
        return None
    op = c & 0xF0
    x = bool(c & BPF_X)
    if op == BPF_END:
        stmt = sem.END.get((cls == BPF_ALU64, 1 if x else 0, imm))
        return None if stmt is None else [bind(stmt, f"r{d}", "0")]
    k = off if op in (0x30, 0x90, 0xB0) else 0
    stmt = (sem.ALU64 if cls == BPF_ALU64 else sem.ALU32).get((op, k))
    if stmt is None:
        return None
    src = (sname or reg(s)) if x else str(imm & M64 if cls == BPF_ALU64 else imm & M32)
    if cls == BPF_ALU64 and op in (BPF_ADD, BPF_SUB):
        if fpoff is not None and not x:
            fk = fp_value(ins, fpoff)
            if fk is not None:
                return [f"r{d} = fp + {fk}" if fk >= 0 else f"r{d} = fp - {-fk}"]
        return _add_sub(d, src, op == BPF_SUB, None if x else imm, nowrap)
    if nowrap and cls == BPF_ALU64 and op == 0x20:
        return [f"r{d} = r{d} * {src}"]
    if nowrap and cls == BPF_ALU64 and op == 0x60 and not x:
        return [f"r{d} = r{d} << {imm & 63}"]
    return [bind(stmt, f"r{d}", src)]


def _add_sub(d: int, src: str, sub: bool, imm: int | None, nowrap: bool = False) -> list[str]:
    """64-bit add/sub without a big-int AND per instruction: both operands are below 2**64, so the
    exact sum wraps at most once (equal to ``semantics.ALU64``'s ``(D + S) & M64``, checked by the
    equivalence tests). An immediate that is negative as s32 is added as a subtraction."""
    if imm is not None and imm < 0:
        sub = not sub
        src = str(-imm)
    if nowrap:
        return [f"r{d} = r{d} {'-' if sub else '+'} {src}"]
    if sub:
        return [f"r{d} = r{d} - {src}", f"if r{d} < 0: r{d} += 0x10000000000000000"]
    return [f"r{d} = r{d} + {src}", f"if r{d} > 0xffffffffffffffff: r{d} -= 0x10000000000000000"]


def condition(ins: Insn, dname: str | None = None, sname: str | None = None) -> str | None:
    """The condition of a conditional jump, or None (``dname``/``sname``: the locals to read)."""
    c, d, s, imm = ins.code, ins.dst, ins.src, ins.imm
    if d > 10 or s > 10:
        return None
    cls = c & 0x07
    cond = (sem.JMP64 if cls == BPF_JMP else sem.JMP32).get(c & 0xF0)
    if cond is None:
        return None
    src = (sname or reg(s)) if c & BPF_X else str(imm & M64 if cls == BPF_JMP else imm & M32)
    return bind(cond, dname or reg(d), src)


def straight(c: Ctx, pc: int) -> list[str] | None:
    """Statements for a non-control-flow instruction, or None (the interpreter's closure runs it)."""
    insns = c.insns
    ins = insns[pc]
    code, d, s, off, imm = ins.code, ins.dst, ins.src, ins.off, ins.imm
    cls = code & 0x07
    if d > 10 or s > 10:
        return None
    if cls in (BPF_ALU, BPF_ALU64):
        from .ranges import no_wrap

        acc = ins.dst in c.nowrap_regs and ins.code in (0x07, 0x0F) and (ins.code == 0x0F or ins.imm >= 0)
        return alu(ins, c.fpoff, acc or no_wrap(ins, c.ranges.get(pc)), c.src(pc, s) if code & BPF_X else None)
    size = SIZE[code & 0x18]
    mode = code & 0xE0
    if cls == BPF_LD:
        if mode == BPF_IMM and code & 0x18 == BPF_DW and pc + 1 < len(insns) and d <= 9:
            if s == BPF_PSEUDO_FUNC:
                tgt = pc + imm + 1
                if not 0 <= tgt < len(insns):
                    return None
                return [f"r{d} = {sem.FUNC_ADDR_BASE + tgt}"]
            return [f"r{d} = {((insns[pc + 1].imm & M32) << 32) | (imm & M32)}"]
        return None
    if cls == BPF_LDX:
        if d == 10 or mode not in (BPF_MEM, BPF_MEMSX) or (mode == BPF_MEMSX and size == 8):
            return None
        return load(c, d, s, off, size, mode == BPF_MEMSX, pc)
    if cls == BPF_ST:
        if mode != BPF_MEM:
            return None
        return store(c, d, str(imm & MASK[size]), off, size, pc)
    if cls == BPF_STX:
        if mode == BPF_MEM:
            return store(c, d, c.value(s, size, pc), off, size, pc)
        if mode == BPF_ATOMIC:
            if imm == BPF_LOAD_ACQ:
                return None if d == 10 else load(c, d, s, off, size, False, pc)
            if imm == BPF_STORE_REL:
                return store(c, d, c.value(s, size), off, size, pc)
            if size not in (4, 8) or s == 10:
                return None
            return atomic(c, d, s, off, size, imm, pc)
    return None


def helper_call(c: Ctx, pc: int) -> list[str] | None:
    """``call helper``: the helper function bound as a constant; callback helpers see the run state."""
    ins = c.insns[pc]
    if ins.code != (BPF_JMP | BPF_CALL) or ins.src != 0 or ins.imm not in c.helpers:
        return None
    direct = _direct_map_call(c, pc, ins.imm)
    if direct is not None:
        return direct
    name = c.use(f"H{ins.imm}")
    call = f"r0 = {name}(env, r1, r2, r3, r4, r5) & 0xFFFFFFFFFFFFFFFF"
    if ins.imm in c.callback_helpers:
        # the interpreter runs the callback on the run state: frame pointer, budget, frame depth
        pad = "R[12][:] = PAD[:depth]; " if c.fo is None else ""
        regs = ", ".join(f"r{i}" for i in range(10))
        return [f"R[0:11] = ({regs}, fp); R[13] = b; {pad}{call}", "b = R[13]" + ("; R[12].clear()" if c.fo is None else "")]
    return [call]


def _frame_bytes(c: Ctx, r: int, n: int) -> str | None:
    """``bytes(...)`` of ``n`` stack bytes at register ``r`` when it holds ``fp + k`` inside the frame:
    what the helpers' ``_read`` returns for such a pointer."""
    k = c.fpoff.get(r)
    if k is None or not (-STACK_FRAME <= k and k + n <= 0) or c.fo is None:
        return None
    c.use("sB")
    return f"bytes(sB[{c.fo + k}:{c.fo + k + n}])"


def _direct_map_call(c: Ctx, pc: int, hid: int) -> list[str] | None:
    """bpf_map_lookup_elem / bpf_map_update_elem on a map the program holds, with the key (and value)
    on the stack: the map's program side called directly, as the helper would call it (folded map
    pointer and helper dispatch). Only when the helper is the interpreter's own function."""
    if hid not in c.direct or c.helpers.get(hid) is not c.direct[hid]:
        return None
    addr = c.consts.get(1)
    if addr is None:
        return None
    m = c.maps.get(addr >> 32)
    if m is None:
        return None
    key = _frame_bytes(c, 2, int(m.key_size))
    if key is None:
        return None
    name = c.use(f"M{addr >> 32}")
    if hid == 1:
        return [f"r0 = int({name}.prog_lookup({key}, env.cpu) or 0) & 0xFFFFFFFFFFFFFFFF"]
    value = _frame_bytes(c, 3, int(m.value_size))
    if value is None:
        return None
    return [f"r0 = int({name}.prog_update({key}, {value}, r4, env.cpu)) & 0xFFFFFFFFFFFFFFFF"]


def promote_stack(insns: list[Insn], helpers: dict[int, Any], callback_helpers: frozenset[int]
                  ) -> dict[int, tuple[int, str]]:
    """The frame slots of a single-function program that can live in locals: the frame pointer never
    escapes (it is only ever the base of in-frame, aligned loads and stores, or compared), nothing
    else reads the stack (no tail call, no callback helper, nothing the interpreter's closures run),
    and every access to the slot has the same size and overlaps no other access. The slots are read
    from the stack at entry and written back at exit and on a fault, so the stack's bytes afterwards
    are the interpreter's."""
    accesses: dict[int, set[int]] = {}
    pc = 0
    n = len(insns)
    while pc < n:
        ins = insns[pc]
        c, d, s = ins.code, ins.dst, ins.src
        cls = c & 0x07
        if d > 10 or s > 10:
            return {}
        if c == 0x18:
            pc += 2
            continue
        if cls in (BPF_ALU, BPF_ALU64):
            if d == 10 or (c & BPF_X and s == 10):
                return {}
        elif cls in (BPF_JMP, BPF_JMP32):
            op = c & 0xF0
            if op == BPF_CALL:
                if s != 0 or c & BPF_X or ins.imm not in helpers or ins.imm in callback_helpers or ins.imm == 12:
                    return {}
            elif op == 0xE0:
                return {}
        elif cls == BPF_LDX:
            if c & 0xE0 not in (BPF_MEM, BPF_MEMSX):
                return {}
            if s == 10:
                size = SIZE[c & 0x18]
                if not -STACK_FRAME <= ins.off <= -size or ins.off % size:
                    return {}
                accesses.setdefault(ins.off, set()).add(size)
        elif cls in (BPF_ST, BPF_STX):
            if c & 0xE0 != BPF_MEM or (cls == BPF_STX and s == 10):
                return {}
            if d == 10:
                size = SIZE[c & 0x18]
                if not -STACK_FRAME <= ins.off <= -size or ins.off % size:
                    return {}
                accesses.setdefault(ins.off, set()).add(size)
        else:
            return {}
        pc += 1
    out: dict[int, tuple[int, str]] = {}
    spans = sorted((off, max(sz)) for off, sz in accesses.items())
    for i, (off, size) in enumerate(spans):
        if len(accesses[off]) != 1:
            continue
        lo_ok = i == 0 or spans[i - 1][0] + spans[i - 1][1] <= off
        hi_ok = i + 1 == len(spans) or off + size <= spans[i + 1][0]
        if lo_ok and hi_ok:
            out[off] = (size, f"k{-off}")
    return out


def is_local_call(ins: Insn) -> bool:
    return ins.code == (BPF_JMP | BPF_CALL) and ins.src == BPF_PSEUDO_CALL


def is_may_goto(ins: Insn) -> bool:
    return ins.code == (BPF_JMP | 0xE0)


def is_cond_jump(ins: Insn) -> bool:
    cls = ins.code & 0x07
    return cls in (BPF_JMP, BPF_JMP32) and (ins.code & 0xF0) not in (0x00, BPF_CALL, 0x90, 0xE0)


__all__ = ["Ctx", "alu", "bind", "condition", "helper_call", "is_cond_jump", "is_local_call", "is_may_goto",
           "straight", "BPF_JMP32"]
