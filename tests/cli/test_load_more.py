"""More of `tinyaya load`: trace output, globals, workload files, strace replay, tinyaya.toml, run."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest_helpers import EXAMPLE_OBJ, ROOT, run_cli

HELLO = ROOT / "tests" / "fixtures" / "readme" / "hello.bpf.o"
GLOBALS = ROOT / "tests" / "fixtures" / "obj" / "globals.o"
STRACE = ROOT / "tests" / "fixtures" / "tracing" / "strace" / "ls.log"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_trace_shows_bpf_printk_lines_of_the_load(state: Path) -> None:
    r = run_cli(["load", str(HELLO), "--workload", "getppid", "--events", "7", "-q"], state)
    assert r.returncode == 0, r.stderr
    t = run_cli(["trace"], state)
    lines = t.stdout.splitlines()
    assert len(lines) == 7
    # the kernel's trace_pipe line: comm-pid [cpu] flags timestamp: bpf_trace_printk: msg
    pat = re.compile(r"^\s*\S+-(\d+)\s+\[\d{3}\] \S{5}\s+\d+\.\d{6}: bpf_trace_printk: getppid from (\d+)$")
    for line in lines:
        m = pat.match(line)
        assert m and m.group(1) == m.group(2), line
    assert len(run_cli(["trace", "-n", "2"], state).stdout.splitlines()) == 2
    # a new load starts a new trace
    run_cli(["load", str(HELLO), "--workload", "getppid", "--events", "2", "-q"], state)
    assert len(run_cli(["trace"], state).stdout.splitlines()) == 2


def test_set_global_patches_rodata_before_load(state: Path) -> None:
    r = run_cli(["load", str(GLOBALS), "--set-global", "target_pid=1234", "--events", "10", "-q"], state)
    assert r.returncode == 0, r.stderr
    [entry] = json.loads(run_cli(["maps", "dump", ".rodata", "--json"], state).stdout)
    assert entry["value"][:4] == ["0xd2", "0x04", "0x00", "0x00"]
    bad = run_cli(["load", str(GLOBALS), "--set-global", "nope=1", "--events", "1"], state)
    assert bad.returncode == 2 and "nope" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_workload_file_and_its_mistakes(state: Path, tmp_path: Path) -> None:
    wl = tmp_path / "wl.toml"
    wl.write_text('name = "mine"\n[[process]]\ncomm = "worker"\n[[process.syscall]]\nname = "getppid"\nrate = 10\n')
    r = run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--workload", str(wl), "--events", "40", "-q"],
                state)
    assert r.returncode == 0, r.stderr
    assert "workload mine: issued 40 syscalls (0 write, 40 non-write)" in r.stdout
    entries = json.loads(run_cli(["maps", "dump", "SYSCALL_LIST", "--json"], state).stdout)
    assert [(e["formatted"]["key"], e["formatted"]["value"]) for e in entries] == [(110, 40)]
    wl.write_text('name = "mine"\n[[process]]\ncomm = "worker"\n[[process.syscall]]\nname = "nosuchcall"\nrate = 1\n')
    bad = run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--workload", str(wl), "--events", "1"], state)
    assert bad.returncode == 2 and "nosuchcall" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_replay_counts_match_the_log(state: Path) -> None:
    r = run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--replay", str(STRACE), "-q"], state)
    assert r.returncode == 0, r.stderr
    m = re.search(r"issued (\d+) syscalls \((\d+) write, (\d+) non-write\)", r.stdout)
    assert m
    counts = {e["formatted"]["key"]: e["formatted"]["value"]
              for e in json.loads(run_cli(["maps", "dump", "SYSCALL_LIST", "--json"], state).stdout)}
    assert sum(counts.values()) == int(m.group(3))
    bad = run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--replay", "/nonexistent.log"], state)
    assert bad.returncode == 2 and "/nonexistent.log" in bad.stderr


def test_project_file_runs_with_no_arguments(state: Path) -> None:
    r = run_cli(["load", "--events", "100", "-q"], state, cwd=ROOT / "examples" / "syscall_ebpf")
    assert r.returncode == 0, r.stderr
    assert "issued 100 syscalls" in r.stdout
    assert run_cli(["load", "--events", "1"], state, cwd=ROOT / "tests").returncode == 2


def test_run_bad_hex_is_one_line(state: Path) -> None:
    obj = ROOT / "tests" / "fixtures" / "vm" / "fnv_tc.o"
    bad = run_cli(["run", str(obj), "--data", "zz"], state)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "--data" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_run_fnv_on_sim_and_on_linux_agree(state: Path) -> None:
    from tinyaya.linux import linux_bpf_available

    obj = ROOT / "tests" / "fixtures" / "vm" / "fnv_tc.o"
    data = "0011223344556677889900112233445566"
    r = run_cli(["run", str(obj), "--data", data, "--json"], state)
    assert r.returncode == 0, r.stderr
    sim = json.loads(r.stdout)
    assert sim["program"] == "fnv1a" and sim["data_out"] == data
    # the fixture's FNV-1a (64-bit, returned truncated to 31 bits), computed here independently of the VM
    h = 0xCBF29CE484222325
    for b in bytes.fromhex(data):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    assert sim["retval"] == h & 0x7FFFFFFF
    ok, why = linux_bpf_available()
    if not ok:
        pytest.skip(f"the real kernel's bpf() is not available: {why}")
    real = json.loads(run_cli(["run", str(obj), "--data", data, "--json", "--backend", "linux"], state).stdout)
    assert real["retval"] == sim["retval"] and real["data_out"] == sim["data_out"]
