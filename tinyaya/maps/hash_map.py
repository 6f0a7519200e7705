"""``HashMap``, ``LruHashMap`` and ``PerCpuHashMap`` (aya/src/maps/hash_map/)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from ..uapi.bpf import BpfMapType
from .base import TypedMap, round_up
from .codec import CodecSpec
from .errors import KeyNotFound
from .per_cpu import PerCpuValues, decode_per_cpu, encode_per_cpu

__all__ = ["HashMap", "LruHashMap", "PerCpuHashMap"]


class HashMap(TypedMap):
    """A BPF_MAP_TYPE_HASH or LRU_HASH map: ``get``, ``insert``, ``remove``, ``keys``, ``items``."""

    MAP_TYPES: ClassVar[tuple[int, ...]] = (BpfMapType.BPF_MAP_TYPE_HASH, BpfMapType.BPF_MAP_TYPE_LRU_HASH)

    def get(self, key: Any, flags: int = 0) -> Any:
        """The value of ``key``; raises ``KeyNotFound`` when absent."""
        raw = self.map.lookup(self.key_codec.encode(key), flags=flags)
        if raw is None:
            raise KeyNotFound(key)
        return self.value_codec.decode(raw)

    def insert(self, key: Any, value: Any, flags: int = 0) -> None:
        self.map.update(self.key_codec.encode(key), self.value_codec.encode(value), flags)

    def remove(self, key: Any) -> None:
        try:
            self.map.delete(self.key_codec.encode(key))
        except KeyNotFound:
            raise KeyNotFound(key)

    def keys(self) -> Iterator[Any]:
        for raw in self.map.raw_keys():
            yield self.key_codec.decode(raw)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value) pairs; a key removed between GET_NEXT_KEY and LOOKUP is skipped, as in aya's MapIter."""
        for raw in self.map.raw_keys():
            value = self.map.lookup(raw)
            if value is not None:
                yield self.key_codec.decode(raw), self.value_codec.decode(value)

    iter = items

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def __getitem__(self, key: Any) -> Any:
        return self.get(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.insert(key, value)

    def __delitem__(self, key: Any) -> None:
        self.remove(key)

    def __contains__(self, key: Any) -> bool:
        return self.map.lookup(self.key_codec.encode(key)) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self.map.raw_keys())


class LruHashMap(HashMap):
    """A BPF_MAP_TYPE_LRU_HASH map (the kernel evicts the least recently used entry when full)."""

    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_LRU_HASH,)


class PerCpuHashMap(TypedMap):
    """A PERCPU_HASH or LRU_PERCPU_HASH map: values are ``PerCpuValues``."""

    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_PERCPU_HASH, BpfMapType.BPF_MAP_TYPE_LRU_PERCPU_HASH)

    def __init__(self, map: Any, key: CodecSpec = None, value: CodecSpec = None) -> None:
        super().__init__(map, key, value)
        self.ncpus = self.map.ncpus()
        self._buf_size = round_up(self.map.value_size, 8) * self.ncpus

    def get(self, key: Any, flags: int = 0) -> PerCpuValues:
        raw = self.map.lookup(self.key_codec.encode(key), self._buf_size, flags)
        if raw is None:
            raise KeyNotFound(key)
        return decode_per_cpu(self.value_codec, raw, self.ncpus)

    def insert(self, key: Any, values: Sequence[Any], flags: int = 0) -> None:
        """Set every CPU's value; ``values`` has one entry per possible CPU."""
        self.map.update(self.key_codec.encode(key), encode_per_cpu(self.value_codec, values, self.ncpus), flags)

    def remove(self, key: Any) -> None:
        try:
            self.map.delete(self.key_codec.encode(key))
        except KeyNotFound:
            raise KeyNotFound(key)

    def keys(self) -> Iterator[Any]:
        for raw in self.map.raw_keys():
            yield self.key_codec.decode(raw)

    def items(self) -> Iterator[tuple[Any, PerCpuValues]]:
        for raw in self.map.raw_keys():
            value = self.map.lookup(raw, self._buf_size)
            if value is not None:
                yield self.key_codec.decode(raw), decode_per_cpu(self.value_codec, value, self.ncpus)

    iter = items

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def __getitem__(self, key: Any) -> PerCpuValues:
        return self.get(key)

    def __contains__(self, key: Any) -> bool:
        return self.map.lookup(self.key_codec.encode(key), self._buf_size) is not None
