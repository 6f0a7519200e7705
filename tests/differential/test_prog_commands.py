"""Differential tests of PROG_LOAD (attr checks, map references, fd_array, log, func/line info),
bpf_prog_info and PROG_TEST_RUN's attr layer and copy-out."""
from __future__ import annotations

import re
import struct

import pytest
from diffharness import (
    ATTR_SIZE,
    RET0,
    Side,
    btf_load,
    get_id,
    info,
    insn,
    ld_map_fd,
    map_create,
    prog_load,
    run_attr,
    u32,
)

from tinyaya.uapi.bpf import BpfCmd as C
from tinyaya.uapi.bpf import BpfMapType as T
from tinyaya.uapi.bpf import BpfProgInfo as PI
from tinyaya.uapi.bpf import BpfProgType as P
from tinyaya.uapi.bpf import ProgLoadAttr

maps_mod = pytest.importorskip("tinyaya.sim_kernel.maps")
needs_maps = pytest.mark.skipif(not hasattr(maps_mod, "create_map"), reason="sim maps (B2) not there yet")
BAD_PTR = 0x10  # a user address that is never mapped


def array(s: Side, value_size: int = 8, max_entries: int = 4, flags: int = 0) -> int:
    return s.fd(s.bpf(C.BPF_MAP_CREATE, map_create(T.BPF_MAP_TYPE_ARRAY, 4, value_size, max_entries, flags)))


def hashmap(s: Side, max_entries: int = 8, flags: int = 0) -> int:
    return s.fd(s.bpf(C.BPF_MAP_CREATE, map_create(T.BPF_MAP_TYPE_HASH, 4, 8, max_entries, flags)))


# -- PROG_LOAD --------------------------------------------------------------------------------------------
def _prog_info(s: Side, fd: int, map_ids: int = 4) -> list:
    ids, xl = s.buf(4 * map_ids), s.buf(8 * 64)
    raw = bytearray(232)
    struct.pack_into("<I", raw, 20, 8 * 64)  # xlated_prog_len
    struct.pack_into("<Q", raw, 32, xl)  # xlated_prog_insns
    struct.pack_into("<I", raw, 52, map_ids)  # nr_map_ids
    struct.pack_into("<Q", raw, 56, ids)  # map_ids
    buf = s.buf(bytes(raw))
    r = s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(fd, 232, buf))
    out = s.read(buf, 232)
    typ, _id = struct.unpack_from("<II", out, 0)
    tag = out[8:16]
    xlen = struct.unpack_from("<I", out, 20)[0]
    nr_map_ids = struct.unpack_from("<I", out, 52)[0]
    name = out[64:80]
    gpl = struct.unpack_from("<I", out, 84)[0]
    return [r.outcome, r.u32(4), typ, tag.hex(), xlen, nr_map_ids, name, gpl]


@pytest.mark.parametrize("license_", [b"GPL", b"Dual BSD/GPL", b"MIT", b"", b"GPL v2", b"Proprietary"])
def test_prog_load_and_info(kernels, license_):
    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0, license=license_, name=b"ret0")
        fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        return _prog_info(s, fd)

    kernels.compare(scenario)


@pytest.mark.parametrize("case", ["insn_cnt0", "bad_insns", "bad_license", "type0", "type999", "bad_name",
                                  "name16", "flags", "log_no_level", "log_level_16", "log_no_buf",
                                  "log_bad_buf", "too_many"])
