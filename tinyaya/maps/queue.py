"""``Queue`` (aya/src/maps/queue.rs): a FIFO with key_size 0; push/pop/peek."""
from __future__ import annotations

import errno
from typing import Any

from .. import sys as bpfsys
from ..uapi.bpf import BpfMapType
from .base import MapData, TypedMap
from .codec import CodecSpec
from .errors import ElementNotFound, InvalidKeySize, SyscallError

__all__ = ["Queue"]


class _KeylessMap(TypedMap):
    def __init__(self, map: MapData, value: CodecSpec = None) -> None:
        self.check_type(map)
        if map.key_size != 0:
            raise InvalidKeySize(map.key_size, 0)
        super().__init__(map, 0, value)

    def push(self, value: Any, flags: int = 0) -> None:
        """BPF_MAP_UPDATE_ELEM with a NULL key; BPF_EXIST overwrites the oldest element when full."""
        self.map.update(None, self.value_codec.encode(value), flags)

    def pop(self, flags: int = 0) -> Any:
        """BPF_MAP_LOOKUP_AND_DELETE_ELEM with a NULL key; ``ElementNotFound`` when empty."""
        try:
            raw = bpfsys.bpf_map_lookup_and_delete_elem(self.map.kernel, self.map.fd, None, self.map.value_size,
                                                        flags)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise ElementNotFound(f"{type(self).__name__.lower()} {self.map.name!r} is empty")
            raise SyscallError("bpf_map_lookup_and_delete_elem", e)
        return self.value_codec.decode(raw)

    def peek(self, flags: int = 0) -> Any:
        """BPF_MAP_LOOKUP_ELEM with a NULL key; ``ElementNotFound`` when empty."""
        raw = self.map.lookup(None, flags=flags)
        if raw is None:
            raise ElementNotFound(f"{type(self).__name__.lower()} {self.map.name!r} is empty")
        return self.value_codec.decode(raw)

    def capacity(self) -> int:
        return self.map.max_entries


class Queue(_KeylessMap):
    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_QUEUE,)
