"""Context access rules per program type: each type's ``is_valid_access`` callback.

Sources: kprobe_prog_is_valid_access, tp_prog_is_valid_access, raw_tp_prog_is_valid_access
(bpf_tracing_ctx_access), pe_prog_is_valid_access (kernel/trace/bpf_trace.c); xdp_is_valid_access,
sk_filter_is_valid_access, tc_cls_act_is_valid_access, cg_skb_is_valid_access (net/core/filter.c).
Layouts: ``struct pt_regs`` (x86-64, 21 u64), ``struct bpf_perf_event_data``, ``struct xdp_md`` and
``struct __sk_buff`` from include/uapi/linux/bpf.h.
"""
from __future__ import annotations

from dataclasses import dataclass

from tinyaya.uapi._enums import BpfProgType as P

from .regs import RegType

T = RegType

PT_REGS_SIZE = 21 * 8  # x86-64 struct pt_regs
PERF_MAX_TRACE_SIZE = 8192
MAX_BPF_FUNC_ARGS = 12
XDP_MD_SIZE = 24
SK_BUFF_SIZE = 192  # sizeof(struct __sk_buff)


@dataclass(frozen=True)
class CtxAccess:
    ok: bool
    reg_type: RegType = T.SCALAR_VALUE


NO = CtxAccess(False)
SCALAR = CtxAccess(True)

# struct __sk_buff offsets (uapi bpf.h)
SKB_LEN, SKB_MARK, SKB_PRIORITY, SKB_TC_INDEX = 0, 8, 32, 44
SKB_CB_START, SKB_CB_END = 48, 68
SKB_TC_CLASSID, SKB_DATA, SKB_DATA_END = 72, 76, 80
SKB_FAMILY, SKB_REMOTE_IP4 = 88, 92
SKB_DATA_META, SKB_FLOW_KEYS, SKB_TSTAMP, SKB_WIRE_LEN = 140, 144, 152, 160
SKB_SK, SKB_GSO_SIZE, SKB_TSTAMP_TYPE, SKB_HWTSTAMP = 168, 176, 180, 184
SKB_QUEUE_MAPPING = 12
SKB_NAPI_ID = 84


def _tracing(off: int, size: int, write: bool, limit: int, lo: int = 0) -> CtxAccess:
    if off < lo or off >= limit or write or off % size:
        return NO
    if off + size > limit:
        return NO
    return SCALAR


def _xdp(off: int, size: int, write: bool) -> CtxAccess:
    if write or off < 0 or off >= XDP_MD_SIZE or off % size or size != 4:
        return NO
    if off == 0:
        return CtxAccess(True, T.PTR_TO_PACKET)
    if off == 4:
        return CtxAccess(True, T.PTR_TO_PACKET_END)
    if off == 8:
        return CtxAccess(True, T.PTR_TO_PACKET_META)
    if off == 20:
        return NO  # egress_ifindex: only for BPF_XDP_DEVMAP programs
    return SCALAR


