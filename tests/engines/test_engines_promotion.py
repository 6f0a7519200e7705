"""The compiled engine hands a hot program to the native tier: in the background on the event path
(the compiled tier keeps running it meanwhile), synchronously for PROG_TEST_RUN's repeat loop. Every run,
before, during and after the switch, gives the interpreter's answer."""
from __future__ import annotations

import pytest
from engine_harness import prog

from tinyaya.isa import assemble
from tinyaya.sim_kernel import SimKernel
from tinyaya.sim_kernel.memory import RegionKind
from tinyaya.sim_kernel.vm.compiled import install, native_available
from tinyaya.sim_kernel.vm.compiled.engine import HOT_RUNS

pytestmark = pytest.mark.skipif(not native_available(), reason="llvmlite is not installed (tinyaya[jit])")

LOOP = assemble("""
    mov r0, 0
    ldxw r2, [r1+0]
    mov r3, 0
loop:
    add r0, r3
    xor r0, r2
    add r3, 1
    jlt r3, 40, loop
    stxdw [r1+8], r0
    exit
""")


def _runs(engine: str, n: int, *, auto_native: bool) -> tuple[list[int], bytes, object]:
    k = SimKernel()
    eng = install(k.vm, engine, auto_native=auto_native)
    rw = k.aspace.add(bytearray(64), RegionKind.MAP_VALUE, "rw")
    p = prog(LOOP)
    out = []
    for i in range(n):
        rw.buf[0:4] = (i * 2654435761 & 0xFFFFFFFF).to_bytes(4, "little")
        out.append(k.vm.run(p, rw.base, 0))
        if eng is not None and i == HOT_RUNS + 5:
            eng.wait_builds()
    if eng is not None:
        eng.wait_builds()
    return out, bytes(rw.buf), p


def test_background_promotion_switches_to_native_with_the_same_results() -> None:
    want, want_mem, _ = _runs("interp", HOT_RUNS + 40, auto_native=False)
    got, got_mem, p = _runs("compiled", HOT_RUNS + 40, auto_native=True)
    assert got == want
    assert got_mem == want_mem
    assert p.compiled.get("native") is not None, p.compiled.get("native_reason")


def test_without_auto_native_nothing_is_built() -> None:
    _, _, p = _runs("compiled", HOT_RUNS + 5, auto_native=False)
    assert "native" not in p.compiled


def test_test_run_repeat_promotes_synchronously() -> None:
    k = SimKernel()
    install(k.vm, "compiled", auto_native=True)
    p = prog(assemble("mov r0, 0\nmov r1, 0\nloop:\nadd r1, 1\nadd r0, r1\njlt r1, 100, loop\nexit"), prog_type=6)
    res = k.vm.test_run(p, bytes(64), None, HOT_RUNS, 0, 0, 0, 0)
    assert p.compiled.get("native") is not None, p.compiled.get("native_reason")
    retval = res[0] if isinstance(res, tuple) else getattr(res, "retval", res)
    assert retval == 5050
