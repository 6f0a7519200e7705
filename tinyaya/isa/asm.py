"""Assembler: text to instruction slots.

It reads, line by line and mixed freely, the two syntaxes that
``tinyaya.isa.disasm`` prints:

* the bpf_conformance suite's syntax (Alan-Jowett/bpf_conformance
  ``src/bpf_assembler.cc``, shared with uBPF's ``ubpf/assembler.py``):
  ``mov %r0, 1``, ``jne %r1, 0x5, fail``, ``ldxw %r0, [%r1+4]``,
  ``lock fetch add32 [%r10-4], %r1``, ``call local func1``, ``call %r2``;
  plus uBPF's ``ldabsw``/``ldindw`` and the extensions printed by the
  disassembler (``may_goto +3``, ``lddw %r1, map_fd(5)``, ``addr_space_cast``);
* LLVM's BPF syntax as printed by llvm-objdump-19: ``r1 = *(u32 *)(r1 + 0x8)``,
  ``if w1 s> 0x5 goto -0x3``, ``lock *(u64 *)(r1 + 0x0) += r2``, ``r1 = 0x1 ll``,
  ``ld_pseudo r1, 0x1, 0x5``. A trailing ``<sym+0x10>`` annotation and the
  address and hex-byte columns of an llvm-objdump line (``  3:\tb7 01 ...\t``)
  are ignored, so instruction lines of a dump can be pasted as they are;
* the kernel's syntax (kernel/bpf/disasm.c, the verifier log): ``12: (b7) r0 = 1``,
  ``goto pc+3``, ``call bpf_map_lookup_elem#1``, ``call pc+2``,
  ``r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r2)``; the ``(18)`` opcode of a
  ld_imm64 line marks its ``r1 = 0x5`` as a 64-bit load.

Labels (``name:``) may be used as jump and local-call targets; as in the
conformance assembler, the first ``exit`` is also the label ``exit``. Comments
start with ``#``, ``;`` or ``//``.

Immediates follow the conformance assembler's ranges, which reject what does
not fit the field: a 32-bit immediate is a signed decimal (-2**31 .. 2**31-1)
or a hex number up to 0xffffffff; a 16-bit offset a signed decimal or hex up
to 0xffff. Every problem is an ``AsmError`` naming the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import opcodes as op
from .insn import Insn


class AsmError(ValueError):
    """A line that does not assemble. ``line_no`` is 1-based."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no
        self.message = message


class _LineError(Exception):
    """Raised inside one line's parser; assemble() attaches the line number."""


# --------------------------------------------------------------------------- numbers and registers

_NUM = r"[+-]?(?:0[xX][0-9a-fA-F]+|\d+)"
_REG = r"%?[rw]\d+"
_LABEL_RE = re.compile(r"^[A-Za-z_.$][\w.$]*$")


def _int(text: str, what: str = "number") -> tuple[int, bool]:
    """Parse a signed decimal or hex number; returns (value, was_hex)."""
    t = text.strip()
    if not re.fullmatch(_NUM, t):
        raise _LineError(f"invalid {what}: {text!r}")
    neg = t.startswith("-")
    body = t.lstrip("+-")
    is_hex = body[:2].lower() == "0x"
    value = int(body, 16 if is_hex else 10)
    return (-value if neg else value), is_hex


def _imm32(text: str) -> int:
    value, is_hex = _int(text, "immediate")
    hi = 0xFFFFFFFF if is_hex else 0x7FFFFFFF
    if not -(1 << 31) <= value <= hi:
        raise _LineError(f"immediate out of 32-bit range: {text}")
    return value - (1 << 32) if value >= 1 << 31 else value


def _imm64(text: str) -> int:
    value, _ = _int(text, "immediate")
    if not -(1 << 63) <= value < 1 << 64:
        raise _LineError(f"immediate out of 64-bit range: {text}")
    return value & 0xFFFFFFFFFFFFFFFF


def _off16(text: str) -> int:
    value, is_hex = _int(text, "offset")
    hi = 0xFFFF if is_hex else 0x7FFF
    if not -(1 << 15) <= value <= hi:
        raise _LineError(f"offset out of 16-bit range: {text}")
    return value - (1 << 16) if value >= 1 << 15 else value


