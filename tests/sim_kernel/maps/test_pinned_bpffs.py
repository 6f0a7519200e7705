"""A map pinned with BPF_OBJ_PIN by one process is opened with BPF_OBJ_GET by another (through bpf())."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tinyaya.sys.bpf import (
    bpf_map_create,
    bpf_map_get_next_key,
    bpf_map_lookup_elem,
    bpf_map_update_elem,
    bpf_obj_get,
    bpf_obj_pin,
)

ROOT = Path(__file__).resolve().parents[3]
READER = r"""
import sys
from tinyaya.sim_kernel import SimKernel
from tinyaya.sys.bpf import bpf_map_lookup_elem, bpf_map_update_elem, bpf_obj_get
k = SimKernel(bpffs_root=sys.argv[1])
fd = bpf_obj_get(k, sys.argv[1] + "/counts")
print(bpf_map_lookup_elem(k, fd, (7).to_bytes(4, "little"), 8).hex())
bpf_map_update_elem(k, fd, (8).to_bytes(4, "little"), b"fromproc")
"""


def test_obj_pin_then_obj_get_in_another_process(tmp_path: Path) -> None:
    from tinyaya.sim_kernel import SimKernel

    root = tmp_path / "bpffs"
    k = SimKernel(bpffs_root=root)
    fd = bpf_map_create(k, 1, 4, 8, 16, name=b"counts")
    bpf_map_update_elem(k, fd, (7).to_bytes(4, "little"), b"seven!!!")
    bpf_obj_pin(k, fd, str(root / "counts"))
    assert oct(os.stat(root / "counts").st_mode & 0o777) == "0o600"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", READER, str(root)], capture_output=True, env=env, cwd=ROOT,
                         check=True, timeout=120)
    assert bytes.fromhex(out.stdout.decode().strip()) == b"seven!!!"
    assert bpf_map_lookup_elem(k, fd, (8).to_bytes(4, "little"), 8) == b"fromproc"
    keys = {bpf_map_get_next_key(k, fd, None, 4)}
    k.close(fd)
    k.shutdown()
    # and after the pinning process has gone, a new one still reads it
    k2: Any = SimKernel(bpffs_root=root)
    fd2 = bpf_obj_get(k2, str(root / "counts"))
    assert bpf_map_lookup_elem(k2, fd2, (7).to_bytes(4, "little"), 8) == b"seven!!!"
    assert keys <= {(7).to_bytes(4, "little"), (8).to_bytes(4, "little")}
    k2.shutdown()
