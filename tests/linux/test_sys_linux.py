"""tinyaya.sys on the real kernel only: what this kernel lacks (tests/api runs every command on both)."""
from __future__ import annotations

import pytest

from tinyaya import sys as S
from tinyaya.linux import LinuxKernel

pytestmark = pytest.mark.linux

def test_kprobe_pmu_missing_is_one_clear_line(linux_kernel: LinuxKernel) -> None:
    try:
        fd = S.perf_event_open_probe(linux_kernel, "do_sys_openat2")
    except S.ProbeUnsupported as e:
        assert "no kprobes" in str(e) and "\n" not in str(e)
    else:  # a kernel with kprobes: nothing to check here
        linux_kernel.close(fd)
        pytest.skip("this kernel has kprobes")
