"""PROG_ARRAY, PERF_EVENT_ARRAY, ARRAY_OF_MAPS and HASH_OF_MAPS: fds in, objects kept, ids out."""
from __future__ import annotations

from typing import Any

from maps_helpers import attr, err, u32

from tinyaya.sim_kernel.maps import create_map

ARRAY, HASH, PROG, PERF, AOM, HOM = 2, 1, 3, 4, 12, 13


def prog(kernel: Any, prog_type: int = 1, pid: int = 5) -> tuple[Any, int]:
    from tinyaya.sim_kernel.prog import BpfProg

    p = BpfProg(prog_type=prog_type, insns=[], orig_insns=[])
    p.id = pid
    return p, kernel.fds.install(p)


def test_prog_array(mk: Any, kernel: Any) -> None:
    m = mk(PROG, 4, 4, 2)
    p, fd = prog(kernel)
    other, ofd = prog(kernel, prog_type=2)
    amap = mk(ARRAY, 4, 4, 1)
    afd = kernel.fds.install(amap)
    assert err(m.sys_lookup, u32(0)) == "ENOENT"
    assert err(m.sys_update, u32(0), u32(afd), 0) == "EINVAL"  # not a program
    assert err(m.sys_update, u32(0), u32(999), 0) == "EBADF"
    assert err(m.sys_update, u32(0), u32(fd), 1) == "EINVAL"  # BPF_ANY only
    assert err(m.sys_update, u32(7), u32(fd), 0) == "E2BIG"
    m.sys_update(u32(0), u32(fd), 0)
    assert m.prog_at(0) is p and m.prog_at(1) is None
    assert m.sys_lookup(u32(0)) == u32(5)
    assert err(m.sys_update, u32(1), u32(ofd), 0) == "EINVAL"  # another program type
    kernel.close(fd)
    assert kernel.fds.alive(p)  # the map holds it
    m.sys_delete(u32(0))
    assert not kernel.fds.alive(p)
    assert err(m.sys_delete, u32(0)) == "ENOENT"
    assert m.sys_get_next_key(None) == u32(0)
    kernel.close(ofd)
    kernel.close(afd)


def test_perf_event_array(mk: Any, kernel: Any) -> None:
    from tinyaya.sys.perf_event import perf_event_open_bpf_output

    m = mk(PERF, 4, 4, kernel.ncpus)
    pfd = perf_event_open_bpf_output(kernel, 0)
    ev = kernel.fds.get(pfd)
    assert err(m.sys_lookup, u32(0)) == "E524"
    amap = mk(ARRAY, 4, 4, 1)
    afd = kernel.fds.install(amap)
    assert err(m.sys_update, u32(0), u32(afd), 0) == "EBADF"
    m.sys_update(u32(0), u32(pfd), 0)
    assert m.perf_event_at(0) is ev and m.perf_event_at(1) is None
    m.release_uref()  # without BPF_F_PRESERVE_ELEMS the events go with the last user reference
    assert m.perf_event_at(0) is None
    kernel.close(pfd)
    kernel.close(afd)


def test_array_of_maps(mk: Any, kernel: Any) -> None:
    inner = mk(ARRAY, 4, 4, 1)
    ifd = kernel.fds.install(inner)
    inner.id = 67
    outer = create_map(kernel, attr(AOM, 4, 4, 2, inner_map_fd=ifd))
    other = mk(ARRAY, 4, 4, 2)
    ofd = kernel.fds.install(other)
    assert err(outer.sys_lookup, u32(0)) == "ENOENT"
    outer.sys_update(u32(0), u32(ifd), 0)
    assert outer.sys_lookup(u32(0)) == u32(67)
    assert outer.prog_lookup(u32(0), 0) == inner.addr
    assert outer.prog_lookup(u32(1), 0) == 0
    assert err(outer.sys_update, u32(1), u32(ofd), 0) == "EINVAL"  # max_entries differs
    assert err(outer.sys_update, u32(1), u32(ifd), 1) == "EINVAL"
    assert err(outer.sys_update, u32(5), u32(ifd), 0) == "E2BIG"
    outer.sys_delete(u32(0))
    assert err(outer.sys_delete, u32(0)) == "ENOENT"
    outer.release()
    kernel.close(ifd)
    kernel.close(ofd)


def test_map_in_map_creation_rules(mk: Any, kernel: Any) -> None:
    inner = mk(ARRAY, 4, 4, 1)
    ifd = kernel.fds.install(inner)
    pa = mk(PROG, 4, 4, 1)
    pfd = kernel.fds.install(pa)
    assert err(create_map, kernel, attr(AOM, 4, 8, 2, inner_map_fd=ifd)) == "EINVAL"
    assert err(create_map, kernel, attr(AOM, 4, 4, 0, inner_map_fd=999)) == "EINVAL"  # checks before the fd
    assert err(create_map, kernel, attr(AOM, 4, 4, 2, inner_map_fd=999)) == "EBADF"
    assert err(create_map, kernel, attr(AOM, 4, 4, 2, inner_map_fd=pfd)) == "E524"
    outer = create_map(kernel, attr(AOM, 4, 4, 2, inner_map_fd=ifd))
    ofd = kernel.fds.install(outer)
    assert err(create_map, kernel, attr(AOM, 4, 4, 2, inner_map_fd=ofd)) == "EINVAL"
    for fd in (ifd, pfd, ofd):
        kernel.close(fd)


def test_hash_of_maps(mk: Any, kernel: Any) -> None:
    inner = mk(HASH, 4, 4, 1)
    ifd = kernel.fds.install(inner)
    inner.id = 3
    outer = create_map(kernel, attr(HOM, 8, 4, 1, inner_map_fd=ifd))
    outer.sys_update(b"k" * 8, u32(ifd), 1)
    assert err(outer.sys_update, b"k" * 8, u32(ifd), 1) == "EEXIST"
    assert err(outer.sys_update, b"j" * 8, u32(ifd), 0) == "E2BIG"
    assert err(outer.sys_update, b"j" * 8, u32(999), 0) == "EBADF"
    assert outer.sys_lookup(b"k" * 8) == u32(3)
    assert outer.sys_get_next_key(None) == b"k" * 8
    assert outer.prog_lookup(b"k" * 8, 0) == inner.addr
    outer.release()
    kernel.close(ifd)
