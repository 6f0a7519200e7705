"""The meaning of every eBPF instruction, written once as Python source templates.

Each template is a statement over ``D`` (the destination register), ``S`` (the
source operand: a register or the decoded immediate) and constants. The
interpreter (``decode.py``) turns each template into a closure factory once per
process; the compiled tier (issue 9) substitutes locals for ``D``/``S`` and
pastes the same text into straight-line Python, so both tiers share one
definition of the ISA and can never disagree.

``alu_statement``/``jump_condition`` give one instruction's statement with literal operands and
registers spelled as the caller likes. Memory accesses are not templates of their own: their
address arithmetic is ``decode._ADDR_POS``/``_ADDR_NEG`` and ``fuse._Run.mem`` (a region lookup
by ``addr >> 32`` of the exact address ``base + off``, the offset ``addr & 0xFFFFFFFF``, faults where
the access leaves the region).

Value convention: registers hold unsigned 64-bit values (``0 <= r < 2**64``).
Immediates are pre-converted at decode time: sign-extended to 64 bits and
masked for ALU64/JMP, masked to 32 bits for ALU32/JMP32 (RFC 9669 section 2.2).

Semantics follow RFC 9669 section 4 and Linux's ``kernel/bpf/core.c``
(``___bpf_prog_run``) plus the verifier's rewrites (``do_misc_fixups``):

* division by zero gives 0; modulo by zero leaves the dividend (zero-extended
  to 64 bits for the 32-bit form);
* shift amounts are masked to the operand width (``& 63`` / ``& 31``);
* signed division truncates toward zero, ``INT_MIN / -1 == INT_MIN`` and
  ``INT_MIN % -1 == 0``; the sign of a signed remainder follows the dividend;
* every 32-bit ALU result is zero-extended to 64 bits.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from ...isa.opcodes import (
    BPF_ADD,
    BPF_AND,
    BPF_ARSH,
    BPF_DIV,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JLE,
    BPF_JLT,
    BPF_JNE,
    BPF_JSET,
    BPF_JSGE,
    BPF_JSGT,
    BPF_JSLE,
    BPF_JSLT,
    BPF_LSH,
    BPF_MOD,
    BPF_MOV,
    BPF_MUL,
    BPF_NEG,
    BPF_OR,
    BPF_RSH,
    BPF_SUB,
    BPF_XOR,
)

M64 = (1 << 64) - 1
M32 = 0xFFFF_FFFF
SB64 = 1 << 63
SB32 = 1 << 31


def sdiv64(a: int, b: int) -> int:
    """Signed 64-bit division truncating toward zero; ``b`` is non-zero (RFC 9669 section 4.1 SDIV)."""
    a = (a ^ SB64) - SB64
    b = (b ^ SB64) - SB64
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M64


def smod64(a: int, b: int) -> int:
    """Signed 64-bit remainder with the sign of the dividend; ``b`` is non-zero."""
    a = (a ^ SB64) - SB64
    b = (b ^ SB64) - SB64
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & M64


def sdiv32(a: int, b: int) -> int:
    a = ((a & M32) ^ SB32) - SB32
    b = ((b & M32) ^ SB32) - SB32
    q = abs(a) // abs(b)
    return (-q if (a < 0) != (b < 0) else q) & M32


def smod32(a: int, b: int) -> int:
    a = ((a & M32) ^ SB32) - SB32
    b = ((b & M32) ^ SB32) - SB32
    r = abs(a) % abs(b)
    return (-r if a < 0 else r) & M32


def bswap16(x: int) -> int:
    return ((x & 0xFF) << 8) | ((x >> 8) & 0xFF)


def bswap32(x: int) -> int:
    return int.from_bytes((x & M32).to_bytes(4, "little"), "big")


def bswap64(x: int) -> int:
    return int.from_bytes(x.to_bytes(8, "little"), "big")


#: names the templates may use, besides D and S
TEMPLATE_GLOBALS: dict[str, object] = {
    "M64": M64, "M32": M32, "SB64": SB64, "SB32": SB32,
    "sdiv64": sdiv64, "smod64": smod64, "sdiv32": sdiv32, "smod32": smod32,
    "bswap16": bswap16, "bswap32": bswap32, "bswap64": bswap64,
}

# ALU64: (op, off) -> statement. off selects sdiv/smod (1) and movsx (8/16/32).
ALU64: dict[tuple[int, int], str] = {
    (BPF_ADD, 0): "D = (D + S) & M64",
    (BPF_SUB, 0): "D = (D - S) & M64",
    (BPF_MUL, 0): "D = (D * S) & M64",
    (BPF_DIV, 0): "D = D // S if S else 0",
    (BPF_DIV, 1): "D = sdiv64(D, S) if S else 0",
    (BPF_MOD, 0): "D = D % S if S else D",
    (BPF_MOD, 1): "D = smod64(D, S) if S else D",
    (BPF_OR, 0): "D = D | S",
    (BPF_AND, 0): "D = D & S",
    (BPF_XOR, 0): "D = D ^ S",
    (BPF_LSH, 0): "D = (D << (S & 63)) & M64",
    (BPF_RSH, 0): "D = D >> (S & 63)",
    (BPF_ARSH, 0): "D = (((D ^ SB64) - SB64) >> (S & 63)) & M64",
    (BPF_NEG, 0): "D = -D & M64",
    (BPF_MOV, 0): "D = S",
    (BPF_MOV, 8): "D = (((S & 0xFF) ^ 0x80) - 0x80) & M64",
    (BPF_MOV, 16): "D = (((S & 0xFFFF) ^ 0x8000) - 0x8000) & M64",
    (BPF_MOV, 32): "D = (((S & M32) ^ SB32) - SB32) & M64",
}

ALU32: dict[tuple[int, int], str] = {
    (BPF_ADD, 0): "D = (D + S) & M32",
    (BPF_SUB, 0): "D = (D - S) & M32",
    (BPF_MUL, 0): "D = (D * S) & M32",
    (BPF_DIV, 0): "D = (D & M32) // (S & M32) if S & M32 else 0",
    (BPF_DIV, 1): "D = sdiv32(D, S) if S & M32 else 0",
    (BPF_MOD, 0): "D = (D & M32) % (S & M32) if S & M32 else D & M32",
    (BPF_MOD, 1): "D = smod32(D, S) if S & M32 else D & M32",
    (BPF_OR, 0): "D = (D | S) & M32",
    (BPF_AND, 0): "D = D & S & M32",
    (BPF_XOR, 0): "D = (D ^ S) & M32",
    (BPF_LSH, 0): "D = (D << (S & 31)) & M32",
    (BPF_RSH, 0): "D = (D & M32) >> (S & 31)",
    (BPF_ARSH, 0): "D = ((((D & M32) ^ SB32) - SB32) >> (S & 31)) & M32",
    (BPF_NEG, 0): "D = -D & M32",
    (BPF_MOV, 0): "D = S & M32",
    (BPF_MOV, 8): "D = (((S & 0xFF) ^ 0x80) - 0x80) & M32",
    (BPF_MOV, 16): "D = (((S & 0xFFFF) ^ 0x8000) - 0x8000) & M32",
}

#: BPF_END: (class is ALU64, source bit, width) -> statement. ALU|END|TO_LE truncates on our
#: little-endian target, ALU|END|TO_BE swaps, ALU64|END (bswap) always swaps.
END: dict[tuple[bool, int, int], str] = {
    (False, 0, 16): "D = D & 0xFFFF",
    (False, 0, 32): "D = D & M32",
    (False, 0, 64): "D = D",
    (False, 1, 16): "D = bswap16(D)",
    (False, 1, 32): "D = bswap32(D)",
    (False, 1, 64): "D = bswap64(D)",
    (True, 0, 16): "D = bswap16(D)",
    (True, 0, 32): "D = bswap32(D)",
    (True, 0, 64): "D = bswap64(D)",
}

# Jump conditions over D and S (RFC 9669 section 4.3). JMP32 forms see the low 32 bits.
JMP64: dict[int, str] = {
    BPF_JEQ: "D == S",
    BPF_JNE: "D != S",
    BPF_JGT: "D > S",
    BPF_JGE: "D >= S",
    BPF_JLT: "D < S",
    BPF_JLE: "D <= S",
    BPF_JSET: "D & S",
    BPF_JSGT: "(D ^ SB64) > (S ^ SB64)",
    BPF_JSGE: "(D ^ SB64) >= (S ^ SB64)",
    BPF_JSLT: "(D ^ SB64) < (S ^ SB64)",
    BPF_JSLE: "(D ^ SB64) <= (S ^ SB64)",
}

JMP32: dict[int, str] = {
    BPF_JEQ: "(D & M32) == (S & M32)",
    BPF_JNE: "(D & M32) != (S & M32)",
    BPF_JGT: "(D & M32) > (S & M32)",
    BPF_JGE: "(D & M32) >= (S & M32)",
    BPF_JLT: "(D & M32) < (S & M32)",
    BPF_JLE: "(D & M32) <= (S & M32)",
    BPF_JSET: "D & S & M32",
    BPF_JSGT: "((D & M32) ^ SB32) > ((S & M32) ^ SB32)",
    BPF_JSGE: "((D & M32) ^ SB32) >= ((S & M32) ^ SB32)",
    BPF_JSLT: "((D & M32) ^ SB32) < ((S & M32) ^ SB32)",
    BPF_JSLE: "((D & M32) ^ SB32) <= ((S & M32) ^ SB32)",
}

#: atomic read-modify-write operations (imm & ~BPF_FETCH) -> new value from old value O and source S
ATOMIC_RMW: dict[int, str] = {
    BPF_ADD: "O + S",
    BPF_OR: "O | S",
    BPF_AND: "O & S",
    BPF_XOR: "O ^ S",
}

#: ld_imm64 pseudo-function pointers (BPF_PSEUDO_FUNC) are encoded as this tag plus the target pc,
#: in the kernel half where no region lives (regions start at KERNEL_BASE and grow upward).
FUNC_ADDR_BASE = 0xFFFF_FFFF_C000_0000


# -- statements with literal operands (superinstructions here, the compiled tier later) ----------------
def _bind(template: str, d: str, s: str, o: str = "O") -> str:
    """Substitute operand expressions for the ``D``/``S``/``O`` placeholders of a template."""
    out = re.sub(r"\bD\b", d, template)
    out = re.sub(r"\bS\b", s, out)
    return re.sub(r"\bO\b", o, out)


def _r(n: int) -> str:
    return f"R[{n}]"


def alu_statement(code: int, dst: int, src: int, off: int, imm: int, reg: Callable[[int], str] = _r) -> str | None:
    """The statement of an ALU/ALU64 instruction (byte swaps included) with literal operands, registers
    spelled by ``reg`` (``R[3]`` here, a local such as ``r3`` in compiled code); None if invalid."""
    cls = code & 0x07
    if cls not in (0x04, 0x07):
        return None
    op = code & 0xF0
    x = bool(code & 0x08)
    if op == 0xD0:  # BPF_END
        stmt = END.get((cls == 0x07, 1 if x else 0, imm))
        return None if stmt is None else _bind(stmt, reg(dst), "0")
    k = off if op in (0x30, 0x90, 0xB0) else 0
    stmt = (ALU64 if cls == 0x07 else ALU32).get((op, k))
    if stmt is None:
        return None
    return _bind(stmt, reg(dst), reg(src) if x else str(imm & M64 if cls == 0x07 else imm & M32))


def jump_condition(code: int, dst: int, src: int, imm: int, reg: Callable[[int], str] = _r) -> str | None:
    """The condition of a conditional JMP/JMP32 instruction with literal operands; None otherwise."""
    cls = code & 0x07
    if cls not in (0x05, 0x06):
        return None
    cond = (JMP64 if cls == 0x05 else JMP32).get(code & 0xF0)
    if cond is None:
        return None
    return _bind(cond, reg(dst), reg(src) if code & 0x08 else str(imm & M64 if cls == 0x05 else imm & M32))
