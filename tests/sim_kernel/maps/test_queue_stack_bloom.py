"""QUEUE, STACK (key_size 0) and BLOOM_FILTER semantics."""
from __future__ import annotations

from typing import Any

from maps_helpers import err, u32

Q, S, BLOOM = 22, 23, 30


def test_queue_fifo_full_and_exist(mk: Any) -> None:
    m = mk(Q, 0, 4, 2)
    m.sys_update(None, u32(1), 0)
    m.sys_update(None, u32(2), 0)
    assert err(m.sys_update, None, u32(3), 0) == "E2BIG"
    m.sys_update(None, u32(3), 2)  # BPF_EXIST drops the oldest
    assert err(m.sys_update, None, u32(3), 1) == "EINVAL"
    assert err(m.sys_update, None, u32(3), 4) == "EINVAL"
    assert m.sys_lookup(None) == u32(2)
    assert m.sys_lookup_and_delete(None) == u32(2)
    assert m.sys_lookup_and_delete(None) == u32(3)
    assert err(m.sys_lookup_and_delete, None) == "ENOENT"
    assert err(m.sys_lookup, None) == "ENOENT"
    assert err(m.sys_delete, None) == "EINVAL"
    assert err(m.sys_get_next_key, None) == "EINVAL"


def test_stack_lifo_drops_bottom(mk: Any) -> None:
    m = mk(S, 0, 4, 2)
    m.sys_update(None, u32(1), 0)
    m.sys_update(None, u32(2), 0)
    m.sys_update(None, u32(3), 2)
    assert m.sys_lookup(None) == u32(3)
    assert [m.sys_lookup_and_delete(None), m.sys_lookup_and_delete(None)] == [u32(3), u32(2)]
    assert err(m.sys_lookup_and_delete, None) == "ENOENT"


def test_queue_program_face(mk: Any) -> None:
    m = mk(Q, 0, 8, 4)
    assert m.prog_push(b"abcdefgh", 0) == 0
    assert m.prog_peek(0) == b"abcdefgh"
    assert m.prog_pop(0) == b"abcdefgh"
    assert m.prog_pop(0) == -2
    assert m.prog_push(b"x" * 8, 1) == -22
    assert m.prog_lookup(b"", 0) == 0


def test_bloom_filter(mk: Any) -> None:
    m = mk(BLOOM, 0, 4, 100, map_extra=3)
    assert m.nr_hash_funcs == 3
    for i in range(50):
        m.sys_update(None, u32(i), 0)
    assert all(m.sys_lookup(None, 0, u32(i)) == u32(i) for i in range(50))
    absent = sum(err(m.sys_lookup, None, 0, u32(i)) == "ENOENT" for i in range(1000, 2000))
    assert absent > 900  # false positives stay rare
    assert err(m.sys_update, None, u32(1), 1) == "EINVAL"
    assert err(m.sys_delete, None) == "ENOTSUP"
    assert err(m.sys_get_next_key, None) == "ENOTSUP"
    assert m.prog_push(u32(7), 0) == 0 and m.prog_peek(0, u32(7)) == u32(7)
    assert mk(BLOOM, 0, 4, 4).nr_hash_funcs == 5


def test_huge_bloom_costs_little(mk: Any, kernel: Any) -> None:
    used = kernel.memlock.used
    m = mk(BLOOM, 0, 8, 1 << 31)
    m.sys_update(None, b"12345678", 0)
    # a 512 MiB bitset: only the chunks holding the value's 5 bits exist (and are charged)
    assert len(list(m.storage.chunks())) <= 5
    assert kernel.memlock.used - used <= 5 * m.storage.chunk_bytes + 4096 < 1 << 24
