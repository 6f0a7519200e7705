"""Fixtures of the tracing tests; the helpers they share live in tracing_helpers.py."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from tracing_helpers import sim_kernel

TRACEFS = "/sys/kernel/tracing"


@pytest.fixture(scope="session", autouse=True)
def host_tracefs() -> Iterator[None]:
    """The real kernel's tracefs, for the comparisons with it: mounted for this session only if it is
    missing (and unmounted afterwards), as root; without it those tests skip and say why."""
    mounted = False
    if os.geteuid() == 0 and os.path.isdir(TRACEFS) and not os.path.exists(f"{TRACEFS}/events"):
        mounted = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True).returncode == 0
    yield
    if mounted:
        subprocess.run(["umount", TRACEFS], capture_output=True)


@pytest.fixture
def kernel() -> Any:
    k = sim_kernel()
    yield k
    k.shutdown()
