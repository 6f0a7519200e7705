"""Run one program on a kernel through BPF_PROG_LOAD + BPF_PROG_TEST_RUN, for VM differential tests.

``run_program(kernel, prog_type, insns, data=..., maps=[...])`` creates the maps (ARRAY,
4-byte keys), patches ``ld_imm64`` map references (src_reg BPF_PSEUDO_MAP_FD, imm = the map's
index in ``maps``) to the new fds, loads, test-runs and reads every map back. Every fd is
closed afterwards, so nothing is left behind on the real kernel. A program the kernel refuses
raises ``Rejected`` with the verifier log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinyaya.isa import Insn, encode
from tinyaya.sys.bpf import bpf_map_create, bpf_map_lookup_elem, bpf_map_update_elem
from tinyaya.sys.prog import ProgLoadError, bpf_prog_load, bpf_prog_test_run

BPF_MAP_TYPE_ARRAY = 2
SOCKET_FILTER, SCHED_CLS, XDP = 1, 3, 6


class Rejected(Exception):
    """The kernel's verifier refused the program."""


@dataclass(frozen=True)
class ArrayMap:
    value_size: int
    max_entries: int = 1
    init: bytes = b""  # initial contents of entry 0


@dataclass(frozen=True)
class Outcome:
    retval: int
    data_out: bytes
    maps: tuple[tuple[bytes, ...], ...]


def linux_kernel() -> tuple[Any, str]:
    """``(LinuxKernel or None, reason)``."""
    try:
        from tinyaya.linux import LinuxKernel, linux_bpf_available
    except ImportError as e:
        return None, f"tinyaya.linux is not available: {e}"
    ok, reason = linux_bpf_available()
    return (LinuxKernel() if ok else None), reason


def run_program(kernel: Any, prog_type: int, insns: list[Insn], *, data: bytes = b"", ctx: bytes | None = None,
                maps: tuple[ArrayMap, ...] = (), repeat: int = 1) -> Outcome:
    fds: list[int] = []
    try:
        for m in maps:
            fd = bpf_map_create(kernel, BPF_MAP_TYPE_ARRAY, 4, m.value_size, m.max_entries)
            fds.append(fd)
            if m.init:
                bpf_map_update_elem(kernel, fd, (0).to_bytes(4, "little"), m.init.ljust(m.value_size, b"\0"))
        patched = [i.replace(imm=fds[i.imm]) if i.code == 0x18 and i.src == 1 else i for i in insns]
        try:
            pfd = bpf_prog_load(kernel, prog_type, encode(patched), log_level=1)
        except ProgLoadError as e:
            raise Rejected(e.verifier_log[-2000:]) from None
        fds.append(pfd)
        res = bpf_prog_test_run(kernel, pfd, data=data or None, ctx=ctx, repeat=repeat,
                                data_size_out=len(data) + 512 if data else None)
        dumped = tuple(
            tuple(bpf_map_lookup_elem(kernel, fd, i.to_bytes(4, "little"), m.value_size)
                  for i in range(m.max_entries))
            for fd, m in zip(fds, maps, strict=False))
        return Outcome(res.retval, res.data_out, dumped)
    finally:
        for fd in fds:
            kernel.close(fd)


def map_ref(index: int, dst: int = 1) -> list[Insn]:
    """``ld_imm64 dst, map[index]`` (BPF_PSEUDO_MAP_FD; run_program puts the fd in)."""
    return [Insn(0x18, dst, 1, 0, index), Insn(0)]
