"""Maps of sockets and cgroups: SOCKMAP, SOCKHASH (net/core/sock_map.c), REUSEPORT_SOCKARRAY
(kernel/bpf/reuseport_array.c) and CGROUP_ARRAY (kernel/bpf/arraymap.c).

User space fills them with socket or cgroup fds. The simulated kernel has
neither sockets nor cgroup directories, so every update fails the way Linux
fails for an fd that is not one: EBADF for a closed fd for another
file (``sockfd_lookup``), EBADF for a non-cgroup fd (``cgroup_get_from_fd``)
, after the checks Linux makes first. The maps stay empty: lookups,
deletes and ``get_next_key`` answer as Linux's do on an empty map, and
programs see NULL from ``bpf_map_lookup_elem`` and SK_DROP from
``bpf_sk_redirect_map``/``bpf_msg_redirect_map`` (``sk_redirect``).
"""
from __future__ import annotations

import errno as _errno
import struct
from typing import Any

from ..errors import E2BIG, EBADF, EINVAL, ENOENT, ENOSPC, ENOTSUPP, fail
from .array import array_map_alloc_check
from .base import MAP_STRUCT_SIZE, BpfMap, F, T, U, roundup_pow_of_two
from .btf_checks import check_no_btf
from .fd_array import FdArrayMap, fd_array_map_alloc_check
from .netdev_maps import array_next_key, u32_at

ENOTSOCK = _errno.ENOTSOCK

__all__ = ["SockMap", "ReuseportSockArray", "CgroupArrayMap", "SK_DROP", "SK_PASS"]

SK_DROP, SK_PASS = 0, 1
BPF_F_INGRESS = 1
SOCK_CREATE_FLAG_MASK = F.BPF_F_NUMA_NODE | F.BPF_F_RDONLY | F.BPF_F_WRONLY
MAX_BPF_STACK = 512
S32_MAX = 0x7FFFFFFF
#: ``sizeof(struct bpf_shtab_bucket)`` (hlist head, spinlock, padded)
SHTAB_BUCKET_SIZE = 16


def sockfd_lookup(kernel: Any, fd: int) -> None:
    """``sockfd_lookup`` in a kernel without sockets: EBADF if ``fd`` is not open, else ENOTSOCK."""
    if fd < 0 or fd not in kernel.fds:
        raise fail(EBADF, f"fd {fd} is not open")
    raise fail(ENOTSOCK, f"fd {fd} is not a socket")


class SockMap(BpfMap):
    """SOCKMAP (sockets by u32 index) and SOCKHASH (sockets by key)."""

    map_types = (T.BPF_MAP_TYPE_SOCKMAP, T.BPF_MAP_TYPE_SOCKHASH)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``sock_map_alloc`` / ``sock_hash_alloc``."""
        is_hash = attr.map_type == T.BPF_MAP_TYPE_SOCKHASH
        if (attr.max_entries == 0 or (attr.key_size == 0 if is_hash else attr.key_size != 4)
                or attr.value_size not in (4, 8) or attr.map_flags & ~SOCK_CREATE_FLAG_MASK):
            raise fail(EINVAL, "sockmap: value_size 4 or 8, max_entries > 0")
        if is_hash and attr.key_size > MAX_BPF_STACK:
            raise fail(E2BIG, "sockhash: key_size > 512")
        if is_hash:  # sock_hash_alloc: buckets_num = roundup_pow_of_two(max_entries), 16-byte buckets
            buckets = roundup_pow_of_two(attr.max_entries)
            if buckets > 1 << 31 or buckets > 0xFFFFFFFF // SHTAB_BUCKET_SIZE:
                raise fail(EINVAL, "sockhash: too many buckets")

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_no_btf(btf, key_type_id, value_type_id)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        self.is_hash = self.map_type == T.BPF_MAP_TYPE_SOCKHASH
        try:
            self.charge(MAP_STRUCT_SIZE + (0 if self.is_hash else 8 * min(self.max_entries, 1 << 20)))
        except BaseException:
            self.release()
            raise

    def sk_redirect(self, key: bytes, flags: int) -> int:
        """``bpf_sk_redirect_map``/``bpf_sk_redirect_hash``: no socket to redirect to, SK_DROP."""
        return SK_DROP

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        """``sock_map_lookup_sys``: the socket's cookie needs a u64 value."""
        if self.value_size != 8:
            raise fail(ENOSPC, "sockmap lookups need value_size 8")
        raise fail(ENOENT, "no socket")

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        """``sock_map_update_elem_sys``: the fd first, then the flags and index."""
        self.check_sys_write()
        raw = bytes(value[:self.value_size]).ljust(8, b"\0")
        ufd = struct.unpack_from("<Q" if self.value_size == 8 else "<I", raw)[0]
        if ufd > S32_MAX:
            raise fail(EINVAL, "fd > S32_MAX")
        sockfd_lookup(self.kernel, ufd)

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        if self.is_hash:
            raise fail(ENOENT, "no such key")  # sock_hash_delete_elem
        if u32_at(key) >= self.max_entries:
            raise fail(EINVAL, "index out of range")
        raise fail(EINVAL, "empty slot")  # __sock_map_delete

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        if self.is_hash:
            raise fail(ENOENT, "empty sockhash")
        return array_next_key(key, self.max_entries)


