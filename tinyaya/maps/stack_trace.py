"""``StackTraceMap`` (aya/src/maps/stack_trace.rs): stack id -> instruction pointers (``bpf_get_stackid``)."""
from __future__ import annotations

import struct
from collections.abc import Iterator

from ..uapi.bpf import BpfMapType
from .base import MapData, TypedMap
from .codec import u32
from .errors import InvalidValueSize, KeyNotFound

__all__ = ["StackTraceMap"]


class StackTraceMap(TypedMap):
    """``get(stack_id)`` gives the frames (u64 ips, innermost first, trailing zeros dropped)."""

    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_STACK_TRACE,)

    def __init__(self, map: MapData) -> None:
        if map.value_size % 8:
            raise InvalidValueSize(map.value_size, map.value_size // 8 * 8)
        super().__init__(map, u32, map.value_size)
        self.max_depth = map.value_size // 8

    def get(self, stack_id: int, flags: int = 0) -> list[int]:
        raw = self.map.lookup(u32.encode(stack_id), flags=flags)
        if raw is None:
            raise KeyNotFound(stack_id)
        frames = list(struct.unpack(f"<{self.max_depth}Q", raw))
        while frames and frames[-1] == 0:
            frames.pop()
        return frames

    def remove(self, stack_id: int) -> None:
        try:
            self.map.delete(u32.encode(stack_id))
        except KeyNotFound:
            raise KeyNotFound(stack_id)

    def stack_ids(self) -> Iterator[int]:
        for raw in self.map.raw_keys():
            yield u32.decode(raw)
