"""tinyaya.maps on each backend: every map type through its Aya-shaped wrapper."""
from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import pytest

from tinyaya.maps import (
    Array,
    ArrayOfMaps,
    BloomFilter,
    ElementNotFound,
    HashMap,
    HashOfMaps,
    InvalidKeySize,
    InvalidMapType,
    InvalidValueSize,
    KeyNotFound,
    LpmTrie,
    LruHashMap,
    MapData,
    MapError,
    OutOfBounds,
    PerCpuArray,
    PerCpuHashMap,
    ProgramArray,
    Queue,
    Stack,
    StackTraceMap,
    SyscallError,
    u32,
    u64,
)
from tinyaya.uapi.bpf import BpfMapType as T
from tinyaya.uapi.bpf import MapUpdateFlags as F

COUNT = Path(__file__).parents[2] / "tests/linux/fixtures/count_syscalls.o"


def create(kernel: Any, t: int, ks: int, vs: int, n: int, **kw: Any) -> MapData:
    return MapData.create(kernel, t, ks, vs, n, **kw)


def test_hash_map_get_insert_remove_iterate(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_HASH, 4, 8, 8, name="counts") as md:
        m = HashMap(md, key=u32, value=u64)
        for i in range(5):
            m.insert(i, i * 100)
        assert m.get(3) == 300
        assert sorted(m.keys()) == [0, 1, 2, 3, 4]
        assert dict(m.items()) == {i: i * 100 for i in range(5)}
        m.remove(3)
        with pytest.raises(KeyNotFound):
            m.get(3)
        with pytest.raises(MapError.KeyNotFound):
            m.remove(3)
        assert 3 not in m and 4 in m and len(m) == 4
        with pytest.raises(SyscallError) as ei:
            m.insert(4, 1, F.BPF_NOEXIST)
        assert ei.value.errno == 17  # EEXIST


def test_hash_map_full_gives_e2big(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_HASH, 4, 4, 2) as md:
        m = HashMap(md, key=u32, value=u32)
        m[1] = 1
        m[2] = 2
        with pytest.raises(SyscallError) as ei:
            m[3] = 3
        assert ei.value.errno == 7  # E2BIG


def test_codecs_ctypes_and_struct(kernel: Any) -> None:
    class Val(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint64)]

    with create(kernel, T.BPF_MAP_TYPE_HASH, 8, 16, 4) as md:
        m = HashMap(md, key="<II", value=Val)
        m.insert((1, 2), Val(7, 9))
        v = m.get((1, 2))
        assert (v.a, v.b) == (7, 9)
        with pytest.raises(InvalidKeySize):
            HashMap(md, key=u32, value=Val)
        with pytest.raises(InvalidValueSize):
            HashMap(md, key="<II", value=u64)
        with pytest.raises(InvalidMapType):
            Array(md, value=Val)


def test_lru_hash_evicts(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_LRU_HASH, 4, 4, 64) as md:
        m = LruHashMap(md, key=u32, value=u32)
        for i in range(1000):
            m.insert(i, i)
        n = len(m)
        assert 0 < n <= 64
        assert 999 in m


def test_array_and_bounds(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_ARRAY, 4, 8, 4) as md:
        a = Array(md, value=u64)
        assert list(a) == [0, 0, 0, 0]
        a[2] = 42
        assert a.get(2) == 42 and len(a) == 4
        with pytest.raises(OutOfBounds):
            a.get(4)
        with pytest.raises(OutOfBounds):
            a.set(-1, 0)


def test_percpu_array_and_hash(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 2) as md:
        a = PerCpuArray(md, value=u32)
        n = a.ncpus
        a.set(1, list(range(10, 10 + n)))
        assert a.get(1) == list(range(10, 10 + n))
        assert a.get(0) == [0] * n
        with pytest.raises(ValueError):
            a.set(0, [1] * (n + 1))
    with create(kernel, T.BPF_MAP_TYPE_PERCPU_HASH, 4, 12, 4) as md:
        h = PerCpuHashMap(md, key=u32, value="<III")
        h.insert(5, [(i, i, i) for i in range(h.ncpus)])
        assert h.get(5)[h.ncpus - 1] == (h.ncpus - 1,) * 3
        assert [k for k, _ in h.items()] == [5]


@pytest.mark.parametrize("cls,t,order", [(Queue, T.BPF_MAP_TYPE_QUEUE, [1, 2, 3]),
                                         (Stack, T.BPF_MAP_TYPE_STACK, [3, 2, 1])])
