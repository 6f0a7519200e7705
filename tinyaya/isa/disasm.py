"""Disassembler: instruction slots to text.

Two syntaxes:

* ``style="llvm"`` (default) prints LLVM's BPF assembly exactly as
  llvm-objdump-19 does (llvm/lib/Target/BPF/BPFInstrInfo.td and
  BPFInstPrinter.cpp): ``r1 = *(u32 *)(r1 + 0x8)``, ``if r1 > r2 goto +0x3``,
  ``lock *(u64 *)(r1 + 0x0) += r2``. Immediates and offsets are signed hex.
  The default ``mcpu="generic"`` reproduces plain ``llvm-objdump-19 -d``, whose
  decoder has no ALU32 feature: it reads a 32-bit BPF_ATOMIC as the legacy
  ``lock *(u32 *)(rX + off) += rY`` whatever its operation (or ``<unknown>``).
  ``mcpu="v3"``/``"v4"`` reproduce ``llvm-objdump-19 -d --mcpu=v4``: every
  atomic decoded, and w registers for sub-64-bit loads and stores
  (``w1 = *(u32 *)(r1 + 0x8)``). Use ``mcpu="v4"`` for diagnostics.
  What LLVM cannot decode prints ``<unknown>``, as llvm-objdump does.
  ``lossless=True`` adds the fields LLVM leaves out: the imm of an LD_IND
  (``r0 = *(u32 *)skb[r1 + 0x4]``), as a fourth ``ld_pseudo`` operand the
  second slot's imm (the map-value offset of BPF_PSEUDO_MAP_VALUE), and the
  kind of a bpf-to-bpf or kfunc call (``call local -0x2``, ``call kfunc 0x5``).

* ``style="conformance"`` prints the bpf_conformance suite's assembler syntax
  (Alan-Jowett/bpf_conformance ``src/bpf_assembler.cc``; the same as uBPF's):
  ``mov %r0, 1``, ``jgt %r1, %r2, +3``, ``ldxw %r0, [%r1+4]``, ``be16 %r0``,
  ``lock fetch add32 [%r10-4], %r1``. Instructions the suite has no syntax for
  use uBPF's (``ldabsw 0x4``, ``ldindw %r1, 0x4``) or small extensions
  (``may_goto +3``, ``lddw %r1, map_fd(5)``); ``tinyaya.isa.asm`` reads all of them.

* ``style="kernel"`` prints what Linux's verifier log and ``bpftool prog dump
  xlated`` show (kernel/bpf/disasm.c print_bpf_insn): ``(b7) r0 = 1``,
  ``(85) call bpf_map_lookup_elem#1``, ``(2d) if r1 > r2 goto pc+3``.

A program counter is a slot index; a ``ld_imm64`` takes two slots and is
printed at its first slot.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from . import opcodes as op
from .insn import Insn
from .kdisasm import HelperName, kernel_insn

Style = Literal["llvm", "conformance", "kernel"]
Symbolize = Callable[[int, Insn], "str | None"]
TargetLabel = Callable[[int], "str | None"]

UNKNOWN = "<unknown>"
_NO_ALU32_CPUS = frozenset({"generic", "v1", "v2"})

_PSEUDO_NAMES: dict[int, str] = {
    op.BPF_PSEUDO_MAP_FD: "map_fd",
    op.BPF_PSEUDO_MAP_VALUE: "map_value",
    op.BPF_PSEUDO_BTF_ID: "btf_id",
    op.BPF_PSEUDO_FUNC: "func",
    op.BPF_PSEUDO_MAP_IDX: "map_idx",
    op.BPF_PSEUDO_MAP_IDX_VALUE: "map_idx_value",
}
"""Conformance-style spelling of the ld_imm64 pseudo sources (uapi bpf.h)."""


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _s64(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v & (1 << 63) else v


def _hex(v: int) -> str:
    """LLVM's signed hex: ``0x8``, ``-0x8``."""
    return f"-0x{-v:x}" if v < 0 else f"0x{v:x}"