def _reg(text: str, width: str | None = None) -> int:
    """``r3``, ``%r3`` or ``w3``; ``width`` ("r"/"w") requires that spelling."""
    m = re.fullmatch(r"%?([rw])(\d+)", text.strip())
    if not m or int(m.group(2)) > 15:
        raise _LineError(f"invalid register: {text}")
    if width is not None and m.group(1) != width:
        raise _LineError(f"expected a {'64' if width == 'r' else '32'}-bit register, got {text}")
    return int(m.group(2))


def _width(text: str) -> str:
    return text.strip().lstrip("%")[0]


# --------------------------------------------------------------------------- pending jumps


@dataclass
class _Fixup:
    pc: int
    label: str
    field: str  # "off" or "imm"
    line_no: int


class _Program:
    def __init__(self) -> None:
        self.insns: list[Insn] = []
        self.labels: dict[str, int] = {}
        self.fixups: list[_Fixup] = []
        self.line_no = 0

    def target(self, text: str, field: str) -> int:
        """A jump target: a signed displacement, or a label resolved at the end."""
        t = text.strip()
        if re.fullmatch(r"pc[+-]\d+", t):  # the kernel's "goto pc+3"
            t = t[2:]
        if t[:1] in "+-" or t[:1].isdigit():
            return _off16(t) if field == "off" else _imm32(t)
        if not _LABEL_RE.match(t):
            raise _LineError(f"invalid jump target: {text}")
        self.fixups.append(_Fixup(len(self.insns), t, field, self.line_no))
        return 0


# --------------------------------------------------------------------------- LLVM syntax

_R = r"(%?[rw]\d+)"
_N = f"({_NUM})"
_MEM = rf"\((%?r\d+)\s*([+-])\s*({_NUM})\)"
_SIZE_BY_BITS = {"8": op.BPF_B, "16": op.BPF_H, "32": op.BPF_W, "64": op.BPF_DW}
_ALU_BY_SYMBOL = {sym: o for o, sym in op.ALU_OP_SYMBOLS.items()}
_JMP_BY_SYMBOL = {sym: o for o, sym in op.JMP_COND_SYMBOLS.items()}
_ATOMIC_BY_SYMBOL = {"+": op.BPF_ADD, "|": op.BPF_OR, "&": op.BPF_AND, "^": op.BPF_XOR}
_ATOMIC_BY_NAME = {op.ALU_OP_NAMES[o]: o for o in op.ATOMIC_ALU_OPS}


def _mem_off(sign: str, num: str) -> int:
    return _off16(("-" if sign == "-" else "") + num.lstrip("+"))


def _src_operand(text: str, width: str) -> tuple[int, int, int]:
    """(BPF_K/BPF_X, src, imm) for a register-or-immediate operand."""
    if re.fullmatch(_REG, text):
        return op.BPF_X, _reg(text, width), 0
    return op.BPF_K, 0, _imm32(text)


