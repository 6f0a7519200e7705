"""bpf objects in SimKernel: program load and info, references between objects, ids, pins in one and in
two kernels, links through the tracing part, BTF objects."""
from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
from pathlib import Path

import pytest

from tinyaya.isa.insn import decode
from tinyaya.sim_kernel import SimKernel
from tinyaya.sim_kernel.prog import BpfProg, bpf_prog_calc_tag
from tinyaya.uapi.bpf import (
    BpfCmd,
    BpfProgInfo,
    InfoAttr,
    LinkCreateAttr,
    LinkDetachAttr,
    MapCreateAttr,
    ObjAttr,
    ProgLoadAttr,
    RawTracepointAttr,
)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


RET0 = insn(0xB7) + insn(0x95)
_keep: list[object] = []


def buf(data: bytes | int) -> int:
    b = ctypes.create_string_buffer(data if isinstance(data, bytes) else data, data if isinstance(data, int) else len(data) or 1)
    _keep.append(b)
    return ctypes.addressof(b)


def load(k: SimKernel, insns: bytes, prog_type: int = 1, name: bytes = b"", **kw: int) -> int:
    a = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(insns) // 8, insns=buf(insns), license=buf(b"GPL\0"),
                     prog_name=name, **kw)
    return k.bpf(BpfCmd.BPF_PROG_LOAD, a)


def array(k: SimKernel, max_entries: int = 1) -> int:
    return k.bpf(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=2, key_size=4, value_size=8, max_entries=max_entries))


def ld_map(dst: int, fd: int, src: int = 1, off: int = 0) -> bytes:
    return insn(0x18, dst, src, 0, fd) + insn(0, 0, 0, 0, off)


def prog_info(k: SimKernel, fd: int, nr_map_ids: int = 4) -> tuple[BpfProgInfo, list[int], bytes]:
    ids = (ctypes.c_uint32 * nr_map_ids)()
    xl = ctypes.create_string_buffer(512)
    info = BpfProgInfo(nr_map_ids=nr_map_ids, map_ids=ctypes.addressof(ids), xlated_prog_len=512,
                       xlated_prog_insns=ctypes.addressof(xl))
    k.bpf(BpfCmd.BPF_OBJ_GET_INFO_BY_FD, InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info),
                                                  info=ctypes.addressof(info)))
    return info, list(ids)[:info.nr_map_ids], xl.raw[:info.xlated_prog_len]


def errno_of(fn, *args) -> int:
    with pytest.raises(OSError) as ei:
        fn(*args)
    return ei.value.errno


def test_prog_info_and_xlated_dump_shows_map_ids() -> None:
    k = SimKernel()
    m = array(k)
    fd = load(k, ld_map(1, m) + ld_map(2, m, src=2, off=4) + RET0, name=b"with_map")
    info, ids, xl = prog_info(k, fd)
    prog = k.fds.get(fd)
    assert isinstance(prog, BpfProg)
    mp = k.fds.get(m)
    assert ids == [mp.id] and info.nr_map_ids == 1
    assert info.name == b"with_map" and info.gpl_compatible == 1 and info.type == 1
    assert bytes(info.tag) == bpf_prog_calc_tag(prog.orig_insns)
    dump = decode(xl)
    assert (dump[0].src, dump[0].imm, dump[1].imm) == (1, mp.id, 0)  # BPF_PSEUDO_MAP_FD, map id
    assert (dump[2].src, dump[2].imm, dump[3].imm) == (2, mp.id, 4)  # BPF_PSEUDO_MAP_VALUE, map id, offset
    # what runs holds kernel addresses
    assert ((prog.insns[1].imm & 0xFFFFFFFF) << 32 | (prog.insns[0].imm & 0xFFFFFFFF)) == mp.region.base


def test_program_keeps_its_maps_alive_and_ids_go_with_the_last_reference() -> None:
    k = SimKernel()
    m = array(k)
    mp = k.fds.get(m)
    fd = load(k, ld_map(1, m) + RET0)
    k.close(m)
    assert k.map_ids.find(mp.id) is mp  # the program holds it
    prog_id = k.fds.get(fd).id
    k.close(fd)
    assert k.prog_ids.find(prog_id) is None
    assert k.map_ids.find(mp.id) is None
    assert k.memlock.used == 0


