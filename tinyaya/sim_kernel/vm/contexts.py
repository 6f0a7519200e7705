"""Context buffers: ``struct __sk_buff``, ``struct xdp_md``, ``struct pt_regs`` and raw argument arrays.

Every buffer is a region registered once per CPU (and size) and reused for every
run, so an event allocates nothing big. Packet programs read ``data``/``data_end``
as 32-bit context fields that Linux's ``convert_ctx_access`` turns into 64-bit
pointer loads; the owners here do the same through ``load_field``.

Layouts: ``struct __sk_buff`` and ``struct xdp_md`` from include/uapi/linux/bpf.h.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from ..memory import Region, RegionKind

if TYPE_CHECKING:
    from .interp import Vm

SK_BUFF_SIZE = 192  # sizeof(struct __sk_buff)
XDP_MD_SIZE = 24  # sizeof(struct xdp_md)
PAGE_SIZE = 4096
XDP_PACKET_HEADROOM = 256
NET_SKB_PAD = 64
SKB_SHINFO_SIZE = 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64
SKF_NET_OFF = -0x100000  # include/uapi/linux/filter.h
SKF_LL_OFF = -0x200000

# struct __sk_buff field offsets
SKB_LEN, SKB_PKT_TYPE, SKB_MARK, SKB_QUEUE_MAPPING, SKB_PROTOCOL = 0, 4, 8, 12, 16
SKB_PRIORITY, SKB_INGRESS_IFINDEX, SKB_IFINDEX, SKB_TC_INDEX, SKB_CB = 32, 36, 40, 44, 48
SKB_HASH, SKB_TC_CLASSID, SKB_DATA, SKB_DATA_END, SKB_NAPI_ID, SKB_FAMILY = 68, 72, 76, 80, 84, 88
SKB_REMOTE_IP4, SKB_LOCAL_IP4, SKB_DATA_META, SKB_TSTAMP, SKB_WIRE_LEN = 92, 96, 140, 152, 160
SKB_GSO_SEGS, SKB_GSO_SIZE, SKB_HWTSTAMP = 164, 176, 184

# struct xdp_md field offsets
XDP_DATA, XDP_DATA_END, XDP_DATA_META, XDP_INGRESS_IFINDEX, XDP_RX_QUEUE_INDEX, XDP_EGRESS_IFINDEX = 0, 4, 8, 12, 16, 20


def _buffer(vm: Vm, cpu: int, key: str, size: int, kind: RegionKind, owner: Any = None) -> Region:
    region = vm.buffers.get((cpu, key))
    if region is None:
        region = vm.aspace.add(bytearray(size), kind, f"{key} cpu{cpu}", owner=owner)
        vm.buffers[(cpu, key)] = region
    return region


def raw_ctx_buffer(vm: Vm, cpu: int, size: int, prog_type: Any = None) -> Region:
    """A context region of exactly ``size`` bytes (a ``pt_regs``, raw tracepoint args, a syscall ctx)."""
    return _buffer(vm, cpu, f"ctx{size}", size, RegionKind.CTX)


def scratch(vm: Vm, cpu: int, size: int) -> Region:
    """Kernel scratch memory for helpers (e.g. the key that for_each_map_elem passes by pointer)."""
    size = max(64, 1 << (size - 1).bit_length())
    return _buffer(vm, cpu, f"scratch{size}", size, RegionKind.KERNEL)


def mem_buffer(vm: Vm, cpu: int, size: int) -> Region:
    """Plain memory for the conformance plugin and benchmarks (r1 = its address, r2 = its length)."""
    return _buffer(vm, cpu, f"mem{size}", size, RegionKind.PACKET)


class PacketCtx:
    """A packet context (``__sk_buff`` or ``xdp_md``) and its packet buffer, one per CPU and kind."""

    def __init__(self, vm: Vm, cpu: int, kind: str) -> None:
        self.kind = kind
        size = SK_BUFF_SIZE if kind == "skb" else XDP_MD_SIZE
        self.ctx = vm.aspace.add(bytearray(size), RegionKind.CTX, f"{kind} ctx cpu{cpu}", owner=self)
        self.pkt = vm.aspace.add(bytearray(PAGE_SIZE), RegionKind.PACKET, f"{kind} packet cpu{cpu}", owner=self)
        self.data_off = 0  # offset of data in pkt
        self.meta_off = 0
        self.length = 0
        self.mac_off = 0  # the Ethernet header (skb_mac_header)
        self.net_off = 0  # the network header (skb_network_header)

    @property
    def data(self) -> int:
        return self.pkt.base + self.data_off

    @property
    def data_end(self) -> int:
        return self.pkt.base + self.data_off + self.length

    def set_packet(self, data: bytes, headroom: int, meta_len: int = 0) -> None:
        self.pkt.buf[:] = bytes(PAGE_SIZE)
        self.data_off = headroom
        self.meta_off = headroom - meta_len
        self.length = len(data)
        self.mac_off = headroom
        self.net_off = headroom + 14
        self.pkt.buf[headroom:headroom + len(data)] = data

    def packet_bytes(self) -> memoryview:
        return self.pkt.buf[self.data_off:self.data_off + self.length]

    def ld_abs_bytes(self, k: int, size: int) -> bytes | None:
        """What LD_ABS/LD_IND read at offset ``k`` (``bpf_skb_load_helper_*``): from skb->data for
        k >= 0; from the network header for SKF_NET_OFF + n, from the Ethernet header for
        SKF_LL_OFF + n (``bpf_internal_load_pointer_neg_helper``); None when outside the packet."""
        tail = self.data_off + self.length
        if k >= 0:
            ptr = self.data_off + k
        elif k >= SKF_NET_OFF:
            ptr = self.net_off + k - SKF_NET_OFF
        elif k >= SKF_LL_OFF:
            ptr = self.mac_off + k - SKF_LL_OFF
        else:
            return None
        if ptr < 0 or ptr + size > tail:
            return None
        return bytes(self.pkt.buf[ptr:ptr + size])

    def load_field(self, off: int, size: int) -> int | None:
        """convert_ctx_access for the pointer fields: a u32 context load yields a 64-bit pointer."""
        if size != 4:
            return None
        if self.kind == "skb":
            if off == SKB_DATA:
                return self.data
            if off == SKB_DATA_END:
                return self.data_end
            if off == SKB_DATA_META:
                return self.pkt.base + self.meta_off
            if off == SKB_LEN:
                return self.length
            return None
        if off == XDP_DATA:
            return self.data
        if off == XDP_DATA_END:
            return self.data_end
        if off == XDP_DATA_META:
            return self.pkt.base + self.meta_off
        return None


def packet_ctx(vm: Vm, cpu: int, kind: str) -> PacketCtx:
    key = (cpu, f"pktctx-{kind}")
    pc = vm.buffers.get(key)
    if pc is None:
        pc = PacketCtx(vm, cpu, kind)
        vm.buffers[key] = pc
    return pc


def put_u32(region: Region, off: int, value: int) -> None:
    struct.pack_into("<I", region.buf, off, value & 0xFFFF_FFFF)


def get_u32(region: Region, off: int) -> int:
    return int(struct.unpack_from("<I", region.buf, off)[0])
