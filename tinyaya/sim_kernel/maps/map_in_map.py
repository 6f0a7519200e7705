"""BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS (kernel/bpf/map_in_map.c, arraymap.c, hashtab.c).

At creation ``inner_map_fd`` names a template map (``bpf_map_meta_alloc``);
every map stored later must match it (``bpf_map_meta_equal``: type, key and
value sizes, flags, and max_entries unless the template has
BPF_F_INNER_MAP). User space stores a map fd and reads back the map's id; a
program's lookup returns the inner map's kernel address (what
``bpf_map_lookup_elem`` on an outer map gives: the inner ``struct bpf_map *``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP, EOPNOTSUPP, fail
from .base import MAP_STRUCT_SIZE, BpfMap, F, T, U, roundup_pow_of_two
from .fd_array import array_index, fd_array_map_alloc_check, fd_object
from .hash import htab_map_alloc_check
from .htab_order import BucketOrder
from .jhash import jhash2

__all__ = ["MapInMap", "InnerMapMeta", "bpf_map_meta_alloc"]

_MAP_IN_MAP = (T.BPF_MAP_TYPE_ARRAY_OF_MAPS, T.BPF_MAP_TYPE_HASH_OF_MAPS)


@dataclass(frozen=True)
class InnerMapMeta:
    """What ``bpf_map_meta_alloc`` keeps of the template inner map."""

    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int

    def matches(self, m: Any) -> bool:
        """``bpf_map_meta_equal`` (with ``array_map_meta_equal``'s BPF_F_INNER_MAP exception)."""
        if (m.map_type, m.key_size, m.value_size, m.map_flags) != (
                self.map_type, self.key_size, self.value_size, self.map_flags):
            return False
        return bool(self.map_flags & F.BPF_F_INNER_MAP) or m.max_entries == self.max_entries


def _is_map(obj: object) -> bool:
    return hasattr(obj, "sys_lookup") and hasattr(obj, "map_type")


def bpf_map_meta_alloc(inner: Any) -> InnerMapMeta:
    """Validate the template inner map: not itself a map-in-map (EINVAL), not a prog array (ENOTSUPP)."""
    if not _is_map(inner):
        raise fail(EINVAL, "inner_map_fd is not a map")
    if inner.map_type in _MAP_IN_MAP:
        raise fail(EINVAL, "maps of maps of maps are not supported")
    if inner.map_type == T.BPF_MAP_TYPE_PROG_ARRAY:
        raise fail(ENOTSUPP, "a prog array cannot be an inner map")
    return InnerMapMeta(inner.map_type, inner.key_size, inner.value_size, inner.max_entries, inner.map_flags)


class MapInMap(BpfMap):
    map_types = _MAP_IN_MAP

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        if attr.map_type == T.BPF_MAP_TYPE_ARRAY_OF_MAPS:
            fd_array_map_alloc_check(attr)
        else:  # fd_htab_map_alloc_check
            if attr.value_size != 4:
                raise fail(EINVAL, "hash of maps needs value_size 4")
            htab_map_alloc_check(attr)

    def __init__(self, kernel: Any, attr: Any, *, inner_map: Any = None, **_: Any) -> None:
        super().__init__(kernel, attr)
        self.is_array = self.map_type == T.BPF_MAP_TYPE_ARRAY_OF_MAPS
        self.slots: dict[Any, Any] = {}  # index (array) or key bytes (hash) -> inner map
        hashrnd = 0 if self.map_flags & F.BPF_F_ZERO_SEED else jhash2([self.region.base >> 32], 0x5EED)
        #: a hash of maps walks in Linux's bucket order; its updates replace in place (fd htab)
        self.order = BucketOrder(roundup_pow_of_two(self.max_entries), hashrnd)
        try:
            if inner_map is None:
                inner_map = fd_object(kernel, int(attr.inner_map_fd).to_bytes(4, "little"))
            elif callable(inner_map) and not _is_map(inner_map):
                inner_map = inner_map()
            self.inner_meta = bpf_map_meta_alloc(inner_map)
            self.charge(MAP_STRUCT_SIZE + 8 * (self.max_entries if self.is_array else 0))
        except BaseException:
            self.release()
            raise

    def free(self) -> None:
        old, self.slots = self.slots, {}
        for m in old.values():
            self.kernel.fds.put(m)

    def _key(self, key: bytes | None) -> Any:
        return array_index(key) if self.is_array else bytes((key or b"")[:self.key_size]).ljust(self.key_size, b"\0")

    def _get_ptr(self, value: bytes) -> Any:
        """``bpf_map_fd_get_ptr``: the fd must be a map matching the template."""
        m = fd_object(self.kernel, value)
        if not _is_map(m) or not self.inner_meta.matches(m):
            raise fail(EINVAL, "inner map does not match the template")
        return m

    def inner_at(self, key: bytes) -> Any:
        return self.slots.get(self._key(key))

    # -- program side ---------------------------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        m = self.slots.get(self._key(key))
        return int(m.region.base) if m is not None else 0

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        return -EOPNOTSUPP

    def prog_delete(self, key: bytes) -> int:
        return -EOPNOTSUPP

    # -- syscall side -------------------------------------------------------------------------------
    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        m = self.slots.get(self._key(key))
        if m is None:
            raise fail(ENOENT, "no inner map")
        return int(m.id).to_bytes(4, "little")

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        k = self._key(key)
        if self.is_array:
            if flags != U.BPF_ANY:
                raise fail(EINVAL, "fd array updates take BPF_ANY only")
            if k >= self.max_entries:
                raise fail(E2BIG, f"index {k} >= max_entries {self.max_entries}")
            m = self._get_ptr(value)
        else:
            m = self._get_ptr(value)
            if (flags & ~U.BPF_F_LOCK) > U.BPF_EXIST or flags & U.BPF_F_LOCK:
                raise fail(EINVAL, "update flags")
            if k in self.slots and flags == U.BPF_NOEXIST:
                raise fail(EEXIST, "key exists")
            if k not in self.slots and flags == U.BPF_EXIST:
                raise fail(ENOENT, "no such key")
            if k not in self.slots and len(self.slots) >= self.max_entries:
                raise fail(E2BIG, "map is full")
        self.kernel.fds.hold(m)
        old = self.slots.get(k)
        self.slots[k] = m
        if not self.is_array and old is None:
            self.order.link(k)
        if old is not None:
            self.kernel.fds.put(old)

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        k = self._key(key)
        if self.is_array and k >= self.max_entries:
            raise fail(E2BIG, f"index {k} >= max_entries {self.max_entries}")
        old = self.slots.pop(k, None)
        if old is None:
            raise fail(ENOENT, "no inner map")
        if not self.is_array:
            self.order.unlink(k)
        self.kernel.fds.put(old)

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        if self.is_array:
            i = array_index(key) if key is not None else self.max_entries
            if i >= self.max_entries:
                return bytes(4)
            if i == self.max_entries - 1:
                raise fail(ENOENT, "last index")
            return (i + 1).to_bytes(4, "little")
        return self.order.next_key(self._key(key) if key is not None else None)
