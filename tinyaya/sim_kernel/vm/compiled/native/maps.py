"""What the native helpers (``helpers_ir.py``) read: one descriptor per map, and a native mirror of a hash map's index.

A descriptor is a ctypes ``u64`` array (``D_*`` slots) describing the map as the machine code sees it.
The native tier's *map table* (direct-mapped by region slot, like the region table) points at it; the
table is dropped whenever the address space changes (``NativeTier.invalidate``: a chunk was allocated,
a region removed, a shared storage remapped by ``pin``), and every fill rebuilds the descriptor from
the map's current state, so chunk addresses are never stale. A map the native helpers do not handle
gets no descriptor (0): its helpers call back into Python.

* ``ArrayMap`` (ARRAY, PERCPU_ARRAY): ``max_entries``, the slot size, the per-CPU stride, and each
  chunk's guest base (0 while the chunk is not allocated: that lookup calls back, which allocates it).
* ``HashMap`` (HASH, PERCPU_HASH; not LRU): the geometry, each chunk's guest and host base, and the
  ``HashMirror``: an open-addressing table of ``{fnv1a(key) << 2 | head << 1 | 1, slot}`` that
  ``HashMap`` keeps in step with its key index (its ``_native`` hooks: insert, unlink, move to the
  bucket's head, re-index). ``head``: the key is at the head of its Linux bucket, so an in-place
  update keeps the iteration order. Shared storage: the header's ``generation`` is compared with the
  mirror's (another process changed the keys: call back, which re-indexes), and an in-place update
  is only done natively while this process holds the writer lock (``SlotStorage.native_held``).
* ``FdArrayMap`` (PERF_EVENT_ARRAY): per index, the address of the perf event's ``nctl`` block
  (``PerfEvent``: whether a native sample is possible, its CPU, and its ring's ``ctl``: head, lost,
  samples, header and data addresses). The map's ``sys_update``/``sys_delete``/``clear`` are wrapped on
  the instance to drop the tiers' map tables when its slots change.
"""
from __future__ import annotations

import ctypes
import os
import weakref
from typing import Any

_U64 = ctypes.c_uint64
M64 = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
TAG_MASK = (1 << 62) - 1

KIND_NONE, KIND_ARRAY, KIND_HASH, KIND_PERF = 0, 1, 2, 3
# array descriptor
A_MAX, A_SLOT, A_CPU_STRIDE, A_CHUNK_SLOTS, A_CHUNKS = 1, 2, 3, 4, 5
# hash descriptor
(H_KEY_SIZE, H_SLOT, H_CPU_STRIDE, H_CHUNK_SLOTS, H_VALUE_OFF, H_TAB, H_MASK, H_SHARED, H_HDR, H_GEN, H_HELD,
 H_UPDATE, H_VALUE_SIZE, H_ELEM, H_PID, H_PERCPU, H_NCHUNKS) = range(1, 18)
H_CHUNKS = 20  # guest bases, then host bases at H_CHUNKS + nchunks
# perf event array descriptor
P_MAX, P_SLOTS = 1, 2
# PerfEvent.nctl
E_OK, E_CPU, E_RING = 0, 1, 2
E_LEN = 4
# PerfRing.ctl
R_HEAD, R_LOST, R_SAMPLES, R_HDR, R_DATA, R_SIZE, R_ID = 0, 1, 2, 3, 4, 5, 6
R_LEN = 8

#: this process's pid, for the seqlock's writer_pid (updated in a forked child)
PID_WORD = (_U64 * 1)(os.getpid())
os.register_at_fork(after_in_child=lambda: PID_WORD.__setitem__(0, os.getpid()))


def fnv1a(key: bytes) -> int:
    h = FNV_OFFSET
    for b in key:
        h = ((h ^ b) * FNV_PRIME) & M64
    return h


def _host(buf: Any) -> tuple[Any, int] | None:
    try:
        arr = (ctypes.c_char * max(len(buf) if not isinstance(buf, memoryview) else buf.nbytes, 1)).from_buffer(buf)
    except (TypeError, ValueError, BufferError):
        return None
    return arr, ctypes.addressof(arr)


