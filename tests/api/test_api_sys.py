"""tinyaya.sys on each backend: every command wrapper, its results and its errnos."""
from __future__ import annotations

import errno
import struct
from typing import Any

import pytest

from tinyaya import sys as S
from tinyaya.uapi.bpf import BpfMapType as T
from tinyaya.uapi.bpf import BpfProgType as P
from tinyaya.uapi.bpf import MapUpdateFlags as F

RET42 = struct.pack("<BBhi", 0xB7, 0, 0, 42) + struct.pack("<BBhi", 0x95, 0, 0, 0)  # r0 = 42; exit
BAD = struct.pack("<BBhi", 0x95, 0, 0, 0)  # exit with r0 unset


def k4(i: int) -> bytes:
    return i.to_bytes(4, "little")


def test_element_commands(kernel: Any) -> None:
    k = kernel
    fd = S.bpf_map_create(k, T.BPF_MAP_TYPE_HASH, 4, 8, 4, name="elems")
    try:
        S.bpf_map_update_elem(k, fd, k4(1), bytes(range(8)))
        assert S.bpf_map_lookup_elem(k, fd, k4(1), 8) == bytes(range(8))
        with pytest.raises(OSError) as ei:
            S.bpf_map_update_elem(k, fd, k4(1), bytes(8), F.BPF_NOEXIST)
        assert ei.value.errno == errno.EEXIST
        with pytest.raises(OSError) as ei:
            S.bpf_map_update_elem(k, fd, k4(2), bytes(8), F.BPF_EXIST)
        assert ei.value.errno == errno.ENOENT
        assert S.bpf_map_get_next_key(k, fd, None, 4) == k4(1)
        assert S.bpf_map_get_next_key(k, fd, k4(1), 4) is None
        assert S.bpf_map_get_next_key(k, fd, k4(99), 4) == k4(1)  # a missing key restarts, as Linux does
        assert S.bpf_map_lookup_and_delete_elem(k, fd, k4(1), 8) == bytes(range(8))
        with pytest.raises(OSError) as ei:
            S.bpf_map_delete_elem(k, fd, k4(1))
        assert ei.value.errno == errno.ENOENT
    finally:
        k.close(fd)


def test_batch_commands(kernel: Any) -> None:
    k = kernel
    fd = S.bpf_map_create(k, T.BPF_MAP_TYPE_HASH, 4, 4, 64)
    try:
        assert S.bpf_map_update_batch(k, fd, [k4(i) for i in range(10)], [k4(i * i) for i in range(10)]) == 10
        got: dict[bytes, bytes] = {}
        token = None
        while True:
            r = S.bpf_map_lookup_batch(k, fd, token, 4, 4, 3)
            got.update(zip(r.keys, r.values, strict=True))
            if r.done:
                break
            token = r.out_batch
        assert got == {k4(i): k4(i * i) for i in range(10)}
        assert S.bpf_map_delete_batch(k, fd, [k4(0), k4(1)]) == 2
        r = S.bpf_map_lookup_and_delete_batch(k, fd, None, 4, 4, 64)
        assert r.done and len(r.keys) == 8
        assert S.bpf_map_get_next_key(k, fd, None, 4) is None
    finally:
        k.close(fd)


def test_freeze_and_info(kernel: Any) -> None:
    k = kernel
    fd = S.bpf_map_create(k, T.BPF_MAP_TYPE_ARRAY, 4, 4, 2, name="frozen")
    try:
        S.bpf_map_freeze(k, fd)
        with pytest.raises(OSError) as ei:
            S.bpf_map_update_elem(k, fd, k4(0), k4(1))
        assert ei.value.errno == errno.EPERM
        info = S.bpf_map_get_info_by_fd(k, fd)
        assert (info.type, info.key_size, info.value_size, info.max_entries, info.name) == (
            T.BPF_MAP_TYPE_ARRAY, 4, 4, 2, b"frozen")
        assert info.id in S.iter_ids(k, "map")
        fd2 = S.bpf_map_get_fd_by_id(k, info.id)
        assert S.bpf_map_get_info_by_fd(k, fd2).id == info.id
        k.close(fd2)
    finally:
        k.close(fd)


