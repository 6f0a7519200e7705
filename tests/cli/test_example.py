"""The syscall_ebpf example's user-space program, run as a user runs it (python main.py)."""
from __future__ import annotations

import re
import subprocess
import sys

from .conftest_helpers import ROOT

MAIN = ROOT / "examples" / "syscall_ebpf" / "syscall_ebpf" / "main.py"


def test_example_prints_syscall_list_and_exits_by_itself() -> None:
    r = subprocess.run([sys.executable, str(MAIN), "--duration", "1.5", "--interval", "0.5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    blocks = r.stdout.count("------------SYSCALL_LIST----------------")
    assert blocks >= 2, r.stdout
    counts = [int(m) for m in re.findall(r"^syscall: (\d+), count: \d+$", r.stdout, re.M)]
    assert counts and 1 not in counts
    # aya-log records from the program reach Python logging, as aya-log's EbpfLogger does
    assert re.search(r"\[INFO syscall_ebpf\] \[\d+\] invoke syscall \d+", r.stderr)


def test_xtask_help() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "examples/syscall_ebpf/xtask/xtask.py"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "build-ebpf" in r.stdout
