"""Accesses through a pointer just below its region: ``r3 = value - k; *(r3 + k + i)``.

Linux accepts them (the verifier tracks the pointer's offset, the access is in bounds) and the CPU
uses the address ``base + off``. Regions are 4 GiB apart (memory.py), so the base pointer here lies in
the slot of the region below; every engine must use the region of the exact address, and agree with
the interpreter to the letter, including on the faults where the exact address is invalid.

Layout: ``low`` (read-only rodata, r2) then ``high`` (a writable map value, r1) in the next slot, so a
pointer just below ``high`` sits past the end of ``low``, whose slot it shares.
"""
from __future__ import annotations

from typing import Any

import pytest
from engine_harness import ALL, ENGINES, prog, sim_kernel

from tinyaya.isa import Insn
from tinyaya.sim_kernel.memory import REGION_SPAN, RegionKind
from tinyaya.sim_kernel.vm import BpfFault

LOW = bytes(range(0x80, 0xC0))
HIGH = bytes(range(1, 65))
_LDX = {1: 0x71, 2: 0x69, 4: 0x61, 8: 0x79}
_ST = {1: 0x72, 2: 0x6A, 4: 0x62, 8: 0x7A}
_STX = {1: 0x73, 2: 0x6B, 4: 0x63, 8: 0x7B}
_ATOMIC = {1: 0xD3, 2: 0xCB, 4: 0xC3, 8: 0xDB}
BPF_ADD, BPF_FETCH, BPF_XCHG, BPF_CMPXCHG, LOAD_ACQ, STORE_REL = 0x00, 0x01, 0xE1, 0xF1, 0x100, 0x110
EXIT = Insn(0x95)


def mov(d: int, s: int) -> Insn:
    return Insn(0xBF, d, s)


def movi(d: int, imm: int) -> Insn:
    return Insn(0xB7, d, 0, 0, imm)


def addi(d: int, imm: int) -> Insn:
    return Insn(0x07, d, 0, 0, imm)


def below(k: int, reg: int = 1) -> list[Insn]:
    """r3 = r<reg> - k."""
    return [mov(3, reg), addi(3, -k)]


def run(engine: str, insns: list[Insn], runs: int = 3) -> tuple[Any, ...]:
    """r0 or the fault of each run (the compiled tiers keep region lookups across runs), then both
    regions' bytes."""
    k = sim_kernel(engine)
    low = k.aspace.add(bytearray(LOW), RegionKind.RODATA, "low", writable=False)
    high = k.aspace.add(bytearray(HIGH), RegionKind.MAP_VALUE, "high")
    assert high.base == low.base + REGION_SPAN
    p = prog(insns)
    out: list[Any] = []
    for _ in range(runs):
        try:
            out.append(k.vm.run(p, high.base, 0, args=(low.base,)))
        except BpfFault as f:
            out.append(("fault", f.pc, f.addr, f.message, f.insn_text))
    if engine != "interp":  # the engine's own tier ran it (the native tier hands atomics to compiled)
        atomics = any(i.code & 0xE7 == 0xC3 for i in insns)
        tier = "compiled" if engine == "native" and atomics else engine
        assert p.compiled.get(tier) is not None, p.compiled
    return tuple(out), bytes(high.buf), bytes(low.buf), (low.base, high.base)


def agree(engine: str, insns: list[Insn]) -> tuple[Any, ...]:
    got = run(engine, insns)
    if engine != "interp":
        assert got == run("interp", insns)
    return got


def le(data: bytes) -> int:
    return int.from_bytes(data, "little")


@pytest.mark.parametrize("engine", ALL)
@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("k", [1, 8, 100])
def test_load_through_a_pointer_below_its_region(engine: str, size: int, k: int) -> None:
    got = agree(engine, below(k) + [Insn(_LDX[size], 0, 3, k + 3), EXIT])
    assert got[0] == (le(HIGH[3:3 + size]),) * 3


@pytest.mark.parametrize("engine", ALL)
@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_load_acquire_store_release_through_a_pointer_below_its_region(engine: str, size: int) -> None:
    insns = below(1) + [Insn(_ATOMIC[size], 0, 3, 1, LOAD_ACQ), movi(4, -1),
                        Insn(_ATOMIC[size], 3, 4, 1 + size, STORE_REL), EXIT]
    got = agree(engine, insns)
    assert got[0] == (le(HIGH[:size]),) * 3
    assert got[1] == HIGH[:size] + b"\xff" * size + HIGH[2 * size:]