def test_prog_load_attr_errors(kernels, case):
    def scenario(s: Side):
        a, log = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0, log_level=1, log_size=4096)
        f = ProgLoadAttr
        if case == "insn_cnt0":
            struct.pack_into("<I", a, f.insn_cnt.offset, 0)
        elif case == "bad_insns":
            struct.pack_into("<Q", a, f.insns.offset, BAD_PTR)
        elif case == "bad_license":
            struct.pack_into("<Q", a, f.license.offset, BAD_PTR)
        elif case == "type0":
            struct.pack_into("<I", a, f.prog_type.offset, 0)
        elif case == "type999":
            struct.pack_into("<I", a, f.prog_type.offset, 999)
        elif case == "bad_name":
            a[f.prog_name.offset:f.prog_name.offset + 4] = b"a-b\0"
        elif case == "name16":
            a[f.prog_name.offset:f.prog_name.offset + 16] = b"x" * 16
        elif case == "flags":
            struct.pack_into("<I", a, f.prog_flags.offset, 1 << 12)
        elif case == "log_no_level":
            struct.pack_into("<I", a, f.log_level.offset, 0)
        elif case == "log_level_16":
            struct.pack_into("<I", a, f.log_level.offset, 16)
        elif case == "log_no_buf":
            struct.pack_into("<Q", a, f.log_buf.offset, 0)
        elif case == "log_bad_buf":
            struct.pack_into("<Q", a, f.log_buf.offset, BAD_PTR)
        elif case == "too_many":
            struct.pack_into("<I", a, f.insn_cnt.offset, 1_000_001)
        r = s.bpf(C.BPF_PROG_LOAD, a)
        return r.outcome

    kernels.compare(scenario)


@needs_maps
def test_prog_load_map_references(kernels):
    """resolve_pseudo_ldimm64: errnos and the log line for bad map references; map ids in prog info."""
    def scenario(s: Side):
        m1, m2 = array(s, max_entries=1), hashmap(s)
        out = []
        body = ld_map_fd(1, m1) + ld_map_fd(2, m2) + ld_map_fd(3, m1) + RET0
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, body)
        fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        out.append(_prog_info(s, fd)[2:6])
        bad, other = s.bad_fd(), s.non_bpf_fd()
        for prog in (ld_map_fd(1, bad) + RET0, ld_map_fd(1, other) + RET0, ld_map_fd(1, m1, src=9) + RET0,
                     ld_map_fd(1, m1, src=5) + RET0, ld_map_fd(1, m1, imm2=1) + RET0,
                     insn(0x18, 1, 1, 0, m1) + RET0, ld_map_fd(1, m1, src=2, imm2=8) + RET0,
                     ld_map_fd(1, m1, src=2, imm2=4) + RET0, ld_map_fd(1, m2, src=2) + RET0,
                     ld_map_fd(1, array(s, max_entries=4), src=2) + RET0):
            a, log = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, prog, log_level=1, log_size=65536)
            r = s.bpf(C.BPF_PROG_LOAD, a)
            text = s.read(log, 65536).split(b"\0")[0].decode()
            key_lines = [re.sub(r"fd \d+", "fd N", ln) for ln in text.splitlines()
                         if "bpf_map" in ln or "ld_imm64" in ln or "fd_idx" in ln or "direct value" in ln
                         or "map value" in ln or "processed" in ln]
            out.append((r.outcome, key_lines[:1]))
        return out

    kernels.compare(scenario)


@needs_maps
def test_prog_load_fd_array(kernels):
    def scenario(s: Side):
        m1 = array(s, max_entries=1)
        fds = s.buf(u32(s.bad_fd()) + u32(m1))
        out = []
        for idx in (1, 0):
            a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, ld_map_fd(1, idx, src=5) + RET0, fd_array=fds)
            r = s.bpf(C.BPF_PROG_LOAD, a)
            out.append(r.outcome)
            if r.ok:
                out.append(_prog_info(s, r.ret)[2:6])
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, ld_map_fd(1, 0, src=5) + RET0, fd_array=BAD_PTR)
        out.append(s.bpf(C.BPF_PROG_LOAD, a).outcome)
        return out

    kernels.compare(scenario)


def test_prog_log_truncation(kernels):
    """The rotating log keeps the end, BPF_LOG_FIXED the start; both ENOSPC; log_true_size is the full size."""
    pytest.importorskip("tinyaya.sim_kernel.verifier").__dict__.get("verify") or pytest.skip("no verifier yet")

    def scenario(s: Side):
        out = []
        for level, size in ((1, 8), (1 | 8, 8), (1, 4096)):
            a, log = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, insn(0x95), log_level=level, log_size=size)
            r = s.bpf(C.BPF_PROG_LOAD, a)
            out.append((r.outcome, r.u32(ProgLoadAttr.log_true_size.offset), s.read(log, min(size, 8))))
        return out

    kernels.compare(scenario)


