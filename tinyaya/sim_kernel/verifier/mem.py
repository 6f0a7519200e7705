"""Memory access checks: check_mem_access() and check_helper_mem_access() of kernel/bpf/verifier.c.

Each pointer type has its own rule: the stack (fixed or variable offsets within the frame's 512 bytes,
spills and fills), map values (value_size, read-only maps), packet data (the range proven against
data_end), ctx (the program type's ``is_valid_access``), memory from helpers (``mem_size``).
Messages are the kernel's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import tnum as tn
from .ctx import ctx_access
from .errors import EACCES, EINVAL
from .regs import (
    MEM_RDONLY,
    PTR_MAYBE_NULL,
    S64_MIN,
    Reg,
    RegType,
    coerce_reg_to_size,
    mark_known,
    mark_unknown,
    reg_bounds_sync,
)
from .state import STACK_INVALID, STACK_MISC, STACK_SPILL, STACK_ZERO, FuncState

if TYPE_CHECKING:
    from .check import Env

T = RegType
BPF_MAX_VAR_OFF = 1 << 29
MAP_STRUCT_SIZE = 64  # the readable head of struct bpf_map in the simulated kernel's MAP region
MAX_BPF_STACK = 512
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8


def _off_str(reg: Reg) -> str:
    return tn.tnum_str(reg.var_off)


def check_alignment(env: Env, reg: Reg, off: int, size: int, desc: str) -> None:
    """check_generic_ptr_alignment() for strictly aligned accesses (the stack, atomics)."""
    t = tn.add(reg.var_off, tn.const(reg.off + off))
    if not tn.is_aligned(t, size):
        shown = str(_sval(reg.var_off[0])) if reg.var_off[1] == 0 else tn.tnum_str(reg.var_off)
        raise env.reject(EACCES, f"misaligned {desc}access off {shown}+{reg.off}+{off} size {size}")


def check_ptr_off_reg(env: Env, reg: Reg, regno: int, what: str) -> None:
    """__check_ptr_off_reg(): ctx and similar pointers must be unmodified when dereferenced or passed."""
    if reg.off:
        raise env.reject(EACCES, f"dereference of modified {what} ptr R{regno} off={reg.off} disallowed")
    if reg.var_off != (0, 0):
        raise env.reject(EACCES, f"variable {what} access var_off={_off_str(reg)} disallowed")


def check_mem_region(env: Env, reg: Reg, regno: int, off: int, size: int, mem_size: int, kind: str,
                     zero_ok: bool = False) -> None:
    """check_mem_region_access() + __check_mem_access() for map values and helper memory."""
    def fail_msg(o: int) -> str:
        if kind == "map_value":
            return f"invalid access to map value, value_size={mem_size} off={o} size={size}"
        if kind == "packet":
            return (f"invalid access to packet, off={o} size={size}, "
                    f"R{regno}(id={reg.id},off={o},r={reg.range})")
        return f"invalid access to memory, mem_size={mem_size} off={o} size={size}"

    def within(o: int) -> bool:
        return o >= 0 and o + size <= mem_size and (size > 0 or zero_ok)

    if reg.smin < 0 and (reg.smin == S64_MIN or not (-(1 << 31) <= off + reg.smin < (1 << 31))
                         or reg.smin + off < 0):
        raise env.reject(EACCES, f"R{regno} min value is negative, either use unsigned index or do a "
                                 "if (index >=0) check.")
    if not within(reg.smin + off):
        env.log_line(fail_msg(reg.smin + off))
        raise env.reject(EACCES, f"R{regno} min value is outside of the allowed memory range")
    if reg.umax >= BPF_MAX_VAR_OFF:
        raise env.reject(EACCES, f"R{regno} unbounded memory access, make sure to bounds check any such access")
    if not within(reg.umax + off):
        env.log_line(fail_msg(reg.umax + off))
        raise env.reject(EACCES, f"R{regno} max value is outside of the allowed memory range")


def stack_frame(env: Env, reg: Reg) -> FuncState:
    return env.state.frames[reg.frameno]


def check_stack_bounds(env: Env, reg: Reg, regno: int, off: int, size: int, what: str) -> tuple[int, int]:
    """check_stack_access_within_bounds(): the accessed bytes [lo, hi) relative to the frame pointer.

    The errno follows check_stack_slot_within_bounds(): EACCES when the lowest byte is outside the
    stack, EINVAL when only the end runs past the frame pointer (or the size is negative).
    """
    if reg.var_off[1] == 0:
        lo = off + reg.off + _sval(reg.var_off[0])
    else:
        if reg.smax >= BPF_MAX_VAR_OFF or reg.smin <= -BPF_MAX_VAR_OFF:
            raise env.reject(EACCES, f"invalid unbounded variable-offset{what} stack R{regno}")
        lo = off + reg.off + reg.smin
    hi = (lo + size) if reg.var_off[1] == 0 else off + reg.off + reg.smax + size
    err = 0
    if lo < -MAX_BPF_STACK or lo > -1:
        err = EACCES
    elif hi > 0 or size < 0:
        err = EINVAL
    if err:
        if reg.var_off[1] == 0:
            raise env.reject(err, f"invalid{what} stack R{regno} off={lo} size={size}")
        raise env.reject(err, f"invalid variable-offset{what} stack R{regno} var_off={_off_str(reg)} "
                              f"off={off + reg.off} size={size}")
    return lo, hi


def _sval(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _update_depth(env: Env, frame: FuncState, lo: int) -> None:
    if -lo > frame.allocated_stack:
        frame.allocated_stack = -lo
    sub = frame.subprog
    if -lo > env.stack_depth[sub]:
        env.stack_depth[sub] = -lo


def stack_write(env: Env, frame: FuncState, lo: int, size: int, value: Reg | None, fixed: bool) -> None:
    """check_stack_write_{fixed,var}_off(): spill a whole register to an aligned slot, or mark bytes."""
    _update_depth(env, frame, lo)
    if fixed and value is not None and value.is_pointer:
        if size != 8:
            raise env.reject(EACCES, "invalid size of register spill")
        if frame is not env.state.cur and value.type == T.PTR_TO_STACK:
            # the callee's frame dies when it returns: the caller must not keep a pointer into it
            raise env.reject(EINVAL, "cannot spill pointers to stack into stack frame of the caller")
    if fixed and size == 8 and lo % 8 == 0 and value is not None and (value.is_pointer or value.is_scalar):
        frame.stack[lo] = (STACK_SPILL * 8, value.copy())
        return
    if fixed and size < 8 and lo % 8 == 0 and value is not None and value.is_scalar and \
            not value.is_null() and env.bpf_capable:
        # a narrow spill of a scalar (save_register_state with size < BPF_REG_SIZE): the low bytes
        sp = value.copy()
        coerce_reg_to_size(sp, size)
        sp.id = 0
        old_types, _ = frame.stack.get(lo, (STACK_INVALID * 8, None))
        rest = "".join(STACK_MISC if c == STACK_SPILL else c for c in old_types[size:])
        frame.stack[lo] = (STACK_SPILL * size + rest, sp)
        return
    if fixed and value is not None and value.is_pointer:
        raise env.reject(EACCES, "invalid size of register spill")
    zero = fixed and value is not None and value.is_null()
    byte = STACK_ZERO if zero else STACK_MISC
    for base in range(lo & ~7, lo + size, 8):
        types, spilled = frame.stack.get(base, (STACK_INVALID * 8, None))
        t = list(types)
        if spilled is not None or STACK_SPILL in t:
            # a partial overwrite destroys the spilled register
            t = [STACK_MISC if c == STACK_SPILL else c for c in t]
        for b in range(8):
            a = base + b
            if lo <= a < lo + size:
                t[b] = byte if fixed else (STACK_MISC if t[b] != STACK_INVALID or True else t[b])
        frame.stack[base] = ("".join(t), None)


def stack_read(env: Env, frame: FuncState, lo: int, size: int, regno: int, dst: Reg | None,
               sign_ext: bool = False) -> None:
    """check_stack_read_fixed_off(): fill a spilled register, or read initialised (or, for a privileged
    loader, uninitialised) bytes as an unknown scalar."""
    base = lo & ~7
    types, spilled = frame.stack.get(base, (STACK_INVALID * 8, None))
    if lo % 8 == 0 and size == 8 and spilled is not None and types == STACK_SPILL * 8:
        if dst is not None:
            dst.assign(spilled)
        return
    if spilled is not None and types == STACK_SPILL * 8 and not spilled.is_scalar:
        raise env.reject(EACCES, "invalid size of register fill")
    spill_size = len(types) - len(types.lstrip(STACK_SPILL)) if spilled is not None else 0
    if spilled is not None and spill_size and lo == base and size == spill_size and not sign_ext:
        # the exact narrow fill of a narrow spill
        if dst is not None:
            dst.assign(spilled)
            dst.id = 0
        return
    all_zero = True
    for a in range(lo, lo + size):
        t, sp = frame.stack.get(a & ~7, (STACK_INVALID * 8, None))
        c = t[a - (a & ~7)]
        if c != STACK_ZERO:
            all_zero = False
        if c == STACK_INVALID and not env.allow_uninit_stack:
            raise env.reject(EACCES, f"invalid read from stack off {lo}+{a - lo} size {size}")
    if dst is None:
        return
    if all_zero:
        mark_known(dst, 0)
        return
    if spilled is not None and spilled.is_scalar and spilled.is_const() and not sign_ext and \
            lo + size <= base + spill_size:
        # a narrow fill of a spilled constant (little-endian)
        v = spilled.var_off[0] >> ((lo - base) * 8)
        mark_known(dst, v & ((1 << (size * 8)) - 1))
        return
    mark_unknown(dst)
    if size < 8 and not sign_ext:
        dst.var_off = (0, (1 << (size * 8)) - 1)
        reg_bounds_sync(dst)


def check_map_value_access(env: Env, reg: Reg, regno: int, off: int, size: int, write: bool) -> None:
    m = reg.map
    if write and m.map_flags & BPF_F_RDONLY_PROG:
        raise env.reject(EACCES, f"write into map forbidden, value_size={m.value_size} off={off + reg.off} "
                                 f"size={size}")
    if not write and m.map_flags & BPF_F_WRONLY_PROG:
        raise env.reject(EACCES, f"read from map forbidden, value_size={m.value_size} off={off + reg.off} "
                                 f"size={size}")
    check_mem_region(env, reg, regno, off + reg.off, size, m.value_size, "map_value")
    lock_off = getattr(m, "spin_lock_off", None)
    if lock_off is not None and lock_off >= 0:
        lo = reg.smin + off + reg.off
        hi = reg.umax + off + reg.off + size
        if lo < lock_off + 4 and lock_off < hi:
            raise env.reject(EACCES, "bpf_spin_lock cannot be accessed directly by load/store")


def check_packet_access(env: Env, reg: Reg, regno: int, off: int, size: int) -> None:
    if reg.smin < 0:
        raise env.reject(EACCES, f"R{regno} min value is negative, either use unsigned index or do a "
                                 "if (index >=0) check.")
    o = off + reg.off
    if reg.range < 0:
        raise env.reject(EINVAL, f"R{regno} offset is outside of the packet")
    if o < 0 or o + size > reg.range:
        env.log_line(f"invalid access to packet, off={o} size={size}, R{regno}(id={reg.id},off={o},"
                     f"r={reg.range})")
        raise env.reject(EACCES, f"R{regno} offset is outside of the packet")
    if reg.umax >= BPF_MAX_VAR_OFF:
        raise env.reject(EACCES, f"R{regno} unbounded memory access, make sure to bounds check any such access")


def check_mem_access(env: Env, regno: int, off: int, size: int, write: bool, value_regno: int,
                     dst: Reg | None, sign_ext: bool = False) -> None:
    """check_mem_access(): a load (``dst`` receives the value) or store (``value_regno`` >= 0 or -1 for imm)."""
    regs = env.state.cur.regs
    reg = regs[regno]
    t = reg.type
    if t == T.NOT_INIT:
        raise env.reject(EACCES, f"R{regno} !read_ok")
    if t == T.CONST_PTR_TO_MAP and not reg.maybe_null and not write:
        # struct bpf_map fields are readable through BTF (btf_struct_access on the map's type)
        if off + reg.off < 0 or off + reg.off + size > MAP_STRUCT_SIZE or reg.var_off != (0, 0):
            raise env.reject(EACCES, f"R{regno} invalid mem access '{reg.type_str()}'")
        if dst is not None:
            mark_unknown(dst)
        return
    if reg.maybe_null or t in (T.SCALAR_VALUE, T.CONST_PTR_TO_MAP, T.PTR_TO_PACKET_END, T.PTR_TO_FUNC) \
            or t == T.PTR_TO_BTF_ID:
        raise env.reject(EACCES, f"R{regno} invalid mem access '{reg.type_str()}'")
    if t == T.PTR_TO_STACK:
        frame = stack_frame(env, reg)
        what = " write to" if write else " read from"
        check_alignment(env, reg, off, size, "stack ")
        lo, hi = check_stack_bounds(env, reg, regno, off, size, what)
        fixed = reg.var_off[1] == 0
        if fixed:
            env.cur_rec[2] = (reg.frameno, lo & ~7)
        if write:
            value = regs[value_regno] if value_regno >= 0 else None
            if value_regno < 0:
                value = env.imm_reg
            stack_write(env, frame, lo, size, value, fixed)
        elif fixed:
            _update_depth(env, frame, lo)
            stack_read(env, frame, lo, size, regno, dst, sign_ext)
        else:
            _update_depth(env, frame, lo)
            for a in range(lo, hi):
                types, _ = frame.stack.get(a & ~7, (STACK_INVALID * 8, None))
                if types[a - (a & ~7)] == STACK_INVALID and not env.allow_uninit_stack:
                    raise env.reject(EACCES, f"invalid variable-offset read from stack R{regno} "
                                             f"var_off={_off_str(reg)} off={off} size={size}")
            if dst is not None:
                mark_unknown(dst)
        if write and not fixed:
            pass
        return
    if t == T.PTR_TO_MAP_VALUE:
        check_map_value_access(env, reg, regno, off, size, write)
        if write and value_regno >= 0 and regs[value_regno].is_pointer and not env.allow_ptr_leaks:
            raise env.reject(EACCES, f"R{value_regno} leaks addr into map")
    elif t == T.PTR_TO_MAP_KEY:
        check_mem_region(env, reg, regno, off + reg.off, size, reg.map.key_size, "map_key")
        if write:
            raise env.reject(EACCES, "write to change key R2 not allowed")
    elif t == T.PTR_TO_MEM:
        if write and reg.flags & MEM_RDONLY:
            raise env.reject(EACCES, f"R{regno} cannot write into {reg.type_str()}")
        check_mem_region(env, reg, regno, off + reg.off, size, reg.mem_size, "mem")
    elif t == T.PTR_TO_CTX:
        check_ptr_off_reg(env, reg, regno, "ctx")
        acc = ctx_access(env.prog_type, off, size, write)
        if not acc.ok:
            raise env.reject(EACCES, f"invalid bpf_context access off={off} size={size}")
        if dst is not None:
            if acc.reg_type == T.SCALAR_VALUE:
                mark_unknown(dst)
                if size < 8:
                    dst.var_off = (0, (1 << (size * 8)) - 1)
                    reg_bounds_sync(dst)
            else:
                mark_known(dst, 0)
                dst.type = acc.reg_type
                dst.range = 0
                if acc.maybe_null:
                    # e.g. skb->sk may be NULL: a fresh id for the NULL check, no reference
                    dst.flags = PTR_MAYBE_NULL
                    dst.id = env.new_id()
        if write and value_regno >= 0 and regs[value_regno].is_pointer:
            raise env.reject(EACCES, f"R{value_regno} leaks addr into ctx")
        return
    elif t in (T.PTR_TO_SOCKET, T.PTR_TO_SOCK_COMMON):
        check_sock_access(env, reg, regno, off, size, write)
    elif t == T.PTR_TO_FLOW_KEYS:
        # check_flow_keys_access(): within struct bpf_flow_keys (56 bytes)
        o = off + reg.off
        if reg.var_off != (0, 0) or o < 0 or o + size > 56:
            raise env.reject(EACCES, f"invalid access to flow keys off={o} size={size}")
    elif t in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META):
        if write and not env.may_write_packet():
            raise env.reject(EACCES, "cannot write into packet")
        if t == T.PTR_TO_PACKET_META and env.prog_type not in env.meta_ok_types:
            raise env.reject(EACCES, f"R{regno} invalid mem access '{reg.type_str()}'")
        check_packet_access(env, reg, regno, off, size)
        if write and value_regno >= 0 and regs[value_regno].is_pointer:
            raise env.reject(EACCES, f"R{value_regno} leaks addr into packet")
    else:
        raise env.reject(EACCES, f"R{regno} invalid mem access '{reg.type_str()}'")
    if dst is not None:
        mark_unknown(dst)
        if size < 8:
            if sign_ext:
                bits = size * 8
                dst.smin, dst.smax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            else:
                dst.var_off = (0, (1 << (size * 8)) - 1)
            reg_bounds_sync(dst)


BPF_SOCK_SIZE = 80  # sizeof(struct bpf_sock) (uapi bpf.h)
SOCK_COMMON_FIELDS_END = 56  # bpf_sock_common_is_valid_access(): up to dst_ip6/src_ip6


def check_sock_access(env: Env, reg: Reg, regno: int, off: int, size: int, write: bool) -> None:
    """check_sock_access() with bpf_sock_is_valid_access(): read-only, naturally aligned fields of
    ``struct bpf_sock`` (a sock_common pointer only sees the leading common part)."""
    if reg.smin < 0 or reg.var_off != (0, 0) or reg.off:
        raise env.reject(EACCES, f"R{regno} invalid {reg.type_str()} access off={off} size={size}")
    limit = BPF_SOCK_SIZE if reg.type == T.PTR_TO_SOCKET else SOCK_COMMON_FIELDS_END
    if write:
        raise env.reject(EACCES, f"R{regno} cannot write into {reg.type_str()}")
    if off < 0 or off + size > limit or off % size or size == 8:
        raise env.reject(EACCES, f"R{regno} invalid {reg.type_str()} access off={off} size={size}")


def check_helper_mem(env: Env, regno: int, size: int, write: bool, zero_ok: bool, uninit_ok: bool) -> None:
    """check_helper_mem_access(): ``size`` bytes at register ``regno`` for a helper argument."""
    regs = env.state.cur.regs
    reg = regs[regno]
    t = reg.type
    if t == T.PTR_TO_STACK:
        frame = stack_frame(env, reg)
        if size == 0 and zero_ok:
            return
        lo, hi = check_stack_bounds(env, reg, regno, 0, size, " write to" if write else " read from")
        _update_depth(env, frame, lo)
        if not write or not uninit_ok:
            for a in range(lo, hi):
                types, sp = frame.stack.get(a & ~7, (STACK_INVALID * 8, None))
                c = types[a - (a & ~7)]
                if c == STACK_INVALID and not env.allow_uninit_stack:
                    raise env.reject(EACCES, f"invalid read from stack R{regno} off {lo}+{a - lo} size {size}")
        if write:
            for base in range(lo & ~7, hi, 8):
                types, sp = frame.stack.get(base, (STACK_INVALID * 8, None))
                tl = list(types)
                for b in range(8):
                    if lo <= base + b < hi or sp is not None:
                        tl[b] = STACK_MISC if (lo <= base + b < hi or tl[b] == STACK_SPILL) else tl[b]
                frame.stack[base] = ("".join(tl), None)
        return
    if t == T.PTR_TO_MAP_VALUE:
        check_map_value_access(env, reg, regno, 0, size, write)
        return
    if t == T.PTR_TO_MAP_KEY:
        check_mem_region(env, reg, regno, reg.off, size, reg.map.key_size, "map_key", zero_ok)
        return
    if t == T.PTR_TO_MEM:
        if write and reg.flags & MEM_RDONLY:
            raise env.reject(EACCES, f"R{regno} cannot write into {reg.type_str()}")
        check_mem_region(env, reg, regno, reg.off, size, reg.mem_size, "mem", zero_ok)
        return
    if t in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META):
        if write and not env.may_write_packet():
            raise env.reject(EACCES, "cannot write into packet")
        check_packet_access(env, reg, regno, 0, size)
        return
    raise env.reject(EACCES, f"R{regno} type={reg.type_str()} expected=fp")
