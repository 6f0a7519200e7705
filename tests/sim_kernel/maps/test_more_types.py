"""Unit tests of the map types beyond the core set (LPM trie, stack trace, device/socket/cgroup maps,
storages, USER_RINGBUF, ARENA) on the simulated kernel alone; tests/differential/test_maps_more_types.py
compares them with Linux."""
from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from maps_helpers import attr, err, u32

from tinyaya.sim_kernel.maps import MAP_TYPES
from tinyaya.uapi.bpf import BPF_MAP_TYPE_ARENA, BPF_MAP_TYPE_CGRP_STORAGE, BpfMapType

T = BpfMapType
NO_PREALLOC, MMAPABLE = 1, 0x400


def k4(plen: int, *octets: int) -> bytes:
    return struct.pack("<I4B", plen, *(list(octets) + [0, 0, 0, 0])[:4])


def read_at(kernel: Any, addr: int, n: int) -> bytes:
    region, off = kernel.aspace.find(addr, n)
    return bytes(region.buf[off:off + n])


def test_every_type_is_registered() -> None:
    wanted = {T.BPF_MAP_TYPE_LPM_TRIE, T.BPF_MAP_TYPE_STACK_TRACE, T.BPF_MAP_TYPE_CGROUP_ARRAY, T.BPF_MAP_TYPE_DEVMAP,
              T.BPF_MAP_TYPE_DEVMAP_HASH, T.BPF_MAP_TYPE_CPUMAP, T.BPF_MAP_TYPE_XSKMAP, T.BPF_MAP_TYPE_SOCKMAP,
              T.BPF_MAP_TYPE_SOCKHASH, T.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, T.BPF_MAP_TYPE_SK_STORAGE,
              T.BPF_MAP_TYPE_INODE_STORAGE, T.BPF_MAP_TYPE_TASK_STORAGE, BPF_MAP_TYPE_CGRP_STORAGE,
              T.BPF_MAP_TYPE_CGROUP_STORAGE, T.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE, T.BPF_MAP_TYPE_USER_RINGBUF,
              BPF_MAP_TYPE_ARENA}
    assert wanted <= set(MAP_TYPES)


# -- LPM trie --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ks,vs,mx,flags", [(8, 4, 4, 0), (4, 4, 4, 1), (261, 4, 4, 1), (8, 0, 4, 1), (8, 4, 0, 1),
                                            (8, 4, 4, 1 | 2)])
def test_lpm_creation_rules(kernel: Any, ks: int, vs: int, mx: int, flags: int) -> None:
    from tinyaya.sim_kernel.maps import create_map

    assert err(create_map, kernel, attr(T.BPF_MAP_TYPE_LPM_TRIE, ks, vs, mx, flags)) == "EINVAL"


def test_lpm_longest_match_and_element_rules(mk: Any, kernel: Any) -> None:
    m = mk(T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 3, NO_PREALLOC)
    m.sys_update(k4(8, 10), u32(1))
    m.sys_update(k4(24, 10, 1, 2), u32(2))
    assert m.sys_lookup(k4(32, 10, 1, 2, 3)) == u32(2)
    assert m.sys_lookup(k4(32, 10, 9, 9, 9)) == u32(1)
    assert m.sys_lookup(k4(16, 10, 1)) == u32(1)  # the lookup key's own prefix length bounds the match
    assert err(m.sys_lookup, k4(32, 11)) == "ENOENT"
    assert err(m.sys_lookup, k4(33, 10)) == "ENOENT"
    assert err(m.sys_update, k4(8, 10), u32(5), 1) == "EEXIST"  # BPF_NOEXIST
    assert err(m.sys_update, k4(9, 10), u32(5), 2) == "ENOENT"  # BPF_EXIST
    assert err(m.sys_update, k4(33, 10), u32(5), 0) == "EINVAL"
    assert err(m.sys_update, k4(8, 10), u32(5), 4) == "EINVAL"
    m.sys_update(k4(0, 0), u32(0))
    assert err(m.sys_update, k4(16, 10, 1), u32(5), 0) == "ENOSPC"  # full
    m.sys_update(k4(8, 10), u32(7), 2)  # replacing needs no room
    assert m.sys_lookup(k4(32, 10, 200)) == u32(7)
    assert err(m.sys_delete, k4(16, 10, 1)) == "ENOENT"  # delete wants the exact prefix
    m.sys_delete(k4(24, 10, 1, 2))
    assert m.sys_lookup(k4(32, 10, 1, 2, 3)) == u32(7)
    assert m.sys_lookup(k4(32, 99)) == u32(0)


