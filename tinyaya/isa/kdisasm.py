"""The kernel's own instruction syntax: ``print_bpf_insn()`` of Linux's kernel/bpf/disasm.c.

This is what the verifier log (``0: (b7) r0 = 1``) and ``bpftool prog dump xlated`` print:
the opcode byte in parentheses, decimal ALU immediates, hex jump immediates,
``goto pc+3``, ``call bpf_map_lookup_elem#1``, ``*(u32 *)(r1 +8)``. Reached through
``disasm_insn(..., style="kernel")``; each branch below names the printf format it follows.
Fields the kernel does not print are not printed; what it cannot print is ``BUG_..``, as there.
"""
from __future__ import annotations

from collections.abc import Callable

from . import opcodes as op
from .insn import Insn

HelperName = Callable[[int], "str | None"]

BPF_LOAD_ACQ = 0x100  # BPF_ATOMIC imm of load-acquire (uapi bpf.h, Linux 6.15)
BPF_STORE_REL = 0x110  # BPF_ATOMIC imm of store-release
BPF_NOSPEC_MODE = 0xC0  # BPF_ST | 0xc0: the verifier's internal speculation barrier
BPF_ADDR_PERCPU_OFF = -1  # ALU64 MOV X with off -1: the verifier's per-CPU address mov

_LDST = {op.BPF_W: "u32", op.BPF_H: "u16", op.BPF_B: "u8", op.BPF_DW: "u64"}
_LDSX = {op.BPF_W: "s32", op.BPF_H: "s16", op.BPF_B: "s8", op.BPF_DW: "(null)"}
_ALU = {**op.ALU_OP_SYMBOLS, op.BPF_NEG: "neg", op.BPF_MOV: "=", op.BPF_END: "endian"}
_JMP = {**op.JMP_COND_SYMBOLS, op.BPF_JA: "jmp", op.BPF_CALL: "call", op.BPF_EXIT: "exit"}
_MOVSX = {8: "(s8)", 16: "(s16)", 32: "(s32)"}
_CLASS = {op.BPF_LD: "ld", op.BPF_LDX: "ldx", op.BPF_ST: "st", op.BPF_STX: "stx", op.BPF_ALU: "alu",
          op.BPF_JMP: "jmp", op.BPF_JMP32: "jmp32", op.BPF_ALU64: "alu64"}


def _u32(v: int) -> int:
    return v & 0xFFFFFFFF


def _mem(reg: int, off: int) -> str:
    return f"(r{reg} {off:+d})"


def _alu(insn: Insn) -> str:
    cls, code, o = op.BPF_CLASS(insn.code), insn.code, op.BPF_OP(insn.code)
    p = "w" if cls == op.BPF_ALU else "r"
    if o == op.BPF_END:
        if cls == op.BPF_ALU64:  # print_bpf_bswap_insn: "r%d = bswap%d r%d"
            return f"r{insn.dst} = bswap{insn.imm} r{insn.dst}"
        kind = "be" if op.BPF_SRC(code) == op.BPF_TO_BE else "le"  # print_bpf_end_insn
        return f"r{insn.dst} = {kind}{insn.imm} r{insn.dst}"
    if o == op.BPF_NEG:  # "%c%d = -%c%d"
        return f"{p}{insn.dst} = -{p}{insn.dst}"
    if code == op.BPF_ALU64 | op.BPF_MOV | op.BPF_X and insn.off == op.BPF_ADDR_SPACE_CAST_OFF:
        return f"r{insn.dst} = addr_space_cast(r{insn.src}, {_u32(insn.imm) >> 16}, {insn.imm & 0xFFFF})"
    if code == op.BPF_ALU64 | op.BPF_MOV | op.BPF_X and insn.off == BPF_ADDR_PERCPU_OFF:
        return f"r{insn.dst} = &(void __percpu *)(r{insn.src})"
    signed = o in (op.BPF_DIV, op.BPF_MOD) and insn.off == op.SIGNED_ALU_OFF
    sym = ("s" + _ALU[o]) if signed else _ALU.get(o, "(null)")
    if op.BPF_SRC(code) == op.BPF_X:  # "%c%d %s %s%c%d"
        sx = _MOVSX.get(insn.off, "") if o == op.BPF_MOV else ""
        return f"{p}{insn.dst} {sym} {sx}{p}{insn.src}"
    return f"{p}{insn.dst} {sym} {insn.imm}"  # "%c%d %s %d"