def _skb(prog_type: int, off: int, size: int, write: bool) -> CtxAccess:
    if off < 0 or off >= SK_BUFF_SIZE or off % size:
        return NO
    is_tc = prog_type in (P.BPF_PROG_TYPE_SCHED_CLS, P.BPF_PROG_TYPE_SCHED_ACT)
    is_cg = prog_type == P.BPF_PROG_TYPE_CGROUP_SKB
    ptr_fields = {SKB_DATA: T.PTR_TO_PACKET, SKB_DATA_END: T.PTR_TO_PACKET_END, SKB_DATA_META: T.PTR_TO_PACKET_META}
    if off in ptr_fields or off == SKB_DATA_META:
        if write or size != 4:
            return NO
        if off == SKB_DATA_META and not is_tc:
            return NO
        if not (is_tc or is_cg):
            return NO
        return CtxAccess(True, ptr_fields[off])
    if SKB_FLOW_KEYS <= off < SKB_FLOW_KEYS + 8 or SKB_SK <= off < SKB_SK + 8:
        return NO  # pointer fields need BTF-typed access (flow_keys, sk) that tinyaya does not model
    if off >= SKB_HWTSTAMP or SKB_TSTAMP <= off < SKB_TSTAMP + 8:
        if size != 8:
            return NO
        if write:
            return SCALAR if (off == SKB_TSTAMP and (is_tc or is_cg)) else NO
        return SCALAR
    if SKB_TSTAMP_TYPE <= off < SKB_TSTAMP_TYPE + 4:
        return NO
    if size == 8:
        return NO
    if write:
        writable = list(range(SKB_CB_START, SKB_CB_END))
        if is_tc:
            writable += [SKB_MARK, SKB_TC_INDEX, SKB_PRIORITY, SKB_TC_CLASSID, SKB_QUEUE_MAPPING]
        elif is_cg:
            writable += [SKB_MARK, SKB_PRIORITY]
        if off not in writable or size != 4 and not (SKB_CB_START <= off < SKB_CB_END):
            return NO
        return SCALAR
    if not is_tc and off in (SKB_TC_CLASSID,):
        return NO
    if prog_type == P.BPF_PROG_TYPE_SOCKET_FILTER and off == SKB_NAPI_ID:
        return NO
    if size != 4 and off not in range(SKB_CB_START, SKB_CB_END) and off != SKB_LEN and off >= SKB_FAMILY:
        return NO
    return SCALAR


def ctx_size(prog_type: int) -> int:
    """The ctx size PROG_TEST_RUN and the VM can use (0 if the type has no fixed layout)."""
    sizes: dict[int, int] = {P.BPF_PROG_TYPE_KPROBE: PT_REGS_SIZE, P.BPF_PROG_TYPE_PERF_EVENT: PT_REGS_SIZE + 16,
            P.BPF_PROG_TYPE_XDP: XDP_MD_SIZE, P.BPF_PROG_TYPE_RAW_TRACEPOINT: 8 * MAX_BPF_FUNC_ARGS,
            P.BPF_PROG_TYPE_TRACEPOINT: PERF_MAX_TRACE_SIZE}
    return sizes.get(prog_type, SK_BUFF_SIZE)


def ctx_access(prog_type: int, off: int, size: int, write: bool) -> CtxAccess:
    """is_valid_access(): may a program of ``prog_type`` access ``size`` bytes of its ctx at ``off``?"""
    if prog_type == P.BPF_PROG_TYPE_KPROBE:
        return _tracing(off, size, write, PT_REGS_SIZE)
    if prog_type == P.BPF_PROG_TYPE_TRACEPOINT:
        return _tracing(off, size, write, PERF_MAX_TRACE_SIZE, lo=8)
    if prog_type in (P.BPF_PROG_TYPE_RAW_TRACEPOINT, P.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE):
        return _tracing(off, size, write, 8 * MAX_BPF_FUNC_ARGS)
    if prog_type == P.BPF_PROG_TYPE_PERF_EVENT:
        if off >= PT_REGS_SIZE and (size != 8 and off % 8 == 0 and False):
            return NO
        return _tracing(off, size, write, PT_REGS_SIZE + 16)
    if prog_type == P.BPF_PROG_TYPE_XDP:
        return _xdp(off, size, write)
    if prog_type in (P.BPF_PROG_TYPE_SOCKET_FILTER, P.BPF_PROG_TYPE_SCHED_CLS, P.BPF_PROG_TYPE_SCHED_ACT,
                     P.BPF_PROG_TYPE_CGROUP_SKB):
        return _skb(prog_type, off, size, write)
    if prog_type == P.BPF_PROG_TYPE_SYSCALL:
        # syscall programs read their ctx as plain memory of ctx_size_in bytes (checked at run time)
        return SCALAR if 0 <= off and off + size <= 65536 else NO
    return NO
