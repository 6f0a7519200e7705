"""Helpers for the tracing tests: a fresh SimKernel, a recording VM, fake programs, fixture paths."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tracing"
STRACE_LOGS = sorted((FIXTURES / "strace").glob("*.log"))


def sim_kernel(ncpus: int = 2) -> Any:
    kernel_mod = pytest.importorskip("tinyaya.sim_kernel.kernel", reason="SimKernel is not there yet")
    return kernel_mod.SimKernel(ncpus=ncpus)


@dataclass(eq=False)
class FakeProg:
    """Stands in for a loaded program: the tracing code only needs its type and name."""

    prog_type: int
    name: str = "fake"
    fault_count: int = 0


@dataclass
class Run:
    prog: str
    ctx_addr: int
    cpu: int
    ctx: bytes
    pid: int


@dataclass
class RecordingVm:
    """Replaces ``kernel.vm``: records each program run with a copy of its context."""

    kernel: Any
    runs: list[Run] = field(default_factory=list)
    ctx_len: int = 256
    fail_with: Exception | None = None

    def run(self, prog: Any, ctx_addr: int, cpu: int) -> int:
        ctx = self.kernel.aspace.read(ctx_addr, self.ctx_len)
        pid = self.kernel.machine.current_task(cpu).pid
        self.runs.append(Run(prog.name, ctx_addr, cpu, ctx, pid))
        if self.fail_with is not None:
            raise self.fail_with
        return 0


def recording(kernel: Any) -> RecordingVm:
    vm = RecordingVm(kernel)
    kernel.__dict__["vm"] = vm  # SimKernel.vm is a cached_property
    return vm


def install_prog(kernel: Any, prog_type: int, name: str = "fake") -> tuple[FakeProg, int]:
    prog = FakeProg(int(prog_type), name)
    return prog, kernel.fds.install(prog)


def regs(ctx: bytes) -> dict[str, int]:
    from tinyaya.sim_kernel.tracing.pt_regs import PT_REGS_FIELDS

    return dict(zip(PT_REGS_FIELDS, struct.unpack_from("<21Q", ctx), strict=True))
