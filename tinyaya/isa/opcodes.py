"""The eBPF instruction set, defined once (RFC 9669 and Linux's include/uapi/linux/bpf_common.h, bpf.h).

Everything that reads or writes instructions (obj relocation, the VM, the
verifier, the disassembler, the assembler and the compiled tiers) uses these
names. An opcode byte is ``class | size | mode`` for loads and stores, and
``class | source | operation`` for arithmetic and jumps.
"""
from __future__ import annotations

from enum import IntEnum

INSN_SIZE = 8  # bytes per instruction slot

# Instruction classes (RFC 9669 section 3.3)
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_JMP32 = 0x06
BPF_ALU64 = 0x07

# Load/store sizes
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18

# Load/store modes
BPF_IMM = 0x00
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MEM = 0x60
BPF_MEMSX = 0x80
BPF_ATOMIC = 0xC0

# Source operand
BPF_K = 0x00
BPF_X = 0x08
# For BPF_END: BPF_TO_LE = BPF_K, BPF_TO_BE = BPF_X
BPF_TO_LE = 0x00
BPF_TO_BE = 0x08

# ALU operations
BPF_ADD = 0x00
BPF_SUB = 0x10
BPF_MUL = 0x20
BPF_DIV = 0x30
BPF_OR = 0x40
BPF_AND = 0x50
BPF_LSH = 0x60
BPF_RSH = 0x70
BPF_NEG = 0x80
BPF_MOD = 0x90
BPF_XOR = 0xA0
BPF_MOV = 0xB0
BPF_ARSH = 0xC0
BPF_END = 0xD0

# Jump operations
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40
BPF_JNE = 0x50
BPF_JSGT = 0x60
BPF_JSGE = 0x70
BPF_CALL = 0x80
BPF_EXIT = 0x90
BPF_JLT = 0xA0
BPF_JLE = 0xB0
BPF_JSLT = 0xC0
BPF_JSLE = 0xD0
BPF_JCOND = 0xE0  # may_goto (src_reg == BPF_MAY_GOTO)
BPF_MAY_GOTO = 0

# Atomic operations (imm of a BPF_STX | BPF_ATOMIC instruction)
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH

# Pseudo sources of ld_imm64 and calls (uapi bpf.h)
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2

MAX_BPF_REG = 11  # r0..r10
BPF_REG_FP = 10
MAX_BPF_STACK = 512


def BPF_CLASS(code: int) -> int:
    return code & 0x07


def BPF_SIZE(code: int) -> int:
    return code & 0x18


def BPF_MODE(code: int) -> int:
    return code & 0xE0


def BPF_OP(code: int) -> int:
    return code & 0xF0


def BPF_SRC(code: int) -> int:
    return code & 0x08


SIZE_BYTES = {BPF_W: 4, BPF_H: 2, BPF_B: 1, BPF_DW: 8}

LD_IMM64 = BPF_LD | BPF_DW | BPF_IMM  # 0x18: the only two-slot instruction


class AluOp(IntEnum):
    ADD = BPF_ADD
    SUB = BPF_SUB
    MUL = BPF_MUL
    DIV = BPF_DIV
    OR = BPF_OR
    AND = BPF_AND
    LSH = BPF_LSH
    RSH = BPF_RSH
    NEG = BPF_NEG
    MOD = BPF_MOD
    XOR = BPF_XOR
    MOV = BPF_MOV
    ARSH = BPF_ARSH
    END = BPF_END


class JmpOp(IntEnum):
    JA = BPF_JA
    JEQ = BPF_JEQ
    JGT = BPF_JGT
    JGE = BPF_JGE
    JSET = BPF_JSET
    JNE = BPF_JNE
    JSGT = BPF_JSGT
    JSGE = BPF_JSGE
    CALL = BPF_CALL
    EXIT = BPF_EXIT
    JLT = BPF_JLT
    JLE = BPF_JLE
    JSLT = BPF_JSLT
    JSLE = BPF_JSLE
    JCOND = BPF_JCOND


# ---------------------------------------------------------------------------
# Names and operator spellings, shared by the disassembler and the assembler.
# The C-like operators are LLVM's BPF assembly syntax (llvm/lib/Target/BPF/
# BPFInstrInfo.td); the mnemonics are the bpf_conformance / uBPF assembler's.

ALU_OP_NAMES: dict[int, str] = {
    BPF_ADD: "add", BPF_SUB: "sub", BPF_MUL: "mul", BPF_DIV: "div", BPF_OR: "or", BPF_AND: "and",
    BPF_LSH: "lsh", BPF_RSH: "rsh", BPF_NEG: "neg", BPF_MOD: "mod", BPF_XOR: "xor", BPF_MOV: "mov",
    BPF_ARSH: "arsh",
}
"""Conformance mnemonic per ALU operation (BPF_END is spelt le/be/swap with a width)."""

ALU_OP_SYMBOLS: dict[int, str] = {
    BPF_ADD: "+=", BPF_SUB: "-=", BPF_MUL: "*=", BPF_DIV: "/=", BPF_OR: "|=", BPF_AND: "&=",
    BPF_LSH: "<<=", BPF_RSH: ">>=", BPF_MOD: "%=", BPF_XOR: "^=", BPF_ARSH: "s>>=",
}
"""LLVM's compound-assignment operator per two-operand ALU operation (MOV is plain ``=``)."""

JMP_COND_NAMES: dict[int, str] = {
    BPF_JEQ: "jeq", BPF_JGT: "jgt", BPF_JGE: "jge", BPF_JSET: "jset", BPF_JNE: "jne", BPF_JSGT: "jsgt",
    BPF_JSGE: "jsge", BPF_JLT: "jlt", BPF_JLE: "jle", BPF_JSLT: "jslt", BPF_JSLE: "jsle",
}
"""Conformance mnemonic per conditional jump (RFC 9669 section 4.3)."""

JMP_COND_SYMBOLS: dict[int, str] = {
    BPF_JEQ: "==", BPF_JGT: ">", BPF_JGE: ">=", BPF_JSET: "&", BPF_JNE: "!=", BPF_JSGT: "s>",
    BPF_JSGE: "s>=", BPF_JLT: "<", BPF_JLE: "<=", BPF_JSLT: "s<", BPF_JSLE: "s<=",
}
"""LLVM's comparison operator per conditional jump."""

SIZE_SUFFIXES: dict[int, str] = {BPF_W: "w", BPF_H: "h", BPF_B: "b", BPF_DW: "dw"}
"""Conformance width suffix (ldxw, stb, ...)."""

SIGNED_ALU_OFF = 1  # off of sdiv/smod (RFC 9669 section 4.1)
MOVSX_OFFS = {BPF_ALU: (8, 16), BPF_ALU64: (8, 16, 32)}  # sign-extending MOV: off = source width
END_WIDTHS = (16, 32, 64)
BPF_ADDR_SPACE_CAST_OFF = 1  # ALU64 MOV X with off 1: imm = dst_as << 16 | src_as (kernel BPF_ADDR_SPACE_CAST)

ATOMIC_ALU_OPS = (BPF_ADD, BPF_OR, BPF_AND, BPF_XOR)
"""Operations of BPF_ATOMIC with or without BPF_FETCH (RFC 9669 section 5.3)."""

ATOMIC_IMMS: frozenset[int] = frozenset(
    [op for op in ATOMIC_ALU_OPS] + [op | BPF_FETCH for op in ATOMIC_ALU_OPS] + [BPF_XCHG, BPF_CMPXCHG]
)
"""Every valid imm of a BPF_STX | BPF_ATOMIC instruction."""