def _rel(v: int) -> str:
    """LLVM's branch displacement: ``+0x3``, ``-0x3``, ``+0x0``."""
    return f"-0x{-v:x}" if v < 0 else f"+0x{v:x}"


def _mem(reg: int, off: int) -> str:
    return f"(r{reg} - {_hex(-off)})" if off < 0 else f"(r{reg} + {_hex(off)})"


def insn_slots(insns: list[Insn], pc: int) -> int:
    """Slots taken by the instruction at ``pc``: 2 for a complete ld_imm64, else 1."""
    return 2 if insns[pc].code == op.LD_IMM64 and pc + 1 < len(insns) else 1


def jump_target(insns: list[Insn], pc: int) -> int | None:
    """The slot a jump or pc-relative call at ``pc`` goes to, or None for other instructions."""
    insn = insns[pc]
    cls, code = op.BPF_CLASS(insn.code), insn.code
    if cls == op.BPF_JMP32 and op.BPF_OP(code) == op.BPF_JA:
        return pc + 1 + insn.imm
    if cls not in (op.BPF_JMP, op.BPF_JMP32):
        return None
    o = op.BPF_OP(code)
    if o == op.BPF_CALL:
        return pc + 1 + insn.imm if cls == op.BPF_JMP and insn.src == op.BPF_PSEUDO_CALL and op.BPF_SRC(code) == op.BPF_K else None
    if o == op.BPF_EXIT:
        return None
    return pc + 1 + insn.off


# --------------------------------------------------------------------------- LLVM syntax
#
# The decoding rules below mirror LLVM 19's BPF decoder (the fixed bits of each
# instruction in BPFInstrInfo.td), verified against llvm-objdump-19 over every
# opcode byte (tests/fixtures/isa/encodings): a field that is not an operand is
# ignored, except that ALU operations need off == 0 (off selects sdiv/smod and
# movsx), exit needs imm == 0, and a register operand must be r0..r11.

_LLVM_MAX_REG = 11


def _regs_ok(*regs: int) -> bool:
    return all(r <= _LLVM_MAX_REG for r in regs)


def _llvm_alu(insn: Insn) -> str:
    cls, code = op.BPF_CLASS(insn.code), insn.code
    o, x = op.BPF_OP(code), op.BPF_SRC(code) == op.BPF_X
    p = "r" if cls == op.BPF_ALU64 else "w"
    d = f"{p}{insn.dst}"
    src = f"{p}{insn.src}" if x else _hex(insn.imm)
    if not _regs_ok(insn.dst) or (x and o not in (op.BPF_NEG, op.BPF_END) and not _regs_ok(insn.src)):
        return UNKNOWN
    if o == op.BPF_END:
        if (cls == op.BPF_ALU64 and x) or insn.imm not in op.END_WIDTHS:
            return UNKNOWN
        kind = "bswap" if cls == op.BPF_ALU64 else ("be" if x else "le")
        return f"r{insn.dst} = {kind}{insn.imm} r{insn.dst}"
    if o == op.BPF_NEG:
        return UNKNOWN if x else f"{d} = -{d}"
    if o == op.BPF_MOV:
        if x and cls == op.BPF_ALU64 and insn.off == op.BPF_ADDR_SPACE_CAST_OFF:
            return f"{d} = addr_space_cast({p}{insn.src}, {_hex((insn.imm >> 16) & 0xFFFF)}, {_hex(insn.imm & 0xFFFF)})"
        if x and insn.off:
            if insn.off not in op.MOVSX_OFFS[cls]:
                return UNKNOWN
            return f"{d} = (s{insn.off}){p}{insn.src}"
        return UNKNOWN if insn.off else f"{d} = {src}"
    if o in (op.BPF_DIV, op.BPF_MOD):
        if insn.off not in (0, op.SIGNED_ALU_OFF):
            return UNKNOWN
        return f"{d} {'s' if insn.off else ''}{op.ALU_OP_SYMBOLS[o]} {src}"
    sym = op.ALU_OP_SYMBOLS.get(o)
    if sym is None or insn.off:
        return UNKNOWN
    return f"{d} {sym} {src}"