def _llvm_line(line: str, prog: _Program) -> list[Insn] | None:
    """Parse one LLVM-syntax instruction, or return None if the line is not LLVM syntax."""
    m = re.fullmatch(rf"{_R}\s*=\s*(\S+)\s+ll", line)
    if m:
        dst = _reg(m.group(1), "r")
        if not re.fullmatch(_NUM, m.group(2)):
            raise _LineError(f"unresolved symbol in ld_imm64: {m.group(2)}")
        v = _imm64(m.group(2))
        return _ld_imm64(dst, 0, v & 0xFFFFFFFF, v >> 32)
    m = re.fullmatch(rf"ld_pseudo\s+{_R}\s*,\s*{_N}\s*,\s*{_N}(?:\s*,\s*{_N})?", line)
    if m:
        src = _int(m.group(2), "pseudo source")[0]
        if not 0 <= src <= 15:
            raise _LineError(f"invalid pseudo source: {m.group(2)}")
        return _ld_imm64(_reg(m.group(1), "r"), src, _imm32(m.group(3)), _imm32(m.group(4)) if m.group(4) else 0)
    m = re.fullmatch(rf"{_R}\s*=\s*\*\(([us])(8|16|32|64) \*\)\s*{_MEM}", line)
    if m:
        w, signed, bits = _width(m.group(1)), m.group(2) == "s", m.group(3)
        if (w == "w" and (bits == "64" or signed)) or (signed and bits == "64"):
            raise _LineError(f"invalid load: {line}")
        mode = op.BPF_MEMSX if signed else op.BPF_MEM
        return [Insn(op.BPF_LDX | mode | _SIZE_BY_BITS[bits], _reg(m.group(1)), _reg(m.group(4), "r"),
                     _mem_off(m.group(5), m.group(6)))]
    m = re.fullmatch(rf"r0\s*=\s*\*\(u(8|16|32) \*\)skb\[\s*(?:{_N}|(%?r\d+)(?:\s*([+-])\s*({_NUM}))?)\s*\]", line)
    if m:
        size = _SIZE_BY_BITS[m.group(1)]
        if m.group(2) is not None:
            return [Insn(op.BPF_LD | op.BPF_ABS | size, 0, 0, 0, _imm32(m.group(2)))]
        imm = _imm32(("-" if m.group(4) == "-" else "") + m.group(5).lstrip("+")) if m.group(5) else 0
        return [Insn(op.BPF_LD | op.BPF_IND | size, 0, _reg(m.group(3), "r"), 0, imm)]
    m = re.fullmatch(rf"\*\(u(8|16|32|64) \*\)\s*{_MEM}\s*=\s*(\S+)", line)
    if m:
        size, dst, off = _SIZE_BY_BITS[m.group(1)], _reg(m.group(2), "r"), _mem_off(m.group(3), m.group(4))
        if re.fullmatch(_REG, m.group(5)):
            if _width(m.group(5)) == "w" and size == op.BPF_DW:
                raise _LineError(f"a 64-bit store needs an r register: {line}")
            return [Insn(op.BPF_STX | op.BPF_MEM | size, dst, _reg(m.group(5)), off)]
        return [Insn(op.BPF_ST | op.BPF_MEM | size, dst, 0, off, _imm32(m.group(5)))]
    m = re.fullmatch(rf"lock\s+\*\(u(32|64) \*\)\s*{_MEM}\s*([+|&^])=\s*{_R}", line)
    if m:
        size = _SIZE_BY_BITS[m.group(1)]
        _atomic_width(size, m.group(6))
        return [Insn(op.BPF_STX | op.BPF_ATOMIC | size, _reg(m.group(2), "r"), _reg(m.group(6)),
                     _mem_off(m.group(3), m.group(4)), _ATOMIC_BY_SYMBOL[m.group(5)])]
    m = re.fullmatch(rf"{_R}\s*=\s*atomic(?:64)?_fetch_(add|or|and|xor)\(\(u(32|64) \*\)\s*{_MEM}\s*,\s*{_R}\)", line)
    if m:
        size = _SIZE_BY_BITS[m.group(3)]
        _same_reg(m.group(1), m.group(7))
        _atomic_width(size, m.group(7))
        return [Insn(op.BPF_STX | op.BPF_ATOMIC | size, _reg(m.group(4), "r"), _reg(m.group(7)),
                     _mem_off(m.group(5), m.group(6)), _ATOMIC_BY_NAME[m.group(2)] | op.BPF_FETCH)]
    m = re.fullmatch(rf"{_R}\s*=\s*(xchg|cmpxchg)(32_32|_64)\(\s*(%?r\d+)\s*([+-])\s*({_NUM})\s*,(.*)\)", line)
    if m:
        size = op.BPF_DW if m.group(3) == "_64" else op.BPF_W
        w = "r" if size == op.BPF_DW else "w"
        args = [a.strip() for a in m.group(7).split(",")]
        if m.group(2) == "xchg":
            if len(args) != 1:
                raise _LineError(f"xchg takes one register: {line}")
            _same_reg(m.group(1), args[0])
            imm = op.BPF_XCHG
        else:
            if len(args) != 2 or _reg(m.group(1), w) != 0 or _reg(args[0], w) != 0:
                raise _LineError(f"cmpxchg compares with r0: {line}")
            imm = op.BPF_CMPXCHG
        return [Insn(op.BPF_STX | op.BPF_ATOMIC | size, _reg(m.group(4), "r"), _reg(args[-1], w),
                     _mem_off(m.group(5), m.group(6)), imm)]
    m = re.fullmatch(rf"{_R}\s*=\s*atomic(?:64)?_(xchg|cmpxchg)\(\(u(32|64) \*\)\s*{_MEM}\s*,(.*)\)", line)
    if m:  # the kernel's spelling: r1 = atomic64_xchg((u64 *)(r10 -8), r1)
        size = _SIZE_BY_BITS[m.group(3)]
        args = [a.strip() for a in m.group(7).split(",")]
        if m.group(2) == "xchg":
            if len(args) != 1:
                raise _LineError(f"xchg takes one register: {line}")
            _same_reg(m.group(1), args[0])
        elif len(args) != 2 or _reg(m.group(1)) != 0 or _reg(args[0]) != 0:
            raise _LineError(f"cmpxchg compares with r0: {line}")
        _atomic_width(size, args[-1])
        return [Insn(op.BPF_STX | op.BPF_ATOMIC | size, _reg(m.group(4), "r"), _reg(args[-1]),
                     _mem_off(m.group(5), m.group(6)), op.BPF_XCHG if m.group(2) == "xchg" else op.BPF_CMPXCHG)]
    m = re.fullmatch(rf"{_R}\s*=\s*(le|be|bswap)(16|32|64)\s+{_R}", line)
    if m:
        _same_reg(m.group(1), m.group(4))
        if m.group(2) == "bswap":
            code = op.BPF_ALU64 | op.BPF_END | op.BPF_TO_LE
        else:
            code = op.BPF_ALU | op.BPF_END | (op.BPF_TO_BE if m.group(2) == "be" else op.BPF_TO_LE)
        return [Insn(code, _reg(m.group(1), "r"), 0, 0, int(m.group(3)))]
    m = re.fullmatch(rf"{_R}\s*=\s*-\s*{_R}", line)
    if m:
        _same_reg(m.group(1), m.group(2))
        return [Insn(_alu_class(m.group(1)) | op.BPF_NEG, _reg(m.group(1)))]
    m = re.fullmatch(rf"{_R}\s*=\s*\(s(8|16|32)\)\s*{_R}", line)
    if m:
        w = _width(m.group(1))
        if int(m.group(2)) not in op.MOVSX_OFFS[_alu_class(m.group(1))]:
            raise _LineError(f"invalid sign extension: {line}")
        return [Insn(_alu_class(m.group(1)) | op.BPF_MOV | op.BPF_X, _reg(m.group(1)), _reg(m.group(3), w),
                     int(m.group(2)))]
    m = re.fullmatch(rf"{_R}\s*=\s*addr_space_cast\(\s*{_R}\s*,\s*{_N}\s*,\s*{_N}\s*\)", line)
    if m:
        return [_addr_space_cast(m.group(1), m.group(2), m.group(3), m.group(4))]
    m = re.fullmatch(rf"{_R}\s*(s/|s%|s>>|<<|>>|[-+*/%|&^])=\s*(\S+)", line)
    if m:
        w = _width(m.group(1))
        sym = m.group(2)
        signed = sym in ("s/", "s%")
        o = _ALU_BY_SYMBOL[(sym[1:] if signed else sym) + "="]
        src_kind, src, imm = _src_operand(m.group(3), w)
        return [Insn(_alu_class(m.group(1)) | o | src_kind, _reg(m.group(1)), src,
                     op.SIGNED_ALU_OFF if signed else 0, imm)]
    m = re.fullmatch(rf"{_R}\s*=\s*(\S+)", line)
    if m:
        src_kind, src, imm = _src_operand(m.group(2), _width(m.group(1)))
        return [Insn(_alu_class(m.group(1)) | op.BPF_MOV | src_kind, _reg(m.group(1)), src, 0, imm)]
    m = re.fullmatch(rf"if\s+{_R}\s*(==|!=|s?[<>]=?|&)\s*(\S+)\s+goto\s+(\S+)", line)
    if m:
        w = _width(m.group(1))
        cls = op.BPF_JMP if w == "r" else op.BPF_JMP32
        src_kind, src, imm = _src_operand(m.group(3), w)
        off = prog.target(m.group(4), "off")
        return [Insn(cls | _JMP_BY_SYMBOL[m.group(2)] | src_kind, _reg(m.group(1)), src, off, imm)]
    m = re.fullmatch(r"(goto|gotol|may_goto)\s+(\S+)", line)
    if m:
        if m.group(1) == "gotol":
            return [Insn(op.BPF_JMP32 | op.BPF_JA, 0, 0, 0, prog.target(m.group(2), "imm"))]
        code = op.BPF_JMP | (op.BPF_JA if m.group(1) == "goto" else op.BPF_JCOND)
        return [Insn(code, 0, 0, prog.target(m.group(2), "off"))]
    m = re.fullmatch(rf"callx\s+{_R}", line)
    if m:
        return [Insn(op.BPF_JMP | op.BPF_CALL | op.BPF_X, _reg(m.group(1), "r"))]
    return None


