"""Superinstructions (fuse.py) change nothing: the same programs give the same r0, memory and faults
with and without them."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from randprog import alu
from vmfakes import FakeKernel, prog

from tinyaya.isa import Insn
from tinyaya.sim_kernel.memory import RegionKind
from tinyaya.sim_kernel.vm import BpfFault

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40")) * 3
SIZES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}


@st.composite
def mem_op(draw: st.DrawFn) -> list[Insn]:
    """A load or store through r1 (writable) or r2 (read-only), in bounds or not."""
    size_code = draw(st.sampled_from(list(SIZES)))
    base = draw(st.sampled_from([1, 2, 10]))
    off = draw(st.integers(-16, 72)) if base != 10 else -SIZES[size_code] * draw(st.integers(1, 8))
    reg = draw(st.sampled_from([3, 4, 5]))
    kind = draw(st.sampled_from(["ldx", "ldsx", "stx", "st"]))
    if kind == "ldx":
        return [Insn(0x61 | size_code, reg, base, off, 0)]
    if kind == "ldsx" and size_code != 0x18:
        return [Insn(0x81 | size_code, reg, base, off, 0)]
    if kind == "stx":
        return [Insn(0x63 | size_code, base, reg, off, 0)]
    return [Insn(0x62 | size_code, base, 0, off, draw(st.integers(-(1 << 31), (1 << 31) - 1)))]


@st.composite
def programs(draw: st.DrawFn) -> list[Insn]:
    body: list[Insn] = []
    for _ in range(draw(st.integers(1, 25))):
        body += draw(st.one_of(alu([3, 4, 5]), mem_op()))
    return body


def _run(fuse: bool, body: list[Insn], init: bytes) -> tuple:
    k = FakeKernel()
    k.vm.fuse = fuse
    rw = k.aspace.add(bytearray(init), RegionKind.MAP_VALUE, "rw")
    ro = k.aspace.add(bytearray(init), RegionKind.RODATA, "ro", writable=False)
    head = [Insn(0x18, 1, 0, 0, rw.base & 0xFFFF_FFFF), Insn(0, 0, 0, 0, rw.base >> 32),
            Insn(0x18, 2, 0, 0, ro.base & 0xFFFF_FFFF), Insn(0, 0, 0, 0, ro.base >> 32),
            Insn(0xB7, 3, 0, 0, 1), Insn(0xB7, 4, 0, 0, 2), Insn(0xB7, 5, 0, 0, 3)]
    tail = [Insn(0xBF, 0, 3), Insn(0xAF, 0, 4), Insn(0xAF, 0, 5), Insn(0x95)]
    try:
        r0: object = k.vm.run(prog(head + body + tail, prog_type=2), 0, 0)
    except BpfFault as f:
        r0 = (f.pc, f.addr, f.message)
    env = k.vm._states[0][0]
    return r0, bytes(rw.buf), bytes(ro.buf), tuple(env.regs[:10]), bytes(env.stack.buf)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=programs(), init=st.binary(min_size=64, max_size=64))
def test_fused_equals_single_step(body: list[Insn], init: bytes) -> None:
    assert _run(True, body, init) == _run(False, body, init)


def test_a_fault_inside_a_fused_run_names_its_instruction() -> None:
    body = [Insn(0x07, 3, 0, 0, 1), Insn(0x73, 1, 3, 0, 0), Insn(0x73, 1, 3, 70, 0), Insn(0x07, 3, 0, 0, 1)]
    fused, single = _run(True, body, bytes(64)), _run(False, body, bytes(64))
    assert fused == single
    assert fused[0][0] == 7 + 2  # the out-of-bounds store, after the 7-slot head
