"""Hypothesis programs give identical results under every engine and the interpreter.

Two families:

* wild programs, run unverified on ``Vm.run``: every ALU op, loads and stores of every width
  through a writable region, a read-only region, the stack (inside and outside the frame,
  unaligned) and garbage pointers, atomics, forward and backward jumps (a small back-edge budget
  makes some of them run out), helpers, an unknown helper, bpf-to-bpf calls, may_goto, LD_ABS.
  Compared: r0 or the fault (pc, address, message, instruction text), both regions, the stack;
* valid programs (tests/vm/randprog.py, the differential tests' generator), loaded through
  BPF_PROG_LOAD (the verifier) and run by BPF_PROG_TEST_RUN on SimKernel; compared: retval,
  data_out and the maps.

``TINYAYA_FUZZ_EXAMPLES`` scales the number of examples.
"""
from __future__ import annotations

import os
from typing import Any

import pytest
from engine_harness import ENGINES, observe, sim_kernel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from randprog import alu, programs
from vmdiff import XDP, ArrayMap, Rejected, run_program

from tinyaya.isa import Insn
from tinyaya.isa.disasm import disasm

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
SIZES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
ALL_REGS = list(range(10))
_settings = settings(max_examples=EXAMPLES * 3, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mem_op(draw: st.DrawFn) -> list[Insn]:
    size_code = draw(st.sampled_from(list(SIZES)))
    size = SIZES[size_code]
    base = draw(st.sampled_from([1, 1, 2, 10, 10, 3]))
    if base == 10:
        off = draw(st.one_of(st.integers(-520, 16), st.just(-size * draw(st.integers(1, 8)))))
    else:
        off = draw(st.integers(-16, 72))
    r = draw(st.sampled_from([0, 3, 4, 5, 6, 7]))
    kind = draw(st.sampled_from(["ldx", "ldsx", "stx", "st", "atomic"]))
    if kind == "ldx" or kind == "ldsx" and size == 8:
        return [Insn(0x61 | size_code, r, base, off, 0)]
    if kind == "ldsx":
        return [Insn(0x81 | size_code, r, base, off, 0)]
    if kind == "stx":
        return [Insn(0x63 | size_code, base, r, off, 0)]
    if kind == "st":
        return [Insn(0x62 | size_code, base, 0, off, draw(st.integers(-(1 << 31), (1 << 31) - 1)))]
    imm = draw(st.sampled_from([0x00, 0x40, 0x50, 0xA0, 0x01, 0x41, 0x51, 0xA1, 0xE1, 0xF1]))
    return [Insn(0xC3 | size_code, base, r, off, imm)]


@st.composite
def jump(draw: st.DrawFn) -> tuple[str, Insn, int]:
    """A jump placeholder: the offset is a distance in items, resolved after layout."""
    cls = draw(st.sampled_from([0x05, 0x06]))
    op = draw(st.sampled_from([0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0]))
    dst = draw(st.sampled_from(ALL_REGS + [10]))
    if op and draw(st.booleans()):
        ins = Insn(cls | 0x08 | op, dst, draw(st.sampled_from(ALL_REGS)), 0, 0)
    else:
        ins = Insn(cls | op, dst if op else 0, 0, 0, draw(st.integers(-8, 40)) if op else 0)
    return ("jmp", ins, draw(st.integers(-6, 6)))


@st.composite
def misc(draw: st.DrawFn) -> list[Insn] | tuple[str, Insn, int]:
    kind = draw(st.sampled_from(["helper", "unknown", "lddw", "movfp", "ldabs", "maygoto", "call", "bad"]))
    if kind == "helper":
        return [Insn(0x85, 0, 0, 0, draw(st.sampled_from([5, 7, 8, 14, 15])))]
    if kind == "unknown":
        return [Insn(0x85, 0, 0, 0, 99999)]
    if kind == "lddw":
        v = draw(st.integers(0, (1 << 64) - 1))
        lo, hi = v & 0xFFFF_FFFF, v >> 32
        return [Insn(0x18, draw(st.sampled_from(ALL_REGS)), 0, 0, lo - (1 << 32) if lo >> 31 else lo),
                Insn(0, 0, 0, 0, hi - (1 << 32) if hi >> 31 else hi)]
    if kind == "movfp":
        r = draw(st.sampled_from([3, 4, 5]))
        return [Insn(0xBF, r, 10, 0, 0), Insn(0x07, r, 0, 0, draw(st.integers(-40, 8)))]
    if kind == "ldabs":
        return [Insn(draw(st.sampled_from([0x20, 0x28, 0x30])), 0, 0, 0, draw(st.integers(0, 20)))]
    if kind == "maygoto":
        return ("maygoto", Insn(0xE5, 0, 0, 0, 0), draw(st.integers(-4, 4)))
    if kind == "call":
        return ("call", Insn(0x85, 0, 1, 0, 0), 0)
    return [Insn(draw(st.sampled_from([0xFF, 0x8F, 0x07 | 0xD0, 0x06 | 0xE0])), 11, 0, 0, 0)]


@st.composite
def wild_programs(draw: st.DrawFn) -> list[Insn]:
    items: list[Any] = []
    for _ in range(draw(st.integers(1, 30))):
        items.append(draw(st.one_of(alu(ALL_REGS), alu(ALL_REGS), mem_op(), mem_op(), jump(), misc())))
    sub = [Insn(0xB7, 0, 0, 0, draw(st.integers(0, 9)))] + draw(alu([0, 1, 2, 6])) + [Insn(0x95)]
    # the subprogram calls itself sometimes: the frame limit (8) then faults
    recursive = draw(st.booleans())
    # layout: item i starts at starts[i]; jumps count in items, clamped into the program
    starts, pc = [], 0
    for it in items:
        starts.append(pc)
        pc += len(it) if isinstance(it, list) else 1
    end = pc  # the final exit
    sub_at = end + 1
    out: list[Insn] = []
    for i, it in enumerate(items):
        if isinstance(it, list):
            out += it
            continue
        kind, ins, dist = it
        here = starts[i]
        if kind == "call":
            out.append(ins.replace(imm=sub_at - here - 1))
            continue
        j = min(max(i + dist, 0), len(items))
        tgt = starts[j] if j < len(items) else end
        delta = tgt - here - 1
        if ins.code & 0x07 == 0x06 and ins.code & 0xF0 == 0:
            out.append(ins.replace(imm=delta))
        else:
            out.append(ins.replace(off=delta))
    out.append(Insn(0x95))
    if recursive:
        sub = sub[:-1] + [Insn(0x85, 0, 1, 0, -(len(sub)))] + [Insn(0x95)]
    return out + sub


@pytest.mark.parametrize("engine", ENGINES)
@_settings
@given(insns=wild_programs(), init=st.binary(min_size=64, max_size=64), budget=st.sampled_from([3, 40, 1 << 20]))
def test_wild_programs_agree(engine: str, insns: list[Insn], init: bytes, budget: int) -> None:
    want = observe("interp", insns, init=init, budget=budget, runs=2)
    got = observe(engine, insns, init=init, budget=budget, runs=2)
    assert got == want, f"program:\n{disasm(insns)}"


def _outcome(engine: str, insns: list[Insn], data: bytes, maps: tuple[ArrayMap, ...]) -> Any:
    k = sim_kernel(engine)
    try:
        return run_program(k, XDP, insns, data=data, maps=maps, repeat=2)
    except Rejected:
        return "rejected"
    finally:
        k.shutdown()


@pytest.mark.parametrize("engine", ENGINES)
@_settings
@given(insns=programs(with_maps=True, with_calls=True), data=st.binary(min_size=96, max_size=96),
       init=st.binary(min_size=32, max_size=32))
def test_verified_programs_agree(engine: str, insns: list[Insn], data: bytes, init: bytes) -> None:
    maps = (ArrayMap(32, 1, init),)
    want = _outcome("interp", insns, data, maps)
    got = _outcome(engine, insns, data, maps)
    assert got == want, f"program:\n{disasm(insns)}"
