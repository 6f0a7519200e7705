"""``HashOfMaps`` and ``ArrayOfMaps`` (aya/src/maps/of_maps/): values are inner map fds on update, ids on lookup."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..uapi.bpf import BpfMapType
from .base import MapData, TypedMap
from .codec import CodecSpec, u32
from .errors import KeyNotFound, OutOfBounds
from .program_array import fd_of

__all__ = ["HashOfMaps", "ArrayOfMaps"]


class HashOfMaps(TypedMap):
    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_HASH_OF_MAPS,)

    def __init__(self, map: MapData, key: CodecSpec = None) -> None:
        super().__init__(map, key, u32)

    def insert(self, key: Any, inner: Any, flags: int = 0) -> None:
        """Store an inner map (a MapData/typed map or an fd) under ``key``."""
        self.map.update(self.key_codec.encode(key), fd_of(inner).to_bytes(4, "little"), flags)

    def get(self, key: Any) -> int:
        """The inner map's id (what BPF_MAP_LOOKUP_ELEM returns for map-in-map)."""
        raw = self.map.lookup(self.key_codec.encode(key))
        if raw is None:
            raise KeyNotFound(key)
        return int.from_bytes(raw, "little")

    def get_map(self, key: Any) -> MapData:
        """Open the inner map stored under ``key`` (by id); the caller closes it."""
        return MapData.from_id(self.map.kernel, self.get(key))

    def remove(self, key: Any) -> None:
        try:
            self.map.delete(self.key_codec.encode(key))
        except KeyNotFound:
            raise KeyNotFound(key)

    def keys(self) -> Iterator[Any]:
        for raw in self.map.raw_keys():
            yield self.key_codec.decode(raw)


class ArrayOfMaps(TypedMap):
    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_ARRAY_OF_MAPS,)

    def __init__(self, map: MapData) -> None:
        super().__init__(map, u32, u32)

    def _index(self, index: int) -> bytes:
        if not 0 <= index < self.map.max_entries:
            raise OutOfBounds(index, self.map.max_entries)
        return index.to_bytes(4, "little")

    def set(self, index: int, inner: Any, flags: int = 0) -> None:
        self.map.update(self._index(index), fd_of(inner).to_bytes(4, "little"), flags)

    def get(self, index: int) -> int:
        raw = self.map.lookup(self._index(index))
        if raw is None:
            raise KeyNotFound(index)
        return int.from_bytes(raw, "little")

    def get_map(self, index: int) -> MapData:
        return MapData.from_id(self.map.kernel, self.get(index))

    def clear_index(self, index: int) -> None:
        self.map.delete(self._index(index))
