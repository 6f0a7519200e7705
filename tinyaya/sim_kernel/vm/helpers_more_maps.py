"""Helpers over the extra map types: ``bpf_get_stackid`` (STACK_TRACE) and ``bpf_redirect_map``
(DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP). The work is the maps' (``StackTraceMap.stackid_here``,
``redirect``), these only decode the arguments as the helpers' prototypes in include/uapi/linux/bpf.h do."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EINVAL
from .helpers_maps import _map

if TYPE_CHECKING:
    from .interp import RunEnv

__all__ = ["MORE_MAP_HELPERS", "bpf_get_stackid", "bpf_redirect_map"]

XDP_ABORTED = 0


def bpf_get_stackid(env: RunEnv, ctx: int, map_addr: int, flags: int, *_: int) -> int:
    """long bpf_get_stackid(void *ctx, struct bpf_map *map, u64 flags): the id of the current stack or -errno."""
    m = _map(env, map_addr)
    stackid_here = getattr(m, "stackid_here", None)
    if stackid_here is None:
        return -EINVAL
    return int(stackid_here(env.cpu, flags & 0xFFFF_FFFF_FFFF_FFFF))


def bpf_redirect_map(env: RunEnv, map_addr: int, key: int, flags: int, *_: int) -> int:
    """long bpf_redirect_map(struct bpf_map *map, u64 key, u64 flags): XDP_REDIRECT, or the fallback action."""
    m = _map(env, map_addr)
    redirect = getattr(m, "redirect", None)
    if redirect is None:
        return XDP_ABORTED
    return int(redirect(key & 0xFFFF_FFFF, flags & 0xFFFF_FFFF_FFFF_FFFF))


MORE_MAP_HELPERS = {27: bpf_get_stackid, 51: bpf_redirect_map}
