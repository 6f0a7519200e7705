"""Instruction text as the verifier log prints it (kernel/bpf/disasm.c: print_bpf_insn).

``(79) r6 = *(u64 *)(r1 +0)``, ``(15) if r0 == 0x0 goto pc+3``, ``(85) call bpf_map_lookup_elem#1``:
decimal immediates for ALU, hex for jumps and 64-bit loads, ``pc+N`` targets.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tinyaya.isa import Insn, ld_imm64_value
from tinyaya.isa import opcodes as op
from tinyaya.uapi.helpers import helper_name

from .regs import RegType
from .state import state_str

if TYPE_CHECKING:
    from .check import Env

T = RegType

_ALU = {op.BPF_ADD: "+=", op.BPF_SUB: "-=", op.BPF_MUL: "*=", op.BPF_DIV: "/=", op.BPF_OR: "|=",
        op.BPF_AND: "&=", op.BPF_LSH: "<<=", op.BPF_RSH: ">>=", op.BPF_MOD: "%=", op.BPF_XOR: "^=",
        op.BPF_MOV: "=", op.BPF_ARSH: "s>>="}
_JMP = {op.BPF_JEQ: "==", op.BPF_JGT: ">", op.BPF_JGE: ">=", op.BPF_JSET: "&", op.BPF_JNE: "!=",
        op.BPF_JSGT: "s>", op.BPF_JSGE: "s>=", op.BPF_JLT: "<", op.BPF_JLE: "<=", op.BPF_JSLT: "s<",
        op.BPF_JSLE: "s<="}
_SZ = {op.BPF_B: "u8", op.BPF_H: "u16", op.BPF_W: "u32", op.BPF_DW: "u64"}
_SSZ = {op.BPF_B: "s8", op.BPF_H: "s16", op.BPF_W: "s32"}
_ATOMIC = {op.BPF_ADD: "add", op.BPF_AND: "and", op.BPF_OR: "or", op.BPF_XOR: "xor"}


def _off(o: int) -> str:
    return f"+{o}" if o >= 0 else str(o)


def _u32hex(v: int) -> str:
    return f"{v & 0xFFFFFFFF:#x}"


def print_insn(insns: list[Insn], pc: int) -> str:
    i = insns[pc]
    cls = op.BPF_CLASS(i.code)
    o = op.BPF_OP(i.code)
    head = f"({i.code:02x}) "
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        r = "w" if cls == op.BPF_ALU else "r"
        if o == op.BPF_END:
            if cls == op.BPF_ALU64:
                return head + f"r{i.dst} = bswap{i.imm} r{i.dst}"
            return head + f"r{i.dst} = {'be' if op.BPF_SRC(i.code) else 'le'}{i.imm} r{i.dst}"
        if o == op.BPF_NEG:
            return head + f"{r}{i.dst} = -{r}{i.dst}"
        s = _ALU.get(o, "?")
        if i.off == 1 and o in (op.BPF_DIV, op.BPF_MOD):
            s = "s" + s
        if op.BPF_SRC(i.code) == op.BPF_X:
            if o == op.BPF_MOV and i.off in (8, 16, 32):
                return head + f"{r}{i.dst} = (s{i.off}){r}{i.src}"
            return head + f"{r}{i.dst} {s} {r}{i.src}"
        return head + f"{r}{i.dst} {s} {i.imm}"
    if cls == op.BPF_LDX:
        sz = _SSZ.get(op.BPF_SIZE(i.code), "s64") if op.BPF_MODE(i.code) == op.BPF_MEMSX else _SZ[op.BPF_SIZE(i.code)]
        return head + f"r{i.dst} = *({sz} *)(r{i.src} {_off(i.off)})"
    if cls == op.BPF_ST:
        return head + f"*({_SZ[op.BPF_SIZE(i.code)]} *)(r{i.dst} {_off(i.off)}) = {i.imm}"
    if cls == op.BPF_STX:
        sz = _SZ[op.BPF_SIZE(i.code)]
        mem = f"({sz} *)(r{i.dst} {_off(i.off)})"
        if op.BPF_MODE(i.code) == op.BPF_ATOMIC:
            w = "64" if op.BPF_SIZE(i.code) == op.BPF_DW else ""
            rr = "r" if w else "w"
            if i.imm in _ATOMIC:
                return head + f"lock *{mem} {_ALU[i.imm]} r{i.src}"
            if i.imm & ~op.BPF_FETCH in _ATOMIC:
                return head + f"{rr}{i.src} = atomic{w}_fetch_{_ATOMIC[i.imm & ~op.BPF_FETCH]}({mem}, {rr}{i.src})"
            if i.imm == op.BPF_XCHG:
                return head + f"{rr}{i.src} = atomic{w}_xchg({mem}, {rr}{i.src})"
            if i.imm == op.BPF_CMPXCHG:
                return head + f"r0 = atomic{w}_cmpxchg({mem}, r0, {rr}{i.src})"
            return head + f"BUG_{i.imm:02x}"
        return head + f"*{mem} = r{i.src}"
    if cls == op.BPF_LD:
        if i.code == op.LD_IMM64 and pc + 1 < len(insns):
            v = ld_imm64_value(i, insns[pc + 1])
            return head + f"r{i.dst} = {v:#x}"
        sz = _SZ.get(op.BPF_SIZE(i.code), "?")
        if op.BPF_MODE(i.code) == op.BPF_ABS:
            return head + f"r0 = *({sz} *)skb[{i.imm}]"
        if op.BPF_MODE(i.code) == op.BPF_IND:
            return head + f"r0 = *({sz} *)skb[r{i.src} + {i.imm}]"
        return head + f"BUG_ld_{i.code:02x}"
    if cls in (op.BPF_JMP, op.BPF_JMP32):
        if o == op.BPF_CALL:
            if i.src == op.BPF_PSEUDO_CALL:
                return head + f"call pc{_off(i.imm)}"
            if i.src == op.BPF_PSEUDO_KFUNC_CALL:
                return head + f"call kernel-function#{i.imm}"
            return head + f"call {helper_name(i.imm)}#{i.imm}"
        if o == op.BPF_EXIT:
            return head + "exit"
        if o == op.BPF_JA:
            if cls == op.BPF_JMP32:
                return head + f"gotol pc{_off(i.imm)}"
            return head + f"goto pc{_off(i.off)}"
        if o == op.BPF_JCOND:
            return head + f"may_goto pc{_off(i.off)}"
        r = "w" if cls == op.BPF_JMP32 else "r"
        rhs = f"{r}{i.src}" if op.BPF_SRC(i.code) == op.BPF_X else _u32hex(i.imm)
        return head + f"if {r}{i.dst} {_JMP.get(o, '?')} {rhs} goto pc{_off(i.off)}"
    return head + "(bad)"


def align_state(head: str) -> str:
    """Pad an instruction line so that the ``;`` of its state annotation lands where the kernel puts it."""
    col = 38
    while col < len(head) + 3:
        col += 8
    return head + " " * (col - len(head)) + ";"


def annotate_insn(env: Env, pc: int, line_idx: int) -> None:
    """print_insn_state(): after an instruction, the registers and stack slots it touched."""
    i = env.insns[pc]
    cls = op.BPF_CLASS(i.code)
    o = op.BPF_OP(i.code)
    regs: set[int] = set()
    slots: list[int] = []
    f = env.state.cur
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        regs.add(i.dst)
        if op.BPF_SRC(i.code) == op.BPF_X and o not in (op.BPF_NEG, op.BPF_END):
            regs.add(i.src)
    elif cls == op.BPF_LDX:
        regs |= {i.dst, i.src}
    elif cls in (op.BPF_ST, op.BPF_STX):
        regs.add(i.dst)
        if cls == op.BPF_STX:
            regs.add(i.src)
        base = f.regs[i.dst]
        if base.type == T.PTR_TO_STACK and base.var_off[1] == 0 and base.frameno == f.frameno:
            a = base.off + i.off + (base.var_off[0] - (1 << 64) if base.var_off[0] >> 63 else base.var_off[0])
            slots.append(a & ~7)
    elif cls == op.BPF_LD:
        regs.add(i.dst if i.code == op.LD_IMM64 else 0)
    elif cls in (op.BPF_JMP, op.BPF_JMP32):
        if o == op.BPF_CALL and i.src != op.BPF_PSEUDO_CALL:
            regs.add(0)
        elif o not in (op.BPF_CALL, op.BPF_EXIT, op.BPF_JA, op.BPF_JCOND):
            regs.add(i.dst)
            if op.BPF_SRC(i.code) == op.BPF_X:
                regs.add(i.src)
    if not regs and not slots:
        return
    text = state_str(f, sorted(regs), slots)
    if env.state.refs:
        text += " refs=" + ",".join(str(r.id) for r in env.state.refs)
    if not text:
        return
    if line_idx < len(env.log.lines):
        env.log.lines[line_idx] = align_state(env.log.lines[line_idx]) + " " + text