@pytest.mark.parametrize("engine", ALL)
@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_store_through_a_pointer_below_its_region(engine: str, size: int) -> None:
    """The base pointer's slot holds a read-only region: the write goes to the exact address's."""
    insns = below(1) + [Insn(_ST[size], 3, 0, 1, 0x5A), movi(4, -1), Insn(_STX[size], 3, 4, 1 + size),
                        Insn(_STX[size], 3, 4, 1 + 2 * size), movi(0, 0), EXIT]
    got = agree(engine, insns)
    assert got[0] == (0, 0, 0)
    want = bytearray(HIGH)
    want[0:size] = (0x5A).to_bytes(size, "little")
    want[size:3 * size] = b"\xff" * 2 * size
    assert got[1] == bytes(want) and got[2] == LOW


@pytest.mark.parametrize("engine", ALL)
@pytest.mark.parametrize("size", [4, 8])
def test_atomics_through_a_pointer_below_its_region(engine: str, size: int) -> None:
    a = _ATOMIC[size]
    insns = below(2) + [movi(4, 5), Insn(a, 3, 4, 2, BPF_ADD),                   # high[0] += 5
                        movi(5, 7), Insn(a, 3, 5, 2 + size, BPF_ADD | BPF_FETCH),  # r5 = old high[1]
                        movi(6, 9), Insn(a, 3, 6, 2 + 2 * size, BPF_XCHG),         # r6 = old high[2]
                        movi(0, 0), movi(7, 11), Insn(a, 3, 7, 2 + 3 * size, BPF_CMPXCHG),  # r0 != old
                        mov(0, 5), Insn(0x0F, 0, 6), EXIT]                       # r0 = r5 + r6
    got = agree(engine, insns)
    word = [le(HIGH[i * size:(i + 1) * size]) for i in range(4)]
    # three runs: the add accumulates, fetch-add returns the previous run's value, xchg returns 9
    assert got[0] == (word[1] + word[2], word[1] + 7 + 9, word[1] + 14 + 9)
    mask = (1 << (8 * size)) - 1
    assert le(got[1][:size]) == (word[0] + 15) & mask
    assert le(got[1][size:2 * size]) == (word[1] + 21) & mask
    assert le(got[1][2 * size:3 * size]) == 9
    assert got[1][3 * size:4 * size] == HIGH[3 * size:4 * size]  # cmpxchg compared with 0: no write


@pytest.mark.parametrize("engine", ALL)
def test_one_base_register_in_two_regions(engine: str) -> None:
    """r3 stays below ``high`` for several accesses in one straight run, then moves into it in a loop:
    reads of high[0..3] through (r3 + 1) with r3 = high - 1, high, high + 1, high + 2."""
    insns = below(1) + [movi(0, 0), Insn(_LDX[1], 4, 3, 1), Insn(_LDX[1], 5, 3, 2), Insn(_STX[1], 3, 4, 9),
                        movi(6, 4),
                        Insn(_LDX[1], 7, 3, 1), Insn(0x0F, 0, 7), addi(3, 1), addi(6, -1), Insn(0x55, 6, 0, -5, 0),
                        Insn(0x0F, 0, 5), EXIT]
    got = agree(engine, insns)
    assert got[0] == (sum(HIGH[:4]) + HIGH[1],) * 3
    assert got[1][8] == HIGH[0]


def _fault(got: tuple[Any, ...]) -> tuple[Any, ...]:
    out = got[0]
    assert len(out) == 3 and all(o == out[0] for o in out)
    assert out[0][0] == "fault", out
    return out[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("engine", ALL)
@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_truly_invalid_accesses_below_a_region_fault_identically(engine: str, size: int) -> None:
    # one byte below high: past the end of low, whose slot it is
    got = agree(engine, below(1) + [Insn(_LDX[size], 0, 3, 1), Insn(_LDX[size], 0, 3, 0), EXIT])
    pc, addr, msg, _text = _fault(got)[1:]
    low_base, high_base = got[3]
    assert (pc, addr) == (3, high_base - 1) and "past the end of rodata region 'low'" in msg
    # a store that reaches read-only low from the slot below it
    got = agree(engine, below(1, reg=2) + [Insn(_ST[size], 3, 0, 1, 1), EXIT])
    pc, addr, msg, _text = _fault(got)[1:]
    assert (pc, addr, msg) == (2, low_base, "write to read-only rodata region 'low'")
    # an atomic add one byte into high's slot from below, straddling the regions' boundary
    if size >= 4:
        got = agree(engine, below(1) + [movi(4, 1), Insn(_ATOMIC[size], 3, 4, 0, BPF_ADD), EXIT])
        pc, addr, _msg, _text = _fault(got)[1:]
        assert (pc, addr) == (3, high_base - 1)
        assert got[1] == HIGH
    # nothing mapped at all
    got = agree(engine, [movi(3, 0), Insn(_LDX[size], 0, 3, 16), EXIT])
    pc, addr, msg, _text = _fault(got)[1:]
    assert (pc, addr) == (1, 16) and "unmapped" in msg


def test_the_engines_under_test() -> None:
    assert "compiled" in ENGINES
