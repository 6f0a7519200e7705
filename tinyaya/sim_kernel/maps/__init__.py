"""The simulated kernel's maps: one module per map type on a shared chunked value storage.

``map_alloc_check(kernel, attr)`` runs the type's ``map_alloc_check``,
``create_map(kernel, attr)`` builds the map (``map_alloc``), both raising
``KernelError`` with Linux's errno. ``pin_map``/``open_pinned`` move a map's
storage into a bpffs file and open it from another process. ``MAP_TYPES``
maps each supported ``BPF_MAP_TYPE_*`` to its class; adding a type is adding
a module and a line here.
"""
from __future__ import annotations

import ctypes
import os
from typing import Any

from ...uapi.bpf import MapCreateAttr
from ..errors import EINVAL, ENOMEM, EOPNOTSUPP, fail
from .array import ArrayMap
from .base import BpfMap, F, T
from .bloom_filter import BloomFilterMap
from .fd_array import FdArrayMap
from .hash import HashMap
from .lru_hash import LruHashMap
from .map_in_map import MapInMap
from .more_types import MORE_MAP_CLASSES
from .queue_stack import QueueStackMap
from .ringbuf import RingBufMap
from .storage import MapHeader, SlotStorage, read_header

__all__ = ["MAP_TYPES", "BpfMap", "map_alloc_check", "create_map", "pin_map", "open_pinned", "map_class"]

MAP_TYPES: dict[int, type[BpfMap]] = {
    t: cls
    for cls in (ArrayMap, HashMap, LruHashMap, QueueStackMap, BloomFilterMap, RingBufMap, FdArrayMap, MapInMap)
    + MORE_MAP_CLASSES
    for t in cls.map_types
}


def map_class(map_type: int) -> type[BpfMap]:
    """The class of ``map_type``, or EINVAL for a type the simulated kernel does not implement."""
    cls = MAP_TYPES.get(int(map_type))
    if cls is None:
        try:
            name = T(map_type).name
        except ValueError:
            name = f"map type {map_type}"
        raise fail(EINVAL, f"{name} is not supported by the simulated kernel")
    return cls


def map_alloc_check(kernel: Any, attr: Any) -> None:
    """``ops->map_alloc_check``: the attribute checks of ``attr``'s map type."""
    cls = map_class(attr.map_type)
    check = getattr(cls, "alloc_check", None)
    if check is not None:
        check(kernel, attr)


def _map_create_checks(attr: Any) -> None:
    """The type-independent checks of ``map_create`` that concern the map itself (the syscall layer repeats them)."""
    if attr.map_type not in (T.BPF_MAP_TYPE_BLOOM_FILTER, 33) and attr.map_extra != 0:  # 33: BPF_MAP_TYPE_ARENA
        raise fail(EINVAL, "map_extra is only for bloom filters and arenas")
    both = F.BPF_F_RDONLY | F.BPF_F_WRONLY
    if attr.map_flags & both == both:
        raise fail(EINVAL, "BPF_F_RDONLY and BPF_F_WRONLY together")


def create_map(kernel: Any, attr: Any, *, inner_map: Any = None, btf: Any = None) -> BpfMap:
    """``map_alloc``: a new map for ``attr`` (a ``MapCreateAttr``), after its type's checks.

    ``inner_map`` (map-in-map types): the template map, or a callable giving it;
    by default ``attr.inner_map_fd`` is resolved through ``kernel.fds`` after
    the attribute checks, as Linux does (so a bad key size wins over a bad fd).
    """
    _map_create_checks(attr)
    map_alloc_check(kernel, attr)
    cls = map_class(attr.map_type)
    try:
        m = cls(kernel, attr, inner_map=inner_map)  # type: ignore[call-arg]
    except MemoryError as e:  # no room left in the simulated address space (or the host)
        raise fail(ENOMEM, f"map allocation failed: {e}")
    if btf is not None:
        m.btf = btf
    return m


def _fill_meta(m: BpfMap, hdr: MapHeader) -> None:
    hdr.name = m.name[:15]
    hdr.btf_key_type_id = m.btf_key_type_id
    hdr.btf_value_type_id = m.btf_value_type_id
    hdr.frozen = int(m.frozen)


def pin_map(m: BpfMap, path: str | os.PathLike[str]) -> None:
    """Pin ``m`` at ``path`` (a new file, mode 0600).

    Arrays, hash and LRU maps, queues, stacks and bloom filters move their
    storage into the file, mmap'd shared, so
    another process can ``open_pinned`` it and see updates as they happen.
    Other types (their contents are kernel objects or rings of this process)
    get a file with their metadata only.
    """
    path = os.fspath(path)
    storage = getattr(m, "storage", None)
    if m.shareable and isinstance(storage, SlotStorage):
        storage.pin(path, lambda hdr: _fill_meta(m, hdr))
        return
    hdr = MapHeader()
    hdr.magic = b"TYAYAMAP"
    hdr.version = 1
    hdr.map_type, hdr.key_size, hdr.value_size = m.map_type, m.key_size, m.value_size
    hdr.max_entries, hdr.map_flags, hdr.ncpus = m.max_entries, m.map_flags, m.ncpus
    hdr.map_extra = m.map_extra
    hdr.shared = 0
    _fill_meta(m, hdr)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, bytes(hdr))
    finally:
        os.close(fd)


def open_pinned(kernel: Any, path: str | os.PathLike[str]) -> BpfMap:
    """A map object in ``kernel`` over the storage pinned at ``path`` by another process.

    EINVAL if the file is not a pinned map (or was pinned with another number
    of possible CPUs for a per-CPU map); EOPNOTSUPP for a map whose contents
    cannot be shared between processes (ring buffers, perf event and prog
    arrays, maps of maps: their contents are this process's kernel objects).
    """
    path = os.fspath(path)
    hdr = read_header(path)
    cls = map_class(hdr.map_type)
    if not hdr.shared or not cls.shareable:
        raise fail(EOPNOTSUPP, f"{T(hdr.map_type).name} maps cannot be shared with another process")
    percpu = hdr.map_type in (T.BPF_MAP_TYPE_PERCPU_ARRAY, T.BPF_MAP_TYPE_PERCPU_HASH,
                              T.BPF_MAP_TYPE_LRU_PERCPU_HASH)
    if percpu and hdr.ncpus != kernel.ncpus:
        raise fail(EINVAL, f"per-CPU map pinned with {hdr.ncpus} CPUs, this kernel has {kernel.ncpus}")
    attr: Any = MapCreateAttr()
    attr.map_type, attr.key_size, attr.value_size = hdr.map_type, hdr.key_size, hdr.value_size
    attr.max_entries, attr.map_flags, attr.map_extra = hdr.max_entries, hdr.map_flags, hdr.map_extra
    attr.btf_key_type_id, attr.btf_value_type_id = hdr.btf_key_type_id, hdr.btf_value_type_id
    m: Any = cls(kernel, attr)
    m.name = bytes(hdr.name)
    m.frozen = bool(hdr.frozen)
    m.storage.close()
    m.storage = SlotStorage.open(m, path)
    if hasattr(m, "hashrnd"):
        m.hashrnd = int(m.storage.hdr.hashrnd)
    if hasattr(m, "hash_seed"):
        m.hash_seed = int(m.storage.hdr.hashrnd)
    if hasattr(m, "_reset_index"):
        m._reset_index()
        m._gen = -1  # force a scan of the file's slots
    return m


_ = ctypes  # the header is a ctypes structure
