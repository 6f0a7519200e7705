"""Helpers whose results do not depend on time, CPU or the caller, on SimKernel and on Linux.

Each program is a small XDP program in assembly (maps referenced as ``map[i]``: ld_imm64 with
BPF_PSEUDO_MAP_FD, patched with the fd). Compared: retval, data_out and the maps afterwards
(hashes by key, queues and stacks in pop order).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vm"))

from vmdiff import (  # noqa: E402
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_PROG_ARRAY,
    BPF_MAP_TYPE_QUEUE,
    BPF_MAP_TYPE_RINGBUF,
    BPF_MAP_TYPE_STACK,
    XDP,
    ArrayMap,
    Rejected,
    linux_kernel,
    map_ref,
    run_on_vm,
    run_program,
)

from tinyaya.isa import Insn, assemble  # noqa: E402

pytestmark = [pytest.mark.linux, pytest.mark.usefixtures("sim_engine")]
PACKET = bytes(range(7, 7 + 64))


def asm(*parts: str | list[Insn]) -> list[Insn]:
    out: list[Insn] = []
    for p in parts:
        out += assemble(p) if isinstance(p, str) else p
    return out


CALL = "call {}\n".format

HASH = asm(
    "stw [%r10-4], 3\nstdw [%r10-16], 0x1111\n", map_ref(0),
    "mov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 0\n", CALL(2),  # update k=3 ANY
    "mov %r6, %r0\nstdw [%r10-16], 0x2222\n", map_ref(0),
    "mov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 1\n", CALL(2),  # NOEXIST: -EEXIST
    "lsh %r0, 8\nor %r6, %r0\nstw [%r10-4], 9\n", map_ref(0),
    "mov %r2, %r10\nadd %r2, -4\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 2\n", CALL(2),  # EXIST on absent
    "lsh %r0, 16\nor %r6, %r0\nstw [%r10-4], 3\n", map_ref(0),
    "mov %r2, %r10\nadd %r2, -4\n", CALL(1),
    "jeq %r0, 0, +3\nldxdw %r1, [%r0+0]\nadd %r1, 5\nstxdw [%r0+0], %r1\nstw [%r10-4], 77\n", map_ref(0),
    "mov %r2, %r10\nadd %r2, -4\n", CALL(3),  # delete an absent key: -ENOENT
    "lsh %r0, 24\nor %r6, %r0\nmov %r0, %r6\nexit\n",
)

QUEUE = asm(
    *[p for v in (5, 6, 7) for p in (f"stdw [%r10-8], {v}\n", map_ref(0),
                                       "mov %r2, %r10\nadd %r2, -8\nmov %r3, 0\n", CALL(87),
                                       "mov %r6, %r0\n")],
    "stdw [%r10-8], 8\n", map_ref(0), "mov %r2, %r10\nadd %r2, -8\nmov %r3, 2\n", CALL(87),  # BPF_EXIST
    map_ref(0), "mov %r2, %r10\nadd %r2, -16\n", CALL(88),  # pop
    "ldxdw %r7, [%r10-16]\n", map_ref(0), "mov %r2, %r10\nadd %r2, -16\n", CALL(89),  # peek
    "ldxdw %r8, [%r10-16]\nlsh %r7, 8\nor %r7, %r8\nlsh %r6, 16\nor %r7, %r6\nmov %r0, %r7\nexit\n",
)

PROBE_READ = asm(
    # r9 = the packet, checked to hold 8 bytes (r6-r9 survive helper calls)
    "ldxw %r2, [%r1+4]\nldxw %r9, [%r1+0]\nmov %r3, %r9\nadd %r3, 8\njle %r3, %r2, +2\nmov %r0, 0\nexit\n",
    "stdw [%r10-8], 0x41424344\nstdw [%r10-16], -1\n",
    "mov %r1, %r10\nadd %r1, -16\nmov %r2, 8\nmov %r3, %r10\nadd %r3, -8\n", CALL(113),  # probe_read_kernel
    "mov %r6, %r0\nldxdw %r7, [%r10-16]\n",
    "mov %r1, %r10\nadd %r1, -24\nmov %r2, 8\nmov %r3, 0\n", CALL(113),  # NULL: -EFAULT, dst zeroed
    "lsh %r0, 8\nxor %r6, %r0\nldxdw %r8, [%r10-24]\nxor %r7, %r8\n",
    "mov %r1, %r10\nadd %r1, -32\nmov %r2, 3\nmov %r3, %r10\nadd %r3, -8\n", CALL(115),  # _str: 2 bytes + NUL
    "lsh %r0, 16\nxor %r6, %r0\nldxb %r8, [%r10-30]\nlsh %r8, 32\nxor %r7, %r8\n",
    "stxdw [%r9+0], %r7\nmov %r0, %r6\nexit\n",
)

RINGBUF = asm(
    map_ref(0), "mov %r2, 16\nmov %r3, 0\n", CALL(131),  # reserve 16
    "jeq %r0, 0, +4\nstdw [%r0+0], 0x55\nmov %r1, %r0\nmov %r2, 0\n", CALL(132),  # submit
    map_ref(0), "mov %r2, 0\n", CALL(134), "mov %r6, %r0\n",  # AVAIL_DATA
    "stdw [%r10-8], 7\n", map_ref(0), "mov %r2, %r10\nadd %r2, -8\nmov %r3, 8\nmov %r4, 0\n", CALL(130),
    "lsh %r0, 16\nor %r6, %r0\n", map_ref(0), "mov %r2, 1\n", CALL(134),  # RING_SIZE
    "lsh %r0, 24\nor %r6, %r0\n", map_ref(0), "mov %r2, 3\n", CALL(134),  # PROD_POS
    "lsh %r0, 40\nor %r6, %r0\nmov %r0, %r6\nexit\n",
)

TAIL_TARGETS = (tuple(assemble("mov %r0, 100\nexit")), tuple(assemble("mov %r0, 200\nexit")))
TAIL = asm(
    "mov %r6, %r1\n", map_ref(0, dst=2), "mov %r1, %r6\nmov %r3, 5\n", CALL(12),  # index past the end: falls through
    map_ref(0, dst=2), "mov %r1, %r6\nmov %r3, 1\n", CALL(12), "mov %r0, 1\nexit\n",
)

CASES = {
    "hash": (HASH, (ArrayMap(8, 4, map_type=BPF_MAP_TYPE_HASH),)),
    "queue": (QUEUE, (ArrayMap(8, 3, map_type=BPF_MAP_TYPE_QUEUE, key_size=0),)),
    "stack": (QUEUE, (ArrayMap(8, 3, map_type=BPF_MAP_TYPE_STACK, key_size=0),)),
    "probe_read": (PROBE_READ, ()),
    "ringbuf": (RINGBUF, (ArrayMap(0, 4096, map_type=BPF_MAP_TYPE_RINGBUF, key_size=0),)),
    "tail_call": (TAIL, (ArrayMap(4, 2, map_type=BPF_MAP_TYPE_PROG_ARRAY, progs=TAIL_TARGETS),)),
}


@pytest.fixture(scope="module")
def linux():
    k, reason = linux_kernel()
    if k is None:
        pytest.skip(reason)
    return k


@pytest.mark.parametrize("name", list(CASES))
def test_helper_agrees(linux, name: str) -> None:
    from tinyaya.sim_kernel import SimKernel

    insns, maps = CASES[name]
    try:
        want = run_program(linux, XDP, insns, data=PACKET, maps=maps)
    except Rejected as e:
        pytest.fail(f"the test program itself is invalid for Linux: {e}")
    sim = SimKernel()
    try:
        got = run_program(sim, XDP, insns, data=PACKET, maps=maps)
    except Rejected as e:
        pytest.xfail(f"SimKernel's verifier rejects what Linux accepts: {str(e)[-300:]}")
    finally:
        sim.shutdown()
    assert got == want


def _xdp_adjust(call: int, delta: int) -> list[Insn]:
    """adjust(ctx, delta), then r0 = ret << 16 | (data_end - data) << 8 | (data - data_meta)."""
    return asm(f"mov %r6, %r1\nmov %r2, {delta}\n", CALL(call),
               "ldxw %r2, [%r6+0]\nldxw %r3, [%r6+4]\nldxw %r4, [%r6+8]\nsub %r3, %r2\nsub %r2, %r4\n"
               "lsh %r0, 16\nlsh %r3, 8\nor %r0, %r3\nor %r0, %r2\nexit\n")


SKB_BYTES = asm(
    "mov %r6, %r1\nmov %r2, 12\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 4\n", CALL(26),       # load 4 bytes at 12
    "mov %r7, %r0\nldxw %r8, [%r10-8]\nstw [%r10-16], 0x41414141\n",
    "mov %r1, %r6\nmov %r2, 20\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 4\nmov %r5, 0\n", CALL(9),  # store at 20
    "lsh %r0, 8\nor %r7, %r0\nmov %r1, %r6\nmov %r2, 200\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 4\n", CALL(26),
    "lsh %r0, 16\nxor %r7, %r0\nldxw %r1, [%r10-8]\nxor %r8, %r1\n",                         # past the end
    "mov %r1, %r6\nmov %r2, 0\nmov %r3, %r10\nadd %r3, -16\nmov %r4, 4\nmov %r5, 8\n", CALL(9),  # bad flags
    "lsh %r0, 24\nxor %r7, %r0\nlsh %r8, 32\nxor %r7, %r8\nmov %r0, %r7\nexit\n",
)
PACKET_CASES = {
    **{f"adjust_head{d}": (XDP, _xdp_adjust(44, d)) for d in (-216, -217, 4, 50, 51)},
    **{f"adjust_tail{d}": (XDP, _xdp_adjust(65, d)) for d in (-50, -51, 8, 400)},
    **{f"adjust_meta{d}": (XDP, _xdp_adjust(54, d)) for d in (-4, -6, -32, -36, -252, -256, 4)},
    "skb_bytes": (3, SKB_BYTES),
}


@pytest.mark.parametrize("name", list(PACKET_CASES))
def test_packet_helper_agrees(linux, name: str) -> None:
    prog_type, insns = PACKET_CASES[name]
    _vm_agrees(linux, prog_type, insns, PACKET)


def _vm_agrees(linux, prog_type: int, insns: list[Insn], data: bytes) -> None:
    """Through PROG_LOAD on both kernels; where SimKernel's verifier does not know a helper yet, the
    interpreter runs the program directly (the execution engine is what these tests are about)."""
    from tinyaya.sim_kernel import SimKernel

    want = run_program(linux, prog_type, insns, data=data)
    sim = SimKernel()
    try:
        try:
            got = run_program(sim, prog_type, insns, data=data)
        except Rejected:
            got = run_on_vm(sim, prog_type, insns, data=data)
    finally:
        sim.shutdown()
    assert got == want


CSUM_DIFF = asm(
    "lddw %r1, 0x1234567890abcdef\nstxdw [%r10-8], %r1\nstdw [%r10-16], -2\n"
    "lddw %r1, 0x7fffffff00000001\nstxdw [%r10-24], %r1\nstdw [%r10-32], 0\n",
    "mov %r1, %r10\nadd %r1, -16\nmov %r2, 8\nmov %r3, %r10\nadd %r3, -32\nmov %r4, 12\nmov %r5, 0x1357\n", CALL(28),
    "mov %r6, %r0\nmov %r1, 0\nmov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 4\nmov %r5, -1\n", CALL(28),
    "xor %r6, %r0\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 6\nmov %r3, 0\nmov %r4, 0\nmov %r5, 0\n", CALL(28),
    "lsh %r0, 40\nxor %r0, %r6\nexit\n",
)


def _csum_replace(call: int, offset: int, frm: int, to: int, flags: int) -> list[Insn]:
    return asm(f"mov %r2, {offset}\nlddw %r3, {frm & (2**64 - 1)}\nlddw %r4, {to & (2**64 - 1)}\nmov %r5, {flags}\n",
               CALL(call), "exit\n")


CSUM_CASES = {
    "csum_diff": (3, CSUM_DIFF),
    "l3_replace4": (3, _csum_replace(10, 24, 0x0100007F, 0x0200000A, 4)),
    "l3_replace2": (3, _csum_replace(10, 24, 0x4500, 0x4501, 2)),
    "l3_by_diff": (3, _csum_replace(10, 24, 0, 0x12345, 0)),
    "l3_odd_offset": (3, _csum_replace(10, 25, 0, 1, 2)),
    "l3_bad_size": (3, _csum_replace(10, 24, 1, 2, 3)),
    "l4_replace4": (3, _csum_replace(11, 40, 0x0100007F, 0x0200000A, 4 | 16)),
    "l4_mangled0": (3, _csum_replace(11, 42, 0, 0, 0x20 | 2)),
    "l4_mangled0_enforce": (3, _csum_replace(11, 42, 0x1234, 0x1234, 0x60 | 2)),
    "l4_bad_flags": (3, _csum_replace(11, 40, 0, 0, 1 << 10)),
}
CSUM_PACKET = PACKET[:12] + b"\x08\x00" + bytes.fromhex("4500005400004000400112347f0000017f000002") + bytes(range(40))


@pytest.mark.parametrize("name", list(CSUM_CASES))
def test_checksum_helper_agrees(linux, name: str) -> None:
    prog_type, insns = CSUM_CASES[name]
    _vm_agrees(linux, prog_type, insns, CSUM_PACKET)


LD_ABS_OFFSETS = (0, 5, -0x100000, -0x100000 + 3, -0x200000, -0x200000 + 13, -1, -0x300000, 97, 200)


@pytest.mark.parametrize("prog_type", [1, 3])
@pytest.mark.parametrize("k", LD_ABS_OFFSETS)
def test_ld_abs_offsets_agree(linux, prog_type: int, k: int) -> None:
    """LD_ABS of 1, 2 and 4 bytes at offsets past, inside and before the packet (SKF_NET_OFF/SKF_LL_OFF)."""
    for code in (0x30, 0x28, 0x20):
        _vm_agrees(linux, prog_type, [Insn(0xBF, 6, 1), Insn(code, 0, 0, 0, k), Insn(0x95)], CSUM_PACKET)
