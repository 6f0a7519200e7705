"""eBPF program -> Python source -> one code object per program, built once and cached.

Every function of the program (cfg.py) becomes a Python function over local registers. The main
function is ``f_0(env, R, r0, ..., r9, b) -> r0``; a bpf-to-bpf callee is
``f_<pc>(env, R, r0, ..., r9, depth, fo, b) -> (r0, ..., r5, b)``: r6-r9 and r10 are its own locals,
so they come back unchanged to the caller, as the interpreter's frame restore makes them. ``fo`` is
the frame's offset in the 4 KiB per-run stack (512 per frame, as ``R[10] += STACK_FRAME``), ``b``
the run's back-edge budget, spent on every taken backward jump exactly as the interpreter spends it.

Faults: each function has one ``try``; its handler writes the locals back to the run state and
asks the interpreter's own ``Vm._fault`` for the ``BpfFault``, with the pc found from the line
the exception came from (``LINES``), so message, pc and address are the interpreter's.
"""
from __future__ import annotations

import itertools
import operator
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from ....isa.insn import Insn
from ...memory import Region as MemRegion
from ...memory import RegionKind
from .. import semantics as sem
from . import stores
from .cfg import Function, Region, analyse, innermost, is_exit, jump_target, width
from .indvar import analyse as closed_form
from .insns import (
    RESET_SLOTS,
    Ctx,
    alu,
    condition,
    fp_value,
    helper_call,
    is_cond_jump,
    is_local_call,
    is_may_goto,
    lookup_line,
    promote_stack,
    straight,
    written,
)
from .opt import copies, dead, live_out
from .ranges import analyse as analyse_ranges
from .ranges import no_wrap
from .unroll import unrolled

MAX_CALL_FRAMES = 8
_SIZE = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
_REGS = ", ".join(f"r{i}" for i in range(10))
_BUDGET = "runtime budget of back-edges exhausted (the program does not terminate)"


