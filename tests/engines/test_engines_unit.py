"""Engine selection, the translation cache, and the cases where the engines must agree to the letter:
faults (pc, message, address), the back-edge budget, the call-depth limit, tail calls, helpers."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from engine_harness import ENGINES, observe, prog, sim_kernel
from vmdiff import XDP, Rejected, run_program

from tinyaya.isa import Insn, assemble
from tinyaya.sim_kernel.vm.compiled import Engine, install, native_available

HERE = Path(__file__).resolve().parent


def _helper_cases() -> dict[str, Any]:
    """The helper programs of tests/differential/test_vm_helpers.py (hash, queue, stack, probe_read,
    ringbuf, tail_call through a PROG_ARRAY)."""
    path = HERE.parent / "differential" / "test_vm_helpers.py"
    spec = importlib.util.spec_from_file_location("_engines_vm_helper_cases", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return dict(mod.CASES)


HELPER_CASES = _helper_cases()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(HELPER_CASES))
def test_helper_programs_agree(engine: str, name: str) -> None:
    insns, maps = HELPER_CASES[name]

    def outcome(e: str) -> Any:
        k = sim_kernel(e)
        try:
            return run_program(k, XDP, insns, data=bytes(range(7, 71)), maps=maps, repeat=3)
        except Rejected as err:
            return ("rejected", str(err)[-200:])

    assert outcome(engine) == outcome("interp")


@pytest.mark.parametrize("engine", ENGINES)
def test_out_of_bounds_store_faults_at_the_same_pc(engine: str) -> None:
    insns = assemble("mov %r3, 7\nstxb [%r1+10], %r3\nstxdw [%r1+60], %r3\nmov %r0, 1\nexit")
    got, want = observe(engine, insns), observe("interp", insns)
    assert got == want
    fault = got[0][0]
    assert fault[0] == "fault" and fault[1] == 2 and "past the end" in fault[3]
    assert got[1][10] == 7  # the store before the fault happened


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("insns", [
    "stb [%r2+0], 1\nexit",                     # read-only region
    "mov %r3, 0\nldxw %r0, [%r3+0]\nexit",      # NULL
    "ldxdw %r0, [%r10+8]\nexit",                # above the frame: still the stack region
    "ldxdw %r0, [%r10-4097]\nexit",             # below the stack region
    "lddw %r1, 0x1234\nlddw %r2, 0x5678\ncall 99999\nexit",  # unknown helper
], ids=["readonly", "null", "above-frame", "below-stack", "unknown-helper"])
def test_faults_agree(engine: str, insns: str) -> None:
    p = assemble(insns)
    assert observe(engine, p) == observe("interp", p)


@pytest.mark.parametrize("engine", ENGINES)
def test_back_edge_budget_runs_out_at_the_same_jump(engine: str) -> None:
    insns = assemble("mov %r0, 0\nadd %r0, 1\nja -2\nexit")
    got, want = observe(engine, insns, budget=1000), observe("interp", insns, budget=1000)
    assert got == want
    assert got[0][0][1] == 2 and "budget" in got[0][0][3]


@pytest.mark.parametrize("engine", ENGINES)
def test_call_depth_limit(engine: str) -> None:
    # a function that calls itself forever: the 8-frame limit faults at the call
    insns = [Insn(0x85, 0, 1, 0, 1), Insn(0x95), Insn(0x07, 0, 0, 0, 1), Insn(0x85, 0, 1, 0, -2), Insn(0x95)]
    got, want = observe(engine, insns), observe("interp", insns)
    assert got == want
    assert "too deep" in got[0][0][3]


@pytest.mark.parametrize("engine", ENGINES)
def test_bpf_to_bpf_calls_keep_callee_saved_registers(engine: str) -> None:
    insns = assemble("""
