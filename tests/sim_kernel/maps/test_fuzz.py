"""Random operations on every map type: only OSError with an errno, invariants hold, release gives back all."""
from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maps_helpers import attr

from tinyaya.sim_kernel.maps import create_map

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
SPECS = st.sampled_from([
    (1, 4, 8, 4, 0), (1, 3, 5, 3, 1), (5, 4, 4, 3, 0), (9, 4, 8, 3, 0), (10, 4, 4, 2, 2), (2, 4, 6, 3, 0),
    (6, 4, 4, 2, 0), (22, 0, 4, 3, 0), (23, 0, 12, 2, 0), (30, 0, 4, 8, 0), (2, 4, 8, 2, 1024),
])
OPS = st.lists(st.tuples(st.sampled_from(["su", "sl", "sd", "sn", "sld", "pl", "pu", "pd", "push", "pop", "peek",
                                          "each", "freeze"]),
                         st.binary(min_size=0, max_size=16), st.integers(0, 9), st.integers(0, 3)), max_size=40)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=SPECS, ops=OPS)
def test_random_ops_only_fail_with_errnos(kernel: Any, spec: tuple[int, ...], ops: list[tuple[Any, ...]]) -> None:
    used = kernel.memlock.used
    regions = len(kernel.aspace.regions)
    t, ks, vs, me, flags = spec
    m = create_map(kernel, attr(t, ks, vs, me, flags))
    full_vs = (vs + 7) // 8 * 8 * kernel.ncpus if t in (5, 6, 10) else vs
    for op, data, fl, cpu in ops:
        key = (data * 8)[:ks] if ks else None
        value = (data * 64)[:full_vs]
        try:
            if op == "su":
                m.sys_update(key, value, fl)
            elif op == "sl":
                out = m.sys_lookup(key, fl, value)
                assert len(out) == full_vs
            elif op == "sd":
                m.sys_delete(key)
            elif op == "sn":
                nk = m.sys_get_next_key(key)
                assert len(nk) == ks
            elif op == "sld":
                m.sys_lookup_and_delete(key, fl)
            elif op == "pl":
                a = m.prog_lookup(key or b"", cpu % kernel.ncpus)
                if a:
                    kernel.aspace.read(a, vs)
            elif op == "pu":
                assert m.prog_update(key or b"", value, fl, cpu % kernel.ncpus) <= 0
            elif op == "pd":
                assert m.prog_delete(key or b"") <= 0
            elif op == "push":
                assert m.prog_push(value, fl) <= 0
            elif op == "pop":
                m.prog_pop(0)
            elif op == "peek":
                m.prog_peek(0, value)
            elif op == "each":
                for ka, va in m.for_each(cpu % kernel.ncpus):
                    kernel.aspace.read(ka, ks or 4)
                    kernel.aspace.read(va, vs)
            else:
                m.freeze()
        except OSError as e:
            assert e.errno
        if hasattr(m, "__len__"):
            assert len(m) <= m.max_entries
    m.release()
    assert kernel.memlock.used == used and len(kernel.aspace.regions) == regions
