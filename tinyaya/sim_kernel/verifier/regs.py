"""Register state (``struct bpf_reg_state``) and the bounds bookkeeping of kernel/bpf/verifier.c.

A register has a type (``enum bpf_reg_type``), a fixed offset for pointers, and for scalars (and the
variable part of pointers) a tnum plus signed/unsigned 64- and 32-bit bounds. ``reg_bounds_sync``
is the kernel's function of that name: it lets the tnum and the four ranges tighten each other.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any

from . import tnum as tn
from .tnum import U32, U64, Tnum

S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1


def s64(v: int) -> int:
    v &= U64
    return v - (1 << 64) if v >> 63 else v


def s32(v: int) -> int:
    v &= U32
    return v - (1 << 32) if v >> 31 else v


class RegType(IntEnum):
    """enum bpf_reg_type (the subset the simulated kernel's programs can meet)."""

    NOT_INIT = 0
    SCALAR_VALUE = 1
    PTR_TO_CTX = 2
    CONST_PTR_TO_MAP = 3
    PTR_TO_MAP_VALUE = 4
    PTR_TO_MAP_KEY = 5
    PTR_TO_STACK = 6
    PTR_TO_PACKET_META = 7
    PTR_TO_PACKET = 8
    PTR_TO_PACKET_END = 9
    PTR_TO_MEM = 10
    PTR_TO_BTF_ID = 11
    PTR_TO_FUNC = 12
    PTR_TO_FLOW_KEYS = 13
    PTR_TO_SOCKET = 14
    PTR_TO_SOCK_COMMON = 15


T = RegType

#: reg_type_str() spellings (kernel/bpf/log.c)
TYPE_STR = {
    T.NOT_INIT: "?", T.SCALAR_VALUE: "scalar", T.PTR_TO_CTX: "ctx", T.CONST_PTR_TO_MAP: "map_ptr",
    T.PTR_TO_MAP_VALUE: "map_value", T.PTR_TO_MAP_KEY: "map_key", T.PTR_TO_STACK: "fp",
    T.PTR_TO_PACKET_META: "pkt_meta", T.PTR_TO_PACKET: "pkt", T.PTR_TO_PACKET_END: "pkt_end",
    T.PTR_TO_MEM: "mem", T.PTR_TO_BTF_ID: "ptr_", T.PTR_TO_FUNC: "func", T.PTR_TO_FLOW_KEYS: "flow_keys",
    T.PTR_TO_SOCKET: "sock", T.PTR_TO_SOCK_COMMON: "sock_common",
}

#: type flags (enum bpf_type_flag)
PTR_MAYBE_NULL = 1 << 8
MEM_RDONLY = 1 << 9
MEM_RINGBUF = 1 << 10
MEM_ALLOC = 1 << 11


class Reg:
    """One register's abstract value. Mutable; ``copy()`` when a state forks."""

    __slots__ = ("type", "flags", "off", "var_off", "smin", "smax", "umin", "umax",
                 "s32_min", "s32_max", "u32_min", "u32_max", "id", "ref_obj_id", "map", "mem_size",
                 "range", "frameno", "subprog", "precise")

    def __init__(self) -> None:
        self.type = T.NOT_INIT
        self.flags = 0
        self.off = 0
        self.var_off: Tnum = tn.UNKNOWN
        self.smin, self.smax, self.umin, self.umax = S64_MIN, S64_MAX, 0, U64
        self.s32_min, self.s32_max, self.u32_min, self.u32_max = S32_MIN, S32_MAX, 0, U32
        self.id = 0
        self.ref_obj_id = 0
        self.map: Any = None
        self.mem_size = 0
        self.range = 0
        self.frameno = 0
        self.subprog = 0
        #: the exact range of this scalar decided something (backtrack.py)
        self.precise = False

    def copy(self) -> Reg:
        r = Reg.__new__(Reg)
        r.type, r.flags, r.off, r.var_off = self.type, self.flags, self.off, self.var_off
        r.smin, r.smax, r.umin, r.umax = self.smin, self.smax, self.umin, self.umax
        r.s32_min, r.s32_max, r.u32_min, r.u32_max = self.s32_min, self.s32_max, self.u32_min, self.u32_max
        r.id, r.ref_obj_id, r.map, r.mem_size = self.id, self.ref_obj_id, self.map, self.mem_size
        r.range, r.frameno, r.subprog, r.precise = self.range, self.frameno, self.subprog, self.precise
        return r

    def assign(self, o: Reg) -> None:
        self.type, self.flags, self.off, self.var_off = o.type, o.flags, o.off, o.var_off
        self.smin, self.smax, self.umin, self.umax = o.smin, o.smax, o.umin, o.umax
        self.s32_min, self.s32_max, self.u32_min, self.u32_max = o.s32_min, o.s32_max, o.u32_min, o.u32_max
        self.id, self.ref_obj_id, self.map, self.mem_size = o.id, o.ref_obj_id, o.map, o.mem_size
        self.range, self.frameno, self.subprog, self.precise = o.range, o.frameno, o.subprog, o.precise

    # -- predicates -------------------------------------------------------------------------------
    @property
    def is_scalar(self) -> bool:
        return self.type == T.SCALAR_VALUE

    @property
    def is_pointer(self) -> bool:
        return self.type not in (T.NOT_INIT, T.SCALAR_VALUE)

    @property
    def maybe_null(self) -> bool:
        return bool(self.flags & PTR_MAYBE_NULL)

    def is_const(self) -> bool:
        return self.type == T.SCALAR_VALUE and self.var_off[1] == 0

    def const_value(self) -> int:
        return self.var_off[0]

    def is_const32(self) -> bool:
        return self.type == T.SCALAR_VALUE and (self.var_off[1] & U32) == 0

    def is_null(self) -> bool:
        return self.type == T.SCALAR_VALUE and self.var_off == (0, 0)

    def type_str(self) -> str:
        s = TYPE_STR[self.type]
        if self.type == T.PTR_TO_MEM and self.flags & MEM_RINGBUF:
            s = "ringbuf_mem"
        if self.flags & MEM_RDONLY:
            s = "rdonly_" + s
        if self.flags & PTR_MAYBE_NULL:
            s += "_or_null"
        return s


# -- marking ---------------------------------------------------------------------------------------
def mark_unknown(r: Reg) -> None:
    """__mark_reg_unknown(): a scalar that may be anything."""
    r.__init__()  # type: ignore[misc]
    r.type = T.SCALAR_VALUE


def mark_known(r: Reg, v: int) -> None:
    """__mark_reg_known(): a scalar constant (64-bit)."""
    r.type = T.SCALAR_VALUE
    r.flags = r.off = r.id = r.ref_obj_id = r.mem_size = r.range = r.frameno = r.subprog = 0
    r.map = None
    r.precise = False
    v &= U64
    r.var_off = (v, 0)
    r.smin = r.smax = s64(v)
    r.umin = r.umax = v
    r.s32_min = r.s32_max = s32(v)
    r.u32_min = r.u32_max = v & U32


def mark_not_init(r: Reg) -> None:
    r.__init__()  # type: ignore[misc]


def mark_unbounded(r: Reg) -> None:
    """__mark_reg_unbounded(): forget all bounds (keep the tnum)."""
    r.smin, r.smax, r.umin, r.umax = S64_MIN, S64_MAX, 0, U64
    r.s32_min, r.s32_max, r.u32_min, r.u32_max = S32_MIN, S32_MAX, 0, U32


def mark_const_zero_ptr(r: Reg, typ: RegType) -> None:
    """A pointer with a known zero variable offset (mark_reg_known_zero)."""
    mark_known(r, 0)
    r.type = typ


def mark_32_unbounded(r: Reg) -> None:
    r.s32_min, r.s32_max, r.u32_min, r.u32_max = S32_MIN, S32_MAX, 0, U32


# -- bounds sync (kernel/bpf/verifier.c: __update_reg_bounds, __reg_deduce_bounds, __reg_bound_offset) ----
def update_reg32_bounds(r: Reg) -> None:
    v, m = r.var_off[0] & U32, r.var_off[1] & U32
    r.s32_min = max(r.s32_min, s32(v | (m & 0x80000000)))
    r.s32_max = min(r.s32_max, s32(v | (m & 0x7FFFFFFF)))
    r.u32_min = max(r.u32_min, v)
    r.u32_max = min(r.u32_max, v | m)


def update_reg64_bounds(r: Reg) -> None:
    v, m = r.var_off
    r.smin = max(r.smin, s64(v | (m & (1 << 63))))
    r.smax = min(r.smax, s64(v | (m & S64_MAX)))
    r.umin = max(r.umin, v)
    r.umax = min(r.umax, v | m)


def reg32_deduce_bounds(r: Reg) -> None:
    # 32-bit halves from the 64-bit ranges when the upper halves agree
    if (r.umin >> 32) == (r.umax >> 32):
        r.u32_min = max(r.u32_min, r.umin & U32)
        r.u32_max = min(r.u32_max, r.umax & U32)
        if s32(r.umin) <= s32(r.umax):
            r.s32_min = max(r.s32_min, s32(r.umin))
            r.s32_max = min(r.s32_max, s32(r.umax))
    if ((r.smin & U64) >> 32) == ((r.smax & U64) >> 32):
        if (r.smin & U32) <= (r.smax & U32):
            r.u32_min = max(r.u32_min, r.smin & U32)
            r.u32_max = min(r.u32_max, r.smax & U32)
        if s32(r.smin) <= s32(r.smax):
            r.s32_min = max(r.s32_min, s32(r.smin))
            r.s32_max = min(r.s32_max, s32(r.smax))
    # unsigned 32 <-> signed 32
    if s32(r.u32_min) <= s32(r.u32_max):
        r.s32_min = max(r.s32_min, s32(r.u32_min))
        r.s32_max = min(r.s32_max, s32(r.u32_max))
    if (r.s32_min & U32) <= (r.s32_max & U32):
        r.u32_min = max(r.u32_min, r.s32_min & U32)
        r.u32_max = min(r.u32_max, r.s32_max & U32)


def reg64_deduce_bounds(r: Reg) -> None:
    if s64(r.umin) <= s64(r.umax):
        r.smin = max(r.smin, s64(r.umin))
        r.smax = min(r.smax, s64(r.umax))
    if (r.smin & U64) <= (r.smax & U64):
        r.umin = max(r.umin, r.smin & U64)
        r.umax = min(r.umax, r.smax & U64)


def reg_deduce_mixed_bounds(r: Reg) -> None:
    """Tighten 64-bit bounds with the 32-bit ones when the upper halves are fixed."""
    hi_lo = r.umin & ~U32 & U64
    hi_hi = r.umax & ~U32 & U64
    if hi_lo == hi_hi:
        new_min = hi_lo | r.u32_min
        new_max = hi_hi | r.u32_max
        r.umin = max(r.umin, new_min)
        r.umax = min(r.umax, new_max)
    shi_lo = r.smin & ~U32 & U64
    shi_hi = r.smax & ~U32 & U64
    if shi_lo == shi_hi and r.s32_min >= 0 or (shi_lo == shi_hi and r.s32_max < 0):
        new_min = s64(shi_lo | (r.s32_min & U32))
        new_max = s64(shi_hi | (r.s32_max & U32))
        r.smin = max(r.smin, new_min)
        r.smax = min(r.smax, new_max)


def reg_bound_offset(r: Reg) -> None:
    var64 = tn.intersect(r.var_off, tn.tnum_range(r.umin, r.umax))
    var32 = tn.intersect(tn.subreg(r.var_off), tn.tnum_range(r.u32_min, r.u32_max))
    r.var_off = tn.or_(tn.clear_subreg(var64), var32)


def reg_bounds_sync(r: Reg) -> None:
    update_reg32_bounds(r)
    update_reg64_bounds(r)
    for _ in range(2):
        reg32_deduce_bounds(r)
        reg64_deduce_bounds(r)
        reg_deduce_mixed_bounds(r)
    reg_bound_offset(r)
    update_reg32_bounds(r)
    update_reg64_bounds(r)


def bounds_sane(r: Reg) -> bool:
    """reg_bounds_sanity_check(): a contradiction means the path is infeasible."""
    if r.type != T.SCALAR_VALUE:
        return True
    return (r.umin <= r.umax and r.smin <= r.smax and r.u32_min <= r.u32_max and r.s32_min <= r.s32_max
            and tn.contains(r.var_off, (r.var_off[0], r.var_off[1])))


def zext_32_to_64(r: Reg) -> None:
    """zext_32_to_64(): the result of a 32-bit op: upper half zero, 64-bit bounds from the 32-bit ones."""
    r.var_off = tn.subreg(r.var_off)
    r.umin, r.umax = r.u32_min, r.u32_max
    r.smin, r.smax = r.u32_min, r.u32_max


def reg_assign_32_into_64(r: Reg) -> None:
    """__reg_assign_32_into_64()."""
    r.umin, r.umax = r.u32_min, r.u32_max
    if r.s32_min >= 0:
        r.smin, r.smax = r.s32_min, r.s32_max
    else:
        r.smin, r.smax = 0, U32


def coerce_reg_to_size(r: Reg, size: int) -> None:
    """coerce_reg_to_size(): the register is truncated to its low ``size`` bytes."""
    r.var_off = tn.cast(r.var_off, size)
    mask = (1 << (size * 8)) - 1
    if (r.umin & ~mask) == (r.umax & ~mask):
        r.umin &= mask
        r.umax &= mask
    else:
        r.umin, r.umax = 0, mask
    r.smin, r.smax = r.umin, r.umax
    if size >= 4:
        return
    r.u32_min, r.u32_max = r.umin, r.umax
    r.s32_min, r.s32_max = r.umin, r.umax
    reg_bounds_sync(r)


def coerce_subreg_to_size_sx(r: Reg, size: int) -> None:
    """Sign-extend the low ``size`` bytes (movsx / ldsx): keep exact when const, else the type's range."""
    bits = size * 8
    if r.var_off[1] == 0:
        v = r.var_off[0] & ((1 << bits) - 1)
        if v >> (bits - 1):
            v -= 1 << bits
        mark_known(r, v)
        return
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    # a range of the low bits that does not cross the sign bit keeps its bounds
    if r.umax < (1 << (bits - 1)) and (r.umin >> bits) == (r.umax >> bits) == 0:
        lo, hi = r.umin, r.umax
    mark_unknown(r)
    r.smin, r.smax = lo, hi
    r.s32_min, r.s32_max = lo, hi
    if lo >= 0:
        r.umin, r.umax, r.u32_min, r.u32_max = lo, hi, lo, hi
    reg_bounds_sync(r)


# -- printing (print_verifier_state / print_reg_state / print_scalar_ranges in kernel/bpf/log.c) -----------
def snum(v: int) -> str:
    """verbose_snum(): small numbers in decimal, others in hex (kernel/bpf/log.c: is_snum_decimal)."""
    v = s64(v)
    return str(v) if -(1 << 15) <= v < (1 << 15) else f"{v & U64:#x}"


def unum(v: int) -> str:
    """verbose_unum(): small numbers in decimal, others in hex (is_unum_decimal)."""
    return str(v) if v < (1 << 16) else f"{v:#x}"


def _ranges(r: Reg) -> list[str]:
    """print_scalar_ranges(): non-default bounds, equal values merged (``smax=umax=smax32=umax32=31``)."""
    names = ["smin", "smax", "umin", "umax", "smin32", "smax32", "umin32", "umax32"]
    vals = [r.smin & U64, r.smax & U64, r.umin, r.umax, r.s32_min & U64, r.s32_max & U64, r.u32_min, r.u32_max]
    omit = [r.smin == S64_MIN, r.smax == S64_MAX, r.umin == 0, r.umax == U64, r.s32_min == S32_MIN,
            r.s32_max == S32_MAX, r.u32_min == 0, r.u32_max == U32]
    out: list[str] = []
    for k in range(8):
        if omit[k]:
            continue
        neg1 = names[k][0] == "s" and s64(vals[k]) < 0
        group = [names[k]]
        for j in range(k + 2, 8, 2):
            if omit[j] or vals[j] != vals[k]:
                continue
            if (names[j][0] == "s" and s64(vals[j]) < 0) != neg1:
                continue
            omit[j] = True
            group.append(names[j])
        if names[k][0] == "s":
            val = snum(vals[k])
            if names[k].endswith("32") and val.startswith("0x"):
                val = f"{vals[k] & U32:#x}"
        else:
            val = unum(vals[k])
        out.append("=".join(group) + "=" + val)
    return out


def scalar_str(r: Reg) -> str:
    if r.var_off[1] == 0:
        return snum(r.var_off[0])
    parts: list[str] = []
    if r.id:
        parts.append(f"id={r.id}")
    parts += _ranges(r)
    if r.var_off != tn.UNKNOWN:
        parts.append(f"var_off={tn.tnum_str(r.var_off)}")
    return f"scalar({','.join(parts)})"


def reg_str(r: Reg, frameno: int = 0) -> str:
    """How the verifier log shows a register, e.g. ``ctx()``, ``fp-8``, ``map_value(ks=4,vs=8)``."""
    if r.type == T.SCALAR_VALUE:
        return scalar_str(r)
    if r.type == T.PTR_TO_STACK:
        fr = f"[{r.frameno}]" if r.frameno != frameno else ""
        if r.var_off[1] == 0:
            return f"fp{fr}{snum(r.var_off[0] + r.off)}"
    parts: list[str] = []
    if r.id:
        parts.append(f"id={r.id}")
    if r.ref_obj_id:
        parts.append(f"ref_obj_id={r.ref_obj_id}")
    if r.type in (T.CONST_PTR_TO_MAP, T.PTR_TO_MAP_VALUE, T.PTR_TO_MAP_KEY) and r.map is not None:
        name = getattr(r.map, "name", b"")
        if isinstance(name, bytes):
            name = name.split(b"\0")[0].decode(errors="replace")
        if name:
            parts.append(f"map={name}")
        parts.append(f"ks={r.map.key_size},vs={r.map.value_size}")
    if r.off:
        parts.append(f"off={r.off}")
    if r.type in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META):
        parts.append(f"r={r.range}")
    if r.type == T.PTR_TO_MEM:
        parts.append(f"sz={r.mem_size}")
    if r.var_off[1] == 0:
        if r.var_off[0]:
            parts.append(f"imm={r.var_off[0]:x}")
    else:
        parts += _ranges(r)
        if r.var_off != tn.UNKNOWN:
            parts.append(f"var_off={tn.tnum_str(r.var_off)}")
    return f"{r.type_str()}({','.join(parts)})"
