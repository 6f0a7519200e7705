"""The eBPF instruction set: one definition shared by obj, the VM, the verifier and the tools."""
from .insn import Insn, InsnDecodeError, decode, encode, ld_imm64_value

__all__ = ["Insn", "InsnDecodeError", "decode", "encode", "ld_imm64_value"]
