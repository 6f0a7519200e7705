"""The bpf_conformance programs on SimKernel and on the real kernel, compared.

The suite's programs take r1 = memory, r2 = its length. Here each runs as an XDP program behind
a prologue that sets r1 = data and r2 = data_end - data (what the suite's Linux plugin does with
its XDP prolog), with the memory as the packet. The real kernel's verifier refuses the programs
that touch the memory without bounds checks, read uninitialised registers or use instructions
Linux lacks (callx); those are not compared. What is compared: retval (the low 32 bits of r0)
and data_out.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vm"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance_data import conformance_dir, load_all  # noqa: E402
from vmdiff import XDP, Rejected, linux_kernel, run_program  # noqa: E402

from tinyaya.isa import AsmError, Insn  # noqa: E402

pytestmark = [pytest.mark.linux, pytest.mark.usefixtures("sim_engine")]
SUITE = conformance_dir()
TESTS = [t for t in load_all() if not t.negative] if SUITE is not None else []
PROLOGUE = [Insn(0x61, 2, 1, 4, 0), Insn(0x61, 1, 1, 0, 0), Insn(0xBF, 3, 2), Insn(0x1F, 3, 1), Insn(0xBF, 2, 3),
            Insn(0xB7, 3, 0, 0, 0)]
RESULTS = {"compared": 0, "rejected": 0}


@pytest.fixture(scope="module")
def linux():
    k, reason = linux_kernel()
    if k is None:
        pytest.skip(reason)
    if SUITE is None:
        pytest.skip("bpf_conformance suite not found")
    return k


@pytest.mark.parametrize("t", TESTS, ids=[t.name for t in TESTS])
def test_conformance_program_agrees(linux, t) -> None:
    from tinyaya.sim_kernel import SimKernel

    try:
        insns = PROLOGUE + t.program()
    except AsmError:
        pytest.skip("does not assemble")
    data = t.mem if len(t.mem) >= 14 else t.mem + bytes(14 - len(t.mem))
    try:
        want = run_program(linux, XDP, insns, data=data)
    except Rejected as e:
        RESULTS["rejected"] += 1
        pytest.skip(f"the real kernel refuses it: {str(e).strip().splitlines()[-2:]}")
    sim = SimKernel()
    try:
        got = run_program(sim, XDP, insns, data=data)
    except Rejected as e:
        pytest.fail(f"Linux accepts, SimKernel rejects: {e}")
    finally:
        sim.shutdown()
    RESULTS["compared"] += 1
    assert got == want
    if t.result is not None and len(t.mem) >= 14:
        assert got.retval == t.result & 0xFFFF_FFFF
