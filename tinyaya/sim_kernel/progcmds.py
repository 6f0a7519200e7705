"""The program commands after PROG_LOAD: ids, ``bpf_prog_info``, PROG_TEST_RUN and BPF_ENABLE_STATS.

``prog_get_info`` follows ``bpf_prog_get_info_by_fd`` (kernel/bpf/syscall.c):
user-sized arrays filled up to the caller's counts, the counts written back,
the xlated dump with map references shown as map ids (``bpf_insn_prepare_dump``).
``prog_test_run`` checks the attr, runs ``kernel.vm.test_run`` and copies the
results out as ``bpf_test_finish``/``bpf_ctx_finish`` (and the raw_tp and
syscall variants) do.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..isa.insn import Insn, encode, ld_imm64_value
from ..isa.opcodes import LD_IMM64
from ..uapi.bpf import BpfProgInfo, BpfProgType, InfoAttr, PseudoSrc, TestRunAttr
from .errors import EINVAL, ENOSPC, ENOTSUPP, EPERM, fail
from .mapcmds import check_uarg_tail_zero, get_next_id
from .prog import BPF_FUNCINFO_SIZE, BPF_LINEINFO_SIZE, BpfProg, prog_from_fd, subprog_starts
from .usermem import copy_from_user, copy_to_user

if TYPE_CHECKING:
    from .kernel import SimKernel, UAttr

__all__ = ["prog_get_next_id", "prog_get_fd_by_id", "prog_get_info", "xlated_dump", "prog_test_run",
           "enable_stats", "prog_bind_map", "PROG_INFO_SIZE"]

PT = BpfProgType
TEST_RUN_END = 76  # test.batch_size
PROG_GET_FD_BY_ID_END = 4  # prog_id
ENABLE_STATS_END = 4


def xlated_dump(prog: BpfProg) -> list[Insn]:
    """``bpf_insn_prepare_dump``: map addresses shown as map ids (MAP_FD) or id + offset (MAP_VALUE)."""
    if prog.foreign_dump is not None:
        return list(prog.foreign_dump)
    out = list(prog.xlated or prog.insns)
    for i, ins in enumerate(out):
        if ins.code != LD_IMM64 or i + 1 >= len(out):
            continue
        addr = ld_imm64_value(ins, out[i + 1])
        for m in prog.used_maps:
            if addr == m.region.base:
                out[i] = ins.replace(src=PseudoSrc.BPF_PSEUDO_MAP_FD, imm=m.id)
                out[i + 1] = out[i + 1].replace(imm=0)
                break
            value_addr = getattr(m, "value_addr", None)
            if value_addr is None or m.max_entries != 1:
                continue
            try:
                base = int(value_addr(0))
            except OSError:
                continue
            if base <= addr < base + m.value_size:
                out[i] = ins.replace(src=PseudoSrc.BPF_PSEUDO_MAP_VALUE, imm=m.id)
                out[i + 1] = out[i + 1].replace(imm=addr - base)
                break
    return out


# -- ids and info -------------------------------------------------------------------------------------
def prog_get_next_id(k: SimKernel, ua: UAttr) -> int:
    return get_next_id(k, ua, k.prog_ids)


def prog_get_fd_by_id(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(PROG_GET_FD_BY_ID_END)
    (prog_id,) = struct.unpack_from("<I", ua.raw, 0)
    if not k.capable("CAP_SYS_ADMIN"):
        raise fail(EPERM, "GET_FD_BY_ID needs CAP_SYS_ADMIN")
    prog = k.prog_ids.find(prog_id)
    if prog is None:
        raise fail(2, f"no program with id {prog_id}")  # ENOENT
    return k.fds.install(prog)


#: sizeof(struct bpf_prog_info) on Linux 6.18
PROG_INFO_SIZE = 232


def prog_get_info(k: SimKernel, ua: UAttr, prog: BpfProg, uinfo: int, info_len: int) -> int:
    """``bpf_prog_get_info_by_fd``: user-sized arrays are filled up to what the caller's counts allow."""
    check_uarg_tail_zero(uinfo, PROG_INFO_SIZE, info_len)
    info_len = min(PROG_INFO_SIZE, info_len)
    user = copy_from_user(uinfo, info_len) + bytes(PROG_INFO_SIZE - info_len)
    info: Any = BpfProgInfo.from_buffer_copy(user[:ctypes_sizeof(BpfProgInfo)])
    info.type = prog.prog_type
    info.id = prog.id
    info.load_time = prog.load_time
    info.created_by_uid = prog.created_by_uid
    info.gpl_compatible = int(prog.gpl_compatible)
    info.tag[:] = list(prog.tag)
    info.name = prog.name
    ulen = info.nr_map_ids
    map_ids = [m.id for m in prog.used_maps] if not prog.foreign else prog.foreign_map_ids
    info.nr_map_ids = len(map_ids)
    ulen = min(ulen, info.nr_map_ids)
    if ulen:
        copy_to_user(info.map_ids, b"".join(struct.pack("<I", i) for i in map_ids[:ulen]))
    if (info.nr_func_info or info.func_info_rec_size) and info.func_info_rec_size != BPF_FUNCINFO_SIZE:
        raise fail(EINVAL, "func_info_rec_size")
    if (info.nr_line_info or info.line_info_rec_size) and info.line_info_rec_size != BPF_LINEINFO_SIZE:
        raise fail(EINVAL, "line_info_rec_size")
    if (info.nr_jited_line_info or info.jited_line_info_rec_size) and info.jited_line_info_rec_size != 8:
        raise fail(EINVAL, "jited_line_info_rec_size")
    info.func_info_rec_size = BPF_FUNCINFO_SIZE
    info.line_info_rec_size = BPF_LINEINFO_SIZE
    info.jited_line_info_rec_size = 8
    info.run_time_ns = prog.run_time_ns
    info.run_cnt = prog.run_cnt
    info.recursion_misses = prog.recursion_misses
    info.verified_insns = prog.verified_insns
    if not k.capable("CAP_PERFMON"):
        info.jited_prog_len = info.xlated_prog_len = 0
        info.nr_jited_ksyms = info.nr_jited_func_lens = 0
        info.nr_func_info = info.nr_line_info = info.nr_jited_line_info = 0
    else:
        ulen = info.xlated_prog_len
        dump = encode(xlated_dump(prog))
        info.xlated_prog_len = len(dump)
        if info.xlated_prog_len and ulen:
            copy_to_user(info.xlated_prog_insns, dump[:min(ulen, len(dump))])
        # no JIT image: the simulated kernel interprets; like Linux it still reports one symbol per function
        info.jited_prog_len = 0
        nfuncs = len(subprog_starts(prog.insns))
        ulen = info.nr_jited_ksyms
        info.nr_jited_ksyms = nfuncs
        if ulen:
            base = 0xFFFF_FFFF_C000_0000 + (prog.id << 16)
            copy_to_user(info.jited_ksyms, b"".join(struct.pack("<Q", base + 0x100 * j)
                                                    for j in range(min(ulen, nfuncs))))
        ulen = info.nr_jited_func_lens
        info.nr_jited_func_lens = nfuncs
        if ulen:
            copy_to_user(info.jited_func_lens, bytes(4 * min(ulen, nfuncs)))
        if prog.btf is not None:
            info.btf_id = prog.btf.id
        ulen = info.nr_func_info
        info.nr_func_info = len(prog.func_info) // max(prog.func_info_rec_size, 1) if prog.func_info else 0
        if info.nr_func_info and ulen:
            n = min(ulen, info.nr_func_info)
            recs = [prog.func_info[j * prog.func_info_rec_size:j * prog.func_info_rec_size + 8] for j in range(n)]
            copy_to_user(info.func_info, b"".join(recs))
        ulen = info.nr_line_info
        info.nr_line_info = len(prog.line_info) // max(prog.line_info_rec_size, 1) if prog.line_info else 0
        if info.nr_line_info and ulen:
            n = min(ulen, info.nr_line_info)
            rs = prog.line_info_rec_size
            copy_to_user(info.line_info, b"".join(prog.line_info[j * rs:j * rs + 16] for j in range(n)))
        info.nr_jited_line_info = 0
        ulen = info.nr_prog_tags
        info.nr_prog_tags = nfuncs
        if ulen:
            copy_to_user(info.prog_tags, prog.tag * min(ulen, nfuncs))
    out = bytes(info) + bytes(PROG_INFO_SIZE - ctypes_sizeof(BpfProgInfo))
    copy_to_user(uinfo, out[:info_len])
    ua.put_u32(InfoAttr.info_len.offset, info_len)
    return 0


