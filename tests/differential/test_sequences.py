"""Random sequences of bpf() commands, run on SimKernel and on Linux, must be observed identically.

Hypothesis draws a sequence of element, batch, freeze, reopen and info
commands (with valid and invalid flags, keys and pointers) over an ARRAY, a
HASH, a PERCPU_ARRAY and a QUEUE; each step's errno and output bytes are
compared, and so are the contents of every map at the end. Hash iteration
order is the kernel's own business, so for hash maps only what is
order-independent is compared. ``TINYAYA_FUZZ_EXAMPLES`` sets the number of
sequences.
"""
from __future__ import annotations

import struct
from typing import Any

import pytest
from diffharness import FUZZ_EXAMPLES, Side, batch, elem, get_id, info, map_create, u32, u64
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.uapi.bpf import BpfCmd as C
from tinyaya.uapi.bpf import BpfMapType as T

maps_mod = pytest.importorskip("tinyaya.sim_kernel.maps")
if not hasattr(maps_mod, "create_map"):
    pytest.skip("sim maps (B2) not there yet", allow_module_level=True)

BAD_PTR = 0x10
ZERO_SEED = 1 << 6
MAPS = [  # (type, key_size, value_size, max_entries, map_flags)
    (T.BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0),
    (T.BPF_MAP_TYPE_HASH, 4, 8, 4, 0),
    (T.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 3, 0),
    (T.BPF_MAP_TYPE_QUEUE, 0, 8, 3, 0),
    (T.BPF_MAP_TYPE_HASH, 4, 8, 6, ZERO_SEED),  # Linux's bucket layout: iteration order must agree too
]
HASH = 1  # the hash map with a random seed: its iteration order is the kernel's own business
FLAGS = st.sampled_from([0, 1, 2, 4, 3, 8, 1 << 33])
KEYS = st.integers(0, 5)

op = st.one_of(
    st.tuples(st.just("update"), st.integers(0, 4), KEYS, st.integers(0, 2**64 - 1), FLAGS),
    st.tuples(st.just("lookup"), st.integers(0, 4), KEYS, st.sampled_from([0, 4, 1])),
    st.tuples(st.just("delete"), st.integers(0, 4), KEYS),
    st.tuples(st.just("lookup_and_delete"), st.integers(0, 4), KEYS, st.sampled_from([0, 4])),
    st.tuples(st.just("next_key"), st.integers(0, 4), st.one_of(st.none(), KEYS)),
    st.tuples(st.just("freeze"), st.integers(0, 4)),
    st.tuples(st.just("reopen"), st.integers(0, 4), st.sampled_from([0, 0x8, 0x10])),
    st.tuples(st.just("lookup_batch"), st.sampled_from([0, 2, 4]), st.integers(0, 5)),
    st.tuples(st.just("update_batch"), st.integers(0, 4), st.lists(st.tuples(KEYS, st.integers(0, 2**32)),
                                                                  max_size=4)),
    st.tuples(st.just("delete_batch"), st.integers(0, 4), st.lists(KEYS, max_size=4)),
    st.tuples(st.just("bad_pointer"), st.integers(0, 4), st.sampled_from(["key", "value"])),
    st.tuples(st.just("info"), st.integers(0, 4)),
)


def vsize(s: Side, i: int) -> int:
    t, _, vs, _, _ = MAPS[i]
    return ((vs + 7) & ~7) * 2 if t == T.BPF_MAP_TYPE_PERCPU_ARRAY else vs


