"""Smoke test of the maps micro-benchmark (figures are for ``make bench``; here only their shape)."""
from __future__ import annotations

from tinyaya.sim_kernel.maps.bench_maps import map_benchmarks, syscall_ebpf_rates


def test_map_benchmarks_records() -> None:
    recs = map_benchmarks(calls=50, rounds=1)
    names = {r["name"] for r in recs}
    for tag in ("private", "pinned"):
        for case in ("hash:lookup", "hash:update_existing", "hash:delete+insert", "array:update",
                     "percpu_array:lookup", "helper:hash_update"):
            assert f"map:{case}:{tag}" in names
    assert all(r["engine"] == "maps" and r["ns_per_call"] > 0 for r in recs)


def test_syscall_ebpf_rates_records() -> None:
    recs = syscall_ebpf_rates(("interp",), steps=200, rounds=1)
    if not recs:  # the example object is not in this checkout
        return
    assert [r["name"] for r in recs] == ["syscall_ebpf_events:private", "syscall_ebpf_events:pinned"]
    assert all(r["events_per_sec"] > 0 for r in recs)
