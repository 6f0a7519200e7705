"""PROG_TEST_RUN's repeat loop in the native tier (through the machine code's builtin entry point): the
last run's r0, and a fault or the budget trap exactly as the interpreter reports them."""
from __future__ import annotations

import pytest
from engine_harness import prog, sim_kernel

from tinyaya.isa import assemble
from tinyaya.sim_kernel.vm import BpfFault
from tinyaya.sim_kernel.vm.compiled import native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="llvmlite is not installed (tinyaya[jit])")
XDP = 6

SUM = assemble("""
    ldxw r2, [r1+4]
    ldxw r1, [r1+0]
    mov r0, 0
loop:
    mov r3, r1
    add r3, 1
    jgt r3, r2, done
    ldxb r3, [r1+0]
    add r0, r3
    add r1, 1
    ja loop
done:
    exit
""")
FAULT = assemble("""
    mov r0, 7
    ldxdw r0, [r0+0]
    exit
""")
FOREVER = assemble("""
    mov r0, 0
loop:
    add r0, 1
    ja loop
""")


def _outcome(engine: str, insns: list, repeat: int, budget: int | None = None) -> object:
    k = sim_kernel(engine)
    if budget is not None:
        k.vm.budget = budget
    p = prog(insns, XDP)
    try:
        res = k.vm.test_run(p, bytes(range(64)), None, repeat, 0, 0, 0, 0)
    except BpfFault as f:
        return ("fault", f.pc, f.addr, f.message, str(f))
    return res[0] if isinstance(res, tuple) else getattr(res, "retval", res)


@pytest.mark.parametrize("repeat", [1, 2, 300])
def test_repeat_gives_the_interpreters_r0(repeat: int) -> None:
    assert _outcome("native", SUM, repeat) == _outcome("interp", SUM, repeat) == sum(range(64))


@pytest.mark.parametrize("insns", [FAULT, FOREVER], ids=["fault", "budget"])
def test_repeat_stops_like_the_interpreter(insns: list) -> None:
    want = _outcome("interp", insns, 50, budget=1000)
    got = _outcome("native", insns, 50, budget=1000)
    assert want[0] == "fault" and got == want
