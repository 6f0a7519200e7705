"""Local storages: SK_STORAGE (net/core/bpf_sk_storage.c), INODE_STORAGE (bpf_inode_storage.c),
TASK_STORAGE (bpf_task_storage.c), CGRP_STORAGE (bpf_cgrp_storage.c), and the older
CGROUP_STORAGE / PERCPU_CGROUP_STORAGE (kernel/bpf/local_storage.c).

The first four hang a value off a kernel object named, from user space, by
an fd (``int`` key): a socket, any file's inode, a pidfd, a cgroup directory.
``bpf_local_storage_map_alloc_check`` wants BPF_F_NO_PREALLOC,
``max_entries`` 0, key 4, a value, and BTF key and value types (the BTF key
must be a 32-bit int: ``bpf_local_storage_map_check_btf``). The simulated
kernel has no sockets, pidfds or cgroups: their element commands fail as
Linux's do for an fd of the wrong kind (EBADF or ENOTSOCK). An INODE_STORAGE
key may be any open fd (the BPF LSM is active on the reference kernel, so
every inode has a storage blob): the value hangs off the object behind the
fd, ``bpf_local_storage_update``'s flag rules apply, and it goes away with
the map.

CGROUP_STORAGE's elements are made when a program is attached to a cgroup
(none here): lookups are ENOENT, updates ENOENT after the flag checks,
deletes EINVAL, and ``get_next_key`` ENOENT on the empty map. Programs get
NULL from ``bpf_map_lookup_elem`` on any of them (the storage-get helpers
are the way in, and they need the kernel objects).
"""
from __future__ import annotations

import errno as _errno
import struct
from typing import Any

from ...uapi.bpf import BPF_MAP_TYPE_CGRP_STORAGE
from ..errors import E2BIG, EBADF, EEXIST, EINVAL, ENOENT, ENOTSUPP, fail
from .base import BPF_F_ACCESS_MASK, MAP_STRUCT_SIZE, PCPU_MIN_UNIT_SIZE, BpfMap, F, T, U, flags_access_ok
from .btf_checks import check_cgroup_storage_key, check_i32_key

ENOTSOCK = _errno.ENOTSOCK

__all__ = ["LocalStorageMap", "CgroupStorageMap", "BPF_LOCAL_STORAGE_MAX_VALUE_SIZE", "BPF_MAP_TYPE_CGRP_STORAGE"]

#: ``sizeof(struct bpf_local_storage_elem)`` (cacheline-aligned ``sdata``): 128 on x86-64
LOCAL_STORAGE_ELEM_SIZE = 128
#: ``BPF_LOCAL_STORAGE_MAX_VALUE_SIZE``: ``U16_MAX - sizeof(struct bpf_local_storage_elem)`` (65407, measured)
BPF_LOCAL_STORAGE_MAX_VALUE_SIZE = 0xFFFF - LOCAL_STORAGE_ELEM_SIZE
BPF_LOCAL_STORAGE_CREATE_FLAG_MASK = F.BPF_F_NO_PREALLOC | F.BPF_F_CLONE
LOCAL_STORAGE_CREATE_FLAG_MASK = F.BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK
#: ``sizeof(struct bpf_cgroup_storage_key)`` (u64 cgroup_inode_id, u32 attach_type, padded)
CGROUP_STORAGE_KEY_SIZE = 16


def _fd(key: bytes | None) -> int:
    return int(struct.unpack("<i", bytes(key or b"")[:4].ljust(4, b"\0"))[0])


