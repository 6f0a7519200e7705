"""What PROG_TEST_RUN puts in the context: every u32 field of ``__sk_buff`` (sched_cls, socket_filter)
and ``xdp_md``, read by a one-instruction program, with and without a user context, on SimKernel
and on Linux. Pointer fields (data, data_end, data_meta) differ by address and are compared by
what they delimit elsewhere (test_vm_fixtures)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vm"))

from vmdiff import SCHED_CLS, SOCKET_FILTER, XDP, Rejected, linux_kernel, run_program  # noqa: E402

from tinyaya.isa import Insn  # noqa: E402

pytestmark = [pytest.mark.linux, pytest.mark.usefixtures("sim_engine")]
IPV4 = bytes.fromhex("020000000001000000000002" "0800") + bytes.fromhex(
    "4500005400004000400100007f0000017f000002") + bytes(range(64))
POINTERS = {76, 80, 140, 144, 168}
USER_SKB = bytearray(192)
USER_SKB[8:12] = (0x1234).to_bytes(4, "little")   # mark
USER_SKB[32:36] = (6).to_bytes(4, "little")       # priority
USER_SKB[48:68] = bytes(range(1, 21))             # cb
USER_SKB[160:164] = (200).to_bytes(4, "little")   # wire_len

CASES = [(pt, off, ctx) for pt in (SCHED_CLS, SOCKET_FILTER) for off in range(0, 192, 4) if off not in POINTERS
         for ctx in (None, bytes(USER_SKB))] + [(XDP, off, None) for off in range(12, 24, 4)]


@pytest.fixture(scope="module")
def linux():
    k, reason = linux_kernel()
    if k is None:
        pytest.skip(reason)
    return k


@pytest.mark.parametrize("pt,off,ctx", CASES, ids=[f"{p}-{o}-{'ctx' if c else 'noctx'}" for p, o, c in CASES])
def test_context_field(linux, pt: int, off: int, ctx: bytes | None) -> None:
    from tinyaya.sim_kernel import SimKernel

    insns = [Insn(0x61, 0, 1, off, 0), Insn(0x95)]
    try:
        want = run_program(linux, pt, insns, data=IPV4, ctx=ctx)
    except Rejected:
        pytest.skip("Linux does not let this program type read the field")
    sim = SimKernel()
    try:
        got = run_program(sim, pt, insns, data=IPV4, ctx=ctx)
    except Rejected as e:
        pytest.xfail(f"SimKernel's verifier rejects what Linux accepts: {str(e)[-200:]}")
    finally:
        sim.shutdown()
    assert got == want


def _raw_test_run(kernel, prog_type: int, text: str, ctx: bytes, repeat: int, prog_flags: int = 0) -> tuple:
    """(errno or 0, retval, the ctx_in buffer afterwards): syscall programs write their context back there."""
    import ctypes

    from tinyaya.isa import assemble, encode
    from tinyaya.sys.prog import bpf_prog_load
    from tinyaya.uapi.bpf import BpfCmd, TestRunAttr

    fd = bpf_prog_load(kernel, prog_type, encode(assemble(text)), prog_flags=prog_flags)
    try:
        buf = ctypes.create_string_buffer(ctx, len(ctx))
        attr = TestRunAttr(prog_fd=fd, ctx_in=ctypes.addressof(buf), ctx_size_in=len(ctx), repeat=repeat)
        try:
            kernel.bpf(BpfCmd.BPF_PROG_TEST_RUN, attr)
        except OSError as e:
            return (e.errno, 0, buf.raw)
        return (0, int(attr.retval), buf.raw)
    finally:
        kernel.close(fd)


RAW_TP = "ldxdw %r0, [%r1+0]\nldxdw %r2, [%r1+16]\nadd %r0, %r2\nexit"
ARGS = (5).to_bytes(8, "little") + (7).to_bytes(8, "little") + (9).to_bytes(8, "little")


@pytest.mark.parametrize("size,repeat", [(24, 0), (96, 0), (104, 0), (24, 1)])
def test_raw_tracepoint_args_agree(linux, size: int, repeat: int) -> None:
    from tinyaya.sim_kernel import SimKernel

    ctx = ARGS + bytes(size - len(ARGS))
    sim = SimKernel()
    try:
        assert _raw_test_run(sim, 17, RAW_TP, ctx, repeat) == _raw_test_run(linux, 17, RAW_TP, ctx, repeat)
    finally:
        sim.shutdown()


def test_syscall_program_writes_its_context_back(linux) -> None:
    from tinyaya.sim_kernel import SimKernel

    text = "ldxw %r0, [%r1+0]\nstw [%r1+4], 77\nadd %r0, 1\nexit"
    ctx = bytes([3, 0, 0, 0, 0, 0, 0, 0])
    sim = SimKernel()
    try:
        got = _raw_test_run(sim, 31, text, ctx, 0, prog_flags=16)  # BPF_F_SLEEPABLE: syscall programs are
    finally:
        sim.shutdown()
    assert got == _raw_test_run(linux, 31, text, ctx, 0, prog_flags=16) == (0, 4, bytes([3, 0, 0, 0, 77, 0, 0, 0]))