# -- PROG_TEST_RUN (the attr layer) ---------------------------------------------------------------------------
def test_test_run_attr_errors(kernels):
    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0)
        fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        out = [s.bpf(C.BPF_PROG_TEST_RUN, run_attr(s.bad_fd())).outcome,
               s.bpf(C.BPF_PROG_TEST_RUN, run_attr(s.non_bpf_fd())).outcome,
               s.bpf(C.BPF_PROG_TEST_RUN, run_attr(fd, ctx_size_in=4)).outcome,
               s.bpf(C.BPF_PROG_TEST_RUN, run_attr(fd, ctx_in=s.buf(4))).outcome,
               s.bpf(C.BPF_PROG_TEST_RUN, run_attr(fd, ctx_size_out=4)).outcome,
               s.bpf(C.BPF_PROG_TEST_RUN, run_attr(fd, ctx_out=s.buf(4))).outcome]
        a = run_attr(fd)
        a[80] = 1
        out.append(s.bpf(C.BPF_PROG_TEST_RUN, a).outcome)
        return out

    kernels.compare(scenario)


@pytest.mark.parametrize("data_size_out", [0, 4, 14, 64, 200])
def test_test_run_socket_filter_data_out(kernels, data_size_out):
    """bpf_test_finish: truncated data with ENOSPC, the full size in data_size_out, retval written."""
    pytest.importorskip("tinyaya.sim_kernel.vm")

    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, insn(0xB7, 0, 0, 0, 7) + insn(0x95))
        fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        pkt = bytes(range(64))
        out = s.buf(256)
        r = s.bpf(C.BPF_PROG_TEST_RUN, run_attr(fd, data_in=s.buf(pkt), data_size_in=len(pkt),
                                                data_out=out, data_size_out=data_size_out, repeat=1))
        return [r.outcome, r.u32(4), r.u32(12), s.read(out, min(max(data_size_out, 64), 256))]

    kernels.compare(scenario)


@pytest.mark.parametrize("duration", [0, 0x55])
def test_test_run_raw_tracepoint_writes_only_retval(kernels, duration):
    pytest.importorskip("tinyaya.sim_kernel.vm")

    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_RAW_TRACEPOINT, insn(0xB7, 0, 0, 0, 3) + insn(0x95))
        fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        attr = run_attr(fd, ctx_in=s.buf(16), ctx_size_in=16, duration=duration, data_size_out=0x77)
        r = s.bpf(C.BPF_PROG_TEST_RUN, attr)
        return [r.outcome, r.u32(4), r.u32(36), r.u32(12)]

    kernels.compare(scenario)


@needs_maps
@pytest.mark.parametrize("nr_map_ids", [0, 1, 2, 5])
def test_prog_info_arrays_and_xlated_dump(kernels, nr_map_ids):
    """bpf_prog_get_info_by_fd: user-sized arrays, counts written back, the xlated dump with map ids."""
    def map_id(s: Side, fd: int) -> int:
        ib = s.buf(104)
        s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(fd, 104, ib))
        return struct.unpack_from("<I", s.read(ib + 4, 4))[0]

    def scenario(s: Side):
        m1, m2 = array(s, max_entries=1), hashmap(s)
        ids = {map_id(s, m1): "m1", map_id(s, m2): "m2"}
        body = ld_map_fd(1, m2) + ld_map_fd(2, m1, src=2, imm2=4) + insn(0xB7, 3, 0, 0, 9) + RET0
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, body, name=b"info")
        fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        idbuf, xl, tags = s.buf(4 * 8), s.buf(8 * 64), s.buf(8 * 4)
        raw = bytearray(232)
        struct.pack_into("<I", raw, 20, 8 * 64)
        struct.pack_into("<Q", raw, 32, xl)
        struct.pack_into("<I", raw, 52, nr_map_ids)
        struct.pack_into("<Q", raw, 56, idbuf)
        struct.pack_into("<I", raw, PI.nr_prog_tags.offset, 1)
        struct.pack_into("<Q", raw, PI.prog_tags.offset, tags)
        ib = s.buf(bytes(raw))
        r = s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(fd, 232, ib))
        out = s.read(ib, 232)
        xlen = struct.unpack_from("<I", out, 20)[0]
        dump = s.read(xl, xlen)
        insns = [list(struct.unpack_from("<BBhi", dump, 8 * j)) for j in range(xlen // 8)]
        for j in (0, 2):  # ld_imm64 map references show the map id
            insns[j][3] = ids.get(insns[j][3], insns[j][3])
        got_ids = [ids.get(x, x) for x in struct.unpack_from(f"<{min(nr_map_ids, 2)}I", s.read(idbuf, 8))]
        u32_at = lambda f: struct.unpack_from("<I", out, f.offset)[0]  # noqa: E731
        rec_sizes = [u32_at(f) for f in (PI.func_info_rec_size, PI.line_info_rec_size, PI.jited_line_info_rec_size)]
        counts = [u32_at(f) for f in (PI.nr_func_info, PI.nr_line_info, PI.nr_jited_line_info, PI.nr_prog_tags,
                                      PI.nr_jited_ksyms, PI.nr_jited_func_lens, PI.btf_id)]
        return [r.outcome, xlen, insns, u32_at(PI.nr_map_ids), sorted(got_ids), rec_sizes, counts,
                s.read(tags, 8) == out[8:16]]

    kernels.compare(scenario)


@pytest.mark.parametrize("field,value", [("func_info_rec_size", 4), ("func_info_rec_size", 8),
                                         ("line_info_rec_size", 12), ("line_info_rec_size", 16),
                                         ("jited_line_info_rec_size", 4), ("nr_func_info", 1),
                                         ("nr_line_info", 1), ("nr_jited_line_info", 1)])
def test_prog_info_rec_size_rules(kernels, field, value):
    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0)
        fd = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        raw = bytearray(232)
        struct.pack_into("<I", raw, getattr(PI, field).offset, value)
        ib = s.buf(bytes(raw))
        r = s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(fd, 232, ib))
        return r.outcome

    kernels.compare(scenario)


