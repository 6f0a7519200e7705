"""Packet and checksum helpers against independent computations (no real kernel needed)."""
from __future__ import annotations

from vmfakes import kernel_fixture, prog  # noqa: F401 - the kernel fixture

from tinyaya.isa import assemble


def ip_checksum(header: bytes) -> int:
    """RFC 1071: the ones' complement of the ones' complement sum of the 16-bit words."""
    s = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, len(header), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _frame(daddr: bytes) -> bytes:
    ip = bytearray(bytes.fromhex("4500005400004000400100007f000001") + daddr)
    ip[10:12] = ip_checksum(bytes(ip)).to_bytes(2, "big")
    return bytes(12) + b"\x08\x00" + bytes(ip) + bytes(32)


def test_l3_csum_replace_keeps_the_ip_header_checksum_right(kernel) -> None:
    old, new = bytes([127, 0, 0, 2]), bytes([10, 1, 2, 3])
    src = f"""
    mov %r6, %r1
    mov %r2, 30
    stw [%r10-4], {int.from_bytes(new, 'little')}
    mov %r3, %r10
    add %r3, -4
    mov %r4, 4
    mov %r5, 0
    call 9
    mov %r1, %r6
    mov %r2, 24
    mov %r3, {int.from_bytes(old, 'little')}
    mov %r4, {int.from_bytes(new, 'little')}
    mov %r5, 4
    call 10
    exit
    """
    res = kernel.vm.test_run(prog(src, prog_type=3), _frame(old), None, 1, 0, 0, 0, 0)
    assert res.retval == 0
    assert res.data_out == _frame(new)  # same bytes as a header built with the new address


def test_xdp_adjust_head_and_tail_bounds(kernel) -> None:
    def run(call: int, delta: int) -> tuple[int, int]:
        p = prog(assemble(f"mov %r6, %r1\nmov %r2, {delta}\ncall {call}\nldxw %r2, [%r6+0]\nldxw %r3, [%r6+4]\n"
                          "sub %r3, %r2\nand %r0, 0xff\nlsh %r0, 16\nor %r0, %r3\nexit"))
        res = kernel.vm.test_run(p, bytes(range(64)), None, 1, 0, 0, 0, 0)
        return res.retval, len(res.data_out)

    # 256 bytes of headroom, of which sizeof(struct xdp_frame) = 40 stay reserved
    einval = (-22 & 0xFF) << 16
    assert run(44, -216) == (64 + 216, 280)
    assert run(44, -217) == (einval | 64, 64)
    assert run(44, 50) == (14, 14)
    assert run(44, 51) == (einval | 64, 64)
    assert run(65, -50) == (14, 14)
    assert run(65, -51) == (einval | 64, 64)
    assert run(65, 8) == (72, 72)