@dataclass
class Source:
    """The generated module: its lines, and which line belongs to which instruction slot."""

    lines: list[str]
    line_pc: dict[int, int]
    names: set[str]
    fallback: bool
    #: objects the code refers to by name (the closed forms of counted loops, CF<lo>)
    extras: dict[str, Any] = field(default_factory=dict)

    def add(self, indent: int, text: str, pc: int | None = None) -> None:
        self.lines.append(" " * indent + text)
        if pc is not None:
            self.line_pc[len(self.lines)] = pc

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class _Emitter:
    """Writes one function: regions as ``while True:`` loops, blocks as suites guarded by
    ``if pc == leader:``. A block that only its predecessor falls into (not a jump target, no
    forward jump skips it) continues its predecessor's suite without a guard; ``pcv`` is the
    value ``pc`` holds in the code being written, so ``pc`` is only assigned when it changes."""

    def __init__(self, src: Source, fn: Function, c: Ctx, main: bool) -> None:
        self.src = src
        self.fn = fn
        self.c = c
        self.main = main
        self.insns = c.insns
        #: the function uses may_goto: its counter lives in the local ``mg``
        self.mg = any(is_may_goto(c.insns[pc]) for pc in range(fn.start, fn.end))
        #: the loop region being written as ``for _ in it<lo>:`` (its back-edge spends no ``b``)
        self.iter_region: Region | None = None
        #: (register, expression): the next conditional jump reads the expression for the register
        self.pending: tuple[int, str] | None = None
        #: the may_goto at the head of the loop being written, spent by its iterator (may_goto_head)
        self.mg_skip: int | None = None

    # -- jumps ------------------------------------------------------------------------------------------
    def goto(self, ind: int, frm: int, pcv: int, tgt: int, back: bool) -> bool:
        """Control goes from the jump at ``frm`` to ``tgt``; True if the code written leaves the
        sequence (``continue``/``break``), False if it only set ``pc`` for a later guard."""
        add = self.src.add
        here = innermost(self.fn.top, frm)
        if back and here is self.iter_region:
            pass  # the region's budget iterator spends it (budget_iterable)
        elif back:  # the interpreter spends its budget on every backward jump
            add(ind, "b -= 1", frm)
            add(ind, f"if b < 0: raise VmTrap({_BUDGET!r})", frm)
        if tgt != pcv:
            add(ind, f"pc = {tgt}")
        if here.contains(tgt):
            if tgt <= frm:
                add(ind, "continue")
                return True
            if tgt == pcv:
                add(ind, "pass")
            return False
        add(ind, "break")
        return True

    def inlinable(self, r: Region, nxt: int, children: dict[int, Region]) -> bool:
        """May the block at ``nxt`` continue the current suite without a guard?"""
        if not r.contains(nxt) or nxt in self.fn.targets or nxt in children or nxt >= self.fn.end:
            return False
        return innermost(self.fn.top, nxt) is r

    # -- suites -----------------------------------------------------------------------------------------
    def suite(self, ind: int, r: Region, leaders: list[int], i: int, children: dict[int, Region],
              guarded: bool, carry: bool = False) -> int:
        """Blocks from ``leaders[i]`` on, as long as each may continue the suite; returns the next index.
        ``carry``: control only comes in by falling through from the previous suite, so the constants
        and region lookups known there still hold."""
        add = self.src.add
        head = leaders[i]
        if guarded:
            add(ind, f"if pc == {head}:")
            ind += 1
        if not carry:
            self.c.clobber(None)
        pcv = head
        while True:
            x = leaders[i]
            end = leaders[i + 1] if i + 1 < len(leaders) else r.hi + 1
            i += 1
            nxt = self.block(ind, x, end, pcv)
            if nxt is None:
                return i
            if self.inlinable(r, nxt, children) and i < len(leaders) and leaders[i] == nxt:
                continue
            if nxt != pcv:
                add(ind, f"pc = {nxt}")
            self.leave(ind, r, nxt)
            return i

    def block(self, ind: int, leader: int, end: int, pcv: int) -> int | None:
        """Slots ``[leader, end)``. Returns the slot control falls through to (the suite may go on
        there), or None when every path has left (return/continue/break/else)."""
        add = self.src.add
        pc = leader
        insns = self.insns
        while pc < end:
            ins = insns[pc]
            nxt = pc + width(insns, pc)
            if pc == self.mg_skip:  # spent by the loop's iterator
                pc = nxt
                continue
            if is_exit(ins):
                if self.mg:
                    add(ind, "env.may_goto_left = mg", pc)
                if self.main and self.c.promoted:
                    add(ind, _writeback(self.c), pc)
                add(ind, "return r0" if self.main else "return r0, r1, r2, r3, r4, r5, b", pc)
                return None
            tgt = jump_target(ins, pc)
            if tgt is not None and pc in self.fn.bad_targets:
                self.fallback_straight(ind, pc)  # the interpreter decodes it as a trap: it raises
                return nxt
            if tgt is not None and (ins.code & 0xF0) == 0:  # ja / gotol
                if not self.goto(ind, pc, pcv, tgt, tgt <= pc):
                    return None
                return None
            if tgt is not None and (is_cond_jump(ins) or is_may_goto(ins)):
                if is_may_goto(ins):
                    # may_goto: falls through while the run's loop counter lasts (do_misc_fixups), kept
                    # in the local mg and written back to env.may_goto_left around calls and exits
                    add(ind, "if mg <= 0:", pc)
                    if self.goto(ind + 1, pc, pcv, tgt, False):
                        add(ind, "mg -= 1", pc)
                        return nxt
                    add(ind, "else:")
                    add(ind + 1, "mg -= 1", pc)
                    add(ind + 1, f"pc = {nxt}")
                    self.leave(ind + 1, innermost(self.fn.top, pc), nxt)
                    return None
                else:
                    dname = self.c.src(pc, ins.dst) if ins.dst <= 9 else None
                    sname = self.c.src(pc, ins.src) if ins.code & 0x08 and ins.src <= 9 else None
                    if self.pending is not None:  # a value computed for this jump only (into_jump)
                        r_, expr = self.pending
                        self.pending = None
                        dname = expr if ins.dst == r_ else dname
                        sname = expr if ins.code & 0x08 and ins.src == r_ else sname
                    cond = condition(ins, dname, sname)
                    back = tgt <= pc
                if cond is None:
                    self.fallback_straight(ind, pc)
                    return nxt
                add(ind, f"if {cond}:", pc)
                if self.goto(ind + 1, pc, pcv, tgt, back):
                    return nxt
                add(ind, "else:")
                add(ind + 1, f"pc = {nxt}")
                self.leave(ind + 1, innermost(self.fn.top, pc), nxt)
                return None
            if self.dead(pc):  # nothing reads what it writes (opt.py): not written at all
                self.c.clobber(ins, pc)
                pc = nxt
                continue
            if self.fp_move(pc, end):  # ``rX = fp`` that the next ``rX = fp + k`` overwrites unread
                self.c.clobber(ins, pc)
                pc = nxt
                continue
            fused = self.mov_add(pc, end)
            if fused is not None:
                if not self.into_jump(pc, end, fused):
                    for line in fused:
                        add(ind, line, pc)
                self.c.clobber(ins, pc)
                self.c.clobber(insns[pc + 1], pc + 1)
                pc += 2
                continue
            run = self.store_run(pc, end)
            if run is not None:
                self.emit_store_run(ind, run)
                pc = run[-1] + 1
                continue
            if is_local_call(ins):
                self.mg_out(ind, pc)
                if not self.call(ind, pc):
                    self.fallback_straight(ind, pc)
                self.mg_in(ind, pc)
                self.c.clobber(None)
            else:
                stmts = straight(self.c, pc)
                call = stmts is None and ins.code == 0x85
                if stmts is None:
                    stmts = helper_call(self.c, pc)
                if stmts is None:
                    self.mg_out(ind, pc)
                    self.fallback_straight(ind, pc)
                    self.mg_in(ind, pc)
                    self.c.clobber(None)
                else:
                    if call:
                        self.mg_out(ind, pc)
                    self.c.clobber(ins, pc)
                    while len(stmts) == 1 and ins.code & 0x07 in (0x04, 0x07):
                        skip = []  # dead instructions in between are not written anyway
                        j = nxt
                        while j < end and j not in self.fn.leaders and self.dead(j):
                            skip.append(j)
                            j += width(insns, j)
                        if j >= end:
                            break
                        folded = self.chain(stmts[0], ins.dst, j, skip)
                        if folded is None:
                            break
                        stmts = [folded]
                        pc, ins = j, insns[j]
                        nxt = pc + 1
                        self.c.clobber(ins, pc)
                    for s in stmts:
                        add(ind, s, pc)
                    if call:
                        self.mg_in(ind, pc)
            pc = nxt
        return end

    def chain(self, stmt: str, d: int, nxt: int, skip: list[int]) -> str | None:
        """``rD = E`` followed by an ALU instruction that reads rD once and writes it in one line
        ``rD = F(rD)``: one statement ``rD = F((E))`` (neither can fault; nothing reads the first
        value in between)."""
        ins = self.insns[nxt]
        if ins.code & 0x07 not in (0x04, 0x07) or ins.dst != d or ins.code & 0xF0 == 0xB0 or self.dead(nxt):
            return None
        if nxt in self.fn.leaders or self.fp_move(nxt, nxt + 1):
            return None
        lhs = f"r{d} = "
        if not stmt.startswith(lhs):
            return None
        saved = (dict(self.c.consts), dict(self.c.fpoff), dict(self.c.cache))
        for q in skip:
            self.c.clobber(self.insns[q], q)
        nxt_stmts = straight(self.c, nxt)
        word = re.compile(rf"\br{d}\b")
        if nxt_stmts is None or len(nxt_stmts) != 1 or not nxt_stmts[0].startswith(lhs) \
                or len(word.findall(nxt_stmts[0][len(lhs):])) != 1:
            self.c.consts, self.c.fpoff, self.c.cache = saved
            return None
        rhs = nxt_stmts[0][len(lhs):]
        return lhs + word.sub(lambda _m: "(" + stmt[len(lhs):] + ")", rhs)

    def dead(self, pc: int) -> bool:
        ins = self.insns[pc]
        if not dead(self.insns, pc, self.c.live, self.c.slot_bits):
            return False
        if ins.code & 0x07 in (0x04, 0x07):
            return alu(ins) is not None
        if ins.code == 0x18:
            return straight(self.c, pc) is not None
        return True

    def into_jump(self, pc: int, end: int, fused: list[str]) -> bool:
        """``rX = rY + k`` (no wrap check) read only by the conditional jump right after it: the
        jump compares ``(rY + k)`` itself and ``rX`` is not written (nothing reads it afterwards)."""
        j = pc + 2
        if len(fused) != 1 or j >= end:
            return False
        d = self.insns[pc].dst
        ins = self.insns[j]
        if not is_cond_jump(ins) or j in self.fn.bad_targets or condition(ins) is None:
            return False
        if not (ins.dst == d or ins.code & 0x08 and ins.src == d):
            return False
        after = self.c.live.get(j)
        if after is None or (after >> d) & 1:
            return False
        self.pending = (d, "(" + fused[0].split(" = ", 1)[1] + ")")
        return True

    def fp_move(self, pc: int, end: int) -> bool:
        """``mov rX, r10`` followed (in the same block) by ``add``/``sub rX, k``, which is written as
        ``rX = fp + k`` (insns.fp_value) without reading ``rX``: the move itself need not be written."""
        a = self.insns[pc]
        if a.code != 0xBF or a.src != 10 or a.dst > 9 or a.off or a.imm or pc + 1 >= end:
            return False
        b = self.insns[pc + 1]
        return b.code in (0x07, 0x17) and b.dst == a.dst and fp_value(b, {a.dst: 0}) is not None

    def mov_add(self, pc: int, end: int) -> list[str] | None:
        """``rX = rY`` followed by ``rX += k`` (or ``-= k``) as one step, when nothing can jump between."""
        insns = self.insns
        if pc + 1 >= end:
            return None
        a, b = insns[pc], insns[pc + 1]
        if a.code != 0xBF or a.off or a.imm or not (a.dst <= 9 and a.src <= 9 and a.dst != a.src):
            return None
        if b.code not in (0x07, 0x17) or b.dst != a.dst or b.off or b.src:
            return None
        if a.src in self.c.fpoff or a.dst in self.c.fpoff:
            return None
        k = b.imm if b.code == 0x07 else -b.imm
        d, s_ = a.dst, a.src
        name = self.c.src(pc, s_)
        st = self.c.ranges.get(pc + 1)
        if no_wrap(b, st) or (s_ in self.c.nowrap_regs and k >= 0):
            return [f"r{d} = {name} + {k}" if k >= 0 else f"r{d} = {name} - {-k}"]
        if k >= 0:
            return [f"r{d} = {name} + {k}", f"if r{d} > 0xffffffffffffffff: r{d} -= 0x10000000000000000"]
        return [f"r{d} = {name} - {-k}", f"if r{d} < 0: r{d} += 0x10000000000000000"]

    # -- runs of stores through one base register (stores.py) ---------------------------------------
    def store_run(self, pc: int, end: int) -> list[int] | None:
        return stores.store_run(self, pc, end)

    def emit_store_run(self, ind: int, pcs: list[int]) -> None:
        stores.emit_store_run(self, ind, pcs)

    def mg_out(self, ind: int, pc: int) -> None:
        if self.mg:
            self.src.add(ind, "env.may_goto_left = mg", pc)

    def mg_in(self, ind: int, pc: int) -> None:
        """After a call: the may_goto counter back from the run state; region lookups forgotten."""
        if self.mg:
            self.src.add(ind, "mg = env.may_goto_left", pc)
        self.src.add(ind, RESET_SLOTS)

    def leave(self, ind: int, r: Region, nxt: int) -> None:
        """After falling through to ``nxt``: leave the region if ``nxt`` is outside it."""
        if not r.contains(nxt) and r is not self.fn.top:
            self.src.add(ind, "break")

    def call(self, ind: int, pc: int) -> bool:
        ins = self.insns[pc]
        tgt = pc + ins.imm + 1
        if not 0 <= tgt < len(self.insns):
            return False
        add = self.src.add
        if self.main:
            add(ind, f"r0, r1, r2, r3, r4, r5, b = f_{tgt}(env, R, {_REGS}, 1, 1024, b)", pc)
        else:
            add(ind, f"if depth >= {MAX_CALL_FRAMES - 1}: "
                     f"raise VmTrap('the call stack is too deep ({MAX_CALL_FRAMES} frames)')", pc)
            add(ind, f"r0, r1, r2, r3, r4, r5, b = f_{tgt}(env, R, {_REGS}, depth + 1, fo + 512, b)", pc)
        return True

    def sync_out(self, ind: int, pc: int) -> None:
        self.c.fallback = True
        self.src.add(ind, f"R[0:11] = ({_REGS}, fp)", pc)

    def sync_in(self, ind: int) -> None:
        self.src.add(ind, f"{_REGS} = R[0:10]")

    def fallback_straight(self, ind: int, pc: int) -> None:
        self.sync_out(ind, pc)
        self.src.add(ind, f"OPS[{pc}](R)", pc)
        self.sync_in(ind)

    # -- regions ----------------------------------------------------------------------------------------
    def budget_iterable(self, r: Region) -> int | None:
        """The pc of the one back-edge of an innermost loop region whose budget can be spent by
        iterating: ``it = repeat(None, b + 1)``; ``for _ in it:`` takes one item on entry and one on
        each back-edge, so the iterator runs out exactly on the back-edge where ``b -= 1`` would
        make ``b`` negative (the ``else:`` raises the same trap at that pc), and ``length_hint(it)``
        on leaving is the ``b`` the interpreter has then. Only where nothing else in the region
        reads or spends ``b``: no calls but plain helpers (not tail calls, not callback helpers),
        no exit of a bpf-to-bpf function (it returns ``b``), no jump the interpreter's closure
        runs, no backward may_goto."""
        if r is self.fn.top or r.children:
            return None
        insns = self.insns
        back: list[int] = []
        pc = r.lo
        while pc <= r.hi:
            ins = insns[pc]
            code = ins.code
            cls = code & 0x07
            if cls in (0x05, 0x06):
                op = code & 0xF0
                if op == 0x80:  # call
                    if not (ins.src == 0 and cls == 0x05 and ins.imm in self.c.helpers
                            and ins.imm not in self.c.callback_helpers and ins.imm != 12):
                        return None
                elif op == 0x90:  # exit
                    if not self.main:
                        return None
                else:
                    t = jump_target(ins, pc)
                    if t is None or pc in self.fn.bad_targets:
                        return None
                    if is_cond_jump(ins) and condition(ins) is None:
                        return None
                    if r.contains(t) and t <= pc:
                        if is_may_goto(ins):
                            return None
                        back.append(pc)
            pc += width(insns, pc)
        return back[0] if len(back) == 1 else None

    def region(self, ind: int, r: Region, guard: bool) -> None:
        add = self.src.add
        if guard:
            add(ind, f"if {r.lo} <= pc <= {r.hi}:")
            ind += 1
        edge = self.budget_iterable(r)
        if edge is None:
            add(ind, "while True:")
            self.body(ind + 1, r)
            return
        cf = self.closed_form(r, edge)
        if cf is not None:
            # a counted loop: its exit values without running it (indvar.py), or None: run it
            name = f"CF{r.lo}"
            self.src.extras[name] = cf
            pre = cf.prefilter()
            call = f"{name}({_REGS}, b)"
            add(ind, f"cf = {call} if {pre} else None" if pre else f"cf = {call}", edge)
            add(ind, "if cf is not None:")
            add(ind + 1, f"{_REGS}, b = cf")
            add(ind + 1, f"pc = {r.hi + 1}")
            add(ind, "else:")
            ind += 1
        self.c.use("REPEAT")
        self.c.use("LH")
        it = f"it{r.lo}"
        mgt = self.may_goto_head(r, edge)
        if mgt is None:
            add(ind, f"{it} = REPEAT(None, b + 1)")
        else:
            # the may_goto at the loop's head is also spent by the iterator: a pass starts while
            # both counters last (mg >= 0 always)
            lo = r.lo
            add(ind, f"mg0_{lo} = mg; b0_{lo} = b; mgK{lo} = min(mg, b + 1); {it} = REPEAT(None, mgK{lo})")
        acc, conds, hoist = self.accumulators(r)
        if acc:
            # loop versioning: when no accumulator can reach 2**64 within b + 1 passes, a copy of
            # the loop without their wrap checks; otherwise the loop as it is
            # the lookups of the hoisted base registers are made first (they only fill the kept
            # region), so the copy without checks can also require that none is the context
            for base in sorted(hoist):
                self.c.slot_regs.add(base)
                add(ind, lookup_line(self.c, base))
                if self.c.ctx_rewrite:
                    conds.append(f"not c{base}")
            add(ind, "if " + " and ".join(conds) + ":")
            block = None if mgt is not None or edge != r.hi else unrolled(
                self.insns, r.lo, r.hi, self.fn.targets, self.fn.bad_targets, set(acc), hoist, self.c.use)
            if block is not None:  # blocks of passes without their tests first (unroll.py)
                for line in block:
                    add(ind + 1, line)
                add(ind + 1, f"{it} = REPEAT(None, b + 1)")
            self.iter_loop(ind + 1, r, edge, set(acc), hoist, mgt)
            add(ind, "else:")
            self.iter_loop(ind + 1, r, edge, set(), set(), mgt)
        else:
            self.iter_loop(ind, r, edge, set(), set(), mgt)
        if mgt is None:
            add(ind, f"b = LH({it})")
        else:  # passes started: each spent one may_goto; all but the last one a back-edge
            lo = r.lo
            add(ind, f"st = mgK{lo} - LH({it}); mg = mg0_{lo} - st; b = b0_{lo} - st + 1")

    def may_goto_head(self, r: Region, edge: int) -> int | None:
        """The target of the may_goto that starts every pass of the budget-iterated loop ``r`` (its
        first instruction, the back-edge's target, leaving the loop forward), when nothing else in
        the loop reads the may_goto counter (no other may_goto, no call, no exit); else None."""
        insns = self.insns
        if not self.mg or not is_may_goto(insns[r.lo]) or jump_target(insns[edge], edge) != r.lo:
            return None
        t = jump_target(insns[r.lo], r.lo)
        if t is None or t <= r.hi or t >= self.fn.end or r.lo in self.fn.bad_targets:
            return None
        for pc in range(r.lo + 1, r.hi + 1):
            ins = insns[pc]
            if is_may_goto(ins) or is_exit(ins) or ins.code & 0xF7 == 0x85 or ins.code == 0x8D:
                return None
        pc = self.fn.start
        while pc < self.fn.end:  # control comes in at the head only: every pass runs the may_goto
            t2 = jump_target(insns[pc], pc)
            if t2 is not None and not r.contains(pc) and r.lo < t2 <= r.hi:
                return None
            pc += width(insns, pc)
        return t

    def closed_form(self, r: Region, edge: int) -> Any:
        """indvar.analyse for a budget-iterated loop that is one block entered only at its start,
        whose last instruction is its back-edge."""
        if edge != r.hi or any(r.lo < t <= r.hi for t in self.fn.targets) or r.hi + 1 >= self.fn.end:
            return None
        return closed_form(self.insns, r.lo, r.hi)

    def iter_loop(self, ind: int, r: Region, edge: int, nowrap: set[int], hoist: set[int],
                  mgt: int | None = None) -> None:
        add = self.src.add
        add(ind, f"for _ in it{r.lo}:")
        self.iter_region = r
        self.c.nowrap_regs = nowrap
        self.c.hoisted = hoist
        self.mg_skip = r.lo if mgt is not None else None
        self.body(ind + 1, r)
        self.iter_region = None
        self.mg_skip = None
        self.c.nowrap_regs = set()
        self.c.hoisted = set()
        add(ind, "else:")
        if mgt is None:
            add(ind + 1, f"raise VmTrap({_BUDGET!r})", edge)
            return
        # out of items at the start of a pass: the back-edge that got there ran out of budget, or
        # else the may_goto at the head found its counter spent and jumps to its target
        lo = r.lo
        add(ind + 1, f"if mgK{lo} == b0_{lo} + 1: raise VmTrap({_BUDGET!r})", edge)
        add(ind + 1, f"b0_{lo} -= 1; pc = {mgt}")

    def accumulators(self, r: Region) -> tuple[dict[int, str], list[str], set[int]]:
        """Registers that the budget-iterated loop ``r`` only ever changes by adding a bounded
        non-negative amount (``add rX, k`` with k >= 0, ``add rX, rY`` with rY bounded by the range
        analysis or itself such an accumulator): reg -> an upper bound of its value anywhere in
        the loop, as an expression of the values at entry. The loop body runs at most ``b + 1``
        times, each add at most once per pass, so ``rX`` stays below ``rX + (b + 1) * step``.
        Also the conditions of the copy without checks (every accumulator below 2**64, also after
        ``mov rY, rX; add rY, k``), and the accumulators used as the base of a memory access that
        cannot leave the 4 GiB slot they start in: their region lookup is made once, before the loop."""
        insns = self.insns
        sites: dict[int, list[tuple[str, int]]] = {}  # reg -> [(kind, value)]
        other: set[int] = set()
        movadd: dict[int, int] = {}
        bases: set[int] = set()
        pc = r.lo
        while pc <= r.hi:
            ins = insns[pc]
            code = ins.code
            w = written(ins) if jump_target(ins, pc) is None and not is_exit(ins) else ()
            if w is None:
                return {}, [], set()
            if code == 0xBF and ins.off == 0 and ins.imm == 0 and pc + 1 <= r.hi and ins.src <= 9 \
                    and ins.dst != ins.src and insns[pc + 1].code == 0x07 and insns[pc + 1].dst == ins.dst \
                    and insns[pc + 1].imm >= 0:
                movadd[ins.src] = max(movadd.get(ins.src, 0), insns[pc + 1].imm)
            if code & 0x07 == 0x01 and code & 0xE0 in (0x60, 0x80) and ins.off >= 0:
                bases.add(ins.src)
            elif code & 0x07 in (0x02, 0x03) and code & 0xE0 in (0x60, 0xC0) and ins.off >= 0:
                bases.add(ins.dst)
            if code == 0x07 and ins.dst <= 9 and ins.imm >= 0:
                sites.setdefault(ins.dst, []).append(("k", ins.imm))
            elif code == 0x0F and ins.dst <= 9 and ins.src <= 9 and ins.src != ins.dst:
                st = self.c.ranges.get(pc)
                hi = st[ins.src][1] if st is not None else None
                if hi is not None and hi < 1 << 40:
                    sites.setdefault(ins.dst, []).append(("k", hi))
                else:
                    sites.setdefault(ins.dst, []).append(("r", ins.src))
            else:
                other.update(w)
            pc += width(insns, pc)
        cand = {reg for reg in sites if reg not in other}
        changed = True
        while changed:
            changed = False
            for reg in list(cand):
                if any(kind == "r" and v not in cand for kind, v in sites[reg]):
                    cand.discard(reg)
                    changed = True
        bound: dict[int, str] = {}
        while True:
            ready = [reg for reg in sorted(cand) if reg not in bound and
                     all(kind == "k" or v in bound for kind, v in sites[reg])]
            if not ready:
                break
            for reg in ready:
                step = " + ".join(str(v) if kind == "k" else f"({bound[v]})" for kind, v in sites[reg])
                bound[reg] = f"r{reg} + (b + 1) * ({step})"
        conds = [f"{e} + {movadd.get(reg, 0)} <= 0xffffffffffffffff" if movadd.get(reg) else
                 f"{e} <= 0xffffffffffffffff" for reg, e in bound.items()]
        hoist = {reg for reg in bases if reg in bound}
        conds += [f"r{reg} >> 32 == ({bound[reg]}) >> 32" for reg in sorted(hoist)]
        return bound, conds, hoist

    def body(self, body: int, r: Region) -> None:
        add = self.src.add
        leaders = sorted(x for x in self.fn.leaders if r.lo <= x <= r.hi)
        children = {c.lo: c for c in r.children}
        # the first block needs no guard when nothing can land inside the region but its start
        lone = not any(r.lo < t <= r.hi for t in self.fn.targets) and r.lo not in children
        i = 0
        prev_suite = False
        while i < len(leaders):
            x = leaders[i]
            child = children.get(x)
            if child is not None:
                self.region(body, child, True)
                self.after_child(body, r, child)
                while i < len(leaders) and leaders[i] <= child.hi:
                    i += 1
                prev_suite = False
                continue
            carry = prev_suite and x not in self.fn.targets and x != r.lo
            i = self.suite(body, r, leaders, i, children, not (lone and x == r.lo), carry)
            prev_suite = True
        add(body, "break")

    def after_child(self, ind: int, r: Region, child: Region) -> None:
        """Route the jumps that left ``child``: back into ``r`` (continue) or out of ``r`` (break)."""
        back = out = False
        for pc in range(child.lo, child.hi + 1):
            t = jump_target(self.insns[pc], pc)
            if t is None or child.contains(t) or pc in self.fn.bad_targets:
                continue
            if not r.contains(t):
                out = True
            elif t < child.lo:
                back = True
        if out and r is not self.fn.top:
            self.src.add(ind, f"if not {r.lo} <= pc <= {r.hi}: break")
        if back:
            self.src.add(ind, f"if pc < {child.lo}: continue")


