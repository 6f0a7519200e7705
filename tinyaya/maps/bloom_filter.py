"""``BloomFilter`` (aya/src/maps/bloom_filter.rs): key_size 0; insert and probabilistic contains."""
from __future__ import annotations

import errno
from typing import Any

from .. import sys as bpfsys
from ..uapi.bpf import BpfMapType
from .base import MapData, TypedMap
from .codec import CodecSpec
from .errors import ElementNotFound, InvalidKeySize, SyscallError

__all__ = ["BloomFilter"]


class BloomFilter(TypedMap):
    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_BLOOM_FILTER,)

    def __init__(self, map: MapData, value: CodecSpec = None) -> None:
        self.check_type(map)
        if map.key_size != 0:
            raise InvalidKeySize(map.key_size, 0)
        super().__init__(map, 0, value)

    def insert(self, value: Any, flags: int = 0) -> None:
        """BPF_MAP_UPDATE_ELEM with a NULL key and the value."""
        self.map.update(None, self.value_codec.encode(value), flags)

    def contains(self, value: Any, flags: int = 0) -> None:
        """aya's ``contains``: returns when the value may be present, raises ``ElementNotFound`` when it is not.

        The kernel's BPF_MAP_LOOKUP_ELEM reads the value to test from the value pointer.
        """
        raw = self.value_codec.encode(value)
        try:
            bpfsys.bpf_map_lookup_elem(self.map.kernel, self.map.fd, None, len(raw), flags, value_in=raw)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise ElementNotFound(f"value not in the bloom filter {self.map.name!r}")
            raise SyscallError("bpf_map_lookup_elem", e)

    def __contains__(self, value: Any) -> bool:
        try:
            self.contains(value)
        except ElementNotFound:
            return False
        return True
