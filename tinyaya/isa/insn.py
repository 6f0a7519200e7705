"""One instruction slot (``struct bpf_insn``) and its byte encoding.

``struct bpf_insn { __u8 code; __u8 dst_reg:4; __u8 src_reg:4; __s16 off; __s32 imm; }``.
On a little-endian target dst_reg is the low nibble of byte 1; on big-endian
(``-target bpfeb``) it is the high nibble, and off/imm are big-endian.
A ``ld_imm64`` takes two slots; both are kept, as the kernel keeps them, so a
program counter is always a slot index.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .opcodes import INSN_SIZE, LD_IMM64

_LE = struct.Struct("<BBhi")
_BE = struct.Struct(">BBhi")


class InsnDecodeError(ValueError):
    """Instruction bytes that are not a whole number of slots."""


@dataclass(frozen=True, slots=True)
class Insn:
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self, big_endian: bool = False) -> bytes:
        if big_endian:
            return _BE.pack(self.code, (self.dst << 4) | (self.src & 0xF), self.off, self.imm)
        return _LE.pack(self.code, (self.src << 4) | (self.dst & 0xF), self.off, self.imm)

    def replace(self, **kw: int) -> Insn:
        d = {"code": self.code, "dst": self.dst, "src": self.src, "off": self.off, "imm": self.imm}
        d.update(kw)
        return Insn(**d)

    @property
    def is_ld_imm64(self) -> bool:
        return self.code == LD_IMM64


def decode(data: bytes | bytearray | memoryview, big_endian: bool = False) -> list[Insn]:
    """Decode instruction bytes into slots. Raises InsnDecodeError on a partial slot."""
    if len(data) % INSN_SIZE:
        raise InsnDecodeError(f"instruction bytes ({len(data)}) are not a multiple of {INSN_SIZE}")
    out: list[Insn] = []
    if big_endian:
        for code, regs, off, imm in _BE.iter_unpack(bytes(data)):
            out.append(Insn(code, regs >> 4, regs & 0xF, off, imm))
    else:
        for code, regs, off, imm in _LE.iter_unpack(bytes(data)):
            out.append(Insn(code, regs & 0xF, regs >> 4, off, imm))
    return out


def encode(insns: list[Insn], big_endian: bool = False) -> bytes:
    return b"".join(i.encode(big_endian) for i in insns)


def ld_imm64_value(lo: Insn, hi: Insn) -> int:
    """The 64-bit immediate of a ld_imm64 pair, as an unsigned value."""
    return ((hi.imm & 0xFFFFFFFF) << 32) | (lo.imm & 0xFFFFFFFF)
