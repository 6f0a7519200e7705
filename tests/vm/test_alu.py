"""ALU, jump and byte-swap semantics against values worked out by hand from RFC 9669 and Linux."""
from __future__ import annotations

import pytest
from vmfakes import kernel_fixture, prog  # noqa: F401 - the kernel fixture

M64 = (1 << 64) - 1


def run(kernel, src: str) -> int:
    return kernel.vm.run(prog(src), 0, 0)


@pytest.mark.parametrize("src,expected", [
    ("mov %r0, 7\ndiv %r0, 0\nexit", 0),                       # division by zero gives 0
    ("mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit", 7),          # modulo by zero leaves dst
    ("lddw %r0, 0x100000007\nmov32 %r1, 0\nmod32 %r0, %r1\nexit", 7),  # ... zero-extended for 32 bits
    ("mov %r0, -7\nsdiv %r0, 2\nexit", (-3) & M64),             # truncates toward zero
    ("mov %r0, -7\nmov %r1, 2\nsmod %r0, %r1\nexit", (-1) & M64),  # sign of the dividend
    ("lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit", 1 << 63),  # INT_MIN / -1 == INT_MIN
    ("mov %r0, 1\nlsh %r0, 65\nexit", 2),                       # shift amount masked to 63
    ("mov32 %r0, 1\nlsh32 %r0, 33\nexit", 2),                   # ... and to 31
    ("mov %r0, -16\narsh %r0, 2\nexit", (-4) & M64),
    ("mov32 %r0, -16\narsh32 %r0, 2\nexit", 0xFFFF_FFFC),       # 32-bit results are zero-extended
    ("mov %r0, -1\nadd32 %r0, 1\nexit", 0),
    ("mov %r0, 0x1234\nbe16 %r0\nexit", 0x3412),
    ("lddw %r0, 0x1122334455667788\nle32 %r0\nexit", 0x55667788),
    ("lddw %r0, 0x1122334455667788\nswap64 %r0\nexit", 0x8877665544332211),
    ("mov %r1, 0x80\nmovsx864 %r0, %r1\nexit", (-128) & M64),
    ("mov %r0, 5\nneg %r0\nexit", (-5) & M64),
])
def test_alu(kernel, src: str, expected: int) -> None:
    assert run(kernel, src) == expected


@pytest.mark.parametrize("cond,taken", [
    ("jsgt %r1, 0, +1", False),  # r1 = -1 is negative signed
    ("jgt %r1, 0, +1", True),    # ... and huge unsigned
    ("jslt32 %r1, 0, +1", True),
    ("jset %r1, 0x10, +1", True),
])
def test_jumps(kernel, cond: str, taken: bool) -> None:
    r0 = run(kernel, f"mov %r1, -1\nmov %r0, 0\n{cond}\nexit\nmov %r0, 1\nexit")
    assert r0 == (1 if taken else 0)


def test_stack_and_atomics(kernel) -> None:
    src = """
    stdw [%r10-8], 10
    mov %r1, 5
    lock add [%r10-8], %r1
    mov %r2, 3
    lock fetch add [%r10-8], %r2
    mov %r0, 15
    mov %r3, 99
    lock cmpxchg [%r10-8], %r3
    ldxdw %r4, [%r10-8]
    mov %r0, %r4
    add %r0, %r2
    exit
    """
    # 10+5=15; fetch returns 15 into r2 and stores 18; cmpxchg compares 18 with r0=15: no store, r0=18
    assert run(kernel, src) == 18 + 15


def test_may_goto_falls_through_until_the_counter_runs_out(kernel) -> None:
    from tinyaya.isa import Insn

    kernel.vm.budget = 1 << 30
    # r0 = 0; loop: may_goto +2; r0 += 1; ja loop; exit  -> counts BPF_MAX_LOOPS iterations
    insns = [Insn(0xB7, 0, 0, 0, 0), Insn(0xE5, 0, 0, 2, 0), Insn(0x07, 0, 0, 0, 1), Insn(0x05, 0, 0, -3, 0),
             Insn(0x95)]
    small = prog(insns)
    env_loops = 1000
    from tinyaya.sim_kernel.vm import interp

    old = interp.BPF_MAX_LOOPS
    interp.BPF_MAX_LOOPS = env_loops  # the counter's start, patched small for the test
    try:
        assert kernel.vm.run(small, 0, 0) == env_loops
    finally:
        interp.BPF_MAX_LOOPS = old


def test_sign_extending_loads_and_acquire_release(kernel) -> None:
    from tinyaya.isa import Insn

    insns = [
        Insn(0x7A, 10, 0, -8, -2),            # *(u64 *)(r10-8) = -2
        Insn(0x91, 1, 10, -8, 0),             # r1 = *(s8 *)(r10-8)
        Insn(0x89, 2, 10, -8, 0),             # r2 = *(s16 *)(r10-8)
        Insn(0xDB, 10, 1, -16, 0x110),        # store_release(u64 *)(r10-16) = r1
        Insn(0xDB, 3, 10, -16, 0x100),        # r3 = load_acquire(u64 *)(r10-16)
        Insn(0xBF, 0, 1), Insn(0x0F, 0, 2), Insn(0x0F, 0, 3), Insn(0x95),
    ]
    assert kernel.vm.run(prog(insns), 0, 0) == (-6) & M64


def test_gotol(kernel) -> None:
    from tinyaya.isa import Insn

    insns = [Insn(0xB7, 0, 0, 0, 1), Insn(0x06, 0, 0, 0, 1), Insn(0xB7, 0, 0, 0, 2), Insn(0x95)]
    assert kernel.vm.run(prog(insns), 0, 0) == 1
