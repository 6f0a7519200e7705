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
``bpf_user_ringbuf_drain`` (``drain``). Creation rules and layout are
RINGBUF's (``RingBufMap``); every element command is ENOTSUPP; user space may
map the producer page and the data writable but never the consumer page
(``ringbuf_map_mmap_user``).
"""
from __future__ import annotations

import errno as _errno
import mmap as _mmap
import struct
from collections.abc import Callable
from typing import Any

from ...uapi.bpf import BPF_MAP_TYPE_ARENA
from ..errors import E2BIG, EAGAIN, EBUSY, EINVAL, ENOTSUPP, EOPNOTSUPP, EPERM, ERANGE, fail
from .base import MAP_STRUCT_SIZE, PAGE_SIZE, BpfMap, F, T, round_up
from .ringbuf import BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ, RingBufMap

__all__ = ["ArenaMap", "UserRingBufMap", "BPF_MAP_TYPE_ARENA", "BPF_F_SEGV_ON_FAULT", "BPF_F_NO_USER_CONV"]

BPF_F_SEGV_ON_FAULT = 1 << 17
BPF_F_NO_USER_CONV = 1 << 18
SZ_4G = 1 << 32
ENODATA = _errno.ENODATA
BPF_MAX_USER_RINGBUF_SAMPLES = 128 * 1024
#: ``DYNPTR_MAX_SIZE``: a sample must fit in a dynptr
DYNPTR_MAX_SIZE = (1 << 24) - 1
BPF_RB_NO_WAKEUP, BPF_RB_FORCE_WAKEUP = 1, 2
_CONS, _PROD, _DATA = 0, PAGE_SIZE, 2 * PAGE_SIZE


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

    # -- user space maps it as the producer ------------------------------------------------------------
    def mmap(self, length: int, prot: int, flags: int, offset: int = 0) -> memoryview:
        """``ringbuf_map_mmap_user``: the consumer page is never writable; the rest may be."""
        if not flags & _mmap.MAP_SHARED:
            raise fail(EINVAL, "map mmap must be MAP_SHARED")
        if offset % PAGE_SIZE or length <= 0:
            raise fail(EINVAL, "mmap offset must be page aligned")
        write = bool(prot & _mmap.PROT_WRITE)
        if write and self.frozen:
            raise fail(EPERM, "writable mapping of a frozen map")
        if write and offset == 0:
            raise fail(EPERM, "the consumer page of a user ring buffer is read-only")
        if offset + length > len(self.buf):
            raise fail(EINVAL, "mmap past the end of the ring buffer")
        view = self.buf[offset:offset + length]
        if write:
            self.writecnt += 1
            return view
        return view.toreadonly()

    # -- programs consume ----------------------------------------------------------------------------
    def _peek(self) -> tuple[int, int]:
        """``__bpf_user_ringbuf_peek``: (sample address, size), or raise with the errno Linux returns."""
        cons, prod = self._get(_CONS), self._get(_PROD)
        if prod % 8:
            raise fail(EINVAL, "producer position not 8-byte aligned")
        if cons == prod:
            raise fail(ENODATA, "no sample")
        hdr_len = struct.unpack_from("<I", self.buf, _DATA + (cons & self.mask))[0]
        flags = hdr_len & (BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)
        sample_len = hdr_len & ~flags
        total = round_up(sample_len + BPF_RINGBUF_HDR_SZ, 8)
        if total > prod - cons:
            raise fail(EINVAL, "sample past the producer position")
        if total > self.size or sample_len > DYNPTR_MAX_SIZE:
            raise fail(E2BIG, "sample larger than the ring")
        if flags & BPF_RINGBUF_DISCARD_BIT:
            self._put(_CONS, cons + total)
            raise fail(EAGAIN, "discarded sample")
        if flags & BPF_RINGBUF_BUSY_BIT:
            raise fail(ENODATA, "sample still being written")
        return self.data.base + ((cons + BPF_RINGBUF_HDR_SZ) & self.mask), sample_len

    def drain(self, callback: Callable[[int, int], int], flags: int = 0) -> int:
        """``bpf_user_ringbuf_drain``: ``callback(sample address, size)`` per sample until it returns
        non-zero; the number of samples drained, or -errno."""
        if flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
            return -EINVAL
        if getattr(self, "_draining", False):
            return -EBUSY
        self._draining = True
        samples = 0
        try:
            for _ in range(BPF_MAX_USER_RINGBUF_SAMPLES):
                try:
                    addr, size = self._peek()
                except OSError as e:
                    if e.errno == ENODATA:
                        break
                    if e.errno == EAGAIN:
                        continue
                    return -(e.errno or EINVAL)
                ret = callback(addr, size)
                self._put(_CONS, self._get(_CONS) + round_up(size + BPF_RINGBUF_HDR_SZ, 8))
                samples += 1
                if ret:
                    break
        finally:
            self._draining = False
        return samples
