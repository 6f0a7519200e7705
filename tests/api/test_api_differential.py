"""The same Aya-shaped map operations on SimKernel and on the real kernel give the same results and errors."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.kernel import possible_cpus
from tinyaya.linux import LinuxKernel, linux_bpf_available
from tinyaya.maps import Array, HashMap, MapData, MapError, PerCpuArray, PerCpuHashMap, Queue, Stack, u32
from tinyaya.uapi.bpf import BpfMapType as T

from .conftest import sim_kernel

pytestmark = pytest.mark.linux

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))

SPECS: dict[str, tuple[int, int, int, int, Any]] = {
    "hash": (T.BPF_MAP_TYPE_HASH, 4, 4, 4, HashMap),
    "array": (T.BPF_MAP_TYPE_ARRAY, 4, 4, 4, Array),
    "percpu_array": (T.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 3, PerCpuArray),
    "percpu_hash": (T.BPF_MAP_TYPE_PERCPU_HASH, 4, 4, 3, PerCpuHashMap),
    "queue": (T.BPF_MAP_TYPE_QUEUE, 0, 4, 3, Queue),
    "stack": (T.BPF_MAP_TYPE_STACK, 0, 4, 3, Stack),
}


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LinuxKernel]]:
    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    linux = LinuxKernel()
    sim = sim_kernel(Path(tmp_path_factory.mktemp("bpffs")), ncpus=len(possible_cpus(linux)))
    yield sim, linux
    sim.shutdown()


def outcome(fn: Any) -> object:
    try:
        r = fn()
    except MapError as e:
        return (type(e).__name__, getattr(e, "errno", None))
    if isinstance(r, Iterator):
        r = sorted(r)
    return r if not hasattr(r, "__len__") or isinstance(r, int) else list(r)


ops = st.lists(st.tuples(st.sampled_from(["set", "get", "remove", "keys", "push", "pop", "peek"]),
                         st.integers(0, 5), st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2])),
               max_size=25)


def apply(m: Any, op: str, key: int, value: int, flags: int, ncpus: int) -> object:
    per_cpu = isinstance(m, PerCpuArray | PerCpuHashMap)
    val: Any = [value ^ c for c in range(ncpus)] if per_cpu else value
    if isinstance(m, Queue | Stack):
        table = {"push": lambda: m.push(value, flags & 2), "pop": m.pop, "peek": m.peek}
        return outcome(table[op]) if op in table else None
    if isinstance(m, Array | PerCpuArray):
        table = {"set": lambda: m.set(key, val, flags), "get": lambda: m.get(key)}
        return outcome(table[op]) if op in table else None
    table = {"set": lambda: m.insert(key, val, flags), "get": lambda: m.get(key), "remove": lambda: m.remove(key),
             "keys": lambda: m.keys()}
    return outcome(table[op]) if op in table else None


@pytest.mark.parametrize("kind", sorted(SPECS))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=ops)
def test_same_results_on_both_kernels(kernels: tuple[Any, LinuxKernel], kind: str, seq: list[Any]) -> None:
    map_type, ks, vs, n, cls = SPECS[kind]
    results = []
    for k in kernels:
        md = MapData.create(k, map_type, ks, vs, n)
        try:
            if cls in (Queue, Stack, Array, PerCpuArray):
                m = cls(md, value=u32)
            else:
                m = cls(md, key=u32, value=u32)
            ncpus = md.ncpus()
            results.append([apply(m, *step, ncpus) for step in seq])
        finally:
            md.close()
    assert results[0] == results[1]
