"""Differential tests of BTF_LOAD (header, sections, every record kind, the log), BTF on maps, links
(perf and raw tracepoint: create, info, detach) and BPF_ENABLE_STATS."""
from __future__ import annotations

import ctypes
import struct

import pytest
from btfgen import MUTATIONS, sample
from diffharness import (
    ATTR_SIZE,
    RET0,
    Side,
    batch,
    btf_load,
    elem,
    info,
    link_create,
    map_create,
    prog_load,
    u32,
)

from tinyaya.uapi.bpf import BpfCmd as C
from tinyaya.uapi.bpf import BpfMapType as T
from tinyaya.uapi.bpf import BpfProgType as P
from tinyaya.uapi.bpf import MapFlags

maps_mod = pytest.importorskip("tinyaya.sim_kernel.maps")
needs_maps = pytest.mark.skipif(not hasattr(maps_mod, "create_map"), reason="sim maps (B2) not there yet")
BAD_PTR = 0x10  # a user address that is never mapped


def array(s: Side, value_size: int = 8, max_entries: int = 4, flags: int = 0) -> int:
    return s.fd(s.bpf(C.BPF_MAP_CREATE, map_create(T.BPF_MAP_TYPE_ARRAY, 4, value_size, max_entries, flags)))


def hashmap(s: Side, max_entries: int = 8, flags: int = 0) -> int:
    return s.fd(s.bpf(C.BPF_MAP_CREATE, map_create(T.BPF_MAP_TYPE_HASH, 4, 8, max_entries, flags)))


# -- BTF_LOAD -------------------------------------------------------------------------------------------------
def _btf(types: bytes, strings: bytes, magic: int = 0xEB9F, version: int = 1, flags: int = 0,
         hdr_extra: bytes = b"") -> bytes:
    hdr_len = 24 + len(hdr_extra)
    hdr = struct.pack("<HBBIIIII", magic, version, flags, hdr_len, 0, len(types), len(types), len(strings))
    return hdr + hdr_extra + types + strings


INT_TYPE = struct.pack("<III", 1, (1 << 24), 4) + struct.pack("<I", 32)  # int: name "int", 4 bytes, 32 bits
STRINGS = b"\0int\0"


@pytest.mark.parametrize("case", ["ok", "magic", "version", "flags", "empty", "short", "no_types",
                                  "strings_not_nul", "hdr_extra_zero", "hdr_extra_nonzero", "bad_kind",
                                  "truncated_type", "bad_ptr", "too_big"])
def test_btf_load(kernels, case):
    def scenario(s: Side):
        blob = {
            "ok": _btf(INT_TYPE, STRINGS), "magic": _btf(INT_TYPE, STRINGS, magic=0x1234),
            "version": _btf(INT_TYPE, STRINGS, version=2), "flags": _btf(INT_TYPE, STRINGS, flags=1),
            "empty": b"", "short": _btf(INT_TYPE, STRINGS)[:6], "no_types": _btf(b"", STRINGS),
            "strings_not_nul": _btf(INT_TYPE, b"\0int"),
            "hdr_extra_zero": _btf(INT_TYPE, STRINGS, hdr_extra=bytes(8)),
            "hdr_extra_nonzero": _btf(INT_TYPE, STRINGS, hdr_extra=b"\1" + bytes(7)),
            "bad_kind": _btf(struct.pack("<III", 1, 31 << 24, 4), STRINGS),
            "truncated_type": _btf(INT_TYPE[:12], STRINGS),
        }.get(case, _btf(INT_TYPE, STRINGS))
        addr = BAD_PTR if case == "bad_ptr" else s.buf(blob)
        size = 17 * 1024 * 1024 if case == "too_big" else len(blob)
        log = s.buf(4096)
        r = s.bpf(C.BPF_BTF_LOAD, btf_load(addr, size, log, 4096, 1))
        out = [r.outcome, r.u32(28), s.read(log, 4096).split(b"\0")[0]]
        if r.ok:
            ib = s.buf(struct.pack("<QIIQII", s.buf(64), 64, 0, 0, 0, 0))
            ri = s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(r.ret, 32, ib))
            raw = s.read(ib, 32)
            out += [ri.outcome, ri.u32(4), struct.unpack_from("<I", raw, 8)[0], struct.unpack_from("<I", raw, 28)[0]]
        return out

    kernels.compare(scenario)