_CALL_KINDS = {op.BPF_PSEUDO_CALL: "local", op.BPF_PSEUDO_KFUNC_CALL: "kfunc"}


def _llvm_jmp(insn: Insn, pc: int, target_label: TargetLabel | None, lossless: bool) -> str:
    cls, code = op.BPF_CLASS(insn.code), insn.code
    o, x = op.BPF_OP(code), op.BPF_SRC(code) == op.BPF_X

    def label(text: str, delta: int) -> str:
        if target_label is None:
            return text
        name = target_label(pc + 1 + delta)
        return f"{text} <{name}>" if name else text

    if o == op.BPF_JA:
        if x:
            return UNKNOWN
        if cls == op.BPF_JMP32:
            return label(f"gotol {_rel(insn.imm)}", insn.imm)
        return label(f"goto {_rel(insn.off)}", insn.off)
    if o in (op.BPF_CALL, op.BPF_EXIT, op.BPF_JCOND):
        if cls != op.BPF_JMP:
            return UNKNOWN
        if o == op.BPF_CALL:
            if not x:
                if lossless and insn.src in _CALL_KINDS:
                    return f"call {_CALL_KINDS[insn.src]} {_hex(insn.imm)}"
                return f"call {_hex(insn.imm)}"
            return f"callx r{insn.dst}" if _regs_ok(insn.dst) else UNKNOWN
        if x:
            return UNKNOWN
        if o == op.BPF_EXIT:
            return "exit" if insn.imm == 0 else UNKNOWN
        return label(f"may_goto {_rel(insn.off)}", insn.off)
    sym = op.JMP_COND_SYMBOLS.get(o)
    if sym is None or not _regs_ok(insn.dst) or (x and not _regs_ok(insn.src)):
        return UNKNOWN
    p = "r" if cls == op.BPF_JMP else "w"
    src = f"{p}{insn.src}" if x else _hex(insn.imm)
    return label(f"if {p}{insn.dst} {sym} {src} goto {_rel(insn.off)}", insn.off)


def _llvm_atomic(insn: Insn, size: int, alu32: bool) -> str:
    """LLVM decodes only imm bits 0-7: bits 4-7 the operation, bit 0 BPF_FETCH."""
    if size not in (op.BPF_W, op.BPF_DW) or not _regs_ok(insn.dst, insn.src):
        return UNKNOWN
    w = 64 if size == op.BPF_DW else 32
    imm = insn.imm & 0xFF
    base, fetch = imm & 0xF0, (imm & 0xF) == op.BPF_FETCH
    addr = _mem(insn.dst, insn.off)
    if w == 32 and not alu32:
        # Without ALU32 LLVM knows only the legacy XADDW, whatever the low bits.
        return f"lock *(u32 *){addr} += r{insn.src}" if base == op.BPF_ADD else UNKNOWN
    p = "r" if w == 64 else "w"
    xw = "" if w == 64 else "32"
    if fetch and imm == op.BPF_XCHG:
        return f"{p}{insn.src} = xchg{xw}_{w}({addr[1:-1]}, {p}{insn.src})"
    if fetch and imm == op.BPF_CMPXCHG:
        return f"{p}0 = cmpxchg{xw}_{w}({addr[1:-1]}, {p}0, {p}{insn.src})"
    if base not in op.ATOMIC_ALU_OPS:
        return UNKNOWN
    if fetch:
        return f"{p}{insn.src} = atomic_fetch_{op.ALU_OP_NAMES[base]}((u{w} *){addr}, {p}{insn.src})"
    return f"lock *(u{w} *){addr} {op.ALU_OP_SYMBOLS[base]} {p}{insn.src}"


def _llvm_ld_imm64_ok(insns: list[Insn], pc: int) -> bool:
    lo = insns[pc]
    return pc + 1 < len(insns) and lo.off == 0 and _regs_ok(lo.dst)