mov %r6, 5
mov %r1, 3
call 4
add %r0, %r6
stxdw [%r10-8], %r0
ldxdw %r0, [%r10-8]
exit
mov %r6, 100
stxdw [%r10-8], %r6
ldxdw %r0, [%r10-8]
add %r0, %r1
exit
""".replace("call 4", "call 4"))
    insns[2] = Insn(0x85, 0, 1, 0, 4)
    got = observe(engine, insns)
    assert got == observe("interp", insns)
    assert got[0] == (108,)


def test_translation_is_cached_per_program() -> None:
    k = sim_kernel("compiled")
    p = prog(assemble("mov %r0, 42\nexit"))
    assert k.vm.run(p, 0, 0) == 42
    cp = p.compiled["compiled"]
    assert k.vm.run(p, 0, 0) == 42
    assert p.compiled["compiled"] is cp
    assert "interp" not in p.compiled  # the interpreter never decoded it
    assert "def f_0" in cp.source


def test_callx_is_left_to_the_interpreter() -> None:
    k = sim_kernel("compiled")
    p = prog([Insn(0xB7, 2, 0, 0, 7), Insn(0x8D, 0, 2, 0, 0), Insn(0x95)])
    assert k.vm.engine.compiled_for(p) is None
    assert p.compiled["compiled_reason"] == "callx"
    assert observe("compiled", p.insns) == observe("interp", p.insns)


def test_install_selects_and_removes_engines() -> None:
    from tinyaya.sim_kernel import SimKernel

    k = SimKernel()
    eng = install(k.vm, "compiled")
    assert isinstance(eng, Engine) and k.vm.run == eng.run
    assert install(k.vm, "interp") is None
    assert "run" not in k.vm.__dict__
    with pytest.raises(ValueError):
        install(k.vm, "jit9000")


def test_native_without_llvmlite_is_compiled() -> None:
    if native_available():
        pytest.skip("llvmlite is installed here")
    from tinyaya.sim_kernel import SimKernel

    k = SimKernel()
    eng = install(k.vm, "native")
    assert eng is not None and eng.name == "compiled"


def test_default_engine_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tinyaya.sim_kernel.vm.compiled import default_engine

    monkeypatch.setenv("TINYAYA_ENGINE", "interp")
    assert default_engine() == "interp"
    monkeypatch.setenv("TINYAYA_ENGINE", "nonsense")
    assert default_engine() == "compiled"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("last_off", [40, 56, 57, 63, 64, 200])
def test_runs_of_constant_stores(engine: str, last_off: int) -> None:
    """A run of stores of known values (written as slice writes when the whole run is inside the
    region) faults at the first store out of bounds, with the earlier stores done."""
    insns = assemble(f"""
mov %r3, 0x41
mov32 %r4, -1
stxb [%r1+1], %r3
stxb [%r1+2], %r3
mov %r3, 0x42
stxh [%r1+2], %r4
stb [%r1+3], 7
stxdw [%r1+8], %r4
stxw [%r1+{last_off}], %r3
stxb [%r1+0], %r3
mov %r0, %r3
exit
""")
    got, want = observe(engine, insns), observe("interp", insns)
    assert got == want
    if last_off + 4 > 64:
        assert got[0][0][0] == "fault" and got[0][0][1] == 8


@pytest.mark.parametrize("engine", ENGINES)
def test_prog_test_run_loop_of_a_pure_program(engine: str) -> None:
    """FNV-1a over the packet through PROG_TEST_RUN with repeat (the native tier reads the rewritten
    xdp_md fields once for the loop); the same r0 and data as the interpreter."""
    from tinyaya.bench import _fnv_program

    data = bytes((i * 13 + 1) & 0xFF for i in range(300))

    def outcome(e: str) -> Any:
        return run_program(sim_kernel(e), XDP, _fnv_program(), data=data, repeat=5)

    assert outcome(engine) == outcome("interp")


def test_reinstalling_an_engine_keeps_programs_runnable() -> None:
    """Machine code built by one native tier is not run through another tier's region table."""
    from engine_harness import native_available

    if not native_available():
        pytest.skip("llvmlite is not installed")
    k = sim_kernel("native")
    p = prog(assemble("mov %r0, 3\nstxdw [%r10-8], %r0\nldxdw %r0, [%r10-8]\nexit"))
    assert k.vm.run(p, 0, 0) == 3
    first = p.compiled["native"]
    install(k.vm, "native")
    assert k.vm.run(p, 0, 0) == 3
    assert p.compiled["native"] is not first


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fault", [False, True])
def test_stack_slots_in_locals(engine: str, fault: bool) -> None:
    """Frame slots promoted to locals: a slot read before it is written sees what the previous run
    left on the stack, signed loads extend, and the stack holds the same bytes afterwards, also
    after a fault."""
    insns = assemble(f"""
ldxdw %r3, [%r10-16]
add %r3, 5
stxdw [%r10-16], %r3
mov %r4, -3
stxw [%r10-4], %r4
ldxsw %r5, [%r10-4]
sth [%r10-6], 0x8001
ldxsh %r6, [%r10-6]
stxb [%r10-7], %r6
{"ldxdw %r0, [%r1+64]" if fault else "mov %r0, %r5"}
add %r0, %r6
add %r0, %r3
exit
""")
    got, want = observe(engine, insns, runs=3), observe("interp", insns, runs=3)
    assert got == want
    if not fault:
        assert got[0][2] - got[0][1] == 5  # the third run saw the second run's slot


def test_stack_slots_are_promoted_when_the_frame_pointer_does_not_escape() -> None:
    k = sim_kernel("compiled")
    p = prog(assemble("stdw [%r10-8], 7\nldxdw %r0, [%r10-8]\nexit"))
    assert "k8 = " in k.vm.engine.compiled_for(p).source
    q = prog(assemble("mov %r2, %r10\nstdw [%r10-8], 7\nldxdw %r0, [%r10-8]\nexit"))
    assert "k8" not in k.vm.engine.compiled_for(q).source