_VIEWS = {8: ("sQ", 3), 4: ("sI", 2), 2: ("sH", 1), 1: ("sB", 0)}


def _view(off: int, size: int) -> str:
    """The stack view element of the main frame's slot at ``off`` (frame pointer at offset 512)."""
    name, shift = _VIEWS[size]
    return f"{name}[{(512 + off) >> shift}]"


def _writeback(c: Ctx) -> str:
    for size, _name in c.promoted.values():
        c.use(_VIEWS[size][0])
    return "; ".join(f"{_view(off, size)} = {name}" for off, (size, name) in sorted(c.promoted.items()))


_PC_WORD = re.compile(r"\bpc\b")
_PC_SET = re.compile(r"^(\s*)pc = \d+$")
_FP_WORD = re.compile(r"\bfp\b")


def _function_source(src: Source, fn: Function, c: Ctx, main: bool) -> None:
    add = src.add
    if main:
        add(0, f"def f_{fn.start}(env, R, {_REGS}, b):")
        add(1, "fp = R[10]")
    else:
        add(0, f"def f_{fn.start}(env, R, {_REGS}, depth, fo, b):")
        add(1, "fp = R[15] + fo")
    view_line = len(src.lines)
    add(1, "")  # the stack views used, filled in below
    add(1, RESET_SLOTS)
    if main and c.promoted:
        add(1, "; ".join(f"{name} = {_view(off, size)}" for off, (size, name) in sorted(c.promoted.items())))
    add(1, f"pc = {fn.start}")
    add(1, "try:")
    before = set(c.names)
    c.names = set()
    em = _Emitter(src, fn, c, main)
    if em.mg:
        src.lines[view_line - 1] += "; mg = env.may_goto_left"
    body_at = len(src.lines)
    em.region(2, fn.top, False)
    body = src.lines[body_at:]
    if not any(_PC_WORD.search(line) and not _PC_SET.match(line) for line in body):
        # nothing reads pc (one suite, no guards): its assignments are dead
        src.lines[body_at - 2] = src.lines[body_at - 2].replace(f"pc = {fn.start}", "pass")
        src.lines[body_at:] = [_PC_SET.sub(r"\1pass", line) for line in body]
    fp_used = not main or any(_FP_WORD.search(line) for line in body)
    if not fp_used:  # the main function's frame pointer is R[10] throughout: a fault leaves it there
        src.lines[view_line - 1] = src.lines[view_line - 1].replace("fp = R[10]", "pass")
    views = [f"{v} = R[{ {'sB': 14, 'sQ': 16, 'sI': 17, 'sH': 18}[v]}]"
             for v in ("sB", "sQ", "sI", "sH") if v in c.names]
    src.lines[view_line] = " " + ("; ".join(views) if views else "pass")
    c.names |= before
    add(1, "except (BpfFault, LdAbsExit):")
    add(2, "raise")
    if main:
        add(1, "except TailCall:")
        add(2, "R[0] = r0; R[2:10] = (r2, r3, r4, r5, r6, r7, r8, r9); R[13] = b")
        add(2, "raise")
    add(1, "except Exception as e:")
    if main and c.promoted:
        add(2, _writeback(c))
    add(2, f"R[0:11] = ({_REGS}, fp)" if fp_used else f"R[0:10] = ({_REGS},)")
    add(2, "tb = e.__traceback__")
    add(2, "raise fault(env, None, LINES.get(tb.tb_lineno if tb is not None else 0, -1), e)")
    add(0, "")


