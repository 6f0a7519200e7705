"""Real-kernel fixtures: skip with the reason where bpf() is not permitted; leave nothing behind."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyaya.linux import LinuxKernel, linux_bpf_available

FIXTURES = Path(__file__).parent / "fixtures"
TRACEFS = "/sys/kernel/tracing"


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


@pytest.fixture
def linux_kernel() -> Iterator[LinuxKernel]:
    """The real kernel; fails the test if it leaves any fd open."""
    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    before = _open_fds()
    yield LinuxKernel()
    leaked = _open_fds() - before
    assert not leaked, f"the test left fds open on the real kernel: {sorted(leaked)}"


@pytest.fixture(scope="session")
def tracefs() -> Iterator[str]:
    """tracefs at /sys/kernel/tracing, mounted for the session only if it is missing (then unmounted)."""
    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    mounted = False
    if not os.path.exists(f"{TRACEFS}/events"):
        r = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"tracefs is not mounted and mounting it failed: {r.stderr.strip()}")
        mounted = True
    if not os.path.exists(f"{TRACEFS}/events/raw_syscalls/sys_enter/id"):
        pytest.skip("this kernel has no raw_syscalls/sys_enter tracepoint")
    yield TRACEFS
    if mounted:
        subprocess.run(["umount", TRACEFS], capture_output=True)
