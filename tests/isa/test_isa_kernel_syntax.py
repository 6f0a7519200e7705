"""``style="kernel"`` against Linux itself: the verifier log of a real BPF_PROG_LOAD prints every
instruction with print_bpf_insn(); our text must be the same, line for line."""
from __future__ import annotations

import ctypes
import os
import re
import struct

import pytest

from tinyaya.isa import Insn, assemble, disasm, disasm_lines, encode
from tinyaya.uapi._enums import BpfFuncId

BPF_PROG_LOAD = 5
BPF_PROG_TYPE_SOCKET_FILTER = 1


def helper_name(func_id: int) -> str | None:
    try:
        return "bpf_" + BpfFuncId(func_id).name.removeprefix("BPF_FUNC_")
    except ValueError:
        return None


# A socket filter that the verifier accepts and that uses every instruction form it can
# (every conditional jump goes to the next instruction, so all paths are the same).
PROGRAM = """
    mov %r6, %r1
    mov %r0, 0
    mov32 %r2, -7
    lddw %r3, 0x123456789abcdef0
    lddw %r4, -1
    mov %r5, 5
    stdw [%r10-8], -1
    stw [%r10-12], 0x7fffffff
    sth [%r10-14], 300
    stb [%r10-15], -1
    stxdw [%r10-24], %r3
    stxw [%r10-28], %r2
    stxh [%r10-30], %r2
    stxb [%r10-31], %r2
    ldxdw %r7, [%r10-24]
    ldxw %r8, [%r10-28]
    ldxh %r8, [%r10-30]
    ldxb %r8, [%r10-31]
    ldxsw %r8, [%r10-28]
    ldxsh %r8, [%r10-30]
    ldxsb %r8, [%r10-31]
    add %r7, 1
    sub %r7, %r5
    mul %r7, -3
    div %r7, %r5
    sdiv %r7, -2
    mod %r7, 1000
    smod %r7, %r5
    or %r7, 0x40
    and %r7, %r3
    xor %r7, -1
    lsh %r7, 3
    rsh %r7, %r5
    arsh %r7, 60
    neg %r7
    add32 %r8, 7
    sub32 %r8, %r5
    mul32 %r8, %r5
    div32 %r8, 3
    sdiv32 %r8, %r5
    mod32 %r8, %r5
    smod32 %r8, -3
    or32 %r8, %r5
    and32 %r8, 0xffff
    xor32 %r8, %r5
    lsh32 %r8, %r5
    rsh32 %r8, 1
    arsh32 %r8, 2
    neg32 %r8
    mov32 %r8, %r7
    movsx832 %r8, %r7
    movsx1632 %r8, %r7
    movsx864 %r9, %r7
    movsx1664 %r9, %r7
    movsx3264 %r9, %r7
    be16 %r9
    be32 %r9
    be64 %r9
    le16 %r9
    le32 %r9
    le64 %r9
    bswap16 %r9
    bswap32 %r9
    bswap64 %r9
    stxdw [%r10-40], %r7
    stxw [%r10-44], %r8
    lock add [%r10-40], %r5
    lock or [%r10-40], %r5
    lock and [%r10-40], %r5
    lock xor [%r10-40], %r5
    lock add32 [%r10-44], %r5
    lock fetch add [%r10-40], %r5
    lock fetch or [%r10-40], %r5
    lock fetch and32 [%r10-44], %r5
    lock fetch xor32 [%r10-44], %r5
    lock xchg [%r10-40], %r5
    lock xchg32 [%r10-44], %r5
    mov %r0, 0
    lock cmpxchg [%r10-40], %r5
    lock cmpxchg32 [%r10-44], %r5
    jeq %r7, %r8, +0
    jgt %r7, 5, +0
    jge %r7, %r8, +0
    jset %r7, 0x40, +0
    jne %r7, -1, +0
    jsgt %r7, %r8, +0
    jsge %r7, -5, +0
    jlt %r7, %r8, +0
    jle %r7, 0x7fffffff, +0
    jslt %r7, %r8, +0
    jsle %r7, -2147483648, +0
    jeq32 %r7, 1, +0
    jne32 %r7, %r8, +0
    jslt32 %r7, -1, +0
    ja +0
    ja32 +0
    may_goto +0
    call 7
    call 5
    mov %r1, %r6
    ldabsw 0
    ldabsh 2
    ldabsb 3
    mov %r2, 1
    ldindw %r2, 4
    mov %r2, 2
    ldindb %r2, -1
    call local +2
    mov %r0, 0
    exit
    mov %r0, 1
    exit
"""


def _prog_load_log(insns: list[Insn]) -> tuple[int, str]:
    """BPF_PROG_LOAD with log_level 2 (every instruction is printed); returns (errno or 0, log). Closes the fd."""
    libc = ctypes.CDLL(None, use_errno=True)
    code = encode(insns)
    buf_insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 20)
    # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
    attr = bytearray(128)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_SOCKET_FILTER, len(insns), ctypes.addressof(buf_insns),
                     ctypes.addressof(lic), 2, len(log), ctypes.addressof(log))
    cattr = (ctypes.c_char * 128).from_buffer(attr)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(321, BPF_PROG_LOAD, cattr, 128)  # __NR_bpf on x86_64
    err = ctypes.get_errno() if fd < 0 else 0
    if fd >= 0:
        os.close(fd)
    return err, log.value.decode(errors="replace")


def _bpf_permitted() -> tuple[bool, str]:
    try:
        from tinyaya.linux import linux_bpf_available
    except ImportError:
        return False, "tinyaya.linux is not available"
    if os.uname().machine != "x86_64":
        return False, "the raw bpf() syscall number here is x86_64's"
    return linux_bpf_available()


def test_kernel_style_offline() -> None:
    prog = assemble("mov %r0, -1\nlddw %r1, 0xffffffff00000001\njsle %r1, -1, -2\ncall 1\ncall local -3\n"
                    "ldxsw %r2, [%r1+0]\nlock fetch xor32 [%r1-4], %r2\nexit")
    assert disasm(prog, style="kernel", helper_name=helper_name) == [
        "(b7) r0 = -1", "(18) r1 = 0xffffffff00000001", "(d5) if r1 s<= 0xffffffff goto pc-2",
        "(85) call bpf_map_lookup_elem#1", "(85) call pc-3", "(81) r2 = *(s32 *)(r1 +0)",
        "(c3) r2 = atomic_fetch_xor((u32 *)(r1 -4), r2)", "(95) exit"]


@pytest.mark.linux
def test_kernel_style_matches_the_verifier_log() -> None:
    ok, reason = _bpf_permitted()
    if not ok:
        pytest.skip(reason)
    insns = assemble(PROGRAM)
    err, log = _prog_load_log(insns)
    assert err == 0, log[-2000:]
    theirs: dict[int, str] = {}
    for line in log.splitlines():
        m = re.match(r"^(\d+): (\([0-9a-f]{2}\) .*?)(?:\s+;.*)?$", line)
        if m:
            theirs.setdefault(int(m.group(1)), m.group(2).rstrip())
    mine = dict(disasm_lines(insns, style="kernel", helper_name=helper_name))
    assert len(theirs) > 100 and set(theirs) == set(mine), sorted(set(mine) ^ set(theirs))
    diff = [(pc, theirs[pc], mine[pc]) for pc in sorted(theirs) if theirs[pc] != mine[pc]]
    assert not diff, diff[:10]