def test_lpm_program_side_points_at_values(mk: Any, kernel: Any) -> None:
    m = mk(T.BPF_MAP_TYPE_LPM_TRIE, 8, 8, 16, NO_PREALLOC)
    assert m.prog_update(k4(16, 192, 168), struct.pack("<Q", 42), 0) == 0
    addr = m.prog_lookup(k4(32, 192, 168, 1, 1))
    assert addr and read_at(kernel, addr, 8) == struct.pack("<Q", 42)
    assert m.prog_lookup(k4(32, 192, 169)) == 0
    assert m.prog_delete(k4(16, 192, 168)) == 0
    assert m.prog_delete(k4(16, 192, 168)) == -2  # -ENOENT


def _covers(a: bytes, b: bytes) -> bool:
    """Whether prefix ``a`` contains prefix ``b`` (and is shorter)."""
    pa, pb = struct.unpack_from("<I", a)[0], struct.unpack_from("<I", b)[0]
    if pa >= pb:
        return False
    x, y = int.from_bytes(a[4:], "big"), int.from_bytes(b[4:], "big")
    bits = (len(a) - 4) * 8
    return (x ^ y) >> (bits - pa) == 0 if pa else True


@pytest.mark.parametrize("seed", range(8))
def test_lpm_matches_a_model_and_iterates_in_postorder(mk: Any, seed: int) -> None:
    rnd = random.Random(seed)
    m = mk(T.BPF_MAP_TYPE_LPM_TRIE, 6, 4, 64, NO_PREALLOC)
    model: dict[tuple[int, int], int] = {}  # (prefixlen, masked data) -> value

    def masked(plen: int, data: int) -> int:
        return data >> (16 - plen) << (16 - plen) if plen else 0

    for i in range(150):
        plen, data = rnd.choice([0, 4, 8, 9, 12, 16]), rnd.choice([0, 0x0A00, 0x0A01, 0x8000, 0xFFFF,
                                                                   rnd.randrange(1 << 16)])
        key = struct.pack("<I", plen) + data.to_bytes(2, "big")
        if rnd.random() < 0.7:
            m.sys_update(key, u32(i))
            model[(plen, masked(plen, data))] = i
        else:
            out = err(m.sys_delete, key)
            assert (out == "ENOENT") == ((plen, masked(plen, data)) not in model)
            model.pop((plen, masked(plen, data)), None)
        probe = rnd.randrange(1 << 16)
        best = max((p for p, d in model if masked(p, probe) == d), default=None)
        got = err(m.sys_lookup, struct.pack("<I", 16) + probe.to_bytes(2, "big"))
        assert got == ("ENOENT" if best is None else u32(model[(best, masked(best, probe))]))
    keys: list[bytes] = []
    cur = None
    while True:
        nxt = err(m.sys_get_next_key, cur)
        if nxt == "ENOENT":
            break
        keys.append(nxt)
        cur = nxt
    assert len(keys) == len(model)
    assert {(struct.unpack_from("<I", k)[0], masked(struct.unpack_from("<I", k)[0], int.from_bytes(k[4:], "big")))
            for k in keys} == set(model)
    for i, a in enumerate(keys):  # postorder: a prefix comes after every more specific prefix it covers
        assert not any(_covers(a, b) for b in keys[i + 1:])


