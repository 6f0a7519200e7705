"""BPF_MAP_TYPE_ARENA (kernel/bpf/arena.c) and BPF_MAP_TYPE_USER_RINGBUF (kernel/bpf/ringbuf.c).

ARENA: a sparse region shared by programs and user space, ``max_entries``
pages of it (at most 4 GiB), created with BPF_F_MMAPABLE and optionally
BPF_F_SEGV_ON_FAULT / BPF_F_NO_USER_CONV; ``map_extra`` is the page-aligned
user address it is to be mapped at (the range may not cross a 4 GiB
boundary: ERANGE). It has no elements: lookup is EINVAL, update, delete and
``get_next_key`` EOPNOTSUPP, as ``arena_map_*`` answer. The simulated kernel
implements its creation rules only: pages (``bpf_arena_alloc_pages``) and
mmap are not simulated.

USER_RINGBUF: a ring buffer user space produces into and programs drain with
``bpf_user_ringbuf_drain``. Creation rules are RINGBUF's; every element
command is ENOTSUPP; the memory layout is the ring buffer's (``RingBufMap``).
"""
from __future__ import annotations

from typing import Any

from ...uapi.bpf import BPF_MAP_TYPE_ARENA
from ..errors import E2BIG, EINVAL, ENOTSUPP, EOPNOTSUPP, ERANGE, fail
from .base import MAP_STRUCT_SIZE, PAGE_SIZE, BpfMap, F, T
from .ringbuf import RingBufMap

__all__ = ["ArenaMap", "UserRingBufMap", "BPF_MAP_TYPE_ARENA", "BPF_F_SEGV_ON_FAULT", "BPF_F_NO_USER_CONV"]

BPF_F_SEGV_ON_FAULT = 1 << 17
BPF_F_NO_USER_CONV = 1 << 18
SZ_4G = 1 << 32


class ArenaMap(BpfMap):
    map_types = (BPF_MAP_TYPE_ARENA,)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``arena_map_alloc``'s checks."""
        if (attr.key_size or attr.value_size or attr.max_entries == 0 or not attr.map_flags & F.BPF_F_MMAPABLE
                or attr.map_flags & ~(BPF_F_SEGV_ON_FAULT | F.BPF_F_MMAPABLE | BPF_F_NO_USER_CONV)):
            raise fail(EINVAL, "arena: key_size 0, value_size 0, max_entries > 0, BPF_F_MMAPABLE")
        if attr.map_extra % PAGE_SIZE:
            raise fail(EINVAL, "arena: map_extra must be page aligned")
        vm_range = attr.max_entries * PAGE_SIZE
        if vm_range > SZ_4G:
            raise fail(E2BIG, "arena larger than 4 GiB")
        if attr.map_extra >> 32 != (attr.map_extra + vm_range - 1) >> 32:
            raise fail(ERANGE, "arena user range crosses a 4 GiB boundary")

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        try:
            self.charge(MAP_STRUCT_SIZE)
        except BaseException:
            self.release()
            raise

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        raise fail(EINVAL, "arena has no elements")

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        raise fail(EOPNOTSUPP, "arena has no elements")

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        raise fail(EOPNOTSUPP, "arena has no elements")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        raise fail(EOPNOTSUPP, "arena has no elements")


class UserRingBufMap(RingBufMap):
    map_types = (T.BPF_MAP_TYPE_USER_RINGBUF,)

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        raise fail(ENOTSUPP, "user ring buffers have no elements")

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        raise fail(ENOTSUPP, "user ring buffers have no elements")

    def sys_delete(self, key: bytes | None) -> None:
        raise fail(ENOTSUPP, "user ring buffers have no elements")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        raise fail(ENOTSUPP, "user ring buffers have no elements")

