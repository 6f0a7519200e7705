"""Every bpf_conformance program (../shared/conformance) gives the same r0 or fault, and leaves the
same memory and stack, under every engine as under the interpreter."""
from __future__ import annotations

import pytest
from conformance_data import conformance_dir, load_all
from engine_harness import ENGINES, observe

from tinyaya.isa import AsmError

SUITE = conformance_dir()
TESTS = load_all() if SUITE is not None else []
pytestmark = pytest.mark.skipif(SUITE is None, reason="bpf_conformance suite not found (../shared/conformance)")


def _cases() -> list:
    out = []
    for t in TESTS:
        try:
            insns = t.program()
        except AsmError:
            continue
        if insns:
            out.append((t.name, insns, t.mem))
    return out


CASES = _cases()


@pytest.mark.parametrize("engine", ENGINES)
def test_conformance_programs_agree(engine: str) -> None:
    assert len(CASES) >= 300
    diffs = []
    for name, insns, mem in CASES:
        want = observe("interp", insns, mem=mem, runs=2)
        got = observe(engine, insns, mem=mem, runs=2)
        if got != want:
            diffs.append(f"{name}: interp {want[0]} {engine} {got[0]}")
    assert not diffs, "\n".join(diffs[:20])


def test_most_conformance_programs_compile() -> None:
    """The compiled tier takes the suite's programs itself (it does not hand them to the interpreter)."""
    from engine_harness import prog, sim_kernel

    k = sim_kernel("compiled")
    declined = {}
    for name, insns, _mem in CASES:
        p = prog(insns)
        if k.vm.engine.compiled_for(p) is None:
            declined[name] = p.compiled.get("compiled_reason")
    assert len(declined) <= len(CASES) // 10, declined
