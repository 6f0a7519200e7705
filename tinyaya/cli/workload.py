"""The simulated machine's activity during ``tinyaya load``: a built-in or TOML workload, or an strace replay."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import bad_input


def make_driver(kernel: Any, workload: str | None, replay: str | None, seed: int) -> tuple[Any, str]:
    """A runner with ``step(budget, counts) -> issued`` (0 once a replay has ended) and its display name."""
    from ..sim_kernel.workloads import WorkloadError, get_workload

    machine = kernel.machine
    if replay:
        from ..sim_kernel.workloads.strace import StraceError

        try:
            return machine.replay(Path(replay)), f"replay of {replay}"
        except StraceError as e:
            bad_input(str(e))
    name = workload or "default"
    try:
        spec = get_workload(name)
    except WorkloadError as e:
        bad_input(str(e))
    return machine.workload(spec, seed=seed), spec.name
