"""ARRAY and PERCPU_ARRAY element semantics (arraymap.c), program and syscall faces."""
from __future__ import annotations

import mmap
from typing import Any

import pytest
from maps_helpers import err, u32

ARRAY, PARR = 2, 6


def test_array_update_rules(mk: Any) -> None:
    m = mk(ARRAY, 4, 4, 2)
    assert err(m.sys_update, u32(0), u32(1), 1) == "EEXIST"  # BPF_NOEXIST: every index exists
    assert err(m.sys_update, u32(2), u32(1), 0) == "E2BIG"
    assert err(m.sys_update, u32(0), u32(1), 8) == "EINVAL"
    assert err(m.sys_update, u32(0), u32(1), 3) == "EINVAL"
    assert err(m.sys_update, u32(0), u32(1), 4) == "EINVAL"  # BPF_F_LOCK without a spin lock
    m.sys_update(u32(1), u32(7), 2)  # BPF_EXIST
    assert m.sys_lookup(u32(1)) == u32(7)
    assert m.sys_lookup(u32(0)) == bytes(4)
    assert err(m.sys_lookup, u32(5)) == "ENOENT"
    assert err(m.sys_delete, u32(0)) == "EINVAL"


def test_array_get_next_key(mk: Any) -> None:
    m = mk(ARRAY, 4, 4, 3)
    assert m.sys_get_next_key(None) == u32(0)
    assert m.sys_get_next_key(u32(0)) == u32(1)
    assert err(m.sys_get_next_key, u32(2)) == "ENOENT"
    assert m.sys_get_next_key(u32(99)) == u32(0)


def test_frozen_array_rejects_user_writes_not_reads(mk: Any) -> None:
    m = mk(ARRAY, 4, 4, 2)
    m.freeze()
    assert err(m.sys_update, u32(0), u32(1), 0) == "EPERM"
    assert m.sys_lookup(u32(0)) == bytes(4)
    assert m.prog_update(u32(0), u32(5), 0, 0) == 0  # programs may still write a frozen map
    assert m.sys_lookup(u32(0)) == u32(5)


def test_value_pointer_is_the_value(mk: Any, kernel: Any) -> None:
    m = mk(ARRAY, 4, 12, 4)
    addr = m.prog_lookup(u32(3), 0)
    kernel.aspace.write(addr, b"abcdefghijkl")
    assert m.sys_lookup(u32(3)) == b"abcdefghijkl"
    assert m.prog_lookup(u32(4), 0) == 0
    # elements are round_up(value_size, 8) apart
    assert m.prog_lookup(u32(2), 0) == addr - 16


def test_percpu_array(mk: Any, kernel: Any) -> None:
    m = mk(PARR, 4, 4, 2)
    n = kernel.ncpus
    m.sys_update(u32(1), b"".join(u32(10 + c).ljust(8, b"\0") for c in range(n)), 0)
    out = m.sys_lookup(u32(1))
    assert len(out) == 8 * n
    assert [int.from_bytes(out[8 * c:8 * c + 4], "little") for c in range(n)] == [10 + c for c in range(n)]
    assert m.prog_update(u32(0), u32(99), 0, 1) == 0
    out = m.sys_lookup(u32(0))
    assert out[8:12] == u32(99) and out[0:4] == bytes(4)
    assert kernel.aspace.read(m.prog_lookup(u32(1), 1), 4) == u32(11)
    assert m.prog_lookup_percpu(u32(1), n) == 0
    assert kernel.aspace.read(m.prog_lookup_percpu(u32(1), 0), 4) == u32(10)


def test_direct_value_addr(mk: Any) -> None:
    one = mk(ARRAY, 4, 16, 1)
    assert one.value_addr(8) == one.prog_lookup(u32(0), 0) + 8
    assert err(one.value_addr, 16) == "EINVAL"
    assert err(mk(ARRAY, 4, 16, 2).value_addr, 0) == "E524"


def test_rdonly_prog_value_region_is_read_only(mk: Any, kernel: Any) -> None:
    from tinyaya.sim_kernel.memory import MemoryFault

    m = mk(ARRAY, 4, 8, 1, 128)
    m.sys_update(u32(0), b"12345678", 0)
    addr = m.prog_lookup(u32(0), 0)
    assert kernel.aspace.read(addr, 8) == b"12345678"
    with pytest.raises(MemoryFault):
        kernel.aspace.write(addr, b"x")


def test_mmapable_array_shares_values(mk: Any) -> None:
    m = mk(ARRAY, 4, 8, 4, 1024)
    view = m.mmap(4096, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, 0)
    view[8:16] = b"fromuser"
    assert m.sys_lookup(u32(1)) == b"fromuser"
    m.sys_update(u32(2), b"fromkern", 0)
    assert bytes(view[16:24]) == b"fromkern"
    assert m.writecnt == 1
    assert err(m.mmap, 8192, mmap.PROT_READ, mmap.MAP_SHARED, 0) == "EINVAL"
    assert err(m.mmap, 4096, mmap.PROT_READ, mmap.MAP_PRIVATE, 0) == "EINVAL"
    m.munmap(view)
    assert m.writecnt == 0
    m.freeze()
    assert err(m.mmap, 4096, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, 0) == "EPERM"
    assert m.mmap(4096, mmap.PROT_READ, mmap.MAP_SHARED, 0).readonly


def test_array_for_each(mk: Any, kernel: Any) -> None:
    m = mk(ARRAY, 4, 8, 3)
    seen = [(kernel.aspace.read(k, 4), v) for k, v in m.for_each(0)]
    assert [k for k, _ in seen] == [u32(0), u32(1), u32(2)]
    assert [v for _, v in seen] == [m.prog_lookup(u32(i), 0) for i in range(3)]


def test_big_array_costs_nothing_until_touched(mk: Any, kernel: Any) -> None:
    """2^23 entries of 64 bytes are charged (as Linux allocates them) but only touched chunks exist."""
    regions = len(kernel.aspace.regions)
    m = mk(ARRAY, 4, 64, 1 << 23)
    assert kernel.memlock.used >= 64 << 23
    assert len(kernel.aspace.regions) <= regions + 2
    m.sys_update(u32((1 << 23) - 1), b"z" * 64, 0)
    assert len(kernel.aspace.regions) <= regions + 3
    assert m.sys_lookup(u32(12345)) == bytes(64)


def test_array_over_memlock_is_enomem(kernel: Any) -> None:
    from maps_helpers import attr

    from tinyaya.sim_kernel.maps import create_map

    kernel.memlock.limit = kernel.memlock.used + (1 << 20)
    assert err(create_map, kernel, attr(ARRAY, 4, 8, 1 << 20)) == "ENOMEM"
    m = create_map(kernel, attr(ARRAY, 4, 8, 1 << 10))
    m.release()


def test_mmapable_array_too_big_for_one_region(kernel: Any) -> None:
    from maps_helpers import attr

    from tinyaya.sim_kernel.maps import create_map

    kernel.memlock.limit = 1 << 40
    used, regions = kernel.memlock.used, len(kernel.aspace.regions)
    assert err(create_map, kernel, attr(ARRAY, 4, 8, 1 << 30, 1024)) == "ENOMEM"
    assert kernel.memlock.used == used and len(kernel.aspace.regions) == regions
