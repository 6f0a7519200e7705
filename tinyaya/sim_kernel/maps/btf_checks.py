"""``map->ops->map_check_btf`` of the extra map types (Linux 6.18), called by ``btf.map_attach_btf``.

* ``map_check_no_btf`` (STACK_TRACE, CGROUP_ARRAY, DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP, SOCKMAP,
  SOCKHASH): any BTF is ENOTSUPP;
* ``trie_check_btf``: an LPM trie's key type must be a struct;
* ``bpf_local_storage_map_check_btf``: the key type must be a 32-bit int (``btf_type_is_i32``);
* ``cgroup_storage_check_btf``: the key is a u64 (``__u64`` int of 64 bits) or a two-member struct
  (``bpf_cgroup_storage_key``: a u64 at bit 0 and a u32 at bit 64).

Each takes the ``BtfObject`` and the type ids and raises ``KernelError``; types are looked at through
modifiers and typedefs, as ``btf_type_id_size`` resolves them.
"""
from __future__ import annotations

import struct
from typing import Any

from ..errors import EINVAL, ENOTSUPP, fail

__all__ = ["check_no_btf", "check_struct_key", "check_i32_key", "check_cgroup_storage_key"]

KIND_INT, KIND_STRUCT = 1, 4


def _int_shape(t: Any) -> tuple[int, int, int]:
    """(size, bits, bit offset) of a BTF_KIND_INT."""
    info = struct.unpack_from("<I", t.extra)[0]
    return t.size_or_type, info & 0xFF, (info >> 16) & 0xFF


def _is_int(t: Any, size: int) -> bool:
    return t is not None and t.kind == KIND_INT and _int_shape(t) == (size, size * 8, 0)


def check_no_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
    """``map_check_no_btf``."""
    raise fail(ENOTSUPP, "this map type takes no BTF")


def check_struct_key(btf: Any, key_type_id: int, value_type_id: int) -> None:
    """``trie_check_btf``."""
    t = btf._skip_mods(key_type_id)
    if t is None or t.kind != KIND_STRUCT:
        raise fail(EINVAL, "LPM trie key BTF must be a struct")


def check_i32_key(btf: Any, key_type_id: int, value_type_id: int) -> None:
    """``bpf_local_storage_map_check_btf``."""
    if not _is_int(btf._skip_mods(key_type_id), 4):
        raise fail(EINVAL, "local storage key BTF must be a 32-bit int")


def check_cgroup_storage_key(btf: Any, key_type_id: int, value_type_id: int) -> None:
    """``cgroup_storage_check_btf``."""
    t = btf._skip_mods(key_type_id)
    if t is not None and t.kind == KIND_INT:
        if _int_shape(t)[1:] != (64, 0):
            raise fail(EINVAL, "cgroup storage key int must be a u64")
        return
    if t is None or t.kind != KIND_STRUCT or t.vlen != 2:
        raise fail(EINVAL, "cgroup storage key must be a u64 or struct bpf_cgroup_storage_key")
    for j, (bit_off, size) in enumerate(((0, 8), (64, 4))):
        _name, mtype, off = struct.unpack_from("<III", t.extra, 12 * j)
        member_off = off & 0xFFFFFF if t.kind_flag else off
        mt = btf._skip_mods(mtype)
        if member_off != bit_off or mt is None or mt.kind != KIND_INT or _int_shape(mt)[:2] != (size, size * 8):
            raise fail(EINVAL, "cgroup storage key struct layout")
