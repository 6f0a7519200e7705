"""BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH (kernel/bpf/hashtab.c).

An element is a slot: ``u64 state`` (bit 0: in use, bits 1-63: when it was
linked), the key padded to 8 (``round_up(key_size, 8)``, as in ``struct
htab_elem``), then the value (per CPU: one ``round_up(value_size, 8)`` copy
per possible CPU). The key → slot index is a dict in this process; freed
slots are reused first, like the preallocated free list.

Iteration follows Linux's buckets: ``n_buckets = roundup_pow_of_two(max_entries)``,
a key's bucket is ``htab_map_hash(key, hashrnd) & (n_buckets - 1)`` (jhash),
and a bucket lists its newest element first (``hlist_nulls_add_head_rcu``;
an update that replaces an element moves it to the head, an in-place
per-CPU or BPF_F_LOCK update does not). ``get_next_key`` walks the rest of
the key's bucket, then the next non-empty buckets; a key that is gone
restarts the walk at the first key, as ``htab_map_get_next_key`` does. With
BPF_F_ZERO_SEED (``hashrnd`` 0) the order is exactly Linux's.

LRU maps (``lru_hash.py``) are this table plus Linux's LRU lists.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import E2BIG, EEXIST, EINVAL, ENOENT, ENOMEM, ENOTSUPP, EPERM, fail
from .base import (
    BPF_F_ACCESS_MASK,
    KMALLOC_MAX_SIZE,
    MAP_STRUCT_SIZE,
    NUMA_NO_NODE,
    PCPU_MIN_UNIT_SIZE,
    BpfMap,
    F,
    T,
    U,
    attr_numa_node,
    flags_access_ok,
    round_up,
    roundup_pow_of_two,
)
from .htab_order import BucketOrder
from .jhash import jhash2
from .storage import GENERATION, SlotStorage

__all__ = ["HashMap", "htab_map_alloc_check", "HTAB_CREATE_FLAG_MASK"]

#: ``HTAB_CREATE_FLAG_MASK`` in hashtab.c
HTAB_CREATE_FLAG_MASK = (F.BPF_F_NO_PREALLOC | F.BPF_F_NO_COMMON_LRU | F.BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK
                         | F.BPF_F_ZERO_SEED)
#: ``sizeof(struct htab_elem)`` on x86-64
HTAB_ELEM_SIZE = 48
#: ``sizeof(struct bucket)``
BUCKET_SIZE = 16
U32_MAX = 0xFFFFFFFF
_STATE = 8
_PERCPU = (T.BPF_MAP_TYPE_PERCPU_HASH, T.BPF_MAP_TYPE_LRU_PERCPU_HASH)
_LRU = (T.BPF_MAP_TYPE_LRU_HASH, T.BPF_MAP_TYPE_LRU_PERCPU_HASH)


def htab_map_alloc_check(attr: Any, *, capable_sys_admin: bool = True) -> None:
    """``htab_map_alloc_check``, in its order."""
    percpu = attr.map_type in _PERCPU
    lru = attr.map_type in _LRU
    prealloc = not attr.map_flags & F.BPF_F_NO_PREALLOC
    percpu_lru = bool(attr.map_flags & F.BPF_F_NO_COMMON_LRU)
    if attr.map_flags & F.BPF_F_ZERO_SEED and not capable_sys_admin:
        raise fail(EPERM, "BPF_F_ZERO_SEED needs CAP_SYS_ADMIN")
    if attr.map_flags & ~HTAB_CREATE_FLAG_MASK or not flags_access_ok(attr.map_flags):
        raise fail(EINVAL, "hash map flags")
    if not lru and percpu_lru:
        raise fail(EINVAL, "BPF_F_NO_COMMON_LRU is for LRU maps")
    if lru and not prealloc:
        raise fail(ENOTSUPP, "LRU maps must be preallocated")
    if attr_numa_node(attr) != NUMA_NO_NODE and (percpu or percpu_lru):
        raise fail(EINVAL, "numa node with per-CPU storage")
    if attr.max_entries == 0 or attr.key_size == 0 or attr.value_size == 0:
        raise fail(EINVAL, "hash maps need key_size, value_size and max_entries")
    if attr.key_size + attr.value_size >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE:
        raise fail(E2BIG, "key_size + value_size too big for one element")
    if percpu and round_up(attr.value_size, 8) > PCPU_MIN_UNIT_SIZE:
        raise fail(E2BIG, f"per-CPU value_size {attr.value_size} over {PCPU_MIN_UNIT_SIZE}")


class HashMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_HASH, T.BPF_MAP_TYPE_PERCPU_HASH)
    shareable = True
    #: the native tier's mirror of the key index (vm/compiled/native/maps.py), kept in step by the hooks below
    _native: Any = None

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        htab_map_alloc_check(attr, capable_sys_admin=_capable(kernel))

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        super().__init__(kernel, attr)
        self.percpu = self.map_type in _PERCPU
        self.lru = self.map_type in _LRU
        self.percpu_lru = self.lru and bool(self.map_flags & F.BPF_F_NO_COMMON_LRU)
        if self.map_flags & F.BPF_F_NO_COMMON_LRU:
            # htab_map_alloc: per-CPU LRU lists split max_entries evenly between the CPUs
            n = self.ncpus
            rounded = round_up(self.max_entries, n)
            self.max_entries = rounded if rounded <= U32_MAX else self.max_entries // n * n
        if self.max_entries > 1 << 31 or roundup_pow_of_two(self.max_entries) > U32_MAX // BUCKET_SIZE:
            self.release()
            raise fail(E2BIG, f"max_entries {self.max_entries}: too many buckets")
        self.n_buckets = roundup_pow_of_two(self.max_entries)
        if self.map_flags & F.BPF_F_ZERO_SEED:
            self.hashrnd = 0
        else:  # Linux draws get_random_u32(); here it derives from the kernel's seed, for repeatable runs
            self.hashrnd = jhash2([int(getattr(kernel, "seed", 0)) & U32_MAX, self.region.base >> 32], 0x5EED)
        self.elem_size = round_up(self.value_size, 8)
        self.key_off = _STATE
        self.value_off = _STATE + round_up(self.key_size, 8)
        slot = self.value_off + self.elem_size * (self.ncpus if self.percpu else 1)
        try:
            self.charge(MAP_STRUCT_SIZE)
            # elements are charged one by one as they are inserted, like BPF_F_NO_PREALLOC's kmalloc'd ones
            self.storage = SlotStorage(self, slot, self.max_entries, charge=False, writable=not self.rdonly_prog)
            self.storage.hdr.hashrnd = self.hashrnd
        except BaseException:
            self.release()
            raise
        self._reset_index()

    def _reset_index(self) -> None:
        self.index: dict[bytes, int] = {}
        #: key -> address of its value (this CPU's copy is ``+ cpu * elem_size``)
        self.vaddr: dict[bytes, int] = {}
        #: the walk order of Linux's buckets (``order.buckets``/``order.nonempty`` are the batch tokens)
        self.order = BucketOrder(self.n_buckets, self.hashrnd)
        self._seq = 0  # the last element's link sequence (the state word's bits 1-63)
        self.free_slots: list[int] = []
        self._gen = self.storage.generation
        #: key -> (chunk, u64 index) of its value (``elem_size`` 8), for keys at the head of their bucket
        #: (``prog_update``'s held-lock fast path); emptied whenever the index or the bucket order changes
        self._hot: dict[bytes, tuple[int, int]] = {}
        if self._native is not None:
            self._native.rebuild()

    def free(self) -> None:
        if hasattr(self, "storage"):
            self.storage.close()

    def __len__(self) -> int:
        self._sync()
        return len(self.index)

    # -- index --------------------------------------------------------------------------------------
    def _sync(self) -> None:
        """Rebuild the key index if another process changed the set of keys (shared storage only)."""
        st = self.storage
        if not st.shared or st.generation == self._gen:
            return

        def scan() -> tuple[int, list[tuple[int, bytes, int]]]:
            found = []
            for i in range(st.hwm):
                state = int.from_bytes(st.read(i, 0, 8), "little")
                if state & 1:
                    found.append((i, st.read(i, self.key_off, self.key_size), state >> 1))
            return st.generation, found

        gen, scanned = st.read_consistent(scan)
        found = [(i, k) for i, k, _ in scanned]
        self.index = {k: i for i, k in found}
        self.vaddr = {k: st.slot_addr(i, self.value_off) for i, k in found}
        self.order = BucketOrder(self.n_buckets, self.hashrnd)
        for _, k, _ in sorted(scanned, key=lambda e: e[2]):  # oldest first, so the newest ends up at the head
            self.order.link(k)
        self._seq = max((seq for _, _, seq in scanned), default=0)
        in_use = set(self.index.values())
        self.free_slots = [i for i in range(st.hwm - 1, -1, -1) if i not in in_use]
        self._gen = gen
        self._hot.clear()
        self._synced(found)
        if self._native is not None:
            self._native.rebuild()

    def _synced(self, found: list[tuple[int, bytes]]) -> None:
        """Hook: the index was rebuilt from the shared file (LRU maps rebuild their lists)."""

    def _key(self, key: bytes) -> bytes:
        """The key as the map stores it: exactly key_size bytes (a short buffer is zero-padded)."""
        return bytes(key[:self.key_size]).ljust(self.key_size, b"\0")

    def _to_head(self, key: bytes, i: int) -> None:
        """An update that replaces the element: Linux links the new one at the head of the bucket."""
        lst = self.order.buckets[self.order.bucket_of[key]] if self._native is not None else None
        old_head = lst[0] if lst else None
        if self.order.to_head(key):
            self._hot.clear()
            if self._native is not None and old_head is not None:
                self._native.moved_to_head(key, old_head)
            self._seq += 1
            self.storage.write(i, 0, (1 | self._seq << 1).to_bytes(_STATE, "little"))  # one aligned store

    def _insert(self, key: bytes, values: bytes, cpu: int = 0) -> None:
        """Take a free slot (the free list first, like the preallocated one) and link the element there."""
        st = self.storage
        i = self.free_slots[-1] if self.free_slots else st.hwm
        self._link_at(key, i, values)
        if self.free_slots and self.free_slots[-1] == i:
            self.free_slots.pop()

    def _link_at(self, key: bytes, i: int, values: bytes) -> None:
        """Write the whole element (state, key, values) into slot ``i`` as one update and link it at the head
        of its bucket. Charges the element (ENOMEM past the limit, before anything changes)."""
        st = self.storage
        self.charge(HTAB_ELEM_SIZE + st.slot_size)
        hwm = i + 1 if i >= st.hwm else None
        self._seq += 1
        state = (1 | self._seq << 1).to_bytes(_STATE, "little")
        body = key.ljust(self.value_off - _STATE, b"\0") + values
        st.publish(i, state, body.ljust(st.slot_size - _STATE, b"\0"), hwm=hwm)
        self._gen = st.generation
        self._hot.clear()
        self.index[key] = i
        self.vaddr[key] = st.slot_addr(i, self.value_off)
        self.order.link(key)
        if self._native is not None:
            self._native.linked(key, i)

    def _unlink(self, key: bytes) -> int:
        """Unlink ``key``'s element from the table (``hlist_nulls_del_rcu``) and uncharge it; its slot."""
        st = self.storage
        self._hot.clear()
        i = self.index.pop(key)
        del self.vaddr[key]
        st.write(i, 0, bytes(_STATE), structural=True)
        self._gen = st.generation
        bucket = self.order.bucket_of.get(key, -1)
        self.order.unlink(key)
        if self._native is not None:
            self._native.unlinked(key, bucket)
        self.uncharge(HTAB_ELEM_SIZE + st.slot_size)
        return i

    def _remove(self, key: bytes) -> None:
        """Delete ``key``'s element; its slot goes back to the free list."""
        self.free_slots.append(self._unlink(key))

    def _percpu_image(self, value: bytes, cpu: int | None) -> bytes:
        """Per-CPU values for a new element: all CPUs from user space, or this CPU's and zeros (``pcpu_init_value``)."""
        if cpu is None:
            return bytes(value[:self.elem_size * self.ncpus]).ljust(self.elem_size * self.ncpus, b"\0")
        one = bytes(value[:self.value_size]).ljust(self.elem_size, b"\0")
        return bytes(self.elem_size * cpu) + one + bytes(self.elem_size * (self.ncpus - cpu - 1))

    def _update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        """``htab_map_update_elem`` and friends; ``cpu`` None means from user space (all CPUs)."""
        if (flags & ~U.BPF_F_LOCK) > U.BPF_EXIST:
            return EINVAL
        if flags & U.BPF_F_LOCK and not self.has_spin_lock:
            return EINVAL
        if type(key) is not bytes or len(key) != self.key_size:
            key = self._key(key)
        st = self.storage
        if not st.shared:
            return self._update_locked(key, value, flags, cpu)
        st._lock()
        try:
            if st.hq[GENERATION] != self._gen:
                self._sync()
            return self._update_locked(key, value, flags, cpu)
        finally:
            st._unlock()

    def _update_locked(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        st = self.storage
        i = self.index.get(key)
        mode = flags & ~U.BPF_F_LOCK
        if i is not None and mode == U.BPF_NOEXIST:
            return EEXIST
        if i is None and mode == U.BPF_EXIST:
            return ENOENT
        if i is not None:
            if self.percpu:
                if cpu is None:
                    st.write(i, self.value_off, self._percpu_image(value, None))
                else:
                    st.write(i, self.value_off + cpu * self.elem_size, bytes(value[:self.value_size]))
            else:
                data = bytes(value[:self.value_size])
                if self.spin_lock_off is not None:
                    data = self.keep_special(data, st.read(i, self.value_off, self.value_size))
                if len(data) != self.elem_size:
                    data = data.ljust(self.elem_size, b"\0")
                if flags & U.BPF_F_LOCK or not st.shared:
                    st.write(i, self.value_off, data)
                    if not flags & U.BPF_F_LOCK:
                        self._to_head(key, i)
                else:  # the new value and the move to the bucket's head inside one seqlock write section
                    st._begin_write()
                    try:
                        st.write(i, self.value_off, data)
                        self._to_head(key, i)
                    finally:
                        st._end_write()
            return 0
        if len(self.index) >= self.max_entries:
            return E2BIG
        if self.percpu:
            values = self._percpu_image(value, cpu)
        else:
            values = self.mask_special(bytes(value[:self.value_size])).ljust(self.elem_size, b"\0")
        try:
            self._insert(key, values)
        except OSError as e:  # ENOMEM from the memory charge
            return e.errno or ENOMEM
        return 0

    def _value_addr(self, i: int, cpu: int) -> int:
        return self.storage.slot_addr(i, self.value_off + (cpu * self.elem_size if self.percpu else 0))

    # -- program side ---------------------------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        """``htab_map_lookup_elem`` (the helpers' hot path: one dict lookup)."""
        st = self.storage
        if st.shared and st.hq[GENERATION] != self._gen:
            self._sync()
        a = self.vaddr.get(key) if type(key) is bytes else None  # (every stored key is key_size bytes)
        if a is None:
            if type(key) is bytes and len(key) == self.key_size:
                return 0
            a = self.vaddr.get(self._key(key))  # a short or long key, as the map stores it
            if a is None:
                return 0
        return a + cpu * self.elem_size if self.percpu else a

    def prog_lookup_percpu(self, key: bytes, cpu: int) -> int:
        if not self.percpu or cpu < 0 or cpu >= self.ncpus:
            return 0
        return self.prog_lookup(key, cpu)

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        """``htab_map_update_elem`` / ``htab_percpu_map_update_elem`` from a program.

        The hot case, BPF_ANY on an existing element of a HASH or PERCPU_HASH map (no spin lock), is
        done here with exactly the writes of ``_update_locked``: the new value, then (HASH) the move to
        the bucket's head; per-CPU, this CPU's copy in place. Everything else goes through ``_update``.
        """
        if flags or self.lru or self.spin_lock_off is not None:
            return -self._update(key, value, flags, cpu)
        if type(key) is bytes and type(value) is bytes:
            hot = self._hot.get(key)
            # a key at its bucket's head, a value of at most 8 bytes (zero-padded to 8 in its slot: the same
            # little-endian u64), the writer lock held: one word store
            if hot is not None and len(value) == self.value_size:
                st = self.storage
                if st.hq[GENERATION] == self._gen and st.store_u64_held(hot[0], hot[1], value):
                    return 0
        if type(key) is not bytes or len(key) != self.key_size:
            key = self._key(key)
        data = value if type(value) is bytes and len(value) == self.value_size else bytes(value[:self.value_size])
        percpu = self.percpu
        if percpu:
            off = self.value_off + cpu * self.elem_size
        else:
            off = self.value_off
            if len(data) != self.elem_size:
                data = data.ljust(self.elem_size, b"\0")
        st = self.storage
        if st._lock_depth and not st._writing:
            # shared, and the writer lock is already held (an events batch): the steps of the locked
            # path below without taking the lock again (nothing in them releases it)
            if st.hq[GENERATION] != self._gen:
                self._sync()
            i = self.index.get(key)
            if i is None:
                return -self._update_locked(key, value, 0, cpu)
            if not percpu:
                order = self.order
                if order.buckets[order.bucket_of[key]][0] != key:
                    st._begin_write()  # the new value and the move to the bucket's head: one write section
                    try:
                        st.write(i, off, data)
                        self._to_head(key, i)
                    finally:
                        st._end_write()
                    return 0
                if self.elem_size == 8 and type(key) is bytes:  # remembered for the next update of this key
                    k, j = divmod(i, st.chunk_slots)
                    if not (j * st.slot_size + off) & 7:
                        self._hot[key] = (k, (j * st.slot_size + off) >> 3)
            st.store_held(i, off, data)  # in place (or already at the head): only the value changes
            return 0
        if not st.shared:
            i = self.index.get(key)
            if i is None:
                return -self._update_locked(key, value, 0, cpu)
            st.write(i, off, data)
            if not percpu and self.order.buckets[self.order.bucket_of[key]][0] != key:
                self._to_head(key, i)
            return 0
        st._lock()
        try:
            if st.hq[GENERATION] != self._gen:
                self._sync()
            i = self.index.get(key)
            if i is None:
                return -self._update_locked(key, value, 0, cpu)
            if percpu or self.order.buckets[self.order.bucket_of[key]][0] == key:
                st.store_held(i, off, data)  # in place (or already at the head): only the value changes
                return 0
            st._begin_write()  # the new value and the move to the bucket's head: one seqlock write section
            try:
                st.write(i, off, data)
                self._to_head(key, i)
            finally:
                st._end_write()
        finally:
            st._unlock()
        return 0

    def prog_delete(self, key: bytes) -> int:
        if type(key) is not bytes or len(key) != self.key_size:
            key = self._key(key)
        st = self.storage
        if not st.shared:
            if key not in self.index:
                return -ENOENT
            self._remove(key)
            return 0
        st._lock()
        try:
            if st.hq[GENERATION] != self._gen:
                self._sync()
            if key not in self.index:
                return -ENOENT
            self._remove(key)
        finally:
            st._unlock()
        return 0

    def for_each(self, cpu: int = 0) -> Iterator[tuple[int, int]]:
        """``bpf_for_each_hash_elem``: elements deleted meanwhile are skipped."""
        self._sync()
        for key in self.order.keys():
            i = self.index.get(key)
            if i is not None:
                yield self.storage.slot_addr(i, self.key_off), self._value_addr(i, cpu)

    # -- syscall side -------------------------------------------------------------------------------
    def _read_value(self, i: int) -> bytes:
        if self.percpu:
            return self.storage.read(i, self.value_off, self.elem_size * self.ncpus)
        return self.mask_special(self.storage.read(i, self.value_off, self.value_size))

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        """``htab_map_lookup_elem`` (``_sys_only`` for LRU: no reference bit from user space)."""
        key = self._key(key or b"")
        st = self.storage
        stale = object()

        def read() -> object:
            if st.generation != self._gen:
                return stale  # another process changed the keys: re-index first
            i = self.index.get(key)
            return None if i is None else self._read_value(i)

        while True:
            self._sync()
            out = st.read_consistent(read)
            if out is not stale:
                break
        if out is None:
            raise fail(ENOENT, "no such key")
        assert isinstance(out, bytes)
        return out

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        err = self._update(bytes(key or b""), value, flags, None)
        if err:
            raise fail(err, "hash update")

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        err = self.prog_delete(bytes(key or b""))
        if err:
            raise fail(-err, "no such key")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        """``htab_map_get_next_key``: a missing or NULL key gives the first key; ENOENT after the last."""
        self._sync()
        return self.order.next_key(self._key(key) if key is not None else None)

    def sys_lookup_and_delete(self, key: bytes | None, flags: int = 0) -> bytes:
        """``htab_map_lookup_and_delete_elem``."""
        self.check_sys_write()
        if flags & ~U.BPF_F_LOCK or (flags & U.BPF_F_LOCK and not self.has_spin_lock):
            raise fail(EINVAL, "lookup_and_delete flags")
        key = self._key(key or b"")
        with self.storage.transaction():
            self._sync()
            i = self.index.get(key)
            if i is None:
                raise fail(ENOENT, "no such key")
            out = self._read_value(i)
            self._remove(key)
        return out


def _capable(kernel: Any) -> bool:
    cap = getattr(kernel, "capable", None)
    return bool(cap("CAP_SYS_ADMIN")) if callable(cap) else True
