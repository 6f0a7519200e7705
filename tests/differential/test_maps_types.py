"""Map types against the real kernel: creation rules, element ops and their errnos, per type.

Each scenario runs the same ``union bpf_attr`` bytes through ``SimKernel().bpf`` and
``LinuxKernel().bpf`` (see diffharness.py) and returns only what must agree.
"""
from __future__ import annotations

import errno
from typing import Any

import pytest
from diffharness import Side, elem, map_create, u32

CREATE, LOOKUP, UPDATE, DELETE, NEXT, LAD, FREEZE = 0, 1, 2, 3, 4, 21, 22
HASH, ARRAY, PROG, PERF, PHASH, PARR, LRU, LRUP = 1, 2, 3, 4, 5, 6, 9, 10
AOM, HOM, Q, S, RB, BLOOM = 12, 13, 22, 23, 27, 30
NO_PREALLOC, NO_COMMON_LRU, NUMA, RDONLY, WRONLY = 1, 2, 4, 8, 16
ZERO_SEED, RDONLY_PROG, WRONLY_PROG, MMAPABLE, PRESERVE, INNER = 64, 128, 256, 1024, 2048, 4096


class Ops:
    """Element commands on one side, returning comparable outcomes."""

    def __init__(self, s: Side, fd: int, key_size: int, value_size: int) -> None:
        self.s, self.fd, self.ks, self.vs = s, fd, key_size, value_size

    def _key(self, key: bytes | None) -> int:
        return 0 if key is None else self.s.buf(key)

    def update(self, key: bytes | None, value: bytes, flags: int = 0) -> Any:
        return self.s.bpf(UPDATE, elem(self.fd, self._key(key), self.s.buf(value), flags)).outcome

    def lookup(self, key: bytes | None, flags: int = 0, value_in: bytes | None = None) -> Any:
        v = self.s.buf(value_in if value_in is not None else self.vs)
        r = self.s.bpf(LOOKUP, elem(self.fd, self._key(key), v, flags))
        return self.s.read(v, self.vs) if r.ok else r.outcome

    def delete(self, key: bytes | None) -> Any:
        return self.s.bpf(DELETE, elem(self.fd, self._key(key))).outcome

    def next_key(self, key: bytes | None) -> Any:
        nk = self.s.buf(max(self.ks, 1))
        r = self.s.bpf(NEXT, elem(self.fd, self._key(key), nk))
        return self.s.read(nk, self.ks) if r.ok else r.outcome

    def lookup_and_delete(self, key: bytes | None, flags: int = 0) -> Any:
        v = self.s.buf(self.vs)
        r = self.s.bpf(LAD, elem(self.fd, self._key(key), v, flags))
        return self.s.read(v, self.vs) if r.ok else r.outcome

    def freeze(self) -> Any:
        return self.s.bpf(FREEZE, elem(self.fd)).outcome

    def keys(self) -> set[bytes]:
        out: set[bytes] = set()
        k: bytes | None = None
        while True:
            nk = self.next_key(k)
            if not isinstance(nk, bytes) or nk in out or len(out) > 100000:
                return out
            out.add(nk)
            k = nk


def ncpus(s: Side) -> int:
    text = s.k.read_file("/sys/devices/system/cpu/possible").decode().strip()
    return int(text.split("-")[-1]) + 1


def create(s: Side, *a: Any, **kw: Any) -> Any:
    return s.bpf(CREATE, map_create(*a, **kw))