def _llvm_ld_imm64(insns: list[Insn], pc: int, symbolize: Symbolize | None, lossless: bool) -> str:
    if not _llvm_ld_imm64_ok(insns, pc):
        return UNKNOWN
    lo, hi = insns[pc], insns[pc + 1]
    if symbolize is not None:
        name = symbolize(pc, lo)
        if name is not None:
            # The hook returns the immediate's text ("map[id:3:events]"), or a whole instruction
            # ("r1 = map[events] ll"), which is printed as it is.
            return name if " = " in name else f"r{lo.dst} = {name} ll"
    if lo.src == 0:
        value = _s64(((hi.imm & 0xFFFFFFFF) << 32) | (lo.imm & 0xFFFFFFFF))
        return f"r{lo.dst} = {_hex(value)} ll"
    # ld_pseudo's immediates are printed unsigned.
    text = f"ld_pseudo\tr{lo.dst}, {_hex(lo.src)}, {_hex(lo.imm & 0xFFFFFFFF)}"
    return f"{text}, {_hex(hi.imm & 0xFFFFFFFF)}" if hi.imm and lossless else text


_WIDTH = {op.BPF_W: "32", op.BPF_H: "16", op.BPF_B: "8", op.BPF_DW: "64"}


def _llvm(
    insns: list[Insn], pc: int, symbolize: Symbolize | None, mcpu: str, target_label: TargetLabel | None, lossless: bool
) -> str:
    insn = insns[pc]
    code = insn.code
    cls, size, mode = op.BPF_CLASS(code), op.BPF_SIZE(code), op.BPF_MODE(code)
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        return _llvm_alu(insn)
    if cls in (op.BPF_JMP, op.BPF_JMP32):
        return _llvm_jmp(insn, pc, target_label, lossless)
    alu32 = mcpu not in _NO_ALU32_CPUS
    width = _WIDTH[size]
    # With ALU32, LLVM reads sub-64-bit loads and stores as w-register forms.
    sub = "w" if alu32 and size != op.BPF_DW else "r"
    if cls == op.BPF_LD:
        if code == op.LD_IMM64:
            return _llvm_ld_imm64(insns, pc, symbolize, lossless)
        if size == op.BPF_DW:
            return UNKNOWN
        if mode == op.BPF_ABS:
            return f"r0 = *(u{width} *)skb[{_hex(insn.imm)}]"
        if mode == op.BPF_IND and _regs_ok(insn.src):
            extra = f" {'-' if insn.imm < 0 else '+'} {_hex(abs(insn.imm))}" if insn.imm and lossless else ""
            return f"r0 = *(u{width} *)skb[r{insn.src}{extra}]"
        return UNKNOWN
    if cls == op.BPF_ST:
        if mode != op.BPF_MEM or not _regs_ok(insn.dst):
            return UNKNOWN
        return f"*(u{width} *){_mem(insn.dst, insn.off)} = {_hex(insn.imm)}"
    if cls == op.BPF_STX and mode == op.BPF_ATOMIC:
        return _llvm_atomic(insn, size, alu32)
    if not _regs_ok(insn.dst, insn.src):
        return UNKNOWN
    if cls == op.BPF_LDX:
        if mode == op.BPF_MEM:
            return f"{sub}{insn.dst} = *(u{width} *){_mem(insn.src, insn.off)}"
        if mode == op.BPF_MEMSX and size != op.BPF_DW:
            return f"r{insn.dst} = *(s{width} *){_mem(insn.src, insn.off)}"
        return UNKNOWN
    if mode == op.BPF_MEM:  # BPF_STX
        return f"*(u{width} *){_mem(insn.dst, insn.off)} = {sub}{insn.src}"
    return UNKNOWN


# --------------------------------------------------------------------------- conformance syntax


def _c_imm(v: int) -> str:
    """The suite disassembler's immediate: small or negative in decimal, else unsigned hex."""
    if (v < 0 and v != -(1 << 31)) or -10 <= v <= 10:
        return str(v)
    return f"0x{v & 0xFFFFFFFF:x}"


def _c_rel(v: int) -> str:
    return f"+{v}" if v >= 0 else str(v)


