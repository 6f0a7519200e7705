"""The ``tinyaya`` pytest fixture: a fresh simulated kernel per test, for unit-testing eBPF programs.

Installed as a pytest plugin (entry point ``pytest11``), so any project that
has tinyaya installed can write::

    def test_counts_openat(tinyaya):
        bpf = Ebpf.load_file("counter.o", kernel=tinyaya)
        ...

The kernel's bpffs lives in the test's temporary directory, so pins never
leak between tests or into the user's state.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def tinyaya(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A new ``SimKernel`` with 2 CPUs and a private bpffs."""
    from tinyaya.sim_kernel import SimKernel

    root = tmp_path_factory.mktemp("bpffs")
    kernel = SimKernel(bpffs_root=str(root))
    yield kernel
    close = getattr(kernel, "shutdown", None)
    if callable(close):
        close()