# -- stack trace -----------------------------------------------------------------------------------
def test_stack_trace_get_stackid(mk: Any) -> None:
    from tinyaya.sim_kernel.maps.stack_trace import BPF_F_FAST_STACK_CMP, BPF_F_REUSE_STACKID, BPF_F_USER_STACK

    m = mk(T.BPF_MAP_TYPE_STACK_TRACE, 4, 8 * 4, 1)  # one bucket: every stack collides
    a = m.get_stackid([0xFFFFFFFF81000010, 0xFFFFFFFF81000020], 0)
    assert a == 0 and m.get_stackid([0xFFFFFFFF81000010, 0xFFFFFFFF81000020], 0) == 0
    assert m.sys_lookup(u32(0)) == struct.pack("<4Q", 0xFFFFFFFF81000010, 0xFFFFFFFF81000020, 0, 0)
    assert m.get_stackid([0xFFFFFFFF81000030], 0) == -17  # -EEXIST
    assert m.get_stackid([0xFFFFFFFF81000030], BPF_F_REUSE_STACKID) == 0
    assert m.sys_lookup(u32(0))[:8] == struct.pack("<Q", 0xFFFFFFFF81000030)
    assert m.get_stackid([], 0) == -14  # -EFAULT: an empty stack
    assert m.get_stackid([1], 1 << 11) == -22  # unknown flag
    assert m.get_stackid([1], BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP) in (0, -17)
    assert m.stackid_here(0, BPF_F_USER_STACK) == -14  # no user stacks in the simulated kernel
    assert err(m.sys_update, u32(0), bytes(32)) == "EINVAL"
    assert err(m.sys_delete, u32(1)) == "E2BIG"
    assert m.sys_get_next_key(None) == u32(0)
    m.sys_delete(u32(0))
    assert err(m.sys_get_next_key, None) == "ENOENT"


def test_stack_trace_ids_depth_and_build_ids(mk: Any) -> None:
    m = mk(T.BPF_MAP_TYPE_STACK_TRACE, 4, 8 * 2, 1024)
    got = [m.get_stackid([0x1000 + i, 0x2000, 0x3000], 0) for i in range(50)]
    ids = {i for i in got if i >= 0}
    assert all(i < 1024 for i in ids) and len(m) == len(ids)
    assert all(i == -17 for i in got if i < 0)  # a collision without BPF_F_REUSE_STACKID is EEXIST
    one = next(iter(ids))
    assert len(m.sys_lookup(u32(one))) == 16  # deeper stacks are cut at value_size / 8 frames
    b = mk(T.BPF_MAP_TYPE_STACK_TRACE, 4, 32 * 2, 16, 0x20)  # BPF_F_STACK_BUILD_ID
    sid = b.get_stackid([0xFFFF0000], 0)
    status, _build_id, ip = struct.unpack("<i20sQ", b.sys_lookup(u32(sid))[:32])
    assert (status, ip) == (2, 0xFFFF0000)  # BPF_STACK_BUILD_ID_IP


def test_stack_trace_through_the_user_space_class(kernel: Any) -> None:
    from tinyaya.maps import MapData, StackTraceMap
    from tinyaya.uapi.bpf import MapCreateAttr

    a = bytearray(bytes(MapCreateAttr(map_type=T.BPF_MAP_TYPE_STACK_TRACE, key_size=4, value_size=64,
                                      max_entries=16))).ljust(168, b"\0")
    fd = kernel.bpf(0, a)
    try:
        m = kernel.fds.get(fd)
        sid = m.get_stackid([0xFFFFFFFF81234567, 0xFFFFFFFF81000000], 0)
        st = StackTraceMap(MapData.from_fd(kernel, fd))
        assert list(st.stack_ids()) == [sid]
        frames = st.get(sid)
        ips = [getattr(f, "ip", f) for f in (frames.frames() if hasattr(frames, "frames") else frames)]
        assert ips[:2] == [0xFFFFFFFF81234567, 0xFFFFFFFF81000000]
    finally:
        kernel.close(fd)


