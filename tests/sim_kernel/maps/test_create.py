"""map_alloc_check/map_alloc rules per type: each expectation was observed on Linux 6.18 (x86-64, 2 CPUs)."""
from __future__ import annotations

from typing import Any

import pytest
from maps_helpers import attr, err

from tinyaya.sim_kernel.maps import create_map

HASH, ARRAY, PROG, PERF, PHASH, PARR, LRU, LRUP = 1, 2, 3, 4, 5, 6, 9, 10
AOM, HOM, Q, S, RB, BLOOM = 12, 13, 22, 23, 27, 30
NO_PREALLOC, NO_COMMON_LRU, NUMA, RDONLY, WRONLY = 1, 2, 4, 8, 16
ZERO_SEED, RDONLY_PROG, WRONLY_PROG, CLONE, MMAPABLE, PRESERVE, INNER = 64, 128, 256, 512, 1024, 2048, 4096

#: (what, map_type, key_size, value_size, max_entries, map_flags, map_extra) -> "ok" or errno name
CASES: list[tuple[str, int, int, int, int, int, int, str]] = [
    ("hash key_size 0", HASH, 0, 4, 4, 0, 0, "EINVAL"),
    ("hash value_size 0", HASH, 4, 0, 4, 0, 0, "EINVAL"),
    ("hash max_entries 0", HASH, 4, 4, 0, 0, 0, "EINVAL"),
    ("hash 2^27 entries", HASH, 4, 4, 1 << 27, NO_PREALLOC, 0, "ok"),
    ("hash 2^27+1 entries", HASH, 4, 4, (1 << 27) + 1, 0, 0, "E2BIG"),
    ("hash 2^31 entries", HASH, 4, 4, 1 << 31, NO_PREALLOC, 0, "E2BIG"),
    ("hash 2^32-1 entries", HASH, 4, 4, (1 << 32) - 1, NO_PREALLOC, 0, "E2BIG"),
    ("percpu hash 2^28", PHASH, 4, 4, 1 << 28, NO_PREALLOC, 0, "E2BIG"),
    ("lru 2^27+1", LRU, 4, 4, (1 << 27) + 1, 0, 0, "E2BIG"),
    ("hash key+value max", HASH, 4, 4194251, 1, NO_PREALLOC, 0, "ok"),
    ("hash key+value too big", HASH, 4, 4194252, 1, NO_PREALLOC, 0, "E2BIG"),
    ("hash big key", HASH, 1 << 16, 4, 4, NO_PREALLOC, 0, "ok"),
    ("percpu hash value 32768", PHASH, 4, 32768, 1, NO_PREALLOC, 0, "ok"),
    ("percpu hash value 32769", PHASH, 4, 32769, 1, NO_PREALLOC, 0, "E2BIG"),
    ("hash mmapable", HASH, 4, 4, 4, MMAPABLE, 0, "EINVAL"),
    ("hash zero seed", HASH, 4, 4, 4, ZERO_SEED, 0, "ok"),
    ("hash numa", HASH, 4, 4, 4, NUMA, 0, "ok"),
    ("hash no common lru", HASH, 4, 4, 4, NO_COMMON_LRU, 0, "EINVAL"),
    ("hash inner map flag", HASH, 4, 4, 4, INNER, 0, "EINVAL"),
    ("hash preserve", HASH, 4, 4, 4, PRESERVE, 0, "EINVAL"),
    ("hash clone", HASH, 4, 4, 4, CLONE, 0, "EINVAL"),
    ("hash wronly_prog", HASH, 4, 4, 4, WRONLY_PROG, 0, "ok"),
    ("hash rdonly_prog+wronly_prog", HASH, 4, 4, 4, RDONLY_PROG | WRONLY_PROG, 0, "EINVAL"),
    ("lru no prealloc", LRU, 4, 4, 4, NO_PREALLOC, 0, "E524"),
    ("lru no common lru", LRU, 4, 4, 4, NO_COMMON_LRU, 0, "ok"),
    ("lru both", LRU, 4, 4, 4, NO_COMMON_LRU | NO_PREALLOC, 0, "E524"),
    ("lru zero seed", LRU, 4, 4, 4, ZERO_SEED, 0, "ok"),
    ("lru value max", LRU, 4, 4194251, 1, 0, 0, "ok"),
    ("array key_size 8", ARRAY, 8, 4, 4, 0, 0, "EINVAL"),
    ("array no prealloc", ARRAY, 4, 4, 4, NO_PREALLOC, 0, "EINVAL"),
    ("array mmapable", ARRAY, 4, 4, 4, MMAPABLE, 0, "ok"),
    ("array mmapable rdonly_prog", ARRAY, 4, 4, 1, MMAPABLE | RDONLY_PROG, 0, "ok"),
    ("array zero seed", ARRAY, 4, 4, 4, ZERO_SEED, 0, "EINVAL"),
    ("array preserve", ARRAY, 4, 4, 4, PRESERVE, 0, "EINVAL"),
    ("array value 2^22+1", ARRAY, 4, (1 << 22) + 1, 1, 0, 0, "ok"),
    ("array value 2^31", ARRAY, 4, 1 << 31, 1, 0, 0, "E2BIG"),
    ("percpu array value 32768", PARR, 4, 32768, 1, 0, 0, "ok"),
    ("percpu array value 32769", PARR, 4, 32769, 1, 0, 0, "E2BIG"),
    ("percpu array numa", PARR, 4, 4, 4, NUMA, 0, "EINVAL"),
    ("rdonly+wronly", HASH, 4, 4, 4, RDONLY | WRONLY, 0, "EINVAL"),
    ("queue key_size 4", Q, 4, 4, 4, 0, 0, "EINVAL"),
    ("queue ok", Q, 0, 4, 4, 0, 0, "ok"),
    ("queue no prealloc", Q, 0, 4, 4, NO_PREALLOC, 0, "EINVAL"),
    ("queue max_entries 0", Q, 0, 4, 0, 0, 0, "EINVAL"),
    ("queue value_size 0", Q, 0, 0, 4, 0, 0, "EINVAL"),
    ("queue zero seed", Q, 0, 4, 4, ZERO_SEED, 0, "EINVAL"),
    ("queue numa", Q, 0, 4, 4, NUMA, 0, "ok"),
    ("queue rdonly_prog", Q, 0, 4, 4, RDONLY_PROG, 0, "ok"),
    ("queue value 2^22", Q, 0, 1 << 22, 1, 0, 0, "ok"),
    ("stack value 2^22+1", S, 0, (1 << 22) + 1, 1, 0, 0, "E2BIG"),
    ("ringbuf 4096", RB, 0, 0, 4096, 0, 0, "ok"),
    ("ringbuf 8192", RB, 0, 0, 8192, 0, 0, "ok"),
    ("ringbuf 12288", RB, 0, 0, 12288, 0, 0, "EINVAL"),
    ("ringbuf 2048", RB, 0, 0, 2048, 0, 0, "EINVAL"),
    ("ringbuf value_size", RB, 0, 4, 4096, 0, 0, "EINVAL"),
    ("ringbuf key_size", RB, 4, 0, 4096, 0, 0, "EINVAL"),
    ("ringbuf no prealloc", RB, 0, 0, 4096, NO_PREALLOC, 0, "EINVAL"),
    ("ringbuf rdonly", RB, 0, 0, 4096, RDONLY, 0, "EINVAL"),
    ("ringbuf numa", RB, 0, 0, 4096, NUMA, 0, "ok"),
    ("bloom ok", BLOOM, 0, 4, 4, 0, 3, "ok"),
    ("bloom key_size", BLOOM, 4, 4, 4, 0, 0, "EINVAL"),
    ("bloom no prealloc", BLOOM, 0, 4, 4, NO_PREALLOC, 0, "EINVAL"),
    ("bloom map_extra 16", BLOOM, 0, 4, 4, 0, 16, "EINVAL"),
    ("bloom zero seed", BLOOM, 0, 4, 4, ZERO_SEED, 0, "ok"),
    ("bloom 2^31 entries", BLOOM, 0, 4, 1 << 31, 0, 0, "ok"),
    ("bloom value 2^22", BLOOM, 0, 1 << 22, 1, 0, 0, "ok"),
    ("bloom value 2^22+1", BLOOM, 0, (1 << 22) + 1, 1, 0, 0, "E2BIG"),
    ("perf value_size 8", PERF, 4, 8, 4, 0, 0, "EINVAL"),
    ("perf key_size 8", PERF, 8, 4, 4, 0, 0, "EINVAL"),
    ("perf max_entries 0", PERF, 4, 4, 0, 0, 0, "EINVAL"),
    ("perf preserve", PERF, 4, 4, 4, PRESERVE, 0, "ok"),
    ("perf rdonly", PERF, 4, 4, 4, RDONLY, 0, "ok"),
    ("prog ok", PROG, 4, 4, 4, 0, 0, "ok"),
    ("prog rdonly_prog", PROG, 4, 4, 4, RDONLY_PROG, 0, "EINVAL"),
    ("prog mmapable", PROG, 4, 4, 4, MMAPABLE, 0, "EINVAL"),
    ("unknown type 99", 99, 4, 4, 4, 0, 0, "EINVAL"),
    ("type 0", 0, 4, 4, 4, 0, 0, "EINVAL"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_create_rules(kernel: Any, case: tuple[str, int, int, int, int, int, int, str]) -> None:
    _, t, ks, vs, me, flags, extra, want = case
    m = err(create_map, kernel, attr(t, ks, vs, me, flags, map_extra=extra))
    got = m if isinstance(m, str) else "ok"
    if not isinstance(m, str):
        m.release()
    assert got == want


def test_unsupported_type_says_so(kernel: Any) -> None:
    with pytest.raises(OSError, match="STRUCT_OPS is not supported"):
        create_map(kernel, attr(26, 4, 4, 1))


def test_rdonly_wronly_are_fd_flags_not_map_flags(mk: Any) -> None:
    """``bpf_map_flags_retain_permanent``: the map keeps neither, the fd does."""
    m = mk(HASH, 4, 4, 4, RDONLY | ZERO_SEED)
    assert m.map_flags == ZERO_SEED and m.fd_flags == RDONLY


def test_no_common_lru_rounds_max_entries_to_cpus(mk: Any, kernel: Any) -> None:
    m = mk(LRU, 4, 4, 5, NO_COMMON_LRU)
    assert m.max_entries % kernel.ncpus == 0 and m.max_entries >= 5


def test_failed_create_leaves_nothing(kernel: Any) -> None:
    before_regions, before_mem = len(kernel.aspace.regions), kernel.memlock.used
    for case in CASES:
        _, t, ks, vs, me, flags, extra, want = case
        if want != "ok":
            err(create_map, kernel, attr(t, ks, vs, me, flags, map_extra=extra))
    assert len(kernel.aspace.regions) == before_regions and kernel.memlock.used == before_mem


@pytest.mark.parametrize("spec", [(HASH, 4, 4, 4, 0), (ARRAY, 4, 4, 1 << 20, 0), (PERF, 4, 4, 1 << 20, 0),
                                  (Q, 0, 64, 1 << 20, 0), (RB, 0, 0, 1 << 22, 0), (BLOOM, 0, 4, 4, 0),
                                  (PARR, 4, 8, 1 << 20, 0)])
def test_create_over_memlock_is_enomem_and_clean(kernel: Any, spec: tuple[int, ...]) -> None:
    kernel.memlock.limit = kernel.memlock.used + 100
    regions = len(kernel.aspace.regions)
    assert err(create_map, kernel, attr(*spec)) == "ENOMEM"
    assert len(kernel.aspace.regions) == regions


def test_address_space_exhaustion_is_enomem(kernel: Any) -> None:
    made = []
    try:
        for _ in range(100000):
            m = err(create_map, kernel, attr(HASH, 4, 4, 1))
            if isinstance(m, str):
                assert m == "ENOMEM"
                break
            made.append(m)
            e = err(m.sys_update, b"\0" * 4, b"1234", 0)  # allocates the map's first chunk: a region
            if e is not None:
                assert e == "ENOMEM"
                break
        else:
            pytest.fail("the address space never filled up")
        assert made[-1].prog_update(b"\1" * 4, b"1234", 0, 0) in (-12, -7)
    finally:
        for m in made:
            m.release()
    m = create_map(kernel, attr(HASH, 4, 4, 1))
    m.release()