def _ld_imm64(dst: int, src: int, lo: int, hi: int) -> list[Insn]:
    s32 = lambda v: v - (1 << 32) if v & 0x80000000 else v  # noqa: E731
    return [Insn(op.LD_IMM64, dst, src, 0, s32(lo & 0xFFFFFFFF)), Insn(0, 0, 0, 0, s32(hi & 0xFFFFFFFF))]


def _alu_class(reg_text: str) -> int:
    return op.BPF_ALU64 if _width(reg_text) == "r" else op.BPF_ALU


def _same_reg(a: str, b: str) -> None:
    if a.strip().lstrip("%") != b.strip().lstrip("%"):
        raise _LineError(f"{a} and {b} must be the same register")


def _atomic_width(size: int, reg_text: str) -> None:
    if size == op.BPF_DW and _width(reg_text) != "r":
        raise _LineError(f"a 64-bit atomic needs an r register, got {reg_text}")


def _addr_space_cast(dst: str, src: str, dst_as: str, src_as: str) -> Insn:
    a, b = _int(dst_as, "address space")[0], _int(src_as, "address space")[0]
    if not (0 <= a <= 0xFFFF and 0 <= b <= 0xFFFF):
        raise _LineError("address space out of range")
    imm = (a << 16) | b
    return Insn(op.BPF_ALU64 | op.BPF_MOV | op.BPF_X, _reg(dst, "r"), _reg(src, "r"), op.BPF_ADDR_SPACE_CAST_OFF,
                imm - (1 << 32) if imm >= 1 << 31 else imm)


