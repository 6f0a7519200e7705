"""Garbage in, a typed rejection out: random instruction slots never raise anything but VerifierReject."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.isa import Insn
from tinyaya.sim_kernel.verifier import VerifierReject, verify_insns

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "100"))

raw_insn = st.builds(Insn, st.integers(0, 255), st.integers(0, 15), st.integers(0, 15),
                     st.integers(-(1 << 15), (1 << 15) - 1), st.integers(-(1 << 31), (1 << 31) - 1))
# mostly-valid opcodes with small fields, so that programs get past the structural checks
small_insn = st.builds(Insn, st.sampled_from([0x07, 0x0f, 0xb7, 0xbf, 0x04, 0x0c, 0xb4, 0xbc, 0x61, 0x69, 0x71, 0x79,
                                              0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0x05, 0x15, 0x1d,
                                              0x25, 0x2d, 0x35, 0xa5, 0x45, 0x55, 0x65, 0x85, 0x95, 0x18, 0x00,
                                              0xdb, 0xc3, 0x87, 0xd4, 0xdc, 0x37, 0x97, 0x67, 0x77, 0xc7, 0x16,
                                              0x06, 0xe5, 0x30, 0x50, 0x91, 0x89, 0x81]),
                       st.integers(0, 10), st.integers(0, 10), st.integers(-8, 8), st.integers(-64, 64))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(raw_insn, small_insn), min_size=0, max_size=24),
       st.sampled_from([1, 2, 3, 5, 6, 7, 8, 17, 26, 31]), st.integers(0, 2))
def test_random_slots_never_crash(insns: list[Insn], prog_type: int, level: int) -> None:
    try:
        verify_insns(insns, prog_type, log_level=level)
    except VerifierReject as e:
        assert e.errno in (7, 13, 22, 524), e  # never EFAULT: that is the verifier-bug path
