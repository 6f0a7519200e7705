"""Helpers that work on maps, perf events, ring buffers, and the callback helpers (bpf_loop, for_each).

A map pointer (``CONST_PTR_TO_MAP``) is the base of the map's ``RegionKind.MAP`` region,
whose ``owner`` is the ``BpfMap`` (docs/architecture.md, "Map pointers"). Helpers call
the map's program-side methods; a ring-buffer record pointer is found the same way,
through the region of the record (owner: the ring-buffer map).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...uapi.bpf import BPF_F_CTXLEN_MASK, BPF_F_CURRENT_CPU, BPF_F_INDEX_MASK
from ..errors import E2BIG, EINVAL, ENOENT
from .fault import VmTrap
from .helpers import _read, _write  # one fast path for helper memory access

if TYPE_CHECKING:
    from .interp import RunEnv

BPF_MAX_LOOPS = 8 * 1024 * 1024
_PERF_OUTPUT_BAD_FLAGS = ~(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK)


def _map(env: RunEnv, addr: int) -> Any:
    region = env.vm.aspace.regions.get(addr >> 32)
    if region is None or region.owner is None:
        raise VmTrap("helper argument is not a map pointer", addr)
    return region.owner


def bpf_map_lookup_elem(env: RunEnv, map_addr: int, key: int, *_: int) -> int:
    """void *bpf_map_lookup_elem(struct bpf_map *map, const void *key): the value's address or NULL.

    The hot path of every map-using program: ``_map`` and ``_read`` are inlined here (same checks, same
    faults), as in the update and delete helpers below."""
    regions = env.vm.aspace.regions
    region = regions.get(map_addr >> 32)
    m = None if region is None else region.owner
    if m is None:
        raise VmTrap("helper argument is not a map pointer", map_addr)
    n = m.key_size
    g = regions.get(key >> 32)
    o = key & 0xFFFF_FFFF
    if g is None or o + n > g.size or key < 0:
        kb = env.vm.aspace.read(key, n) if n else b""
    else:
        kb = g.buf[o:o + n].tobytes()
    r = m.prog_lookup(kb, env.cpu)
    return r if type(r) is int else int(r or 0)


def bpf_map_update_elem(env: RunEnv, map_addr: int, key: int, value: int, flags: int, *_: int) -> int:
    """long bpf_map_update_elem(struct bpf_map *map, const void *key, const void *value, u64 flags)."""
    regions = env.vm.aspace.regions
    region = regions.get(map_addr >> 32)
    m = None if region is None else region.owner
    if m is None:
        raise VmTrap("helper argument is not a map pointer", map_addr)
    n = m.key_size
    g = regions.get(key >> 32)
    o = key & 0xFFFF_FFFF
    if g is None or o + n > g.size or key < 0:
        kb = env.vm.aspace.read(key, n) if n else b""
    else:
        kb = g.buf[o:o + n].tobytes()
    n = m.value_size
    if value >> 32 != key >> 32:  # (the key and the value are most often both on the stack)
        g = regions.get(value >> 32)
    o = value & 0xFFFF_FFFF
    if g is None or o + n > g.size or value < 0:
        vb = env.vm.aspace.read(value, n) if n else b""
    else:
        vb = g.buf[o:o + n].tobytes()
    r = m.prog_update(kb, vb, flags, env.cpu)
    return r if type(r) is int else int(r)


def bpf_map_delete_elem(env: RunEnv, map_addr: int, key: int, *_: int) -> int:
    """long bpf_map_delete_elem(struct bpf_map *map, const void *key)."""
    m = _map(env, map_addr)
    return int(m.prog_delete(_read(env, key, m.key_size)))


def bpf_map_lookup_percpu_elem(env: RunEnv, map_addr: int, key: int, cpu: int, *_: int) -> int:
    """void *bpf_map_lookup_percpu_elem(struct bpf_map *map, const void *key, u32 cpu): NULL for a bad cpu."""
    m = _map(env, map_addr)
    cpu &= 0xFFFF_FFFF
    if cpu >= getattr(env.vm.kernel, "ncpus", 1):
        return 0
    return int(m.prog_lookup_percpu(_read(env, key, m.key_size), cpu) or 0)


def bpf_map_push_elem(env: RunEnv, map_addr: int, value: int, flags: int, *_: int) -> int:
    """long bpf_map_push_elem(struct bpf_map *map, const void *value, u64 flags): BPF_EXIST overwrites
    the oldest element of a full queue/stack."""
    m = _map(env, map_addr)
    return int(m.prog_push(_read(env, value, m.value_size), flags))


def _pop_like(env: RunEnv, map_addr: int, value: int, method: str) -> int:
    m = _map(env, map_addr)
    if method == "prog_peek":
        # a bloom filter's peek tests the value it is given; queues and stacks fill it in
        res = m.prog_peek(env.cpu, _read(env, value, m.value_size))
    else:
        res = m.prog_pop(env.cpu)
    if isinstance(res, int):
        return res if res < 0 else 0
    if res is None:
        return -ENOENT
    _write(env, value, bytes(res))
    return 0


def bpf_map_pop_elem(env: RunEnv, map_addr: int, value: int, *_: int) -> int:
    """long bpf_map_pop_elem(struct bpf_map *map, void *value): -ENOENT when empty."""
    return _pop_like(env, map_addr, value, "prog_pop")


def bpf_map_peek_elem(env: RunEnv, map_addr: int, value: int, *_: int) -> int:
    """long bpf_map_peek_elem(struct bpf_map *map, void *value): -ENOENT when empty (for a bloom
    filter: when the value is certainly absent)."""
    return _pop_like(env, map_addr, value, "prog_peek")


# -- perf events -----------------------------------------------------------------------------------------------
def bpf_perf_event_output(env: RunEnv, ctx: int, map_addr: int, flags: int, data: int, size: int) -> int:
    """long bpf_perf_event_output(void *ctx, struct bpf_map *map, u64 flags, void *data, u64 size).

    ``flags & BPF_F_INDEX_MASK`` is the array index (BPF_F_CURRENT_CPU: this CPU); -E2BIG past the
    array, -ENOENT for an empty slot, -EOPNOTSUPP if the event is on another CPU (from the event).
    ``BPF_F_CTXLEN_MASK`` appends that many packet bytes, for skb programs only (bpf_skb_event_output).
    """
    if flags & _PERF_OUTPUT_BAD_FLAGS:
        return -EINVAL
    # the event path of every aya-log call: ``_map`` and ``_read`` inlined (same checks, same faults)
    regions = env.vm.aspace.regions
    region = regions.get(map_addr >> 32)
    m = None if region is None else region.owner
    if m is None:
        raise VmTrap("helper argument is not a map pointer", map_addr)
    index = flags & BPF_F_INDEX_MASK
    cpu = env.cpu
    if index == BPF_F_CURRENT_CPU:
        index = cpu
    if index >= getattr(m, "max_entries", 0):
        return -E2BIG
    n = size & 0xFFFF_FFFF_FFFF_FFFF
    g = regions.get(data >> 32)
    o = data & 0xFFFF_FFFF
    if g is None or o + n > g.size or data < 0:
        src: Any = env.vm.aspace.read(data, n) if n else b""  # (faults here, outside every region)
        o = 0
    else:
        src = g.buf  # the sample's bytes are src[o:o + n]: sliced only once the ring has room for them
    if flags & BPF_F_CTXLEN_MASK:
        pkt = env.vm.skb_bytes(ctx)
        if pkt is None:
            return -EINVAL
        ctxlen = (flags & BPF_F_CTXLEN_MASK) >> 32
        if ctxlen > len(pkt):
            return -14  # EFAULT: bpf_skb_copy past skb->len
        src = bytes(src[o:o + n]) + bytes(pkt[:ctxlen])
        o = 0
        n = len(src)
    event = m.perf_event_at(index)
    if event is None:
        return -ENOENT
    ring = event.raw_ring
    if ring is not None and event.cpu == cpu:  # what ``output`` does for a RAW-only sample, directly
        return 0 if ring.sample(src, o, n) else -28  # ENOSPC
    return int(event.output(cpu, bytes(src[o:o + n])))


# -- ring buffers -----------------------------------------------------------------------------------------------
def bpf_ringbuf_output(env: RunEnv, rb: int, data: int, size: int, flags: int, *_: int) -> int:
    """long bpf_ringbuf_output(void *ringbuf, void *data, u64 size, u64 flags): 0 or -EAGAIN/-EINVAL."""
    m = _map(env, rb)
    return int(m.output(_read(env, data, size), flags))


def bpf_ringbuf_reserve(env: RunEnv, rb: int, size: int, flags: int, *_: int) -> int:
    """void *bpf_ringbuf_reserve(void *ringbuf, u64 size, u64 flags): the record's address or NULL."""
    m = _map(env, rb)
    return int(m.reserve(size, flags) or 0)


