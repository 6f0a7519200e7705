"""The native tier checks a run of accesses through one register once (``_Gen.emit_group``) and runs them
unchecked when they all fit one region; otherwise each access is checked and the fault is the one the
interpreter raises, at the same pc, after the same earlier stores. Compared with the interpreter here."""
from __future__ import annotations

import pytest
from engine_harness import observe

from tinyaya.isa import assemble
from tinyaya.sim_kernel.vm.compiled import native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="llvmlite is not installed")

CASES = {
    "all_inside": "stdw [%r1+0], 1\nstw [%r1+8], 2\nsth [%r1+12], 3\nstb [%r1+63], 4\nldxdw %r0, [%r1+0]\nexit",
    "last_past_the_end": "stdw [%r1+0], 1\nstw [%r1+8], 2\nstdw [%r1+60], 3\nstb [%r1+1], 9\nmov %r0, 1\nexit",
    "first_past_the_end": "stdw [%r1+64], 1\nstw [%r1+8], 2\nmov %r0, 1\nexit",
    "below_the_region": "stb [%r1+5], 7\nstb [%r1-1], 1\nmov %r0, 1\nexit",
    "pointer_below_plus_offset": "add %r1, -8\nstdw [%r1+8], 5\nstdw [%r1+16], 6\nldxdw %r0, [%r1+8]\nexit",
    "read_only_loads": "ldxdw %r0, [%r2+0]\nldxw %r3, [%r2+60]\nadd %r0, %r3\nexit",
    "read_only_store": "ldxdw %r0, [%r2+0]\nstw [%r2+4], 1\nmov %r0, 1\nexit",
    "base_reloaded": "stdw [%r1+0], 16\nstdw [%r1+8], 1\nldxdw %r1, [%r1+0]\nstdw [%r1+0], 2\nexit",
    "base_moved": "stdw [%r1+0], 1\nadd %r1, 32\nstdw [%r1+0], 2\nstdw [%r1+32], 3\nmov %r0, 0\nexit",
    "other_register_between": "stdw [%r1+0], 1\nldxdw %r4, [%r2+8]\nstxdw [%r1+8], %r4\nstdw [%r1+16], 2\nexit",
    "unmapped_base": "mov %r1, 8\nstdw [%r1+0], 1\nstdw [%r1+8], 2\nexit",
    "sign_extending_loads": "stdw [%r1+0], -1\nldxsb %r0, [%r1+0]\nldxsh %r3, [%r1+2]\nadd %r0, %r3\nexit",
}


@pytest.mark.parametrize("name", list(CASES))
def test_group_agrees_with_the_interpreter(name: str) -> None:
    insns = assemble(CASES[name])
    init = bytes(range(64))
    assert observe("native", insns, init=init, runs=2) == observe("interp", insns, init=init, runs=2)