def value_bytes(s: Side, i: int, v: int) -> bytes:
    n = vsize(s, i)
    return (u64(v) * (n // 8 + 1))[:n]


def key_ptr(s: Side, i: int, key: int) -> int:
    return s.buf(u32(key)) if MAPS[i][1] else 0


def step(s: Side, fds: list[int], o: tuple[Any, ...]) -> Any:
    kind, i = o[0], o[1]
    fd = fds[i]
    if kind == "update":
        _, _, key, v, flags = o
        return s.bpf(C.BPF_MAP_UPDATE_ELEM, elem(fd, key_ptr(s, i, key), s.buf(value_bytes(s, i, v)), flags)).outcome
    if kind in ("lookup", "lookup_and_delete"):
        _, _, key, flags = o
        out = s.buf(vsize(s, i))
        cmd = C.BPF_MAP_LOOKUP_ELEM if kind == "lookup" else C.BPF_MAP_LOOKUP_AND_DELETE_ELEM
        r = s.bpf(cmd, elem(fd, key_ptr(s, i, key), out, flags))
        return r.outcome, s.read(out, vsize(s, i)) if r.ok else None
    if kind == "delete":
        return s.bpf(C.BPF_MAP_DELETE_ELEM, elem(fd, key_ptr(s, i, o[2]))).outcome
    if kind == "next_key":
        nxt = s.buf(4)
        r = s.bpf(C.BPF_MAP_GET_NEXT_KEY, elem(fd, 0 if o[2] is None else key_ptr(s, i, o[2]), nxt))
        if i == HASH:
            return r.outcome  # which key comes next is the hash table's order
        return r.outcome, s.read(nxt, 4) if r.ok else None
    if kind == "freeze":
        return s.bpf(C.BPF_MAP_FREEZE, elem(fd)).outcome
    if kind == "reopen":
        ib = s.buf(104)
        s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(fd, 104, ib))
        map_id = struct.unpack_from("<I", s.read(ib + 4, 4))[0]
        r = s.bpf(C.BPF_MAP_GET_FD_BY_ID, get_id(map_id, o[2]))
        if r.ok:
            s.close(fd)
            fds[i] = r.ret
        return r.outcome
    if kind == "lookup_batch":
        count = o[2]
        keys, vals = s.buf(4 * 8), s.buf(vsize(s, i) * 8)
        r = s.bpf(C.BPF_MAP_LOOKUP_BATCH, batch(fd, keys, vals, count, out_batch=s.buf(4)))
        n = r.u32(32)
        if i == HASH:
            got = sorted((s.read(keys + 4 * j, 4), s.read(vals + 8 * j, 8)) for j in range(n))
            return r.outcome == "EPERM", got if r.outcome in ("ENOENT",) else None
        return r.outcome, n, s.read(keys, 4 * n), s.read(vals, vsize(s, i) * n)
    if kind == "update_batch":
        pairs = o[2]
        keys = b"".join(u32(k) for k, _ in pairs)
        vals = b"".join(value_bytes(s, i, v) for _, v in pairs)
        r = s.bpf(C.BPF_MAP_UPDATE_BATCH, batch(fd, s.buf(keys), s.buf(vals), len(pairs)))
        return r.outcome, r.u32(32)
    if kind == "delete_batch":
        keys = b"".join(u32(k) for k in o[2])
        r = s.bpf(C.BPF_MAP_DELETE_BATCH, batch(fd, s.buf(keys), 0, len(o[2])))
        return r.outcome, r.u32(32)
    if kind == "bad_pointer":
        out = s.buf(vsize(s, i))
        a = elem(fd, BAD_PTR if o[2] == "key" else key_ptr(s, i, 1), BAD_PTR if o[2] == "value" else out)
        return [s.bpf(c, a).outcome for c in (C.BPF_MAP_LOOKUP_ELEM, C.BPF_MAP_UPDATE_ELEM)]
    if kind == "info":
        ib = s.buf(104)
        r = s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(fd, 104, ib))
        raw = s.read(ib, 104)
        return r.outcome, raw[:4], raw[8:40]
    raise AssertionError(kind)


def contents(s: Side, fds: list[int]) -> list[Any]:
    out: list[Any] = []
    for i, (t, ks, _, max_entries, _) in enumerate(MAPS):
        fd = fds[i]
        if t == T.BPF_MAP_TYPE_QUEUE:
            items = []
            for _ in range(max_entries + 1):
                v = s.buf(8)
                r = s.bpf(C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, elem(fd, 0, v))
                items.append((r.outcome, s.read(v, 8) if r.ok else None))
            out.append(items)
            continue
        keys: list[bytes] = []
        prev = 0
        for _ in range(max_entries + 2):
            nxt = s.buf(ks)
            if s.bpf(C.BPF_MAP_GET_NEXT_KEY, elem(fd, prev, nxt)).err:
                break
            keys.append(s.read(nxt, ks))
            prev = nxt
        items2 = []
        for k in keys:
            v = s.buf(vsize(s, i))
            r = s.bpf(C.BPF_MAP_LOOKUP_ELEM, elem(fd, s.buf(k), v))
            items2.append((k, r.outcome, s.read(v, vsize(s, i))))
        out.append(sorted(items2) if i == HASH else items2)
    return out


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=25))
def test_random_command_sequences(kernels, ops):
    def scenario(s: Side) -> list[Any]:
        fds = [s.fd(s.bpf(C.BPF_MAP_CREATE, map_create(t, ks, vs, me, fl))) for t, ks, vs, me, fl in MAPS]
        trace = [(o[0], step(s, fds, o)) for o in ops]
        return trace + [contents(s, fds)]

    kernels.compare(scenario)