def test_btf_log_attrs(kernels):
    def scenario(s: Side):
        blob = s.buf(_btf(INT_TYPE, STRINGS))
        n = len(_btf(INT_TYPE, STRINGS))
        return [s.bpf(C.BPF_BTF_LOAD, btf_load(blob, n, s.buf(64), 64, 0)).outcome,
                s.bpf(C.BPF_BTF_LOAD, btf_load(blob, n, 0, 64, 1)).outcome,
                s.bpf(C.BPF_BTF_LOAD, btf_load(blob, n, s.buf(64), 64, 32)).outcome,
                s.bpf(C.BPF_BTF_LOAD, btf_load(blob, n, s.buf(4096), 4096, 1)).outcome]

    kernels.compare(scenario)


@needs_maps
def test_map_with_btf(kernels):
    def scenario(s: Side):
        blob = _btf(INT_TYPE, STRINGS)
        b = s.fd(s.bpf(C.BPF_BTF_LOAD, btf_load(s.buf(blob), len(blob))))
        out = []
        for ks, vs, kid, vid, btf_fd in ((4, 4, 1, 1, b), (4, 8, 1, 1, b), (8, 4, 1, 1, b), (4, 4, 0, 1, b),
                                         (4, 4, 1, 2, b), (4, 4, 1, 1, s.bad_fd())):
            r = s.bpf(C.BPF_MAP_CREATE, map_create(T.BPF_MAP_TYPE_HASH, ks, vs, 4, btf_fd=btf_fd,
                                                   btf_key_type_id=kid, btf_value_type_id=vid))
            out.append(r.outcome)
            if r.ok:
                ib = s.buf(104)
                s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(r.ret, 104, ib))
                out.append(struct.unpack_from("<II", s.read(ib, 104), 68))
        return out

    kernels.compare(scenario)


# -- links and raw tracepoints (the attr layer) -----------------------------------------------------------------
def test_link_errors(kernels):
    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0)
        fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        a, _ = prog_load(s, P.BPF_PROG_TYPE_RAW_TRACEPOINT, RET0)
        rt = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        bad, other = s.bad_fd(), s.non_bpf_fd()
        raw_tp = lambda name_ptr, pfd: bytearray(struct.pack("<QI", name_ptr, pfd)).ljust(ATTR_SIZE, b"\0")  # noqa: E731
        return [
            s.bpf(C.BPF_LINK_CREATE, link_create(bad, other, 41)).outcome,
            s.bpf(C.BPF_LINK_CREATE, link_create(other, other, 41)).outcome,
            s.bpf(C.BPF_LINK_CREATE, link_create(fd, other, 41)).outcome,
            s.bpf(C.BPF_LINK_DETACH, bytearray(u32(bad)).ljust(ATTR_SIZE, b"\0")).outcome,
            s.bpf(C.BPF_LINK_DETACH, bytearray(u32(other)).ljust(ATTR_SIZE, b"\0")).outcome,
            s.bpf(C.BPF_LINK_DETACH, bytearray(u32(fd)).ljust(ATTR_SIZE, b"\0")).outcome,
            s.bpf(C.BPF_RAW_TRACEPOINT_OPEN, raw_tp(s.cstr("sys_enter"), bad)).outcome,
            s.bpf(C.BPF_RAW_TRACEPOINT_OPEN, raw_tp(s.cstr("sys_enter"), fd)).outcome,
            s.bpf(C.BPF_RAW_TRACEPOINT_OPEN, raw_tp(BAD_PTR, rt)).outcome,
            s.bpf(C.BPF_RAW_TRACEPOINT_OPEN, raw_tp(s.cstr("no_such_tracepoint_here"), rt)).outcome,
        ]

    kernels.compare(scenario)


def test_enable_stats(kernels):
    def scenario(s: Side):
        r = s.bpf(C.BPF_ENABLE_STATS, bytearray(u32(1)).ljust(ATTR_SIZE, b"\0"))
        return [r.outcome, s.bpf(C.BPF_ENABLE_STATS, bytearray(u32(0)).ljust(ATTR_SIZE, b"\0")).outcome]

    kernels.compare(scenario)


