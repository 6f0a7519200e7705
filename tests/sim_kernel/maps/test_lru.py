"""LRU_HASH and LRU_PERCPU_HASH: a full map accepts inserts by evicting (Linux's LRU lists; exactness is the
differential tests' job), reference bits from programs protect, the lists and the table stay consistent."""
from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


def test_full_lru_accepts_inserts(mk: Any) -> None:
    m = mk(LRU, 4, 4, 4)
    for i in range(5):
        m.sys_update(u32(i), u32(i), 0)
    keys = keys_of(m)
    assert u32(4) in keys and 0 < len(keys) <= 4 and len(m) == len(keys)


def test_program_lookup_protects_user_lookup_does_not(mk: Any) -> None:
    """A program's lookup sets the reference bit (``bpf_lru_node_set_ref``); user space's does not."""
    m = mk(LRU, 4, 4, 8)
    for i in range(8):
        m.sys_update(u32(i), u32(i), 0)
    for i in range(100, 300):
        assert m.prog_lookup(u32(0), 0)  # keeps key 0 referenced
        if u32(1) in keys_of(m):
            m.sys_lookup(u32(1))
        m.sys_update(u32(i), u32(i), 0)
    keys = keys_of(m)
    assert u32(0) in keys and u32(1) not in keys and u32(299) in keys


def test_update_flags_still_apply(mk: Any) -> None:
    m = mk(LRU, 4, 4, 2)
    m.sys_update(u32(0), u32(0), 0)
    assert err(m.sys_update, u32(0), u32(1), 1) == "EEXIST"
    assert err(m.sys_update, u32(7), u32(1), 2) == "ENOENT"
    assert err(m.sys_update, u32(7), u32(1), 4) == "EINVAL"  # no BPF_F_LOCK for LRU maps
    m.sys_update(u32(0), u32(9), 2)
    assert m.sys_lookup(u32(0)) == u32(9)


def test_pressure_keeps_the_newest(mk: Any) -> None:
    m = mk(LRU, 8, 8, 64)
    for i in range(10000):
        assert m.prog_update(i.to_bytes(8, "little"), i.to_bytes(8, "little"), 0, i % 2) == 0
    keys = keys_of(m)
    assert 0 < len(keys) <= 64 and (9999).to_bytes(8, "little") in keys
    assert all(m.sys_lookup(k) == k for k in keys)


def test_lru_percpu(mk: Any, kernel: Any) -> None:
    m = mk(LRUP, 4, 4, 2)
    m.sys_update(u32(0), bytes(8 * kernel.ncpus), 0)
    assert m.prog_update(u32(0), u32(3), 0, 1) == 0
    assert m.sys_lookup(u32(0))[8:12] == u32(3)
    m.sys_update(u32(1), bytes(8 * kernel.ncpus), 0)
    m.sys_update(u32(2), bytes(8 * kernel.ncpus), 0)
    assert 0 < len(m) <= 2 and u32(2) in keys_of(m)


def test_huge_lru_costs_nothing_up_front(mk: Any, kernel: Any) -> None:
    used = kernel.memlock.used
    m = mk(LRU, 8, 8, 1 << 27)
    for i in range(100):
        m.sys_update(i.to_bytes(8, "little"), bytes(8), 0)
    assert len(m) == 100 and kernel.memlock.used - used < 1 << 20
    assert len(m.lru_lists.nodes) < 1000


def test_percpu_lru_lists_evict_within_their_cpu(mk: Any, kernel: Any) -> None:
    """BPF_F_NO_COMMON_LRU: each CPU owns max_entries / ncpus elements and evicts from its own list."""
    m = mk(LRU, 4, 4, 4, 2)
    share = m.max_entries // kernel.ncpus
    for i in range(m.max_entries):
        assert m.prog_update(u32(i), u32(i), 0, 0) == 0  # all on CPU 0
    assert keys_of(m) == {u32(i) for i in range(m.max_entries - share, m.max_entries)}
    assert m.prog_update(u32(100), u32(0), 0, 1) == 0  # CPU 1's share is untouched
    assert len(m) == share + 1


LRU_OPS = st.lists(st.tuples(st.sampled_from(["pu", "pu", "pl", "pd", "su", "sd", "sld"]), st.integers(0, 30),
                             st.integers(0, 3), st.sampled_from([0, 0, 1, 2])), max_size=200)


@settings(max_examples=int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=st.sampled_from([(LRU, 0), (LRU, 2), (LRUP, 0), (LRUP, 2)]), max_entries=st.sampled_from([1, 2, 4, 7, 16]),
       ops=LRU_OPS)
def test_lru_lists_stay_consistent(kernel: Any, spec: tuple[int, int], max_entries: int,
                                   ops: list[tuple[str, int, int, int]]) -> None:
    """Programs on every CPU and user space interleaved: the lists, the table and the charge agree."""
    from maps_helpers import attr

    from tinyaya.sim_kernel.maps import create_map

    used = kernel.memlock.used
    m = create_map(kernel, attr(spec[0], 4, 4, max_entries, spec[1]))
    vs = 8 * kernel.ncpus if spec[0] == LRUP else 4
    for op, key, cpu, fl in ops:
        cpu %= kernel.ncpus
        k = u32(key)
        if op == "pu":
            assert m.prog_update(k, u32(key), fl, cpu) in (0, -17, -2, -12)
        elif op == "pl":
            a = m.prog_lookup(k, cpu)
            assert a == 0 or kernel.aspace.read(a, 4) in (u32(key), bytes(4))
        elif op == "pd":
            m.prog_delete(k)
        elif op == "su":
            err(m.sys_update, k, bytes(vs), fl)
        elif op == "sd":
            err(m.sys_delete, k)
        else:
            err(m.sys_lookup_and_delete, k)
        assert len(m) <= m.max_entries
        assert set(m.slot_key.values()) == set(m.index) == set(m.order.keys())
        assert all(m.slot_key[i] == key2 for key2, i in m.index.items())
    m.release()
    assert kernel.memlock.used == used
