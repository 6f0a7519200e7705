"""``Array`` and ``PerCpuArray`` (aya/src/maps/array/): u32 indexes below max_entries."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..uapi.bpf import BpfMapType
from .base import MapData, TypedMap, round_up
from .codec import CodecSpec, u32
from .errors import InvalidKeySize, KeyNotFound, OutOfBounds
from .per_cpu import PerCpuValues, decode_per_cpu, encode_per_cpu

__all__ = ["Array", "PerCpuArray"]


class _IndexedMap(TypedMap):
    def __init__(self, map: MapData, value: CodecSpec = None, *, key: CodecSpec = None) -> None:
        self.check_type(map)
        if map.key_size != 4:
            raise InvalidKeySize(map.key_size, 4)
        super().__init__(map, u32 if key is None else key, value)

    def _index(self, index: int) -> bytes:
        if not 0 <= index < self.map.max_entries:
            raise OutOfBounds(index, self.map.max_entries)
        return index.to_bytes(4, "little")

    def __len__(self) -> int:
        return self.map.max_entries


class Array(_IndexedMap):
    """A BPF_MAP_TYPE_ARRAY: ``get(index)``, ``set(index, value)``, iteration over all values."""

    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_ARRAY,)

    def get(self, index: int, flags: int = 0) -> Any:
        raw = self.map.lookup(self._index(index), flags=flags)
        if raw is None:
            raise KeyNotFound(index)
        return self.value_codec.decode(raw)

    def set(self, index: int, value: Any, flags: int = 0) -> None:
        self.map.update(self._index(index), self.value_codec.encode(value), flags)

    insert = set

    def __getitem__(self, index: int) -> Any:
        return self.get(index)

    def __setitem__(self, index: int, value: Any) -> None:
        self.set(index, value)

    def __iter__(self) -> Iterator[Any]:
        for i in range(self.map.max_entries):
            yield self.get(i)

    def items(self) -> Iterator[tuple[int, Any]]:
        return enumerate(iter(self))


class PerCpuArray(_IndexedMap):
    """A BPF_MAP_TYPE_PERCPU_ARRAY: values are ``PerCpuValues``."""

    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_PERCPU_ARRAY,)

    def __init__(self, map: MapData, value: CodecSpec = None, *, key: CodecSpec = None) -> None:
        super().__init__(map, value, key=key)
        self.ncpus = self.map.ncpus()
        self._buf_size = round_up(self.map.value_size, 8) * self.ncpus

    def get(self, index: int, flags: int = 0) -> PerCpuValues:
        raw = self.map.lookup(self._index(index), self._buf_size, flags)
        if raw is None:
            raise KeyNotFound(index)
        return decode_per_cpu(self.value_codec, raw, self.ncpus)

    def set(self, index: int, values: Sequence[Any], flags: int = 0) -> None:
        self.map.update(self._index(index), encode_per_cpu(self.value_codec, values, self.ncpus), flags)

    def __getitem__(self, index: int) -> PerCpuValues:
        return self.get(index)

    def __iter__(self) -> Iterator[PerCpuValues]:
        for i in range(self.map.max_entries):
            yield self.get(i)

    def items(self) -> Iterator[tuple[int, PerCpuValues]]:
        return enumerate(iter(self))
