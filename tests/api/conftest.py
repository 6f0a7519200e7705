"""Fixtures for the API tests: the same test runs on SimKernel and on the real kernel (marker ``linux``)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinyaya.linux import LinuxKernel, linux_bpf_available


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def sim_kernel(root: Path, **kw: Any) -> Any:
    sim = pytest.importorskip("tinyaya.sim_kernel", reason="the simulated kernel is not there yet")
    if not hasattr(sim, "SimKernel"):
        pytest.skip("tinyaya.sim_kernel has no SimKernel yet")
    kernel = sim.SimKernel(bpffs_root=str(root), **kw)
    _probe_sim(kernel)
    return kernel


def _probe_sim(kernel: Any) -> None:
    """Skip (not fail) while the simulated kernel's map layer is still being built by its owners."""
    from tinyaya.sys import bpf_map_create

    try:
        kernel.close(bpf_map_create(kernel, 2, 4, 4, 1))
    except (ImportError, AttributeError, NotImplementedError) as e:
        kernel.shutdown()
        pytest.skip(f"the simulated kernel cannot create maps yet: {type(e).__name__}: {e}")


@pytest.fixture(params=["sim", pytest.param("linux", marks=pytest.mark.linux)])
def kernel(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A kernel of each backend. On Linux, the test must close every fd it opened (checked here)."""
    if request.param == "sim":
        k = sim_kernel(tmp_path / "bpffs")
        yield k
        k.shutdown()
        return
    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    before = _open_fds()
    pins_before = _host_pins()
    yield LinuxKernel()
    leaked = _open_fds() - before
    new_pins = _host_pins() - pins_before
    for name in new_pins:  # leave nothing behind on the real kernel, even when the test failed
        try:
            os.unlink(os.path.join(HOST_BPFFS, name))
        except OSError:
            pass
    assert not leaked, f"the test left fds open on the real kernel: {sorted(leaked)}"
    assert not new_pins, f"the test left pins in {HOST_BPFFS} (removed now): {sorted(new_pins)}"


#: the host's bpffs, where aya (and tinyaya's loader) pin ``pinning = BY_NAME`` maps by default
HOST_BPFFS = "/sys/fs/bpf"


def _host_pins() -> set[str]:
    try:
        return set(os.listdir(HOST_BPFFS))
    except OSError:
        return set()
