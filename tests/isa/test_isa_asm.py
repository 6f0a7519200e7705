"""The assembler: both syntaxes, labels, round trips, and AsmError (never another exception) on bad input."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isa_strategies import valid_insns, valid_programs

from tinyaya.isa import AsmError, Insn, assemble, disasm, disasm_lines
from tinyaya.isa import opcodes as op

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(valid_insns())
def test_llvm_round_trip(slots: list[Insn]) -> None:
    text = disasm(slots, mcpu="v4", lossless=True)
    assert len(text) == 1
    assert assemble(text[0]) == slots, text[0]


@FUZZ
@given(valid_insns())
def test_conformance_round_trip(slots: list[Insn]) -> None:
    text = disasm(slots, style="conformance")
    assert len(text) == 1
    assert assemble(text[0]) == slots, text[0]


@FUZZ
@given(valid_insns())
def test_default_llvm_text_round_trips_except_32bit_atomics(slots: list[Insn]) -> None:
    """Plain llvm-objdump text is lossless for valid code but for what LLVM drops (see disasm's doc)."""
    i = slots[0]
    lossy = (
        i.code == op.BPF_STX | op.BPF_ATOMIC | op.BPF_W
        or (i.code & 0xE7 == op.BPF_LD | op.BPF_IND and i.imm != 0)
        or (i.code == op.LD_IMM64 and i.src != 0 and slots[1].imm != 0)
        or (i.code == op.BPF_JMP | op.BPF_CALL and i.src != 0)
    )
    if not lossy:
        assert assemble(disasm(slots)[0]) == slots


@FUZZ
@given(valid_programs())
def test_program_round_trip_both_styles(prog: list[Insn]) -> None:
    for style in ("llvm", "conformance"):
        assert assemble("\n".join(disasm(prog, style=style, mcpu="v4", lossless=True))) == prog  # type: ignore[arg-type]


@pytest.mark.parametrize("line", [
    "garbage", "mov", "mov %r0", "mov %r0, %r1, %r2", "mov %r11x, 1", "mov %r16, 1", "r16 = 1", "mov %r0, 1.5",
    "mov %r0, 0x", "mov32 %r0, 4294967296", "mov32 %r0, 2147483648", "mov %r0, -2147483649",
    "ldxw %r0, [%r1+0x10000]", "ldxw %r0, [%r1+32768]", "ldxw %r0, [%r1", "ldxw %r0, %r1", "ldxdw %r0, [r1+]",
    "stxw [%r1+2], 5", "lock", "lock or [%r10-8]", "lock fetch xchg [%r10-8], %r1", "lock nand [%r10-8], %r1",
    "call", "call foo bar", "call local", "call %r1 %r2", "ja", "ja nowhere", "jeq %r1, 1", "jeq %r1, 1, +0x10000",
    "lddw %r0", "lddw %r0, 0x10000000000000000", "lddw %r0, map_fd()", "lddw %r0, bogus(1)",
    "le8 %r0", "be16 %r0, %r1", "movsx3232 %r0, %r1", "ldxsdw %r0, [%r1]", "ldabsdw 4",
    "r1 = *(u32 *)(r1 + 0x10000)", "w1 = *(u64 *)(r1 + 0x0)", "r1 = *(s64 *)(r1 + 0x0)", "r1 += w2",
    "if r1 > w2 goto +0x1", "if r1 >> r2 goto +1", "r1 = map_name ll", "r0 = cmpxchg_64(r1 + 0x0, r2, r3)",
    "r2 = xchg_64(r1 + 0x0, r3)", "r1 = bswap16 r2", "r1 = (s64)r2", "w1 = (s32)w2", "r1 = -r2",
    "*(u64 *)(r1 + 0x0) = w2", "lock *(u64 *)(r1 + 0x0) += w2", "callx 5", "gotol", "[", "]]", "((", "%",
    "dup: \ndup:", "ld_pseudo r1, 0x10, 0x5", "lddw %r1, pseudo(1, 2)",
])
def test_garbage_raises_asm_error(line: str) -> None:
    with pytest.raises(AsmError) as e:
        assemble("mov %r0, 0\n" + line + "\nexit")
    assert e.value.line_no >= 2
    assert str(e.value).startswith(f"line {e.value.line_no}: ")


@FUZZ
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=60))
def test_any_text_raises_only_asm_error(text: str) -> None:
    try:
        assemble(text)
    except AsmError:
        pass


_TOKENS = ["mov", "r1", "%r1", "w2", "=", "+=", "s>>=", ",", "[", "]", "(", ")", "*", "u32", "s8", "0x10", "-1", "+3",
           "lock", "fetch", "add32", "ll", "goto", "if", "<", "exit", "call", "local", "lddw", "ld_pseudo", "skb",
           "label:", "label", "#", ";", " ", "\n", "ldxw", "stb", "le16", "movsx832", "ja32", "9999999999"]


@FUZZ
@given(st.lists(st.sampled_from(_TOKENS), max_size=25))
def test_token_soup_raises_only_asm_error(tokens: list[str]) -> None:
    try:
        assemble(" ".join(tokens))
    except AsmError:
        pass


def test_labels_and_implicit_exit_label() -> None:
    prog = assemble("""
        mov %r0, 0      # comment
        jeq %r1, 0, done
    top:
        add %r0, 1
        jlt %r0, 10, top
        ja exit
    done: exit
        call local top
    """)
    assert prog[1] == Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, 1, 0, 3, 0)
    assert prog[3].off == -2 and prog[4].off == 0
    assert prog[6] == Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, -5)