def _c_mem(reg: int, off: int) -> str:
    if off == 0:
        return f"[%r{reg}]"
    return f"[%r{reg}{'+' if off > 0 else ''}{off}]"


def _conformance(insns: list[Insn], pc: int) -> str:
    insn = insns[pc]
    code = insn.code
    cls, size, mode = op.BPF_CLASS(code), op.BPF_SIZE(code), op.BPF_MODE(code)
    o, x = op.BPF_OP(code), op.BPF_SRC(code) == op.BPF_X
    sfx = op.SIZE_SUFFIXES[size]
    d = f"%r{insn.dst}"
    if cls in (op.BPF_ALU, op.BPF_ALU64):
        w = "" if cls == op.BPF_ALU64 else "32"
        if o == op.BPF_END:
            kind = "swap" if cls == op.BPF_ALU64 else ("be" if x else "le")
            return f"{kind}{insn.imm} {d}"
        if o == op.BPF_NEG:
            return f"neg{w} {d}"
        if o == op.BPF_MOV and x and cls == op.BPF_ALU64 and insn.off == op.BPF_ADDR_SPACE_CAST_OFF:
            return f"addr_space_cast {d}, %r{insn.src}, {(insn.imm >> 16) & 0xFFFF}, {insn.imm & 0xFFFF}"
        if o == op.BPF_MOV and x and insn.off:
            return f"movsx{insn.off}{'64' if cls == op.BPF_ALU64 else '32'} {d}, %r{insn.src}"
        name = op.ALU_OP_NAMES.get(o, "unknown_alu")
        if o in (op.BPF_DIV, op.BPF_MOD) and insn.off == op.SIGNED_ALU_OFF:
            name = "s" + name
        return f"{name}{w} {d}, {f'%r{insn.src}' if x else _c_imm(insn.imm)}"
    if cls in (op.BPF_JMP, op.BPF_JMP32):
        if code == op.BPF_JMP32 | op.BPF_JA:
            return f"ja32 {_c_rel(insn.imm)}"
        if code == op.BPF_JMP | op.BPF_JA:
            return f"ja {_c_rel(insn.off)}"
        if code == op.BPF_JMP | op.BPF_EXIT:
            return "exit"
        if code == op.BPF_JMP | op.BPF_CALL | op.BPF_X:
            return f"call %r{insn.dst}"
        if code == op.BPF_JMP | op.BPF_CALL:
            if insn.src == op.BPF_PSEUDO_CALL:
                return f"call local {_c_rel(insn.imm)}"
            if insn.src == op.BPF_PSEUDO_KFUNC_CALL:
                return f"call runtime {_c_imm(insn.imm)}"
            return f"call {_c_imm(insn.imm)}"
        if code == op.BPF_JMP | op.BPF_JCOND:
            return f"may_goto {_c_rel(insn.off)}"
        name = op.JMP_COND_NAMES.get(o, "junknown") + ("32" if cls == op.BPF_JMP32 else "")
        return f"{name} {d}, {f'%r{insn.src}' if x else _c_imm(insn.imm)}, {_c_rel(insn.off)}"
    if cls == op.BPF_LD:
        if code == op.LD_IMM64 and pc + 1 < len(insns):
            hi = insns[pc + 1]
            if insn.src == 0:
                return f"lddw {d}, 0x{((hi.imm & 0xFFFFFFFF) << 32) | (insn.imm & 0xFFFFFFFF):x}"
            pseudo = _PSEUDO_NAMES.get(insn.src)
            if pseudo is None:
                return f"lddw {d}, pseudo({insn.src}, {_c_imm(insn.imm)}, {_c_imm(hi.imm)})"
            first = _c_rel(insn.imm) if insn.src == op.BPF_PSEUDO_FUNC else _c_imm(insn.imm)
            args = first + (f", {_c_imm(hi.imm)}" if hi.imm else "")
            return f"lddw {d}, {pseudo}({args})"
        if mode == op.BPF_ABS:
            return f"ldabs{sfx} {_c_imm(insn.imm)}"
        if mode == op.BPF_IND:
            return f"ldind{sfx} %r{insn.src}, {_c_imm(insn.imm)}"
        return f"unknown 0x{code:x}"
    if cls == op.BPF_LDX:
        return f"ldx{'s' if mode == op.BPF_MEMSX else ''}{sfx} {d}, {_c_mem(insn.src, insn.off)}"
    if cls == op.BPF_ST:
        return f"st{sfx} {_c_mem(insn.dst, insn.off)}, {_c_imm(insn.imm)}"
    if mode == op.BPF_ATOMIC:
        w = "32" if size == op.BPF_W else ""
        mem = f"{_c_mem(insn.dst, insn.off)}, %r{insn.src}"
        if insn.imm == op.BPF_XCHG:
            return f"lock xchg{w} {mem}"
        if insn.imm == op.BPF_CMPXCHG:
            return f"lock cmpxchg{w} {mem}"
        fetch = "fetch " if insn.imm & op.BPF_FETCH else ""
        name = op.ALU_OP_NAMES.get(insn.imm & ~op.BPF_FETCH, "unknown")
        return f"lock {fetch}{name}{w} {mem}"
    return f"stx{sfx} {_c_mem(insn.dst, insn.off)}, %r{insn.src}"


