"""HASH and PERCPU_HASH element semantics (hashtab.c)."""
from __future__ import annotations

from typing import Any

from maps_helpers import err, u32

HASH, PHASH = 1, 5


def test_hash_update_flags_and_full(mk: Any) -> None:
    m = mk(HASH, 4, 4, 2)
    assert err(m.sys_update, u32(0), u32(1), 2) == "ENOENT"  # BPF_EXIST on a missing key
    m.sys_update(u32(0), u32(1), 1)
    assert err(m.sys_update, u32(0), u32(1), 1) == "EEXIST"
    m.sys_update(u32(1), u32(1), 0)
    assert err(m.sys_update, u32(2), u32(1), 0) == "E2BIG"
    assert err(m.sys_update, u32(2), u32(1), 1) == "E2BIG"
    assert err(m.sys_update, u32(2), u32(1), 2) == "ENOENT"
    m.sys_update(u32(1), u32(2), 0)  # replacing in a full map works
    assert m.sys_lookup(u32(1)) == u32(2)
    assert err(m.sys_update, u32(0), u32(1), 5) == "EINVAL"
    assert err(m.sys_delete, u32(9)) == "ENOENT"
    assert err(m.sys_lookup, u32(9)) == "ENOENT"


def test_lookup_and_delete(mk: Any) -> None:
    m = mk(HASH, 4, 4, 2)
    m.sys_update(u32(1), u32(2), 0)
    assert m.sys_lookup_and_delete(u32(1)) == u32(2)
    assert err(m.sys_lookup_and_delete, u32(1)) == "ENOENT"
    assert err(m.sys_lookup_and_delete, u32(1), 1) == "EINVAL"


def test_get_next_key_walks_every_key_once(mk: Any) -> None:
    m = mk(HASH, 4, 4, 16)
    keys = {u32(i * 7) for i in range(10)}
    for k in keys:
        m.sys_update(k, k, 0)
    seen, k = [], None
    while True:
        nk = err(m.sys_get_next_key, k)
        if nk == "ENOENT":
            break
        seen.append(nk)
        k = nk
    assert sorted(seen) == sorted(keys)


def test_get_next_key_after_deleted_key_restarts(mk: Any) -> None:
    """htab_map_get_next_key: a key that is gone gives the first key (bpftool's dump then restarts)."""
    m = mk(HASH, 4, 4, 8)
    for i in range(4):
        m.sys_update(u32(i), u32(i), 0)
    first = m.sys_get_next_key(None)
    second = m.sys_get_next_key(first)
    m.sys_delete(second)
    assert m.sys_get_next_key(second) == m.sys_get_next_key(None)
    assert err(m.sys_get_next_key, u32(77)) == first
    empty = mk(HASH, 4, 4, 8)
    assert err(empty.sys_get_next_key, None) == "ENOENT"


def test_deleted_slots_are_reused_and_value_pointers_stay(mk: Any, kernel: Any) -> None:
    m = mk(HASH, 8, 16, 4)
    m.sys_update(b"k1".ljust(8, b"\0"), b"v" * 16, 0)
    addr = m.prog_lookup(b"k1".ljust(8, b"\0"), 0)
    kernel.aspace.write(addr, b"W" * 16)
    assert m.sys_lookup(b"k1".ljust(8, b"\0")) == b"W" * 16
    m.sys_delete(b"k1".ljust(8, b"\0"))
    assert m.prog_lookup(b"k1".ljust(8, b"\0"), 0) == 0
    m.sys_update(b"k2".ljust(8, b"\0"), b"x" * 16, 0)
    assert m.prog_lookup(b"k2".ljust(8, b"\0"), 0) == addr  # the freed element is reused


def test_prog_face_returns_errnos(mk: Any) -> None:
    m = mk(HASH, 4, 4, 1)
    assert m.prog_update(u32(1), u32(1), 0, 0) == 0
    assert m.prog_update(u32(2), u32(1), 0, 0) == -7  # -E2BIG
    assert m.prog_update(u32(1), u32(1), 1, 0) == -17  # -EEXIST
    assert m.prog_update(u32(3), u32(1), 2, 0) == -2  # -ENOENT
    assert m.prog_update(u32(3), u32(1), 9, 0) == -22
    assert m.prog_delete(u32(3)) == -2
    assert m.prog_delete(u32(1)) == 0


