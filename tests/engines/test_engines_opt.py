"""The compiled tier's optimizations give the interpreter's results on programs made to hit them.

* budget iterators (``for _ in repeat(None, b + 1)``) on innermost loops with one back-edge: loops
  that exit by their test, that run out of budget (small budgets), nested loops, loops left early;
* range analysis (``ranges.py``): wrap checks and masks dropped on add/sub/mul/lsh whose result is
  known to stay below 2**64, with counters going up and down by various steps towards bounds near
  0 and near 2**64, constants close to the wrap, loads of every width, 32-bit ALU in between;
* dead register writes and copies removed (straight runs of moves, stack slots, overwritten results).

Every register is stored to the writable region at the end, so a wrong value anywhere shows.
"""
from __future__ import annotations

import os

from engine_harness import ENGINES, observe
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tinyaya.isa import Insn
from tinyaya.isa.disasm import disasm
from tinyaya.sim_kernel.vm.compiled.ranges import TOP, analyse

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
_settings = settings(max_examples=EXAMPLES * 2, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
M64 = (1 << 64) - 1
REGS = [0, 3, 4, 5, 6, 7, 8, 9]
EDGE = st.sampled_from([0, 1, 2, 7, 255, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 32, (1 << 63) - 1, 1 << 63,
                        M64 - 300, M64 - 1, M64])
#: loop bounds at the edges: 0, 1, 2, and 2**64 - 1, - 2, - 3 (sign-extended immediates)
BOUND = st.sampled_from([0, 1, 2, -1, -2, -3])
S32 = st.one_of(st.integers(-5, 40), st.sampled_from([-(1 << 31), (1 << 31) - 1, 0x7FFF, -1000, 1000]))


def _lddw(r: int, v: int) -> list[Insn]:
    lo, hi = v & 0xFFFF_FFFF, v >> 32
    return [Insn(0x18, r, 0, 0, lo - (1 << 32) if lo >> 31 else lo), Insn(0, 0, 0, 0, hi - (1 << 32) if hi >> 31 else hi)]


@st.composite
def setter(draw: st.DrawFn) -> list[Insn]:
    r = draw(st.sampled_from(REGS))
    kind = draw(st.sampled_from(["imm", "lddw", "load", "mov32"]))
    if kind == "imm":
        return [Insn(0xB7, r, 0, 0, draw(S32))]
    if kind == "lddw":
        return _lddw(r, draw(EDGE))
    if kind == "mov32":
        return [Insn(0xB4, r, 0, 0, draw(S32))]
    size = draw(st.sampled_from([0x00, 0x08, 0x10, 0x18]))
    return [Insn(0x61 | size, r, 1, draw(st.integers(0, 7)) * 8, 0)]


@st.composite
def op(draw: st.DrawFn) -> list[Insn]:
    d = draw(st.sampled_from(REGS))
    cls = draw(st.sampled_from([0x07, 0x07, 0x07, 0x04]))
    code = draw(st.sampled_from([0x00, 0x00, 0x10, 0x20, 0x60, 0x70, 0x50, 0x30, 0x90, 0xB0, 0xA0]))
    if draw(st.booleans()):
        return [Insn(cls | 0x08 | code, d, draw(st.sampled_from(REGS)), 0, 0)]
    imm = draw(S32) if code not in (0x60, 0x70) else draw(st.integers(0, 63 if cls == 0x07 else 31))
    return [Insn(cls | code, d, 0, 0, imm)]


@st.composite
def stack(draw: st.DrawFn) -> list[Insn]:
    """A store to or load from an 8-byte stack slot (promoted to a local when nothing else uses it)."""
    r = draw(st.sampled_from(REGS))
    slot = -8 * draw(st.integers(1, 3))
    return [Insn(0x7B, 10, r, slot, 0) if draw(st.booleans()) else Insn(0x79, r, 10, slot, 0)]


@st.composite
def loop(draw: st.DrawFn) -> list[Insn]:
    """counter = start; do { body } while (counter (+|-)= step; counter <cond> bound)."""
    c = draw(st.sampled_from(REGS))
    start = [i.replace(dst=c) if i.code != 0 else i for i in draw(setter())]
    body: list[Insn] = []
    for _ in range(draw(st.integers(0, 4))):
        body += draw(st.one_of(op(), setter(), stack()))
    step = draw(st.sampled_from([1, 1, 2, 3, -1, -2, -3, 7]))
    body.append(Insn(0x07, c, 0, 0, step))
    cond = draw(st.sampled_from([0xA0, 0xB0, 0x20, 0x30, 0x50, 0x10, 0x60, 0xC0]))
    cls = draw(st.sampled_from([0x05, 0x05, 0x05, 0x06]))
    if draw(st.booleans()):
        other = draw(st.sampled_from(REGS))
        jmp = Insn(cls | 0x08 | cond, c, other, -(len(body) + 1), 0)
    else:
        jmp = Insn(cls | cond, c, 0, -(len(body) + 1), draw(st.one_of(BOUND, S32)))
    if draw(st.booleans()):  # a conditional exit in the middle of the body
        at = draw(st.integers(0, len(body) - 1))
        r = draw(st.sampled_from(REGS))
        rest = len(body) - at
        body = body[:at] + [Insn(0x25, r, 0, rest + 1, draw(S32))] + body[at:]
        jmp = jmp.replace(off=jmp.off - 1)
    return start + body + [jmp]


@st.composite
def loop_programs(draw: st.DrawFn) -> list[Insn]:
    out: list[Insn] = []
    for _ in range(draw(st.integers(1, 6))):
        out += draw(st.one_of(setter(), op(), stack(), loop(), loop()))
    if draw(st.booleans()):  # an outer loop around it all
        out = [Insn(0xB7, 2, 0, 0, 0), *out, Insn(0x07, 2, 0, 0, 1), Insn(0xA5, 2, 0, -(len(out) + 2), 3)]
    for i, r in enumerate(REGS):
        out.append(Insn(0x7B, 1, r, 8 * i, 0))
    return out + [Insn(0x95)]


@_settings
@given(insns=loop_programs(), init=st.binary(min_size=64, max_size=64),
       budget=st.sampled_from([0, 1, 2, 5, 40, 1000, 1 << 20]))
def test_loops_agree(insns: list[Insn], init: bytes, budget: int) -> None:
    want = observe("interp", insns, init=init, budget=budget, runs=2)
    for engine in ENGINES:
        got = observe(engine, insns, init=init, budget=budget, runs=2)
        assert got == want, f"{engine}, program:\n{disasm(insns)}"


@st.composite
def straight_programs(draw: st.DrawFn) -> list[Insn]:
    """Moves, stack slots (8-byte, promoted to locals), ALU and overwrites: copies and dead writes."""
    out: list[Insn] = []
    for _ in range(draw(st.integers(1, 40))):
        k = draw(st.sampled_from(["op", "set", "mov", "stx", "ldx", "st", "mem"]))
        r = draw(st.sampled_from(REGS))
        slot = -8 * draw(st.integers(1, 4))
        if k == "op":
            out += draw(op())
        elif k == "set":
            out += draw(setter())
        elif k == "mov":
            out.append(Insn(draw(st.sampled_from([0xBF, 0xBF, 0xBC])), r, draw(st.sampled_from(REGS)), 0, 0))
        elif k == "stx":
            out.append(Insn(0x7B, 10, draw(st.sampled_from(REGS)), slot, 0))
        elif k == "ldx":
            out.append(Insn(0x79, r, 10, slot, 0))
        elif k == "st":
            out.append(Insn(0x7A, 10, 0, slot, draw(S32)))
        else:  # a memory access that may fault (r2 is read-only): every live value must be right there
            out.append(Insn(draw(st.sampled_from([0x7B, 0x79])), 2, r, draw(st.integers(0, 70)), 0)
                       if draw(st.booleans()) else Insn(0x79, r, 2, draw(st.integers(0, 70)), 0))
    for i, r in enumerate(REGS):
        out.append(Insn(0x7B, 1, r, 8 * i, 0))
    return out + [Insn(0x95)]


@_settings
@given(insns=straight_programs(), init=st.binary(min_size=64, max_size=64))
def test_straight_agree(insns: list[Insn], init: bytes) -> None:
    want = observe("interp", insns, init=init, runs=2)
    for engine in ENGINES:
        got = observe(engine, insns, init=init, runs=2)
        assert got == want, f"{engine}, program:\n{disasm(insns)}"


def _source(insns: list[Insn]) -> str:
    from engine_harness import prog, sim_kernel

    from tinyaya.sim_kernel.vm.compiled.translate import build

    return build(prog(insns), sim_kernel("compiled").vm).source


def test_counted_loop_needs_no_wrap_check_and_iterates_its_budget() -> None:
    from tinyaya.isa import assemble

    insns = assemble("mov %r0, 0\nmov %r1, 0\nadd %r1, 1\nadd %r0, %r1\njlt %r1, 1000, -3\nexit")
    src = _source(insns)
    assert "r1 = r1 + 1\n" in src  # the counter is in [0, 999] at the add: it cannot wrap
    assert "if r0 > 0xffffffffffffffff" in src  # the sum: not known
    assert "for _ in it2:" in src and "b -= 1" not in src
    assert observe("interp", insns, budget=998) == observe("compiled", insns, budget=998)
    assert observe("interp", insns, budget=999) == observe("compiled", insns, budget=999)


def test_ranges_of_a_counted_loop() -> None:
    from tinyaya.isa import assemble

    st_ = analyse(assemble("mov %r1, 0\nadd %r1, 1\njlt %r1, 1000, -2\nexit"), 0, 4, False)
    assert st_[1][1] == (0, 999)
    assert st_[3][1] == (1000, 1000)
    assert analyse(assemble("ldxw %r1, [%r1+0]\nexit"), 0, 2, True)[1][1] == TOP  # a context field: 64-bit
    assert analyse(assemble("ldxw %r1, [%r1+0]\nexit"), 0, 2, False)[1][1] == (0, 0xFFFF_FFFF)


@settings(max_examples=EXAMPLES * 3, deadline=None)
@given(start=st.one_of(st.integers(0, 9), st.integers(M64 - 9, M64)), step=st.sampled_from([1, 2, 3, -1, -2, -3]),
       cond=st.sampled_from([0xA0, 0xB0, 0x20, 0x30, 0x50, 0x10]), bound=st.sampled_from([0, 1, 2, 3, -1, -2, -3, -4]),
       budget=st.sampled_from([3, 1000]))
@example(start=5, step=-2, cond=0x20, bound=0, budget=1000)
@example(start=M64 - 3, step=2, cond=0xA0, bound=-1, budget=1000)
@example(start=4, step=-3, cond=0x30, bound=1, budget=1000)
@example(start=M64 - 5, step=3, cond=0xB0, bound=-2, budget=1000)
@example(start=7, step=-2, cond=0x50, bound=0, budget=3)
def test_counter_at_the_edges(start: int, step: int, cond: int, bound: int, budget: int) -> None:
    """One counter stepping towards (or past) a bound at 0 or 2**64: the tightest ranges."""
    insns = [*_lddw(3, start), Insn(0x07, 3, 0, 0, step), Insn(0x05 | cond, 3, 0, -2, bound),
             Insn(0x7B, 1, 3, 8, 0), Insn(0x07, 3, 0, 0, step), Insn(0x7B, 1, 3, 0, 0), Insn(0xBF, 0, 3, 0, 0), Insn(0x95)]
    assert observe("compiled", insns, budget=budget) == observe("interp", insns, budget=budget), disasm(insns)


def test_a_store_overwritten_next_iteration_is_in_memory_when_the_budget_runs_out() -> None:
    """The slot is rewritten before it is read on every path, but the back-edge may trap: the stack
    then holds the last value stored (the promoted slot is written back)."""
    insns = [Insn(0xB7, 3, 0, 0, 0), Insn(0x07, 3, 0, 0, 1), Insn(0x7B, 10, 3, -8, 0), Insn(0x05, 0, 0, -3, 0),
             Insn(0x95)]
    got = observe("compiled", insns, budget=5)
    assert got == observe("interp", insns, budget=5)
    assert got[3][504] == 6


def test_dead_writes_are_not_translated() -> None:
    from tinyaya.isa import assemble

    src = _source(assemble("mov %r1, 5\nlsh %r1, 3\nmov %r1, 7\nstxdw [%r10-8], %r1\nstxdw [%r10-8], %r1\n"
                           "ldxdw %r0, [%r10-8]\nmov %r0, 1\nexit"))
    assert "r1 = 5" not in src and "<< 3" not in src and "r0 = k8" not in src
    assert src.count("k8 = 7") == 1  # r1 is known: the second store only


def test_accumulators_get_a_loop_copy_without_wrap_checks() -> None:
    from tinyaya.isa import assemble

    insns = assemble("mov %r0, 0\nmov %r1, 0\nadd %r1, 1\nadd %r0, %r1\njlt %r1, 1000, -3\nexit")
    src = _source(insns)
    assert "if r0 + (b + 1) * (1000) <= 0xffffffffffffffff" in src
    # the copy without checks (near 2**64 but 2001 * 1000 below it), and the checked one (it wraps)
    for start in (0, (1 << 64) - 10**8, (1 << 64) - 400_000):
        prog = _lddw(0, start) + insns[1:]
        assert observe("compiled", prog, budget=2000) == observe("interp", prog, budget=2000)


@settings(max_examples=EXAMPLES, deadline=None)
@given(start=st.integers(-12, 70), step=st.sampled_from([1, 2, 8]), n=st.integers(0, 80),
       size=st.sampled_from([0x10, 0x08, 0x00, 0x18]), off=st.integers(0, 9), write=st.booleans(),
       base=st.sampled_from([1, 2]), budget=st.sampled_from([4, 1000]))
def test_pointer_walks(start: int, step: int, n: int, size: int, off: int, write: bool, base: int,
                       budget: int) -> None:
    """A pointer walks a region (the writable one, or the read-only one) from below it to past its
    end: the region lookup made once before the loop must give the accesses of the interpreter."""
    access = Insn(0x63 | size, 6, 4, off, 0) if write else Insn(0x61 | size, 3, 6, off, 0)
    insns = [Insn(0xBF, 6, base, 0, 0), Insn(0x07, 6, 0, 0, start), Insn(0xB7, 4, 0, 0, 0), Insn(0xB7, 0, 0, 0, 0),
             access, Insn(0xAF, 0, 3, 0, 0), Insn(0x07, 6, 0, 0, step), Insn(0x07, 4, 0, 0, 1),
             Insn(0xA5, 4, 0, -5, n), Insn(0x95)]
    want = observe("interp", insns, budget=budget)
    for engine in ENGINES:
        assert observe(engine, insns, budget=budget) == want, disasm(insns)


def test_the_region_of_a_walking_pointer_is_looked_up_before_the_loop() -> None:
    from tinyaya.isa import assemble

    src = _source(assemble("mov %r0, 0\nmov %r4, 0\nldxb %r3, [%r1+0]\nxor %r0, %r3\nadd %r1, 1\nadd %r4, 1\n"
                           "jlt %r4, 64, -5\nexit"))
    fast = src[src.index("for _ in"):]
    assert "rget" not in fast[:fast.index("else:")]


COPY_CASES = {
    # r3 copies r0, then r0 changes: the read of r3 must not read r0
    "source rewritten": [Insn(0xB7, 0, 0, 0, 5), Insn(0xBF, 3, 0, 0, 0), Insn(0x07, 0, 0, 0, 1), Insn(0x0F, 4, 3, 0, 0),
                         Insn(0xBF, 0, 4, 0, 0), Insn(0x95)],
    # the copy is made on one path only: at the join, r3 is not known to copy r0
    "join": [Insn(0xB7, 3, 0, 0, 7), Insn(0x55, 1, 0, 1, 0), Insn(0xBF, 3, 0, 0, 0), Insn(0x0F, 4, 3, 0, 0),
             Insn(0xBF, 0, 4, 0, 0), Insn(0x95)],
    # through a promoted slot, rewritten in between
    "slot rewritten": [Insn(0xB7, 0, 0, 0, 5), Insn(0x7B, 10, 0, -8, 0), Insn(0x79, 3, 10, -8, 0), Insn(0x7A, 10, 0, -8, 9),
                       Insn(0x79, 5, 10, -8, 0), Insn(0x0F, 5, 3, 0, 0), Insn(0xBF, 0, 5, 0, 0), Insn(0x95)],
    # the copied register is the value of a store through a pointer (the closure may run it)
    "store through a pointer": [Insn(0xB7, 0, 0, 0, 5), Insn(0xBF, 3, 0, 0, 0), Insn(0x7B, 1, 3, 70, 0),
                                Insn(0x7B, 1, 3, 0, 0), Insn(0x95)],
}


def test_copies_are_forgotten_where_they_stop_holding() -> None:
    for name, insns in COPY_CASES.items():
        for engine in ENGINES:
            assert observe(engine, insns) == observe("interp", insns), name


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(y=EDGE, k=st.integers(-3, 3), cond=st.sampled_from([0x10, 0x20, 0x30, 0xA0, 0xB0, 0x50, 0x40, 0x60]),
       cls=st.sampled_from([0x05, 0x06]), other=EDGE, side=st.booleans(), read_after=st.booleans())
def test_an_add_read_by_the_next_jump_only(y: int, k: int, cond: int, cls: int, other: int, side: bool,
                                           read_after: bool) -> None:
    """``mov r3, r4; add r3, k; j<cond> r3, r5`` (or ``r5, r3``): the jump may compare ``(r4 + k)``
    itself when r3 is not read afterwards; here it sometimes is."""
    jmp = Insn(cls | 0x08 | cond, 3, 5, 1, 0) if side else Insn(cls | 0x08 | cond, 5, 3, 1, 0)
    insns = [*_lddw(4, y), *_lddw(5, other), Insn(0xB7, 3, 0, 0, 0), Insn(0xBF, 3, 4, 0, 0), Insn(0x07, 3, 0, 0, k),
             jmp, Insn(0xB7, 0, 0, 0, 1), Insn(0xBF, 0, 3, 0, 0) if read_after else Insn(0x07, 0, 0, 0, 2), Insn(0x95)]
    for engine in ENGINES:
        assert observe(engine, insns) == observe("interp", insns), disasm(insns)


@st.composite
def counted_loops(draw: st.DrawFn) -> tuple[list[Insn], int]:
    """A one-block loop of adds and subs (immediates, registers: affine, quadratic, cubic values)
    closed by a 64-bit test of a counter against a bound, then a second loop that spends budget."""
    regs = [0, 3, 4, 5]
    out: list[Insn] = []
    for r in regs + [6]:
        out += _lddw(r, draw(st.one_of(st.integers(0, 300), EDGE)))
    var = draw(st.sampled_from(regs))
    body: list[Insn] = []
    for _ in range(draw(st.integers(0, 4))):
        d = draw(st.sampled_from(regs))
        if draw(st.booleans()):
            body.append(Insn(draw(st.sampled_from([0x0F, 0x1F])), d, draw(st.sampled_from(regs + [6])), 0, 0))
        else:
            body.append(Insn(draw(st.sampled_from([0x07, 0x17])), d, 0, 0, draw(S32)))
    step = draw(st.sampled_from([1, 1, 2, 3, 4, 7, -1, -2, -3, 1 << 20]))
    body.insert(draw(st.integers(0, len(body))), Insn(0x07, var, 0, 0, step))
    cond = draw(st.sampled_from([0x10, 0x50, 0x50, 0xA0, 0xB0, 0x20, 0x30]))
    if draw(st.booleans()):
        jmp = Insn(0x0D | cond, var, 6, -(len(body) + 1), 0)
    else:
        jmp = Insn(0x05 | cond, var, 0, -(len(body) + 1), draw(st.one_of(st.integers(-3, 400), BOUND, S32)))
    out += body + [jmp]
    for i, r in enumerate(regs + [6]):
        out.append(Insn(0x7B, 1, r, 8 * i, 0))
    # a second loop: 40 more back-edges, so what the first one left of the budget shows
    out += [Insn(0xB7, 7, 0, 0, 40), Insn(0x17, 7, 0, 0, 1), Insn(0x55, 7, 0, -2, 0)]
    return out + [Insn(0x95)], draw(st.sampled_from([0, 10, 30, 60, 100, 150, 300, 1000, 1 << 20]))


@settings(max_examples=EXAMPLES * 4, deadline=None)
@given(case=counted_loops())
def test_counted_loops_closed_form(case: tuple[list[Insn], int]) -> None:
    insns, budget = case
    want = observe("interp", insns, budget=budget)
    for engine in ENGINES:
        assert observe(engine, insns, budget=budget) == want, f"budget {budget}:\n{disasm(insns)}"


def test_counted_loop_runs_as_a_closed_form() -> None:
    from tinyaya.isa import assemble
    from tinyaya.sim_kernel.vm.compiled.indvar import analyse as closed_form

    insns = assemble("mov %r0, 0\nmov %r1, 0\nadd %r1, 1\nadd %r0, %r1\njlt %r1, 1000000, -3\nexit")
    cf = closed_form(insns, 2, 4)
    assert cf is not None
    regs = [0] * 10
    out = cf(*regs, 1 << 26)
    assert out is not None and out[0] == 500000500000 and out[1] == 1000000 and out[10] == (1 << 26) - 999999
    assert closed_form(assemble("add %r1, %r1\njlt %r1, 100, -2\nexit"), 0, 1) is None  # exponential
    assert closed_form(assemble("ldxdw %r1, [%r2+0]\njlt %r1, 100, -2\nexit"), 0, 1) is None  # memory


TRICKY_COUNTED = [
    (70, -3, 0x20, 0),          # down by 3 past zero: wraps, keeps going (budget trap)
    (70, -3, 0x30, 1),          # the same with >=
    (M64 - 100, 3, 0xA0, -1),   # up by 3 past 2**64 - 1: wraps, keeps going
    (M64 - 100, 3, 0xB0, -2),
    (M64 - 50, 1, 0x50, 20),    # != through the wrap: 71 passes
    (3, 2, 0x50, 100),          # != never reached (odd difference, even step)
    (0, 6, 0x50, 300),          # != reached after 50 passes
    (40, -1, 0x20, 5),          # down to the bound
    (0, 1, 0xB0, 29),           # <= : 30 passes
]


def test_tricky_counted_loops() -> None:
    for start, step, cond, bound in TRICKY_COUNTED:
        insns = [*_lddw(3, start), *_lddw(4, 0), Insn(0x0F, 4, 3, 0, 0), Insn(0x07, 3, 0, 0, step),
                 Insn(0x05 | cond, 3, 0, -3, bound), Insn(0x7B, 1, 3, 0, 0), Insn(0x7B, 1, 4, 8, 0),
                 Insn(0xB7, 7, 0, 0, 40), Insn(0x17, 7, 0, 0, 1), Insn(0x55, 7, 0, -2, 0), Insn(0x95)]
        for budget in (28, 29, 30, 69, 70, 71, 1000, 1 << 20):
            want = observe("interp", insns, budget=budget)
            for engine in ENGINES:
                assert observe(engine, insns, budget=budget) == want, (start, step, cond, bound, budget)


@st.composite
def may_goto_loops(draw: st.DrawFn) -> list[Insn]:
    """``loop: may_goto out; body; (ja|j<cond>) loop; out:`` then a second may_goto loop that counts
    what is left of the counter in r8, and every register stored."""
    out: list[Insn] = [Insn(0xB7, 8, 0, 0, 0)]
    for _ in range(draw(st.integers(0, 3))):
        out += draw(setter())
    body: list[Insn] = []
    for _ in range(draw(st.integers(0, 4))):
        body += draw(st.one_of(op(), stack(), setter()))
    if draw(st.booleans()):
        back = Insn(0x05, 0, 0, -(len(body) + 2), 0)
    else:
        back = Insn(0x05 | draw(st.sampled_from([0x50, 0xA0, 0x20])), draw(st.sampled_from(REGS)), 0,
                    -(len(body) + 2), draw(S32))
    out += [Insn(0xE5, 0, 0, len(body) + 1, 0), *body, back]
    out += [Insn(0xE5, 0, 0, 2, 0), Insn(0x07, 8, 0, 0, 1), Insn(0x05, 0, 0, -3, 0)]
    out += [Insn(0xB7, 2, 0, 0, 11), Insn(0x17, 2, 0, 0, 1), Insn(0x55, 2, 0, -2, 0)]  # 10 back-edges more
    for i, r in enumerate(REGS):
        out.append(Insn(0x7B, 1, r, 8 * i, 0))
    return out + [Insn(0x95)]


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(insns=may_goto_loops(), budget=st.sampled_from([0, 3, 29, 30, 31, 39, 40, 60, 61, 70, 71, 1000]),
       loops=st.sampled_from([0, 1, 30, 60]))
def test_may_goto_headed_loops(insns: list[Insn], budget: int, loops: int) -> None:
    """The may_goto counter (lowered from 8M for the test: the interpreter's and the compiled
    engine's constant; the native tier has its own) and the budget, spent by one iterator."""
    from tinyaya.sim_kernel.vm import interp
    from tinyaya.sim_kernel.vm.compiled import engine

    saved = interp.BPF_MAX_LOOPS, engine.BPF_MAX_LOOPS
    interp.BPF_MAX_LOOPS = engine.BPF_MAX_LOOPS = loops
    try:
        want = observe("interp", insns, budget=budget, runs=2)
        assert observe("compiled", insns, budget=budget, runs=2) == want, f"budget {budget}:\n{disasm(insns)}"
    finally:
        interp.BPF_MAX_LOOPS, engine.BPF_MAX_LOOPS = saved


def test_may_goto_counter_runs_out_then_the_budget_is_exact() -> None:
    from tinyaya.sim_kernel.vm import interp
    from tinyaya.sim_kernel.vm.compiled import engine

    insns = [Insn(0xB7, 8, 0, 0, 0), Insn(0xE5, 0, 0, 1, 0), Insn(0x05, 0, 0, -2, 0), Insn(0xE5, 0, 0, 2, 0),
             Insn(0x07, 8, 0, 0, 1), Insn(0x05, 0, 0, -3, 0), Insn(0xB7, 2, 0, 0, 11), Insn(0x17, 2, 0, 0, 1),
             Insn(0x55, 2, 0, -2, 0), Insn(0xBF, 0, 8, 0, 0), Insn(0x95)]
    saved = interp.BPF_MAX_LOOPS, engine.BPF_MAX_LOOPS
    interp.BPF_MAX_LOOPS = engine.BPF_MAX_LOOPS = 30
    try:
        for budget in (29, 30, 31, 38, 39, 40, 41):
            assert observe("compiled", insns, budget=budget) == observe("interp", insns, budget=budget), budget
    finally:
        interp.BPF_MAX_LOOPS, engine.BPF_MAX_LOOPS = saved
