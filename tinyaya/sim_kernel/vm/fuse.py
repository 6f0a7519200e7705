"""Superinstructions: one closure for a straight run of ALU instructions and the jump that ends it.

The interpreter dispatches one closure per instruction; most of its time per instruction is that
dispatch. A run of instructions that cannot fault (ALU and ALU64 operations, byte swaps,
``ld_imm64`` constants), optionally ended by a conditional jump or ``ja``, is turned into a single
closure whose body is the same ``semantics.py`` statements, one after the other, with literal
register numbers and immediates. Runs stop before every jump target, so a branch into a block
starts a fused closure too; the single-instruction closures stay in place for every other slot.

Semantics are unchanged by construction: the statements are the ones the single closures run, in
the same order, on the same register file; none of them can fault; a back-edge spends the budget
exactly as the unfused jump does and reports its own pc if the budget runs out.
"""
from __future__ import annotations

import struct
from typing import Any

from ...isa.insn import Insn
from ...isa.opcodes import (
    BPF_CALL,
    BPF_EXIT,
    BPF_JA,
    BPF_JCOND,
    BPF_JMP,
    BPF_JMP32,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    LD_IMM64,
)
from ..memory import RegionKind
from . import semantics as sem
from .decode import Op, _factory
from .fault import VmTrap

M64 = sem.M64


def _alu_stmt(ins: Insn) -> str | None:
    """The statement of an ALU instruction with literal operands, or None if it is not one that fuses."""
    if ins.dst > 9 or ins.src > 10:
        return None
    return sem.alu_statement(ins.code, ins.dst, ins.src, ins.off, ins.imm)


def _jump_tail(ins: Insn, pc: int) -> tuple[str, int] | None:
    """(source, target) for a conditional jump or ja that may end a run."""
    c = ins.code
    cls = c & 0x07
    if cls not in (BPF_JMP, BPF_JMP32):
        return None
    op = c & 0xF0
    if op in (BPF_CALL, BPF_EXIT, BPF_JCOND) or ins.dst > 10 or ins.src > 10:
        return None
    if op == BPF_JA:
        tgt = pc + (ins.imm if cls == BPF_JMP32 else ins.off) + 1
        return (_taken(tgt, pc, "  "), tgt)
    cond = sem.jump_condition(c, ins.dst, ins.src, ins.imm)
    if cond is None:
        return None
    tgt = pc + ins.off + 1
    return (f"  if {cond}:\n{_taken(tgt, pc, '   ')}", tgt)


def _taken(tgt: int, pc: int, indent: str) -> str:
    if tgt <= pc:  # a back-edge spends the budget, as the unfused jump does
        return f"{indent}R[13] -= 1\n{indent}if R[13] < 0: budget({pc})\n{indent}return {tgt}\n"
    return f"{indent}return {tgt}\n"


def _budget(pc: int) -> None:
    raise VmTrap("runtime budget of back-edges exhausted (the program does not terminate)", pc=pc)


def jump_targets(insns: list[Insn]) -> set[int]:
    """Every slot a jump or a local call can land on (the starts of basic blocks)."""
    out: set[int] = set()
    for pc, ins in enumerate(insns):
        cls = ins.code & 0x07
        op = ins.code & 0xF0
        if cls in (BPF_JMP, BPF_JMP32):
            if op == BPF_CALL:
                if ins.src == BPF_PSEUDO_CALL:
                    out.add(pc + ins.imm + 1)
                out.add(pc + 1)
            elif op == BPF_JA:
                out.add(pc + (ins.imm if cls == BPF_JMP32 else ins.off) + 1)
            elif op != BPF_EXIT:
                out.add(pc + ins.off + 1)
                out.add(pc + 1)
        elif ins.code == LD_IMM64 and ins.src == BPF_PSEUDO_FUNC:
            out.add(pc + ins.imm + 1)
    return out


_SIZE = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}
_FMT = {1: "B", 2: "H", 4: "I", 8: "Q"}
_VIEW = {8: (16, 3), 4: (17, 2), 2: (18, 1), 1: (14, 0)}