CREATE_CASES = [
    ("hash key 0", HASH, 0, 4, 4, 0), ("hash value 0", HASH, 4, 0, 4, 0), ("hash max 0", HASH, 4, 4, 0, 0),
    ("hash 2^27+1", HASH, 4, 4, (1 << 27) + 1, NO_PREALLOC), ("hash 2^31", HASH, 4, 4, 1 << 31, 0),
    ("hash k+v big", HASH, 4, 4194252, 1, NO_PREALLOC), ("hash k+v max", HASH, 4, 4194251, 1, NO_PREALLOC),
    ("percpu hash 32769", PHASH, 4, 32769, 1, 0), ("hash mmapable", HASH, 4, 4, 4, MMAPABLE),
    ("hash no_common_lru", HASH, 4, 4, 4, NO_COMMON_LRU), ("hash zero seed", HASH, 4, 4, 4, ZERO_SEED),
    ("lru no prealloc", LRU, 4, 4, 4, NO_PREALLOC), ("lru no_common_lru", LRU, 4, 4, 4, NO_COMMON_LRU),
    ("percpu hash numa", PHASH, 4, 4, 4, NUMA), ("array key 8", ARRAY, 8, 4, 4, 0),
    ("array no prealloc", ARRAY, 4, 4, 4, NO_PREALLOC), ("array mmapable", ARRAY, 4, 4, 4, MMAPABLE),
    ("array value 2^31", ARRAY, 4, 1 << 31, 1, 0), ("percpu array 32769", PARR, 4, 32769, 1, 0),
    ("percpu array mmapable", PARR, 4, 4, 1, MMAPABLE), ("array preserve", ARRAY, 4, 4, 1, PRESERVE),
    ("rdonly|wronly", ARRAY, 4, 4, 1, RDONLY | WRONLY), ("rdonly_prog|wronly_prog", HASH, 4, 4, 1, 384),
    ("unknown flag", HASH, 4, 4, 1, 1 << 20), ("queue key 4", Q, 4, 4, 4, 0), ("queue ok", Q, 0, 4, 4, 0),
    ("stack value 2^22+1", S, 0, (1 << 22) + 1, 1, 0), ("queue zero seed", Q, 0, 4, 4, ZERO_SEED),
    ("ringbuf 12288", RB, 0, 0, 12288, 0), ("ringbuf 8192", RB, 0, 0, 8192, 0),
    ("ringbuf rdonly", RB, 0, 0, 4096, RDONLY), ("ringbuf value", RB, 0, 8, 4096, 0),
    ("bloom key", BLOOM, 4, 4, 4, 0), ("bloom no prealloc", BLOOM, 0, 4, 4, NO_PREALLOC),
    ("perf value 8", PERF, 4, 8, 4, 0), ("perf preserve", PERF, 4, 4, 4, PRESERVE),
    ("prog rdonly_prog", PROG, 4, 4, 4, RDONLY_PROG), ("unknown type", 99, 4, 4, 4, 0),
]


