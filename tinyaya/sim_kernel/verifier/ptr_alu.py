"""Pointer arithmetic: adjust_ptr_min_max_vals() of kernel/bpf/verifier.c (a mixin of ``Env``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op

from .alu import scalar_alu
from .backtrack import mark_chain_precision
from .errors import EACCES, EINVAL
from .mem import BPF_MAX_VAR_OFF
from .regs import S64_MIN, Reg, RegType, mark_unknown

if TYPE_CHECKING:
    from .check import Env

T = RegType


ALU_STR = {op.BPF_ADD: "+=", op.BPF_SUB: "-=", op.BPF_MUL: "*=", op.BPF_DIV: "/=", op.BPF_OR: "|=",
           op.BPF_AND: "&=", op.BPF_LSH: "<<=", op.BPF_RSH: ">>=", op.BPF_NEG: "neg", op.BPF_MOD: "%=",
           op.BPF_XOR: "^=", op.BPF_MOV: "=", op.BPF_ARSH: "s>>=", op.BPF_END: "endian"}


def check_reg_sane_offset(env: Env, reg: Reg, tname: str) -> None:
    """check_reg_sane_offset(): offsets that stay far from overflowing (BPF_MAX_VAR_OFF)."""
    if reg.var_off[1] == 0:
        v = reg.var_off[0] - (1 << 64) if reg.var_off[0] >> 63 else reg.var_off[0]
        if not -BPF_MAX_VAR_OFF < v < BPF_MAX_VAR_OFF:
            raise env.reject(EINVAL, f"math between {tname} pointer and {v} is not allowed")
    if not -BPF_MAX_VAR_OFF < reg.off < BPF_MAX_VAR_OFF:
        raise env.reject(EINVAL, f"{tname} pointer offset {reg.off} is not allowed")
    if reg.smin == S64_MIN:
        raise env.reject(EINVAL, f"math between {tname} pointer and register with unbounded min value is not allowed")
    if not -BPF_MAX_VAR_OFF < reg.smin < BPF_MAX_VAR_OFF:
        raise env.reject(EINVAL, f"value {reg.smin} makes {tname} pointer be out of bounds")


def ptr_alu(env: Env, i: Insn, dst: Reg, src: Reg, alu64: bool, o: int) -> None:
    """adjust_ptr_min_max_vals() and the pointer cases of adjust_reg_min_max_vals()."""
    d = i.dst
    if dst.is_pointer and src.is_pointer:
        if o == op.BPF_SUB and alu64:
            mark_unknown(dst)
            return
        raise env.reject(EACCES, f"R{d} pointer {ALU_STR[o]} pointer prohibited")
    if not alu64:
        if o == op.BPF_SUB:
            mark_unknown(dst)
            return
        raise env.reject(EACCES, f"R{d} 32-bit pointer arithmetic prohibited")
    ptr, off = (dst, src) if dst.is_pointer else (src, dst)
    # the scalar offset decides where the pointer points: it must be precise
    if op.BPF_SRC(i.code) == op.BPF_X:
        mark_chain_precision(env, i.src if dst.is_pointer else i.dst)
    if ptr.maybe_null:
        raise env.reject(EACCES, f"R{d} pointer arithmetic on {ptr.type_str()} prohibited, null-check it first")
    known = off.is_const()
    if ptr.type == T.CONST_PTR_TO_MAP and not (known and off.var_off[0] == 0 and o == op.BPF_ADD):
        raise env.reject(EACCES, f"R{d} pointer arithmetic on {ptr.type_str()} prohibited")
    if ptr.type in (T.PTR_TO_PACKET_END, T.PTR_TO_FUNC, T.PTR_TO_BTF_ID) or \
            (ptr.type == T.PTR_TO_MEM and ptr.flags & 0x400 and False):
        raise env.reject(EACCES, f"R{d} pointer arithmetic on {ptr.type_str()} prohibited")
    if o == op.BPF_SUB and dst is off:
        raise env.reject(EACCES, f"R{d} tried to subtract pointer from scalar")
    if o in (op.BPF_AND, op.BPF_OR, op.BPF_XOR):
        raise env.reject(EACCES, f"R{d} bitwise operator {ALU_STR[o]} on pointer prohibited")
    if o not in (op.BPF_ADD, op.BPF_SUB):
        raise env.reject(EACCES, f"R{d} pointer arithmetic with {ALU_STR[o]} operator prohibited")
    tname = ptr.type_str()
    check_reg_sane_offset(env, off, tname)
    check_reg_sane_offset(env, ptr, tname)
    if o == op.BPF_SUB and ptr.type == T.PTR_TO_STACK:
        raise env.reject(EACCES, f"R{d} subtraction from stack pointer prohibited")
    res = ptr.copy()
    if known:
        v = off.var_off[0]
        sv = v - (1 << 64) if v >> 63 else v
        res.off = ptr.off + (sv if o == op.BPF_ADD else -sv)
        if not -BPF_MAX_VAR_OFF < res.off < BPF_MAX_VAR_OFF:
            raise env.reject(EACCES, f"{tname} pointer offset {res.off} is not allowed")
    else:
        tmp = Reg()
        tmp.assign(ptr)
        tmp.type = T.SCALAR_VALUE
        scalar_alu(tmp, off, o, False)
        res.var_off, res.smin, res.smax, res.umin, res.umax = tmp.var_off, tmp.smin, tmp.smax, tmp.umin, tmp.umax
        res.s32_min, res.s32_max, res.u32_min, res.u32_max = tmp.s32_min, tmp.s32_max, tmp.u32_min, tmp.u32_max
        if res.type in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META):
            res.id = env.new_id()
            res.range = 0
    check_reg_sane_offset(env, res, tname)
    if res.type in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META) and known and o == op.BPF_SUB:
        res.range = 0
    dst.assign(res)