def _func_btf() -> tuple[bytes, int, int]:
    from btfgen import BtfBuilder, int_t

    b = BtfBuilder()
    i = int_t(b)
    fp = b.t("", 13, vlen=0, st=i)
    f = b.t("main_fn", 12, vlen=1, st=fp)
    b.s("int main_fn(void) { return 0; }")
    b.s("prog.c")
    return b.blob(), i, f


FUNC_INFO_CASES = {
    "ok": ([(0, "f")], 8, 1), "rec_size_4": ([(0, "f")], 4, 1), "rec_size_12_zero_tail": ([(0, "f", 0)], 12, 1),
    "rec_size_12_tail": ([(0, "f", 1)], 12, 1), "not_a_func": ([(0, "i")], 8, 1), "first_off_1": ([(1, "f")], 8, 1),
    "too_many": ([(0, "f"), (1, "f")], 8, 2), "no_such_type": ([(0, 99)], 8, 1), "bad_btf_fd": ([(0, "f")], 8, 1),
}


@pytest.mark.parametrize("case", list(FUNC_INFO_CASES))
def test_prog_load_func_info(kernels, case):
    def scenario(s: Side):
        blob, i, f = _func_btf()
        bfd = s.fd(s.bpf(C.BPF_BTF_LOAD, btf_load(s.buf(blob), len(blob))))
        recs, rs, cnt = FUNC_INFO_CASES[case]
        ids = {"f": f, "i": i}
        data = b"".join(struct.pack("<" + "I" * len(r), *[ids.get(x, x) for x in r]) for r in recs)
        a, log = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0, log_level=1, log_size=4096,
                           prog_btf_fd=s.non_bpf_fd() if case == "bad_btf_fd" else bfd,
                           func_info_rec_size=rs, func_info=s.buf(data), func_info_cnt=cnt)
        r = s.bpf(C.BPF_PROG_LOAD, a)
        out = [r.outcome, r.u32(ProgLoadAttr.func_info_rec_size.offset), s.read(log, 4096).split(b"\0")[0]]
        if r.ok:
            fi = s.buf(64)
            raw = bytearray(232)
            struct.pack_into("<IQI", raw, PI.func_info_rec_size.offset, 8, fi, 4)
            ib = s.buf(bytes(raw))
            s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(r.ret, 232, ib))
            got = s.read(ib, 232)
            out += [struct.unpack_from("<I", got, PI.nr_func_info.offset)[0], s.read(fi, 8),
                    struct.unpack_from("<I", got, PI.btf_id.offset)[0] != 0]
        return out

    kernels.compare(scenario)