# -- device, cpu and xsk maps -------------------------------------------------------------------------
def test_devmap_loopback_and_redirect(mk: Any, kernel: Any) -> None:
    from tinyaya.sim_kernel.maps.netdev_maps import XDP_REDIRECT

    m = mk(T.BPF_MAP_TYPE_DEVMAP, 4, 8, 4)
    assert m.map_flags & 0x80  # BPF_F_RDONLY_PROG, as the kernel sets it
    assert err(m.sys_update, u32(0), u32(7777) + u32(0xFFFFFFFF)) == "EINVAL"  # no such device
    assert err(m.sys_update, u32(0), u32(1) + u32(0), 1) == "EEXIST"
    assert err(m.sys_update, u32(4), u32(1) + u32(0)) == "E2BIG"
    m.sys_update(u32(2), u32(1) + u32(0xFFFFFFFF))
    assert m.sys_lookup(u32(2)) == u32(1) + u32(0)
    addr = m.prog_lookup(u32(2))
    assert addr and read_at(kernel, addr, 4) == u32(1)
    assert m.prog_lookup(u32(1)) == 0
    assert m.redirect(2, 0) == XDP_REDIRECT and m.redirect(1, 2) == 2  # XDP_PASS fallback
    m.sys_delete(u32(2))
    m.sys_delete(u32(2))  # an empty slot deletes fine
    assert err(m.sys_delete, u32(4)) == "EINVAL"


def test_devmap_hash_capacity_and_order(mk: Any) -> None:
    m = mk(T.BPF_MAP_TYPE_DEVMAP_HASH, 4, 4, 2)
    assert err(m.sys_update, u32(5), u32(0)) == "EINVAL"
    m.sys_update(u32(5), u32(1))
    m.sys_update(u32(3), u32(1))
    assert err(m.sys_update, u32(9), u32(1)) == "E2BIG"
    m.sys_update(u32(3), u32(1), 2)
    assert sorted([m.sys_get_next_key(None), m.sys_get_next_key(m.sys_get_next_key(None))]) == [u32(3), u32(5)]
    assert err(m.sys_delete, u32(9)) == "ENOENT"


def test_cpumap_rules(mk: Any, kernel: Any) -> None:
    m = mk(T.BPF_MAP_TYPE_CPUMAP, 4, 4, 8)
    assert err(m.sys_update, u32(0), u32(20000)) == "EOVERFLOW"
    assert err(m.sys_update, u32(kernel.ncpus), u32(64)) == "ENODEV"
    m.sys_update(u32(0), u32(64))
    assert m.sys_lookup(u32(0)) == u32(64)
    m.sys_update(u32(0), u32(0))  # qsize 0 removes the entry
    assert err(m.sys_lookup, u32(0)) == "ENOENT"
    assert m.redirect(0, 1) == 1


def test_xskmap_and_sock_maps_need_sockets(mk: Any, kernel: Any) -> None:
    other = kernel.fds.install(object())
    for m in (mk(T.BPF_MAP_TYPE_XSKMAP, 4, 4, 4), mk(T.BPF_MAP_TYPE_SOCKMAP, 4, 4, 4),
              mk(T.BPF_MAP_TYPE_SOCKHASH, 8, 4, 4), mk(T.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, 4, 4, 4)):
        key = bytes(m.key_size)
        assert err(m.sys_update, key, u32(other)) == "ENOTSOCK"
        assert err(m.sys_update, key, u32(999)) == "EBADF"
        assert m.prog_lookup(key) == 0
    sm = mk(T.BPF_MAP_TYPE_SOCKMAP, 4, 8, 4)
    assert sm.sk_redirect(u32(0), 0) == 0  # SK_DROP
    assert err(sm.sys_lookup, u32(0)) == "ENOENT"
    assert err(sm.sys_update, u32(0), struct.pack("<Q", 1 << 40)) == "EINVAL"


