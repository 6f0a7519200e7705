"""Fixtures for the map unit tests: a fresh SimKernel and a one-line map factory."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from maps_helpers import attr  # noqa: E402


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Any]:
    from tinyaya.sim_kernel import SimKernel

    k = SimKernel(bpffs_root=tmp_path / "bpffs")
    yield k
    k.shutdown()


@pytest.fixture
def mk(kernel: Any) -> Iterator[Callable[..., Any]]:
    """``mk(map_type, key_size, value_size, max_entries, flags=0, **kw)`` → a map (released after the test)."""
    from tinyaya.sim_kernel.maps import create_map

    made: list[Any] = []

    def make(*a: Any, **kw: Any) -> Any:
        m = create_map(kernel, attr(*a, **kw))
        made.append(m)
        return m

    yield make
    for m in made:
        m.release()
