"""BPF_PROG_TEST_RUN per program type, with Linux's argument checks."""
from __future__ import annotations

import errno

import pytest
from vmfakes import kernel_fixture, prog  # noqa: F401 - the kernel fixture

ENOTSUPP = 524


def test_skb_data_pointers_and_output(kernel) -> None:
    src = """
    mov %r0, 0
    ldxw %r2, [%r1+76]
    ldxw %r3, [%r1+80]
    mov %r4, %r2
    add %r4, 14
    jgt %r4, %r3, +3
    ldxb %r0, [%r2+12]
    stb [%r2+0], 0xaa
    add %r0, 1
    exit
    """
    res = kernel.vm.test_run(prog(src, prog_type=3), bytes(range(64)), None, 1, 0, 0, 0, 0)
    assert res.retval == 13
    assert res.data_out[0] == 0xAA and res.data_out[1:] == bytes(range(1, 64))


def test_socket_filter_sees_l3_and_gets_zeroed_header(kernel) -> None:
    pkt = bytes(12) + b"\x08\x00" + bytes(range(50))
    p = prog("mov %r6, %r1\nldxw %r0, [%r1+0]\nexit", prog_type=1)
    res = kernel.vm.test_run(p, pkt, None, 1, 0, 0, 0, 0)
    assert res.retval == len(pkt) - 14  # skb->len
    assert res.data_out == bytes(14) + pkt[14:]


def test_ld_abs_and_ind(kernel) -> None:
    from tinyaya.isa import Insn

    pkt = bytes(12) + b"\x08\x00" + bytes(range(1, 51))
    # r6 = ctx; r0 = *(u16 *)(skb->data + 2) in network order; out of bounds exits with 0
    p = prog([Insn(0xBF, 6, 1), Insn(0x28, 0, 0, 0, 2), Insn(0x95)], prog_type=1)
    assert kernel.vm.test_run(p, pkt, None, 1, 0, 0, 0, 0).retval == 0x0304
    p = prog([Insn(0xBF, 6, 1), Insn(0xB7, 7, 0, 0, 40), Insn(0x50, 0, 7, 0, 100), Insn(0xB7, 0, 0, 0, 9),
              Insn(0x95)], prog_type=1)
    assert kernel.vm.test_run(p, pkt, None, 1, 0, 0, 0, 0).retval == 0


def test_skb_rejects_short_and_bad_ctx(kernel) -> None:
    p = prog("mov %r0, 0\nexit", prog_type=3)
    with pytest.raises(OSError) as ei:
        kernel.vm.test_run(p, bytes(13), None, 1, 0, 0, 0, 0)
    assert ei.value.errno == errno.EINVAL
    ctx = bytearray(192)
    ctx[0] = 1  # len may not be set
    with pytest.raises(OSError) as ei:
        kernel.vm.test_run(p, bytes(64), bytes(ctx), 1, 0, 0, 0, 192)
    assert ei.value.errno == errno.EINVAL


def test_xdp(kernel) -> None:
    src = """
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r0, %r3
    sub %r0, %r2
    exit
    """
    res = kernel.vm.test_run(prog(src, prog_type=6), bytes(100), None, 3, 0, 0, 0, 0)
    assert res.retval == 100 and len(res.data_out) == 100


def test_raw_tracepoint_args(kernel) -> None:
    p = prog("ldxdw %r0, [%r1+8]\nexit", prog_type=17)
    ctx = (1).to_bytes(8, "little") + (99).to_bytes(8, "little")
    assert kernel.vm.test_run(p, b"", ctx, 0, 0, 0, 0, 0).retval == 99
    with pytest.raises(OSError):
        kernel.vm.test_run(p, b"", ctx, 5, 0, 0, 0, 0)  # repeat is not allowed


def test_syscall_ctx_round_trip(kernel) -> None:
    p = prog("stw [%r1+0], 5\nmov %r0, 3\nexit", prog_type=31)
    res = kernel.vm.test_run(p, b"", bytes(8), 0, 0, 0, 0, 0)
    assert res.retval == 3 and res.ctx_out == (5).to_bytes(4, "little") + bytes(4) and res.ctx_to_ctx_in


def test_kprobe_has_no_test_run_but_runs_with_ctx(kernel) -> None:
    p = prog("ldxdw %r0, [%r1+112]\nexit", prog_type=2)  # pt_regs->di
    with pytest.raises(OSError) as ei:
        kernel.vm.test_run(p, b"", bytes(168), 0, 0, 0, 0, 0)
    assert ei.value.errno == ENOTSUPP
    regs = bytearray(168)
    regs[112:120] = (7).to_bytes(8, "little")
    assert kernel.vm.run_with_ctx(p, bytes(regs), 0)[0] == 7


def test_lwt_runs_on_the_skb_path_without_l2(kernel) -> None:
    pkt = bytes(12) + b"\x08\x00" + bytes(range(40))
    res = kernel.vm.test_run(prog("ldxw %r0, [%r1+0]\nexit", prog_type=10), pkt, None, 1, 0, 0, 0, 0)
    assert res.retval == 40 and res.data_out == bytes(14) + pkt[14:]  # as Linux 6.18 returns it


def test_ld_abs_negative_offsets(kernel) -> None:
    from tinyaya.isa import Insn

    pkt = bytes(range(1, 13)) + b"\x08\x00" + bytes(range(100, 140))
    net, ll = -0x100000, -0x200000
    # r0 = byte 0 of the network header + (byte 5 of the Ethernet header << 8)
    p = prog([Insn(0xBF, 6, 1), Insn(0x30, 0, 0, 0, ll + 5), Insn(0xBF, 7, 0), Insn(0x30, 0, 0, 0, net),
              Insn(0x67, 7, 0, 0, 8), Insn(0x4F, 0, 7), Insn(0x95)], prog_type=1)
    assert kernel.vm.test_run(p, pkt, None, 1, 0, 0, 0, 0).retval == 100 | (6 << 8)
    p = prog([Insn(0xBF, 6, 1), Insn(0x30, 0, 0, 0, -0x300000), Insn(0xB7, 0, 0, 0, 9), Insn(0x95)], prog_type=1)
    assert kernel.vm.test_run(p, pkt, None, 1, 0, 0, 0, 0).retval == 0  # below SKF_LL_OFF: exit 0