# --------------------------------------------------------------------------- conformance syntax

_SIZE_BY_SUFFIX = {s: size for size, s in op.SIZE_SUFFIXES.items()}
_ALU_BY_NAME = {name: o for o, name in op.ALU_OP_NAMES.items()}
_JMP_BY_NAME = {name: o for o, name in op.JMP_COND_NAMES.items()}
_PSEUDO_BY_NAME = {
    "map_fd": op.BPF_PSEUDO_MAP_FD, "map_value": op.BPF_PSEUDO_MAP_VALUE, "btf_id": op.BPF_PSEUDO_BTF_ID,
    "func": op.BPF_PSEUDO_FUNC, "map_idx": op.BPF_PSEUDO_MAP_IDX, "map_idx_value": op.BPF_PSEUDO_MAP_IDX_VALUE,
}


def _mem_operand(text: str) -> tuple[int, int]:
    """``[%r1]``, ``[%r1+4]``, ``[%r10-0x8]`` -> (register, offset)."""
    m = re.fullmatch(rf"\[\s*(%?r\d+)\s*(?:([+-])\s*({_NUM}))?\s*\]", text)
    if not m:
        raise _LineError(f"invalid memory operand: {text}")
    off = _mem_off(m.group(2), m.group(3)) if m.group(2) else 0
    return _reg(m.group(1), "r"), off


def _count(mnemonic: str, operands: list[str], n: int) -> None:
    if len(operands) != n:
        raise _LineError(f"invalid number of operands for {mnemonic}: expected {n}, got {len(operands)}")


