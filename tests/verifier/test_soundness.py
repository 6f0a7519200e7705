"""Soundness: random programs the verifier accepts never fault in the VM (helper C's interpreter)."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op
from tinyaya.sim_kernel.verifier import VerifierReject, verify_insns

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "150"))
KPROBE = 2
ALU = [op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_AND, op.BPF_OR, op.BPF_XOR, op.BPF_LSH, op.BPF_RSH, op.BPF_MOV]
SIZES = [op.BPF_B, op.BPF_H, op.BPF_W, op.BPF_DW]
JMPS = [op.BPF_JEQ, op.BPF_JNE, op.BPF_JGT, op.BPF_JLT, op.BPF_JSGT, op.BPF_JSLE, op.BPF_JSET]

reg = st.integers(0, 5)
insn = st.one_of(
    st.builds(lambda o, d, i, c: Insn(c | o | op.BPF_K, d, 0, 0, i % 64 if o in (op.BPF_LSH, op.BPF_RSH) else i),
              st.sampled_from(ALU), reg, st.integers(-64, 64), st.sampled_from([op.BPF_ALU64, op.BPF_ALU])),
    st.builds(lambda o, d, s: Insn(op.BPF_ALU64 | o | op.BPF_X, d, s), st.sampled_from(ALU), reg,
              st.sampled_from([0, 1, 2, 3, 4, 5, 10])),
    st.builds(lambda sz, d, off: Insn(op.BPF_STX | op.BPF_MEM | sz, 10, d, off), st.sampled_from(SIZES), reg,
              st.integers(-520, 8)),
    st.builds(lambda sz, d, off: Insn(op.BPF_LDX | op.BPF_MEM | sz, d, 10, off), st.sampled_from(SIZES), reg,
              st.integers(-520, 8)),
    st.builds(lambda sz, d, s, off: Insn(op.BPF_LDX | op.BPF_MEM | sz, d, s, off), st.sampled_from(SIZES), reg,
              reg, st.integers(-8, 176)),
    st.builds(lambda j, d, i, o: Insn(op.BPF_JMP | j | op.BPF_K, d, 0, o, i), st.sampled_from(JMPS), reg,
              st.integers(-8, 8), st.integers(0, 3)),
)


def _vm():  # type: ignore[no-untyped-def]
    sk = pytest.importorskip("tinyaya.sim_kernel.kernel", reason="SimKernel not available")
    vm_mod = pytest.importorskip("tinyaya.sim_kernel.vm", reason="VM not available")
    return sk.SimKernel(), vm_mod.BpfFault


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(insn, min_size=1, max_size=20))
def test_accepted_programs_do_not_fault(body: list[Insn]) -> None:
    prog_insns = [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, 6, 1)] + body + \
        [Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_K, 0, 0, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]
    # jumps must stay inside the body
    n = len(prog_insns)
    prog_insns = [i if op.BPF_CLASS(i.code) != op.BPF_JMP or op.BPF_OP(i.code) == op.BPF_EXIT
                  else i.replace(off=min(i.off, n - 2 - k)) for k, i in enumerate(prog_insns)]
    try:
        verify_insns(prog_insns, KPROBE)
    except VerifierReject:
        return
    kernel, fault = _vm()
    prog = SimpleNamespace(insns=prog_insns, prog_type=KPROBE, name=b"fuzz", compiled={}, xlated=prog_insns,
                           used_maps=[], run_cnt=0, run_time_ns=0, expected_attach_type=0, id=1)
    try:
        kernel.vm.run_with_ctx(prog, bytes(168))
    except fault as e:
        pytest.fail(f"verifier accepted a program that faults: {e}\n{prog_insns}")
