"""The control-flow shape the compiled tier needs: functions, block leaders and loop regions.

A program is split into functions at its bpf-to-bpf call targets (``BPF_PSEUDO_CALL``, the
verifier's ``add_subprog``); each function becomes one Python function. Inside a function, every
back-edge ``pc -> t`` (``t <= pc``) spans a loop region ``[t, pc]``; overlapping regions are merged
until they nest, and each region becomes a ``while True:`` whose body is a sequence of blocks
guarded by ``if pc == leader:``. Falling through a guard costs one comparison, a back-edge is a
``continue``, leaving a region is a ``break``.

A program whose control flow does not fit (a jump from one function into another, a function
that runs off its end into the next, ``callx`` whose target is only known at run time, loops
nested deeper than Python's block limit) is reported as not compilable and keeps running in the
interpreter.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ....isa.insn import Insn
from ....isa.opcodes import (
    BPF_CALL,
    BPF_EXIT,
    BPF_JA,
    BPF_JCOND,
    BPF_JMP,
    BPF_JMP32,
    BPF_PSEUDO_CALL,
    BPF_X,
    LD_IMM64,
)

#: Python allows 20 statically nested blocks (loops and try); one is the fault handler's try
MAX_REGION_DEPTH = 16


class NotCompilable(Exception):  # noqa: N818 - a verdict, not an error: the interpreter runs the program
    """The program's control flow does not fit the compiled tier; the reason is the message."""


def width(insns: list[Insn], pc: int) -> int:
    """Slots taken by the instruction at ``pc`` (2 for a complete ld_imm64)."""
    return 2 if insns[pc].code == LD_IMM64 and pc + 1 < len(insns) else 1


def jump_target(ins: Insn, pc: int) -> int | None:
    """Where a jump goes (None for calls, exits and non-jumps)."""
    cls = ins.code & 0x07
    if cls not in (BPF_JMP, BPF_JMP32):
        return None
    op = ins.code & 0xF0
    if op in (BPF_CALL, BPF_EXIT):
        return None
    if op == BPF_JA:
        return pc + (ins.imm if cls == BPF_JMP32 else ins.off) + 1
    if op == BPF_JCOND and cls == BPF_JMP32:
        return None
    return pc + ins.off + 1


def is_exit(ins: Insn) -> bool:
    return ins.code == (BPF_JMP | BPF_EXIT)


def is_uncond(ins: Insn) -> bool:
    """ja/gotol and exit: control never falls through."""
    cls = ins.code & 0x07
    return cls in (BPF_JMP, BPF_JMP32) and (ins.code & 0xF0) == BPF_JA or is_exit(ins)


def local_call_target(ins: Insn, pc: int) -> int | None:
    if ins.code == (BPF_JMP | BPF_CALL) and ins.src == BPF_PSEUDO_CALL:
        return pc + ins.imm + 1
    return None


@dataclass
class Region:
    """A loop region ``[lo, hi]`` (inclusive slot indices) and the regions nested in it."""

    lo: int
    hi: int
    children: list[Region] = field(default_factory=list)
    depth: int = 0

    def contains(self, pc: int) -> bool:
        return self.lo <= pc <= self.hi


@dataclass
class Function:
    """One function of the program: slots ``[start, end)``, its leaders and its region tree."""

    start: int
    end: int
    leaders: set[int]
    top: Region
    #: jumps whose target is outside the range of the instructions (decode turns them into traps)
    bad_targets: set[int] = field(default_factory=set)
    #: every slot some jump of this function lands on
    targets: set[int] = field(default_factory=set)


def _regions(edges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge back-edge intervals into a laminar family (any two nest or are disjoint)."""
    iv = sorted({(t, s) for s, t in edges})
    changed = True
    while changed:
        changed = False
        out: list[tuple[int, int]] = []
        for lo, hi in sorted(iv):
            merged = False
            for i, (a, b) in enumerate(out):
                overlap = lo <= b and a <= hi
                nested = (a <= lo and hi <= b) or (lo <= a and b <= hi)
                if overlap and not nested:
                    out[i] = (min(a, lo), max(b, hi))
                    merged = changed = True
                    break
            if not merged:
                out.append((lo, hi))
        iv = sorted(set(out))
    return iv


def _tree(top: Region, intervals: list[tuple[int, int]]) -> None:
    stack = [top]
    for lo, hi in sorted(intervals, key=lambda x: (x[0], -x[1])):
        if (lo, hi) == (top.lo, top.hi):
            continue
        while not (stack[-1].lo <= lo and hi <= stack[-1].hi):
            stack.pop()
        r = Region(lo, hi, depth=stack[-1].depth + 1)
        if r.depth > MAX_REGION_DEPTH:
            raise NotCompilable("loops nested too deeply")
        stack[-1].children.append(r)
        stack.append(r)


def analyse(insns: list[Insn]) -> list[Function]:
    """The functions of ``insns`` with their leaders and loop regions, or NotCompilable."""
    n = len(insns)
    if n == 0:
        raise NotCompilable("empty program")
    entries = {0}
    pc = 0
    while pc < n:
        ins = insns[pc]
        if ins.code == (BPF_JMP | BPF_CALL | BPF_X):
            raise NotCompilable("callx")
        t = local_call_target(ins, pc)
        if t is not None and 0 <= t < n:
            entries.add(t)
        pc += width(insns, pc)
    starts = sorted(entries)
    funcs: list[Function] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n
        funcs.append(_function(insns, start, end))
    return funcs


def _function(insns: list[Insn], start: int, end: int) -> Function:
    n = len(insns)
    leaders = {start}
    targets: set[int] = set()
    edges: list[tuple[int, int]] = []
    bad: set[int] = set()
    pc = start
    prev_falls = True
    while pc < end:
        ins = insns[pc]
        w = width(insns, pc)
        if pc + w > end and w == 2:
            raise NotCompilable("ld_imm64 split across functions")
        t = jump_target(ins, pc)
        if t is not None:
            if not 0 <= t < n:
                bad.add(pc)
            elif not start <= t < end:
                raise NotCompilable(f"jump from pc {pc} into another function (to {t})")
            else:
                leaders.add(t)
                targets.add(t)
                if t <= pc:
                    edges.append((pc, t))
            leaders.add(pc + w)
        elif is_exit(ins):
            leaders.add(pc + w)
        prev_falls = not is_uncond(ins) and pc not in bad
        pc += w
    if prev_falls:
        raise NotCompilable("a function runs off its end")
    leaders = {x for x in leaders if start <= x < end}
    top = Region(start, end - 1)
    _tree(top, _regions(edges))
    for r in _walk(top):
        leaders.add(r.lo)
        if r.hi + 1 < end:
            leaders.add(r.hi + 1)
    return Function(start, end, leaders, top, bad, targets)


def _walk(r: Region) -> list[Region]:
    out = [r]
    for c in r.children:
        out.extend(_walk(c))
    return out


def innermost(top: Region, pc: int) -> Region:
    r = top
    while True:
        for c in r.children:
            if c.contains(pc):
                r = c
                break
        else:
            return r