def test_cgroup_array_needs_a_cgroup(mk: Any, kernel: Any) -> None:
    other = kernel.fds.install(object())
    m = mk(T.BPF_MAP_TYPE_CGROUP_ARRAY, 4, 4, 4)
    assert err(m.sys_update, u32(0), u32(other)) == "EBADF"
    assert err(m.sys_update, u32(0), u32(other), 1) == "EINVAL"
    assert err(m.sys_update, u32(9), u32(other)) == "E2BIG"
    assert err(m.sys_lookup, u32(0)) == "ENOTSUPP" or err(m.sys_lookup, u32(0)) == "E524"
    assert err(m.sys_delete, u32(0)) == "ENOENT"


# -- storages, user ring buffers, arenas ----------------------------------------------------------------
def _storage_attr(map_type: int, **kw: Any) -> Any:
    a = attr(map_type, 4, 8, 0, NO_PREALLOC)
    a.btf_key_type_id, a.btf_value_type_id = kw.get("k", 1), kw.get("v", 2)
    return a


@pytest.mark.parametrize("map_type", [T.BPF_MAP_TYPE_SK_STORAGE, T.BPF_MAP_TYPE_INODE_STORAGE,
                                      T.BPF_MAP_TYPE_TASK_STORAGE, BPF_MAP_TYPE_CGRP_STORAGE])
def test_local_storage_creation(kernel: Any, map_type: int) -> None:
    from tinyaya.sim_kernel.maps import create_map

    assert err(create_map, kernel, _storage_attr(map_type, k=0)) == "EINVAL"  # BTF is required
    assert err(create_map, kernel, _storage_attr(map_type, v=0)) == "EINVAL"
    a = _storage_attr(map_type)
    a.map_flags = 0
    assert err(create_map, kernel, a) == "EINVAL"  # BPF_F_NO_PREALLOC is required
    a = _storage_attr(map_type)
    a.value_size = 65408
    assert err(create_map, kernel, a) == "E2BIG"
    m = create_map(kernel, _storage_attr(map_type))
    try:
        assert err(m.sys_get_next_key, None) in ("ENOTSUPP", "E524")
    finally:
        m.release()


def test_inode_storage_keeps_a_value_per_file(kernel: Any) -> None:
    from tinyaya.sim_kernel.maps import create_map

    m = create_map(kernel, _storage_attr(T.BPF_MAP_TYPE_INODE_STORAGE))
    try:
        f1, f2 = kernel.fds.install(object()), kernel.fds.install(object())
        m.sys_update(u32(f1), b"A" * 8)
        assert err(m.sys_update, u32(f1), b"B" * 8, 1) == "EEXIST"
        assert err(m.sys_update, u32(f2), b"B" * 8, 2) == "ENOENT"
        assert m.sys_lookup(u32(f1)) == b"A" * 8 and err(m.sys_lookup, u32(f2)) == "ENOENT"
        m.sys_delete(u32(f1))
        assert err(m.sys_delete, u32(f1)) == "ENOENT"
        assert err(m.sys_lookup, u32(999)) == "EBADF"
    finally:
        m.release()


def test_cgroup_storage(mk: Any) -> None:
    m = mk(T.BPF_MAP_TYPE_CGROUP_STORAGE, 16, 8, 0)
    assert err(m.sys_update, bytes(16), bytes(8), 1) == "EINVAL"  # BPF_NOEXIST is not allowed
    assert err(m.sys_update, bytes(16), bytes(8)) == "ENOENT"
    assert err(m.sys_delete, bytes(16)) == "EINVAL"
    assert err(m.sys_get_next_key, None) == "ENOENT"


