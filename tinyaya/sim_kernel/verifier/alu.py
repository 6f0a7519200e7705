"""Scalar arithmetic on abstract values: adjust_scalar_min_max_vals() and the scalar{,32}_min_max_* helpers.

Each operation updates the tnum and the signed/unsigned ranges of the destination, in 32 and 64 bits,
conservatively: when the kernel cannot prove a range (an overflow is possible, a shift amount is not a
known constant below the width) the result is unbounded, exactly like ``__mark_reg_unbounded()``.
"""
from __future__ import annotations

from tinyaya.isa import opcodes as op

from . import tnum as tn
from .regs import (
    S32_MAX,
    S32_MIN,
    S64_MAX,
    S64_MIN,
    Reg,
    mark_known,
    mark_unknown,
    reg_bounds_sync,
    s32,
    s64,
    zext_32_to_64,
)
from .tnum import U32, U64


def _bounds(w: int) -> tuple[int, int, int]:
    return (S64_MIN, S64_MAX, U64) if w == 64 else (S32_MIN, S32_MAX, U32)


def _range_op(opc: int, w: int, a: tuple[int, int, int, int], b: tuple[int, int, int, int],
              shift: int | None) -> tuple[int, int, int, int]:
    """New (smin, smax, umin, umax) of ``a op b`` in ``w`` bits; the tnum is handled separately."""
    smn, smx, umx = _bounds(w)
    asmin, asmax, aumin, aumax = a
    bsmin, bsmax, bumin, bumax = b
    unb = (smn, smx, 0, umx)
    if opc == op.BPF_ADD:
        lo, hi = asmin + bsmin, asmax + bsmax
        s = (lo, hi) if smn <= lo and hi <= smx else (smn, smx)
        ulo, uhi = aumin + bumin, aumax + bumax
        if uhi <= umx:
            u = (ulo, uhi)
        elif ulo > umx:  # both ends wrap once
            u = (ulo - umx - 1, uhi - umx - 1)
        else:
            u = (0, umx)
        return (s[0], s[1], u[0], u[1])
    if opc == op.BPF_SUB:
        lo, hi = asmin - bsmax, asmax - bsmin
        s = (lo, hi) if smn <= lo and hi <= smx else (smn, smx)
        u = (aumin - bumax, aumax - bumin) if aumin >= bumax else (0, umx)
        return (s[0], s[1], u[0], u[1])
    if opc == op.BPF_MUL:
        u = (aumin * bumin, aumax * bumax) if aumax * bumax <= umx else (0, umx)
        prods = [asmin * bsmin, asmin * bsmax, asmax * bsmin, asmax * bsmax]
        s = (min(prods), max(prods)) if smn <= min(prods) and max(prods) <= smx else (smn, smx)
        return (s[0], s[1], u[0], u[1])
    if opc == op.BPF_AND:
        u = (0, min(aumax, bumax))
        s = (0, u[1]) if asmin >= 0 and bsmin >= 0 else (smn, smx)
        return (s[0], s[1], u[0], u[1])
    if opc == op.BPF_OR:
        u = (max(aumin, bumin), umx)
        s = (u[0], smx) if asmin >= 0 and bsmin >= 0 else (smn, smx)
        return (s[0], s[1], u[0], u[1])
    if opc == op.BPF_XOR:
        s = (0, smx) if asmin >= 0 and bsmin >= 0 else (smn, smx)
        return (s[0], s[1], 0, umx)
    if opc == op.BPF_LSH and shift is not None:
        if aumax << shift <= umx:
            return (smn, smx, aumin << shift, aumax << shift)
        return unb
    if opc == op.BPF_RSH and shift is not None:
        return (smn, smx, aumin >> shift, aumax >> shift)
    if opc == op.BPF_ARSH and shift is not None:
        return (asmin >> shift, asmax >> shift, 0, umx)
    return unb


def _tnum_op(opc: int, a: tn.Tnum, b: tn.Tnum, shift: int | None, w: int) -> tn.Tnum:
    if opc == op.BPF_ADD:
        return tn.add(a, b)
    if opc == op.BPF_SUB:
        return tn.sub(a, b)
    if opc == op.BPF_MUL:
        return tn.mul(a, b)
    if opc == op.BPF_AND:
        return tn.and_(a, b)
    if opc == op.BPF_OR:
        return tn.or_(a, b)
    if opc == op.BPF_XOR:
        return tn.xor(a, b)
    if opc == op.BPF_LSH and shift is not None:
        return tn.lshift(a, shift)
    if opc == op.BPF_RSH and shift is not None:
        return tn.rshift(a, shift)
    if opc == op.BPF_ARSH and shift is not None:
        return tn.arshift(a, shift, w)
    return tn.UNKNOWN


