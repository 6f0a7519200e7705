"""The event-rate part of the engine bench, and the event path's run statistics it exercises.

No timed assertions: rates are only checked to be measured (positive) and recorded in the
bench-results.json shape (``name``, ``engine``, ``events_per_sec``).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tinyaya.bench import SYSCALL_EBPF
from tinyaya.sim_kernel.vm.compiled import bench_engines

needs_example = pytest.mark.skipif(not SYSCALL_EBPF.exists(), reason="examples/syscall_ebpf object absent")


def test_event_records_name_every_engine_and_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_engines, "syscall_events_per_sec", lambda e, steps=0: 1000.0)
    monkeypatch.setattr(bench_engines, "cli_load_rates",
                        lambda e, n=0: (500.0, 400.0) if e == "interp" else (2000.0, 1000.0))
    monkeypatch.setattr(bench_engines, "replay_events_per_sec", lambda e, r=0: None if e == "native" else 300.0)
    recs = bench_engines.event_records(["interp", "compiled", "native"], steps=10, cli_events=100)
    got = {(r["name"], r["engine"]): r for r in recs}
    assert set(got) == {
        ("syscall_ebpf_events", "interp"), ("syscall_ebpf_events", "compiled"), ("syscall_ebpf_events", "native"),
        ("syscall_ebpf_cli_load", "interp"), ("syscall_ebpf_cli_load", "compiled"),
        ("syscall_ebpf_cli_load", "native"), ("syscall_ebpf_cli_load_cold", "interp"),
        ("syscall_ebpf_cli_load_cold", "compiled"), ("syscall_ebpf_cli_load_cold", "native"),
        ("strace_replay_events", "interp"), ("strace_replay_events", "compiled"),
    }
    cli = got[("syscall_ebpf_cli_load", "compiled")]
    assert cli["events_per_sec"] == 2000.0 and cli["ns_per_event"] == 1e9 / 2000.0
    assert cli["ratio_vs_interp"] == 0.25
    assert "--events 100" in cli["note"]
    assert cli["ns_per_call"] == cli["ns_per_event"] and cli["speedup_vs_interp"] == 4.0
    if SYSCALL_EBPF.exists():  # ns per eBPF instruction: the event over the program's mean instructions
        assert 100 < cli["insns_per_call"] < 400 and cli["ns_per_insn"] == cli["ns_per_event"] / cli["insns_per_call"]
    cold = got[("syscall_ebpf_cli_load_cold", "compiled")]
    assert cold["events_per_sec"] == 1000.0 and cold["ratio_vs_interp"] == 0.4
    # cli_events=0 leaves the subprocess measurement out
    recs = bench_engines.event_records(["interp"], steps=10, cli_events=0)
    assert [r["name"] for r in recs] == ["syscall_ebpf_events", "strace_replay_events"]


def test_strace_logs_are_the_fixtures() -> None:
    logs = bench_engines.strace_logs()
    assert logs and all(p.suffix == ".log" and p.parent.name == "strace" for p in logs)


@needs_example
def test_replay_rate_is_measured() -> None:
    r = bench_engines.replay_events_per_sec("compiled", repeat=1)
    assert r is not None and r > 0


@needs_example
def test_cli_rate_runs_the_command(tmp_path: Path) -> None:
    r = bench_engines.cli_load_rates("interp", events=300, rounds=1)
    assert r is not None and r[0] > 0 and r[1] > 0


@needs_example
@pytest.mark.parametrize("pinned", [False, True])
def test_event_path_counts_every_run(tmp_path: Path, pinned: bool) -> None:
    """With BPF_ENABLE_STATS on, each attached run adds 1 to run_cnt and its time to run_time_ns, for a
    program whose statistics live in its pin file as for one that is not pinned."""
    from tinyaya.programs.ebpf import Ebpf
    from tinyaya.sim_kernel import SimKernel

    kernel = SimKernel(bpffs_root=str(tmp_path / "bpffs"))
    kernel.set_bpf_stats(True)
    ebpf = Ebpf.load_file(str(SYSCALL_EBPF), kernel=kernel)
    prog: Any = ebpf.program_mut("syscall_ebpf")
    prog.load()
    prog.attach("sys_enter", 0)
    if pinned:
        from tinyaya.sys import bpf as sysbpf

        (tmp_path / "bpffs").mkdir(exist_ok=True)
        sysbpf.bpf_obj_pin(kernel, prog.fd, str(tmp_path / "bpffs" / "p"))
    counts: Counter[int] = Counter()
    n = kernel.machine.workload("default", seed=0).step(500, counts)
    from tinyaya.sys.bpf import bpf_prog_get_info_by_fd

    info, _ = bpf_prog_get_info_by_fd(kernel, prog.fd)
    assert n == 500 and info.run_cnt == 500
    assert info.run_time_ns > 0
    kernel.set_bpf_stats(False)
    kernel.machine.workload("default", seed=1).step(50, counts)
    assert bpf_prog_get_info_by_fd(kernel, prog.fd)[0].run_cnt == 500


def test_issue_targets_are_checked_from_the_records() -> None:
    def r(name: str, engine: str, **kw: float) -> dict[str, Any]:
        return {"name": name, "engine": engine, **kw}

    results = [
        r("loop_1m", "compiled", ns_per_insn=8.0, speedup_vs_interp=5.1),
        r("fnv1a_1k", "compiled", ns_per_insn=24.0, speedup_vs_interp=2.0),
        r("straight_100", "compiled", ns_per_insn=9.0, speedup_vs_interp=6.0),
        r("loop_may_goto_8m", "native", ratio_vs_kernel=0.5), r("fnv1a_1k", "native", ratio_vs_kernel=1.4),
        r("empty", "native", ns_per_call=250.0),
        r("syscall_ebpf_cli_load", "compiled", events_per_sec=120_000.0),
        r("syscall_ebpf_cli_load", "native", events_per_sec=310_000.0),
    ]
    got = {t["target"]: t for t in bench_engines.issue_targets(results)}
    assert got["compiled <= 25 ns/insn (loop, FNV, straight-line)"]["met"]
    missed = got["compiled >= 5x faster than the interpreter"]
    assert not missed["met"] and "fnv1a_1k 2.00x" in missed["measured"]
    assert got["native within 1.5x of the kernel JIT per insn (loop, FNV)"]["met"]
    assert got["native call <= 400 ns"]["met"]
    assert got["tinyaya load >= 300,000 syscalls/s with the fastest engine"]["measured"] == "native 310,000/s"
    assert got["tinyaya load >= 100,000 syscalls/s with the compiled tier"]["met"]
    # a figure that was not measured is not met
    none = {t["target"]: t for t in bench_engines.issue_targets(results[:3])}
    assert not none["tinyaya load >= 100,000 syscalls/s with the compiled tier"]["met"]
