"""The simulated Linux kernel: ``SimKernel`` speaks Linux's bpf() ABI in-process.

``from tinyaya.sim_kernel import SimKernel``; see docs/architecture.md.
"""
from __future__ import annotations

from .kernel import SimKernel

__all__ = ["SimKernel"]