def _concrete(opc: int, a: int, b: int, w: int, signed: bool) -> int:
    """The exact result of a 64/32-bit ALU op on constants (RFC 9669 section 4.1 semantics)."""
    m = (1 << w) - 1
    a &= m
    b &= m

    def sg(x: int) -> int:
        return x - (1 << w) if x >> (w - 1) else x

    if opc == op.BPF_ADD:
        return (a + b) & m
    if opc == op.BPF_SUB:
        return (a - b) & m
    if opc == op.BPF_MUL:
        return (a * b) & m
    if opc == op.BPF_DIV:
        if b == 0:
            return 0
        if signed:
            q = abs(sg(a)) // abs(sg(b))
            return (q if (sg(a) < 0) == (sg(b) < 0) else -q) & m
        return a // b
    if opc == op.BPF_MOD:
        if b == 0:
            return a
        if signed:
            r = abs(sg(a)) % abs(sg(b))
            return (-r if sg(a) < 0 else r) & m
        return a % b
    if opc == op.BPF_OR:
        return a | b
    if opc == op.BPF_AND:
        return a & b
    if opc == op.BPF_XOR:
        return a ^ b
    if opc == op.BPF_LSH:
        return (a << (b & (w - 1))) & m
    if opc == op.BPF_RSH:
        return a >> (b & (w - 1))
    if opc == op.BPF_ARSH:
        return (sg(a) >> (b & (w - 1))) & m
    raise ValueError(opc)


def scalar_alu(dst: Reg, src: Reg, opc: int, alu32: bool, signed_divmod: bool = False) -> None:
    """adjust_scalar_min_max_vals(): ``dst = dst op src`` on two scalars."""
    w = 32 if alu32 else 64
    both_const = (dst.is_const32() and src.is_const32()) if alu32 else (dst.is_const() and src.is_const())
    if both_const and opc not in (op.BPF_DIV, op.BPF_MOD):
        a = dst.var_off[0]
        b = src.var_off[0]
        v = _concrete(opc, a, b, w, signed_divmod)
        mark_known(dst, v)
        return
    dst.id = 0
    src_const = src.is_const32() if alu32 else src.is_const()
    shift: int | None = None
    if opc in (op.BPF_LSH, op.BPF_RSH, op.BPF_ARSH):
        if not src_const or (src.var_off[0] & (U32 if alu32 else U64)) >= w:
            mark_unknown(dst)
            if alu32:
                zext_32_to_64(dst)
                reg_bounds_sync(dst)
            return
        shift = src.var_off[0] & (U32 if alu32 else U64)
    elif opc not in (op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_AND, op.BPF_OR, op.BPF_XOR):
        mark_unknown(dst)
        if alu32:
            zext_32_to_64(dst)
            reg_bounds_sync(dst)
        return
    a32 = (dst.s32_min, dst.s32_max, dst.u32_min, dst.u32_max)
    b32 = (src.s32_min, src.s32_max, src.u32_min, src.u32_max)
    s32r = _range_op(opc, 32, a32, b32, shift if alu32 else None)
    if not alu32 and opc in (op.BPF_RSH, op.BPF_ARSH, op.BPF_LSH):
        s32r = (S32_MIN, S32_MAX, 0, U32)
    if alu32:
        var32 = _tnum_op(opc, tn.subreg(dst.var_off), tn.subreg(src.var_off), shift, 32)
        dst.var_off = tn.subreg(var32)
        dst.s32_min, dst.s32_max, dst.u32_min, dst.u32_max = s32r
        zext_32_to_64(dst)
        reg_bounds_sync(dst)
        return
    a64 = (dst.smin, dst.smax, dst.umin, dst.umax)
    b64 = (src.smin, src.smax, src.umin, src.umax)
    s64r = _range_op(opc, 64, a64, b64, shift)
    dst.var_off = _tnum_op(opc, dst.var_off, src.var_off, shift, 64)
    dst.smin, dst.smax, dst.umin, dst.umax = s64r
    dst.s32_min, dst.s32_max, dst.u32_min, dst.u32_max = s32r
    reg_bounds_sync(dst)


def scalar_neg(dst: Reg, alu32: bool) -> None:
    if dst.is_const() or (alu32 and dst.is_const32()):
        w = 32 if alu32 else 64
        mark_known(dst, (-dst.var_off[0]) & ((1 << w) - 1))
        return
    var = tn.neg(dst.var_off)
    mark_unknown(dst)
    if alu32:
        dst.var_off = tn.subreg(var)
        zext_32_to_64(dst)
    else:
        dst.var_off = var
    reg_bounds_sync(dst)


def scalar_end(dst: Reg, to_be: bool, bits: int, alu64: bool) -> None:
    """BPF_END: byte swaps. A constant is swapped exactly; ``le`` on a little-endian host only truncates."""
    m = (1 << bits) - 1
    if dst.is_const():
        v = dst.var_off[0] & m
        if to_be or alu64:
            v = int.from_bytes(v.to_bytes(bits // 8, "little"), "big")
        mark_known(dst, v)
        return
    if not to_be and not alu64:
        if bits == 64:
            return
        dst.id = 0
        dst.var_off = tn.cast(dst.var_off, bits // 8)
        lo, hi = (dst.umin, dst.umax) if dst.umax <= m else (0, m)
        mark_unknown_keep = dst.var_off
        mark_unknown(dst)
        dst.var_off = mark_unknown_keep
        dst.umin, dst.umax = lo, hi
        reg_bounds_sync(dst)
        return
    mark_unknown(dst)
    if bits < 64:
        dst.var_off = (0, m)
        reg_bounds_sync(dst)


__all__ = ["scalar_alu", "scalar_neg", "scalar_end", "s32", "s64"]
