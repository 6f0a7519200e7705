"""Soundness: random programs the verifier accepts never fault in the VM (helper C's interpreter).

Programs are built from snippets that stress the checks where verifiers go wrong: map value pointers with
variable offsets bounded (or not) by masks and comparisons, 32-bit and signed/unsigned mixes, spills and
fills, pointer arithmetic with constants, stack accesses at random offsets, and ctx reads. Each program
is loaded into a SimKernel with BPF_PROG_LOAD (a real array map behind the ld_imm64) and, when accepted,
run on a kprobe ``pt_regs`` context filled with random bytes.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.isa import Insn, encode
from tinyaya.isa import opcodes as op

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "200"))
KPROBE = 2
A64, A32 = op.BPF_ALU64, op.BPF_ALU
SIZES = {1: op.BPF_B, 2: op.BPF_H, 4: op.BPF_W, 8: op.BPF_DW}
JMPS = [op.BPF_JEQ, op.BPF_JNE, op.BPF_JGT, op.BPF_JGE, op.BPF_JLT, op.BPF_JLE, op.BPF_JSGT, op.BPF_JSGE,
        op.BPF_JSLT, op.BPF_JSLE, op.BPF_JSET]


def alu(cls: int, o: int, dst: int, imm: int) -> Insn:
    return Insn(cls | o | op.BPF_K, dst, 0, 0, imm)


def alux(cls: int, o: int, dst: int, src: int) -> Insn:
    return Insn(cls | o | op.BPF_X, dst, src)


def ldx(size: int, dst: int, src: int, off: int) -> Insn:
    return Insn(op.BPF_LDX | op.BPF_MEM | SIZES[size], dst, src, off)


def stx(size: int, dst: int, src: int, off: int) -> Insn:
    return Insn(op.BPF_STX | op.BPF_MEM | SIZES[size], dst, src, off)


size = st.sampled_from([1, 2, 4, 8])
scal = st.sampled_from([2, 3, 4, 5])  # scratch scalar registers
snippet = st.one_of(
    # an unknown scalar from the ctx, maybe narrowed
    st.builds(lambda d, off, sz: [ldx(sz, d, 6, off)], scal, st.integers(0, 20).map(lambda x: x * 8), size),
    # mask / shift / add / mul / signed-extend a scalar
    st.builds(lambda d, o, imm, c: [alu(c, o, d, imm)], scal,
              st.sampled_from([op.BPF_AND, op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_RSH, op.BPF_LSH, op.BPF_OR,
                               op.BPF_ARSH, op.BPF_XOR]),
              st.integers(-64, 64), st.sampled_from([A64, A32])),
    st.builds(lambda d, s, o: [alux(A64, o, d, s)], scal, scal,
              st.sampled_from([op.BPF_ADD, op.BPF_SUB, op.BPF_AND, op.BPF_MUL, op.BPF_MOV])),
    st.builds(lambda d, s, bits: [Insn(A64 | op.BPF_MOV | op.BPF_X, d, s, bits)], scal, scal,
              st.sampled_from([8, 16, 32])),
    # a bound check that skips the next snippet's first instruction(s)
    st.builds(lambda d, j, imm, skip, c: [Insn(c | j | op.BPF_K, d, 0, skip, imm)], scal, st.sampled_from(JMPS),
              st.integers(-80, 80), st.integers(1, 3), st.sampled_from([op.BPF_JMP, op.BPF_JMP32])),
    # map value pointer r7 plus a scalar, then an access
    st.builds(lambda s, off, sz: [alux(A64, op.BPF_MOV, 9, 7), alux(A64, op.BPF_ADD, 9, s), ldx(sz, 0, 9, off)],
              scal, st.integers(-8, 56), size),
    st.builds(lambda s, off, sz: [alux(A64, op.BPF_MOV, 9, 7), alux(A64, op.BPF_ADD, 9, s), stx(sz, 9, s, off)],
              scal, st.integers(-8, 56), size),
    st.builds(lambda off, sz: [ldx(sz, 0, 7, off)], st.integers(-4, 52), size),
    # stack: store, load, spill a pointer and fill it back, variable offsets
    st.builds(lambda off, sz, s: [stx(sz, 10, s, off)], st.integers(-520, 4), size, scal),
    st.builds(lambda off, sz, d: [ldx(sz, d, 10, off)], st.integers(-520, 4), size, scal),
    st.builds(lambda slot: [stx(8, 10, 7, -8 * slot), ldx(8, 9, 10, -8 * slot), ldx(8, 0, 9, 0)],
              st.integers(1, 8)),
    st.builds(lambda s, off, sz: [alux(A64, op.BPF_MOV, 9, 10), alu(A64, op.BPF_ADD, 9, -64),
                                  alux(A64, op.BPF_ADD, 9, s), ldx(sz, 0, 9, off)],
              scal, st.integers(-8, 8), size),
)

PROLOGUE = [
    alux(A64, op.BPF_MOV, 6, 1),                       # r6 = ctx
    Insn(op.BPF_ST | op.BPF_MEM | op.BPF_W, 10, 0, -4, 0),
    alux(A64, op.BPF_MOV, 2, 10), alu(A64, op.BPF_ADD, 2, -4),
    Insn(op.LD_IMM64, 1, op.BPF_PSEUDO_MAP_FD, 0, 0), Insn(0),   # r1 = map (fd patched)
    Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 1),         # map_lookup_elem
    Insn(op.BPF_JMP | op.BPF_JNE | op.BPF_K, 0, 0, 2, 0),
    alu(A64, op.BPF_MOV, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT),
    alux(A64, op.BPF_MOV, 7, 0),                       # r7 = map value (48 bytes)
    alu(A64, op.BPF_MOV, 2, 0), alu(A64, op.BPF_MOV, 3, 0), alu(A64, op.BPF_MOV, 4, 0), alu(A64, op.BPF_MOV, 5, 0),
]
EPILOGUE = [alu(A64, op.BPF_MOV, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]


def build(snippets: list[list[Insn]]) -> list[Insn]:
    body = [i for s in snippets for i in s]
    out = PROLOGUE + body + EPILOGUE
    n = len(out)
    # jumps must land inside the program, before the epilogue's exit
    return [i.replace(off=max(0, min(i.off, n - 2 - k))) if op.BPF_CLASS(i.code) in (op.BPF_JMP, op.BPF_JMP32)
            and op.BPF_OP(i.code) not in (op.BPF_CALL, op.BPF_EXIT) and k >= len(PROLOGUE) else i
            for k, i in enumerate(out)]


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    sk = pytest.importorskip("tinyaya.sim_kernel.kernel", reason="SimKernel not available")
    vm_mod = pytest.importorskip("tinyaya.sim_kernel.vm", reason="VM not available")
    return sk, vm_mod.BpfFault


def _load(kernel, insns: list[Insn]):  # type: ignore[no-untyped-def]
    import ctypes

    from tinyaya.uapi.bpf import BpfCmd, MapCreateAttr, ProgLoadAttr

    def call(cmd: int, attr: ctypes.Structure) -> int:
        buf = bytearray(144)
        buf[:ctypes.sizeof(attr)] = bytes(attr)
        return int(kernel.bpf(cmd, buf))

    map_fd = call(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=2, key_size=4, value_size=48, max_entries=1))
    insns = [i.replace(imm=map_fd) if i.code == op.LD_IMM64 and i.src == op.BPF_PSEUDO_MAP_FD else i for i in insns]
    code = ctypes.create_string_buffer(encode(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = ProgLoadAttr(prog_type=KPROBE, insn_cnt=len(insns), insns=ctypes.addressof(code),
                        license=ctypes.addressof(lic))
    try:
        fd = call(BpfCmd.BPF_PROG_LOAD, attr)
    except OSError:
        return None, map_fd
    return fd, map_fd


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(snippet, min_size=1, max_size=12), st.binary(min_size=168, max_size=168))
def test_accepted_programs_do_not_fault(sim, snippets: list[list[Insn]], ctx: bytes) -> None:  # type: ignore[no-untyped-def]
    sk, fault = sim
    kernel = sk.SimKernel()
    insns = build(snippets)
    fd, map_fd = _load(kernel, insns)
    try:
        if fd is None:
            return
        prog = kernel.fds.get(fd)
        try:
            kernel.vm.run_with_ctx(prog, ctx)
        except fault as e:
            pytest.fail(f"the verifier accepted a program that faults: {e}")
    finally:
        if fd is not None:
            kernel.close(fd)
        kernel.close(map_fd)


def _load_xdp(kernel, insns: list[Insn]):  # type: ignore[no-untyped-def]
    import ctypes

    from tinyaya.uapi.bpf import BpfCmd, ProgLoadAttr

    code = ctypes.create_string_buffer(encode(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = ProgLoadAttr(prog_type=6, insn_cnt=len(insns), insns=ctypes.addressof(code),
                        license=ctypes.addressof(lic))
    buf = bytearray(144)
    buf[:ctypes.sizeof(attr)] = bytes(attr)
    try:
        return int(kernel.bpf(BpfCmd.BPF_PROG_LOAD, buf))
    except OSError:
        return None


def _xdp_strategy():  # type: ignore[no-untyped-def]
    from .fuzz_xdp import xdp_snippet
    return st.lists(xdp_snippet, min_size=1, max_size=10)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(_xdp_strategy(), st.binary(min_size=14, max_size=80))
def test_accepted_xdp_programs_do_not_fault(sim, snippets: list[list[Insn]], packet: bytes) -> None:  # type: ignore[no-untyped-def]
    from .fuzz_xdp import build_xdp
    sk, fault = sim
    kernel = sk.SimKernel()
    fd = _load_xdp(kernel, build_xdp(snippets))
    if fd is None:
        return
    try:
        prog = kernel.fds.get(fd)
        try:
            kernel.vm.test_run(prog, packet, None, 1, 0, 0, 0, 0)
        except fault as e:
            pytest.fail(f"the verifier accepted a program that faults: {e}")
    finally:
        kernel.close(fd)
