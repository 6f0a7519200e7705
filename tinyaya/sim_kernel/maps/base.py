"""``BpfMap``: what every simulated map shares (``struct bpf_map`` and the common half of its ops).

A map has two faces, as in Linux's ``struct bpf_map_ops``:

* the program side (``map_lookup_elem``, ``map_update_elem``, ... as called by
  helpers): ``prog_lookup``/``prog_update``/``prog_delete``/``prog_push``/
  ``prog_pop``/``prog_peek``/``for_each``. They return addresses and ``-errno``
  ints, never raise for a map-level failure (a helper returns it in r0);
* the syscall side (``map_lookup_elem`` of kernel/bpf/syscall.c and the
  ``*_sys_*`` ops): ``sys_lookup``/``sys_update``/``sys_delete``/
  ``sys_get_next_key``/``sys_lookup_and_delete``, raising ``KernelError``.

Each map also owns a ``RegionKind.MAP`` region: its base is the map's kernel
address, the value ``ld_imm64 BPF_PSEUDO_MAP_FD`` holds and
``kernel.aspace.regions[addr >> 32].owner`` finds the map from.

The map modules only use ``kernel.aspace``, ``kernel.ncpus``,
``kernel.memlock`` and ``kernel.fds`` of the kernel.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from ...uapi.bpf import BpfMapType, MapFlags, MapUpdateFlags
from ..errors import E2BIG, EINVAL, ENOTSUPP, EOPNOTSUPP, EPERM, fail
from ..memory import Region, RegionKind

__all__ = ["BpfMap", "round_up", "PAGE_SIZE", "KMALLOC_MAX_SIZE", "PCPU_MIN_UNIT_SIZE", "NUMA_NO_NODE",
           "BPF_F_ACCESS_MASK", "F", "U", "T", "flags_access_ok", "is_power_of_2", "roundup_pow_of_two"]

T = BpfMapType


class F:
    """``BPF_F_*`` map flags as plain ints (``~`` on an IntFlag would drop the undefined bits a mask must catch)."""

    BPF_F_NO_PREALLOC = int(MapFlags.BPF_F_NO_PREALLOC)
    BPF_F_NO_COMMON_LRU = int(MapFlags.BPF_F_NO_COMMON_LRU)
    BPF_F_NUMA_NODE = int(MapFlags.BPF_F_NUMA_NODE)
    BPF_F_RDONLY = int(MapFlags.BPF_F_RDONLY)
    BPF_F_WRONLY = int(MapFlags.BPF_F_WRONLY)
    BPF_F_STACK_BUILD_ID = int(MapFlags.BPF_F_STACK_BUILD_ID)
    BPF_F_ZERO_SEED = int(MapFlags.BPF_F_ZERO_SEED)
    BPF_F_RDONLY_PROG = int(MapFlags.BPF_F_RDONLY_PROG)
    BPF_F_WRONLY_PROG = int(MapFlags.BPF_F_WRONLY_PROG)
    BPF_F_CLONE = int(MapFlags.BPF_F_CLONE)
    BPF_F_MMAPABLE = int(MapFlags.BPF_F_MMAPABLE)
    BPF_F_PRESERVE_ELEMS = int(MapFlags.BPF_F_PRESERVE_ELEMS)
    BPF_F_INNER_MAP = int(MapFlags.BPF_F_INNER_MAP)


class U:
    """The flags of map updates (``BPF_ANY``, ``BPF_NOEXIST``, ``BPF_EXIST``, ``BPF_F_LOCK``) as plain ints."""

    BPF_ANY = int(MapUpdateFlags.BPF_ANY)
    BPF_NOEXIST = int(MapUpdateFlags.BPF_NOEXIST)
    BPF_EXIST = int(MapUpdateFlags.BPF_EXIST)
    BPF_F_LOCK = int(MapUpdateFlags.BPF_F_LOCK)


PAGE_SIZE = 4096
#: ``KMALLOC_MAX_SIZE`` on x86-64 (``1 << (MAX_PAGE_ORDER + PAGE_SHIFT)``, 4 MiB)
KMALLOC_MAX_SIZE = 1 << 22
#: ``PCPU_MIN_UNIT_SIZE``: the largest per-CPU allocation, so the largest per-CPU value (32 KiB)
PCPU_MIN_UNIT_SIZE = 32 << 10
NUMA_NO_NODE = 0xFFFFFFFF
INT_MAX = 0x7FFFFFFF
#: ``BPF_F_ACCESS_MASK`` in include/linux/bpf.h
BPF_F_ACCESS_MASK = F.BPF_F_RDONLY | F.BPF_F_WRONLY | F.BPF_F_RDONLY_PROG | F.BPF_F_WRONLY_PROG
#: the size of the ``RegionKind.MAP`` region (the ``struct bpf_map`` a program may point at)
MAP_STRUCT_SIZE = 256


def round_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def is_power_of_2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def roundup_pow_of_two(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def flags_access_ok(flags: int) -> bool:
    """``bpf_map_flags_access_ok``: not both BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG."""
    both = F.BPF_F_RDONLY_PROG | F.BPF_F_WRONLY_PROG
    return flags & both != both


def attr_numa_node(attr: Any) -> int:
    """``bpf_map_attr_numa_node``."""
    return int(attr.numa_node) if attr.map_flags & F.BPF_F_NUMA_NODE else NUMA_NO_NODE


class BpfMap:
    """``struct bpf_map`` plus the ops every type shares. Subclasses set ``map_types`` and override ops.

    ``map_flags`` is what ``bpf_map_flags_retain_permanent`` keeps (no
    BPF_F_RDONLY/BPF_F_WRONLY: those belong to the fd, see ``fd_flags``).
    """

    #: the uapi map types this class implements
    map_types: ClassVar[tuple[int, ...]] = ()
    #: whether ``sys_lookup`` of this type reads the value buffer as input (bloom filter peek)
    lookup_reads_value: ClassVar[bool] = False
    #: whether the storage can move to a pinned file shared with other processes
    shareable: ClassVar[bool] = False

    def __init__(self, kernel: Any, attr: Any) -> None:
        self.kernel = kernel
        self.map_type = int(attr.map_type)
        self.key_size = int(attr.key_size)
        self.value_size = int(attr.value_size)
        self.max_entries = int(attr.max_entries)
        self.fd_flags = int(attr.map_flags) & (F.BPF_F_RDONLY | F.BPF_F_WRONLY)
        self.map_flags = int(attr.map_flags) & ~(F.BPF_F_RDONLY | F.BPF_F_WRONLY)
        self.map_extra = int(attr.map_extra)
        self.numa_node = attr_numa_node(attr)
        self.name = b""
        self.id = 0
        self.btf: Any = None
        self.btf_key_type_id = int(attr.btf_key_type_id)
        self.btf_value_type_id = int(attr.btf_value_type_id)
        self._frozen = False
        #: writable mmaps alive (``map->writecnt``): freezing is EBUSY while there are some
        self.writecnt = 0
        #: offset of a ``struct bpf_spin_lock`` in the value, when BTF says there is one
        self.spin_lock_off: int | None = None
        self.released = False
        self._charged = 0
        self.region: Region = kernel.aspace.add(bytearray(MAP_STRUCT_SIZE), RegionKind.MAP,
                                                f"map:{self.map_type}", writable=False, owner=self)

    # -- common facts -------------------------------------------------------------------------
    @property
    def addr(self) -> int:
        """The map's kernel address (what ``ld_imm64`` with BPF_PSEUDO_MAP_FD loads)."""
        return self.region.base

    @property
    def frozen(self) -> bool:
        """``map->frozen``; for a map shared through a pin, frozen by any process that shares it."""
        storage = getattr(self, "storage", None)
        if self._frozen or storage is None or not getattr(storage, "shared", False):
            return self._frozen
        return bool(storage.hdr.frozen)

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self._frozen = bool(value)
        storage = getattr(self, "storage", None)
        if storage is not None and getattr(storage, "shared", False):
            storage.hdr.frozen = int(self._frozen)

    @property
    def has_spin_lock(self) -> bool:
        return self.spin_lock_off is not None

    def mask_special(self, value: bytes) -> bytes:
        """``check_and_init_map_value``: a ``bpf_spin_lock`` in a value copied out reads as zeros."""
        off = self.spin_lock_off
        if off is None or off + 4 > len(value):
            return value
        return value[:off] + bytes(4) + value[off + 4:]

    def keep_special(self, new: bytes, old: bytes) -> bytes:
        """``copy_map_value``: writing a value never overwrites its ``bpf_spin_lock``."""
        off = self.spin_lock_off
        if off is None or off + 4 > len(new) or off + 4 > len(old):
            return new
        return new[:off] + old[off:off + 4] + new[off + 4:]

    @property
    def rdonly_prog(self) -> bool:
        return bool(self.map_flags & F.BPF_F_RDONLY_PROG)

    @property
    def ncpus(self) -> int:
        return int(self.kernel.ncpus)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name.decode(errors='replace')!r} id={self.id} "
                f"key={self.key_size} value={self.value_size} max={self.max_entries}>")

    # -- memory accounting ----------------------------------------------------------------------
    def charge(self, nbytes: int) -> None:
        """Charge ``nbytes`` to ``kernel.memlock`` (ENOMEM past the limit), given back on release."""
        memlock = getattr(self.kernel, "memlock", None)
        if memlock is not None and nbytes:
            memlock.charge(nbytes)
        self._charged += nbytes

    def uncharge(self, nbytes: int) -> None:
        memlock = getattr(self.kernel, "memlock", None)
        nbytes = min(nbytes, self._charged)
        if memlock is not None and nbytes:
            memlock.uncharge(nbytes)
        self._charged -= nbytes

    @property
    def charged(self) -> int:
        return self._charged

    def release(self) -> None:
        """The last reference is gone (``bpf_map_free``): unregister regions, uncharge memory."""
        if self.released:
            return
        self.released = True
        self.free()
        self.kernel.aspace.remove(self.region)
        self.uncharge(self._charged)

    def free(self) -> None:
        """Per-type teardown (``map_free``): drop storage regions, references to held objects."""

    # -- syscall side (defaults: Linux's answer for a type without the op) ----------------------
    def check_sys_write(self) -> None:
        if self.frozen:
            raise fail(EPERM, "map is frozen")

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        raise fail(ENOTSUPP, "lookup is not supported by this map type")

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        raise fail(ENOTSUPP, "update is not supported by this map type")

    def sys_delete(self, key: bytes | None) -> None:
        raise fail(ENOTSUPP, "delete is not supported by this map type")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        raise fail(ENOTSUPP, "get_next_key is not supported by this map type")

    def sys_lookup_and_delete(self, key: bytes | None, flags: int = 0) -> bytes:
        raise fail(ENOTSUPP, "lookup_and_delete is not supported by this map type")

    def freeze(self) -> None:
        """``map_freeze``: user space may no longer write (the fd checks are the caller's)."""
        self.frozen = True

    # -- program side (defaults) ------------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        return 0

    def prog_lookup_percpu(self, key: bytes, cpu: int) -> int:
        """``bpf_map_lookup_percpu_elem`` (helper 195): only per-CPU maps answer."""
        return 0

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        return -EOPNOTSUPP

    def prog_delete(self, key: bytes) -> int:
        return -EOPNOTSUPP

    def prog_push(self, value: bytes, flags: int) -> int:
        return -EOPNOTSUPP

    def prog_pop(self, cpu: int = 0) -> bytes | int:
        return -EOPNOTSUPP

    def prog_peek(self, cpu: int = 0, value: bytes | None = None) -> bytes | int:
        return -EOPNOTSUPP

    def for_each(self, cpu: int = 0) -> Iterator[tuple[int, int]]:
        """``map_for_each_callback``: (key address, value address) pairs; EINVAL-free types yield nothing."""
        return iter(())

    def value_addr(self, off: int) -> int:
        """``map_direct_value_addr`` (BPF_PSEUDO_MAP_VALUE): only single-element arrays have one."""
        raise fail(EINVAL, "map has no direct value address")

    # -- mmap ------------------------------------------------------------------------------------
    def mmap(self, length: int, prot: int, flags: int, offset: int = 0) -> memoryview:
        raise fail(ENOTSUPP, "map type cannot be mmap'd")  # bpf_map_mmap without map_mmap

    def munmap(self, mem: memoryview) -> None:
        if not mem.readonly and self.writecnt:
            self.writecnt -= 1


def check_value_size_e2big(value_size: int, limit: int = KMALLOC_MAX_SIZE) -> None:
    if value_size > limit:
        raise fail(E2BIG, f"value_size {value_size} > {limit}")