def test_queue_stack(kernel: Any, cls: Any, t: int, order: list[int]) -> None:
    with create(kernel, t, 0, 4, 3) as md:
        q = cls(md, value=u32)
        for v in (1, 2, 3):
            q.push(v)
        with pytest.raises(SyscallError) as ei:
            q.push(4)
        assert ei.value.errno == 7  # E2BIG when full
        assert q.peek() == order[0]
        assert [q.pop() for _ in range(3)] == order
        with pytest.raises(ElementNotFound):
            q.pop()
        with pytest.raises(ElementNotFound):
            q.peek()


def test_bloom_filter(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 100, map_extra=3) as md:
        b = BloomFilter(md, value=u32)
        b.insert(7)
        assert 7 in b
        b.contains(7)
        absent = [v for v in range(1000, 1050) if v not in b]
        assert absent  # a bloom filter of 100 entries does not claim 50 fresh values are all present


def test_map_of_maps(kernel: Any) -> None:
    inner = create(kernel, T.BPF_MAP_TYPE_ARRAY, 4, 4, 1)
    try:
        with create(kernel, T.BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 4, inner_map_fd=inner.fd) as md:
            h = HashOfMaps(md, key=u32)
            h.insert(1, inner)
            assert h.get(1) == inner.id
            with h.get_map(1) as again:
                assert again.id == inner.id
            h.remove(1)
            with pytest.raises(KeyNotFound):
                h.get(1)
        with create(kernel, T.BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 2, inner_map_fd=inner.fd) as md:
            a = ArrayOfMaps(md)
            a.set(0, inner)
            assert a.get(0) == inner.id
            with pytest.raises(OutOfBounds):
                a.set(2, inner)
    finally:
        inner.close()


def test_program_array(kernel: Any) -> None:
    from tinyaya import EbpfLoader

    with create(kernel, T.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4) as md, \
            EbpfLoader(kernel=kernel).load_file(COUNT) as ebpf:
        p = ProgramArray(md)
        assert list(p.indices()) == []
        with pytest.raises(OutOfBounds):
            p.set(9, 3)
        with pytest.raises(SyscallError):
            p.set(0, md.fd)  # a map fd is not a program
        prog = ebpf.program("ret_len")
        prog.load()
        p.set(2, prog)
        assert list(p.indices()) == [2]
        assert p.get(2) == prog.id
        p.clear_index(2)
        assert list(p.indices()) == []


def test_lru_percpu_hash(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_LRU_PERCPU_HASH, 4, 8, 16) as md:
        h = PerCpuHashMap(md, key=u32, value=u64)
        for i in range(40):
            h.insert(i, [i] * h.ncpus)
        assert 0 < len(list(h.keys())) <= 16
        assert h.get(39) == [39] * h.ncpus


def test_frozen_map_rejects_writes(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_ARRAY, 4, 4, 1) as md:
        a = Array(md, value=u32)
        a[0] = 5
        md.freeze()
        with pytest.raises(SyscallError) as ei:
            a[0] = 6
        assert ei.value.errno == 1  # EPERM
        assert a[0] == 5


def test_from_fd_reads_definition(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_HASH, 4, 8, 16, name="defn") as md:
        again = MapData.from_fd(kernel, md.fd)
        assert (again.map_type, again.key_size, again.value_size, again.max_entries, again.name) == (
            T.BPF_MAP_TYPE_HASH, 4, 8, 16, "defn")


def test_lpm_trie(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 16, map_flags=1) as md:  # BPF_F_NO_PREALLOC
        t = LpmTrie(md, key=">I", value=u32)  # IPv4 addresses in network byte order
        t.insert((8, 0x0A000000), 1)  # 10.0.0.0/8
        t.insert((24, 0x0A000100), 2)  # 10.0.1.0/24
        assert t.get((32, 0x0A000105)) == 2
        assert t.get((32, 0x0A020304)) == 1
        with pytest.raises(KeyNotFound):
            t.get((32, 0x0B000001))
        assert sorted(t.keys()) == [(8, 0x0A000000), (24, 0x0A000100)]
        t.remove((24, 0x0A000100))
        assert t.get((32, 0x0A000105)) == 1


def test_stack_trace_map_is_empty_until_a_program_fills_it(kernel: Any) -> None:
    with create(kernel, T.BPF_MAP_TYPE_STACK_TRACE, 4, 8 * 16, 8) as md:
        st = StackTraceMap(md)
        assert st.max_depth == 16 and list(st.stack_ids()) == []
        with pytest.raises(KeyNotFound):
            st.get(0)
