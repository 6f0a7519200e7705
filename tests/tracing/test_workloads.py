"""Built-in and TOML workloads: determinism, exact event counts, the clock, keyed errors."""
from __future__ import annotations

import pytest
from tracing_helpers import sim_kernel

from tinyaya.sim_kernel.workloads import (
    WorkloadError,
    get_workload,
    list_workloads,
    parse_workload_toml,
)


def run(name: str, seed: int, events: int) -> dict[int, int]:
    k = sim_kernel()
    return k.machine.workload(name, seed=seed).run(events=events).counts


def test_list_workloads() -> None:
    names = [w.name for w in list_workloads()]
    assert names[0] == "default" and {"shell", "webserver", "compiler", "getppid"} <= set(names)
    assert all(w.description for w in list_workloads())


@pytest.mark.parametrize("name", ["default", "shell", "webserver", "compiler"])
def test_deterministic_for_a_seed(name: str) -> None:
    a, b, c = run(name, 7, 3000), run(name, 7, 3000), run(name, 8, 3000)
    assert a == b and sum(a.values()) == 3000
    assert a != c


def test_runs_continue_and_count_exactly() -> None:
    k = sim_kernel()
    r = k.machine.workload("default", seed=1)
    first = r.run(events=1234)
    second = r.run(events=766)
    assert first.events == 1234 and second.events == 766 and r.totals.events == 2000
    assert sum(r.totals.counts.values()) == 2000
    counts: dict[int, int] = {}
    assert r.step(10, counts) == 10 and sum(counts.values()) == 10


def test_duration_advances_the_clock() -> None:
    k = sim_kernel()
    t0 = k.clock.now_ns()
    res = k.machine.workload("webserver").run(duration_ns=5_000_000)
    assert res.events > 0 and k.clock.now_ns() - t0 >= 5_000_000 and res.duration_ns >= 5_000_000


def test_shell_spawns_commands_and_reaps_them() -> None:
    k = sim_kernel()
    res = k.machine.workload("shell", seed=3).run(events=5000)
    by = res.by_name()
    assert by["clone"] == by["exit_group"] or abs(by["clone"] - by["exit_group"]) <= 1
    assert by["execve"] >= 1 and len(k.machine.processes) <= 3


def test_getppid_workload_is_only_getppid() -> None:
    assert run("getppid", 0, 500) == {110: 500}


TOML = """
name = "static"
description = "a web server"

[[process]]
comm = "nginx"
uid = 33
cpu = 1
threads = 2

  [[process.syscall]]
  name = "openat"
  rate = 300
  args = [-100, "/var/www/index.html", 0]
  ret = 3

  [[process.syscall]]
  name = "close"
  rate = 100
  args = [3]

[[process]]
comm = "sh"
spawn = ["ls"]
spawn_rate = 1
"""


def test_toml_workload_runs() -> None:
    spec = parse_workload_toml(TOML, "w.toml")
    assert spec.name == "static" and spec.processes[0].threads == 2
    k = sim_kernel()
    res = k.machine.workload(spec, seed=0).run(events=2000)
    by = res.by_name()
    assert by["openat"] > 2 * by["close"] > 0
    nginx = [p for p in k.machine.processes.values() if p.comm == "nginx"][0]
    assert nginx.uid == 33 and nginx.leader.cpu == 1


@pytest.mark.parametrize(("text", "key", "line"), [
    ('[[process]]\ncomm = "x"\n[[process.syscall]]\nname = "nosuch"\n', "process[0].syscall[0].name", 4),
    ('[[process]]\ncomm = "x"\n[[process.syscall]]\nname = "read"\nrate = -1\n', "process[0].syscall[0].rate", 5),
    ('[[process]]\ncomm = "x"\n[[process.syscall]]\nname = "read"\n\n[[process]]\ncomm = "y"\n'
     '[[process.syscall]]\nname = "read"\nargs = [1, 2, 3, 4, 5, 6, 7]\n', "process[1].syscall[0].args", 10),
    ('[[process]]\ncomm = "a-very-long-command-name"\n', "process[0].comm", 2),
    ('[[process]]\ncomm = "x"\nuid = "root"\n[[process.syscall]]\nname = "read"\n', "process[0].uid", 3),
    ('[[process]]\ncomm = "x"\ncolor = 1\n[[process.syscall]]\nname = "read"\n', "process[0].color", 3),
    ('name = "x"\n', "process", None),
    ('[[process]]\ncomm = "x"\n', "process[0]", 1),
])
def test_toml_errors_name_key_and_line(text: str, key: str, line: int | None) -> None:
    with pytest.raises(WorkloadError) as e:
        parse_workload_toml(text, "w.toml")
    assert e.value.key == key and e.value.line == line
    assert str(e.value).startswith("w.toml") and key in str(e.value)


def test_toml_syntax_error_has_a_line() -> None:
    with pytest.raises(WorkloadError) as e:
        parse_workload_toml('name = "x"\n[[process]\n', "w.toml")
    assert e.value.line == 2


def test_unknown_workload_and_missing_file(tmp_path) -> None:
    with pytest.raises(WorkloadError, match="no workload named"):
        get_workload("nope")
    with pytest.raises(WorkloadError, match="no such workload file"):
        get_workload(str(tmp_path / "x.toml"))


def test_the_example_workload_file() -> None:
    from tracing_helpers import FIXTURES

    from tinyaya.sim_kernel.workloads import load_workload_file

    spec = load_workload_file(FIXTURES / "workloads" / "static_site.toml")
    k = sim_kernel()
    res = k.machine.workload(spec, seed=2).run(events=3000)
    assert res.events == 3000 and res.count("epoll_wait") > res.count("openat") > 0
    assert res.count("execve") > 0  # the shell ran its commands


def test_event_path_does_not_grow_memory() -> None:
    """Firing a probe reuses the per-CPU context region: memory stays flat over many events."""
    import tracemalloc

    from tracing_helpers import install_prog

    from tinyaya import sys as bpfsys

    k = sim_kernel()

    class NoVm:
        def run(self, prog, ctx, cpu):
            return 0

    k.__dict__["vm"] = NoVm()
    _, pfd = install_prog(k, 2, "x")
    bpfsys.perf_event_ioc_set_bpf(k, bpfsys.perf_event_open_probe(k, "sys_enter"), pfd)
    _, pfd2 = install_prog(k, 5, "y")
    tp = bpfsys.perf_event_open_trace_point(k, bpfsys.tracepoint_id(k, "raw_syscalls", "sys_enter"))
    bpfsys.perf_event_ioc_set_bpf(k, tp, pfd2)
    r = k.machine.workload("webserver", seed=1)
    r.run(events=5000)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    r.run(events=20000)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert growth < 64 * 1024, f"{growth} bytes kept after 20000 events"