def _conformance_line(mnemonic: str, operands: list[str], prog: _Program) -> list[Insn]:
    mn = mnemonic.lower()
    if mn == "exit":
        _count(mn, operands, 0)
        return [Insn(op.BPF_JMP | op.BPF_EXIT)]
    if mn == "lock":
        return [_lock(operands)]
    if mn == "call":
        return [_call(operands, prog)]
    if mn in ("ja", "ja32", "may_goto"):
        _count(mn, operands, 1)
        if mn == "ja32":
            return [Insn(op.BPF_JMP32 | op.BPF_JA, 0, 0, 0, prog.target(operands[0], "imm"))]
        return [Insn(op.BPF_JMP | (op.BPF_JA if mn == "ja" else op.BPF_JCOND), 0, 0, prog.target(operands[0], "off"))]
    if mn == "lddw":
        _count(mn, operands, 2)
        return _lddw(operands)
    if mn == "addr_space_cast":
        _count(mn, operands, 4)
        return [_addr_space_cast(*operands)]
    m = re.fullmatch(r"(le|be|swap|bswap)(16|32|64)", mn)
    if m:
        _count(mn, operands, 1)
        if m.group(1) in ("swap", "bswap"):
            code = op.BPF_ALU64 | op.BPF_END | op.BPF_TO_LE
        else:
            code = op.BPF_ALU | op.BPF_END | (op.BPF_TO_BE if m.group(1) == "be" else op.BPF_TO_LE)
        return [Insn(code, _reg(operands[0], "r"), 0, 0, int(m.group(2)))]
    m = re.fullmatch(r"movsx(8|16|32)(32|64)", mn)
    if m:
        _count(mn, operands, 2)
        cls = op.BPF_ALU64 if m.group(2) == "64" else op.BPF_ALU
        if int(m.group(1)) not in op.MOVSX_OFFS[cls]:
            raise _LineError(f"invalid mnemonic: {mnemonic}")
        return [Insn(cls | op.BPF_MOV | op.BPF_X, _reg(operands[0], "r"), _reg(operands[1], "r"), int(m.group(1)))]
    m = re.fullmatch(r"(s?)(add|sub|mul|div|or|and|lsh|rsh|neg|mod|xor|mov|arsh)(32|64)?", mn)
    if m and (not m.group(1) or m.group(2) in ("div", "mod")):
        o = _ALU_BY_NAME[m.group(2)]
        cls = op.BPF_ALU if m.group(3) == "32" else op.BPF_ALU64
        if o == op.BPF_NEG:
            _count(mn, operands, 1)
            return [Insn(cls | op.BPF_NEG, _reg(operands[0], "r"))]
        _count(mn, operands, 2)
        src_kind, src, imm = _src_operand(operands[1], "r")
        return [Insn(cls | o | src_kind, _reg(operands[0], "r"), src, op.SIGNED_ALU_OFF if m.group(1) else 0, imm)]
    m = re.fullmatch(r"(j[a-z]+?)(32)?", mn)
    if m and m.group(1) in _JMP_BY_NAME:
        _count(mn, operands, 3)
        cls = op.BPF_JMP32 if m.group(2) else op.BPF_JMP
        src_kind, src, imm = _src_operand(operands[1], "r")
        off = prog.target(operands[2], "off")
        return [Insn(cls | _JMP_BY_NAME[m.group(1)] | src_kind, _reg(operands[0], "r"), src, off, imm)]
    m = re.fullmatch(r"(ldxs?|stx|st|ldabs|ldind)(dw|w|h|b)", mn)
    if m:
        kind, size = m.group(1), _SIZE_BY_SUFFIX[m.group(2)]
        if kind == "ldabs":
            _count(mn, operands, 1)
            if size == op.BPF_DW:
                raise _LineError(f"invalid mnemonic: {mnemonic}")
            return [Insn(op.BPF_LD | op.BPF_ABS | size, 0, 0, 0, _imm32(operands[0]))]
        _count(mn, operands, 2)
        if kind == "ldind":
            if size == op.BPF_DW:
                raise _LineError(f"invalid mnemonic: {mnemonic}")
            return [Insn(op.BPF_LD | op.BPF_IND | size, 0, _reg(operands[0], "r"), 0, _imm32(operands[1]))]
        if kind.startswith("ldx"):
            if kind == "ldxs" and size == op.BPF_DW:
                raise _LineError(f"invalid mnemonic: {mnemonic}")
            src, off = _mem_operand(operands[1])
            mode = op.BPF_MEMSX if kind == "ldxs" else op.BPF_MEM
            return [Insn(op.BPF_LDX | mode | size, _reg(operands[0], "r"), src, off)]
        dst, off = _mem_operand(operands[0])
        if kind == "stx":
            return [Insn(op.BPF_STX | op.BPF_MEM | size, dst, _reg(operands[1], "r"), off)]
        return [Insn(op.BPF_ST | op.BPF_MEM | size, dst, 0, off, _imm32(operands[1]))]
    raise _LineError(f"invalid mnemonic: {mnemonic}")


