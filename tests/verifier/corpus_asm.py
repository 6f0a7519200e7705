"""A small assembler for the verifier corpus, in the syntax of llvm-objdump and the verifier's own log.

``r0 = 1``, ``w1 += w2``, ``r1 = *(u32 *)(r1 + 4)``, ``*(u64 *)(r10 - 8) = r1``,
``if r1 s> 5 goto +2`` or ``goto label``, ``call 1`` / ``call bpf_map_lookup_elem`` / ``call pc+3`` /
``call label`` (bpf-to-bpf), ``exit``, ``r1 = 0x1234 ll``, ``r1 = map[name] ll`` (BPF_PSEUDO_MAP_FD,
patched with the map's fd by the loader), ``r1 = map_value[name+16] ll`` (BPF_PSEUDO_MAP_VALUE),
``lock *(u64 *)(r1 + 0) += r2``, ``r0 = atomic_fetch_add((u64 *)(r1 + 0), r0)``, ``r1 = (s8)r2``,
``r1 = be16 r1``, ``r1 = bswap32 r1``, ``r1 = -r1``, ``may_goto +2`` and ``raw 0xCODE dst src off imm`` for
anything malformed. Labels are ``name:``; comments start with ``;`` or ``#``.

The corpus lives in text so a reader sees the program the kernel saw; this parser is a test utility.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op
from tinyaya.uapi._enums import BpfFuncId

_ALU = {"+": op.BPF_ADD, "-": op.BPF_SUB, "*": op.BPF_MUL, "/": op.BPF_DIV, "|": op.BPF_OR, "&": op.BPF_AND,
        "<<": op.BPF_LSH, ">>": op.BPF_RSH, "%": op.BPF_MOD, "^": op.BPF_XOR, "s>>": op.BPF_ARSH,
        "s/": op.BPF_DIV, "s%": op.BPF_MOD}
_JMP = {"==": op.BPF_JEQ, "!=": op.BPF_JNE, ">": op.BPF_JGT, ">=": op.BPF_JGE, "<": op.BPF_JLT,
        "<=": op.BPF_JLE, "s>": op.BPF_JSGT, "s>=": op.BPF_JSGE, "s<": op.BPF_JSLT, "s<=": op.BPF_JSLE,
        "&": op.BPF_JSET}
_SIZE = {"u8": op.BPF_B, "u16": op.BPF_H, "u32": op.BPF_W, "u64": op.BPF_DW,
         "s8": op.BPF_B, "s16": op.BPF_H, "s32": op.BPF_W}
_ATOMIC = {"+": op.BPF_ADD, "|": op.BPF_OR, "&": op.BPF_AND, "^": op.BPF_XOR}
_FETCH = {"add": op.BPF_ADD, "or": op.BPF_OR, "and": op.BPF_AND, "xor": op.BPF_XOR}
_HELPERS = {m.name[len("BPF_FUNC_"):]: int(m) for m in BpfFuncId}

REG = r"([rw])(\d+)"
MEM = r"\*\((u8|u16|u32|u64|s8|s16|s32) \*\)\(r(\d+) *([+-]) *(\w+)\)"


class AsmError(ValueError):
    pass


@dataclass
class Assembled:
    insns: list[Insn]
    #: (insn index, map name) for each ``map[...]`` ld_imm64, and (index, name, off) for map_value
    map_fds: list[tuple[int, str]] = field(default_factory=list)
    map_values: list[tuple[int, str, int]] = field(default_factory=list)


def _num(s: str) -> int:
    return int(s, 0)


def _reg(kind: str, n: str) -> tuple[bool, int]:
    return kind == "w", int(n)


def assemble(text: str) -> Assembled:
    lines: list[tuple[int, str]] = []
    labels: dict[str, int] = {}
    pc = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = re.split(r"[;#]|//", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"(\w+):", line)
        if m:
            labels[m.group(1)] = pc
            continue
        lines.append((lineno, line))
        pc += 2 if (line.endswith(" ll") or line.startswith("raw2 ")) else 1
    out = Assembled([])
    for lineno, line in lines:
        try:
            _one(line, out, labels)
        except (AsmError, ValueError, KeyError) as e:
            raise AsmError(f"line {lineno}: {line!r}: {e}") from None
    return out


def _target(s: str, labels: dict[str, int], pc: int) -> int:
    s = s.strip()
    if s in labels:
        return labels[s] - pc - 1
    return _num(s)


def _one(line: str, out: Assembled, labels: dict[str, int]) -> None:
    emit = out.insns.append
    pc = len(out.insns)
    if line == "exit":
        return emit(Insn(op.BPF_JMP | op.BPF_EXIT))
    if m := re.fullmatch(r"raw2? (\S+) (\S+) (\S+) (\S+) (\S+)(?: (\S+) (\S+) (\S+) (\S+) (\S+))?", line):
        g = [x for x in m.groups() if x is not None]
        for k in range(0, len(g), 5):
            emit(Insn(_num(g[k]), _num(g[k + 1]), _num(g[k + 2]), _num(g[k + 3]), _num(g[k + 4])))
        return None
    if m := re.fullmatch(r"call (.+)", line):
        t = m.group(1).strip()
        if t.startswith("pc"):
            return emit(Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, _num(t[2:])))
        if t in labels:
            return emit(Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, labels[t] - pc - 1))
        imm = _HELPERS[t[4:]] if t.startswith("bpf_") else _num(t)
        return emit(Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, imm))
    if m := re.fullmatch(r"(goto|gotol|may_goto) (\S+)", line):
        t = _target(m.group(2), labels, pc)
        if m.group(1) == "gotol":
            return emit(Insn(op.BPF_JMP32 | op.BPF_JA, 0, 0, 0, t))
        if m.group(1) == "may_goto":
            return emit(Insn(op.BPF_JMP | op.BPF_JCOND, 0, 0, t, 0))
        return emit(Insn(op.BPF_JMP | op.BPF_JA, 0, 0, t, 0))
    if m := re.fullmatch(rf"if {REG} (\S+) (\S+) goto (\S+)", line):
        w, d = _reg(m.group(1), m.group(2))
        cls = op.BPF_JMP32 if w else op.BPF_JMP
        jop = _JMP[m.group(3)]
        t = _target(m.group(5), labels, pc)
        if s := re.fullmatch(REG, m.group(4)):
            return emit(Insn(cls | jop | op.BPF_X, d, int(s.group(2)), t, 0))
        return emit(Insn(cls | jop | op.BPF_K, d, 0, t, _num(m.group(4))))
    if m := re.fullmatch(rf"lock {MEM} (\S+)= r(\d+)", line):
        size, base, sign, off, aop, src = m.groups()
        o = _num(off) * (-1 if sign == "-" else 1)
        return emit(Insn(op.BPF_STX | op.BPF_ATOMIC | _SIZE[size], int(base), int(src), o, _ATOMIC[aop]))
    if m := re.fullmatch(r"([rw])(\d+) = atomic_fetch_(\w+)\(\((u32|u64) \*\)\(r(\d+) *([+-]) *(\w+)\), [rw](\d+)\)",
                         line):
        _, _, name, size, base, sign, off, src = m.groups()
        o = _num(off) * (-1 if sign == "-" else 1)
        return emit(Insn(op.BPF_STX | op.BPF_ATOMIC | _SIZE[size], int(base), int(src), o,
                         _FETCH[name] | op.BPF_FETCH))
    if m := re.fullmatch(r"([rw])(\d+) = (xchg|cmpxchg)\(\((u32|u64) \*\)\(r(\d+) *([+-]) *(\w+)\), [rw](\d+)\)", line):
        _, _, name, size, base, sign, off, src = m.groups()
        o = _num(off) * (-1 if sign == "-" else 1)
        return emit(Insn(op.BPF_STX | op.BPF_ATOMIC | _SIZE[size], int(base), int(src), o,
                         op.BPF_XCHG if name == "xchg" else op.BPF_CMPXCHG))
    if m := re.fullmatch(rf"{MEM} = (\S+)", line):
        size, base, sign, off, val = m.groups()
        o = _num(off) * (-1 if sign == "-" else 1)
        if s := re.fullmatch(REG, val):
            return emit(Insn(op.BPF_STX | op.BPF_MEM | _SIZE[size], int(base), int(s.group(2)), o, 0))
        return emit(Insn(op.BPF_ST | op.BPF_MEM | _SIZE[size], int(base), 0, o, _num(val)))
    if m := re.fullmatch(rf"{REG} = {MEM}", line):
        _, d, size, base, sign, off = m.groups()
        o = _num(off) * (-1 if sign == "-" else 1)
        mode = op.BPF_MEMSX if size.startswith("s") else op.BPF_MEM
        return emit(Insn(op.BPF_LDX | mode | _SIZE[size], int(d), int(base), o, 0))
    if m := re.fullmatch(rf"{REG} = (map|map_value)\[(\w+)(?:\+(\d+))?\] ll", line):
        _, d, kind, name, off = m.groups()
        src = op.BPF_PSEUDO_MAP_FD if kind == "map" else op.BPF_PSEUDO_MAP_VALUE
        if kind == "map":
            out.map_fds.append((pc, name))
        else:
            out.map_values.append((pc, name, int(off or 0)))
        emit(Insn(op.LD_IMM64, int(d), src, 0, 0))
        return emit(Insn(0, 0, 0, 0, int(off or 0) if kind == "map_value" else 0))
    if m := re.fullmatch(rf"{REG} = func\[(\w+)\] ll", line):
        emit(Insn(op.LD_IMM64, int(m.group(2)), op.BPF_PSEUDO_FUNC, 0, _target(m.group(3), labels, pc)))
        return emit(Insn(0, 0, 0, 0, 0))
    if m := re.fullmatch(rf"{REG} = (\S+) ll", line):
        v = _num(m.group(3)) & 0xFFFFFFFFFFFFFFFF
        lo, hi = v & 0xFFFFFFFF, v >> 32
        emit(Insn(op.LD_IMM64, int(m.group(2)), 0, 0, lo - (1 << 32) if lo >= 1 << 31 else lo))
        return emit(Insn(0, 0, 0, 0, hi - (1 << 32) if hi >= 1 << 31 else hi))
    if m := re.fullmatch(rf"{REG} = (be|le|bswap)(16|32|64) {REG}", line):
        _, d, kind, bits = m.groups()[:4]
        if kind == "bswap":
            return emit(Insn(op.BPF_ALU64 | op.BPF_END, int(d), 0, 0, int(bits)))
        return emit(Insn(op.BPF_ALU | op.BPF_END | (op.BPF_TO_BE if kind == "be" else op.BPF_TO_LE),
                         int(d), 0, 0, int(bits)))
    if m := re.fullmatch(rf"{REG} = -{REG}", line):
        w, d = _reg(m.group(1), m.group(2))
        return emit(Insn((op.BPF_ALU if w else op.BPF_ALU64) | op.BPF_NEG, d))
    if m := re.fullmatch(rf"{REG} = \((s8|s16|s32)\){REG}", line):
        w, d = _reg(m.group(1), m.group(2))
        bits = {"s8": 8, "s16": 16, "s32": 32}[m.group(3)]
        return emit(Insn((op.BPF_ALU if w else op.BPF_ALU64) | op.BPF_MOV | op.BPF_X, d, int(m.group(5)), bits))
    if m := re.fullmatch(rf"{REG} (s>>|s/|s%|<<|>>|[-+*/|&%^])?= (\S+)", line):
        w, d = _reg(m.group(1), m.group(2))
        aop = _ALU[m.group(3)] if m.group(3) else op.BPF_MOV
        signed = 1 if m.group(3) in ("s/", "s%") else 0
        cls = op.BPF_ALU if w else op.BPF_ALU64
        if s := re.fullmatch(REG, m.group(4)):
            return emit(Insn(cls | aop | op.BPF_X, d, int(s.group(2)), signed, 0))
        imm = _num(m.group(4))
        if not -(1 << 31) <= imm < (1 << 32):
            raise AsmError("immediate out of 32-bit range")
        if imm >= 1 << 31:
            imm -= 1 << 32
        return emit(Insn(cls | aop | op.BPF_K, d, 0, signed, imm))
    raise AsmError("cannot parse")
