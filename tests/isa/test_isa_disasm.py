"""Disassembler unit cases. Every expected llvm string is llvm-objdump-19's own output for that encoding."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyaya.isa import Insn, assemble, disasm, disasm_insn, disasm_lines, jump_target
from tinyaya.isa import opcodes as op

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "300"))

# (code, dst, src, off, imm) -> llvm-objdump-19 -d --mcpu=v4 text (recorded with clang-19 + llvm-objdump-19)
LLVM_V4 = [
    ((0xB7, 0, 0, 0, 1), "r0 = 0x1"),
    ((0xB7, 1, 0, 0, -1), "r1 = -0x1"),
    ((0xB7, 1, 0, 0, -0x80000000), "r1 = -0x80000000"),
    ((0xB4, 1, 0, 0, 16), "w1 = 0x10"),
    ((0x61, 1, 1, 8, 0), "w1 = *(u32 *)(r1 + 0x8)"),
    ((0x79, 0, 10, -512, 0), "r0 = *(u64 *)(r10 - 0x200)"),
    ((0x71, 2, 3, -0x8000, 0), "w2 = *(u8 *)(r3 - 0x8000)"),
    ((0x81, 1, 2, 4, 0), "r1 = *(s32 *)(r2 + 0x4)"),
    ((0x91, 1, 2, 0, 0), "r1 = *(s8 *)(r2 + 0x0)"),
    ((0x7A, 10, 0, -8, -1), "*(u64 *)(r10 - 0x8) = -0x1"),
    ((0x63, 10, 1, -4, 0), "*(u32 *)(r10 - 0x4) = w1"),
    ((0x2D, 1, 2, 3, 0), "if r1 > r2 goto +0x3"),
    ((0x25, 1, 0, -3, 5), "if r1 > 0x5 goto -0x3"),
    ((0x16, 1, 0, 1, -2), "if w1 == -0x2 goto +0x1"),
    ((0x05, 0, 0, 0, 0), "goto +0x0"),
    ((0x06, 0, 0, 0, -3), "gotol -0x3"),
    ((0x85, 0, 0, 0, 1), "call 0x1"),
    ((0x85, 0, 1, 0, -2), "call -0x2"),
    ((0x8D, 2, 0, 0, 0), "callx r2"),
    ((0x95, 0, 0, 0, 0), "exit"),
    ((0xE5, 0, 0, 3, 0), "may_goto +0x3"),
    ((0xDB, 1, 2, 0, 0), "lock *(u64 *)(r1 + 0x0) += r2"),
    ((0xDB, 1, 2, 8, 1), "r2 = atomic_fetch_add((u64 *)(r1 + 0x8), r2)"),
    ((0xC3, 1, 2, -4, 0x40), "lock *(u32 *)(r1 - 0x4) |= w2"),
    ((0xC3, 1, 2, 0, 0xE1), "w2 = xchg32_32(r1 + 0x0, w2)"),
    ((0xDB, 1, 2, 0, 0xF1), "r0 = cmpxchg_64(r1 + 0x0, r0, r2)"),
    ((0xDB, 1, 2, 0, 0x10), "<unknown>"),
    ((0xD4, 0, 0, 0, 16), "r0 = le16 r0"),
    ((0xDC, 0, 0, 0, 64), "r0 = be64 r0"),
    ((0xD7, 0, 0, 0, 32), "r0 = bswap32 r0"),
    ((0xDC, 0, 0, 0, 8), "<unknown>"),
    ((0xBC, 0, 1, 8, 0), "w0 = (s8)w1"),
    ((0xBF, 0, 1, 32, 0), "r0 = (s32)r1"),
    ((0xBC, 0, 1, 32, 0), "<unknown>"),
    ((0xBF, 1, 2, 1, 0x10002), "r1 = addr_space_cast(r2, 0x1, 0x2)"),
    ((0x3F, 0, 1, 1, 0), "r0 s/= r1"),
    ((0x94, 0, 0, 1, 3), "w0 s%= 0x3"),
    ((0x37, 0, 0, 2, 3), "<unknown>"),
    ((0x87, 3, 0, 0, 0), "r3 = -r3"),
    ((0xC7, 1, 0, 0, 8), "r1 s>>= 0x8"),
    ((0x07, 1, 0, 1, 8), "<unknown>"),
    ((0x20, 0, 0, 0, 4), "r0 = *(u32 *)skb[0x4]"),
    ((0x50, 0, 1, 0, 4), "r0 = *(u8 *)skb[r1]"),
    ((0x38, 0, 0, 0, 4), "<unknown>"),
    ((0x0F, 1, 12, 0, 0), "<unknown>"),
    ((0x07, 11, 0, 0, 5), "r11 += 0x5"),
    ((0x95, 0, 0, 0, 1), "<unknown>"),
    ((0xFF, 0, 0, 0, 0), "<unknown>"),
]

# Where plain `llvm-objdump-19 -d` (no ALU32) differs.
LLVM_GENERIC = [
    ((0x61, 1, 1, 8, 0), "r1 = *(u32 *)(r1 + 0x8)"),
    ((0x63, 10, 1, -4, 0), "*(u32 *)(r10 - 0x4) = r1"),
    ((0xC3, 1, 2, 0, 1), "lock *(u32 *)(r1 + 0x0) += r2"),
    ((0xC3, 1, 2, -4, 0x40), "<unknown>"),
    ((0x79, 0, 10, -512, 0), "r0 = *(u64 *)(r10 - 0x200)"),
]


@pytest.mark.parametrize("fields,text", LLVM_V4)
def test_llvm_v4(fields: tuple[int, int, int, int, int], text: str) -> None:
    assert disasm_insn([Insn(*fields)], 0, mcpu="v4") == text


@pytest.mark.parametrize("fields,text", LLVM_GENERIC)
def test_llvm_generic_is_the_default(fields: tuple[int, int, int, int, int], text: str) -> None:
    assert disasm_insn([Insn(*fields)], 0) == text


def test_ld_imm64_forms() -> None:
    def pair(src: int, lo: int, hi: int, dst: int = 1) -> list[Insn]:
        return [Insn(op.LD_IMM64, dst, src, 0, lo), Insn(0, 0, 0, 0, hi)]

    assert disasm(pair(0, 1, 0)) == ["r1 = 0x1 ll"]
    assert disasm(pair(0, -1, -1)) == ["r1 = -0x1 ll"]
    assert disasm(pair(0, -1, 0)) == ["r1 = 0xffffffff ll"]
    assert disasm(pair(0, 0, -0x80000000)) == ["r1 = -0x8000000000000000 ll"]
    assert disasm(pair(0, 5, 7)) == ["r1 = 0x700000005 ll"]
    assert disasm(pair(op.BPF_PSEUDO_MAP_FD, 5, 0)) == ["ld_pseudo\tr1, 0x1, 0x5"]
    assert disasm(pair(op.BPF_PSEUDO_MAP_VALUE, -1, 8)) == ["ld_pseudo\tr1, 0x2, 0xffffffff"]
    assert disasm(pair(op.BPF_PSEUDO_MAP_VALUE, 5, 8), lossless=True) == ["ld_pseudo\tr1, 0x2, 0x5, 0x8"]
    # llvm-objdump cannot decode a first slot with off != 0 and steps over it alone
    assert disasm_lines([Insn(op.LD_IMM64, 1, 0, 3, 5), Insn(0, 0, 0, 0, 7)]) == [(0, "<unknown>"), (1, "<unknown>")]
    assert disasm([Insn(op.LD_IMM64, 1, 0, 0, 5)]) == ["<unknown>"]  # truncated pair
    assert disasm(pair(0, 1, 0), style="conformance") == ["lddw %r1, 0x1"]
    assert disasm(pair(op.BPF_PSEUDO_MAP_VALUE, 3, 16), style="conformance") == ["lddw %r1, map_value(3, 0x10)"]
    assert disasm(pair(op.BPF_PSEUDO_FUNC, 4, 0), style="conformance") == ["lddw %r1, func(+4)"]


def test_symbolize_hook_names_maps() -> None:
    prog = [Insn(op.LD_IMM64, 1, op.BPF_PSEUDO_MAP_FD, 0, 7), Insn(0), Insn(op.LD_IMM64, 2, 0, 0, 9), Insn(0),
            Insn(op.BPF_JMP | op.BPF_EXIT)]
    seen: list[int] = []

    def names(pc: int, insn: Insn) -> str | None:
        seen.append(pc)
        return "events" if insn.src == op.BPF_PSEUDO_MAP_FD else None

    assert disasm(prog, symbolize=names) == ["r1 = events ll", "r2 = 0x9 ll", "exit"]
    assert seen == [0, 2]
    whole = disasm(prog, symbolize=lambda pc, i: "r1 = map[events] ll" if pc == 0 else None)
    assert whole[0] == "r1 = map[events] ll"


def test_target_label_hook_and_jump_target() -> None:
    prog = assemble("ja +1\nexit\nif r1 > 0x5 goto -0x3\ncall local -4\nexit")
    text = disasm(prog, target_label=lambda slot: f"f+0x{slot * 8:x}")
    assert text[0] == "goto +0x1 <f+0x10>" and text[2] == "if r1 > 0x5 goto -0x3 <f+0x0>"
    assert [jump_target(prog, pc) for pc in range(5)] == [2, None, 0, 0, None]


CONFORMANCE = [
    ("mov %r0, 1", (0xB7, 0, 0, 0, 1)), ("mov32 %r0, -5", (0xB4, 0, 0, 0, -5)),
    ("mov %r0, -128", (0xB7, 0, 0, 0, -128)), ("mov %r0, 0x80000000", (0xB7, 0, 0, 0, -(1 << 31))),
    ("jgt %r1, %r2, +3", (0x2D, 1, 2, 3, 0)), ("jne32 %r1, 0xb, -2", (0x56, 1, 0, -2, 11)),
    ("ldxw %r0, [%r1+4]", (0x61, 0, 1, 4, 0)), ("ldxdw %r0, [%r10-8]", (0x79, 0, 10, -8, 0)),
    ("ldxsb %r0, [%r1]", (0x91, 0, 1, 0, 0)), ("stw [%r10-4], 0x12345", (0x62, 10, 0, -4, 0x12345)),
    ("be16 %r0", (0xDC, 0, 0, 0, 16)), ("le32 %r0", (0xD4, 0, 0, 0, 32)), ("swap64 %r0", (0xD7, 0, 0, 0, 64)),
    ("sdiv %r0, %r1", (0x3F, 0, 1, 1, 0)), ("smod32 %r0, -3", (0x94, 0, 0, 1, -3)),
    ("movsx1664 %r0, %r1", (0xBF, 0, 1, 16, 0)), ("neg32 %r2", (0x84, 2, 0, 0, 0)),
    ("call 1", (0x85, 0, 0, 0, 1)), ("call local +3", (0x85, 0, 1, 0, 3)), ("call %r2", (0x8D, 2, 0, 0, 0)),
    ("ja32 -1", (0x06, 0, 0, 0, -1)), ("exit", (0x95, 0, 0, 0, 0)),
    ("lock fetch add32 [%r10-4], %r1", (0xC3, 10, 1, -4, 1)), ("lock xchg [%r10-8], %r1", (0xDB, 10, 1, -8, 0xE1)),
    ("lock cmpxchg32 [%r1+2], %r3", (0xC3, 1, 3, 2, 0xF1)), ("lock and [%r1], %r3", (0xDB, 1, 3, 0, 0x50)),
]


@pytest.mark.parametrize("text,fields", CONFORMANCE)
def test_conformance_style(text: str, fields: tuple[int, int, int, int, int]) -> None:
    assert disasm_insn([Insn(*fields)], 0, style="conformance") == text
    assert assemble(text) == [Insn(*fields)]


def _any_insn() -> st.SearchStrategy[Insn]:
    return st.builds(Insn, st.integers(0, 255), st.integers(0, 15), st.integers(0, 15),
                     st.integers(-(1 << 15), (1 << 15) - 1), st.integers(-(1 << 31), (1 << 31) - 1))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(_any_insn(), max_size=8))
def test_any_slots_disassemble_without_error(insns: list[Insn]) -> None:
    for style in ("llvm", "conformance", "kernel"):
        for mcpu in ("generic", "v4"):
            lines = disasm_lines(insns, style=style, mcpu=mcpu, lossless=True)  # type: ignore[arg-type]
            assert all(isinstance(t, str) and t for _, t in lines)
            assert sorted({pc for pc, _ in lines}) == [pc for pc, _ in lines]


def test_conformance_hex_immediates_are_32_bit_patterns() -> None:
    """As in the suite's assembler, a hex immediate is the 32-bit pattern: 0xffffff80 is -128."""
    assert assemble("mov %r0, 0xffffff80\njeq %r1, 0x80000000, +1") == [
        Insn(0xB7, 0, 0, 0, -128), Insn(0x15, 1, 0, 1, -(1 << 31))]