LINE_INFO_CASES = {
    "ok": [(0, 1, 8, 0)], "two": [(0, 1, 8, 0), (1, 1, 8, 5)], "not_first": [(1, 1, 8, 0)],
    "backwards": [(1, 1, 8, 0), (0, 1, 8, 0)], "past_end": [(0, 1, 8, 0), (2, 1, 8, 0)],
    "bad_name": [(0, 1, 5000, 0)],
}


@pytest.mark.parametrize("case", list(LINE_INFO_CASES))
def test_prog_load_line_info(kernels, case):
    def scenario(s: Side):
        blob, _i, f = _func_btf()
        bfd = s.fd(s.bpf(C.BPF_BTF_LOAD, btf_load(s.buf(blob), len(blob))))
        recs = LINE_INFO_CASES[case]
        data = b"".join(struct.pack("<IIII", *r) for r in recs)
        a, log = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0, log_level=1, log_size=4096, prog_btf_fd=bfd,
                           func_info_rec_size=8, func_info=s.buf(struct.pack("<II", 0, f)), func_info_cnt=1,
                           line_info_rec_size=16, line_info=s.buf(data), line_info_cnt=len(recs))
        r = s.bpf(C.BPF_PROG_LOAD, a)
        out = [r.outcome, s.read(log, 4096).split(b"\0")[0]]
        if r.ok:
            li = s.buf(64)
            raw = bytearray(232)
            struct.pack_into("<I", raw, PI.nr_line_info.offset, 4)
            struct.pack_into("<Q", raw, PI.line_info.offset, li)
            struct.pack_into("<I", raw, PI.line_info_rec_size.offset, 16)
            ib = s.buf(bytes(raw))
            s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(r.ret, 232, ib))
            got = s.read(ib, 232)
            n = struct.unpack_from("<I", got, PI.nr_line_info.offset)[0]
            out += [n, s.read(li, 16 * n)]
        return out

    kernels.compare(scenario)


@pytest.mark.parametrize("prog_type", range(0, 34))
def test_prog_types_and_sleepable(kernels, prog_type):
    """Every program type with `r0 = 0; exit`, with and without BPF_F_SLEEPABLE: the attach-type fixups
    and checks of bpf_prog_load and check_attach_btf_id (errno and the log's first line)."""
    def scenario(s: Side):
        out = []
        for flags in (0, 0x10):
            a, log = prog_load(s, prog_type, RET0, log_level=1, log_size=4096, prog_flags=flags)
            r = s.bpf(C.BPF_PROG_LOAD, a)
            out.append((r.outcome, s.read(log, 4096).split(b"\0")[0].decode().splitlines()[:1]))
        return out

    kernels.compare(scenario)


@needs_maps
def test_prog_bind_map(kernels):
    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0)
        p = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        m = array(s)
        bind = lambda pf, mf, fl=0: bytearray(struct.pack("<III", pf, mf, fl)).ljust(ATTR_SIZE, b"\0")  # noqa: E731
        out = [s.bpf(C.BPF_PROG_BIND_MAP, bind(p, m, 1)).outcome,
               s.bpf(C.BPF_PROG_BIND_MAP, bind(s.bad_fd(), m)).outcome,
               s.bpf(C.BPF_PROG_BIND_MAP, bind(p, s.bad_fd())).outcome,
               s.bpf(C.BPF_PROG_BIND_MAP, bind(m, p)).outcome,
               s.bpf(C.BPF_PROG_BIND_MAP, bind(p, m)).outcome,
               s.bpf(C.BPF_PROG_BIND_MAP, bind(p, m)).outcome]
        out.append(_prog_info(s, p)[5])  # nr_map_ids
        return out

    kernels.compare(scenario)