@dataclass
class CompiledProgram:
    """A translated program: ``entry`` is the main function; ``source`` is kept for inspection."""

    entry: Any
    source: str
    namespace: dict[str, Any]
    uses_tail_call: bool


def translate(insns: list[Insn], helpers: dict[int, Any], ctx_rewrite: bool,
              maps: dict[int, Any] | None = None) -> tuple[Source, bool]:
    """The Python source of a program (NotCompilable if its control flow does not fit)."""
    from .cfg import NotCompilable

    funcs = analyse(insns)
    tail = any(ins.code == 0x85 and ins.src == 0 and ins.imm == 12 for ins in insns)
    if tail and len(funcs) > 1:
        raise NotCompilable("tail calls from a program with bpf-to-bpf calls")
    cb = frozenset(i for i, f in helpers.items() if _calls_back(f))
    src = Source([], {}, set(), False)
    c = Ctx(insns, helpers, ctx_rewrite, 512, cb)
    if len(funcs) == 1:
        c.promoted = promote_stack(insns, helpers, cb)
        for size, _name in c.promoted.values():
            c.use(_VIEWS[size][0])
    if maps:
        from ..helpers_maps import bpf_map_lookup_elem, bpf_map_update_elem

        c.maps = maps
        c.direct = {1: bpf_map_lookup_elem, 2: bpf_map_update_elem}
    plain = frozenset(i for i in helpers if i not in cb and i != 12)
    for fn in funcs:
        c.fo = 512 if fn.start == 0 else None
        c.ranges = analyse_ranges(insns, fn.start, fn.end, ctx_rewrite)
        c.slot_bits = {off: 11 + i for i, off in enumerate(sorted(c.promoted))} if fn.start == 0 else {}
        c.copies = _copies(insns, fn, c)
        c.bit_names = {i: f"r{i}" for i in range(10)}
        c.bit_names.update({bit: c.promoted[off][1] for off, bit in c.slot_bits.items()})
        c.live = live_out(insns, fn.start, fn.end, fn.start == 0, c.slot_bits, plain, c.copies)
        _function_source(src, fn, c, fn.start == 0)
    src.names = c.names
    src.fallback = c.fallback
    reset = " = ".join(f"s{r}" for r in sorted(c.slot_regs)) + " = -1" if c.slot_regs else "pass"
    src.lines = [line.replace(RESET_SLOTS, reset) for line in src.lines]
    return src, tail


