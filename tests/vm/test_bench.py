"""``python -m tinyaya.bench`` runs and writes one record per benchmark and engine (no timing asserted)."""
from __future__ import annotations

import json
from pathlib import Path

from tinyaya import bench


def test_bench_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "bench-results.json"
    assert bench.main(["--quick", "--no-kernel", "--only", "empty,straight_100", "--output", str(out)]) == 0
    records = json.loads(out.read_text())
    assert {(r["name"], r["engine"]) for r in records} == {("empty", "interp"), ("straight_100", "interp")}
    for r in records:
        assert r["ns_per_insn"] > 0 and r["ns_per_call"] > 0 and r["calls_per_sec"] > 0
    assert {r["insns_per_call"] for r in records} == {2, 100}


def test_bench_rejects_unknown_engine(tmp_path: Path) -> None:
    assert bench.main(["--engine", "warp", "--output", str(tmp_path / "x.json")]) == 2
