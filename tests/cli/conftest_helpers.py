"""Running the tinyaya CLI as a user would: a subprocess with its own state directory."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_OBJ = ROOT / "examples" / "syscall_ebpf" / "syscall_ebpf-ebpf" / "syscall_ebpf.o"


def run_cli(args: list[str], state: Path, *, timeout: float = 120, cwd: Path | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TINYAYA_STATE_DIR=str(state), COLUMNS="120")
    env.pop("XDG_RUNTIME_DIR", None)
    return subprocess.run([sys.executable, "-m", "tinyaya.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd, input=input)
