"""Without CAP_BPF/CAP_PERFMON (SimKernel(privileged=False) with unprivileged bpf enabled) the verifier applies
Linux's unprivileged rules: no loops, no uninitialised stack reads, no pointer leaks."""
from __future__ import annotations

import errno

import pytest

from tinyaya.sim_kernel.verifier import VerifierReject, verify_insns

from .corpus_asm import assemble

SOCKET_FILTER = 1
CASES = [
    ("r0 = 0\nloop:\nr0 += 1\nif r0 < 10 goto loop\nexit", errno.EINVAL, "back-edge from insn 2 to 1"),
    ("r0 = *(u64 *)(r10 - 8)\nexit", errno.EACCES, "invalid read from stack off -8+0 size 8"),
    ("r0 = r10\nexit", errno.EACCES, "R0 leaks addr as return value"),
    ("r2 = r10\nif r2 > r1 goto +0\nr0 = 0\nexit", errno.EACCES, "R2 pointer comparison prohibited"),
]


@pytest.mark.parametrize(("src", "err", "msg"), CASES)
def test_unprivileged_rules(src: str, err: int, msg: str) -> None:
    insns = assemble(src).insns
    verify_insns(insns, SOCKET_FILTER)  # a privileged loader may
    with pytest.raises(VerifierReject) as e:
        verify_insns(insns, SOCKET_FILTER, privileged=False)
    assert (e.value.errno, e.value.message) == (err, msg)
