"""Random sequences of map operations, run on SimKernel and on Linux, must agree (hypothesis).

Iteration order is the one thing Linux leaves to its hash seed, so GET_NEXT_KEY
is compared by outcome and the contents as a set, except for BPF_F_ZERO_SEED maps,
whose order (jhash buckets) is compared key by key. LRU maps get more room than
keys, so no eviction (whose victim Linux does not pin down) happens; LRU
pressure has its own test in test_maps_lru.py.
"""
from __future__ import annotations

import os
from typing import Any

from diffharness import Side
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_maps_types import ARRAY, HASH, LRU, NO_PREALLOC, PARR, PHASH, ZERO_SEED, Ops, create, list_keys, ncpus

FUZZ_EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
KEYS = st.integers(0, 5)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("update"), KEYS, st.integers(0, 255), st.sampled_from([0, 1, 2, 3, 4, 8])),
        st.tuples(st.just("lookup"), KEYS, st.just(0), st.sampled_from([0, 0, 0, 1])),
        st.tuples(st.just("delete"), KEYS, st.just(0), st.just(0)),
        st.tuples(st.just("lookup_and_delete"), KEYS, st.just(0), st.sampled_from([0, 0, 1])),
        st.tuples(st.just("next_key"), st.one_of(st.none(), KEYS), st.just(0), st.just(0)),
        st.tuples(st.just("freeze"), st.just(0), st.just(0), st.just(0)),
    ),
    max_size=30,
)
TYPES = st.sampled_from([(HASH, 0, 4), (HASH, NO_PREALLOC, 4), (PHASH, 0, 4), (LRU, 0, 64), (ARRAY, 0, 4),
                         (PARR, 0, 4), (HASH, ZERO_SEED, 4), (PHASH, ZERO_SEED | NO_PREALLOC, 4),
                         (LRU, ZERO_SEED, 64)])


def run(s: Side, mtype: tuple[int, int, int], ops: list[tuple[Any, ...]]) -> list[Any]:
    t, flags, max_entries = mtype
    percpu = t in (PHASH, PARR)
    vs = 8 * ncpus(s) if percpu else 8
    o = Ops(s, s.fd(create(s, t, 4, 8, max_entries, flags)), 4, vs)
    out: list[Any] = []
    for op, key, val, fl in ops:
        k = None if key is None else key.to_bytes(4, "little")
        if op == "update":
            out.append(o.update(k, bytes([val]) * vs, fl))
        elif op == "lookup":
            out.append(o.lookup(k, fl))
        elif op == "delete":
            out.append(o.delete(k))
        elif op == "lookup_and_delete":
            out.append(o.lookup_and_delete(k, fl))
        elif op == "next_key":
            if flags & ZERO_SEED or t in (ARRAY, PARR):  # deterministic order: compare the key itself
                out.append(o.next_key(k))
                continue
            if k is not None and isinstance(o.lookup(k), bytes):
                out.append("order")  # the key after a present key depends on Linux's hash seed
                continue
            r = o.next_key(k)
            out.append(r if t in (ARRAY, PARR) or not isinstance(r, bytes) else "ok")
        else:
            out.append(o.freeze())
    contents = {k: o.lookup(k) for k in o.keys()}
    out.append(sorted(contents.items()))
    if flags & ZERO_SEED:
        out.append(list_keys(o))
    return out


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mtype=TYPES, ops=OPS)
def test_random_sequences_agree(kernels: Any, mtype: tuple[int, int, int], ops: list[tuple[Any, ...]]) -> None:
    kernels.compare(lambda s: run(s, mtype, ops))


QOPS = st.lists(st.one_of(
    st.tuples(st.just("push"), st.integers(0, 255), st.sampled_from([0, 0, 2, 1, 4])),
    st.tuples(st.just("peek"), st.just(0), st.sampled_from([0, 0, 1])),
    st.tuples(st.just("pop"), st.just(0), st.sampled_from([0, 0, 4])),
    st.tuples(st.just("freeze"), st.just(0), st.just(0)),
), max_size=40)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(map_type=st.sampled_from([22, 23]), max_entries=st.integers(1, 4), ops=QOPS)
def test_random_queue_stack_sequences_agree(kernels: Any, map_type: int, max_entries: int,
                                            ops: list[tuple[Any, ...]]) -> None:
    def scenario(s: Side) -> list[Any]:
        o = Ops(s, s.fd(create(s, map_type, 0, 6, max_entries)), 0, 6)
        out: list[Any] = []
        for op, val, fl in ops:
            if op == "push":
                out.append(o.update(None, bytes([val]) * 6, fl))
            elif op == "peek":
                out.append(o.lookup(None, fl))
            elif op == "pop":
                out.append(o.lookup_and_delete(None, fl))
            else:
                out.append(o.freeze())
        return out
    kernels.compare(scenario)


LOPS = st.lists(st.tuples(st.sampled_from(["update", "update", "update", "delete", "lookup_and_delete", "lookup"]),
                          st.integers(0, 9), st.sampled_from([0, 0, 1, 2])), max_size=60)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(map_type=st.sampled_from([LRU, 10]), flags=st.sampled_from([0, 2, ZERO_SEED, ZERO_SEED | 2]),
       max_entries=st.sampled_from([2, 3, 4, 8]),
       ops=LOPS)
def test_random_lru_sequences_agree_exactly(kernels: Any, map_type: int, flags: int, max_entries: int,
                                            ops: list[tuple[Any, ...]]) -> None:
    """LRU maps with every call on CPU 0: outcomes and surviving keys equal Linux's, op by op."""
    def scenario(s: Side) -> list[Any]:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {0})
        try:
            vs = 8 * ncpus(s) if map_type == 10 else 8
            o = Ops(s, s.fd(create(s, map_type, 4, 8, max_entries, flags)), 4, vs)
            out: list[Any] = []
            for op, key, fl in ops:
                k = key.to_bytes(4, "little")
                if op == "update":
                    out.append(o.update(k, bytes([key]) * vs, fl))
                elif op == "delete":
                    out.append(o.delete(k))
                elif op == "lookup_and_delete":
                    out.append(o.lookup_and_delete(k))
                else:
                    out.append(o.lookup(k))
                out.append(list_keys(o) if flags & ZERO_SEED else sorted(o.keys()))
            return out
        finally:
            os.sched_setaffinity(0, before)
    kernels.compare(scenario)