def _record_owner(env: RunEnv, data: int) -> Any:
    region = env.vm.aspace.regions.get(data >> 32)
    if region is None or region.owner is None:
        raise VmTrap("ring buffer record pointer expected", data)
    return region.owner


def bpf_ringbuf_submit(env: RunEnv, data: int, flags: int, *_: int) -> int:
    """void bpf_ringbuf_submit(void *data, u64 flags)."""
    _record_owner(env, data).submit(data, flags)
    return 0


def bpf_ringbuf_discard(env: RunEnv, data: int, flags: int, *_: int) -> int:
    """void bpf_ringbuf_discard(void *data, u64 flags)."""
    _record_owner(env, data).discard(data, flags)
    return 0


def bpf_ringbuf_query(env: RunEnv, rb: int, flags: int, *_: int) -> int:
    """u64 bpf_ringbuf_query(void *ringbuf, u64 flags): BPF_RB_AVAIL_DATA, _RING_SIZE, _CONS_POS, _PROD_POS."""
    return int(_map(env, rb).query(flags))


# -- callbacks -----------------------------------------------------------------------------------------------------
def bpf_loop(env: RunEnv, nr_loops: int, callback_fn: int, callback_ctx: int, flags: int, *_: int) -> int:
    """long bpf_loop(u32 nr_loops, void *callback_fn, void *callback_ctx, u64 flags): calls
    ``callback_fn(index, callback_ctx)`` until it returns 1; the number of iterations done."""
    if flags:
        return -EINVAL
    nr_loops &= 0xFFFF_FFFF
    if nr_loops > BPF_MAX_LOOPS:
        return -E2BIG
    cb = env.vm.callback(env, callback_fn)
    for i in range(nr_loops):
        if cb(i, callback_ctx):
            return i + 1
    return nr_loops


def bpf_for_each_map_elem(env: RunEnv, map_addr: int, callback_fn: int, callback_ctx: int, flags: int,
                          *_: int) -> int:
    """long bpf_for_each_map_elem(struct bpf_map *map, void *callback_fn, void *callback_ctx, u64 flags):
    ``callback_fn(map, key, value, ctx)`` per element until it returns 1; the number of elements visited."""
    if flags:
        return -EINVAL
    m = _map(env, map_addr)
    from .contexts import scratch

    key_buf = scratch(env.vm, env.cpu, max(8, m.key_size))
    n = 0
    cb = env.vm.callback(env, callback_fn)
    for key, value_addr in m.for_each(env.cpu):
        if isinstance(key, int):
            key_addr = key
        else:
            key_buf.buf[:len(key)] = key
            key_addr = key_buf.base
        n += 1
        if cb(map_addr, key_addr, value_addr, callback_ctx, 0):
            break
    return n
