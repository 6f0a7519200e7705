"""``ProgramArray`` (aya/src/maps/array/program_array.rs): the jump table of bpf_tail_call."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..uapi.bpf import BpfMapType
from .base import MapData, TypedMap
from .codec import u32
from .errors import KeyNotFound, OutOfBounds

__all__ = ["ProgramArray", "fd_of"]


def fd_of(obj: Any) -> int:
    """An fd from an int, a loaded program (``.fd``) or a map (``.fd``)."""
    if isinstance(obj, int):
        return obj
    fd = getattr(obj, "fd", None)
    if fd is None:
        raise TypeError(f"{obj!r} has no fd (is the program loaded?)")
    return int(fd() if callable(fd) else fd)


class ProgramArray(TypedMap):
    """Index -> program fd; reading back gives program ids, as the kernel does."""

    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_PROG_ARRAY,)

    def __init__(self, map: MapData) -> None:
        super().__init__(map, u32, u32)

    def _index(self, index: int) -> bytes:
        if not 0 <= index < self.map.max_entries:
            raise OutOfBounds(index, self.map.max_entries)
        return index.to_bytes(4, "little")

    def set(self, index: int, program: Any, flags: int = 0) -> None:
        """Put a program (or its fd) at ``index``."""
        self.map.update(self._index(index), fd_of(program).to_bytes(4, "little"), flags)

    def clear_index(self, index: int) -> None:
        self.map.delete(self._index(index))

    def indices(self) -> Iterator[int]:
        """The indexes that hold a program (GET_NEXT_KEY walks every slot; empty ones fail lookup)."""
        for raw in self.map.raw_keys():
            if self.map.lookup(raw) is not None:
                yield int.from_bytes(raw, "little")

    def get(self, index: int) -> int:
        raw = self.map.lookup(self._index(index))
        if raw is None:
            raise KeyNotFound(index)
        return int.from_bytes(raw, "little")