# --------------------------------------------------------------------------- public API


def disasm_insn(
    insns: list[Insn],
    pc: int,
    *,
    symbolize: Symbolize | None = None,
    style: Style = "llvm",
    mcpu: str = "generic",
    target_label: TargetLabel | None = None,
    lossless: bool = False,
    helper_name: HelperName | None = None,
) -> str:
    """Text of the instruction at slot ``pc``.

    ``symbolize(pc, insn)`` may return a name to print instead of a ld_imm64's
    immediate (``events`` gives ``r1 = events ll``; a text containing `` = `` is
    taken as the whole instruction); ``target_label(slot)`` may return the text
    llvm-objdump puts in ``<...>`` after a jump (``goto +0x3 <LBB0_2>``).
    ``lossless=True`` prints the fields LLVM drops (see the module doc).
    ``style="kernel"`` prints Linux's print_bpf_insn() text (``(b7) r0 = 1``, see
    ``tinyaya.isa.kdisasm``); ``helper_name(id)`` names helper calls there and
    ``symbolize`` gives the text after ``rN = `` of a ld_imm64.
    """
    if style == "conformance":
        return _conformance(insns, pc)
    if style == "kernel":
        return kernel_insn(insns, pc, symbolize=symbolize, helper_name=helper_name)
    return _llvm(insns, pc, symbolize, mcpu, target_label, lossless)


def disasm_lines(
    insns: list[Insn],
    *,
    symbolize: Symbolize | None = None,
    style: Style = "llvm",
    mcpu: str = "generic",
    target_label: TargetLabel | None = None,
    lossless: bool = False,
    helper_name: HelperName | None = None,
) -> list[tuple[int, str]]:
    """``(pc, text)`` per instruction; the second slot of a ld_imm64 has no line."""
    out: list[tuple[int, str]] = []
    pc = 0
    while pc < len(insns):
        out.append((pc, disasm_insn(
            insns, pc, symbolize=symbolize, style=style, mcpu=mcpu, target_label=target_label, lossless=lossless,
            helper_name=helper_name,
        )))
        if style == "llvm" and insns[pc].code == op.LD_IMM64 and not _llvm_ld_imm64_ok(insns, pc):
            pc += 1  # llvm-objdump steps over an undecodable first slot alone
        else:
            pc += insn_slots(insns, pc)
    return out


def disasm(
    insns: list[Insn],
    *,
    symbolize: Symbolize | None = None,
    style: Style = "llvm",
    mcpu: str = "generic",
    target_label: TargetLabel | None = None,
    lossless: bool = False,
    helper_name: HelperName | None = None,
) -> list[str]:
    """One line of text per instruction (a ld_imm64 is one line for its two slots)."""
    return [t for _, t in disasm_lines(
        insns, symbolize=symbolize, style=style, mcpu=mcpu, target_label=target_label, lossless=lossless,
        helper_name=helper_name,
    )]