def _stx(insn: Insn) -> str:
    size, mode, imm = op.BPF_SIZE(insn.code), op.BPF_MODE(insn.code), insn.imm
    t = _LDST[size]
    if mode == op.BPF_MEM:
        return f"*({t} *){_mem(insn.dst, insn.off)} = r{insn.src}"
    if mode != op.BPF_ATOMIC:
        return f"BUG_{insn.code:02x}"
    w = "64" if size == op.BPF_DW else ""
    if imm in op.ATOMIC_ALU_OPS:
        return f"lock *({t} *){_mem(insn.dst, insn.off)} {_ALU[imm]} r{insn.src}"
    if imm & ~op.BPF_FETCH in op.ATOMIC_ALU_OPS and imm & op.BPF_FETCH:
        name = op.ALU_OP_NAMES[imm & ~op.BPF_FETCH]
        return f"r{insn.src} = atomic{w}_fetch_{name}(({t} *){_mem(insn.dst, insn.off)}, r{insn.src})"
    if imm == op.BPF_CMPXCHG:
        return f"r0 = atomic{w}_cmpxchg(({t} *){_mem(insn.dst, insn.off)}, r0, r{insn.src})"
    if imm == op.BPF_XCHG:
        return f"r{insn.src} = atomic{w}_xchg(({t} *){_mem(insn.dst, insn.off)}, r{insn.src})"
    if imm == BPF_LOAD_ACQ:
        return f"r{insn.dst} = load_acquire(({t} *){_mem(insn.src, insn.off)})"
    if imm == BPF_STORE_REL:
        return f"store_release(({t} *){_mem(insn.dst, insn.off)}, r{insn.src})"
    return f"BUG_{insn.code:02x}"


def _call(insn: Insn, helper_name: HelperName | None) -> str:
    """``__func_get_name()``: helper names for src 0, then ``%+d`` for a pseudo call."""
    if insn.src == op.BPF_PSEUDO_CALL:
        return f"call pc{insn.imm:+d}"
    name = helper_name(insn.imm) if helper_name is not None and insn.src == 0 and insn.imm >= 0 else None
    if name is None:
        name = "kernel-function" if insn.src == op.BPF_PSEUDO_KFUNC_CALL else "unknown"
    return f"call {name}#{insn.imm}"


def _jmp(insn: Insn, helper_name: HelperName | None) -> str:
    cls, code, o = op.BPF_CLASS(insn.code), insn.code, op.BPF_OP(insn.code)
    if o == op.BPF_CALL:
        return _call(insn, helper_name)
    if code == op.BPF_JMP | op.BPF_JA:
        return f"goto pc{insn.off:+d}"
    if code == op.BPF_JMP | op.BPF_JCOND and insn.src == op.BPF_MAY_GOTO:
        return f"may_goto pc{insn.off:+d}"
    if code == op.BPF_JMP32 | op.BPF_JA:
        return f"gotol pc{insn.imm:+d}"
    if code == op.BPF_JMP | op.BPF_EXIT:
        return "exit"
    p = "w" if cls == op.BPF_JMP32 else "r"
    sym = _JMP.get(o, "(null)")
    if op.BPF_SRC(code) == op.BPF_X:
        return f"if {p}{insn.dst} {sym} {p}{insn.src} goto pc{insn.off:+d}"
    return f"if {p}{insn.dst} {sym} 0x{_u32(insn.imm):x} goto pc{insn.off:+d}"


def kernel_insn(
    insns: list[Insn], pc: int, *, symbolize: Callable[[int, Insn], str | None] | None = None,
    helper_name: HelperName | None = None,
) -> str:
    """``print_bpf_insn()`` text of the instruction at ``pc``, e.g. ``(b7) r0 = 1``.

    ``symbolize(pc, insn)`` plays the kernel's ``cb_imm``: the text after ``rN = `` of a
    ld_imm64 (bpftool prints ``map[id:5]``); otherwise the 64-bit value is printed in hex,
    as with allow_ptr_leaks. ``helper_name(id)`` gives ``bpf_map_lookup_elem`` for id 1.
    """
    insn = insns[pc]
    code, cls = insn.code, op.BPF_CLASS(insn.code)
    size, mode = op.BPF_SIZE(code), op.BPF_MODE(code)
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        text = _alu(insn)
    elif cls == op.BPF_STX:
        text = _stx(insn)
    elif cls == op.BPF_ST:
        if mode == op.BPF_MEM:
            text = f"*({_LDST[size]} *){_mem(insn.dst, insn.off)} = {insn.imm}"
        elif mode == BPF_NOSPEC_MODE:
            text = "nospec"
        else:
            return f"BUG_st_{code:02x}"
    elif cls == op.BPF_LDX:
        if mode not in (op.BPF_MEM, op.BPF_MEMSX):
            return f"BUG_ldx_{code:02x}"
        t = _LDST[size] if mode == op.BPF_MEM else _LDSX[size]
        text = f"r{insn.dst} = *({t} *){_mem(insn.src, insn.off)}"
    elif cls == op.BPF_LD:
        if mode == op.BPF_ABS:
            text = f"r0 = *({_LDST[size]} *)skb[{insn.imm}]"
        elif mode == op.BPF_IND:
            text = f"r0 = *({_LDST[size]} *)skb[r{insn.src} + {insn.imm}]"
        elif mode == op.BPF_IMM and size == op.BPF_DW:
            name = symbolize(pc, insn) if symbolize is not None else None
            if name is None:
                hi = insns[pc + 1].imm if pc + 1 < len(insns) else 0
                name = f"0x{(_u32(hi) << 32) | _u32(insn.imm):x}"
            text = f"r{insn.dst} = {name}"
        else:
            return f"BUG_ld_{code:02x}"
    else:
        text = _jmp(insn, helper_name) if cls in (op.BPF_JMP, op.BPF_JMP32) else _CLASS[cls]
    return f"({code:02x}) {text}"
