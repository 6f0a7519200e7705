"""LLVM's own assembler (llvm-mc-19) reads our LLVM-syntax text back to the same encodings.

This checks the printed syntax from the other side: not only does it match llvm-objdump's
output on recorded objects, it is text LLVM accepts and encodes to the instruction we started from.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helper
from conformance_data import conformance_dir, load_all
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, assume, given, settings
from isa_strategies import valid_programs

from tinyaya.isa import AsmError, Insn, decode, disasm
from tinyaya.isa import opcodes as op

LLVM_MC = shutil.which("llvm-mc-19")
pytestmark = pytest.mark.skipif(LLVM_MC is None, reason="llvm-mc-19 is not installed")


def llvm_mc(lines: list[str]) -> list[Insn]:
    assert LLVM_MC is not None
    src = "".join(f"\t{line}\n" for line in lines)
    out = subprocess.run([LLVM_MC, "-triple", "bpfel", "-mcpu=v4", "-filetype=obj", "-o", "-"], input=src.encode(),
                         capture_output=True, check=False)
    assert out.returncode == 0, out.stderr.decode()
    text = ELFFile(io.BytesIO(out.stdout)).get_section_by_name(".text")
    return decode(text.data()) if text is not None else []


def _printed_fully(insns: list[Insn]) -> list[Insn]:
    """The fields plain LLVM text leaves out (see tinyaya.isa.disasm) are dropped for comparison."""
    out = []
    for i, insn in enumerate(insns):
        if insn.code == op.BPF_JMP | op.BPF_CALL:
            insn = insn.replace(src=0)
        elif insn.code & 0xE7 == op.BPF_LD | op.BPF_IND:
            insn = insn.replace(imm=0)
        elif i and insns[i - 1].code == op.LD_IMM64 and insns[i - 1].src and (i < 2 or insns[i - 2].code != op.LD_IMM64):
            insn = insn.replace(imm=0)
        out.append(insn)
    return out


@pytest.mark.skipif(conformance_dir() is None, reason="the bpf_conformance suite is absent")
def test_conformance_programs_reassemble_with_llvm_mc() -> None:
    checked = 0
    for t in load_all():
        try:
            insns = t.program()
        except AsmError:
            continue
        if not insns or t.asm is None:
            continue
        assert llvm_mc(disasm(insns, mcpu="v4")) == _printed_fully(insns), t.name
        checked += 1
    assert checked > 300


@settings(max_examples=int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40")) // 4 + 10, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(valid_programs(max_size=40))
def test_random_valid_programs_reassemble_with_llvm_mc(prog: list[Insn]) -> None:
    # llvm-mc-19's parser takes a gotol displacement only as a 16-bit number (or a label)
    assume(all(-(1 << 15) <= i.imm < 1 << 15 for i in prog if i.code == op.BPF_JMP32 | op.BPF_JA))
    assert llvm_mc(disasm(prog, mcpu="v4")) == _printed_fully(prog)