def ctypes_sizeof(cls: Any) -> int:
    import ctypes

    return ctypes.sizeof(cls)


# -- PROG_TEST_RUN ------------------------------------------------------------------------------------
_MAX_TEST_DATA = 1 << 24


def prog_test_run(k: SimKernel, ua: UAttr) -> int:
    """``bpf_prog_test_run``: attr checks here, the run in ``kernel.vm.test_run``, results copied back
    as ``bpf_test_finish``/``bpf_ctx_finish`` do (ENOSPC when data_out is too small: truncated data,
    the full size in data_size_out)."""
    ua.check_unused(TEST_RUN_END)
    a: Any = ua.view(TestRunAttr)
    if bool(a.ctx_size_in) != bool(a.ctx_in) or bool(a.ctx_size_out) != bool(a.ctx_out):
        raise fail(EINVAL, "ctx_in/ctx_out and their sizes must be given together")
    prog = prog_from_fd(k, a.prog_fd)
    if prog.foreign:
        raise fail(ENOTSUPP, "a program opened from another process's pin cannot run here")
    if a.data_size_in > _MAX_TEST_DATA or a.ctx_size_in > _MAX_TEST_DATA:
        raise fail(EINVAL, "test data too large")
    if a.duration and prog.prog_type in (PT.BPF_PROG_TYPE_RAW_TRACEPOINT, PT.BPF_PROG_TYPE_SYSCALL):
        raise fail(EINVAL, "duration is an output of this test run")  # bpf_prog_test_run_raw_tp/_syscall
    data_in = copy_from_user(a.data_in, a.data_size_in) if a.data_in else b""
    ctx_in = copy_from_user(a.ctx_in, a.ctx_size_in) if a.ctx_in else None
    try:
        vm = k.vm
    except ImportError:
        raise fail(ENOTSUPP, "no execution engine")
    res = vm.test_run(prog, data_in, ctx_in, int(a.repeat), int(a.flags), int(a.cpu), int(a.data_size_out),
                      int(a.ctx_size_out), batch_size=int(a.batch_size), want_data_out=bool(a.data_out),
                      want_ctx_out=bool(a.ctx_out))
    retval = int(res.retval) & 0xFFFFFFFF
    runs = 1 if prog.prog_type in (PT.BPF_PROG_TYPE_RAW_TRACEPOINT, PT.BPF_PROG_TYPE_SYSCALL) else max(1, a.repeat)
    k.account_run(prog, runs, max(1, int(getattr(res, "duration", 0))) * runs)
    if prog.prog_type in (PT.BPF_PROG_TYPE_RAW_TRACEPOINT, PT.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
                          PT.BPF_PROG_TYPE_TRACING):
        ua.put_u32(TestRunAttr.retval.offset, retval)  # bpf_prog_test_run_raw_tp: retval only
        return 0
    if prog.prog_type == PT.BPF_PROG_TYPE_SYSCALL or getattr(res, "ctx_to_ctx_in", False):
        ua.put_u32(TestRunAttr.retval.offset, retval)  # bpf_prog_test_run_syscall: ctx back into ctx_in
        if res.ctx_out is not None and a.ctx_in:
            copy_to_user(a.ctx_in, bytes(res.ctx_out)[:a.ctx_size_in])
        return 0
    # bpf_test_finish: the (truncated) data, then the full size, retval and duration; ENOSPC if truncated
    data_out = bytes(res.data_out or b"")
    full = int(getattr(res, "data_size_out", len(data_out)))
    if a.data_out:
        copy_to_user(a.data_out, data_out[:a.data_size_out] if a.data_size_out else data_out)
    ua.put_u32(TestRunAttr.data_size_out.offset, full)
    ua.put_u32(TestRunAttr.retval.offset, retval)
    ua.put_u32(TestRunAttr.duration.offset, int(getattr(res, "duration", 0)))
    if a.data_size_out and full > a.data_size_out:
        raise fail(ENOSPC, "data_out too small")
    # bpf_ctx_finish
    if res.ctx_out is not None and a.ctx_out:
        ctx_out = bytes(res.ctx_out)
        ctx_full = int(getattr(res, "ctx_size_out", len(ctx_out)))
        copy_to_user(a.ctx_out, ctx_out[:a.ctx_size_out])
        ua.put_u32(TestRunAttr.ctx_size_out.offset, ctx_full)
        if ctx_full > a.ctx_size_out:
            raise fail(ENOSPC, "ctx_out too small")
    return 0


