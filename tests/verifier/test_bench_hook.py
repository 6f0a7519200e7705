"""The verification benchmark hook the bench calls (no timing assertions: it must run and report)."""
from __future__ import annotations

from tinyaya.sim_kernel.verifier import bench_verify
from tinyaya.sim_kernel.verifier.bench import diamonds, verifier_benchmarks


def test_verifier_benchmarks_report_each_program() -> None:
    results = verifier_benchmarks(repeat=1)
    assert [r["name"] for r in results] == ["straight_4k", "diamonds_64", "loop_1k", "pkt_parser"]
    for r in results:
        assert r["processed_insns"] > 0 and r["ns_per_insn"] > 0
    # 64 if/else diamonds verify in linear work thanks to pruning with precision tracking
    assert results[1]["processed_insns"] < 20 * 64


def test_bench_verify_on_an_instruction_list() -> None:
    r = bench_verify(diamonds(8), 2)
    assert r["processed_insns"] > 0