class _Run:
    """The statements of one run and the base registers its memory accesses use."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.written: set[int] = set()
        #: base register -> [lowest offset, highest end, stores?, loads?]
        self.bases: dict[int, list[Any]] = {}

    def mem(self, ins: Insn, ctx_rewrite: bool) -> str | None:
        """The statement of a load or store, or None if it does not fuse here."""
        cls = ins.code & 0x07
        mode = ins.code & 0xE0
        size = _SIZE[ins.code & 0x18]
        if cls == 0x01 and mode in (0x60, 0x80):  # LDX MEM / MEMSX
            base, dst, signed = ins.src, ins.dst, mode == 0x80
            if dst > 9 or base > 10 or (signed and size == 8) or base in self.written or dst in self.bases:
                return None
            sx = " & M64" if signed else ""
            if base == 10:
                if not -512 <= ins.off <= -size:
                    return None
                if not signed and ins.off % size == 0:
                    view, shift = _VIEW[size]
                    return f"R[{dst}] = R[{view}][((R[10] + {ins.off}) & 0xFFFFFFFF) >> {shift}]"
                return f"R[{dst}] = U{'s' if signed else ''}{size}(R[14], (R[10] + {ins.off}) & 0xFFFFFFFF)[0]{sx}"
            self._base(base, ins.off, size, store=False)
            if size == 1 and not signed:
                return f"R[{dst}] = b{base}[o{base} + {ins.off}]"
            return f"R[{dst}] = U{'s' if signed else ''}{size}(b{base}, o{base} + {ins.off})[0]{sx}"
        if cls in (0x02, 0x03) and mode == 0x60:  # ST / STX MEM
            base = ins.dst
            if base > 10 or base in self.written or (cls == 0x03 and ins.src > 10):
                return None
            mask = (1 << (8 * size)) - 1
            if cls == 0x02:
                val = str(ins.imm & mask)
            else:
                val = f"R[{ins.src}]" if size == 8 else f"(R[{ins.src}] & {mask})"
            if base == 10:
                if not -512 <= ins.off <= -size:
                    return None
                if ins.off % size == 0:
                    view, shift = _VIEW[size]
                    return f"R[{view}][((R[10] + {ins.off}) & 0xFFFFFFFF) >> {shift}] = {val}"
                return f"P{size}(R[14], (R[10] + {ins.off}) & 0xFFFFFFFF, {val})"
            self._base(base, ins.off, size, store=True)
            if size == 1:
                return f"b{base}[o{base} + {ins.off}] = {val}"
            return f"P{size}(b{base}, o{base} + {ins.off}, {val})"
        return None

    def _base(self, reg: int, off: int, size: int, store: bool) -> None:
        b = self.bases.setdefault(reg, [off, off + size, False, False])
        b[0] = min(b[0], off)
        b[1] = max(b[1], off + size)
        b[2] = b[2] or store
        b[3] = b[3] or not store

    def prologue(self, ctx_rewrite: bool) -> str:
        """Resolve each base register's region once; if any access could fault, single-step instead."""
        out = []
        for reg, (lo, hi, store, load) in sorted(self.bases.items()):
            cond = [f"g{reg} is None", f"(a{reg} & 0xFFFFFFFF) + {lo} < 0",
                    f"(a{reg} & 0xFFFFFFFF) + {hi} > g{reg}.size"]
            if store:
                cond.append(f"not g{reg}.writable")
            if load and ctx_rewrite:
                cond.append(f"g{reg}.kind is CTX")
            out.append(f"  a{reg} = R[{reg}]\n  g{reg} = rget(a{reg} >> 32)\n"
                       f"  if {' or '.join(cond)}: return single(R)\n"
                       f"  b{reg} = g{reg}.buf\n  o{reg} = a{reg} & 0xFFFFFFFF\n")
        return "".join(out)


_STRUCTS = {f"{p}{sx}{n}": getattr(struct.Struct("<" + (f.lower() if sx else f)), fn)
            for n, f in _FMT.items() for sx in ("", "s") for p, fn in (("U", "unpack_from"), ("P", "pack_into"))}


def fuse(insns: list[Insn], code: list[Op], regions: dict[int, Any] | None = None, ctx_rewrite: bool = True) -> int:
    """Replace the closure at the start of every fusable run in ``code``; returns how many were fused.

    With ``regions`` (the address space's region table), loads and stores join runs too: the run
    looks up each base register's region once and falls back to the single-instruction closure
    whenever one of its accesses could fault, so a fault is still reported by the instruction
    that makes it."""
    n = len(insns)
    targets = jump_targets(insns)
    singles = list(code)  # the one-instruction closures, for exits at the end of a run
    fused = 0
    pc = 0
    while pc < n:
        start = pc
        run = _Run()
        count = 0
        while pc < n and (pc == start or pc not in targets):
            ins = insns[pc]
            if ins.code == LD_IMM64 and pc + 1 < n and ins.dst <= 9:
                if ins.dst in run.bases:
                    break
                if ins.src == BPF_PSEUDO_FUNC:
                    value = sem.FUNC_ADDR_BASE + pc + ins.imm + 1
                else:
                    value = ((insns[pc + 1].imm & sem.M32) << 32) | (ins.imm & sem.M32)
                run.lines.append(f"  R[{ins.dst}] = {value}\n")
                run.written.add(ins.dst)
                pc += 2
                count += 1
                continue
            stmt = _alu_stmt(ins)
            if stmt is not None:
                if ins.dst in run.bases:
                    break
                run.written.add(ins.dst)
            elif regions is not None:
                stmt = run.mem(ins, ctx_rewrite)
                if stmt is not None and ins.code & 0x07 == 0x01:
                    run.written.add(ins.dst)
            if stmt is None:
                break
            run.lines.append(f"  {stmt}\n")
            pc += 1
            count += 1
        tail = ""
        if pc < n and (pc == start or pc not in targets):
            jt = _jump_tail(insns[pc], pc)
            if jt is not None and 0 <= jt[1] < n:
                tail = jt[0]
                pc += 1
                count += 1
            elif insns[pc].code == 0x95 and count:
                tail = f"  return single_at[{pc}](R)\n"  # exit (or return to the caller's frame)
                pc += 1
                count += 1
        if count >= 2:
            src = ("def make(budget, single, rget, CTX, U1, U2, U4, U8, Us1, Us2, Us4, P1, P2, P4, P8, single_at):\n"
                   " def op(R):\n" + run.prologue(ctx_rewrite) + "".join(run.lines) + tail +
                   f"  return {pc}\n return op\n")
            S = _STRUCTS
            code[start] = _factory(src)(_budget, code[start], regions.get if regions is not None else None,
                                        RegionKind.CTX, S["U1"], S["U2"], S["U4"], S["U8"], S["Us1"], S["Us2"],
                                        S["Us4"], S["P1"], S["P2"], S["P4"], S["P8"], singles)
            fused += 1
        if pc == start:
            pc += 1
    return fused


__all__ = ["fuse", "jump_targets"]
