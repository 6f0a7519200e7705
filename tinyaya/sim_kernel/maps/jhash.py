"""Bob Jenkins' lookup3 hash as the kernel spells it (include/linux/jhash.h): ``jhash`` and ``jhash2``.

Hash maps pick a bucket with ``htab_map_hash`` (``jhash2`` over u32 words when
the key size is a multiple of 4, else ``jhash``) and bloom filters hash a
value once per hash function with ``seed + i``. With BPF_F_ZERO_SEED the
seed is 0, so bucket order (what GET_NEXT_KEY walks) and bloom filter bits
are the same as Linux's, false positives included.
"""
from __future__ import annotations

__all__ = ["jhash", "jhash2", "htab_map_hash", "JHASH_INITVAL"]

JHASH_INITVAL = 0xDEADBEEF
_M = 0xFFFFFFFF


def _rol32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """``__jhash_mix``."""
    a = (a - c) & _M; a ^= _rol32(c, 4); c = (c + b) & _M  # noqa: E702
    b = (b - a) & _M; b ^= _rol32(a, 6); a = (a + c) & _M  # noqa: E702
    c = (c - b) & _M; c ^= _rol32(b, 8); b = (b + a) & _M  # noqa: E702
    a = (a - c) & _M; a ^= _rol32(c, 16); c = (c + b) & _M  # noqa: E702
    b = (b - a) & _M; b ^= _rol32(a, 19); a = (a + c) & _M  # noqa: E702
    c = (c - b) & _M; c ^= _rol32(b, 4); b = (b + a) & _M  # noqa: E702
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    """``__jhash_final``; only ``c`` is the result."""
    c ^= b; c = (c - _rol32(b, 14)) & _M  # noqa: E702
    a ^= c; a = (a - _rol32(c, 11)) & _M  # noqa: E702
    b ^= a; b = (b - _rol32(a, 25)) & _M  # noqa: E702
    c ^= b; c = (c - _rol32(b, 16)) & _M  # noqa: E702
    a ^= c; a = (a - _rol32(c, 4)) & _M  # noqa: E702
    b ^= a; b = (b - _rol32(a, 14)) & _M  # noqa: E702
    c ^= b; c = (c - _rol32(b, 24)) & _M  # noqa: E702
    return c


def jhash(key: bytes, initval: int) -> int:
    """``jhash(key, length, initval)``: bytes, 12 at a time, the tail little-endian."""
    n = len(key)
    a = b = c = (JHASH_INITVAL + n + initval) & _M
    i = 0
    while n > 12:
        a = (a + int.from_bytes(key[i:i + 4], "little")) & _M
        b = (b + int.from_bytes(key[i + 4:i + 8], "little")) & _M
        c = (c + int.from_bytes(key[i + 8:i + 12], "little")) & _M
        a, b, c = _mix(a, b, c)
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = bytes(key[i:i + n]) + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    return _final(a, b, c)


def jhash2(words: list[int], initval: int) -> int:
    """``jhash2(k, length, initval)``: u32 words, 3 at a time."""
    n = len(words)
    a = b = c = (JHASH_INITVAL + (n << 2) + initval) & _M
    i = 0
    while n > 3:
        a = (a + words[i]) & _M
        b = (b + words[i + 1]) & _M
        c = (c + words[i + 2]) & _M
        a, b, c = _mix(a, b, c)
        n -= 3
        i += 3
    if n == 0:
        return c
    if n == 3:
        c = (c + words[i + 2]) & _M
    if n >= 2:
        b = (b + words[i + 1]) & _M
    a = (a + words[i]) & _M
    return _final(a, b, c)


def htab_map_hash(key: bytes, hashrnd: int) -> int:
    """``htab_map_hash`` (kernel/bpf/hashtab.c), also the bloom filter's ``hash``."""
    n = len(key)
    if n % 4 == 0:
        return jhash2([int.from_bytes(key[i:i + 4], "little") for i in range(0, n, 4)], hashrnd & _M)
    return jhash(key, hashrnd & _M)