def _lock(operands: list[str]) -> Insn:
    """``lock [fetch] <op>[32] [dst+off], src`` (bpf_conformance's atomic syntax)."""
    ops = list(operands)
    fetch = bool(ops) and ops[0].lower() == "fetch"
    if fetch:
        ops.pop(0)
    if len(ops) != 3:
        raise _LineError("invalid number of operands for lock")
    m = re.fullmatch(r"(add|or|and|xor|xchg|cmpxchg)(32)?", ops[0].lower())
    if not m:
        raise _LineError(f"invalid atomic operation: {ops[0]}")
    size = op.BPF_W if m.group(2) else op.BPF_DW
    dst, off = _mem_operand(ops[1])
    if m.group(1) in ("xchg", "cmpxchg"):
        if fetch:
            raise _LineError(f"{m.group(1)} always fetches; drop 'fetch'")
        imm = op.BPF_XCHG if m.group(1) == "xchg" else op.BPF_CMPXCHG
    else:
        imm = _ALU_BY_NAME[m.group(1)] | (op.BPF_FETCH if fetch else 0)
    return Insn(op.BPF_STX | op.BPF_ATOMIC | size, dst, _reg(ops[2], "r"), off, imm)


def _call(operands: list[str], prog: _Program) -> Insn:
    """``call 1``, ``call helper 1``, ``call local label``, ``call runtime 5`` (``kfunc``), ``call %r2`` (callx)."""
    ops = list(operands)
    if len(ops) == 1:
        kernel = re.fullmatch(r"([\w-]+)#(-?\d+)", ops[0])  # the kernel's "call bpf_map_lookup_elem#1"
        if kernel:
            ops = ["runtime" if kernel.group(1) == "kernel-function" else "helper", kernel.group(2)]
        elif re.fullmatch(r"pc[+-]\d+", ops[0]):  # the kernel's "call pc+3"
            ops = ["local", ops[0]]
        else:
            ops.insert(0, "helper")
    _count("call", ops, 2)
    mode, target = ops[0].lower(), ops[1]
    if mode == "helper":
        if target.startswith("%") or re.fullmatch(r"r\d+", target):
            return Insn(op.BPF_JMP | op.BPF_CALL | op.BPF_X, _reg(target, "r"))
        return Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, _imm32(target))
    if mode == "local":
        return Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, prog.target(target, "imm"))
    if mode in ("runtime", "kfunc"):
        return Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_KFUNC_CALL, 0, _imm32(target))
    raise _LineError(f"invalid call mode: {ops[0]}")


def _lddw(operands: list[str]) -> list[Insn]:
    dst = _reg(operands[0], "r")
    m = re.fullmatch(r"([a-z_]+)\((.*)\)", operands[1].strip())
    if not m:
        v = _imm64(operands[1])
        return _ld_imm64(dst, 0, v & 0xFFFFFFFF, v >> 32)
    args = [a.strip() for a in m.group(2).split(",")] if m.group(2).strip() else []
    if m.group(1) == "pseudo":
        if len(args) != 3:
            raise _LineError("pseudo(src, imm, next_imm) takes three arguments")
        src = _int(args[0], "pseudo source")[0]
        if not 0 <= src <= 15:
            raise _LineError(f"invalid pseudo source: {args[0]}")
        return _ld_imm64(dst, src, _imm32(args[1]), _imm32(args[2]))
    pseudo = _PSEUDO_BY_NAME.get(m.group(1))
    if pseudo is None:
        raise _LineError(f"unknown ld_imm64 source: {m.group(1)}")
    if not 1 <= len(args) <= 2:
        raise _LineError(f"{m.group(1)}(...) takes one or two arguments")
    return _ld_imm64(dst, pseudo, _imm32(args[0]), _imm32(args[1]) if len(args) == 2 else 0)


