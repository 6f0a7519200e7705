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


# -- checksums (include/net/checksum.h, arch/x86/lib/csum-partial_64.c) ---------------------------------
BPF_F_HDR_FIELD_MASK = 0xF
BPF_F_PSEUDO_HDR = 1 << 4
BPF_F_MARK_MANGLED_0 = 1 << 5
BPF_F_MARK_ENFORCE = 1 << 6
BPF_F_IPV6 = 1 << 7
CSUM_MANGLED_0 = 0xFFFF


def csum_add(a: int, b: int) -> int:
    """32-bit ones' complement addition (end-around carry)."""
    r = (a & 0xFFFF_FFFF) + (b & 0xFFFF_FFFF)
    return (r & 0xFFFF_FFFF) + (r >> 32)


def csum_sub(a: int, b: int) -> int:
    return csum_add(a, ~b & 0xFFFF_FFFF)


def csum_fold(c: int) -> int:
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    return ~c & 0xFFFF


def csum16_add(c: int, addend: int) -> int:
    r = ((c & 0xFFFF) + (addend & 0xFFFF)) & 0xFFFF
    return (r + (r < (addend & 0xFFFF))) & 0xFFFF


def csum_partial(data: bytes, seed: int) -> int:
    """x86-64's csum_partial for a length that is a multiple of 4: 64-bit words (the tail zero-padded)
    added with end-around carry, folded to 32 bits with end-around carry."""
    acc = seed & 0xFFFF_FFFF
    for i in range(0, len(data), 8):
        acc += int.from_bytes(data[i:i + 8], "little")
        acc = (acc & 0xFFFF_FFFF_FFFF_FFFF) + (acc >> 64)
    return csum_add(acc >> 32, acc & 0xFFFF_FFFF)


def csum_from32to16(c: int) -> int:
    """Fold a 32-bit partial checksum to 16 bits without inverting it (lib/checksum.c)."""
    c &= 0xFFFF_FFFF
    c = (c + (((c >> 16) | (c << 16)) & 0xFFFF_FFFF)) & 0xFFFF_FFFF
    return c >> 16


def bpf_csum_diff(env: RunEnv, frm: int, from_size: int, to: int, to_size: int, seed: int) -> int:
    """s64 bpf_csum_diff(__be32 *from, u32 from_size, __be32 *to, u32 to_size, __wsum seed): the
    checksum of ``~from`` then ``to`` (sizes multiples of 4, at most 512 bytes together), folded to
    16 bits as Linux 6.18 returns it (``csum_from32to16``; measured on this kernel)."""
    from_size &= 0xFFFF_FFFF
    to_size &= 0xFFFF_FFFF
    if (from_size | to_size) & 3 or from_size + to_size > 512:
        return -EINVAL
    old = env.vm.aspace.read(frm, from_size) if from_size else b""
    new = env.vm.aspace.read(to, to_size) if to_size else b""
    return csum_from32to16(csum_partial(bytes(~b & 0xFF for b in old) + new, seed))


def _csum_field(env: RunEnv, skb: int, offset: int) -> tuple[Any, int] | int:
    offset &= 0xFFFF_FFFF
    if offset > 0xFFFF or offset & 1:
        return -EFAULT
    data = env.vm.skb_bytes(skb)
    if data is None or offset + 2 > len(data):
        return -EFAULT
    return data, offset


def _replace(old_sum: int, size: int, frm: int, to: int) -> int:
    if size == 2:
        return ~csum16_add(csum16_add(~old_sum & 0xFFFF, ~frm & 0xFFFF), to) & 0xFFFF
    if size == 4:
        return csum_fold(csum_add(csum_sub(~old_sum & 0xFFFF_FFFF, frm), to))
    return csum_fold(csum_add(to, ~old_sum & 0xFFFF_FFFF))  # by diff


def bpf_l3_csum_replace(env: RunEnv, skb: int, offset: int, frm: int, to: int, flags: int) -> int:
    """long bpf_l3_csum_replace(struct sk_buff *skb, u32 offset, u64 from, u64 to, u64 size): update the
    16-bit checksum at ``offset`` for a 2- or 4-byte field change (size 0: ``to`` is a csum_diff)."""
    if flags & ~BPF_F_HDR_FIELD_MASK:
        return -EINVAL
    field = _csum_field(env, skb, offset)
    if isinstance(field, int):
        return field
    data, off = field
    size = flags & BPF_F_HDR_FIELD_MASK
    if size not in (0, 2, 4) or (size == 0 and frm):
        return -EINVAL
    cur = int.from_bytes(data[off:off + 2], "little")
    data[off:off + 2] = _replace(cur, size, frm & 0xFFFF_FFFF, to & 0xFFFF_FFFF).to_bytes(2, "little")
    return 0


def bpf_l4_csum_replace(env: RunEnv, skb: int, offset: int, frm: int, to: int, flags: int) -> int:
    """long bpf_l4_csum_replace(struct sk_buff *skb, u32 offset, u64 from, u64 to, u64 flags): as l3, for
    a TCP/UDP checksum; BPF_F_MARK_MANGLED_0 keeps a zero (UDP "no checksum") and writes 0xffff for a
    result of zero. Test runs are CHECKSUM_NONE, so BPF_F_PSEUDO_HDR changes nothing else."""
    allowed = BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK | BPF_F_IPV6
    if flags & ~allowed:
        return -EINVAL
    field = _csum_field(env, skb, offset)
    if isinstance(field, int):
        return field
    data, off = field
    cur = int.from_bytes(data[off:off + 2], "little")
    mmzero = bool(flags & BPF_F_MARK_MANGLED_0)
    if mmzero and not flags & BPF_F_MARK_ENFORCE and not cur:
        return 0
    size = flags & BPF_F_HDR_FIELD_MASK
    if size not in (0, 2, 4) or (size == 0 and frm):
        return -EINVAL
    new = _replace(cur, 4 if size == 2 else size, frm & (0xFFFF if size == 2 else 0xFFFF_FFFF), to & 0xFFFF_FFFF)
    if mmzero and not new:
        new = CSUM_MANGLED_0
    data[off:off + 2] = new.to_bytes(2, "little")
    return 0


PACKET_HELPERS: dict[int, Callable[..., int]] = {
    9: bpf_skb_store_bytes, 10: bpf_l3_csum_replace, 11: bpf_l4_csum_replace, 26: bpf_skb_load_bytes,
    28: bpf_csum_diff, 44: bpf_xdp_adjust_head, 54: bpf_xdp_adjust_meta, 65: bpf_xdp_adjust_tail,
}