def test_llvm_labels_and_annotations() -> None:
    prog = assemble("""
        r0 = 0x0
    LBB0_1:
        if w0 s> 0x5 goto LBB0_2 <f+0x20>
        w0 += 0x1
        goto LBB0_1 <f+0x8>
    LBB0_2:
        gotol +0x0
        exit
    """)
    assert [i.off for i in prog] == [0, 2, 0, -3, 0, 0]


def test_duplicate_label_and_bad_label() -> None:
    with pytest.raises(AsmError, match="line 2: duplicate label"):
        assemble("a: exit\na: exit")
    with pytest.raises(AsmError, match="line 1: invalid label: nowhere"):
        assemble("ja nowhere\nexit")


def test_both_syntaxes_agree() -> None:
    pairs = [
        ("mov %r0, 1", "r0 = 0x1"), ("mov32 %r1, -1", "w1 = -0x1"), ("add %r1, %r2", "r1 += r2"),
        ("sdiv32 %r1, 3", "w1 s/= 0x3"), ("smod %r1, %r2", "r1 s%= r2"), ("arsh %r1, 2", "r1 s>>= 0x2"),
        ("neg %r3", "r3 = -r3"), ("neg32 %r3", "w3 = -w3"), ("be16 %r0", "r0 = be16 r0"), ("le64 %r0", "r0 = le64 r0"),
        ("bswap32 %r0", "r0 = bswap32 r0"), ("swap32 %r0", "r0 = bswap32 r0"), ("movsx832 %r0, %r1", "w0 = (s8)w1"),
        ("movsx3264 %r0, %r1", "r0 = (s32)r1"), ("ldxw %r1, [%r1+8]", "r1 = *(u32 *)(r1 + 0x8)"),
        ("ldxw %r1, [%r1+8]", "w1 = *(u32 *)(r1 + 0x8)"), ("ldxsh %r1, [%r2-4]", "r1 = *(s16 *)(r2 - 0x4)"),
        ("stdw [%r10-8], -1", "*(u64 *)(r10 - 0x8) = -0x1"), ("stxb [%r1+3], %r2", "*(u8 *)(r1 + 0x3) = r2"),
        ("jgt %r1, %r2, +3", "if r1 > r2 goto +0x3"), ("jset32 %r1, 0x40, -1", "if w1 & 0x40 goto -0x1"),
        ("ja +0", "goto +0x0"), ("ja32 -3", "gotol -0x3"), ("call 1", "call 0x1"), ("call %r2", "callx r2"),
        ("exit", "exit"), ("lddw %r0, 0x123", "r0 = 0x123 ll"), ("lddw %r1, map_fd(5)", "ld_pseudo r1, 0x1, 0x5"),
        ("lddw %r1, 0xffffffffffffffff", "r1 = -0x1 ll"), ("lock add [%r1], %r2", "lock *(u64 *)(r1 + 0x0) += r2"),
        ("lock fetch or32 [%r1-4], %r2", "w2 = atomic_fetch_or((u32 *)(r1 - 0x4), w2)"),
        ("lock add32 [%r1], %r2", "lock *(u32 *)(r1 + 0x0) += r2"),
        ("lock xchg [%r1+8], %r3", "r3 = xchg_64(r1 + 0x8, r3)"),
        ("lock cmpxchg32 [%r1+8], %r3", "w0 = cmpxchg32_32(r1 + 0x8, w0, w3)"),
        ("ldabsh 12", "r0 = *(u16 *)skb[0xc]"), ("ldindb %r3, 0", "r0 = *(u8 *)skb[r3]"),
        ("may_goto +2", "may_goto +0x2"), ("call local -2", "call local -0x2"), ("call runtime 7", "call kfunc 0x7"),
    ]
    for conf, llvm in pairs:
        assert assemble(conf) == assemble(llvm), (conf, llvm)


def test_objdump_lines_assemble_as_pasted() -> None:
    dump = ("       0:\t18 01 00 00 05 00 00 00 00 00 00 00 07 00 00 00\tr1 = 0x700000005 ll\n"
            "       2:\t2d 21 03 00 00 00 00 00\tif r1 > r2 goto +0x3 <prog+0x30>\n"
            "       3:\tmov\t%r0,\t1\n"
            "       4:\t95 00 00 00 00 00 00 00\texit\n")
    assert assemble(dump) == [Insn(0x18, 1, 0, 0, 5), Insn(0, 0, 0, 0, 7), Insn(0x2D, 1, 2, 3, 0),
                              Insn(0xB7, 0, 0, 0, 1), Insn(0x95)]


def test_comments() -> None:
    assert assemble("mov %r0, 1;x\nexit// y\nexit#z\n# all\nexit #1 x\ncall bpf_x#5 # helper 5") == [
        Insn(0xB7, 0, 0, 0, 1), Insn(0x95), Insn(0x95), Insn(0x95), Insn(0x85, 0, 0, 0, 5)]


@FUZZ
@given(valid_programs())
def test_kernel_style_round_trip(prog: list[Insn]) -> None:
    """Verifier-log text assembles back, except where the kernel prints less than the encoding
    (the pseudo source of a ld_imm64, and callx, which it prints as a helper call)."""
    from hypothesis import assume

    assume(not any(i.code == op.LD_IMM64 and i.src for i in prog))
    assume(not any(i.code == op.BPF_JMP | op.BPF_CALL | op.BPF_X for i in prog))
    lines = [f"{pc}: {t}\t; R0=scalar()" for pc, t in disasm_lines(prog, style="kernel", helper_name=_names)]
    assert assemble("\n".join(lines)) == prog


def _names(func_id: int) -> str | None:
    return {1: "bpf_map_lookup_elem", 5: "bpf_ktime_get_ns"}.get(func_id)