def _copies(insns: list[Insn], fn: Function, c: Ctx) -> dict[int, dict[int, int]]:
    """opt.copies, kept only at the reads this module writes with the copied variable: the source
    of a valid ALU instruction, the registers of a conditional jump, the value of a store into the
    frame. Not where the interpreter's closure may run the instruction (it reads the run state)."""
    out: dict[int, dict[int, int]] = {}
    for pc, m in copies(insns, fn.start, fn.end, fn.leaders, c.slot_bits).items():
        ins = insns[pc]
        code = ins.code
        cls = code & 0x07
        if ins.dst > 10 or ins.src > 10:
            continue
        if cls in (0x04, 0x07):
            ok = ins.dst <= 9 and alu(ins) is not None
        elif cls in (0x05, 0x06):
            ok = is_cond_jump(ins) and condition(ins) is not None and pc not in fn.bad_targets
        else:
            size = _SIZE.get(code & 0x18, 0)
            ok = code & 0xE7 == 0x63 and ins.dst == 10 and -512 <= ins.off <= -size
        if ok:
            out[pc] = m
    return out


def _calls_back(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    return code is not None and ("callback" in code.co_names or "call_function" in code.co_names)


#: the kept region of a register that points at no region: no bytes, read-only, so that every access
#: through it misses (insns.guard then redoes it at the exact address)
NOREG = MemRegion(0, memoryview(bytearray()), 0, False, RegionKind.KERNEL, "(unmapped)")

_STRUCTS = {f"{p}{f}": getattr(struct.Struct("<" + f), "unpack_from" if p == "U" else "pack_into")
            for p in "UP" for f in "BHIQbhi"}


def build(prog: Any, vm: Any) -> CompiledProgram:
    """Translate and compile ``prog`` for ``vm`` (NotCompilable if it does not fit)."""
    from ..decode import CTX_REWRITE_TYPES, MISS, _readonly
    from ..fault import BpfFault, LdAbsExit, TailCall, VmTrap

    insns = list(prog.insns)
    pt = getattr(prog, "prog_type", None)
    held = {id(m) for m in getattr(prog, "used_maps", None) or ()}
    maps = {slot: r.owner for slot, r in list(vm.aspace.regions.items())
            if r.kind is RegionKind.MAP and id(r.owner) in held} if held else {}
    src, tail = translate(insns, vm.helpers, pt is None or int(pt) in CTX_REWRITE_TYPES, maps)
    ns: dict[str, Any] = dict(sem.TEMPLATE_GLOBALS)
    ns.update(_STRUCTS)
    ns.update(VmTrap=VmTrap, BpfFault=BpfFault, LdAbsExit=LdAbsExit, TailCall=TailCall, CTX=RegionKind.CTX,
              rget=vm.aspace.regions.get, ctx_load=vm.ctx_load, readonly=_readonly, fault=vm._fault,
              MISS=MISS, NOREG=NOREG, EMPTY=NOREG.buf, REPEAT=itertools.repeat, LH=operator.length_hint,
              LINES=src.line_pc, PAD=[None] * MAX_CALL_FRAMES)
    ns.update(src.extras)
    for name in src.names:
        if name.startswith("H") and name[1:].isdigit():
            ns[name] = vm.helpers[int(name[1:])]
        elif name.startswith("M") and name[1:].isdigit():
            ns[name] = maps[int(name[1:])]
    if src.fallback:
        ns["OPS"] = vm.decode(prog)
    raw: Any = getattr(prog, "name", "") or ""
    name = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    code = compile(src.text, f"<tinyaya.compiled {name}>", "exec")
    exec(code, ns)  # noqa: S102 - our own translation of a verified program
    return CompiledProgram(ns["f_0"], src.text, ns, tail)
