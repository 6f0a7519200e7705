"""Fixtures for the map unit tests: a fresh SimKernel and a one-line map factory."""
from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tinyaya.uapi.bpf import MapCreateAttr

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Any]:
    from tinyaya.sim_kernel import SimKernel

    k = SimKernel(bpffs_root=tmp_path / "bpffs")
    yield k
    k.shutdown()


def attr(map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int = 0, *,
         map_extra: int = 0, inner_map_fd: int = 0, numa_node: int = 0) -> Any:
    return MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries,
                         map_flags=map_flags, map_extra=map_extra, inner_map_fd=inner_map_fd, numa_node=numa_node)


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


def err(fn: Callable[..., Any], *a: Any) -> Any:
    """The errno name ``fn(*a)`` fails with, or its result."""
    try:
        return fn(*a)
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, f"E{e.errno}")


def u32(v: int) -> bytes:
    return (v & 0xFFFFFFFF).to_bytes(4, "little")