@pytest.mark.parametrize("mx,flags,extra,want", [(16, MMAPABLE, 0, None), (16, 0, 0, "EINVAL"),
                                                 (16, MMAPABLE, 1, "EINVAL"), ((1 << 20) + 1, MMAPABLE, 0, "E2BIG"),
                                                 (16, MMAPABLE, (1 << 32) - 4096, "ERANGE"),
                                                 (16, MMAPABLE | (1 << 17) | (1 << 18), 1 << 32, None)])
def test_arena_creation(kernel: Any, mx: int, flags: int, extra: int, want: str | None) -> None:
    from tinyaya.sim_kernel.maps import create_map

    out = err(create_map, kernel, attr(BPF_MAP_TYPE_ARENA, 0, 0, mx, flags, map_extra=extra))
    if want is None:
        assert err(out.sys_lookup, None) == "EINVAL" and err(out.sys_get_next_key, None) == "ENOTSUP"  # EOPNOTSUPP
        out.release()
    else:
        assert out == want


def test_user_ringbuf(mk: Any, kernel: Any) -> None:
    from tinyaya.sim_kernel.maps import create_map

    assert err(create_map, kernel, attr(T.BPF_MAP_TYPE_USER_RINGBUF, 0, 0, 4097)) == "EINVAL"
    m = mk(T.BPF_MAP_TYPE_USER_RINGBUF, 0, 0, 4096)
    assert err(m.sys_lookup, None) in ("ENOTSUPP", "E524")


def test_user_ringbuf_drain(mk: Any, kernel: Any) -> None:
    """``bpf_user_ringbuf_drain``: samples the producer committed, discarded ones skipped, a busy one stops."""
    import mmap

    m = mk(T.BPF_MAP_TYPE_USER_RINGBUF, 0, 0, 4096)
    page = 4096
    assert err(m.mmap, page, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, 0) == "EPERM"
    prod = m.mmap(page + 4096, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, page)
    data = prod[page:]
    pos = 0
    for payload, flags in ((b"first!!!", 0), (b"gone", 1 << 30), (b"second", 0), (b"busy", 1 << 31)):
        struct.pack_into("<II", data, pos, len(payload) | flags, 0)
        data[pos + 8:pos + 8 + len(payload)] = payload
        pos += (len(payload) + 8 + 7) // 8 * 8
    struct.pack_into("<Q", prod, 0, pos)  # producer_pos
    seen: list[bytes] = []

    def cb(addr: int, size: int) -> int:
        seen.append(read_at(kernel, addr, size))
        return 0

    assert m.drain(cb) == 2 and seen == [b"first!!!", b"second"]
    assert m.drain(cb, flags=4) == -22
    m.munmap(prod)


def test_kprobe_program_fills_a_stack_trace_map(kernel: Any) -> None:
    """bpf_get_stackid from a kprobe: the stack is the probed simulated function; the same stack, the same id."""
    from pathlib import Path

    from tinyaya.maps import StackTraceMap
    from tinyaya.programs.ebpf import EbpfLoader

    obj = Path(__file__).parents[2] / "fixtures/maps_more/more_maps.o"
    ebpf = EbpfLoader(kernel=kernel).allow_unsupported_maps().load_file(obj)
    try:
        prog: Any = ebpf.program("trace_stack")  # a KProbe
        prog.load()
        prog.attach("do_sys_openat2", 0)
        p = kernel.machine.process(comm="cat", uid=1000, cpu=1)
        for _ in range(3):
            p.syscall("openat", -100, "/etc/passwd", 0, 0)
        st = StackTraceMap(ebpf.map("stacks"))
        (sid,) = list(st.stack_ids())
        frames = st.get(sid)
        ips = [getattr(f, "ip", f) for f in (frames.frames() if hasattr(frames, "frames") else frames)]
        assert ips[0] == kernel.tracing.kallsyms.by_name["do_sys_openat2"].addr
    finally:
        ebpf.close()
