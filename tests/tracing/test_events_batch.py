"""A workload step is one batch of events (``Machine.events_batch``): the writer locks of the pinned maps
the attached programs use are held once for the whole step, run statistics are added up and written once
at its end, and everything is released again, also when the step fails."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tinyaya.programs.ebpf import Ebpf
from tinyaya.sim_kernel.kernel import SimKernel
from tinyaya.sim_kernel.prog import prog_from_fd
from tinyaya.sys import bpf as sysbpf

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "syscall_ebpf" / "syscall_ebpf-ebpf" / "syscall_ebpf.o"


def _loaded(tmp_path: Path, *, pin: bool) -> tuple[SimKernel, Ebpf, object]:
    k = SimKernel(bpffs_root=str(tmp_path))
    k.set_bpf_stats(True)
    ebpf = Ebpf.load_file(str(EXAMPLE), kernel=k)
    prog = ebpf.program_mut("syscall_ebpf")
    prog.load()
    prog.attach("sys_enter", 0)
    if pin:
        for name, m in ebpf.maps():
            sysbpf.bpf_obj_pin(k, m.fd, os.path.join(str(tmp_path), name))
        sysbpf.bpf_obj_pin(k, prog.fd, os.path.join(str(tmp_path), "prog"))
    return k, ebpf, prog


def _syscall_list(k: SimKernel, ebpf: Ebpf) -> dict[int, int]:
    from tinyaya.maps import HashMap

    m = HashMap(ebpf.map("SYSCALL_LIST"), key="I", value="I")  # type: ignore[call-arg]
    return {int(key): int(v) for key, v in m.items()}


@pytest.mark.parametrize("pin", [False, True], ids=["private", "pinned"])
def test_step_counts_runs_and_map_values_exactly(tmp_path: Path, pin: bool) -> None:
    k, ebpf, prog = _loaded(tmp_path, pin=pin)
    bp = prog_from_fd(k, int(prog.fd))  # type: ignore[attr-defined]
    counts: Counter[int] = Counter()
    n = k.machine.workload("default", seed=3).step(1500, counts)
    assert n == 1500
    assert k.stats_batch is None
    # sys_enter fires for every syscall: one run each, all written at the end of the batch
    assert bp.run_cnt == 1500
    assert bp.run_time_ns > 0
    for st in k.machine.shared_storages():
        assert st._lock_depth == 0  # released after the step
    assert bool(k.machine.shared_storages()) == pin
    write = 1
    expected = {nr: c for nr, c in counts.items() if nr != write}
    got = _syscall_list(k, ebpf)
    assert got == expected


def test_pinned_values_reach_another_kernel_after_each_step(tmp_path: Path) -> None:
    k, ebpf, _ = _loaded(tmp_path, pin=True)
    other = SimKernel(bpffs_root=str(tmp_path))
    fd = sysbpf.bpf_obj_get(other, os.path.join(str(tmp_path), "SYSCALL_LIST"))
    try:
        counts: Counter[int] = Counter()
        driver = k.machine.workload("default", seed=1)
        for _ in range(3):
            driver.step(400, counts)
            seen = {}
            key = sysbpf.bpf_map_get_next_key(other, fd, None, 4)
            while key is not None:
                value = sysbpf.bpf_map_lookup_elem(other, fd, key, 4)
                seen[int.from_bytes(key, "little")] = int.from_bytes(value, "little")
                key = sysbpf.bpf_map_get_next_key(other, fd, key, 4)
            assert seen == {nr: c for nr, c in counts.items() if nr != 1}
    finally:
        other.close(fd)


def test_a_failing_batch_releases_locks_and_keeps_statistics(tmp_path: Path) -> None:
    k, _, prog = _loaded(tmp_path, pin=True)
    bp = prog_from_fd(k, int(prog.fd))  # type: ignore[attr-defined]
    driver = k.machine.workload("default", seed=2)
    with pytest.raises(RuntimeError):
        with k.machine.events_batch():
            driver.step(100, Counter())  # nested: the outer batch holds the locks and the statistics
            assert k.stats_batch is not None
            assert all(st._lock_depth >= 1 for st in k.machine.shared_storages())
            raise RuntimeError("boom")
    assert k.stats_batch is None
    assert all(st._lock_depth == 0 for st in k.machine.shared_storages())
    assert bp.run_cnt == 100


def test_statistics_turned_off_inside_a_batch_count_only_the_runs_before(tmp_path: Path) -> None:
    k, _, prog = _loaded(tmp_path, pin=False)
    bp = prog_from_fd(k, int(prog.fd))  # type: ignore[attr-defined]
    driver = k.machine.workload("default", seed=4)
    with k.machine.events_batch():
        driver.step(300, Counter())
        k.set_bpf_stats(False)
        assert bp.run_cnt == 300  # written when they were turned off
        driver.step(200, Counter())
    assert bp.run_cnt == 300
    k.set_bpf_stats(True)
    driver.step(50, Counter())
    assert bp.run_cnt == 350