def test_percpu_hash(mk: Any, kernel: Any) -> None:
    n = kernel.ncpus
    m = mk(PHASH, 4, 4, 4)
    assert m.prog_update(u32(1), u32(5), 0, 1) == 0  # new element: this CPU's value, zeros elsewhere
    out = m.sys_lookup(u32(1))
    assert len(out) == 8 * n and out[8:12] == u32(5) and out[0:4] == bytes(4)
    m.sys_update(u32(2), b"".join(u32(c + 1).ljust(8, b"\0") for c in range(n)), 0)
    assert kernel.aspace.read(m.prog_lookup(u32(2), 0), 4) == u32(1)
    assert kernel.aspace.read(m.prog_lookup_percpu(u32(2), 1), 4) == u32(2)
    assert m.prog_lookup_percpu(u32(2), n) == 0
    assert m.prog_update(u32(2), u32(42), 0, 0) == 0  # existing element: only this CPU changes
    out = m.sys_lookup(u32(2))
    assert out[0:4] == u32(42) and out[8:12] == u32(2)


def test_for_each_skips_deleted(mk: Any, kernel: Any) -> None:
    m = mk(HASH, 4, 8, 8)
    for i in range(5):
        m.sys_update(u32(i), bytes([i]) * 8, 0)
    order = [kernel.aspace.read(ka, 4) for ka, _ in m.for_each(0)]
    assert sorted(order) == [u32(i) for i in range(5)]
    seen = []
    for ka, va in m.for_each(0):
        k = kernel.aspace.read(ka, 4)
        seen.append(k)
        if k == order[0]:
            m.sys_delete(order[-1])
        assert kernel.aspace.read(va, 8) == bytes([k[0]]) * 8
    assert seen == order[:-1]


def test_huge_hash_costs_nothing_until_filled(mk: Any, kernel: Any) -> None:
    used = kernel.memlock.used
    regions = len(kernel.aspace.regions)
    m = mk(HASH, 8, 8, 1 << 27, 1)
    assert kernel.memlock.used - used < 4096
    assert len(kernel.aspace.regions) == regions + 1  # only the map's own region
    for i in range(1000):
        m.sys_update(i.to_bytes(8, "little"), bytes(8), 0)
    assert kernel.memlock.used - used < 1 << 20
    assert len(m) == 1000


def test_hash_charges_memlock_and_release_gives_back(mk: Any, kernel: Any) -> None:
    kernel.memlock.limit = kernel.memlock.used + (64 << 10)
    m = mk(HASH, 8, 1024, 1 << 20, 1)
    n = 0
    while True:
        e = err(m.sys_update, n.to_bytes(8, "little"), bytes(1024), 0)
        if e == "ENOMEM":
            break
        assert e is None
        n += 1
    assert 0 < n < 64
    assert len(m) == n  # the failed insert left nothing behind
    used = kernel.memlock.used
    m.release()
    assert kernel.memlock.used < used


def test_spin_lock_field_is_never_copied(mk: Any, kernel: Any) -> None:
    """``copy_map_value``/``check_and_init_map_value``: user space neither writes nor reads the lock."""
    for t in (HASH, 2):
        m = mk(t, 4, 16, 2)
        m.spin_lock_off = 4
        m.sys_update(u32(1), b"A" * 16, 0)
        addr = m.prog_lookup(u32(1), 0)
        assert kernel.aspace.read(addr, 16) == b"AAAA" + bytes(4) + b"A" * 8
        kernel.aspace.write(addr + 4, b"\x01\0\0\0")  # a program holds the lock
        m.sys_update(u32(1), b"B" * 16, 0)
        assert kernel.aspace.read(addr + 4, 4) == b"\x01\0\0\0"
        assert m.sys_lookup(u32(1)) == b"BBBB" + bytes(4) + b"B" * 8


def test_bucket_order_newest_first_and_replaced_to_head(mk: Any) -> None:
    from tinyaya.sim_kernel.maps.jhash import htab_map_hash

    m = mk(HASH, 4, 4, 2, 64)  # ZERO_SEED: two buckets
    keys = [u32(i) for i in range(40)]
    same = [k for k in keys if htab_map_hash(k, 0) & 1 == htab_map_hash(keys[0], 0) & 1][:2]
    m2 = mk(HASH, 4, 4, 2, 64)
    m2.sys_update(same[0], u32(0), 0)
    m2.sys_update(same[1], u32(0), 0)
    first = m2.sys_get_next_key(None)
    assert first == same[1]  # newest first
    m2.sys_update(same[0], u32(1), 0)  # replaced: back to the head
    assert m2.sys_get_next_key(None) == same[0]
    assert m.n_buckets == 2 and m.hashrnd == 0
