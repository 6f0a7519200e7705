"""The foundation path end to end: load the example, count syscalls, dump the map from another process."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest_helpers import EXAMPLE_OBJ, run_cli


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def issued(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"issued (\d+) syscalls \((\d+) write, (\d+) non-write\)", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_load_then_dump_counts_add_up(state: Path) -> None:
    r = run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--events", "1000"], state)
    assert r.returncode == 0, r.stderr
    total, writes, others = issued(r.stdout)
    assert total == 1000 and writes + others == 1000 and writes > 0
    assert "------------SYSCALL_LIST----------------" in r.stdout
    assert re.search(r"^syscall: \d+, count: \d+$", r.stdout, re.M)

    d = run_cli(["maps", "dump", "SYSCALL_LIST", "--json"], state)
    assert d.returncode == 0, d.stderr
    entries = json.loads(d.stdout)
    assert sum(e["formatted"]["value"] for e in entries) == others
    assert all(e["formatted"]["key"] != 1 for e in entries), "write (1) is not counted"
    for e in entries:
        assert e["key"] == [f"0x{b:02x}" for b in e["formatted"]["key"].to_bytes(4, "little")]
        assert e["value"] == [f"0x{b:02x}" for b in e["formatted"]["value"].to_bytes(4, "little")]


def test_plain_dump_and_list_after_load(state: Path) -> None:
    assert run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--events", "200", "-q"], state).returncode == 0
    d = run_cli(["maps", "dump", "SYSCALL_LIST"], state)
    assert d.returncode == 0 and re.search(r"^key: [0-9a-f ]+  value: [0-9a-f ]+$", d.stdout, re.M)
    assert re.search(r"Found \d+ elements", d.stdout)
    lst = run_cli(["maps", "list", "--json"], state)
    names = {m["name"] for m in json.loads(lst.stdout)}
    assert {"SYSCALL_LIST", "AYA_LOG_BUF"} <= names


@pytest.mark.parametrize("args,needle", [
    (["load", "/nonexistent/prog.o", "--kprobe", "sys_enter"], "/nonexistent/prog.o"),
    (["load", "__FILE__", "--kprobe", "sys_enter"], "ELF"),
    (["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--program", "nope"], "nope"),
    (["load", str(EXAMPLE_OBJ), "--kprobe", "no_such_function_xyz", "--events", "1"], "no_such_function_xyz"),
    (["load", str(EXAMPLE_OBJ), "--tracepoint", "bogus"], "CATEGORY:NAME"),
    (["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--events", "-3"], "--events"),
])
def test_bad_input_is_one_line_and_exit_2(state: Path, args: list[str], needle: str) -> None:
    args = [str(Path(__file__)) if a == "__FILE__" else a for a in args]
    r = run_cli(args, state)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_dump_without_a_load_is_a_clear_error(state: Path) -> None:
    r = run_cli(["maps", "dump", "SYSCALL_LIST", "--json"], state)
    assert r.returncode == 2
    assert "tinyaya load" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_dump_unknown_map_names_the_known_ones(state: Path) -> None:
    assert run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--events", "10", "-q"], state).returncode == 0
    r = run_cli(["maps", "dump", "NOPE"], state)
    assert r.returncode == 2 and "SYSCALL_LIST" in r.stderr


def test_second_load_while_one_runs_is_refused(state: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    env = dict(os.environ, TINYAYA_STATE_DIR=str(state))
    first = subprocess.Popen([sys.executable, "-m", "tinyaya.cli.main", "load", str(EXAMPLE_OBJ), "--kprobe",
                              "sys_enter", "--duration", "30", "-q"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if (state / "load.pid").exists() and (state / "last-load.json").exists():
                break
            time.sleep(0.05)
        r = run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--events", "5"], state)
        assert r.returncode == 1
        assert f"pid {first.pid}" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        # while it runs, another shell reads its maps through the pins
        d = run_cli(["maps", "dump", "SYSCALL_LIST", "--json"], state)
        assert d.returncode == 0, d.stderr
    finally:
        first.terminate()
        first.wait(timeout=30)
