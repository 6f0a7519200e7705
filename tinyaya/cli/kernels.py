"""Choosing the kernel behind a command: the bundled simulated kernel or the real one."""
from __future__ import annotations

from ..kernel import Kernel
from .errors import bad_input, failed
from .state import bpffs_root

ENGINES = ("interp", "compiled", "native")


def open_kernel(backend: str = "sim", *, ncpus: int | None = None, engine: str | None = None) -> Kernel:
    """A kernel for a command; ``engine`` picks how the simulated kernel runs programs (interp, compiled,
    or native with llvmlite; the default is TINYAYA_ENGINE, else compiled)."""
    if backend == "sim":
        from ..sim_kernel import SimKernel

        kw: dict[str, object] = {"bpffs_root": str(bpffs_root())}
        if ncpus is not None:
            kw["ncpus"] = ncpus
        kernel = SimKernel(**kw)  # type: ignore[arg-type]
        if engine is not None:
            from ..sim_kernel.vm.compiled import install

            if engine not in ENGINES:
                bad_input(f"unknown engine {engine!r} ({', '.join(ENGINES)})")
            install(kernel.vm, engine)
        return kernel
    if engine is not None and engine != "interp":
        bad_input("--engine applies to the simulated kernel; the real kernel runs programs with its JIT")
    if backend == "linux":
        from ..linux import LinuxKernel, linux_bpf_available

        ok, reason = linux_bpf_available()
        if not ok:
            failed(f"--backend linux: bpf() is not available here: {reason}")
        return LinuxKernel()
    bad_input(f"unknown backend {backend!r} (sim, linux)")