class HashMirror:
    """The native copy of a ``HashMap``'s key index (see the module docstring)."""

    def __init__(self, m: Any) -> None:
        self.m = weakref.proxy(m)
        self.desc: Any = None  # the descriptor whose H_TAB/H_MASK/H_GEN follow this mirror
        self.rebuild()

    # -- the table -----------------------------------------------------------------------------------
    def rebuild(self) -> None:
        m = self.m
        n = len(m.index)
        cap = 16
        while cap < 2 * n + 2:
            cap *= 2
        self.cap = cap
        self.tab = (_U64 * (2 * cap))()
        self.count = 0
        order = m.order
        for key, i in m.index.items():
            lst = order.buckets.get(order.bucket_of.get(key, -1))
            self._put(key, i, bool(lst) and lst[0] == key)
        self.publish()

    def publish(self) -> None:
        d = self.desc
        if d is not None:
            d[H_TAB] = ctypes.addressof(self.tab)
            d[H_MASK] = self.cap - 1
            d[H_GEN] = int(self.m._gen) & M64

    def _find(self, key: bytes, h: int) -> int:
        """The entry index of ``key``, or -(free entry index) - 1."""
        tab, mask = self.tab, self.cap - 1
        tag = (h & TAG_MASK) << 2
        idx = (h ^ (h >> 32)) & mask
        st = self.m.storage
        while True:
            w = tab[2 * idx]
            if w == 0:
                return -idx - 1
            if w & ~3 == tag and st.read(int(tab[2 * idx + 1]), self.m.key_off, self.m.key_size) == key:
                return idx
            idx = (idx + 1) & mask

    def _put(self, key: bytes, i: int, head: bool) -> None:
        h = fnv1a(key)
        e = self._find(key, h)
        if e < 0:
            e = -e - 1
            self.count += 1
        self.tab[2 * e] = ((h & TAG_MASK) << 2) | (2 if head else 0) | 1
        self.tab[2 * e + 1] = i

    def _set_head(self, key: bytes, head: bool) -> None:
        e = self._find(key, fnv1a(key))
        if e >= 0:
            w = int(self.tab[2 * e])
            self.tab[2 * e] = (w | 2) if head else (w & ~2)

    def _delete(self, key: bytes) -> None:
        """Backward-shift deletion (linear probing without tombstones)."""
        e = self._find(key, fnv1a(key))
        if e < 0:
            return
        tab, mask = self.tab, self.cap - 1
        self.count -= 1
        hole = e
        j = e
        while True:
            j = (j + 1) & mask
            w = int(tab[2 * j])
            if w == 0:
                break
            h = w >> 2  # the low 62 bits of the hash: enough for the home index of a table under 2**30
            home = (h ^ (h >> 32)) & mask
            # move j into the hole unless its home lies cyclically in (hole, j]
            if (j > hole and hole < home <= j) or (j < hole and (home > hole or home <= j)):
                continue
            tab[2 * hole], tab[2 * hole + 1] = w, tab[2 * j + 1]
            hole = j
        tab[2 * hole] = 0
        tab[2 * hole + 1] = 0

    # -- HashMap's hooks -----------------------------------------------------------------------------
    def linked(self, key: bytes, i: int) -> None:
        """``key`` was linked at slot ``i``, at the head of its bucket."""
        if 2 * (self.count + 2) > self.cap:
            self.rebuild()
            return
        order = self.m.order
        lst = order.buckets.get(order.bucket_of.get(key, -1)) or []
        if len(lst) > 1:
            self._set_head(lst[1], False)
        self._put(key, i, True)
        self.publish()

    def unlinked(self, key: bytes, bucket: int) -> None:
        """``key`` was unlinked from ``bucket`` (whose new head, if any, becomes the head)."""
        self._delete(key)
        lst = self.m.order.buckets.get(bucket)
        if lst:
            self._set_head(lst[0], True)
        self.publish()

    def moved_to_head(self, key: bytes, old_head: bytes) -> None:
        self._set_head(old_head, False)
        self._set_head(key, True)


def hash_mirror(m: Any) -> HashMirror:
    mirror = m._native
    if mirror is None:
        mirror = m._native = HashMirror(m)
    return mirror


