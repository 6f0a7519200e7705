"""The batch map commands: BPF_MAP_LOOKUP_BATCH, LOOKUP_AND_DELETE_BATCH, UPDATE_BATCH, DELETE_BATCH.

``bpf_map_do_batch`` (kernel/bpf/syscall.c) checks the attr and the fd's
access, then hands over to the map type: arrays use ``generic_map_*_batch``
(the token is the last key), hash maps ``__htab_map_lookup_and_delete_batch``
(the token is a bucket index) and the generic update/delete; other types have
no batch ops (ENOTSUPP). The count written back is what was done, also when
the call fails part way (ENOENT at the end of the map, EFAULT, an element error).
"""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from ..uapi.bpf import BpfMapType as T
from ..uapi.bpf import MapBatchAttr
from .errors import EFAULT, EINVAL, ENOENT, ENOSPC, ENOTSUPP, EPERM, fail
from .fdtable import FMODE_READ, FMODE_WRITE
from .mapcmds import _ARRAYS, _HASHES, F_LOCK, bpf_map_value_size, has_spin_lock, map_from_fd, sys_perms
from .usermem import copy_from_user, copy_to_user

if TYPE_CHECKING:
    from .kernel import SimKernel, UAttr

__all__ = ["map_lookup_batch", "map_lookup_and_delete_batch", "map_update_batch", "map_delete_batch"]

MAP_BATCH_END = 56  # batch.flags
#: the batch ops of each map type's ``bpf_map_ops``
_GENERIC_LOOKUP = _ARRAYS | {T.BPF_MAP_TYPE_ARRAY_OF_MAPS, T.BPF_MAP_TYPE_LPM_TRIE}  # generic_map_lookup_batch
_HTAB = _HASHES | {T.BPF_MAP_TYPE_HASH_OF_MAPS}  # htab_*_lookup(_and_delete)_batch, generic delete
_GENERIC_UPDATE = _GENERIC_LOOKUP | _HTAB  # generic_map_update_batch


_COUNT_OFF = MapBatchAttr.count.offset
_OUT_BATCH_OFF = MapBatchAttr.out_batch.offset


def _batch_map(k: SimKernel, ua: UAttr, read: bool, write: bool) -> tuple[Any, Any]:
    ua.check_unused(MAP_BATCH_END)
    a: Any = ua.view(MapBatchAttr)
    m, f = map_from_fd(k, a.map_fd)
    perms = sys_perms(m, f)
    if read and not perms & FMODE_READ:
        raise fail(EPERM, "map fd is not readable")
    if write and not perms & FMODE_WRITE:
        raise fail(EPERM, "map fd is not writable (or the map is frozen)")
    return m, a


def _check_elem_flags(m: Any, elem_flags: int) -> None:
    if elem_flags & ~F_LOCK:
        raise fail(EINVAL, "batch elem_flags")
    if (elem_flags & F_LOCK) and not has_spin_lock(m):
        raise fail(EINVAL, "BPF_F_LOCK on a map without a bpf_spin_lock")


def _put_count(ua: UAttr, n: int) -> None:
    ua.put_u32(_COUNT_OFF, n)


def _generic_lookup_batch(k: SimKernel, ua: UAttr, m: Any, a: Any) -> int:
    """``generic_map_lookup_batch``: the token is the last key returned."""
    _check_elem_flags(m, a.elem_flags)
    vsize = bpf_map_value_size(k, m)
    if a.count == 0:
        return 0
    _put_count(ua, 0)
    prev: bytes | None = copy_from_user(a.in_batch, m.key_size) if a.in_batch else None
    cp = 0
    err: OSError | None = None
    while cp < a.count:
        try:
            key = m.sys_get_next_key(prev)
        except OSError as e:
            err = e
            break
        try:
            value = m.sys_lookup(key, int(a.elem_flags))
        except OSError as e:
            if e.errno != ENOENT:
                raise
            prev = key
            continue
        copy_to_user(a.keys + cp * m.key_size, key)
        copy_to_user(a.values + cp * vsize, value)
        cp += 1
        prev = key
    _put_count(ua, cp)
    if cp:
        assert prev is not None
        copy_to_user(a.out_batch, prev)
    if err is not None:
        raise err
    return 0


