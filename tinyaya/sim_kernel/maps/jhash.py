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


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """``__jhash_mix`` (rotations inlined: this runs on every hash map insert)."""
    a = ((a - c) & _M) ^ (((c << 4) | (c >> 28)) & _M)
    c = (c + b) & _M
    b = ((b - a) & _M) ^ (((a << 6) | (a >> 26)) & _M)
    a = (a + c) & _M
    c = ((c - b) & _M) ^ (((b << 8) | (b >> 24)) & _M)
    b = (b + a) & _M
    a = ((a - c) & _M) ^ (((c << 16) | (c >> 16)) & _M)
    c = (c + b) & _M
    b = ((b - a) & _M) ^ (((a << 19) | (a >> 13)) & _M)
    a = (a + c) & _M
    c = ((c - b) & _M) ^ (((b << 4) | (b >> 28)) & _M)
    b = (b + a) & _M
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    """``__jhash_final``; only ``c`` is the result."""
    c = ((c ^ b) - (((b << 14) | (b >> 18)) & _M)) & _M
    a = ((a ^ c) - (((c << 11) | (c >> 21)) & _M)) & _M
    b = ((b ^ a) - (((a << 25) | (a >> 7)) & _M)) & _M
    c = ((c ^ b) - (((b << 16) | (b >> 16)) & _M)) & _M
    a = ((a ^ c) - (((c << 4) | (c >> 28)) & _M)) & _M
    b = ((b ^ a) - (((a << 14) | (a >> 18)) & _M)) & _M
    c = ((c ^ b) - (((b << 24) | (b >> 8)) & _M)) & _M
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
    if n == 4:  # the common case: one u32 word
        a = (JHASH_INITVAL + 4 + hashrnd + int.from_bytes(key, "little")) & _M
        b = c = (JHASH_INITVAL + 4 + hashrnd) & _M
        return _final(a, b, c)
    if n % 4 == 0:
        return jhash2([int.from_bytes(key[i:i + 4], "little") for i in range(0, n, 4)], hashrnd & _M)
    return jhash(key, hashrnd & _M)