@pytest.mark.parametrize("name_len", [0, 4, 9, 10, 64])
def test_raw_tracepoint_link_info(kernels, name_len):
    """bpf_link_info of a raw tracepoint link: type, prog, name with bpf_copy_to_user's ENOSPC (the info
    is then left as it was), cookie; LINK_DETACH is not supported for it; closing detaches."""
    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_RAW_TRACEPOINT, RET0)
        p = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        r = s.bpf(C.BPF_RAW_TRACEPOINT_OPEN, bytearray(struct.pack("<QI", s.cstr("sys_enter"), p)).ljust(ATTR_SIZE, b"\0"))
        lfd = s.fd(r)
        name = s.buf(64)
        ib = s.buf(bytes(16) + struct.pack("<QI", name if name_len else 0, name_len) + bytes(100))
        ri = s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(lfd, 128, ib))
        raw = bytearray(s.read(ib, 64))
        raw[4:12] = bytes(8)  # link id, prog id
        raw[16:24] = bytes(8)  # our pointer
        return [ri.outcome, ri.u32(4), bytes(raw), s.read(name, 12),
                s.bpf(C.BPF_LINK_DETACH, bytearray(u32(lfd)).ljust(ATTR_SIZE, b"\0")).outcome]

    kernels.compare(scenario)


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_btf_type_checks_and_log(kernels, mutation):
    """BTF_LOAD's per-record checks: the errno and the log (which names the record and the reason)."""
    def scenario(s: Side):
        blob = sample(mutation)
        log = s.buf(1 << 16)
        r = s.bpf(C.BPF_BTF_LOAD, btf_load(s.buf(blob), len(blob), log, 1 << 16, 1))
        text = s.read(log, 1 << 16).split(b"\0")[0].decode()
        return [r.outcome, r.u32(28), text]

    kernels.compare(scenario)


def _tracepoint_event(s: Side) -> int:
    from tinyaya.uapi.perf_event import PerfEventAttr

    try:
        tp = int(s.k.read_file("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id"))
    except OSError:
        pytest.skip("tracefs is not mounted at /sys/kernel/tracing")
    attr = PerfEventAttr(type=2, size=ctypes.sizeof(PerfEventAttr), config=tp)
    fd = s.k.perf_event_open(attr, -1, 0, -1, 0)
    s.fds.append(fd)
    return fd


def test_perf_link_create_info_and_detach(kernels):
    """BPF_LINK_CREATE of a perf link on raw_syscalls:sys_enter: errnos, bpf_link_info, LINK_DETACH."""
    def scenario(s: Side):
        ev = _tracepoint_event(s)
        progs = {}
        for name, ptype in (("tp", P.BPF_PROG_TYPE_TRACEPOINT), ("sf", P.BPF_PROG_TYPE_SOCKET_FILTER),
                            ("kp", P.BPF_PROG_TYPE_KPROBE)):
            a, _ = prog_load(s, ptype, RET0)
            progs[name] = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        m = array(s) if hasattr(maps_mod, "create_map") else s.non_bpf_fd()
        out = [s.bpf(C.BPF_LINK_CREATE, link_create(progs["tp"], ev, 41, flags=1)).outcome,
               s.bpf(C.BPF_LINK_CREATE, link_create(progs["sf"], ev, 41)).outcome,
               s.bpf(C.BPF_LINK_CREATE, link_create(progs["kp"], ev, 41)).outcome,
               s.bpf(C.BPF_LINK_CREATE, link_create(progs["kp"], ev, 0)).outcome,
               s.bpf(C.BPF_LINK_CREATE, link_create(progs["tp"], m, 41)).outcome,
               s.bpf(C.BPF_LINK_CREATE, link_create(progs["tp"], s.bad_fd(), 41)).outcome]
        r = s.bpf(C.BPF_LINK_CREATE, link_create(progs["tp"], ev, 41, cookie=9))
        out.append(r.outcome)
        lfd = r.ret
        out.append(s.bpf(C.BPF_LINK_CREATE, link_create(progs["tp"], ev, 41)).outcome)
        name = s.buf(64)
        ib = s.buf(bytes(24) + struct.pack("<QI", name, 64) + bytes(100))
        ri = s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(lfd, 64, ib))
        raw = bytearray(s.read(ib, 64))
        raw[4:12] = bytes(8)
        raw[24:32] = bytes(8)
        out += [ri.outcome, ri.u32(4), bytes(raw), s.read(name, 12)]
        out.append(s.bpf(C.BPF_LINK_DETACH, bytearray(u32(lfd)).ljust(ATTR_SIZE, b"\0")).outcome)
        s.close(lfd)
        r = s.bpf(C.BPF_LINK_CREATE, link_create(progs["tp"], ev, 41))  # free again once the link is gone
        out.append(r.outcome)
        return out

    kernels.compare(scenario)


