"""``MapData``: a map fd with its definition, as aya's ``MapData``; and the shared base of typed maps.

The loader creates one ``MapData`` per map of an object; the typed wrappers
(``HashMap``, ``Array``, …) take it and check its type and sizes, as aya's
``TryFrom<&Map>`` impls do. ``MapData.from_pin`` opens a pinned map.
"""
from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .. import sys as bpfsys
from ..kernel import Kernel, possible_cpus
from ..uapi.bpf import BpfMapType
from .codec import Codec, CodecSpec, as_codec
from .errors import (
    InvalidKeySize,
    InvalidMapType,
    InvalidValueSize,
    KeyNotFound,
    MapError,
    PinError,
    SyscallError,
)

__all__ = ["MapData", "TypedMap", "call", "round_up"]

_PER_CPU_TYPES = frozenset({BpfMapType.BPF_MAP_TYPE_PERCPU_HASH, BpfMapType.BPF_MAP_TYPE_PERCPU_ARRAY,
                            BpfMapType.BPF_MAP_TYPE_LRU_PERCPU_HASH, BpfMapType.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE})

T = TypeVar("T")


def round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def call(name: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a ``tinyaya.sys`` function, turning its OSError into ``SyscallError(name, …)``."""
    try:
        return fn(*args, **kwargs)
    except MapError:
        raise
    except OSError as e:
        raise SyscallError(name, e)


@dataclass(eq=False)
class MapData:
    """An open map: ``fd`` in ``kernel`` and the definition it was created with."""

    kernel: Kernel
    fd: int
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int = 0
    name: str = ""
    #: the bpffs path this map is pinned at (by us or found there), if any
    pinned_path: str | None = None
    closed: bool = field(default=False, repr=False)

    @classmethod
    def create(cls, kernel: Kernel, map_type: int, key_size: int, value_size: int, max_entries: int, *,
               name: str = "", map_flags: int = 0, **attrs: Any) -> MapData:
        """BPF_MAP_CREATE a map (``attrs``: the other ``bpf_map_create`` fields, e.g. ``inner_map_fd``)."""
        fd = call("bpf_map_create", bpfsys.bpf_map_create, kernel, map_type, key_size, value_size, max_entries,
                  name=name, map_flags=map_flags, **attrs)
        return cls(kernel=kernel, fd=fd, map_type=int(map_type), key_size=key_size, value_size=value_size,
                   max_entries=max_entries, map_flags=map_flags, name=name)

    @classmethod
    def from_fd(cls, kernel: Kernel, fd: int, name: str | None = None) -> MapData:
        """Wrap an fd we own, reading the definition back with BPF_OBJ_GET_INFO_BY_FD."""
        info = call("bpf_map_get_info_by_fd", bpfsys.bpf_map_get_info_by_fd, kernel, fd)
        return cls(kernel=kernel, fd=fd, map_type=int(info.type), key_size=int(info.key_size),
                   value_size=int(info.value_size), max_entries=int(info.max_entries),
                   map_flags=int(info.map_flags),
                   name=name if name is not None else bytes(info.name).split(b"\0")[0].decode(errors="replace"))

    @classmethod
    def from_pin(cls, path: str, kernel: Kernel | None = None) -> MapData:
        """Open the map pinned at ``path`` (BPF_OBJ_GET); ``kernel`` defaults to a fresh SimKernel."""
        kernel = kernel if kernel is not None else _default_kernel()
        try:
            fd = bpfsys.bpf_obj_get(kernel, path)
        except OSError as e:
            raise PinError(path, e)
        try:
            md = cls.from_fd(kernel, fd)
        except MapError:
            kernel.close(fd)
            raise
        md.pinned_path = path
        return md

    @classmethod
    def from_id(cls, kernel: Kernel, map_id: int) -> MapData:
        fd = call("bpf_map_get_fd_by_id", bpfsys.bpf_map_get_fd_by_id, kernel, map_id)
        return cls.from_fd(kernel, fd)

    @property
    def type_name(self) -> str:
        try:
            return BpfMapType(self.map_type).name.removeprefix("BPF_MAP_TYPE_").lower()
        except ValueError:
            return str(self.map_type)

    @property
    def id(self) -> int:
        return int(call("bpf_map_get_info_by_fd", bpfsys.bpf_map_get_info_by_fd, self.kernel, self.fd).id)

    def pin(self, path: str) -> None:
        """BPF_OBJ_PIN this map at ``path`` (on a bpffs)."""
        try:
            bpfsys.bpf_obj_pin(self.kernel, self.fd, path)
        except OSError as e:
            raise PinError(path, e)
        self.pinned_path = path

    def freeze(self) -> None:
        call("bpf_map_freeze", bpfsys.bpf_map_freeze, self.kernel, self.fd)

    def close(self) -> None:
        """Close the fd (the map lives on while pinned or used by a program)."""
        if not self.closed:
            self.closed = True
            try:
                self.kernel.close(self.fd)
            except OSError:
                pass

    def __enter__(self) -> MapData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __int__(self) -> int:
        return self.fd

    # raw element access (bytes in, bytes out), shared by the typed wrappers

    def ncpus(self) -> int:
        return len(possible_cpus(self.kernel))

    @property
    def is_per_cpu(self) -> bool:
        return self.map_type in _PER_CPU_TYPES

    def user_value_size(self) -> int:
        """The size of a value in user buffers: per-CPU maps hold one 8-byte-aligned value per possible CPU."""
        if self.is_per_cpu:
            return round_up(self.value_size, 8) * self.ncpus()
        return self.value_size

    def _check_key(self, key: bytes | None) -> None:
        if key is not None and len(key) != self.key_size:
            raise InvalidKeySize(len(key), self.key_size)

    def lookup(self, key: bytes | None, value_size: int | None = None, flags: int = 0) -> bytes | None:
        """The value of ``key`` or None when absent."""
        self._check_key(key)
        try:
            return bpfsys.bpf_map_lookup_elem(self.kernel, self.fd, key, value_size or self.value_size, flags)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise SyscallError("bpf_map_lookup_elem", e)

    def update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self._check_key(key)
        if len(value) != self.user_value_size():
            raise InvalidValueSize(len(value), self.user_value_size())
        call("bpf_map_update_elem", bpfsys.bpf_map_update_elem, self.kernel, self.fd, key, value, flags)

    def delete(self, key: bytes) -> None:
        self._check_key(key)
        try:
            bpfsys.bpf_map_delete_elem(self.kernel, self.fd, key)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise KeyNotFound()
            raise SyscallError("bpf_map_delete_elem", e)

    def raw_keys(self) -> Iterator[bytes]:
        """Keys in the kernel's order via BPF_MAP_GET_NEXT_KEY (aya's ``MapKeys``)."""
        key: bytes | None = None
        while True:
            nxt = call("bpf_map_get_next_key", bpfsys.bpf_map_get_next_key, self.kernel, self.fd, key,
                       self.key_size)
            if nxt is None:
                return
            yield nxt
            key = nxt


def _default_kernel() -> Kernel:
    from ..sim_kernel import SimKernel  # type: ignore[attr-defined]  # lazily: sim is the default backend

    return SimKernel()  # type: ignore[no-any-return]


class TypedMap:
    """Common base of the typed wrappers: the map data, the allowed types and the codecs."""

    MAP_TYPES: ClassVar[tuple[int, ...]] = ()

    def __init__(self, map: MapData, key: CodecSpec = None, value: CodecSpec = None) -> None:
        if not isinstance(map, MapData):
            raise TypeError(f"{type(self).__name__} wraps a MapData (from Ebpf.map()/map_mut()/take_map() or "
                            f"MapData.from_pin()), got {type(map).__name__}")
        self.check_type(map)
        self.map = map
        self.key_codec: Codec = self._check_key(key)
        self.value_codec: Codec = self._check_value(value)

    @classmethod
    def check_type(cls, map: MapData) -> None:
        """aya's ``TryFrom<&Map>``: ``InvalidMapType`` unless the map is of a type this wrapper handles."""
        if cls.MAP_TYPES and map.map_type not in cls.MAP_TYPES:
            wanted = " or ".join(BpfMapType(t).name for t in cls.MAP_TYPES)
            raise InvalidMapType(map.map_type, wanted)

    def _check_key(self, spec: CodecSpec) -> Codec:
        codec = as_codec(spec, self.map.key_size)
        if codec.size != self.map.key_size:
            raise InvalidKeySize(codec.size, self.map.key_size)
        return codec

    def _check_value(self, spec: CodecSpec) -> Codec:
        codec = as_codec(spec, self.map.value_size)
        if codec.size != self.map.value_size:
            raise InvalidValueSize(codec.size, self.map.value_size)
        return codec

    @classmethod
    def from_pin(cls, path: str, kernel: Kernel | None = None, **codecs: Any) -> Any:
        """Open a pinned map and wrap it: ``HashMap.from_pin(path, kernel, key=u32, value=u64)``."""
        return cls(MapData.from_pin(path, kernel), **codecs)

    @property
    def fd(self) -> int:
        return self.map.fd

    def pin(self, path: str) -> None:
        self.map.pin(path)

    def close(self) -> None:
        self.map.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.map.name!r}, key={self.key_codec!r}, value={self.value_codec!r}, "
                f"max_entries={self.map.max_entries})")
