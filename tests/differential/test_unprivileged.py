"""An unprivileged caller (no CAP_BPF, CAP_SYS_ADMIN, CAP_PERFMON; unprivileged_bpf_disabled as on this host)
gets the same answers from SimKernel(privileged=False) as from Linux."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_unprivileged_caller_agrees_with_linux(tmp_path: Path, kernels) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to an unprivileged user")
    try:
        disabled = int(Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text())
    except OSError:
        pytest.skip("no /proc/sys/kernel/unprivileged_bpf_disabled")
    if disabled == 0:
        pytest.skip("unprivileged bpf is enabled on this host; the sim models the disabled default")
    root = tmp_path / "fs"
    root.mkdir(mode=0o777)
    tmp_path.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]), HOME=str(tmp_path))
    p = subprocess.run([sys.executable, str(HERE / "unpriv_scenarios.py"), str(root)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    sim, linux = json.loads(p.stdout)
    assert sim == linux