@pytest.mark.parametrize("kind", ["map", "prog", "btf", "link"])
@pytest.mark.parametrize("extra", ["len0", "len8", "exact", "zero_tail", "nonzero_tail", "page_plus"])
def test_info_len_rules_for_every_object(kernels, kind, extra):
    """bpf_check_uarg_tail_zero and min(sizeof, info_len) for each kind of object."""
    sizes = {"map": 104, "prog": 232, "btf": 32, "link": 64}

    def scenario(s: Side):
        if kind == "map":
            fd = s.fd(s.bpf(C.BPF_MAP_CREATE, map_create(T.BPF_MAP_TYPE_ARRAY, 4, 4, 1)))
        elif kind == "btf":
            blob = _btf(INT_TYPE, STRINGS)
            fd = s.fd(s.bpf(C.BPF_BTF_LOAD, btf_load(s.buf(blob), len(blob))))
        else:
            a, _ = prog_load(s, P.BPF_PROG_TYPE_RAW_TRACEPOINT, RET0)
            fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
            if kind == "link":
                fd = s.fd(s.bpf(C.BPF_RAW_TRACEPOINT_OPEN,
                                bytearray(struct.pack("<QI", s.cstr("sys_enter"), fd)).ljust(ATTR_SIZE, b"\0")))
        size = sizes[kind]
        n = {"len0": 0, "len8": 8, "exact": size, "zero_tail": size + 8, "nonzero_tail": size + 8,
             "page_plus": 4097}[extra]
        raw = bytearray(n + 8)
        if extra == "nonzero_tail":
            raw[size + 3] = 1
        ib = s.buf(bytes(raw))
        r = s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(fd, n, ib))
        got = bytearray(s.read(ib, min(n, 16)))
        got[4:8] = bytes(min(4, max(0, len(got) - 4)))  # ids differ between kernels (map/prog/link id)
        if kind in ("link", "btf"):
            got[8:16] = bytes(len(got[8:16]))  # prog id of a link, btf id
        return [r.outcome, r.u32(4), bytes(got)]

    kernels.compare(scenario)


def _spin_lock_btf() -> bytes:
    from btfgen import BtfBuilder, int_t

    b = BtfBuilder()
    i = int_t(b)  # 1
    lock = b.t("bpf_spin_lock", 4, vlen=1, st=4, extra=struct.pack("<III", b.s("val"), i, 0))  # 2
    b.t("val", 4, vlen=2, st=8, extra=struct.pack("<III", b.s("lock"), lock, 0) + struct.pack("<III", b.s("v"), i, 32))
    return b.blob()


@pytest.mark.parametrize("map_type,map_flags", [(T.BPF_MAP_TYPE_HASH, 0), (T.BPF_MAP_TYPE_ARRAY, 0),
                                                (T.BPF_MAP_TYPE_HASH, MapFlags.BPF_F_RDONLY_PROG),
                                                (T.BPF_MAP_TYPE_PERCPU_HASH, 0), (T.BPF_MAP_TYPE_LRU_HASH, 0)])
def test_spin_lock_maps(kernels, map_type, map_flags):
    """A bpf_spin_lock in the value (found through BTF): BPF_F_LOCK works, freezing is ENOTSUPP, and the
    types and flags that cannot have one refuse it."""
    def scenario(s: Side):
        blob = _spin_lock_btf()
        b = s.fd(s.bpf(C.BPF_BTF_LOAD, btf_load(s.buf(blob), len(blob))))
        r = s.bpf(C.BPF_MAP_CREATE, map_create(map_type, 4, 8, 4, map_flags, btf_fd=b, btf_key_type_id=1,
                                               btf_value_type_id=3))
        if not r.ok:
            return r.outcome
        fd = r.ret
        key, val = s.buf(u32(1)), s.buf(struct.pack("<II", 0x55, 7))
        out = [s.bpf(C.BPF_MAP_UPDATE_ELEM, elem(fd, key, val, 4)).outcome]
        got = s.buf(8)
        out.append(s.bpf(C.BPF_MAP_LOOKUP_ELEM, elem(fd, key, got, 4)).outcome)
        out.append(s.read(got, 8))
        got2 = s.buf(b"\xee" * 8)
        out.append(s.bpf(C.BPF_MAP_LOOKUP_ELEM, elem(fd, key, got2)).outcome)
        out.append(s.read(got2, 8))
        out.append(s.bpf(C.BPF_MAP_LOOKUP_BATCH, batch(fd, s.buf(64), s.buf(64), 4, out_batch=s.buf(4),
                                                       elem_flags=4)).outcome)
        out.append(s.bpf(C.BPF_MAP_FREEZE, elem(fd)).outcome)
        return out

    kernels.compare(scenario)