class ReuseportSockArray(BpfMap):
    """REUSEPORT_SOCKARRAY: SO_REUSEPORT sockets by index (``bpf_sk_select_reuseport``)."""

    map_types = (T.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``reuseport_array_alloc_check``: value 4 or 8, then the array checks."""
        if attr.value_size not in (4, 8):
            raise fail(EINVAL, "reuseport array: value_size 4 or 8")
        array_map_alloc_check(attr)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        try:
            self.charge(MAP_STRUCT_SIZE + 8 * min(self.max_entries, 1 << 20))
        except BaseException:
            self.release()
            raise

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        """``bpf_fd_reuseport_array_lookup_elem``: the socket cookie needs a u64 value."""
        if self.value_size != 8:
            raise fail(ENOSPC, "reuseport array lookups need value_size 8")
        raise fail(ENOENT, "no socket")

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        """``bpf_fd_reuseport_array_update_elem``."""
        self.check_sys_write()
        if flags > U.BPF_EXIST:
            raise fail(EINVAL, "reuseport array flags")
        if u32_at(key) >= self.max_entries:
            raise fail(E2BIG, "index out of range")
        raw = bytes(value[:self.value_size]).ljust(8, b"\0")
        if self.value_size == 8:
            fd = struct.unpack_from("<Q", raw)[0]
            if fd > S32_MAX:
                raise fail(EINVAL, "fd > S32_MAX")
        else:
            fd = struct.unpack_from("<i", raw)[0]
        sockfd_lookup(self.kernel, fd)

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        if u32_at(key) >= self.max_entries:
            raise fail(E2BIG, "index out of range")
        raise fail(ENOENT, "empty slot")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        return array_next_key(key, self.max_entries)


class CgroupArrayMap(FdArrayMap):
    """CGROUP_ARRAY: cgroup v2 directories by index (``bpf_skb_under_cgroup``, ``bpf_current_task_under_cgroup``)."""

    map_types = (T.BPF_MAP_TYPE_CGROUP_ARRAY,)  # type: ignore[assignment]  # FdArrayMap names its two types

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_no_btf(btf, key_type_id, value_type_id)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        fd_array_map_alloc_check(attr)

    def __init__(self, kernel: Any, attr: Any, **kw: Any) -> None:
        super().__init__(kernel, attr, **kw)
        self.is_prog_array = False

    def _get_ptr(self, value: bytes) -> Any:
        """``cgroup_fd_array_get_ptr``: ``cgroup_get_from_fd`` is EBADF for anything but a cgroup directory."""
        fd = struct.unpack("<i", bytes(value[:4]).ljust(4, b"\0"))[0]
        raise fail(EBADF, f"fd {fd} is not a cgroup")

    def perf_event_at(self, index: int) -> Any:
        return None

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        raise fail(ENOTSUPP, "cgroup arrays cannot be looked up")
