"""``LpmTrie`` (aya/src/maps/lpm_trie.rs): longest-prefix-match keys ``(prefix_len, data)``.

The kernel key is ``struct bpf_lpm_trie_key { __u32 prefixlen; __u8 data[]; }``
(uapi linux/bpf.h): a host-order u32 prefix length in bits, then the data,
which for addresses is in network byte order (use a ``">I"`` or ``Raw(16)`` codec).
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..uapi.bpf import BpfMapType
from .base import MapData, TypedMap
from .codec import Codec, CodecSpec, as_codec
from .errors import InvalidKeySize, KeyNotFound

__all__ = ["LpmTrie", "LpmKeyCodec"]


@dataclass(frozen=True)
class LpmKeyCodec:
    """``(prefix_len, data)`` <-> ``bpf_lpm_trie_key`` bytes."""

    data: Codec

    @property
    def size(self) -> int:
        return 4 + self.data.size

    def encode(self, value: Any) -> bytes:
        prefix_len, data = value
        return struct.pack("<I", prefix_len) + self.data.encode(data)

    def decode(self, raw: bytes) -> tuple[int, Any]:
        return struct.unpack_from("<I", raw)[0], self.data.decode(raw[4:])


class LpmTrie(TypedMap):
    """``insert((prefix_len, data), value)``, ``get((prefix_len, data))`` (the longest matching prefix's value)."""

    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_LPM_TRIE,)

    def __init__(self, map: MapData, key: CodecSpec = None, value: CodecSpec = None) -> None:
        self.check_type(map)
        if map.key_size <= 4:
            raise InvalidKeySize(map.key_size, 5)
        data = as_codec(key, map.key_size - 4)
        super().__init__(map, LpmKeyCodec(data), value)

    def get(self, key: tuple[int, Any], flags: int = 0) -> Any:
        raw = self.map.lookup(self.key_codec.encode(key), flags=flags)
        if raw is None:
            raise KeyNotFound(key)
        return self.value_codec.decode(raw)

    def insert(self, key: tuple[int, Any], value: Any, flags: int = 0) -> None:
        self.map.update(self.key_codec.encode(key), self.value_codec.encode(value), flags)

    def remove(self, key: tuple[int, Any]) -> None:
        try:
            self.map.delete(self.key_codec.encode(key))
        except KeyNotFound:
            raise KeyNotFound(key)

    def keys(self) -> Iterator[tuple[int, Any]]:
        for raw in self.map.raw_keys():
            yield self.key_codec.decode(raw)
