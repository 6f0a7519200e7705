"""LRU pressure against the real kernel: what Linux guarantees, not which victim it picks.

Linux's LRU lists are per CPU or approximate (reference bits, batch shrinking),
so the exact victim differs; what must agree is that a full LRU map accepts
every insert, never holds more than max_entries, and keeps the newest key.
"""
from __future__ import annotations

from typing import Any

import pytest
from diffharness import Side
from test_maps_types import LRU, LRUP, NO_COMMON_LRU, Ops, create, ncpus


@pytest.mark.parametrize("map_type,flags", [(LRU, 0), (LRU, NO_COMMON_LRU), (LRUP, 0)],
                         ids=["lru", "lru-percpu-lists", "lru-percpu-hash"])
def test_lru_pressure(kernels: Any, map_type: int, flags: int) -> None:
    def scenario(s: Side) -> list[Any]:
        vs = 8 * ncpus(s) if map_type == LRUP else 8
        max_entries = 64
        o = Ops(s, s.fd(create(s, map_type, 8, 8, max_entries, flags)), 8, vs)
        results = [o.update(i.to_bytes(8, "little"), i.to_bytes(8, "little").ljust(vs, b"\0"), i % 2)
                   for i in range(2000)]
        keys = o.keys()
        newest = (1999).to_bytes(8, "little")
        return [set(results), 0 < len(keys) <= max_entries, newest in keys,
                o.lookup(newest)[:8] == newest, o.update(newest, bytes(vs), 1), o.update(newest, bytes(vs), 2)]
    kernels.compare(scenario)


def test_lru_replacing_existing_keys_in_a_full_map(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        o = Ops(s, s.fd(create(s, LRU, 4, 8, 16)), 4, 8)
        first = [o.update(i.to_bytes(4, "little"), bytes(8)) for i in range(16)]
        again = {o.update(i.to_bytes(4, "little"), b"x" * 8) for i in range(64, 80)}
        return [set(first), again, len(o.keys()) <= 16, o.lookup((79).to_bytes(4, "little"))]
    kernels.compare(scenario)


def test_percpu_lru_lists_from_one_cpu(kernels: Any) -> None:
    """BPF_F_NO_COMMON_LRU with every insert on CPU 0 (the sim's syscall CPU; Linux pinned there): only
    CPU 0's share of max_entries survives, the newest keys."""
    import os

    def scenario(s: Side) -> list[Any]:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {0})
        try:
            out: list[Any] = []
            for max_entries in (4, 8, 64):
                o = Ops(s, s.fd(create(s, LRU, 4, 4, max_entries, NO_COMMON_LRU)), 4, 4)
                for i in range(max_entries):
                    o.update(i.to_bytes(4, "little"), bytes(4))
                out.append(sorted(int.from_bytes(k, "little") for k in o.keys()))
            return out
        finally:
            os.sched_setaffinity(0, before)
    kernels.compare(scenario)


def _pinned_to_cpu0(fn: Any) -> Any:
    import os

    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        return fn()
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.parametrize("map_type,flags", [(LRU, 0), (LRU, NO_COMMON_LRU), (LRUP, 0), (LRUP, NO_COMMON_LRU)],
                         ids=["lru", "lru-percpu-lists", "lru-percpu-hash", "lru-percpu-hash-lists"])
@pytest.mark.parametrize("max_entries", [2, 4, 16, 300])
def test_lru_victims_are_linux_ones(kernels: Any, map_type: int, flags: int, max_entries: int) -> None:
    """bpf_lru_list.c replayed: with every call on CPU 0 the same elements survive as on Linux."""
    def scenario(s: Side) -> list[Any]:
        def run() -> list[Any]:
            vs = 8 * ncpus(s) if map_type == LRUP else 8
            o = Ops(s, s.fd(create(s, map_type, 4, 8, max_entries, flags)), 4, vs)
            out: list[Any] = []
            n = max_entries * 3 + 5
            for i in range(n):
                out.append(o.update(i.to_bytes(4, "little"), bytes(vs)))
                if i % 3 == 0:  # replacing an existing key (a new node with its ref bit, for LRU_HASH)
                    out.append(o.update((i // 2).to_bytes(4, "little"), b"r" * vs, 0))
                if i % 5 == 0:
                    out.append(o.delete(max(i - 1, 0).to_bytes(4, "little")))
                if i % 7 == 0:
                    out.append(o.update((i // 3).to_bytes(4, "little"), b"x" * vs, 1))  # NOEXIST
                if i % 4 == 0:
                    out.append(o.lookup_and_delete((i // 4).to_bytes(4, "little")) != "ENOENT")
                if max_entries <= 16 or i % 25 == 0 or i == n - 1:
                    out.append(sorted(int.from_bytes(k, "little") for k in o.keys()))
            return out
        return list(_pinned_to_cpu0(run))
    kernels.compare(scenario)


def _lookup_prog(fd: int, key: int) -> bytes:
    from diffharness import insn, ld_map_fd

    return b"".join([
        insn(0x62, 10, off=-4, imm=key),  # *(u32 *)(r10 - 4) = key
        ld_map_fd(1, fd), insn(0xBF, 2, 10), insn(0x07, 2, imm=-4), insn(0x85, imm=1),  # map_lookup_elem
        insn(0xB7, 0, imm=0), insn(0x95),
    ])


@pytest.mark.parametrize("map_type,flags", [(LRU, 0), (LRU, NO_COMMON_LRU), (LRUP, 0)],
                         ids=["lru", "lru-percpu-lists", "lru-percpu-hash"])
def test_program_lookups_set_reference_bits_as_linux(kernels: Any, map_type: int, flags: int) -> None:
    """A program's lookup (PROG_TEST_RUN on CPU 0) marks the element referenced; it then survives pressure
    exactly as on Linux."""
    from diffharness import prog_load, run_attr

    def scenario(s: Side) -> list[Any]:
        def run() -> list[Any]:
            vs = 8 * ncpus(s) if map_type == LRUP else 8
            o = Ops(s, s.fd(create(s, map_type, 4, 8, 8, flags)), 4, vs)
            attr, _ = prog_load(s, 1, _lookup_prog(o.fd, 2))
            res = s.bpf(5, attr)
            if not res.ok:
                return ["load", res.outcome]
            pfd = s.fd(res)
            data = s.buf(bytes(64))
            out: list[Any] = []
            for i in range(8):
                o.update(i.to_bytes(4, "little"), bytes(vs))
            for i in range(100, 140):
                out.append(s.bpf(10, run_attr(pfd, data_in=data, data_size_in=64, repeat=1)).outcome)
                o.update(i.to_bytes(4, "little"), bytes(vs))
                out.append(sorted(int.from_bytes(k, "little") for k in o.keys()))
            return out
        return list(_pinned_to_cpu0(run))
    result = kernels.compare(scenario)
    assert result[0] == "ok"
    if not flags:  # with the common lists the referenced element outlives the pressure (not so per CPU)
        assert 2 in result[-1]
