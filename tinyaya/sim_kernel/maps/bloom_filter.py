"""BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c).

Keyless. ``map_extra`` bits 0-3 give the number of hash functions (0 means
5). Push (update, ``bpf_map_push_elem``) sets the value's bits; peek
(lookup, ``bpf_map_peek_elem``) answers 0 if every bit is set (maybe
present) or ENOENT (surely absent). A lookup from user space passes the value
to test in the value buffer (``lookup_reads_value``).

The bitset has Linux's size (``max_entries * nr_hash_funcs * 7 / 5`` rounded
up to a power of two, at least 64 bits, 2^32 bits past 2^31) and the bits are
Linux's (``jhash`` with ``hash_seed + i``), so with BPF_F_ZERO_SEED a peek
answers exactly as Linux does, false positives included. The bitset is u64
words on the slot storage: chunks are allocated and charged as bits are
first set, and a pinned filter is shared with other processes.
"""
from __future__ import annotations

from typing import Any

from ..errors import E2BIG, EINVAL, ENOENT, ENOTSUPP, EOPNOTSUPP, fail
from .base import (
    BPF_F_ACCESS_MASK,
    KMALLOC_MAX_SIZE,
    MAP_STRUCT_SIZE,
    BpfMap,
    F,
    T,
    U,
    flags_access_ok,
    roundup_pow_of_two,
)
from .jhash import htab_map_hash, jhash2
from .storage import SlotStorage

__all__ = ["BloomFilterMap", "BLOOM_CREATE_FLAG_MASK"]

BLOOM_CREATE_FLAG_MASK = F.BPF_F_NUMA_NODE | F.BPF_F_ZERO_SEED | BPF_F_ACCESS_MASK


class BloomFilterMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_BLOOM_FILTER,)
    lookup_reads_value = True
    shareable = True

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """The attribute checks at the top of ``bloom_map_alloc``."""
        if (attr.key_size != 0 or attr.value_size == 0 or attr.max_entries == 0
                or attr.map_flags & ~BLOOM_CREATE_FLAG_MASK or not flags_access_ok(attr.map_flags)
                or attr.map_extra & ~0xF):
            raise fail(EINVAL, "bloom filters need key_size 0, value_size > 0, max_entries > 0, map_extra <= 15")
        if attr.value_size > KMALLOC_MAX_SIZE:
            raise fail(E2BIG, f"value_size {attr.value_size} > {KMALLOC_MAX_SIZE}")

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        super().__init__(kernel, attr)
        self.nr_hash_funcs = (self.map_extra & 0xF) or 5
        # bloom_map_alloc: nr_bits = max_entries * nr_hash_funcs / ln(2), with 7 / 5 for 1 / ln(2)
        nr_bits = self.max_entries * self.nr_hash_funcs
        if nr_bits > 0xFFFFFFFF or (nr_bits // 5) * 7 > 0xFFFFFFFF or (nr_bits // 5) * 7 > 1 << 31:
            self.bitset_mask = 0xFFFFFFFF
        else:
            nr_bits = (nr_bits // 5) * 7
            self.bitset_mask = (64 if nr_bits <= 64 else roundup_pow_of_two(nr_bits)) - 1
        if self.map_flags & F.BPF_F_ZERO_SEED:
            self.hash_seed = 0
        else:  # Linux draws a random seed; here it is derived from the kernel's seed, for repeatable runs
            self.hash_seed = jhash2([int(getattr(kernel, "seed", 0)) & 0xFFFFFFFF, self.region.base >> 32], 0x5EED)
        try:
            self.charge(MAP_STRUCT_SIZE)
            # the bitset: u64 words in lazily allocated (and charged) chunks, shareable through a pin
            self.storage = SlotStorage(self, 8, (self.bitset_mask + 1) // 64, writable=False)
            self.storage.hdr.hashrnd = self.hash_seed
        except BaseException:
            self.release()
            raise

    def free(self) -> None:
        if hasattr(self, "storage"):
            self.storage.close()

    def _word(self, i: int) -> int:
        return int.from_bytes(self.storage.read(i, 0, 8), "little")

    def _hashes(self, value: bytes) -> list[int]:
        """``hash(bloom, value, value_size, i)`` for each hash function."""
        return [htab_map_hash(value, self.hash_seed + i) & self.bitset_mask for i in range(self.nr_hash_funcs)]

    def prog_push(self, value: bytes, flags: int) -> int:
        if flags != U.BPF_ANY:
            return -EINVAL
        bits = self._hashes(bytes(value[:self.value_size]).ljust(self.value_size, b"\0"))
        st = self.storage
        try:
            with st.transaction():
                for b in bits:
                    w = self._word(b >> 6)
                    if not w >> (b & 63) & 1:
                        st.write(b >> 6, 0, (w | 1 << (b & 63)).to_bytes(8, "little"))
        except OSError as e:  # ENOMEM: a chunk of the bitset over the memory limit
            return -(e.errno or 12)
        return 0

    def prog_peek(self, cpu: int = 0, value: bytes | None = None) -> bytes | int:
        """``bloom_map_peek_elem``: 0 (as the bytes of the value) if maybe present, ENOENT if not."""
        v = bytes((value or b"")[:self.value_size]).ljust(self.value_size, b"\0")
        bits = self._hashes(v)
        if self.storage.read_consistent(lambda: all(self._word(b >> 6) >> (b & 63) & 1 for b in bits)):
            return v
        return -ENOENT

    def prog_pop(self, cpu: int = 0) -> bytes | int:
        return -EOPNOTSUPP

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        return -EINVAL

    def prog_delete(self, key: bytes) -> int:
        return -EOPNOTSUPP

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        out = self.prog_peek(0, value)
        if isinstance(out, int):
            raise fail(-out, "not in the bloom filter")
        return out

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        err = self.prog_push(value, flags)
        if err:
            raise fail(-err, "bloom push")

    def sys_delete(self, key: bytes | None) -> None:
        raise fail(EOPNOTSUPP, "bloom filters cannot delete")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        raise fail(EOPNOTSUPP, "bloom filters have no keys")

    def sys_lookup_and_delete(self, key: bytes | None, flags: int = 0) -> bytes:
        raise fail(ENOTSUPP, "bloom filters cannot pop")