class LocalStorageMap(BpfMap):
    """SK_STORAGE, INODE_STORAGE, TASK_STORAGE and CGRP_STORAGE."""

    map_types = (T.BPF_MAP_TYPE_SK_STORAGE, T.BPF_MAP_TYPE_INODE_STORAGE, T.BPF_MAP_TYPE_TASK_STORAGE,
                 BPF_MAP_TYPE_CGRP_STORAGE)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``bpf_local_storage_map_alloc_check``."""
        if (attr.map_flags & ~BPF_LOCAL_STORAGE_CREATE_FLAG_MASK or not attr.map_flags & F.BPF_F_NO_PREALLOC
                or attr.max_entries or attr.key_size != 4 or not attr.value_size
                or not attr.btf_key_type_id or not attr.btf_value_type_id):
            raise fail(EINVAL, "local storage: BPF_F_NO_PREALLOC, max_entries 0, key_size 4, BTF key and value")
        if attr.value_size > BPF_LOCAL_STORAGE_MAX_VALUE_SIZE:
            raise fail(E2BIG, f"value_size > {BPF_LOCAL_STORAGE_MAX_VALUE_SIZE}")

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_i32_key(btf, key_type_id, value_type_id)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        #: id(owner object) -> (owner, value): the storages of this map (INODE_STORAGE only)
        self.elems: dict[int, tuple[Any, bytes]] = {}
        try:
            self.charge(MAP_STRUCT_SIZE)
        except BaseException:
            self.release()
            raise

    def _owner(self, key: bytes | None) -> Any:
        """The kernel object the fd key names, failing as Linux does for the kinds the sim lacks."""
        fd = _fd(key)
        is_open = fd >= 0 and fd in self.kernel.fds
        if self.map_type == T.BPF_MAP_TYPE_SK_STORAGE:
            raise fail(ENOTSOCK if is_open else EBADF, f"fd {fd} is not a socket")  # sockfd_lookup
        if self.map_type == T.BPF_MAP_TYPE_INODE_STORAGE:
            if not is_open:
                raise fail(EBADF, f"fd {fd} is not open")
            return self.kernel.fds.get(fd)
        raise fail(EBADF, f"fd {fd} is not a {'pidfd' if self.map_type == T.BPF_MAP_TYPE_TASK_STORAGE else 'cgroup'}")

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        elem = self.elems.get(id(self._owner(key)))
        if elem is None:
            raise fail(ENOENT, "no storage on this object")
        return elem[1]

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        """``bpf_local_storage_update``."""
        self.check_sys_write()
        owner = self._owner(key)
        if (flags & ~U.BPF_F_LOCK) > U.BPF_EXIST or (flags & U.BPF_F_LOCK and not self.has_spin_lock):
            raise fail(EINVAL, "local storage flags")
        exists = id(owner) in self.elems
        if exists and flags & ~U.BPF_F_LOCK == U.BPF_NOEXIST:
            raise fail(EEXIST, "storage exists")
        if not exists and flags & ~U.BPF_F_LOCK == U.BPF_EXIST:
            raise fail(ENOENT, "no storage on this object")
        if not exists:
            self.charge(LOCAL_STORAGE_ELEM_SIZE + self.value_size)
        self.elems[id(owner)] = (owner, bytes(value[:self.value_size]).ljust(self.value_size, b"\0"))

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        if self.elems.pop(id(self._owner(key)), None) is None:
            raise fail(ENOENT, "no storage on this object")
        self.uncharge(LOCAL_STORAGE_ELEM_SIZE + self.value_size)

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        raise fail(ENOTSUPP, "local storages cannot be iterated")  # notsupp_get_next_key

    def free(self) -> None:
        self.elems.clear()


class CgroupStorageMap(BpfMap):
    """CGROUP_STORAGE and PERCPU_CGROUP_STORAGE: one value per (cgroup, attach type) a program is attached to."""

    map_types = (T.BPF_MAP_TYPE_CGROUP_STORAGE, T.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``cgroup_storage_map_alloc``'s checks."""
        percpu = attr.map_type == T.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
        max_value = min(BPF_LOCAL_STORAGE_MAX_VALUE_SIZE, PCPU_MIN_UNIT_SIZE) if percpu else \
            BPF_LOCAL_STORAGE_MAX_VALUE_SIZE
        if attr.key_size not in (CGROUP_STORAGE_KEY_SIZE, 8):
            raise fail(EINVAL, "cgroup storage key is a bpf_cgroup_storage_key or a u64")
        if attr.value_size == 0:
            raise fail(EINVAL, "value_size 0")
        if attr.value_size > max_value:
            raise fail(E2BIG, f"value_size > {max_value}")
        if attr.map_flags & ~LOCAL_STORAGE_CREATE_FLAG_MASK or not flags_access_ok(attr.map_flags):
            raise fail(EINVAL, "cgroup storage flags")
        if attr.max_entries:
            raise fail(EINVAL, "cgroup storage max_entries must be 0")

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_cgroup_storage_key(btf, key_type_id, value_type_id)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        self.percpu = self.map_type == T.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
        try:
            self.charge(MAP_STRUCT_SIZE)
        except BaseException:
            self.release()
            raise

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        raise fail(ENOENT, "no cgroup has this storage")

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        """``cgroup_storage_update_elem`` / ``bpf_percpu_cgroup_storage_update``: flag checks, then ENOENT."""
        self.check_sys_write()
        if self.percpu:
            if flags not in (U.BPF_ANY, U.BPF_EXIST):
                raise fail(EINVAL, "percpu cgroup storage flags")
        elif flags & ~(U.BPF_F_LOCK | U.BPF_EXIST):
            raise fail(EINVAL, "cgroup storage flags")
        elif flags & U.BPF_F_LOCK and not self.has_spin_lock:
            raise fail(EINVAL, "BPF_F_LOCK without a bpf_spin_lock")
        raise fail(ENOENT, "no cgroup has this storage")

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        raise fail(EINVAL, "cgroup storage elements cannot be deleted")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        raise fail(ENOENT, "no cgroup has this storage")
