"""A program's ring buffer records (reserve/submit, reserve/discard, output) read through the mmap'd
pages, as libbpf and Aya read them: the layout must be Linux's, byte for byte."""
from __future__ import annotations

import mmap
import struct
from typing import Any

from diffharness import Side, insn, prog_load, run_attr
from test_maps_types import RB, create

PAGE = 4096
BUSY, DISCARD = 1 << 31, 1 << 30
SOCKET_FILTER = 1


def ld_map(reg: int, fd: int) -> bytes:
    return insn(0x18, reg, 1, 0, fd) + insn(0, 0, 0, 0, 0)


def program(fd: int) -> bytes:
    return b"".join([
        ld_map(1, fd), insn(0xB7, 2, imm=16), insn(0xB7, 3, imm=0), insn(0x85, imm=131),  # reserve(16)
        insn(0x15, 0, off=24, imm=0),  # if r0 == 0 goto out
        insn(0x62, 0, off=0, imm=0x11223344), insn(0x62, 0, off=4, imm=0x55667788),
        insn(0x62, 0, off=8, imm=-559038737), insn(0x62, 0, off=12, imm=7),
        insn(0xBF, 1, 0), insn(0xB7, 2, imm=0), insn(0x85, imm=132),  # submit
        ld_map(1, fd), insn(0xB7, 2, imm=5), insn(0xB7, 3, imm=0), insn(0x85, imm=131),  # reserve(5)
        insn(0x15, 0, off=11, imm=0),
        insn(0xBF, 1, 0), insn(0xB7, 2, imm=0), insn(0x85, imm=133),  # discard
        insn(0x7A, 10, off=-8, imm=0x0A0B0C0D), ld_map(1, fd), insn(0xBF, 2, 10), insn(0x07, 2, imm=-8),
        insn(0xB7, 3, imm=8), insn(0xB7, 4, imm=0), insn(0x85, imm=130),  # output(8 bytes)
        insn(0xB7, 0, imm=0), insn(0x95),
    ])


def consume(cons: memoryview, ro: memoryview, size: int) -> list[Any]:
    mask = size - 1
    out: list[Any] = []
    cpos = struct.unpack_from("<Q", cons, 0)[0]
    while cpos < struct.unpack_from("<Q", ro, 0)[0]:
        off = PAGE + (cpos & mask)
        length = struct.unpack_from("<I", ro, off)[0]
        if length & BUSY:
            out.append("busy")
            break
        n = length & ~DISCARD
        discarded = bool(length & DISCARD)  # a discarded record's bytes are whatever was there: not compared
        out.append((n, discarded, None if discarded else bytes(ro[off + 8:off + 8 + n])))
        cpos += (n + 8 + 7) & ~7
        struct.pack_into("<Q", cons, 0, cpos)
    out.append(cpos)
    return out


def test_program_records_read_through_mmap(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        fd = s.fd(create(s, RB, 0, 0, PAGE))
        attr, _ = prog_load(s, SOCKET_FILTER, program(fd), log_level=0)
        res = s.bpf(5, attr)
        if not res.ok:
            return [res.outcome]
        pfd = s.fd(res)
        data = s.buf(bytes(64))
        out: list[Any] = ["loaded"]
        cons = s.k.mmap(fd, PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, 0)
        ro = s.k.mmap(fd, PAGE + 2 * PAGE, mmap.PROT_READ, mmap.MAP_SHARED, PAGE)
        for runs in (3, 100, 50, 61):  # the ring fills (reserve gives NULL), drains, and wraps around
            for _ in range(runs):
                out.append(s.bpf(10, run_attr(pfd, data_in=data, data_size_in=64, repeat=1)).outcome)
            out += consume(cons, ro, PAGE)
            out.append(struct.unpack_from("<QQ", ro, 0))
        s.k.munmap(cons)
        s.k.munmap(ro)
        return out
    assert kernels.compare(scenario)[0] == "loaded"
