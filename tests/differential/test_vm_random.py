"""Random valid programs agree between SimKernel and the real kernel (BPF_PROG_LOAD + PROG_TEST_RUN).

Compared: retval, data_out (every register's final value is stored into it) and map contents.
Programs the real kernel's verifier refuses are not compared. ``TINYAYA_FUZZ_EXAMPLES`` sets
the number of examples.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vm"))

from randprog import programs  # noqa: E402
from vmdiff import XDP, ArrayMap, Rejected, linux_kernel, run_program  # noqa: E402

from tinyaya.isa.disasm import disasm  # noqa: E402

pytestmark = [pytest.mark.linux, pytest.mark.usefixtures("sim_engine")]
EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
STATS = {"compared": 0, "linux_rejected": 0}


@pytest.fixture(scope="module")
def linux():
    k, reason = linux_kernel()
    if k is None:
        pytest.skip(reason)
    return k


def _compare(linux, insns, data, maps=()) -> None:
    from tinyaya.sim_kernel import SimKernel

    try:
        want = run_program(linux, XDP, insns, data=data, maps=maps)
    except Rejected:
        STATS["linux_rejected"] += 1
        return
    sim = SimKernel()
    try:
        got = run_program(sim, XDP, insns, data=data, maps=maps)
    except Rejected as e:
        pytest.fail(f"Linux accepts but SimKernel rejects:\n{disasm(insns)}\n{e}")
    finally:
        sim.shutdown()
    STATS["compared"] += 1
    assert got == want, f"program:\n{disasm(insns)}"


_settings = settings(max_examples=EXAMPLES, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_settings
@given(insns=programs(), data=st.binary(min_size=96, max_size=96))
def test_random_programs(linux, insns, data) -> None:
    _compare(linux, insns, data)


@_settings
@given(insns=programs(with_maps=True), data=st.binary(min_size=96, max_size=96), init=st.binary(min_size=32,
                                                                                                  max_size=32))
def test_random_programs_with_maps(linux, insns, data, init) -> None:
    _compare(linux, insns, data, (ArrayMap(32, 1, init),))


def test_most_examples_were_compared(linux) -> None:
    """The generator makes programs the kernel accepts: a differential test that compares nothing
    would pass vacuously."""
    if STATS["compared"] + STATS["linux_rejected"] == 0:
        pytest.skip("run with the random tests")
    assert STATS["compared"] >= STATS["linux_rejected"], STATS


@_settings
@given(insns=programs(with_maps=True, with_calls=True), data=st.binary(min_size=96, max_size=96),
       init=st.binary(min_size=32, max_size=32))
def test_random_programs_with_calls(linux, insns, data, init) -> None:
    """bpf-to-bpf calls: each callee has its own frame; r6-r9 survive, r1-r5 do not."""
    _compare(linux, insns, data, (ArrayMap(32, 1, init),))
