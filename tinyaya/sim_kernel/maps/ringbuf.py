"""BPF_MAP_TYPE_RINGBUF (kernel/bpf/ringbuf.c), in the layout user space mmaps.

The mapping is what ``ringbuf_map_mmap_kern`` exposes: at offset 0 the
consumer page (``consumer_pos``, the only writable page), at ``PAGE_SIZE``
the producer page (``producer_pos``, then ``pending_pos``), and at
``2 * PAGE_SIZE`` the data area. Linux maps the data pages twice in a row so
that a record that wraps is contiguous; here the data area is ``2 * size``
bytes and both sides always address a record at ``pos & mask`` and read or
write it straight on, so the bytes past ``size`` play the second mapping.

A record is an 8-byte header (``u32 len`` with BPF_RINGBUF_BUSY_BIT while
reserved and BPF_RINGBUF_DISCARD_BIT if discarded, ``u32 pg_off``), then the
sample, the whole rounded up to 8 (``bpf_ringbuf_reserve``/``_commit``).
"""
from __future__ import annotations

import mmap as _mmap
import struct
from collections.abc import Callable
from typing import Any

from ..errors import EAGAIN, EINVAL, ENOMEM, ENOTSUPP, EPERM, fail
from ..memory import RegionKind
from .base import MAP_STRUCT_SIZE, PAGE_SIZE, BpfMap, F, T, is_power_of_2, round_up

__all__ = ["RingBufMap", "BPF_RINGBUF_BUSY_BIT", "BPF_RINGBUF_DISCARD_BIT", "BPF_RINGBUF_HDR_SZ"]

BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
BPF_RB_NO_WAKEUP = 1
BPF_RB_FORCE_WAKEUP = 2
BPF_RB_AVAIL_DATA = 0
BPF_RB_RING_SIZE = 1
BPF_RB_CONS_POS = 2
BPF_RB_PROD_POS = 3
#: ``RINGBUF_PGOFF`` + ``RINGBUF_POS_PAGES``: the page of the data area inside ``struct bpf_ringbuf``
_DATA_PGOFF = 3
RINGBUF_MAX_RECORD_SZ = 0xFFFFFFFF // 4
_CONS = 0
_PROD = PAGE_SIZE
_PEND = PAGE_SIZE + 8
_DATA = 2 * PAGE_SIZE
_MAP_NORESERVE = getattr(_mmap, "MAP_NORESERVE", 0x4000)


class RingBufMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_RINGBUF,)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``ringbuf_map_alloc``'s checks."""
        if attr.map_flags & ~F.BPF_F_NUMA_NODE:
            raise fail(EINVAL, "ring buffer flags")
        if (attr.key_size or attr.value_size or not is_power_of_2(attr.max_entries)
                or attr.max_entries % PAGE_SIZE):
            raise fail(EINVAL, "ring buffers need key_size 0, value_size 0, max_entries a power-of-2 page multiple")

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        super().__init__(kernel, attr)
        self.size = self.max_entries
        self.mask = self.size - 1
        try:
            self.charge(MAP_STRUCT_SIZE + 2 * PAGE_SIZE + self.size)
            total = _DATA + 2 * self.size
            self._mem = _mmap.mmap(-1, total, flags=_mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS | _MAP_NORESERVE)
            self.buf = memoryview(self._mem)
            self.data = kernel.aspace.add(self.buf[_DATA:], RegionKind.RINGBUF, "ringbuf", owner=self)
        except BaseException as e:
            self.release()
            if isinstance(e, MemoryError):
                raise fail(ENOMEM, f"no room for the ring: {e}")
            raise
        #: called on a wakeup (a submit without BPF_RB_NO_WAKEUP), e.g. to wake an epoll waiter
        self.waiters: list[Callable[[], None]] = []
        self.wakeups = 0

    def free(self) -> None:
        if hasattr(self, "data"):
            self.kernel.aspace.remove(self.data)

    # -- positions --------------------------------------------------------------------------------
    def _get(self, off: int) -> int:
        return int(struct.unpack_from("<Q", self.buf, off)[0])

    def _put(self, off: int, v: int) -> None:
        struct.pack_into("<Q", self.buf, off, v & 0xFFFFFFFFFFFFFFFF)

    @property
    def consumer_pos(self) -> int:
        return self._get(_CONS)

    @property
    def producer_pos(self) -> int:
        return self._get(_PROD)

    # -- program side ---------------------------------------------------------------------------------
    def reserve(self, size: int, flags: int = 0) -> int:
        """``bpf_ringbuf_reserve``: the sample's address, or 0 (NULL) if it does not fit."""
        if flags or size > RINGBUF_MAX_RECORD_SZ:
            return 0
        length = round_up(size + BPF_RINGBUF_HDR_SZ, 8)
        if length > self.size:
            return 0
        cons, prod, pend = self.consumer_pos, self.producer_pos, self._get(_PEND)
        while pend < prod:  # advance over records committed since (the oldest still-busy one stops it)
            hlen = struct.unpack_from("<I", self.buf, _DATA + (pend & self.mask))[0]
            if hlen & BPF_RINGBUF_BUSY_BIT:
                break
            pend += round_up((hlen & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ, 8)
        self._put(_PEND, pend)
        new_prod = prod + length
        u64 = 0xFFFFFFFFFFFFFFFF  # unsigned long arithmetic: a consumer_pos past the producer means "full"
        if (new_prod - cons) & u64 > self.mask or (new_prod - pend) & u64 > self.mask:
            return 0
        off = prod & self.mask
        struct.pack_into("<II", self.buf, _DATA + off, size | BPF_RINGBUF_BUSY_BIT, _DATA_PGOFF + (off >> 12))
        self._put(_PROD, new_prod)
        return self.data.base + off + BPF_RINGBUF_HDR_SZ

    def _commit(self, addr: int, flags: int, discard: bool) -> None:
        """``bpf_ringbuf_commit``: clear BUSY (set DISCARD), then wake the consumer per ``flags``."""
        off = addr - BPF_RINGBUF_HDR_SZ - self.data.base
        if off < 0 or off >= self.size:
            return
        hlen = struct.unpack_from("<I", self.buf, _DATA + off)[0]
        new = hlen ^ BPF_RINGBUF_BUSY_BIT
        if discard:
            new |= BPF_RINGBUF_DISCARD_BIT
        struct.pack_into("<I", self.buf, _DATA + off, new)
        if flags & BPF_RB_NO_WAKEUP:
            return
        # Linux wakes when this record is the one the consumer waits on, or when forced
        if flags & BPF_RB_FORCE_WAKEUP or (self.consumer_pos & self.mask) == off:
            self.wakeups += 1
            for w in list(self.waiters):
                w()

    def submit(self, addr: int, flags: int = 0) -> None:
        self._commit(addr, flags, False)

    def discard(self, addr: int, flags: int = 0) -> None:
        self._commit(addr, flags, True)

    def output(self, data: bytes, flags: int = 0) -> int:
        """``bpf_ringbuf_output``: reserve, copy, submit; -EAGAIN if there is no room."""
        if flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
            return -EINVAL
        addr = self.reserve(len(data), 0)
        if not addr:
            return -EAGAIN
        off = addr - self.data.base
        self.data.buf[off:off + len(data)] = data
        self.submit(addr, flags)
        return 0

    def query(self, flags: int) -> int:
        """``bpf_ringbuf_query``."""
        if flags == BPF_RB_AVAIL_DATA:
            return self.producer_pos - self.consumer_pos
        if flags == BPF_RB_RING_SIZE:
            return self.size
        if flags == BPF_RB_CONS_POS:
            return self.consumer_pos
        if flags == BPF_RB_PROD_POS:
            return self.producer_pos
        return 0

    # -- syscall side: no element ops (ENOTSUPP from every one), but mmap ------------------------------
    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        raise fail(ENOTSUPP, "ring buffers have no elements")

    def mmap(self, length: int, prot: int, flags: int, offset: int = 0) -> memoryview:
        """``ringbuf_map_mmap_kern``: only the consumer page may be mapped writable."""
        if not flags & _mmap.MAP_SHARED:
            raise fail(EINVAL, "map mmap must be MAP_SHARED")
        if offset % PAGE_SIZE or length <= 0:
            raise fail(EINVAL, "mmap offset must be page aligned")
        write = bool(prot & _mmap.PROT_WRITE)
        if write and self.frozen:
            raise fail(EPERM, "writable mapping of a frozen map")
        if write and (offset != 0 or length > PAGE_SIZE):
            raise fail(EPERM, "only the consumer page of a ring buffer is writable")
        if offset + length > len(self.buf):
            raise fail(EINVAL, "mmap past the end of the ring buffer")
        view = self.buf[offset:offset + length]
        if write:
            self.writecnt += 1
            return view
        return view.toreadonly()
