"""Workloads that drive the simulated machine: built-in mixes, TOML files, strace replays.

``list_workloads()`` (for ``tinyaya workloads``), ``get_workload(name)``,
``load_workload_file(path)`` (raises ``WorkloadError`` naming the key and
line), and ``start_workload(machine, spec_or_name_or_path, seed)`` →
``WorkloadRunner`` with ``run(events=N | duration_ns=T) -> RunResult`` and
``step(budget, counts) -> issued``. ``StraceReplay`` (``workloads.strace``)
offers the same two methods for an ``strace -f`` log.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .builtin import BUILTIN_WORKLOADS
from .spec import ProcessSpec, RunResult, SyscallSpec, WorkloadRunner, WorkloadSpec
from .toml_file import WorkloadError, load_workload_file, parse_workload_toml

if TYPE_CHECKING:
    from ..machine import Machine

__all__ = ["list_workloads", "get_workload", "start_workload", "load_workload_file", "parse_workload_toml",
           "WorkloadError", "WorkloadInfo", "WorkloadSpec", "ProcessSpec", "SyscallSpec", "RunResult",
           "WorkloadRunner", "StraceReplay", "StraceError"]


@dataclass(frozen=True)
class WorkloadInfo:
    name: str
    description: str


def list_workloads() -> list[WorkloadInfo]:
    """The built-in workloads, the default first."""
    return [WorkloadInfo(w.name, w.description) for w in BUILTIN_WORKLOADS.values()]


def get_workload(name: str) -> WorkloadSpec:
    """A built-in workload by name, or a TOML file's if ``name`` is a path to one; WorkloadError otherwise."""
    spec = BUILTIN_WORKLOADS.get(name)
    if spec is not None:
        return spec
    if name.endswith(".toml") or Path(name).is_file():
        return load_workload_file(name)
    known = ", ".join(BUILTIN_WORKLOADS)
    raise WorkloadError(f"no workload named {name!r} (built-in: {known}; or give a .toml file)")


def start_workload(machine: Machine, spec: Any = "default", seed: int = 0) -> WorkloadRunner:
    """Create the workload's processes on ``machine`` and return its runner."""
    if isinstance(spec, (str, Path)):
        spec = get_workload(str(spec))
    if not isinstance(spec, WorkloadSpec):
        raise TypeError(f"not a workload: {spec!r}")
    return WorkloadRunner(machine, spec, seed)


def __getattr__(name: str) -> Any:
    if name in ("StraceReplay", "StraceError"):
        from . import strace

        return getattr(strace, name)
    raise AttributeError(name)