def _split_conformance(line: str) -> tuple[str, list[str]]:
    """Mnemonic and operands; commas and spaces separate, except inside [...] and (...)."""
    head = re.match(r"(\S+)\s*(.*)$", line)
    mnemonic, rest = (head.group(1), head.group(2)) if head else (line, "")
    operands: list[str] = []
    depth, cur = 0, ""
    for ch in rest:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if depth == 0 and ch in ", \t":
            if cur:
                operands.append(cur)
            cur = ""
            continue
        cur += ch
    if depth != 0:
        raise _LineError("unbalanced brackets")
    if cur:
        operands.append(cur)
    return mnemonic, operands


# --------------------------------------------------------------------------- driver

_COMMENT_RE = re.compile(r"(?:(?<![\w-])#|#(?!-?\d)|;|//).*$")  # not the '#' of the kernel's "call name#1"
_ANNOTATION_RE = re.compile(r"\s*<[^<>]*>\s*$")
_OBJDUMP_PREFIX_RE = re.compile(r"^\s*\d+:\t(?:(?:[0-9a-f]{2} )*[0-9a-f]{2}\t)?")
_KERNEL_PREFIX_RE = re.compile(r"^\s*(?:\d+:\s*)?\(([0-9a-f]{2})\)\s+")


def _strip(line: str) -> str:
    """Drop comments, a trailing ``<sym+off>`` and llvm-objdump's address and hex-byte columns."""
    line = _OBJDUMP_PREFIX_RE.sub("", _COMMENT_RE.sub("", line))
    line = _ANNOTATION_RE.sub("", line).strip()
    kernel = _KERNEL_PREFIX_RE.match(line)
    if kernel:  # a verifier-log line, "12: (18) r1 = 0x5": the opcode byte tells a ld_imm64 apart
        line = line[kernel.end():]
        if int(kernel.group(1), 16) == op.LD_IMM64 and not line.endswith(" ll"):
            line += " ll"
    return line


def assemble(text: str) -> list[Insn]:
    """Assemble a program; a ld_imm64 yields its two slots. Raises AsmError."""
    prog = _Program()
    for line_no, raw in enumerate(text.splitlines(), start=1):
        prog.line_no = line_no
        line = _strip(raw)
        while True:
            m = re.match(r"^([A-Za-z_.$][\w.$]*):(?!\S)\s*", line)
            if not m:
                break
            label = m.group(1)
            if label in prog.labels:
                raise AsmError(line_no, f"duplicate label {label!r}")
            prog.labels[label] = len(prog.insns)
            line = line[m.end():]
        if not line:
            continue
        try:
            out = _llvm_line(line, prog)
            if out is None:
                mnemonic, operands = _split_conformance(line)
                if mnemonic == "exit" and "exit" not in prog.labels:
                    prog.labels["exit"] = len(prog.insns)
                out = _conformance_line(mnemonic, operands, prog)
        except _LineError as e:
            raise AsmError(line_no, str(e)) from None
        except (ValueError, IndexError, KeyError) as e:  # defensive: never leak another exception type
            raise AsmError(line_no, f"cannot assemble {line!r}: {e}") from None
        prog.insns.extend(out)
    for fx in prog.fixups:
        if fx.label not in prog.labels:
            raise AsmError(fx.line_no, f"invalid label: {fx.label}")
        delta = prog.labels[fx.label] - fx.pc - 1
        insn = prog.insns[fx.pc]
        if fx.field == "off":
            if not -(1 << 15) <= delta < 1 << 15:
                raise AsmError(fx.line_no, f"jump to {fx.label} is out of 16-bit range ({delta})")
            prog.insns[fx.pc] = insn.replace(off=delta)
        else:
            prog.insns[fx.pc] = insn.replace(imm=delta)
    return prog.insns
