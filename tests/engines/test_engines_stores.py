"""Runs of stores through one base register (compiled/stores.py) give the interpreter's results.

Hypothesis blocks of byte/half/word/dword stores through one base register (immediates, registers
holding known values and computed ones, overlapping offsets) with pure ALU instructions between
them (a mov to another register among them), into a region just big enough, one byte too small,
larger, or read-only. Compared with the interpreter: r0 or the fault (pc, address, message), the
regions, and the registers (stored to the stack at the end, some of them only, so that dead values
are exercised too). Plus the syscall_ebpf example: map contents and perf records under both engines.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from engine_harness import ENGINES, observe, sim_kernel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.isa import Insn

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
SIZES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
_settings = settings(max_examples=EXAMPLES * 5, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: registers the ALU instructions use (r1 is the writable region, r2 the read-only one)
VREGS = [0, 3, 4, 5, 7, 8, 9]
#: ALU ops without side effects: add sub mul div or and lsh rsh mod xor mov arsh (and neg)
OPS = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0]


@st.composite
def alu_insn(draw: st.DrawFn) -> Insn:
    cls = draw(st.sampled_from([0x07, 0x04]))
    op = draw(st.sampled_from(OPS))
    d = draw(st.sampled_from(VREGS))
    if op == 0x80:
        return Insn(cls | op, d, 0, 0, 0)
    if draw(st.booleans()):
        return Insn(cls | 0x08 | op, d, draw(st.sampled_from(VREGS)), 0, 0)
    if op in (0x60, 0x70, 0xC0):
        imm = draw(st.integers(0, 63 if cls == 0x07 else 31))
    else:
        imm = draw(st.one_of(st.integers(-3, 300), st.integers(-(1 << 31), (1 << 31) - 1)))
    return Insn(cls | op, d, 0, 0, imm)


@st.composite
def store_insn(draw: st.DrawFn, base: int, span: int) -> Insn:
    size_code = draw(st.sampled_from(list(SIZES)))
    size = SIZES[size_code]
    off = draw(st.integers(0, span - size))
    if draw(st.booleans()):
        return Insn(0x62 | size_code, base, 0, off, draw(st.integers(-(1 << 31), (1 << 31) - 1)))
    return Insn(0x63 | size_code, base, draw(st.sampled_from(VREGS)), off, 0)


@st.composite
def block(draw: st.DrawFn) -> tuple[list[Insn], int, int, int]:
    """(program, region size, base region: 1 writable / 2 read-only, extent of the stores)."""
    base_reg = draw(st.sampled_from([1, 1, 1, 2, 6]))  # 6: a copy of r1
    span = draw(st.integers(8, 40))
    out: list[Insn] = []
    for r in VREGS:  # some known, some not (a 64-bit value the translator sees as computed)
        if draw(st.booleans()):
            out.append(Insn(0xB7, r, 0, 0, draw(st.integers(-(1 << 31), (1 << 31) - 1))))
        else:
            v = draw(st.integers(0, (1 << 64) - 1))
            out += [Insn(0x18, r, 0, 0, v & 0xFFFFFFFF), Insn(0, 0, 0, 0, v >> 32)]
            out.append(Insn(0x07, r, 0, 0, 0))  # an add: no longer a known constant
    if base_reg == 6:
        out.append(Insn(0xBF, 6, 1, 0, 0))
    body: list[Insn] = []
    n = draw(st.integers(4, 24))
    for _ in range(n):
        kind = draw(st.sampled_from(["store", "store", "store", "alu", "mov"] * 6 + ["base"]))
        if kind == "base":  # the base register moves: the run ends there
            body.append(Insn(0x07, base_reg, 0, 0, draw(st.sampled_from([0, 1, 8]))))
        elif kind == "store":
            body.append(draw(store_insn(base_reg, span)))
        elif kind == "alu":
            body.append(draw(alu_insn()))
        else:
            body.append(Insn(0xBF, draw(st.sampled_from(VREGS)), draw(st.sampled_from(VREGS)), 0, 0))
    extent = max([i.off + SIZES[i.code & 0x18] for i in body if i.code & 0x07 in (0x02, 0x03)], default=1)
    out += body
    kept = draw(st.lists(st.sampled_from(VREGS), unique=True))
    for i, r in enumerate(kept):
        out.append(Insn(0x7B, 10, r, -8 * (i + 1), 0))
    out.append(Insn(0xBF, 0, draw(st.sampled_from(VREGS)), 0, 0))
    out.append(Insn(0x95, 0, 0, 0, 0))
    delta = draw(st.sampled_from([0, 0, -1, 3]))
    return out, max(extent + delta, 1), base_reg, extent


@_settings
@given(block())
def test_store_runs_match_interpreter(case: tuple[list[Insn], int, int, int]) -> None:
    insns, size, _base, _extent = case
    init = bytes((i * 7 + 1) & 0xFF for i in range(size))
    want = observe("interp", insns, init=init)
    for engine in ENGINES:
        assert observe(engine, insns, init=init) == want, engine


def _run(insns: list[Insn], size: int) -> Any:
    return observe("compiled", insns, init=bytes(size)), observe("interp", insns, init=bytes(size))


def test_run_one_byte_too_small_faults_at_the_last_store() -> None:
    """The run's extent is 16 and the region 15 bytes: the stores before the dword are done."""
    insns = [Insn(0xB7, 3, 0, 0, 0x41), Insn(0x62 | 0x10, 1, 0, 0, 7), Insn(0x63 | 0x10, 1, 3, 1, 0),
             Insn(0x77, 3, 0, 0, 1), Insn(0x07, 3, 0, 0, 5), Insn(0x63 | 0x08, 1, 3, 2, 0),
             Insn(0x62, 1, 0, 4, -1), Insn(0x7B, 1, 3, 8, 0), Insn(0xBF, 0, 3, 0, 0),
             Insn(0x95, 0, 0, 0, 0)]
    for size in (16, 15, 9, 1):
        got, want = _run(insns, size)
        assert got == want, size
    got, want = _run(insns, 15)
    assert want[0][0][0] == "fault" and want[0][0][1] == 7


def _syscall_run(engine: str) -> Any:
    from test_engines_fixtures import SYSCALL_EBPF, _dump_maps

    from tinyaya.programs import EbpfLogger
    from tinyaya.programs.ebpf import Ebpf

    k = sim_kernel(engine)
    e = Ebpf.load_file(str(SYSCALL_EBPF), kernel=k)
    logger = EbpfLogger.init(e, page_count=8)
    p = e.program_mut("syscall_ebpf")
    p.load()
    p.attach("sys_enter", 0)
    d = k.machine.workload("default", seed=5)
    counts: Counter[int] = Counter()
    records: list[bytes] = []
    for _ in range(20):
        d.step(10, counts)
        records += [bytes(r) for r in logger._raw_records()]
    return {"maps": _dump_maps(k, e), "records": records, "counts": dict(counts)}


@pytest.mark.parametrize("engine", ENGINES)
def test_syscall_example_same_maps_and_records(engine: str) -> None:
    """The syscall_ebpf example (aya-log's TLV writes into the per-CPU buffer, the stores this module
    coalesces): map contents and the perf records the logger reads."""
    from test_engines_fixtures import SYSCALL_EBPF

    if not SYSCALL_EBPF.exists():
        pytest.skip("the syscall_ebpf example is not built")
    want = _syscall_run("interp")
    assert want["records"]
    assert _syscall_run(engine) == want
