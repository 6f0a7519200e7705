"""BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY (kernel/bpf/arraymap.c).

Elements are ``round_up(value_size, 8)`` bytes apart (``array->elem_size``);
a per-CPU element keeps one such copy per possible CPU, side by side, and a
program only ever gets its own CPU's copy. The whole array is charged at
creation, as Linux allocates it then, but its chunks are only allocated when
touched. A BPF_F_MMAPABLE array is one page-aligned chunk that user space
can mmap (``array_map_mmap``).
"""
from __future__ import annotations

import mmap as _mmap
from collections.abc import Iterator
from typing import Any

from ..errors import E2BIG, EACCES, EEXIST, EINVAL, ENOENT, ENOTSUPP, EPERM, fail
from ..memory import RegionKind
from .base import (
    BPF_F_ACCESS_MASK,
    INT_MAX,
    MAP_STRUCT_SIZE,
    NUMA_NO_NODE,
    PAGE_SIZE,
    PCPU_MIN_UNIT_SIZE,
    BpfMap,
    F,
    T,
    U,
    attr_numa_node,
    flags_access_ok,
    round_up,
)
from .storage import SlotStorage

__all__ = ["ArrayMap", "array_map_alloc_check", "ARRAY_CREATE_FLAG_MASK"]

#: ``ARRAY_CREATE_FLAG_MASK`` in arraymap.c
ARRAY_CREATE_FLAG_MASK = (F.BPF_F_NUMA_NODE | F.BPF_F_MMAPABLE | BPF_F_ACCESS_MASK | F.BPF_F_PRESERVE_ELEMS
                          | F.BPF_F_INNER_MAP)


def array_map_alloc_check(attr: Any) -> None:
    """``array_map_alloc_check``: shared by every array-shaped map (fd arrays call it too)."""
    percpu = attr.map_type == T.BPF_MAP_TYPE_PERCPU_ARRAY
    if (attr.max_entries == 0 or attr.key_size != 4 or attr.value_size == 0
            or attr.map_flags & ~ARRAY_CREATE_FLAG_MASK or not flags_access_ok(attr.map_flags)
            or (percpu and attr_numa_node(attr) != NUMA_NO_NODE)):
        raise fail(EINVAL, "array maps need key_size 4, value_size > 0, max_entries > 0 and array flags")
    if attr.map_type != T.BPF_MAP_TYPE_ARRAY and attr.map_flags & (F.BPF_F_MMAPABLE | F.BPF_F_INNER_MAP):
        raise fail(EINVAL, "BPF_F_MMAPABLE and BPF_F_INNER_MAP are for BPF_MAP_TYPE_ARRAY")
    if attr.map_type != T.BPF_MAP_TYPE_PERF_EVENT_ARRAY and attr.map_flags & F.BPF_F_PRESERVE_ELEMS:
        raise fail(EINVAL, "BPF_F_PRESERVE_ELEMS is for perf event arrays")
    if attr.value_size > INT_MAX:
        raise fail(E2BIG, "value_size over INT_MAX")
    if percpu and round_up(attr.value_size, 8) > PCPU_MIN_UNIT_SIZE:
        raise fail(E2BIG, f"per-CPU value_size {attr.value_size} over {PCPU_MIN_UNIT_SIZE}")


#: how many keys an array remembers the element address of
_ADDR_CACHE = 4096


def _index(key: bytes | None) -> int:
    return int.from_bytes((key or b"")[:4].ljust(4, b"\0"), "little")


class ArrayMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_ARRAY, T.BPF_MAP_TYPE_PERCPU_ARRAY)
    shareable = True

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        array_map_alloc_check(attr)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        super().__init__(kernel, attr)
        self.percpu = self.map_type == T.BPF_MAP_TYPE_PERCPU_ARRAY
        self.elem_size = round_up(self.value_size, 8)
        self.mmapable = bool(self.map_flags & F.BPF_F_MMAPABLE)
        slot = self.elem_size * (self.ncpus if self.percpu else 1)
        data = self.max_entries * slot
        try:
            self.charge(MAP_STRUCT_SIZE + (round_up(data, PAGE_SIZE) if self.mmapable else data))
            self.storage = SlotStorage(self, slot, self.max_entries, charge=False, contiguous=self.mmapable,
                                       writable=not self.rdonly_prog)
            if self.mmapable:
                self.storage.locate(0)
        except BaseException:
            self.release()
            raise
        #: key bytes -> the address of the element (of CPU 0's copy), filled by lookups
        self._addr: dict[bytes, int] = {}
        self._key_scratch = kernel.aspace.add(bytearray(8), RegionKind.MAP_VALUE, "array-for-each-key",
                                              writable=False, owner=self)

    def free(self) -> None:
        if hasattr(self, "storage"):
            self.storage.close()
        if hasattr(self, "_key_scratch"):
            self.kernel.aspace.remove(self._key_scratch)

    # -- program side ---------------------------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        """``array_map_lookup_elem`` / ``percpu_array_map_lookup_elem``.

        An element's address never changes once its chunk exists, so it is remembered per key
        (``_addr``, at most ``_ADDR_CACHE`` keys): a lookup is then one dict lookup."""
        a = self._addr.get(key) if type(key) is bytes else None
        if a is None:
            a = self._lookup_slow(key)
            if not a:
                return 0
        return a + cpu * self.elem_size if self.percpu else a

    def _lookup_slow(self, key: bytes) -> int:
        i = int.from_bytes(key[:4], "little") if len(key) >= 4 else _index(key)
        if i >= self.max_entries:
            return 0
        st = self.storage
        k, j = divmod(i, st.chunk_slots)
        region = st._chunks.get(k)
        if region is None:
            region, _ = st.locate(i)
        addr = region.base + j * st.slot_size
        if type(key) is bytes and len(self._addr) < _ADDR_CACHE:
            self._addr[key] = addr
        return addr

    def prog_lookup_percpu(self, key: bytes, cpu: int) -> int:
        """``percpu_array_map_lookup_percpu_elem``."""
        if not self.percpu or cpu >= self.ncpus or cpu < 0:
            return 0
        return self.prog_lookup(key, cpu)

    def _check_update(self, i: int, flags: int) -> int:
        if (flags & ~U.BPF_F_LOCK) > U.BPF_EXIST:
            return EINVAL
        if i >= self.max_entries:
            return E2BIG
        if flags & U.BPF_NOEXIST:
            return EEXIST
        if flags & U.BPF_F_LOCK and not self.has_spin_lock:
            return EINVAL
        return 0

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        """``array_map_update_elem`` from a program: a per-CPU array updates this CPU's copy."""
        if not flags and self.spin_lock_off is None:  # BPF_ANY: only the index can be wrong
            i = int.from_bytes(key[:4], "little") if len(key) >= 4 else _index(key)
            if i >= self.max_entries:
                return -E2BIG
            self.storage.write(i, cpu * self.elem_size if self.percpu else 0, bytes(value[:self.value_size]))
            return 0
        i = _index(key)
        err = self._check_update(i, flags)
        if err:
            return -err
        off = cpu * self.elem_size if self.percpu else 0
        data = bytes(value[:self.value_size])
        if self.spin_lock_off is not None:
            data = self.keep_special(data, self.storage.read(i, off, self.value_size))
        self.storage.write(i, off, data)
        return 0

    def prog_delete(self, key: bytes) -> int:
        return -EINVAL

    def for_each(self, cpu: int = 0) -> Iterator[tuple[int, int]]:
        """``bpf_for_each_array_elem``: the key is a u32 index the callback may read."""
        for i in range(self.max_entries):
            self._key_scratch.buf[0:4] = i.to_bytes(4, "little")
            yield self._key_scratch.base, self.prog_lookup(i.to_bytes(4, "little"), cpu)

    def value_addr(self, off: int) -> int:
        """``array_map_direct_value_addr``: only a one-element array, offset inside the value."""
        if self.percpu:
            raise fail(EINVAL, "no direct value access support for this map type")
        if self.max_entries != 1:
            raise fail(ENOTSUPP, "direct value access needs max_entries == 1")
        if off >= self.value_size:
            raise fail(EINVAL, f"direct value offset {off} >= value_size {self.value_size}")
        return self.storage.slot_addr(0, off)

    # -- syscall side -------------------------------------------------------------------------------
    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        """``map_lookup_elem``: a per-CPU array returns every possible CPU's copy, 8-byte padded."""
        i = _index(key)
        if i >= self.max_entries:
            raise fail(ENOENT, f"index {i} >= max_entries {self.max_entries}")
        if self.percpu:
            return self.storage.read_consistent(lambda: self.storage.read(i))
        return self.mask_special(self.storage.read_consistent(lambda: self.storage.read(i, 0, self.value_size)))

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        i = _index(key)
        err = self._check_update(i, flags)
        if err:
            raise fail(err, "array update")
        if self.percpu:
            self.storage.write(i, 0, bytes(value[:self.storage.slot_size]).ljust(self.storage.slot_size, b"\0"))
        else:
            data = bytes(value[:self.value_size])
            if self.spin_lock_off is not None:
                data = self.keep_special(data, self.storage.read(i, 0, self.value_size))
            self.storage.write(i, 0, data)

    def sys_delete(self, key: bytes | None) -> None:
        raise fail(EINVAL, "array elements cannot be deleted")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        """``array_map_get_next_key``: NULL or out of range → 0; the last index → ENOENT."""
        i = _index(key) if key is not None else self.max_entries
        if i >= self.max_entries:
            return (0).to_bytes(4, "little")
        if i == self.max_entries - 1:
            raise fail(ENOENT, "last index")
        return (i + 1).to_bytes(4, "little")

    # -- mmap ------------------------------------------------------------------------------------------
    def mmap(self, length: int, prot: int, flags: int, offset: int = 0) -> memoryview:
        """``bpf_map_mmap`` + ``array_map_mmap``: shared mappings of a BPF_F_MMAPABLE array's values."""
        if not self.mmapable:
            raise fail(EINVAL, "array is not BPF_F_MMAPABLE")
        if not flags & _mmap.MAP_SHARED:
            raise fail(EINVAL, "map mmap must be MAP_SHARED")
        if offset % PAGE_SIZE or length <= 0:
            raise fail(EINVAL, "mmap offset must be page aligned")
        if offset + length > round_up(self.max_entries * self.elem_size, PAGE_SIZE):
            raise fail(EINVAL, "mmap past the end of the array")
        write = bool(prot & _mmap.PROT_WRITE)
        if write and self.frozen:
            raise fail(EPERM, "writable mapping of a frozen map")
        if write and self.rdonly_prog:
            raise fail(EACCES, "writable mapping of a BPF_F_RDONLY_PROG map")
        region, _ = self.storage.locate(0)
        view = region.buf[offset:offset + length]
        if write:
            self.writecnt += 1
            return view
        return view.toreadonly()
