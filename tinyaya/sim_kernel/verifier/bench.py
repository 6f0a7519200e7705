"""Verification-time benchmarks for ``make bench`` (called by tinyaya/bench.py).

``verifier_benchmarks()`` verifies a few programs that stress different parts of the verifier and reports,
for each, the seconds per verification, the processed instruction count (as Linux counts it) and the
nanoseconds per processed instruction:

* ``straight_4k``: 4096 straight-line ALU and stack instructions (the per-instruction cost);
* ``diamonds_64``: 64 independent if/else diamonds (pruning with precision tracking keeps it linear);
* ``loop_1k``: a bounded loop of 1000 iterations over a map value (loop unrolling by state exploration);
* ``pkt_parser``: nested packet bounds checks with variable offsets (XDP).

``bench_verify(insns, prog_type, maps)`` (in api.py) measures any other instruction list.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op

from .api import verify_insns

A64 = op.BPF_ALU64
KPROBE, XDP = 2, 6


@dataclass
class _Map:
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int = 0
    name: bytes = b"bench"


def _alu(o: int, d: int, imm: int) -> Insn:
    return Insn(A64 | o | op.BPF_K, d, 0, 0, imm)


def _alux(o: int, d: int, s: int) -> Insn:
    return Insn(A64 | o | op.BPF_X, d, s)


EXIT = [_alu(op.BPF_MOV, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]


def straight(n: int) -> list[Insn]:
    out = [_alu(op.BPF_MOV, 1, 1), _alu(op.BPF_MOV, 2, 2)]
    while len(out) < n:
        k = len(out)
        out += [_alux(op.BPF_ADD, 1, 2), _alu(op.BPF_XOR, 2, k & 0xFF),
                Insn(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, 1, -8 * (1 + k % 32)),
                Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 2, 10, -8 * (1 + k % 32))]
    return out + EXIT


def diamonds(n: int) -> list[Insn]:
    out = [_alux(op.BPF_MOV, 8, 1)]
    for k in range(n):
        out += [Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_DW, 6, 8, 8 * (k % 20)),
                Insn(op.BPF_JMP | op.BPF_JSET | op.BPF_K, 6, 0, 2, 1), _alu(op.BPF_MOV, 7, k),
                Insn(op.BPF_JMP | op.BPF_JA, 0, 0, 1, 0), _alu(op.BPF_MOV, 7, k + 100),
                Insn(op.BPF_STX | op.BPF_MEM | op.BPF_DW, 10, 7, -8 * (1 + k % 64))]
    return out + EXIT


def loop(n: int, map_fd: int) -> list[Insn]:
    return [
        Insn(op.BPF_ST | op.BPF_MEM | op.BPF_W, 10, 0, -4, 0), _alux(op.BPF_MOV, 2, 10), _alu(op.BPF_ADD, 2, -4),
        Insn(op.LD_IMM64, 1, op.BPF_PSEUDO_MAP_FD, 0, map_fd), Insn(0),
        Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 1),
        Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, 0, 0, 9, 0),
        _alu(op.BPF_MOV, 6, 0), _alu(op.BPF_MOV, 7, 0),
        # loop: r8 = r6 & 63; r9 = r0 + r8; r7 += *(u8 *)r9; r6 += 1; if r6 < n goto loop
        _alux(op.BPF_MOV, 8, 6), _alu(op.BPF_AND, 8, 63), _alux(op.BPF_MOV, 9, 0), _alux(op.BPF_ADD, 9, 8),
        Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_B, 8, 9, 0), _alu(op.BPF_ADD, 6, 1),
        Insn(op.BPF_JMP | op.BPF_JLT | op.BPF_K, 6, 0, -7, n),
    ] + EXIT


def pkt_parser(depth: int) -> list[Insn]:
    """Per level: check a fixed header, read a length nibble, check and read at that variable offset."""
    jgt = op.BPF_JMP | op.BPF_JGT | op.BPF_X
    out = [Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 2, 1, 0), Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_W, 3, 1, 4),
           _alu(op.BPF_MOV, 0, 0)]
    for k in range(depth):
        out += [_alux(op.BPF_MOV, 4, 2), _alu(op.BPF_ADD, 4, 14 + k * 8), Insn(jgt, 4, 3, 0, 0),
                Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_B, 5, 2, 13 + k * 8), _alu(op.BPF_AND, 5, 7),
                _alux(op.BPF_MOV, 4, 2), _alux(op.BPF_ADD, 4, 5), _alux(op.BPF_MOV, 9, 4), _alu(op.BPF_ADD, 9, 8),
                Insn(jgt, 9, 3, 0, 0), Insn(op.BPF_LDX | op.BPF_MEM | op.BPF_B, 6, 4, 0), _alux(op.BPF_ADD, 0, 6)]
    n = len(out)
    # every bail-out jumps to the exit
    out = [i.replace(off=n - k - 1) if i.code == jgt else i for k, i in enumerate(out)]
    return out + [_alu(op.BPF_AND, 0, 3), Insn(op.BPF_JMP | op.BPF_EXIT)]


def _measure(name: str, insns: list[Insn], prog_type: int, maps: dict[int, Any] | None, repeat: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    processed = 0
    for _ in range(repeat):
        processed, _log = verify_insns(insns, prog_type, maps=maps)
    dt = (time.perf_counter() - t0) / repeat
    return {"name": name, "engine": "verifier", "insns": len(insns), "processed_insns": processed,
            "seconds": dt, "ns_per_insn": dt * 1e9 / max(processed, 1)}


def verifier_benchmarks(repeat: int = 3) -> list[dict[str, Any]]:
    """Verify the benchmark programs; one result dict per program (name, processed_insns, seconds, ns_per_insn)."""
    maps = {3: _Map(2, 4, 64, 1)}
    return [
        _measure("straight_4k", straight(4096), KPROBE, None, repeat),
        _measure("diamonds_64", diamonds(64), KPROBE, None, repeat),
        _measure("loop_1k", loop(1000, 3), KPROBE, maps, repeat),
        _measure("pkt_parser", pkt_parser(16), XDP, None, repeat),
    ]


if __name__ == "__main__":
    for r in verifier_benchmarks():
        print(f"{r['name']:>12}: {r['processed_insns']:>7} insns {r['seconds'] * 1e3:9.1f} ms "
              f"{r['ns_per_insn']:9.0f} ns/insn")
