"""Helpers of the map unit tests (a uniquely named module: ``conftest`` names clash across test dirs)."""
from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from tinyaya.uapi.bpf import MapCreateAttr


def attr(map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int = 0, *,
         map_extra: int = 0, inner_map_fd: int = 0, numa_node: int = 0) -> Any:
    return MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries,
                         map_flags=map_flags, map_extra=map_extra, inner_map_fd=inner_map_fd, numa_node=numa_node)


def err(fn: Callable[..., Any], *a: Any) -> Any:
    """The errno name ``fn(*a)`` fails with, or its result."""
    try:
        return fn(*a)
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, f"E{e.errno}")


def u32(v: int) -> bytes:
    return (v & 0xFFFFFFFF).to_bytes(4, "little")