def test_prog_load_log_for_bad_map_fd() -> None:
    k = SimKernel()
    log = ctypes.create_string_buffer(4096)
    a = ProgLoadAttr(prog_type=1, insn_cnt=4, insns=buf(ld_map(1, 77) + RET0), license=buf(b"GPL\0"),
                     log_level=1, log_size=4096, log_buf=ctypes.addressof(log))
    assert errno_of(k.bpf, BpfCmd.BPF_PROG_LOAD, a) == errno.EBADF
    text = log.value.decode()
    assert text.startswith("fd 77 is not pointing to valid bpf_map\n")
    assert "processed 0 insns" in text


def test_pins_in_one_kernel(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    k = SimKernel(bpffs_root=root)
    m = array(k)
    mp = k.fds.get(m)
    path = root / "dir" / "m"
    assert errno_of(k.bpf, BpfCmd.BPF_OBJ_PIN, ObjAttr(pathname=buf(str(path).encode() + b"\0"), bpf_fd=m)) \
        == errno.ENOENT
    (root / "dir").mkdir()
    k.bpf(BpfCmd.BPF_OBJ_PIN, ObjAttr(pathname=buf(str(path).encode() + b"\0"), bpf_fd=m))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert errno_of(k.bpf, BpfCmd.BPF_OBJ_PIN, ObjAttr(pathname=buf(str(path).encode() + b"\0"), bpf_fd=m)) \
        == errno.EEXIST
    k.close(m)
    assert k.map_ids.find(mp.id) is mp  # the pin holds it
    fd = k.bpf(BpfCmd.BPF_OBJ_GET, ObjAttr(pathname=buf(str(path).encode() + b"\0")))
    assert k.fds.get(fd) is mp
    ro = k.bpf(BpfCmd.BPF_OBJ_GET, ObjAttr(pathname=buf(str(path).encode() + b"\0"), file_flags=0x8))
    assert k.fds.file(ro).mode == 1
    rel = os.path.relpath(path)
    assert k.fds.get(k.bpf(BpfCmd.BPF_OBJ_GET, ObjAttr(pathname=buf(rel.encode() + b"\0")))) is mp
    k.bpffs.unlink(path)
    k.close(fd)
    k.close(ro)


def test_prog_pin_opened_by_another_kernel_shares_stats(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    a, b = SimKernel(bpffs_root=root), SimKernel(bpffs_root=root)
    fd = load(a, RET0, name=b"pinned")
    path = str(root / "p").encode() + b"\0"
    a.bpf(BpfCmd.BPF_OBJ_PIN, ObjAttr(pathname=buf(path), bpf_fd=fd))
    prog = a.fds.get(fd)
    prog.run_cnt += 3
    prog.run_time_ns += 1000
    fd_b = b.bpf(BpfCmd.BPF_OBJ_GET, ObjAttr(pathname=buf(path)))
    info, _, xl = prog_info(b, fd_b)
    assert info.name == b"pinned" and bytes(info.tag) == prog.tag
    assert (info.run_cnt, info.run_time_ns) == (3, 1000)
    assert xl == RET0
    prog.run_cnt += 1
    assert prog_info(b, fd_b)[0].run_cnt == 4
    # it can be inspected, not run, in the other kernel
    assert b.fds.get(fd_b).foreign
    if pytest.importorskip("tinyaya.sim_kernel.vm"):
        attr = bytearray(struct.pack("<I", fd_b)).ljust(80, b"\0")
        assert errno_of(b.bpf, BpfCmd.BPF_PROG_TEST_RUN, attr) == 524


def test_link_pin_and_raw_tracepoint_link(tmp_path: Path) -> None:
    pytest.importorskip("tinyaya.sim_kernel.tracing")
    root = tmp_path / "fs"
    k = SimKernel(bpffs_root=root)
    p = load(k, RET0, prog_type=17)
    lfd = k.bpf(BpfCmd.BPF_RAW_TRACEPOINT_OPEN, RawTracepointAttr(name=buf(b"sys_enter\0"), prog_fd=p))
    assert len(k.tracing.raw_tracepoints["sys_enter"]) == 1
    assert errno_of(k.bpf, BpfCmd.BPF_LINK_DETACH, LinkDetachAttr(link_fd=lfd)) == errno.EOPNOTSUPP
    name = ctypes.create_string_buffer(32)
    info = bytearray(struct.pack("<IIII", 0, 0, 0, 0) + struct.pack("<QI", ctypes.addressof(name), 32)
                     ).ljust(64, b"\0")
    ib = (ctypes.c_char * 64).from_buffer(info)
    k.bpf(BpfCmd.BPF_OBJ_GET_INFO_BY_FD, InfoAttr(bpf_fd=lfd, info_len=64, info=ctypes.addressof(ib)))
    ltype, lid, prog_id = struct.unpack_from("<III", info)
    assert (ltype, prog_id) == (1, k.fds.get(p).id) and name.value == b"sys_enter"
    path = str(root / "l").encode() + b"\0"
    k.bpf(BpfCmd.BPF_OBJ_PIN, ObjAttr(pathname=buf(path), bpf_fd=lfd))
    k.close(lfd)
    assert len(k.tracing.raw_tracepoints["sys_enter"]) == 1  # the pin keeps the link
    k.bpffs.unlink(root / "l")
    assert k.tracing.raw_tracepoints["sys_enter"] == []


def test_perf_link_create_and_detach() -> None:
    tracing = pytest.importorskip("tinyaya.sim_kernel.tracing")
    from tinyaya.uapi.perf_event import PerfEventAttr

    k = SimKernel()
    tp_id = int(k.read_file("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id"))
    attr = PerfEventAttr(type=2, size=ctypes.sizeof(PerfEventAttr), config=tp_id)
    ev = k.perf_event_open(attr, -1, 0, -1, 0)
    p = load(k, RET0, prog_type=5)
    lfd = k.bpf(BpfCmd.BPF_LINK_CREATE, LinkCreateAttr(prog_fd=p, target_fd=ev, attach_type=41, bpf_cookie=7))
    event = k.fds.get(ev)
    assert isinstance(event, tracing.PerfEvent) and event.prog is k.fds.get(p)
    assert errno_of(k.bpf, BpfCmd.BPF_LINK_CREATE, LinkCreateAttr(prog_fd=p, target_fd=ev, attach_type=41)) \
        == errno.EEXIST
    assert errno_of(k.bpf, BpfCmd.BPF_LINK_DETACH, LinkDetachAttr(link_fd=lfd)) == errno.EOPNOTSUPP
    k.close(p)
    k.close(ev)
    assert event.prog is not None  # the link holds both
    k.close(lfd)
    assert event.prog is None


def test_btf_object_info_and_ids() -> None:
    k = SimKernel()
    types = struct.pack("<IIII", 1, 1 << 24, 4, 32)
    strs = b"\0int\0"
    blob = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs)) + types + strs
    log = ctypes.create_string_buffer(1024)
    attr = bytearray(struct.pack("<QQIII", buf(blob), ctypes.addressof(log), len(blob), 1024, 1)).ljust(40, b"\0")
    fd = k.bpf(BpfCmd.BPF_BTF_LOAD, attr)
    assert b"magic: 0xeb9f" in log.value
    assert struct.unpack_from("<I", attr, 28)[0] == len(log.value) + 1  # btf_log_true_size
    obj = k.fds.get(fd)
    out = ctypes.create_string_buffer(len(blob))
    info = bytearray(struct.pack("<QIIQII", ctypes.addressof(out), len(blob), 0, 0, 0, 0))
    ib = (ctypes.c_char * 32).from_buffer(info)
    k.bpf(BpfCmd.BPF_OBJ_GET_INFO_BY_FD, InfoAttr(bpf_fd=fd, info_len=32, info=ctypes.addressof(ib)))
    assert out.raw == blob and struct.unpack_from("<I", info, 12)[0] == obj.id
    assert obj.resolve_size(1) == 4
    k.close(fd)
    assert k.btf_ids.find(obj.id) is None
