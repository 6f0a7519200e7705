"""BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c).

Keyless. ``map_extra`` bits 0-3 give the number of hash functions (0 means
5). Push (update, ``bpf_map_push_elem``) sets the value's bits; peek
(lookup, ``bpf_map_peek_elem``) answers 0 if every bit is set (maybe
present) or ENOENT (surely absent). A lookup from user space passes the value
to test in the value buffer (``lookup_reads_value``).

The bitset has Linux's size (``max_entries * nr_hash_funcs * 7 / 5`` rounded
up to a power of two, at least 64 bits, 2^32 bits past 2^31) and the bits are
Linux's (``jhash`` with ``hash_seed + i``), so with BPF_F_ZERO_SEED a peek
answers exactly as Linux does, false positives included. Only the bits set
are stored, and memory is charged per 4 KiB page of the bitset as it is
first touched.
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

__all__ = ["BloomFilterMap", "BLOOM_CREATE_FLAG_MASK"]

BLOOM_CREATE_FLAG_MASK = F.BPF_F_NUMA_NODE | F.BPF_F_ZERO_SEED | BPF_F_ACCESS_MASK
_PAGE_BITS = 4096 * 8


class BloomFilterMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_BLOOM_FILTER,)
    lookup_reads_value = True

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
        self.bits: set[int] = set()
        self._pages: set[int] = set()
        try:
            self.charge(MAP_STRUCT_SIZE)
        except BaseException:
            self.release()
            raise

    def _hashes(self, value: bytes) -> list[int]:
        """``hash(bloom, value, value_size, i)`` for each hash function."""
        return [htab_map_hash(value, self.hash_seed + i) & self.bitset_mask for i in range(self.nr_hash_funcs)]

    def prog_push(self, value: bytes, flags: int) -> int:
        if flags != U.BPF_ANY:
            return -EINVAL
        bits = self._hashes(bytes(value[:self.value_size]))
        pages = {b // _PAGE_BITS for b in bits} - self._pages
        if pages:
            try:
                self.charge(4096 * len(pages))
            except OSError as e:
                return -(e.errno or 12)
            self._pages |= pages
        self.bits.update(bits)
        return 0

    def prog_peek(self, cpu: int = 0, value: bytes | None = None) -> bytes | int:
        """``bloom_map_peek_elem``: 0 (as the bytes of the value) if maybe present, ENOENT if not."""
        v = bytes((value or b"")[:self.value_size]).ljust(self.value_size, b"\0")
        if all(b in self.bits for b in self._hashes(v)):
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
