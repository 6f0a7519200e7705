"""The live view of ``tinyaya load`` in a real terminal.

Two terminals: a pty driven by pexpect (the byte stream rich writes, and the
exit status), and a tmux pane (the screen a user actually sees while the load
runs: the view is redrawn in place, not scrolled). The load runs for a bounded
``--duration`` and must exit 0 by itself.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest_helpers import EXAMPLE_OBJ, ROOT, run_cli

pexpect = pytest.importorskip("pexpect")

# relative to the repository, as a user types it (the status line shows it)
LOAD = ["load", str(EXAMPLE_OBJ.relative_to(ROOT)), "--kprobe", "sys_enter", "--duration", "3", "--interval", "0.5"]
ROW = re.compile(r"│\s+(\d+) │ (\w+)\s+│\s+(\d+) │")
STATUS = re.compile(r"\[sim\] default: (\d+) syscalls \(([\d,]+)/s\)")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def cli_env(state: Path) -> dict[str, str]:
    env = dict(os.environ, TINYAYA_STATE_DIR=str(state), TERM="xterm-256color")
    for var in ("XDG_RUNTIME_DIR", "COLUMNS", "LINES", "NO_COLOR", "TINYAYA_PLAIN"):
        env.pop(var, None)
    return env


def test_live_view_in_a_pty(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = pexpect.spawn(sys.executable, ["-m", "tinyaya.cli.main", *LOAD], env=cli_env(state), cwd=str(ROOT),
                          dimensions=(60, 160), encoding="utf-8", timeout=90)
    child.expect(pexpect.EOF)
    child.close()
    out = ANSI.sub("", child.before or "")
    assert child.signalstatus is None
    assert child.exitstatus == 0, out[-2000:]
    assert "Traceback" not in out
    # the rich table, with syscall names next to the numbers, redrawn at each interval
    assert "┏" in out and "SYSCALL_LIST" in out
    rows = ROW.findall(out)
    assert ("257", "openat") in {(nr, name) for nr, name, _ in rows}
    assert ("0", "read") in {(nr, name) for nr, name, _ in rows}
    statuses = [int(n) for n, _ in STATUS.findall(out)]
    assert len(statuses) >= 2, "the status line is refreshed while the load runs"
    assert statuses == sorted(statuses) and statuses[-1] > 0
    # then the summary, and the last frame's counts are what the map holds afterwards
    m = re.search(r"workload default: issued (\d+) syscalls \((\d+) write, (\d+) non-write\)", out)
    assert m, out[-2000:]
    last_openat = [int(c) for nr, _, c in rows if nr == "257"][-1]
    r = run_cli(["maps", "lookup", "SYSCALL_LIST", "257", "--json"], state)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["formatted"]["value"] == last_openat


@pytest.fixture
def tmux() -> str:
    exe = shutil.which("tmux")
    if exe is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
    return exe


class Tmux:
    """A tmux server of our own (its socket in the test's tmp dir), one pane running the load; killed at the end."""

    def __init__(self, exe: str, tmp_path: Path, width: int, height: int) -> None:
        self.base = [exe, "-S", str(tmp_path / "tmux.sock"), "-f", "/dev/null"]
        self.done = tmp_path / "exit-status"
        self.env = cli_env(tmp_path / "state")
        argv = " ".join([sys.executable, "-m", "tinyaya.cli.main", *LOAD])
        script = f"cd {ROOT} && {argv}; echo $? > {self.done}; sleep 60"
        subprocess.run([*self.base, "new-session", "-d", "-s", "live", "-x", str(width), "-y", str(height), script],
                       env=self.env, check=True)
        self.deadline = time.monotonic() + 90

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "live"], capture_output=True, text=True,
                              env=self.env).stdout

    def mid_run(self) -> str:
        """The first screen showing the table's header row and the status line while the load runs."""
        while time.monotonic() < self.deadline and not self.done.exists():
            s = self.screen()
            # a frame of the running load with syscalls counted (a hot program's one-time native build
            # may hold the first frames at 0)
            if "syscall ┃ name" in s and re.search(r"\[sim\] default: [1-9]", s) and "issued" not in s:
                time.sleep(0.6)  # a later frame, with counts for every syscall seen so far
                return self.screen()
            time.sleep(0.1)
        return ""

    def wait_exit(self) -> None:
        while time.monotonic() < self.deadline and not self.done.exists():
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, env=self.env)


def test_live_view_on_a_tmux_screen(tmp_path: Path, tmux: str) -> None:
    """What the screen shows mid-run: one table and one status line, updated in place."""
    t = Tmux(tmux, tmp_path, 160, 60)
    done = t.done
    try:
        mid = t.mid_run()
        assert "openat" in mid, "the live view showed the table and status while running: " + t.screen()
        assert len(STATUS.findall(mid)) == 1, "redrawn in place, not scrolled:\n" + mid
        assert any("[sim] default:" in line and "faults" in line for line in mid.splitlines()), mid
        assert mid.count("SYSCALL_LIST") == 1
        assert re.search(r"│\s+257 │ openat\s+│\s+\d+ │", mid)
        t.wait_exit()
        assert done.exists(), "the load exits by itself after --duration"
        assert done.read_text().strip() == "0"
        final = t.screen()
        assert "workload default: issued" in final
        assert "Traceback" not in final
    finally:
        t.kill()


def test_live_view_fits_an_80x24_terminal(tmp_path: Path, tmux: str) -> None:
    t = Tmux(tmux, tmp_path, 80, 24)
    try:
        mid = t.mid_run()
        assert mid
        lines = mid.splitlines()
        assert re.search(r"│\s+257 │ openat\s+│\s+\d+ │", mid), "the busiest syscalls are on screen:\n" + mid
        assert not any(line.strip() == "..." for line in lines), "nothing cut off:\n" + mid
    finally:
        t.kill()
