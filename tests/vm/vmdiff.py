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
from tinyaya.sys.bpf import (
    bpf_map_create,
    bpf_map_get_next_key,
    bpf_map_lookup_and_delete_elem,
    bpf_map_lookup_elem,
    bpf_map_update_elem,
)
from tinyaya.sys.prog import ProgLoadError, bpf_prog_load, bpf_prog_test_run

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_QUEUE = 22
BPF_MAP_TYPE_STACK = 23
BPF_MAP_TYPE_RINGBUF = 27
SOCKET_FILTER, SCHED_CLS, XDP = 1, 3, 6


class Rejected(Exception):
    """The kernel's verifier refused the program."""


@dataclass(frozen=True)
class ArrayMap:
    value_size: int
    max_entries: int = 1
    init: bytes = b""  # initial contents of entry 0
    map_type: int = BPF_MAP_TYPE_ARRAY
    key_size: int = 4
    #: BPF_MAP_TYPE_PROG_ARRAY: the programs (same type as the caller) to put at indexes 0, 1, ...
    progs: tuple[tuple[Insn, ...], ...] = ()


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
        map_fds: list[int] = []
        for m in maps:
            fd = bpf_map_create(kernel, m.map_type, m.key_size, m.value_size, m.max_entries,
                                map_flags=0 if m.map_type != BPF_MAP_TYPE_HASH else 0)
            fds.append(fd)
            map_fds.append(fd)
            if m.init and m.map_type == BPF_MAP_TYPE_ARRAY:
                bpf_map_update_elem(kernel, fd, (0).to_bytes(4, "little"), m.init.ljust(m.value_size, b"\0"))

        def patch(code: list[Insn] | tuple[Insn, ...]) -> list[Insn]:
            return [i.replace(imm=map_fds[i.imm]) if i.code == 0x18 and i.src == 1 else i for i in code]

        for m, fd in zip(maps, map_fds, strict=True):
            for idx, sub in enumerate(m.progs):
                try:
                    sfd = bpf_prog_load(kernel, prog_type, encode(patch(sub)), log_level=1)
                except ProgLoadError as e:
                    raise Rejected(e.verifier_log[-2000:]) from None
                fds.append(sfd)
                bpf_map_update_elem(kernel, fd, idx.to_bytes(4, "little"), sfd.to_bytes(4, "little"))
        try:
            pfd = bpf_prog_load(kernel, prog_type, encode(patch(insns)), log_level=1)
        except ProgLoadError as e:
            raise Rejected(e.verifier_log[-2000:]) from None
        fds.append(pfd)
        res = bpf_prog_test_run(kernel, pfd, data=data or None, ctx=ctx, repeat=repeat,
                                data_size_out=len(data) + 512 if data else None)
        dumped = tuple(_dump(kernel, fd, m) for fd, m in zip(map_fds, maps, strict=True))
        return Outcome(res.retval, res.data_out, dumped)
    finally:
        for fd in reversed(fds):
            kernel.close(fd)


def _dump(kernel: Any, fd: int, m: ArrayMap) -> tuple[bytes, ...]:
    """A map's contents in a kernel-independent order: arrays by index, hashes sorted by key,
    queues and stacks in pop order (emptying them), others not at all."""
    if m.map_type == BPF_MAP_TYPE_ARRAY:
        return tuple(bpf_map_lookup_elem(kernel, fd, i.to_bytes(4, "little"), m.value_size)
                     for i in range(m.max_entries))
    if m.map_type == BPF_MAP_TYPE_HASH:
        keys, key = [], None
        while (key := bpf_map_get_next_key(kernel, fd, key, m.key_size)) is not None:
            keys.append(key)
        return tuple(k + bpf_map_lookup_elem(kernel, fd, k, m.value_size) for k in sorted(keys))
    if m.map_type in (BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK):
        out = []
        while True:
            try:
                out.append(bpf_map_lookup_and_delete_elem(kernel, fd, None, m.value_size))
            except OSError:
                return tuple(out)
    return ()


def map_ref(index: int, dst: int = 1) -> list[Insn]:
    """``ld_imm64 dst, map[index]`` (BPF_PSEUDO_MAP_FD; run_program puts the fd in)."""
    return [Insn(0x18, dst, 1, 0, index), Insn(0)]


def run_on_vm(kernel: Any, prog_type: int, insns: list[Insn], *, data: bytes = b"") -> Outcome:
    """The program on ``kernel.vm`` directly, without PROG_LOAD (so without the simulated verifier):
    for helpers the verifier does not know yet. No maps."""
    from types import SimpleNamespace

    prog = SimpleNamespace(name="direct", insns=list(insns), prog_type=prog_type, compiled=None)
    res = kernel.vm.test_run(prog, data, None, 1, 0, 0, len(data) + 512, 0)
    return Outcome(res.retval, res.data_out, ())