def _storage_chunks(st: Any, nchunks: int, hosts: bool) -> tuple[list[int], list[int], list[Any]]:
    bases = [0] * nchunks
    host = [0] * nchunks
    keep: list[Any] = []
    for k, region in st._chunks.items():
        if k >= nchunks:
            continue
        if hosts:
            h = _host(region.buf)
            if h is None:
                continue  # no host address: leave this chunk to the callback
            keep.append(h[0])
            host[k] = h[1]
        bases[k] = region.base
    return bases, host, keep


def build_desc(m: Any, keep: list[Any]) -> Any:
    """A fresh descriptor of ``m`` (its buffers' exports appended to ``keep``), or None: call back."""
    from ....maps.array import ArrayMap
    from ....maps.fd_array import FdArrayMap
    from ....maps.hash import HashMap

    t = type(m)
    if "prog_lookup" in m.__dict__ or "prog_update" in m.__dict__:
        return None  # methods replaced on the instance: theirs, not ours
    if t is ArrayMap:
        st = m.storage
        nchunks = -(-st.nslots // st.chunk_slots)
        d = (_U64 * (A_CHUNKS + nchunks))()
        d[0] = KIND_ARRAY
        d[A_MAX] = m.max_entries
        d[A_SLOT] = st.slot_size
        d[A_CPU_STRIDE] = m.elem_size if m.percpu else 0
        d[A_CHUNK_SLOTS] = st.chunk_slots
        bases, _, _ = _storage_chunks(st, nchunks, False)
        for k, b in enumerate(bases):
            d[A_CHUNKS + k] = b
        return d
    if t is HashMap:
        st = m.storage
        nchunks = -(-st.nslots // st.chunk_slots)
        d = (_U64 * (H_CHUNKS + 2 * nchunks))()
        d[0] = KIND_HASH
        d[H_KEY_SIZE] = m.key_size
        d[H_SLOT] = st.slot_size
        d[H_CPU_STRIDE] = m.elem_size if m.percpu else 0
        d[H_PERCPU] = int(m.percpu)
        d[H_CHUNK_SLOTS] = st.chunk_slots
        d[H_VALUE_OFF] = m.value_off
        d[H_VALUE_SIZE] = m.value_size
        d[H_ELEM] = m.elem_size
        d[H_UPDATE] = int(not m.lru and m.spin_lock_off is None)
        d[H_NCHUNKS] = nchunks
        d[H_PID] = ctypes.addressof(PID_WORD)
        if st.shared:
            d[H_SHARED] = 1
            d[H_HDR] = ctypes.addressof(st.hdr)
            d[H_HELD] = ctypes.addressof(st.native_held)
        bases, hosts, kept = _storage_chunks(st, nchunks, True)
        keep.extend(kept)
        for k in range(nchunks):
            if hosts[k]:
                d[H_CHUNKS + k] = bases[k]
                d[H_CHUNKS + nchunks + k] = hosts[k]
        mirror = hash_mirror(m)
        mirror.desc = d
        mirror.publish()
        keep.append(mirror)
        return d
    if t is FdArrayMap and not m.is_prog_array:
        _watch_slots(m)
        d = (_U64 * (P_SLOTS + m.max_entries))()
        d[0] = KIND_PERF
        d[P_MAX] = m.max_entries
        for i, ev in m.slots.items():
            nctl = getattr(ev, "nctl", None)
            if nctl is not None and 0 <= i < m.max_entries:
                d[P_SLOTS + i] = ctypes.addressof(nctl)
                keep.append(ev)
        return d
    return None


def _watch_slots(m: Any) -> None:
    """Drop the native tiers' map tables whenever this perf event array's slots change."""
    if m.__dict__.get("_native_watched"):
        return
    m.__dict__["_native_watched"] = True
    aspace = m.kernel.aspace

    def wrap(name: str) -> None:
        orig = getattr(m, name)

        def wrapped(*a: Any, **kw: Any) -> Any:
            try:
                return orig(*a, **kw)
            finally:
                invalidate_tiers(aspace)
        setattr(m, name, wrapped)
    for name in ("sys_update", "sys_delete", "clear"):
        wrap(name)


def invalidate_tiers(aspace: Any) -> None:
    """Every native tier on ``aspace`` forgets its region and map tables."""
    tiers = getattr(aspace, "__dict__", {}).get("_native_tiers")
    if tiers:
        for t in list(tiers):
            t.invalidate()