def test_run_statistics_only_while_enabled(kernels):
    """run_cnt/run_time_ns count runs only while BPF_ENABLE_STATS is held (bpf_stats_enabled_key)."""
    pytest.importorskip("tinyaya.sim_kernel.vm")
    if kernels.linux.read_file("/proc/sys/kernel/bpf_stats_enabled").strip() != b"0":
        pytest.skip("kernel.bpf_stats_enabled is on for the whole host")

    def scenario(s: Side):
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0)
        p = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        pkt = s.buf(bytes(64))

        def run_and_count(repeat: int) -> tuple[str, int, bool]:
            r = s.bpf(C.BPF_PROG_TEST_RUN, run_attr(p, data_in=pkt, data_size_in=64, repeat=repeat))
            ib = s.buf(232)
            s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(p, 232, ib))
            raw = s.read(ib, 232)
            return (r.outcome, struct.unpack_from("<Q", raw, PI.run_cnt.offset)[0],
                    struct.unpack_from("<Q", raw, PI.run_time_ns.offset)[0] > 0)

        out = [run_and_count(3)]
        st = s.fd(s.bpf(C.BPF_ENABLE_STATS, bytearray(4).ljust(ATTR_SIZE, b"\0")))
        out += [run_and_count(3), run_and_count(0)]
        s.close(st)
        out.append(run_and_count(2))
        return out

    kernels.compare(scenario)


@needs_maps
@pytest.mark.parametrize("case", ["maps", "map_and_btf", "bad_fd", "not_bpf", "prog_fd", "bad_ptr", "dup"])
def test_prog_load_fd_array_cnt(kernels, case):
    """fd_array_cnt (Linux 6.14+): every map in fd_array is bound to the program, used or not."""
    def scenario(s: Side):
        m1, m2 = array(s, max_entries=1), hashmap(s)
        blob = bytes.fromhex("9feb010018000000000000001000000010000000050000000100000000000001"
                             "040000002000000100696e7400")
        b = s.fd(s.bpf(C.BPF_BTF_LOAD, btf_load(s.buf(blob), len(blob))))
        a0, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0)
        other_prog = s.fd(s.bpf(C.BPF_PROG_LOAD, a0))
        fds = {"maps": [m1, m2], "map_and_btf": [m1, b], "bad_fd": [m1, s.bad_fd()],
               "not_bpf": [s.non_bpf_fd()], "prog_fd": [other_prog], "bad_ptr": [m1], "dup": [m1, m1]}[case]
        arr = BAD_PTR if case == "bad_ptr" else s.buf(b"".join(u32(f) for f in fds))
        a, log = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, RET0, log_level=1, log_size=4096, fd_array=arr)
        struct.pack_into("<I", a, 148, len(fds))  # fd_array_cnt
        r = s.bpf(C.BPF_PROG_LOAD, a)
        text = re.sub(r"fd \d+", "fd N", s.read(log, 4096).split(b"\0")[0].decode())
        out = [r.outcome, text.splitlines()[:1]]
        if r.ok:
            out.append(_prog_info(s, r.ret)[5])  # nr_map_ids
        return out

    kernels.compare(scenario)


@needs_maps
def test_object_lifetimes_by_id(kernels):
    """Which references keep an object's id alive (only the checks Linux answers synchronously: a used
    map lives while its program does, an object without references loses its id at once)."""
    def ident(s: Side, fd: int, size: int) -> int:
        ib = s.buf(size)
        s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(fd, size, ib))
        return struct.unpack_from("<I", s.read(ib + 4, 4))[0]

    def find(s: Side, cmd: int, oid: int) -> str:
        r = s.bpf(cmd, get_id(oid))
        if r.ok:
            s.close(r.ret)
        return r.outcome

    def scenario(s: Side):
        m = array(s, max_entries=1)
        mid = ident(s, m, 104)
        a, _ = prog_load(s, P.BPF_PROG_TYPE_SOCKET_FILTER, ld_map_fd(1, m) + RET0)
        p = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
        pid = ident(s, p, 232)
        out = [find(s, C.BPF_MAP_GET_FD_BY_ID, mid)]
        s.close(m)
        out.append(find(s, C.BPF_MAP_GET_FD_BY_ID, mid))  # the program holds it
        p2 = s.fd(s.bpf(C.BPF_PROG_GET_FD_BY_ID, get_id(pid)))
        s.close(p)
        out.append(find(s, C.BPF_PROG_GET_FD_BY_ID, pid))  # p2 holds it
        s.close(p2)
        out.append(find(s, C.BPF_PROG_GET_FD_BY_ID, pid))  # gone
        lone = array(s)
        lid = ident(s, lone, 104)
        s.close(lone)
        out.append(find(s, C.BPF_MAP_GET_FD_BY_ID, lid))
        return out

    kernels.compare(scenario)
