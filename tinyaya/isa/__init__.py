"""The eBPF instruction set: one definition shared by obj, the VM, the verifier and the tools.

``opcodes`` holds the constants and name tables, ``insn`` the slot encoding,
``disasm`` the disassembler (llvm-objdump-19, bpf_conformance and, through
``kdisasm``, the kernel's print_bpf_insn syntax) and ``asm`` the assembler for
the first two. Note that ``tinyaya.isa.disasm`` is
the function; the module is ``tinyaya.isa.disasm`` in ``sys.modules`` (import
names from it with ``from tinyaya.isa.disasm import ...``).
"""
from .asm import AsmError, assemble
from .disasm import disasm, disasm_insn, disasm_lines, insn_slots, jump_target
from .insn import Insn, InsnDecodeError, decode, encode, ld_imm64_value

__all__ = [
    "AsmError",
    "Insn",
    "InsnDecodeError",
    "assemble",
    "decode",
    "disasm",
    "disasm_insn",
    "disasm_lines",
    "encode",
    "insn_slots",
    "jump_target",
    "ld_imm64_value",
]
