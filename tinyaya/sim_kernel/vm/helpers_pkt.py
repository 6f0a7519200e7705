"""Packet helpers: XDP head/tail/metadata adjustment and skb byte access (net/core/filter.c).

The packet is the per-CPU ``PacketCtx`` of contexts.py: a page whose ``data_off``,
``meta_off`` and ``length`` the helpers move, as Linux moves ``xdp->data``, ``data_meta`` and
``data_end`` inside the page (``data_hard_start`` is the page start). Loads of
``xdp_md->data``/``data_end`` read the moved values afterwards.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import EACCES, EFAULT, EINVAL
from .contexts import PAGE_SIZE, SKB_SHINFO_SIZE

if TYPE_CHECKING:
    from .interp import RunEnv

ETH_HLEN = 14
XDP_FRAME_SIZE = 40  # sizeof(struct xdp_frame) on x86-64 (measured: adjust_head's lowest data)
METADATA_MAX = 255  # xdp_metalen_invalid: at most skb_shared_info.meta_len (u8), a multiple of 4
BPF_F_RECOMPUTE_CSUM = 1
BPF_F_INVALIDATE_HASH = 2
INT_MAX = 0x7FFF_FFFF


def _packet(env: RunEnv, ctx: int) -> Any:
    region = env.vm.aspace.regions.get(ctx >> 32)
    owner = region.owner if region is not None else None
    if owner is None or not hasattr(owner, "data_off"):
        return None
    return owner


def _s32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v >> 31 else v


def bpf_xdp_adjust_head(env: RunEnv, ctx: int, delta: int, *_: int) -> int:
    """long bpf_xdp_adjust_head(struct xdp_buff *xdp_md, int delta): move ``data`` by ``delta``
    (metadata moves along); -EINVAL past the xdp_frame at the page start or within ETH_HLEN of the end."""
    p = _packet(env, ctx)
    if p is None:
        return -EINVAL
    delta = _s32(delta)
    metalen = p.data_off - p.meta_off
    data = p.data_off + delta
    end = p.data_off + p.length
    if data < XDP_FRAME_SIZE + metalen or data > end - ETH_HLEN:
        return -EINVAL
    if metalen:
        buf = p.pkt.buf
        buf[p.meta_off + delta:p.meta_off + delta + metalen] = bytes(buf[p.meta_off:p.meta_off + metalen])
    p.meta_off += delta
    p.data_off = data
    p.length = end - data
    return 0


def bpf_xdp_adjust_meta(env: RunEnv, ctx: int, delta: int, *_: int) -> int:
    """long bpf_xdp_adjust_meta(struct xdp_buff *xdp_md, int delta): move ``data_meta``; -EINVAL out of
    [xdp_frame end, data], -EACCES unless the metadata is at most 255 bytes and a multiple of 4."""
    p = _packet(env, ctx)
    if p is None:
        return -EINVAL
    meta = p.meta_off + _s32(delta)
    if meta < XDP_FRAME_SIZE or meta > p.data_off:
        return -EINVAL
    metalen = p.data_off - meta
    if metalen > METADATA_MAX or metalen % 4:
        return -EACCES
    p.meta_off = meta
    return 0


def bpf_xdp_adjust_tail(env: RunEnv, ctx: int, offset: int, *_: int) -> int:
    """long bpf_xdp_adjust_tail(struct xdp_buff *xdp_md, int delta): move ``data_end``; growing zeroes
    the new bytes; -EINVAL past the page's tailroom or below ETH_HLEN bytes of data."""
    p = _packet(env, ctx)
    if p is None:
        return -EINVAL
    offset = _s32(offset)
    end = p.data_off + p.length + offset
    if end > PAGE_SIZE - SKB_SHINFO_SIZE or end < p.data_off + ETH_HLEN:
        return -EINVAL
    if offset > 0:
        old = p.data_off + p.length
        p.pkt.buf[old:end] = bytes(offset)
    p.length = end - p.data_off
    return 0


def bpf_skb_load_bytes(env: RunEnv, skb: int, offset: int, to: int, length: int, *_: int) -> int:
    """long bpf_skb_load_bytes(const void *skb, u32 offset, void *to, u32 len): from skb->data + offset;
    -EFAULT (and ``to`` zeroed) outside the packet."""
    length &= 0xFFFF_FFFF
    offset &= 0xFFFF_FFFF
    data = env.vm.skb_bytes(skb)
    if data is None or offset > INT_MAX or offset + length > len(data):
        if length:
            env.vm.aspace.write(to, bytes(length))
        return -EFAULT
    env.vm.aspace.write(to, bytes(data[offset:offset + length]))
    return 0


def bpf_skb_store_bytes(env: RunEnv, skb: int, offset: int, frm: int, length: int, flags: int) -> int:
    """long bpf_skb_store_bytes(struct sk_buff *skb, u32 offset, const void *from, u32 len, u64 flags):
    -EINVAL for unknown flags, -EFAULT outside the packet. The checksum flags change nothing here:
    test runs have no CHECKSUM_COMPLETE skbs."""
    if flags & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH):
        return -EINVAL
    length &= 0xFFFF_FFFF
    offset &= 0xFFFF_FFFF
    data = env.vm.skb_bytes(skb)
    if data is None or offset > INT_MAX or offset + length > len(data):
        return -EFAULT
    data[offset:offset + length] = env.vm.aspace.read(frm, length) if length else b""
    return 0


PACKET_HELPERS: dict[int, Callable[..., int]] = {9: bpf_skb_store_bytes, 26: bpf_skb_load_bytes, 44: bpf_xdp_adjust_head,
                  54: bpf_xdp_adjust_meta, 65: bpf_xdp_adjust_tail}