def test_prog_load_test_run_and_verifier_log(kernel: Any) -> None:
    k = kernel
    fd = S.bpf_prog_load(k, P.BPF_PROG_TYPE_SOCKET_FILTER, RET42, "GPL", name="ret42")
    try:
        r = S.bpf_prog_test_run(k, fd, data=bytes(64), repeat=3)
        assert r.retval == 42
        info, _ = S.bpf_prog_get_info_by_fd(k, fd)
        assert info.name == b"ret42" and info.type == P.BPF_PROG_TYPE_SOCKET_FILTER
        assert info.id in S.iter_ids(k, "prog")
    finally:
        k.close(fd)
    with pytest.raises(S.ProgLoadError) as ei:
        S.bpf_prog_load(k, P.BPF_PROG_TYPE_SOCKET_FILTER, BAD, "GPL")
    assert ei.value.errno == errno.EACCES
    assert "R0 !read_ok" in ei.value.verifier_log


def test_prog_load_log_grows_on_enospc(kernel: Any) -> None:
    k = kernel
    log: list[str] = []
    fd = S.bpf_prog_load(k, P.BPF_PROG_TYPE_SOCKET_FILTER, RET42, "GPL", log_level=2, log_size=16, log_out=log)
    k.close(fd)
    assert log and "processed 2 insns" in log[0]


def test_btf_load(kernel: Any) -> None:
    k = kernel
    strings = b"\0int\0"
    types = struct.pack("<III", 1, 1 << 24, 4) + struct.pack("<I", 32)  # BTF_KIND_INT "int", 32 bits
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    fd = S.bpf_btf_load(k, hdr + types + strings)
    try:
        assert S.bpf_btf_get_info_by_fd(k, fd).btf_size == len(hdr + types + strings)
    finally:
        k.close(fd)
    with pytest.raises(S.BtfLoadError) as ei:
        S.bpf_btf_load(k, hdr[:-4] + b"\xff\xff\xff\x7f" + types + strings)
    assert ei.value.errno == errno.EINVAL and ei.value.verifier_log


def test_xlated_jited_and_btf_data(kernel: Any) -> None:
    k = kernel
    fd = S.bpf_prog_load(k, P.BPF_PROG_TYPE_SOCKET_FILTER, RET42, "GPL")
    try:
        assert S.bpf_prog_get_xlated_insns(k, fd) == RET42
        if k.backend == "linux":
            assert len(S.bpf_prog_get_jited_insns(k, fd)) > 0  # the JIT is on here
    finally:
        k.close(fd)
    strings = b"\0int\0"
    types = struct.pack("<III", 1, 1 << 24, 4) + struct.pack("<I", 32)
    btf = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)) + types + strings
    bfd = S.bpf_btf_load(k, btf)
    try:
        assert S.bpf_btf_get_data(k, bfd) == btf
    finally:
        k.close(bfd)


def test_link_info_and_detach_semantics(kernel: Any) -> None:
    """Perf and raw-tracepoint links report their type and program; neither supports BPF_LINK_DETACH
    (Linux: EOPNOTSUPP, the links have no .detach op); closing the fd is what detaches them."""
    import os
    from pathlib import Path

    from tinyaya import EbpfLoader
    from tinyaya.programs import FdLink, PerfLink
    from tinyaya.uapi.bpf import BpfLinkType

    if kernel.backend == "linux" and not os.path.exists("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id"):
        pytest.skip("tracefs is not mounted at /sys/kernel/tracing")
    obj = Path(__file__).parents[2] / "tests/linux/fixtures/count_syscalls.o"
    with EbpfLoader(kernel=kernel).load_file(obj) as ebpf:
        tp, raw = ebpf.program("count_syscalls"), ebpf.program("raw_enter")
        tp.load()
        raw.load()
        perf_id, raw_id = tp.attach("raw_syscalls", "sys_enter"), raw.attach("sys_enter")
        perf_link, raw_link = tp.links[perf_id], raw.links[raw_id]
        assert isinstance(perf_link, PerfLink) and isinstance(raw_link, FdLink)
        assert perf_link.link_fd is not None
        for fd, link_type, prog in ((perf_link.link_fd, BpfLinkType.BPF_LINK_TYPE_PERF_EVENT, tp),
                                    (raw_link.fd, BpfLinkType.BPF_LINK_TYPE_RAW_TRACEPOINT, raw)):
            k = kernel
            info = S.bpf_link_get_info_by_fd(k, fd)
            assert (info.type, info.prog_id) == (link_type, prog.id)
            assert info.id in S.iter_ids(k, "link")
            with pytest.raises(OSError) as ei:
                S.bpf_link_detach(k, fd)
            assert ei.value.errno == errno.EOPNOTSUPP
