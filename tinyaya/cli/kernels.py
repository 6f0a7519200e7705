"""Choosing the kernel behind a command: the bundled simulated kernel or the real one."""
from __future__ import annotations

from ..kernel import Kernel
from .errors import bad_input, failed
from .state import bpffs_root


def open_kernel(backend: str = "sim", *, ncpus: int | None = None) -> Kernel:
    if backend == "sim":
        from ..sim_kernel import SimKernel

        kw: dict[str, object] = {"bpffs_root": str(bpffs_root())}
        if ncpus is not None:
            kw["ncpus"] = ncpus
        return SimKernel(**kw)  # type: ignore[arg-type]
    if backend == "linux":
        from ..linux import LinuxKernel, linux_bpf_available

        ok, reason = linux_bpf_available()
        if not ok:
            failed(f"--backend linux: bpf() is not available here: {reason}")
        return LinuxKernel()
    bad_input(f"unknown backend {backend!r} (sim, linux)")
