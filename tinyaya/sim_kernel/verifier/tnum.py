"""Tristate numbers (kernel/bpf/tnum.c): a value whose bits are each 0, 1 or unknown.

A tnum is ``(value, mask)``: bits set in ``mask`` are unknown, the others equal ``value``'s bits.
All arithmetic is on 64-bit unsigned integers. Tuples keep copies cheap when states fork.
"""
from __future__ import annotations

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1

Tnum = tuple[int, int]

UNKNOWN: Tnum = (0, U64)


def const(v: int) -> Tnum:
    return (v & U64, 0)


def is_const(t: Tnum) -> bool:
    return t[1] == 0


def tnum_range(lo: int, hi: int) -> Tnum:
    """tnum_range(): the tnum covering the unsigned range [lo, hi]."""
    chi = lo ^ hi
    bits = chi.bit_length()
    if bits > 63:
        return UNKNOWN
    delta = (1 << bits) - 1
    return (lo & ~delta & U64, delta)


def lshift(a: Tnum, s: int) -> Tnum:
    return ((a[0] << s) & U64, (a[1] << s) & U64)


def rshift(a: Tnum, s: int) -> Tnum:
    return (a[0] >> s, a[1] >> s)


def arshift(a: Tnum, s: int, bits: int) -> Tnum:
    """tnum_arshift(): arithmetic shift of the low ``bits`` (32 or 64) bits, result zero-extended."""
    m = (1 << bits) - 1

    def sar(x: int) -> int:
        x &= m
        if x >> (bits - 1):
            x -= 1 << bits
        return (x >> s) & m

    return (sar(a[0]), sar(a[1]))


def add(a: Tnum, b: Tnum) -> Tnum:
    sm = (a[1] + b[1]) & U64
    sv = (a[0] + b[0]) & U64
    sigma = (sm + sv) & U64
    chi = sigma ^ sv
    mu = chi | a[1] | b[1]
    return (sv & ~mu & U64, mu)


def sub(a: Tnum, b: Tnum) -> Tnum:
    dv = (a[0] - b[0]) & U64
    alpha = (dv + a[1]) & U64
    beta = (dv - b[1]) & U64
    chi = alpha ^ beta
    mu = chi | a[1] | b[1]
    return (dv & ~mu & U64, mu)


def neg(a: Tnum) -> Tnum:
    return sub(const(0), a)


def and_(a: Tnum, b: Tnum) -> Tnum:
    alpha = a[0] | a[1]
    beta = b[0] | b[1]
    v = a[0] & b[0]
    return (v, alpha & beta & ~v & U64)


def or_(a: Tnum, b: Tnum) -> Tnum:
    v = a[0] | b[0]
    mu = a[1] | b[1]
    return (v, mu & ~v & U64)


def xor(a: Tnum, b: Tnum) -> Tnum:
    v = a[0] ^ b[0]
    mu = a[1] | b[1]
    return (v & ~mu & U64, mu)


def mul(a: Tnum, b: Tnum) -> Tnum:
    """tnum_mul() (the "half-multiply" algorithm of Harishankar et al.)."""
    acc_v = (a[0] * b[0]) & U64
    acc_m: Tnum = (0, 0)
    av, am = a
    while av or am:
        if av & 1:
            acc_m = add(acc_m, (0, b[1]))
        elif am & 1:
            acc_m = add(acc_m, (0, b[0] | b[1]))
        av >>= 1
        am >>= 1
        b = lshift(b, 1)
    return add((acc_v, 0), acc_m)


def intersect(a: Tnum, b: Tnum) -> Tnum:
    v = a[0] | b[0]
    mu = a[1] & b[1]
    return (v & ~mu & U64, mu)


def cast(a: Tnum, size: int) -> Tnum:
    """tnum_cast(): keep the low ``size`` bytes."""
    m = (1 << (size * 8)) - 1
    return (a[0] & m, a[1] & m)


def subreg(a: Tnum) -> Tnum:
    return cast(a, 4)


def clear_subreg(a: Tnum) -> Tnum:
    return lshift(rshift(a, 32), 32)


def with_subreg(a: Tnum, sub: Tnum) -> Tnum:
    return or_(clear_subreg(a), subreg(sub))


def is_aligned(a: Tnum, size: int) -> bool:
    if not size:
        return True
    return ((a[0] | a[1]) & (size - 1)) == 0


def contains(a: Tnum, b: Tnum) -> bool:
    """tnum_in(a, b): every value of ``b`` is a value of ``a``."""
    if b[1] & ~a[1]:
        return False
    return a[0] == (b[0] & ~a[1])


def umin(a: Tnum) -> int:
    return a[0]


def umax(a: Tnum) -> int:
    return a[0] | a[1]


def smin(a: Tnum) -> int:
    """The smallest signed value: the sign bit set if it is unknown."""
    v = a[0] | (a[1] & (1 << 63))
    return v - (1 << 64) if v >> 63 else v


def smax(a: Tnum) -> int:
    v = a[0] | (a[1] & ~(1 << 63) & U64)
    return v - (1 << 64) if v >> 63 else v


def tnum_str(a: Tnum) -> str:
    return f"({a[0]:#x}; {a[1]:#x})"
