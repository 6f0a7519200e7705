"""BPF_PROG_TEST_RUN, per program type, as net/bpf/test_run.c does it.

* socket_filter, sched_cls, sched_act: ``bpf_prog_test_run_skb``: data_in is an Ethernet frame
  (ETH_HLEN <= size <= PAGE_SIZE - NET_SKB_PAD - shinfo), ctx_in/out a ``struct __sk_buff`` of
  which only mark, priority, ifindex, cb, tstamp, wire_len, gso_segs, gso_size and hwtstamp may be
  set. A socket filter sees the packet after the Ethernet header and gets it back with that header
  zeroed (``memset(__skb_push(skb, hh_len), 0, hh_len)``).
* xdp: ``bpf_prog_test_run_xdp``: ``struct xdp_md`` in/out, metadata from ``ctx_in.data``.
* raw_tracepoint: ``bpf_prog_test_run_raw_tp``: ctx_in is the u64 argument array (at most 12).
* syscall: ``bpf_prog_test_run_syscall``: ctx_in is copied in and back out (to ctx_in's buffer:
  the result's ``ctx_out``).
* kprobe, tracepoint, perf_event and the rest have no ``test_run`` op: -ENOTSUPP (524), as
  ``bpf_prog_test_run`` returns. Tests and benchmarks use ``Vm.run_with_ctx`` for kprobes.

``TestRunResult`` holds the whole outputs; ``err`` is ENOSPC when a non-zero size_out is too
small: Linux still copies the truncated data, retval, duration and the full sizes out before
failing, and so must the caller.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...uapi.bpf import BpfProgType
from ..errors import E2BIG, EINVAL, ENODEV, ENOMEM, ENOSPC, ENOTSUPP, fail
from .contexts import (
    NET_SKB_PAD,
    PAGE_SIZE,
    SK_BUFF_SIZE,
    SKB_CB,
    SKB_DATA_META,
    SKB_FAMILY,
    SKB_GSO_SEGS,
    SKB_GSO_SIZE,
    SKB_HWTSTAMP,
    SKB_IFINDEX,
    SKB_INGRESS_IFINDEX,
    SKB_LEN,
    SKB_LOCAL_IP4,
    SKB_MARK,
    SKB_PKT_TYPE,
    SKB_PRIORITY,
    SKB_PROTOCOL,
    SKB_REMOTE_IP4,
    SKB_SHINFO_SIZE,
    SKB_TSTAMP,
    SKB_WIRE_LEN,
    XDP_DATA,
    XDP_DATA_END,
    XDP_DATA_META,
    XDP_EGRESS_IFINDEX,
    XDP_INGRESS_IFINDEX,
    XDP_MD_SIZE,
    XDP_PACKET_HEADROOM,
    XDP_RX_QUEUE_INDEX,
    get_u32,
    packet_ctx,
    put_u32,
    raw_ctx_buffer,
)

if TYPE_CHECKING:
    from .interp import Vm

ETH_HLEN = 14
LOOPBACK_IFINDEX = 1
MAX_BPF_FUNC_ARGS = 12
BPF_F_TEST_RUN_ON_CPU = 1 << 0
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
BPF_F_TEST_SKB_CHECKSUM_COMPLETE = 1 << 2
GSO_MAX_SEGS = 65535
GSO_LEGACY_MAX_SIZE = 65536
MAX_SKB_FRAGS = 17

#: __sk_buff ranges user space may set in ctx_in (convert___skb_to_skb); everything else must be zero
_SKB_SETTABLE = [(SKB_MARK, 4), (SKB_PRIORITY, 4), (SKB_IFINDEX, 4), (SKB_CB, 20), (SKB_TSTAMP, 8),
                 (SKB_WIRE_LEN, 4), (SKB_GSO_SEGS, 4), (SKB_GSO_SIZE, 4), (SKB_HWTSTAMP, 8)]


#: the program types whose test_run op is bpf_prog_test_run_skb (net/core/filter.c *_prog_ops)
_SKB_TYPES = frozenset({
    BpfProgType.BPF_PROG_TYPE_SOCKET_FILTER, BpfProgType.BPF_PROG_TYPE_SCHED_CLS,
    BpfProgType.BPF_PROG_TYPE_SCHED_ACT, BpfProgType.BPF_PROG_TYPE_CGROUP_SKB, BpfProgType.BPF_PROG_TYPE_LWT_IN,
    BpfProgType.BPF_PROG_TYPE_LWT_OUT, BpfProgType.BPF_PROG_TYPE_LWT_XMIT, BpfProgType.BPF_PROG_TYPE_LWT_SEG6LOCAL,
})
#: the skb types that see the frame from its Ethernet header (is_l2 in bpf_prog_test_run_skb)
_L2_TYPES = frozenset({BpfProgType.BPF_PROG_TYPE_SCHED_CLS, BpfProgType.BPF_PROG_TYPE_SCHED_ACT})


@dataclass
class TestRunResult:
    """What BPF_PROG_TEST_RUN hands back: ``retval`` (u32), the output packet and context, the mean
    duration in ns, the full output sizes, and ``err`` (ENOSPC if an output was truncated)."""

    __test__ = False  # not a pytest class

    retval: int
    data_out: bytes
    ctx_out: bytes | None
    duration_ns: int
    data_size_out: int = 0
    ctx_size_out: int = 0
    err: int = 0
    #: BPF_PROG_TYPE_SYSCALL: Linux copies the context back to ctx_in, not to ctx_out
    ctx_to_ctx_in: bool = False

    @property
    def duration(self) -> int:
        return self.duration_ns


def _ctx_init(ctx_in: bytes | None, max_size: int) -> bytearray | None:
    """bpf_ctx_init: a zeroed ``max_size`` buffer with ctx_in copied in; -E2BIG for a non-zero tail."""
    if ctx_in is None:
        return None
    if len(ctx_in) > max_size and any(ctx_in[max_size:]):
        raise fail(E2BIG, "ctx_in has non-zero bytes past the context structure")
    buf = bytearray(max_size)
    buf[:min(len(ctx_in), max_size)] = ctx_in[:max_size]
    return buf


def _truncate(data: bytes, size_out: int) -> tuple[bytes, int]:
    """The whole output and whether bpf_test_finish would truncate it (a non-zero size_out smaller
    than the data: ENOSPC). The caller (PROG_TEST_RUN) copies out at most size_out bytes."""
    if size_out and len(data) > size_out:
        return data, ENOSPC
    return data, 0


def _repeat_run(vm: Vm, prog: Any, ctx_addr: int, cpu: int, repeat: int) -> tuple[int, int]:
    """bpf_test_run: run ``repeat`` times (at least once); the last r0 (u32) and the mean ns per run."""
    n = max(1, repeat)
    t0 = time.perf_counter_ns()
    r0 = vm.run_repeat(prog, ctx_addr, cpu, n)
    return r0 & 0xFFFF_FFFF, (time.perf_counter_ns() - t0) // n


def test_run(vm: Vm, prog: Any, data_in: bytes, ctx_in: bytes | None, repeat: int, flags: int, cpu: int,
             data_size_out: int, ctx_size_out: int, *, batch_size: int = 0,
             want_data_out: bool | None = None, want_ctx_out: bool | None = None) -> TestRunResult:
    """Run ``prog`` as BPF_PROG_TEST_RUN would; raise KernelError with Linux's errno on a bad attr.

    ``want_data_out``/``want_ctx_out`` say whether attr.test.data_out/ctx_out are non-NULL
    (by default: whether the matching size_out is non-zero).
    """
    if want_data_out is None:
        want_data_out = data_size_out > 0
    if want_ctx_out is None:
        want_ctx_out = ctx_size_out > 0
    pt = int(getattr(prog, "prog_type", 0))
    if pt in _SKB_TYPES:
        return _run_skb(vm, prog, pt, data_in, ctx_in, repeat, flags, cpu, data_size_out, ctx_size_out,
                        batch_size, want_ctx_out)
    if pt == BpfProgType.BPF_PROG_TYPE_XDP:
        return _run_xdp(vm, prog, data_in, ctx_in, repeat, flags, cpu, data_size_out, ctx_size_out, batch_size)
    if pt == BpfProgType.BPF_PROG_TYPE_RAW_TRACEPOINT:
        if data_in or want_data_out or want_ctx_out and ctx_size_out or repeat or batch_size:
            raise fail(EINVAL, "raw_tracepoint test_run takes only ctx_in")
        ctx = ctx_in or b""
        if len(ctx) > MAX_BPF_FUNC_ARGS * 8:
            raise fail(EINVAL, "ctx_size_in larger than 12 arguments")
        if flags & ~BPF_F_TEST_RUN_ON_CPU:
            raise fail(EINVAL, "bad test_run flags")
        if not flags & BPF_F_TEST_RUN_ON_CPU and cpu != 0:
            raise fail(EINVAL, "cpu without BPF_F_TEST_RUN_ON_CPU")
        if cpu >= getattr(vm.kernel, "ncpus", 1):
            raise fail(6, "cpu is not online")  # ENXIO
        region = raw_ctx_buffer(vm, cpu, MAX_BPF_FUNC_ARGS * 8)
        region.buf[:] = bytes(MAX_BPF_FUNC_ARGS * 8)
        region.buf[:len(ctx)] = ctx
        r0 = vm.run(prog, region.base, cpu) & 0xFFFF_FFFF
        return TestRunResult(r0, b"", None, 0)
    if pt == BpfProgType.BPF_PROG_TYPE_SYSCALL:
        if data_in or want_data_out or want_ctx_out and ctx_size_out or repeat or flags or batch_size:
            raise fail(EINVAL, "syscall test_run takes only ctx_in")
        ctx = ctx_in or b""
        if len(ctx) > 0xFFFF:
            raise fail(EINVAL, "ctx_size_in larger than U16_MAX")
        sregion = raw_ctx_buffer(vm, 0, len(ctx)) if ctx else None
        if sregion is not None:
            sregion.buf[:] = ctx
        r0 = vm.run(prog, sregion.base if sregion is not None else 0, 0) & 0xFFFF_FFFF
        return TestRunResult(r0, b"", bytes(sregion.buf) if sregion is not None else None, 0,
                             ctx_size_out=len(ctx), ctx_to_ctx_in=True)
    raise fail(ENOTSUPP, "this program type has no BPF_PROG_TEST_RUN")


def _run_skb(vm: Vm, prog: Any, pt: int, data_in: bytes, ctx_in: bytes | None, repeat: int, flags: int,
             cpu: int, data_size_out: int, ctx_size_out: int, batch_size: int, want_ctx_out: bool) -> TestRunResult:
    if flags & ~BPF_F_TEST_SKB_CHECKSUM_COMPLETE or cpu or batch_size:
        raise fail(EINVAL, "bad flags/cpu/batch_size for an skb test_run")
    headroom = NET_SKB_PAD
    if len(data_in) < ETH_HLEN or len(data_in) > PAGE_SIZE - headroom - SKB_SHINFO_SIZE:
        raise fail(EINVAL, f"data_size_in {len(data_in)} out of [{ETH_HLEN}, {PAGE_SIZE - headroom - SKB_SHINFO_SIZE}]")
    user_ctx = _ctx_init(ctx_in if ctx_in is not None else (bytes(SK_BUFF_SIZE) if want_ctx_out else None),
                         SK_BUFF_SIZE)
    fields = bytearray(SK_BUFF_SIZE)
    if user_ctx is not None:
        mask = bytearray(SK_BUFF_SIZE)
        for off, n in _SKB_SETTABLE:
            mask[off:off + n] = b"\xff" * n
        if any(b & ~m & 0xFF for b, m in zip(user_ctx, mask, strict=True)):
            raise fail(EINVAL, "__sk_buff fields other than mark, priority, ifindex, cb, tstamp, "
                               "wire_len, gso_segs, gso_size, hwtstamp must be zero")
        for off, n in _SKB_SETTABLE:
            fields[off:off + n] = user_ctx[off:off + n]
    ifindex = struct.unpack_from("<I", fields, SKB_IFINDEX)[0]
    if ifindex not in (0, LOOPBACK_IFINDEX):
        raise fail(ENODEV, f"no device with ifindex {ifindex}")
    is_l2 = pt in _L2_TYPES
    length = len(data_in) if is_l2 else len(data_in) - ETH_HLEN
    wire_len = struct.unpack_from("<I", fields, SKB_WIRE_LEN)[0]
    if wire_len and (wire_len < length or wire_len > GSO_LEGACY_MAX_SIZE):
        raise fail(EINVAL, "wire_len out of range")
    if struct.unpack_from("<I", fields, SKB_GSO_SEGS)[0] > GSO_MAX_SEGS:
        raise fail(EINVAL, "gso_segs out of range")

    # bpf_prog_test_run_skb pulls the network header of IPv4/IPv6 frames: too short is -EINVAL
    l3 = {0x0800: 20, 0x86DD: 40}.get(int.from_bytes(data_in[12:14], "big"), 0)
    if len(data_in) - ETH_HLEN < l3:
        raise fail(EINVAL, "the frame is shorter than its IP header")
    pc = packet_ctx(vm, 0, "skb")
    pc.set_packet(data_in, headroom)
    if not is_l2:
        pc.data_off += ETH_HLEN
        pc.meta_off = pc.data_off
        pc.length -= ETH_HLEN
    ctx = pc.ctx
    ctx.buf[:] = fields
    dst = data_in[:6]
    # eth_type_trans on the loopback device: its address and its "broadcast" address are all zero
    pkt_type = 0 if dst == bytes(6) else 2 if dst[0] & 1 else 3
    proto = int.from_bytes(data_in[12:14], "big")
    if proto < 0x600:
        proto = 0x0004  # ETH_P_802_2
    put_u32(ctx, SKB_LEN, pc.length)
    put_u32(ctx, SKB_PKT_TYPE, pkt_type)
    put_u32(ctx, SKB_PROTOCOL, int.from_bytes(proto.to_bytes(2, "big"), "little"))
    put_u32(ctx, SKB_IFINDEX, LOOPBACK_IFINDEX)
    put_u32(ctx, SKB_INGRESS_IFINDEX, 0)
    # cb->pkt_len: set by convert___skb_to_skb, which runs only when there is a user context
    put_u32(ctx, SKB_WIRE_LEN, (wire_len or pc.length) if user_ctx is not None else 0)
    if proto == 0x0800:
        put_u32(ctx, SKB_FAMILY, 2)  # AF_INET on the test socket
        if len(data_in) >= ETH_HLEN + 20:
            ctx.buf[SKB_REMOTE_IP4:SKB_REMOTE_IP4 + 4] = data_in[ETH_HLEN + 16:ETH_HLEN + 20]
            ctx.buf[SKB_LOCAL_IP4:SKB_LOCAL_IP4 + 4] = data_in[ETH_HLEN + 12:ETH_HLEN + 16]
    elif proto == 0x86DD:
        put_u32(ctx, SKB_FAMILY, 10)
    put_u32(ctx, SKB_DATA_META, 0)
    retval, duration = _repeat_run(vm, prog, ctx.base, 0, repeat)

    out = bytes(pc.pkt.buf[pc.data_off:pc.data_off + pc.length])
    if not is_l2:
        out = bytes(ETH_HLEN) + out
    data_out, err = _truncate(out, data_size_out)
    ctx_out = None
    if user_ctx is not None:
        res = bytearray(user_ctx)
        for off, n in _SKB_SETTABLE:
            res[off:off + n] = ctx.buf[off:off + n]
        put_u32_b(res, SKB_IFINDEX, LOOPBACK_IFINDEX)
        put_u32_b(res, SKB_WIRE_LEN, get_u32(ctx, SKB_WIRE_LEN))
        ctx_out, err2 = _truncate(bytes(res), ctx_size_out)
        err = err or err2
    return TestRunResult(retval, data_out, ctx_out, duration, len(out), SK_BUFF_SIZE if ctx_out is not None else 0,
                         err)


def put_u32_b(buf: bytearray, off: int, value: int) -> None:
    struct.pack_into("<I", buf, off, value & 0xFFFF_FFFF)


def _run_xdp(vm: Vm, prog: Any, data_in: bytes, ctx_in: bytes | None, repeat: int, flags: int, cpu: int,
             data_size_out: int, ctx_size_out: int, batch_size: int) -> TestRunResult:
    if flags & ~BPF_F_TEST_XDP_LIVE_FRAMES:
        raise fail(EINVAL, "bad flags for an xdp test_run")
    if flags & BPF_F_TEST_XDP_LIVE_FRAMES:
        raise fail(EINVAL, "live frames are not simulated")
    if cpu or batch_size:
        raise fail(EINVAL, "cpu/batch_size for an xdp test_run")
    user_ctx = _ctx_init(ctx_in, XDP_MD_SIZE)
    size = len(data_in)
    headroom = XDP_PACKET_HEADROOM
    meta_len = 0
    if user_ctx is not None:
        data = get_u32_b(user_ctx, XDP_DATA)
        if get_u32_b(user_ctx, XDP_DATA_META) or get_u32_b(user_ctx, XDP_DATA_END) != size or data > size \
                or data % 4 or data > 255:  # xdp_metalen_invalid
            raise fail(EINVAL, "xdp_md data/data_meta/data_end do not describe data_in")
        if get_u32_b(user_ctx, XDP_EGRESS_IFINDEX):
            raise fail(EINVAL, "egress_ifindex must be 0")
        ifindex = get_u32_b(user_ctx, XDP_INGRESS_IFINDEX)
        rxq = get_u32_b(user_ctx, XDP_RX_QUEUE_INDEX)
        if ifindex not in (0, LOOPBACK_IFINDEX):
            raise fail(ENODEV, f"no device with ifindex {ifindex}")
        if rxq > 0:
            raise fail(EINVAL, "rx_queue_index past the device's queues")
        meta_len = data
    max_data = PAGE_SIZE - headroom - SKB_SHINFO_SIZE
    if size - meta_len < ETH_HLEN:
        raise fail(EINVAL, f"data_size_in {size} out of range for xdp")
    if size > max_data + MAX_SKB_FRAGS * PAGE_SIZE:
        raise fail(ENOMEM, "data_size_in needs more than MAX_SKB_FRAGS fragments")
    # past one page the rest goes in fragments the program does not see linearly (xdp frags)
    frags = data_in[max_data:] if size > max_data else b""
    pc = packet_ctx(vm, 0, "xdp")
    pc.set_packet(data_in[meta_len:min(size, max_data)], headroom, meta_len)
    pc.pkt.buf[headroom - meta_len:headroom] = data_in[:meta_len]
    ctx = pc.ctx
    ctx.buf[:] = bytes(XDP_MD_SIZE)
    put_u32(ctx, XDP_INGRESS_IFINDEX, LOOPBACK_IFINDEX)
    retval, duration = _repeat_run(vm, prog, ctx.base, 0, repeat)
    out = bytes(pc.pkt.buf[pc.meta_off:pc.data_off + pc.length]) + frags
    data_out, err = _truncate(out, data_size_out)
    ctx_out = None
    if user_ctx is not None:
        res = bytearray(user_ctx)
        struct.pack_into("<II", res, XDP_DATA, pc.data_off - pc.meta_off, pc.data_off + pc.length - pc.meta_off)
        ctx_out, err2 = _truncate(bytes(res), ctx_size_out)
        err = err or err2
    return TestRunResult(retval, data_out, ctx_out, duration, len(out), XDP_MD_SIZE if ctx_out is not None else 0,
                         err)


def get_u32_b(buf: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<I", buf, off)[0])
