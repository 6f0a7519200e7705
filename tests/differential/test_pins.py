"""OBJ_PIN/OBJ_GET against a real bpffs: mounted in a private mount namespace (``unshare -m``), so the
host's /sys/fs/bpf is never touched and the mount disappears with the child process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_pins_agree_with_a_real_bpffs(tmp_path: Path, kernels) -> None:
    maps_mod = pytest.importorskip("tinyaya.sim_kernel.maps")
    if not hasattr(maps_mod, "create_map"):
        pytest.skip("sim maps (B2) not there yet")
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) to mount a private bpffs")
    mnt = tmp_path / "bpffs"
    mnt.mkdir()
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))
    script = f'mount -t bpf bpf "{mnt}" && exec "{sys.executable}" "{HERE / "pin_scenarios.py"}" "{mnt}" ' \
             f'"{tmp_path / "simfs"}"'
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                       text=True, timeout=120, env=env)
    if p.returncode != 0 and "mount" in p.stderr and "bpf" in p.stderr:
        pytest.skip(f"cannot mount a bpffs here: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    sim, linux = json.loads(p.stdout)
    assert sim == linux
