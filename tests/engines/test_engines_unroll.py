"""Unrolled blocks of passes (compiled/unroll.py) give the interpreter's results: random loops of a
walking pointer with byte/half/word/dword loads, xor/mul/add accumulators, counters with various
steps and bounds, exit tests in the middle, regions whose end the last block would cross, budgets
that run out inside or right at a block, loads that fault where a block would be. Every register
is stored to the stack at the end, so a wrong value anywhere shows."""
from __future__ import annotations

import os

from engine_harness import ENGINES, observe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.isa import Insn
from tinyaya.isa.disasm import disasm
from tinyaya.sim_kernel.vm.compiled.unroll import K

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
_settings = settings(max_examples=EXAMPLES * 3, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
M64 = (1 << 64) - 1
SIZES = {1: 0x71, 2: 0x69, 4: 0x61, 8: 0x79}
#: xor, mul, add, or, and, sub (registers and immediates), shifts, 32-bit add/mul, mov
OPS = [0xAF, 0x2F, 0x0F, 0x4F, 0x5F, 0x1F, 0x27, 0x07, 0x17, 0x57, 0xA7, 0x77, 0x67, 0x0C, 0x24, 0xBF]
BUDGETS = [0, 1, K - 1, K, K + 1, 2 * K - 1, 2 * K, 2 * K + 1, 3 * K, 1000]


@st.composite
def unroll_loops(draw: st.DrawFn) -> list[Insn]:
    base = draw(st.sampled_from([1, 2]))
    step = draw(st.sampled_from([0, 1, 1, 2, 4, 8]))
    cstep = draw(st.sampled_from([1, 1, 2, 3]))
    n = draw(st.integers(0, 90))
    pre = [Insn(0xBF, 6, base, 0, 0), Insn(0x07, 6, 0, 0, draw(st.integers(-12, 40))),
           Insn(0xB7, 4, 0, 0, draw(st.integers(0, 5))), Insn(0xB7, 0, 0, 0, draw(st.integers(-5, 5))),
           Insn(0xB7, 5, 0, 0, draw(st.sampled_from([3, 0x1000193, -7]))),
           Insn(0xBF, 8, 6, 0, 0), Insn(0x07, 8, 0, 0, draw(st.integers(0, 60))),
           Insn(0xB7, 9, 0, 0, draw(st.integers(0, 60)))]
    # the second counter starts at 0 or just below 2**64 (no wrap only with a small budget)
    r7 = draw(st.sampled_from([0, 0, M64 - 300, M64 - 40, M64 - 0x7FFFFFFF]))
    pre += [Insn(0x18, 7, 0, 0, r7 & 0xFFFFFFFF), Insn(0, 0, 0, 0, r7 >> 32)]
    body: list[Insn] = []
    # an exit test of the walking pointer (through a copy plus k) against an invariant limit
    if draw(st.booleans()):
        op = draw(st.sampled_from([0x2D, 0x3D, 0xAD, 0xBD]))
        k = draw(st.integers(0, 9))
        if op in (0x2D, 0x3D):  # r3 > r8: out
            body += [Insn(0xBF, 3, 6, 0, 0), Insn(0x07, 3, 0, 0, k), Insn(op, 3, 8, 0, 0)]
        else:  # r8 < r3: out
            body += [Insn(0xBF, 3, 6, 0, 0), Insn(0x07, 3, 0, 0, k), Insn(op, 8, 3, 0, 0)]
    for _ in range(draw(st.integers(1, 3))):
        size = draw(st.sampled_from(list(SIZES)))
        body.append(Insn(SIZES[size], 3, 6, draw(st.integers(0, 9)), 0))
        acc = draw(st.sampled_from([0, 0, 9]))
        for code in draw(st.lists(st.sampled_from(OPS),
                                  min_size=1, max_size=3)):
            if code & 0x08:
                body.append(Insn(code, acc, draw(st.sampled_from([3, 5, 4, 6])), 0, 0))
            elif code in (0x77, 0x67):
                body.append(Insn(code, acc, 0, 0, draw(st.integers(0, 63))))
            else:
                body.append(Insn(code, acc, 0, 0, draw(st.one_of(st.integers(-3, 1000), st.sampled_from([-1, 0x7FFFFFFF, -(1 << 31), 0x1000193])))))
    if draw(st.booleans()):  # a copy of a counter, read, moved by an add that may wrap, shifted
        body += [Insn(0xBF, 3, draw(st.sampled_from([7, 7, 4, 6])), 0, 0), Insn(0xAF, 9, 3, 0, 0),
                 Insn(0x07, 3, 0, 0, draw(st.sampled_from([1, 150, 0x7FFFFFFF]))), Insn(0xBF, 5, 3, 0, 0),
                 Insn(0x77, 5, 0, 0, draw(st.sampled_from([1, 33, 63]))), Insn(0xAF, 0, 5, 0, 0)]
    body.append(Insn(0x07, 6, 0, 0, step))
    body.append(Insn(0x07, 4, 0, 0, cstep))
    if draw(st.sampled_from([True, True, False])):  # a second counter tested in the middle
        body.append(Insn(0x07, 7, 0, 0, 1))
        body.append(Insn(draw(st.sampled_from([0x35, 0x25])), 7, 0, 0,
                         draw(st.one_of(st.integers(0, 40), st.integers(-250, -1)))))
    kind = draw(st.sampled_from(["jlt", "jle", "jgt_rev", "ja"]))
    nb = len(body) + 1
    if kind == "jlt":
        body.append(Insn(0xA5, 4, 0, -nb, n))
    elif kind == "jle":
        body.append(Insn(0xB5, 4, 0, -nb, n))
    elif kind == "jgt_rev":  # r9 > r4
        body.append(Insn(0x2D, 9, 4, -nb, 0))
    else:
        body.append(Insn(0x05, 0, 0, -nb, 0))
    # forward exits go to the end of the loop
    out = []
    for i, ins in enumerate(body[:-1]):
        if ins.code & 0x07 == 0x05:
            ins = ins.replace(off=len(body) - 1 - i)
        out.append(ins)
    out.append(body[-1])
    post = [Insn(0x7B, 10, r, -8 * (r + 1), 0) for r in range(10)] + [Insn(0x95)]
    return pre + out + post


@_settings
@given(insns=unroll_loops(), size=st.integers(8, 120), budget=st.sampled_from(BUDGETS))
def test_unrolled_loops_agree(insns: list[Insn], size: int, budget: int) -> None:
    init = bytes((i * 37 + 11) & 0xFF for i in range(size))
    want = observe("interp", insns, init=init, budget=budget)
    for engine in ENGINES:
        assert observe(engine, insns, init=init, budget=budget) == want, disasm(insns)


def _source(insns: list[Insn]) -> str:
    from engine_harness import prog

    from tinyaya.sim_kernel import SimKernel
    from tinyaya.sim_kernel.vm.compiled.translate import build

    return build(prog(insns), SimKernel().vm).source


FNV = [Insn(0x0F, 2, 1, 0, 0), Insn(0xBF, 6, 1, 0, 0), Insn(0xB7, 4, 0, 0, 0), Insn(0xB7, 0, 0, 0, 7),
       Insn(0xB7, 5, 0, 0, 0x1000193), Insn(0xBF, 3, 6, 0, 0), Insn(0x07, 3, 0, 0, 1), Insn(0x2D, 3, 2, 6, 0),
       Insn(0x71, 3, 6, 0, 0), Insn(0xAF, 0, 3, 0, 0), Insn(0x2F, 0, 5, 0, 0),
       Insn(0x07, 6, 0, 0, 1), Insn(0x07, 4, 0, 0, 1), Insn(0xA5, 4, 0, -9, 100), Insn(0x95)]


def test_an_fnv_loop_gets_a_block_of_passes_without_tests() -> None:
    src = _source(FNV)
    block = src[src.index("while b >= "):src.index("for _ in")]
    assert f"b -= {K}" in block and f"r6 = r6 + {K}" in block and f"r4 = r4 + {K}" in block
    assert "if " not in block.split("\n", 1)[1]
    for budget in BUDGETS:
        for size in (1, 40, 99, 100, 101, 200):
            mem = bytes((i * 7 + 3) & 0xFF for i in range(size))
            want = observe("interp", FNV, mem=mem, budget=budget)
            for engine in ENGINES:
                assert observe(engine, FNV, mem=mem, budget=budget) == want, (budget, size)


def test_loops_of_other_shapes_are_not_unrolled() -> None:
    # a store in the body: no block
    insns = [Insn(0xB7, 4, 0, 0, 0), Insn(0x73, 1, 4, 0, 0), Insn(0x07, 1, 0, 0, 1), Insn(0x07, 4, 0, 0, 1),
             Insn(0xA5, 4, 0, -4, 10), Insn(0x95)]
    assert "while b >= " not in _source(insns)


def test_an_unrolled_loop_in_a_bpf_to_bpf_callee() -> None:
    insns = [Insn(0x85, 0, 1, 0, 3), Insn(0xBF, 6, 0, 0, 0), Insn(0x07, 0, 0, 0, 1), Insn(0x95), *FNV]
    assert "while b >= " in _source(insns)
    for budget in BUDGETS:
        for size in (5, 40, 99, 100, 101, 200):
            mem = bytes((i * 5 + 1) & 0xFF for i in range(size))
            want = observe("interp", insns, mem=mem, budget=budget)
            for engine in ENGINES:
                assert observe(engine, insns, mem=mem, budget=budget) == want, (budget, size)


def test_a_copy_of_a_counter_that_wraps_is_read_wrapped() -> None:
    # r7 counts up to just below 2**64 (no wrap: the copy without checks), r3 = r7 + 0x7FFFFFFF
    # wraps from the first pass on (not right after the move: translate's no-wrap conditions do not
    # cover it); r0 copies it, r8 is its top bits, mixed into r9
    m64 = (1 << 64) - 1
    v = m64 - 0x7FFFFFFF - 200
    insns = [Insn(0x18, 7, 0, 0, v & 0xFFFFFFFF), Insn(0, 0, 0, 0, v >> 32), Insn(0xB7, 4, 0, 0, 0),
             Insn(0xB7, 9, 0, 0, 0),
             Insn(0xBF, 3, 7, 0, 0), Insn(0xB7, 5, 0, 0, 1), Insn(0x07, 3, 0, 0, 0x7FFFFFFF), Insn(0x07, 3, 0, 0, 150),
             Insn(0xBF, 0, 3, 0, 0), Insn(0xBF, 8, 3, 0, 0), Insn(0x77, 8, 0, 0, 60), Insn(0xAF, 9, 8, 0, 0),
             Insn(0x07, 7, 0, 0, 1), Insn(0x07, 4, 0, 0, 1), Insn(0xA5, 4, 0, -11, 100),
             *[Insn(0x7B, 10, r, -8 * (r + 1), 0) for r in range(10)], Insn(0x95)]
    assert "while b >= " in _source(insns)
    for budget in BUDGETS:
        want = observe("interp", insns, budget=budget)
        for engine in ENGINES:
            assert observe(engine, insns, budget=budget) == want, budget
