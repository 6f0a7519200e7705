"""Every program of the bpf_conformance suite assembles, and round-trips through both disassembly styles."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helper
from conformance_data import ConformanceTest, conformance_dir, load_all, parse_data

from tinyaya.isa import AsmError, Insn, assemble, disasm

ROOT = conformance_dir()
pytestmark = pytest.mark.skipif(ROOT is None, reason="the bpf_conformance suite (../shared/conformance) is absent")
TESTS = load_all(ROOT) if ROOT else []
IDS = [t.name for t in TESTS]

# Negative tests whose assembly must be refused, and the reason (the suite's own error text where it has one).
REJECTED_ASM = {
    "negative/invalid_imm32_dec_range": "out of 32-bit range",
    "negative/invalid_imm32_hex_range": "out of 32-bit range",
    "negative/invalid_label": "invalid label: NOT_A_LABEL",
    "negative/invalid_lock": "invalid number of operands for lock",
    "negative/invalid_lock2": "invalid number of operands for lock",
    "negative/invalid_mnemonic": "invalid mnemonic: ldxq",
    "negative/invalid_offset": "invalid memory operand",
    "negative/invalid_offset_range": "out of 16-bit range",
    "negative/invalid_operand_count": "invalid number of operands for lddw",
    "negative/invalid_register": "invalid register",
}


def _roundtrip_styles(insns: list[Insn]) -> None:
    for style in ("llvm", "conformance"):
        text = "\n".join(disasm(insns, style=style, mcpu="v4", lossless=True))  # type: ignore[arg-type]
        assert assemble(text) == insns, f"{style} round trip:\n{text}"


def test_suite_is_complete() -> None:
    assert len(TESTS) >= 370
    assert sum(t.raw is not None for t in TESTS) >= 40
    assert sum(t.negative for t in TESTS) >= 60


@pytest.mark.parametrize("t", TESTS, ids=IDS)
def test_assembles_and_round_trips(t: ConformanceTest) -> None:
    if t.name in REJECTED_ASM:
        with pytest.raises(AsmError) as e:
            assemble(t.asm or "")
        assert REJECTED_ASM[t.name] in str(e.value).lower() or REJECTED_ASM[t.name] in str(e.value)
        if t.error:  # the suite's expected message, e.g. "Invalid register"
            assert t.error.lower() in str(e.value).lower()
        return
    t.program()  # whatever the program is made of, it must load without error
    if t.asm is not None and t.raw is not None:
        assert assemble(t.asm) == list(t.raw), "-- asm and -- raw disagree"
    if t.asm is None:
        # Raw-only programs (negative/unused-*) set a field the instruction does not use; no text
        # syntax (the suite's, LLVM's) can say that, so they are checked by test_raw_programs_disassemble.
        # Files with neither section (negative/empty*) have no program at all.
        assert t.raw is not None or t.negative
        return
    assembled = assemble(t.asm)
    if not assembled:
        assert t.negative  # empty programs exist only as negative tests (empty, unknown directive)
        return
    _roundtrip_styles(assembled)


@pytest.mark.parametrize("t", [t for t in TESTS if t.raw is not None], ids=[t.name for t in TESTS if t.raw is not None])
def test_raw_programs_disassemble(t: ConformanceTest) -> None:
    """Raw programs (mostly instructions with a non-zero unused field) print in both styles without error."""
    insns = list(t.raw or ())
    for style in ("llvm", "conformance"):
        lines = disasm(insns, style=style)  # type: ignore[arg-type]
        assert lines and all(lines)


def test_parser_sections() -> None:
    t = parse_data("# c\n-- asm\nmov %r0, 1 # one\nexit\n-- mem\n00 ff\n 10\n-- result\n0xFFFFFFFFFFFFFFF6\n"
                   "-- raw\n0x00000001000000b7\n95 00 00 00 00 00 00 00\n-- no register offset\ncall\n-- weird\nx\n",
                   "x.data")
    assert t.mem == b"\x00\xff\x10" and t.result == 0xFFFFFFFFFFFFFFF6 and t.error is None
    assert t.raw == (Insn(0xB7, 0, 0, 0, 1), Insn(0x95))
    assert t.notes == "call" and t.unknown_directives == ("weird",)
    assert assemble(t.asm or "") == [Insn(0xB7, 0, 0, 0, 1), Insn(0x95)]
    e = parse_data("-- asm\nexit\n-- error\n", "n.data")
    assert e.error == "" and e.expects_error and e.result is None


def test_lddw_raw_matches_assembly() -> None:
    lddw = {t.name: t for t in TESTS}["lddw"]
    assert lddw.raw is not None and assemble(lddw.asm or "") == list(lddw.raw)
