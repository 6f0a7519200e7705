"""A pinned map shared between processes: it survives its creator, another process opens it while the
first is updating it, and a reader never sees a torn value, even when the writer is killed mid-update."""
from __future__ import annotations

import ctypes
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tinyaya.sim_kernel import SimKernel
from tinyaya.uapi.bpf import BpfCmd, MapCreateAttr, MapElemAttr, ObjAttr

pytest.importorskip("tinyaya.sim_kernel.maps").__dict__.get("pin_map") or pytest.skip("no shared map storage yet")

WORKER = str(Path(__file__).with_name("pin_worker.py"))
WORDS = 32


def worker(root: Path, *args: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    return subprocess.Popen([sys.executable, WORKER, str(root), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(p: subprocess.Popen[str], timeout: float = 90) -> str:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"worker failed ({p.returncode}): {out}{err}"
    return out.strip()


def open_pin(k: SimKernel, path: Path) -> int:
    p = ctypes.create_string_buffer(str(path).encode())
    return k.bpf(BpfCmd.BPF_OBJ_GET, ObjAttr(pathname=ctypes.addressof(p)))


def read_value(k: SimKernel, fd: int) -> tuple[int, ...]:
    key, val = ctypes.create_string_buffer(4), ctypes.create_string_buffer(WORDS * 8)
    k.bpf(BpfCmd.BPF_MAP_LOOKUP_ELEM, MapElemAttr(map_fd=fd, key=ctypes.addressof(key), value=ctypes.addressof(val)))
    import struct

    return struct.unpack(f"<{WORDS}Q", val.raw[:WORDS * 8])


def test_pin_survives_its_process_and_is_private(tmp_path: Path) -> None:
    root = tmp_path / "bpffs"
    pin = root / "counts"
    finish(worker(root, "create", pin, 41))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE(pin.stat().st_mode) == 0o600
    k = SimKernel(bpffs_root=root)
    fd = open_pin(k, pin)
    assert set(read_value(k, fd)) == {41}
    k.close(fd)


def test_reader_in_another_process_never_sees_a_torn_value(tmp_path: Path) -> None:
    root = tmp_path / "bpffs"
    pin = root / "m"
    k = SimKernel(bpffs_root=root)
    fd = k.bpf(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=2, key_size=4, value_size=WORDS * 8, max_entries=1))
    p = ctypes.create_string_buffer(str(pin).encode())
    k.bpf(BpfCmd.BPF_OBJ_PIN, ObjAttr(pathname=ctypes.addressof(p), bpf_fd=fd))
    reader = worker(root, "read", pin, 3000)
    key, val = ctypes.create_string_buffer(4), ctypes.create_string_buffer(WORDS * 8)
    import struct

    n = 0
    while reader.poll() is None and n < 200_000:
        n += 1
        ctypes.memmove(val, struct.pack(f"<{WORDS}Q", *([n] * WORDS)), WORDS * 8)
        k.bpf(BpfCmd.BPF_MAP_UPDATE_ELEM, MapElemAttr(map_fd=fd, key=ctypes.addressof(key),
                                                       value=ctypes.addressof(val)))
    last = int(finish(reader))
    assert 0 <= last <= n
    assert set(read_value(k, fd)) == {n}


def test_writer_in_another_process_then_killed(tmp_path: Path) -> None:
    root = tmp_path / "bpffs"
    pin = root / "m"
    finish(worker(root, "create", pin, 0))
    k = SimKernel(bpffs_root=root)
    fd = open_pin(k, pin)
    w = worker(root, "write-forever", pin)
    assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    seen = []
    for _ in range(2000):
        words = read_value(k, fd)
        assert len(set(words)) == 1, f"torn value {words}"
        seen.append(words[0])
    assert seen == sorted(seen)
    w.send_signal(signal.SIGKILL)
    w.wait(timeout=30)
    final = read_value(k, fd)
    assert len(set(final)) == 1 and final[0] >= seen[-1]
    # a fresh process after the writer's death sees the same, whole value
    assert finish(worker(root, "read", pin, 5)) == str(final[0])
