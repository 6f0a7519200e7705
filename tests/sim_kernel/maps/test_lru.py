"""LRU_HASH and LRU_PERCPU_HASH: a full map accepts inserts by evicting, least recently used first."""
from __future__ import annotations

from typing import Any

from maps_helpers import err, u32

LRU, LRUP = 9, 10


def keys_of(m: Any) -> set[bytes]:
    out, k = set(), None
    while True:
        nk = err(m.sys_get_next_key, k)
        if nk == "ENOENT":
            return out
        out.add(nk)
        k = nk


def test_full_lru_evicts_oldest(mk: Any) -> None:
    m = mk(LRU, 4, 4, 4)
    for i in range(4):
        m.sys_update(u32(i), u32(i), 0)
    m.sys_update(u32(4), u32(4), 0)
    assert keys_of(m) == {u32(1), u32(2), u32(3), u32(4)}
    assert len(m) == 4


def test_program_lookup_makes_recent(mk: Any) -> None:
    m = mk(LRU, 4, 4, 3)
    for i in range(3):
        m.sys_update(u32(i), u32(i), 0)
    assert m.prog_lookup(u32(0), 0)  # 0 becomes the most recently used
    m.sys_update(u32(3), u32(3), 0)
    assert keys_of(m) == {u32(0), u32(2), u32(3)}


def test_user_lookup_does_not_make_recent(mk: Any) -> None:
    """``htab_lru_map_lookup_elem_sys``: user space reading does not set the reference bit."""
    m = mk(LRU, 4, 4, 2)
    m.sys_update(u32(0), u32(0), 0)
    m.sys_update(u32(1), u32(1), 0)
    m.sys_lookup(u32(0))
    m.sys_update(u32(2), u32(2), 0)
    assert keys_of(m) == {u32(1), u32(2)}


def test_update_refreshes_and_flags_still_apply(mk: Any) -> None:
    m = mk(LRU, 4, 4, 2)
    m.sys_update(u32(0), u32(0), 0)
    m.sys_update(u32(1), u32(1), 0)
    m.sys_update(u32(0), u32(9), 2)  # BPF_EXIST refreshes 0
    m.sys_update(u32(2), u32(2), 0)
    assert keys_of(m) == {u32(0), u32(2)}
    assert err(m.sys_update, u32(0), u32(1), 1) == "EEXIST"
    assert err(m.sys_update, u32(7), u32(1), 2) == "ENOENT"


def test_pressure_keeps_the_newest(mk: Any) -> None:
    m = mk(LRU, 8, 8, 64)
    for i in range(10000):
        assert m.prog_update(i.to_bytes(8, "little"), i.to_bytes(8, "little"), 0, i % 2) == 0
    assert len(m) == 64
    assert keys_of(m) == {i.to_bytes(8, "little") for i in range(10000 - 64, 10000)}


def test_lru_percpu(mk: Any, kernel: Any) -> None:
    m = mk(LRUP, 4, 4, 2)
    m.sys_update(u32(0), bytes(8 * kernel.ncpus), 0)
    assert m.prog_update(u32(0), u32(3), 0, 1) == 0
    assert m.sys_lookup(u32(0))[8:12] == u32(3)
    m.sys_update(u32(1), bytes(8 * kernel.ncpus), 0)
    m.sys_update(u32(2), bytes(8 * kernel.ncpus), 0)
    assert len(m) == 2


def test_percpu_lru_lists_evict_within_their_cpu(mk: Any, kernel: Any) -> None:
    """BPF_F_NO_COMMON_LRU: each CPU owns max_entries / ncpus elements and evicts from its own list."""
    m = mk(LRU, 4, 4, 4, 2)
    share = m.max_entries // kernel.ncpus
    for i in range(m.max_entries):
        assert m.prog_update(u32(i), u32(i), 0, 0) == 0  # all on CPU 0
    assert keys_of(m) == {u32(i) for i in range(m.max_entries - share, m.max_entries)}
    assert m.prog_update(u32(100), u32(0), 0, 1) == 0  # CPU 1's share is untouched
    assert len(m) == share + 1