# -- BPF_ENABLE_STATS ---------------------------------------------------------------------------------
class StatsFile:
    """The fd BPF_ENABLE_STATS returns: run stats are on while any such fd is open."""

    def __init__(self, k: SimKernel) -> None:
        self.kernel = k
        k._stats_users += 1
        k.set_bpf_stats(True)

    def release(self) -> None:
        k = self.kernel
        k._stats_users -= 1
        if k._stats_users == 0:
            k.set_bpf_stats(False)


def enable_stats(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(ENABLE_STATS_END)
    (stype,) = struct.unpack_from("<I", ua.raw, 0)
    if not k.capable("CAP_SYS_ADMIN"):
        raise fail(EPERM, "BPF_ENABLE_STATS needs CAP_SYS_ADMIN")
    if stype != 0:
        raise fail(EINVAL, "unknown stats type")
    return k.fds.install(StatsFile(k))



# -- BPF_PROG_BIND_MAP ----------------------------------------------------------------------------------
PROG_BIND_MAP_END = 12  # prog_bind_map.flags


def prog_bind_map(k: SimKernel, ua: UAttr) -> int:
    """``bpf_prog_bind_map``: add a map to the program's used maps (it then lives as long as the program)."""
    from .mapcmds import map_from_fd

    ua.check_unused(PROG_BIND_MAP_END)
    prog_fd, map_fd, flags = struct.unpack_from("<III", ua.raw, 0)
    if flags:
        raise fail(EINVAL, "prog_bind_map flags")
    prog = prog_from_fd(k, prog_fd)
    m, _ = map_from_fd(k, map_fd)
    if not any(u is m for u in prog.used_maps):
        k.obj_get(m)
        prog.used_maps.append(m)
    return 0