@pytest.mark.parametrize("case", CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_create(kernels: Any, case: tuple[Any, ...]) -> None:
    kernels.compare(lambda s: create(s, *case[1:]).outcome)


def test_create_map_extra(kernels: Any) -> None:
    kernels.compare(lambda s: [create(s, HASH, 4, 4, 4, map_extra=1).outcome,
                               create(s, BLOOM, 0, 4, 4, map_extra=16).outcome,
                               create(s, BLOOM, 0, 4, 4, map_extra=15).outcome])


def test_array_ops(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        o = Ops(s, s.fd(create(s, ARRAY, 4, 6, 3)), 4, 6)
        return [o.update(u32(0), b"abcdef", 1), o.update(u32(3), b"abcdef"), o.update(u32(1), b"abcdef", 8),
                o.update(u32(1), b"abcdef", 4), o.update(u32(1), b"abcdef", 2), o.lookup(u32(1)),
                o.lookup(u32(3)), o.lookup(u32(1), 1), o.delete(u32(1)), o.lookup_and_delete(u32(1)),
                o.next_key(None), o.next_key(u32(1)), o.next_key(u32(2)), o.next_key(u32(77)),
                o.freeze(), o.freeze(), o.update(u32(0), b"zzzzzz"), o.lookup(u32(1)), o.delete(u32(0))]
    kernels.compare(scenario)


def test_percpu_array_padding(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        n = ncpus(s)
        o = Ops(s, s.fd(create(s, PARR, 4, 5, 2)), 4, 8 * n)
        vals = b"".join(bytes([65 + c]) * 8 for c in range(n))
        return [o.update(u32(1), vals), o.lookup(u32(1)), o.lookup(u32(0)), o.update(u32(0), vals, 1)]
    kernels.compare(scenario)


@pytest.mark.parametrize("map_type,flags", [(HASH, 0), (HASH, NO_PREALLOC), (PHASH, 0), (LRU, 0)],
                         ids=["hash", "hash-no-prealloc", "percpu-hash", "lru"])
def test_hash_ops_full_and_flags(kernels: Any, map_type: int, flags: int) -> None:
    def scenario(s: Side) -> list[Any]:
        vs = 8 * ncpus(s) if map_type == PHASH else 8
        o = Ops(s, s.fd(create(s, map_type, 4, 8, 2, flags)), 4, vs)
        v = b"v" * vs
        out = [o.next_key(None), o.update(u32(1), v, 2), o.update(u32(1), v, 1), o.update(u32(1), v, 1),
               o.update(u32(2), v, 0), o.update(u32(2), b"w" * vs, 2), o.lookup(u32(2)), o.update(u32(1), v, 7),
               o.lookup(u32(9)), o.delete(u32(9)), o.lookup_and_delete(u32(2)), o.lookup_and_delete(u32(2)),
               o.lookup_and_delete(u32(1), 1), o.update(u32(2), v, 0)]
        if map_type != LRU:  # a full LRU map evicts instead (see test_maps_lru.py)
            out += [o.update(u32(3), v, 0), o.update(u32(3), v, 1), o.update(u32(3), v, 2)]
        # Linux's LRU may already have evicted key 1 here (its free nodes sit on per-CPU lists): compare key 2
        keys = o.keys()
        out += [sorted(keys) if map_type != LRU else u32(2) in keys, o.freeze(), o.update(u32(2), v),
                o.delete(u32(2)), o.lookup_and_delete(u32(2)), o.lookup(u32(2)), o.freeze()]
        return out
    kernels.compare(scenario)


def test_get_next_key_with_deleted_key(kernels: Any) -> None:
    """A key deleted during iteration: GET_NEXT_KEY on it gives the first key again, on both kernels."""
    def scenario(s: Side) -> list[Any]:
        o = Ops(s, s.fd(create(s, HASH, 4, 4, 16)), 4, 4)
        for i in range(6):
            o.update(u32(i), u32(i))
        first = o.next_key(None)
        second = o.next_key(first)
        o.delete(second)
        walked: list[bytes] = []
        k = first
        while isinstance(k, bytes) and len(walked) < 20:
            walked.append(k)
            k = o.next_key(k)
        return [o.next_key(second) == first, o.next_key(u32(100)) == first, len(set(walked)), second in walked,
                k, sorted(o.keys()) == sorted(walked)]
    kernels.compare(scenario)


def test_queue_stack_ops(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        out: list[Any] = []
        for t in (Q, S):
            o = Ops(s, s.fd(create(s, t, 0, 4, 2)), 0, 4)
            out += [o.update(None, u32(1)), o.update(None, u32(2)), o.update(None, u32(3)),
                    o.update(None, u32(3), 2), o.update(None, u32(3), 1), o.update(None, u32(3), 4),
                    o.update(u32(0), u32(3)), o.lookup(None), o.lookup(None, 1), o.lookup_and_delete(None, 4),
                    o.lookup_and_delete(None), o.lookup_and_delete(None), o.lookup_and_delete(None),
                    o.lookup(None), o.delete(None), o.next_key(None), o.update(None, u32(5)), o.freeze(),
                    o.update(None, u32(6)), o.lookup_and_delete(None), o.lookup(None)]
        return out
    kernels.compare(scenario)


def test_ringbuf_element_ops(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        o = Ops(s, s.fd(create(s, RB, 0, 0, 4096)), 0, 0)
        return [o.lookup(None), o.update(None, u32(1)), o.delete(None), o.next_key(None),
                o.lookup_and_delete(None), o.freeze(), o.freeze()]
    kernels.compare(scenario)


def test_fd_array_ops(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        prog_array = Ops(s, s.fd(create(s, PROG, 4, 4, 2)), 4, 4)
        perf_array = Ops(s, s.fd(create(s, PERF, 4, 4, 2)), 4, 4)
        a_map = s.fd(create(s, ARRAY, 4, 4, 1))
        out = []
        for o in (prog_array, perf_array):
            out += [o.lookup(u32(0)), o.update(u32(0), u32(a_map)), o.update(u32(0), u32(s.bad_fd())),
                    o.update(u32(0), u32(a_map), 1), o.update(u32(5), u32(a_map)), o.delete(u32(0)),
                    o.delete(u32(5)), o.next_key(None), o.next_key(u32(1)), o.lookup_and_delete(u32(0))]
        return out
    kernels.compare(scenario)


def test_map_in_map_ops(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        inner = s.fd(create(s, ARRAY, 4, 4, 1))
        wrong = s.fd(create(s, ARRAY, 4, 4, 2))
        hinner = s.fd(create(s, HASH, 4, 4, 1))
        out = [create(s, AOM, 4, 8, 2, inner_map_fd=inner).outcome, create(s, AOM, 4, 4, 0, inner_map_fd=inner).outcome,
               create(s, AOM, 4, 4, 2, inner_map_fd=s.bad_fd()).outcome,
               create(s, AOM, 4, 4, 2, inner_map_fd=s.fd(create(s, PROG, 4, 4, 1))).outcome,
               create(s, AOM, 4, 4, 2, MMAPABLE, inner_map_fd=inner).outcome]
        aom = Ops(s, s.fd(create(s, AOM, 4, 4, 2, inner_map_fd=inner)), 4, 4)
        out.append(create(s, AOM, 4, 4, 2, inner_map_fd=aom.fd).outcome)
        out += [aom.lookup(u32(0)), aom.update(u32(0), u32(inner)), isinstance(aom.lookup(u32(0)), bytes),
                aom.update(u32(1), u32(wrong)), aom.update(u32(1), u32(hinner)), aom.update(u32(1), u32(inner), 1),
                aom.update(u32(1), u32(inner), 2), aom.update(u32(5), u32(inner)), aom.update(u32(1), u32(aom.fd)),
                aom.delete(u32(0)), aom.delete(u32(0)), aom.next_key(None), aom.lookup_and_delete(u32(0))]
        hom = Ops(s, s.fd(create(s, HOM, 4, 4, 1, inner_map_fd=inner)), 4, 4)
        out += [hom.update(u32(3), u32(inner), 2), hom.update(u32(3), u32(inner), 1), hom.update(u32(3), u32(inner), 1),
                hom.update(u32(4), u32(inner)), hom.update(u32(4), u32(s.bad_fd()), 1), hom.next_key(None),
                isinstance(hom.lookup(u32(3)), bytes), hom.lookup_and_delete(u32(3)), hom.delete(u32(3)),
                hom.delete(u32(3))]
        return out
    kernels.compare(scenario)


def test_bloom_filter_ops(kernels: Any) -> None:
    if not _bloom_lookup_via_bpf():
        pytest.skip("the sim's map_lookup_elem does not yet pass the value buffer to bloom filters")

    def scenario(s: Side) -> list[Any]:
        o = Ops(s, s.fd(create(s, BLOOM, 0, 4, 100, map_extra=3)), 0, 4)
        return [o.update(None, u32(1)), o.update(None, u32(1), 1), o.lookup(None, value_in=u32(1)),
                o.lookup(None, value_in=u32(2)), o.delete(None), o.next_key(None), o.lookup_and_delete(None)]
    kernels.compare(scenario)


def test_errno_names_are_linux_ones() -> None:
    assert errno.errorcode[95] == "EOPNOTSUPP" or errno.errorcode[95] == "ENOTSUP"


@pytest.mark.parametrize("map_type", [HASH, PHASH, LRU, LRUP], ids=["hash", "percpu-hash", "lru", "lru-percpu"])
@pytest.mark.parametrize("key_size", [3, 4, 8, 13])
def test_zero_seed_iteration_order_is_linux(kernels: Any, map_type: int, key_size: int) -> None:
    """BPF_F_ZERO_SEED: jhash buckets, newest first, replaced elements to the head: the same walk as Linux."""
    def scenario(s: Side) -> list[Any]:
        vs = 8 * ncpus(s) if map_type in (PHASH, LRUP) else 8
        o = Ops(s, s.fd(create(s, map_type, key_size, 8, 64, ZERO_SEED)), key_size, vs)
        keys = [bytes((i * 37 + j * 11) & 0xFF for j in range(key_size)) for i in range(40)]
        walks = []
        for k in keys:
            o.update(k, b"a" * vs)
        walks.append(list_keys(o))
        for k in keys[::3]:
            o.update(k, b"b" * vs, 2)  # replaced: to the head of its bucket (not for per-CPU maps)
        walks.append(list_keys(o))
        for k in keys[::4]:
            o.delete(k)
        for k in keys[::8]:
            o.update(k, b"c" * vs)
        walks.append(list_keys(o))
        return walks
    kernels.compare(scenario)


def list_keys(o: Ops) -> list[bytes]:
    out: list[bytes] = []
    k: bytes | None = None
    while len(out) < 1000:
        nk = o.next_key(k)
        if not isinstance(nk, bytes):
            return out
        out.append(nk)
        k = nk
    return out


def test_zero_seed_bloom_filter_answers_as_linux(kernels: Any) -> None:
    """With hash_seed 0 the bits are Linux's: every peek agrees, false positives included."""
    def scenario(s: Side) -> list[Any]:
        out = []
        for max_entries, nr_hashes, vs in ((4, 3, 4), (20, 1, 3), (100, 5, 8), (3, 2, 6)):
            fd = s.fd(create(s, BLOOM, 0, vs, max_entries, ZERO_SEED, map_extra=nr_hashes))
            o = Ops(s, fd, 0, vs)
            for i in range(max_entries):
                o.update(None, bytes((i * 7 + j) & 0xFF for j in range(vs)))
            probes = [bytes((i * 13 + j * 5) & 0xFF for j in range(vs)) for i in range(300)]
            if s.is_sim and not _bloom_lookup_via_bpf():
                m = s.k.fds.get(fd)  # the sim's bpf() does not pass the value buffer yet: ask the map itself
                out.append([_outcome(m.sys_lookup, None, 0, p) for p in probes])
            else:
                out.append([o.lookup(None, value_in=p) == p or o.lookup(None, value_in=p) for p in probes])
        return out
    result = kernels.compare(scenario)
    assert any(r is True for r in result[1]) and any(r == "ENOENT" for r in result[1])


def _bloom_lookup_via_bpf() -> bool:
    """Whether the sim's BPF_MAP_LOOKUP_ELEM passes the value buffer to a bloom filter (a functional probe)."""
    from tinyaya.sim_kernel import SimKernel
    from tinyaya.sys.bpf import bpf_map_create, bpf_map_lookup_elem, bpf_map_update_elem

    k = SimKernel()
    try:
        fd = bpf_map_create(k, BLOOM, 0, 4, 4, map_flags=ZERO_SEED)
        bpf_map_update_elem(k, fd, None, b"abcd")
        try:
            bpf_map_lookup_elem(k, fd, None, 4, value_in=b"abcd")
        except OSError:
            return False
        return True
    finally:
        k.shutdown()


def _outcome(fn: Any, *a: Any) -> Any:
    try:
        fn(*a)
    except OSError as e:
        return errno.errorcode.get(e.errno or 0)
    return True


def test_zero_seed_hash_of_maps_order(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        inner = s.fd(create(s, ARRAY, 4, 4, 1))
        o = Ops(s, s.fd(create(s, HOM, 4, 4, 64, ZERO_SEED, inner_map_fd=inner)), 4, 4)
        keys = [u32(i * 7919) for i in range(30)]
        out = [[o.update(k, u32(inner)) for k in keys]]
        out.append(list_keys(o))
        for k in keys[::3]:
            o.update(k, u32(inner), 2)  # replaced in place: the order stays
        out.append(list_keys(o))
        for k in keys[::4]:
            o.delete(k)
        out.append(list_keys(o))
        return out
    kernels.compare(scenario)
