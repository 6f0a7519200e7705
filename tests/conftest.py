"""Session-wide fixtures for every test directory."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

TRACEFS = "/sys/kernel/tracing"


@pytest.fixture(scope="session", autouse=True)
def host_tracefs() -> Iterator[None]:
    """The real kernel's tracefs, for the tests that compare with it or attach to its tracepoints:
    mounted for the session only if it is missing (and unmounted afterwards), as root. Without it
    those tests skip and say why."""
    mounted = False
    if os.geteuid() == 0 and os.path.isdir(TRACEFS) and not os.path.exists(f"{TRACEFS}/events"):
        mounted = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True).returncode == 0
    yield
    if mounted:
        subprocess.run(["umount", TRACEFS], capture_output=True)