def _htab_batch(k: SimKernel, ua: UAttr, m: Any, a: Any, delete: bool) -> int:
    """``__htab_map_lookup_and_delete_batch``: the token is a u32 bucket index.

    A batch takes whole buckets, in bucket order, each newest element first;
    a bucket that does not fit in what is left of ``count`` ends the batch
    (ENOSPC if nothing was taken yet); reaching the last bucket is ENOENT.
    The maps part exposes its buckets as Linux lays them out (``m.order``, a
    ``BucketOrder`` with ``n_buckets``, ``buckets`` and the sorted ``nonempty``
    bucket numbers); a map without them is walked one element per bucket in
    its key order.
    """
    if (a.elem_flags & ~F_LOCK) or ((a.elem_flags & F_LOCK) and not has_spin_lock(m)):
        raise fail(EINVAL, "batch elem_flags")
    if a.flags:
        raise fail(EINVAL, "batch flags")
    if a.count == 0:
        return 0
    _put_count(ua, 0)
    batch = int.from_bytes(copy_from_user(a.in_batch, 4), "little") if a.in_batch else 0
    order = getattr(m, "order", m)  # maps.htab_order.BucketOrder, or the map itself
    buckets = getattr(order, "buckets", None)
    nonempty = getattr(order, "nonempty", None)
    n_buckets = int(getattr(order, "n_buckets", 0) or getattr(m, "n_buckets", 0))
    if buckets is None or nonempty is None or not n_buckets:
        return _htab_batch_by_keys(k, ua, m, a, delete, batch)
    if batch >= n_buckets:
        raise fail(ENOENT, "no more buckets")
    vsize = bpf_map_value_size(k, m)
    total = 0
    err = 0
    while True:
        i = bisect.bisect_left(nonempty, batch)
        if i == len(nonempty):  # only empty buckets are left
            batch = n_buckets
            err = ENOENT
            break
        batch = nonempty[i]
        keys = list(buckets.get(batch, ()))
        if len(keys) > a.count - total:
            if total == 0:
                err = ENOSPC
            break
        values = [m.sys_lookup(key, int(a.elem_flags)) for key in keys]
        if delete:
            for key in keys:
                m.sys_delete(key)
        try:
            copy_to_user(a.keys + total * m.key_size, b"".join(keys))
            copy_to_user(a.values + total * vsize, b"".join(values))
        except OSError:
            raise fail(EFAULT, "batch keys/values")
        total += len(keys)
        batch += 1
        if batch >= n_buckets:
            err = ENOENT
            break
    copy_to_user(a.out_batch, batch.to_bytes(4, "little"))
    _put_count(ua, total)
    if err:
        raise fail(err, "batch ended")
    return 0


def _htab_batch_by_keys(k: SimKernel, ua: UAttr, m: Any, a: Any, delete: bool, batch: int) -> int:
    """The batch walk for a hash map that does not expose buckets: one element per "bucket"."""
    keys = _all_keys(m)
    if batch >= max(len(keys), 1) or batch >= len(keys):
        raise fail(ENOENT, "no more buckets")
    vsize = bpf_map_value_size(k, m)
    total = 0
    pos = batch
    enoent = False
    while True:
        if pos >= len(keys):
            enoent = True
            break
        if total >= a.count:
            break
        key = keys[pos]
        value = m.sys_lookup(key, int(a.elem_flags))
        copy_to_user(a.keys + total * m.key_size, key)
        copy_to_user(a.values + total * vsize, value)
        if delete:
            m.sys_delete(key)
        total += 1
        pos += 1
    out = batch if delete else pos
    copy_to_user(a.out_batch, out.to_bytes(4, "little"))
    _put_count(ua, total)
    if enoent:
        raise fail(ENOENT, "batch reached the end of the map")
    return 0


def _all_keys(m: Any) -> list[bytes]:
    keys: list[bytes] = []
    prev: bytes | None = None
    while True:
        try:
            prev = m.sys_get_next_key(prev)
        except OSError as e:
            if e.errno == ENOENT:
                return keys
            raise
        keys.append(prev)
        if len(keys) > m.max_entries:  # a key order that never ends would be a map bug
            return keys


def map_lookup_batch(k: SimKernel, ua: UAttr) -> int:
    m, a = _batch_map(k, ua, True, False)
    if m.map_type in _GENERIC_LOOKUP:
        return _generic_lookup_batch(k, ua, m, a)
    if m.map_type in _HTAB:
        return _htab_batch(k, ua, m, a, delete=False)
    raise fail(ENOTSUPP, "map type has no lookup batch")


def map_lookup_and_delete_batch(k: SimKernel, ua: UAttr) -> int:
    m, a = _batch_map(k, ua, True, True)
    if m.map_type in _HTAB:
        return _htab_batch(k, ua, m, a, delete=True)
    raise fail(ENOTSUPP, "map type has no lookup_and_delete batch")


def map_update_batch(k: SimKernel, ua: UAttr) -> int:
    m, a = _batch_map(k, ua, False, True)
    if m.map_type not in _GENERIC_UPDATE:
        raise fail(ENOTSUPP, "map type has no update batch")
    if (a.elem_flags & F_LOCK) and not has_spin_lock(m):
        raise fail(EINVAL, "BPF_F_LOCK on a map without a bpf_spin_lock")
    if a.count == 0:
        return 0
    _put_count(ua, 0)
    vsize = bpf_map_value_size(k, m)
    cp = 0
    try:
        while cp < a.count:
            key = copy_from_user(a.keys + cp * m.key_size, m.key_size)
            value = copy_from_user(a.values + cp * vsize, vsize)
            m.sys_update(key, value, int(a.elem_flags))
            cp += 1
    finally:
        _put_count(ua, cp)
    return 0


def map_delete_batch(k: SimKernel, ua: UAttr) -> int:
    m, a = _batch_map(k, ua, False, True)
    if m.map_type not in _HTAB and m.map_type != T.BPF_MAP_TYPE_LPM_TRIE:  # generic_map_delete_batch
        raise fail(ENOTSUPP, "map type has no delete batch")
    _check_elem_flags(m, a.elem_flags)
    if a.count == 0:
        return 0
    _put_count(ua, 0)
    cp = 0
    try:
        while cp < a.count:
            key = copy_from_user(a.keys + cp * m.key_size, m.key_size)
            m.sys_delete(key)
            cp += 1
    finally:
        _put_count(ua, cp)
    return 0


