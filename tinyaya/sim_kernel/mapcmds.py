"""The map commands of ``bpf()``: create, element ops, batch ops, freeze, ids, and the info dispatch.

Each handler mirrors its namesake in kernel/bpf/syscall.c (Linux 6.18):
``map_create``, ``map_lookup_elem``, ``map_update_elem``, ``map_delete_elem``,
``map_get_next_key``, ``map_lookup_and_delete_elem``, ``map_freeze``,
``bpf_map_do_batch`` with ``generic_map_*_batch`` (arrays) and
``__htab_map_lookup_and_delete_batch`` (hash maps), in the same order of
checks, so that a call that is wrong in several ways fails with the same
errno as on Linux. The per-type work (allocation checks, element semantics)
is done by the map objects of ``tinyaya.sim_kernel.maps``.
"""
from __future__ import annotations

import ctypes
import struct
from typing import TYPE_CHECKING, Any

from ..uapi.bpf import (
    BpfMapInfo,
    BpfMapType,
    GetIdAttr,
    InfoAttr,
    MapCreateAttr,
    MapElemAttr,
    MapFlags,
    MapUpdateFlags,
)
from .errors import E2BIG, EBADF, EBUSY, EINVAL, ENOENT, ENOTSUPP, EPERM, fail
from .fdtable import FMODE_RDWR, FMODE_READ, FMODE_WRITE, INT_MAX, File
from .usermem import check_zeroed_user, copy_from_user, copy_to_user

if TYPE_CHECKING:
    from .kernel import SimKernel, UAttr

__all__ = ["is_map", "map_from_fd", "bpf_map_value_size", "bpf_obj_name_cpy", "bpf_get_file_flag",
           "map_create", "obj_get_info_by_fd"]

EBADFD = 77  # what BPF_OBJ_GET_INFO_BY_FD returns for a closed fd

T = BpfMapType
#: flags as plain ints: ``~`` of an IntFlag member stays inside the enum's bits, ``~`` of an int does not
F_LOCK = int(MapUpdateFlags.BPF_F_LOCK)
F_RDONLY = int(MapFlags.BPF_F_RDONLY)
F_WRONLY = int(MapFlags.BPF_F_WRONLY)
F_NUMA_NODE = int(MapFlags.BPF_F_NUMA_NODE)

#: end offsets of each command's last attr field (``CMD##_LAST_FIELD``, Linux 6.18); bytes past it must be 0
MAP_CREATE_END = 92  # excl_prog_hash_size
MAP_ELEM_END = 32  # flags
MAP_DELETE_END = 16  # key
MAP_GET_NEXT_KEY_END = 24  # next_key
MAP_FREEZE_END = 4  # map_fd

GET_NEXT_ID_END = 8  # next_id
MAP_GET_FD_BY_ID_END = 12  # open_flags
INFO_END = 16  # info.info

_PERCPU = {T.BPF_MAP_TYPE_PERCPU_HASH, T.BPF_MAP_TYPE_LRU_PERCPU_HASH, T.BPF_MAP_TYPE_PERCPU_ARRAY,
           T.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE}
_FD_MAPS = {T.BPF_MAP_TYPE_PERF_EVENT_ARRAY, T.BPF_MAP_TYPE_CGROUP_ARRAY, T.BPF_MAP_TYPE_ARRAY_OF_MAPS,
            T.BPF_MAP_TYPE_PROG_ARRAY, T.BPF_MAP_TYPE_HASH_OF_MAPS}
_HASHES = {T.BPF_MAP_TYPE_HASH, T.BPF_MAP_TYPE_PERCPU_HASH, T.BPF_MAP_TYPE_LRU_HASH,
           T.BPF_MAP_TYPE_LRU_PERCPU_HASH}
_ARRAYS = {T.BPF_MAP_TYPE_ARRAY, T.BPF_MAP_TYPE_PERCPU_ARRAY}
_QUEUES = {T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK}
#: map types an unprivileged caller may create when unprivileged bpf is enabled (``map_create``)
_UNPRIV_MAP_TYPES = {T.BPF_MAP_TYPE_ARRAY, T.BPF_MAP_TYPE_PERCPU_ARRAY, T.BPF_MAP_TYPE_PROG_ARRAY,
                     T.BPF_MAP_TYPE_PERF_EVENT_ARRAY, T.BPF_MAP_TYPE_CGROUP_ARRAY,
                     T.BPF_MAP_TYPE_ARRAY_OF_MAPS, T.BPF_MAP_TYPE_HASH, T.BPF_MAP_TYPE_PERCPU_HASH,
                     T.BPF_MAP_TYPE_HASH_OF_MAPS, T.BPF_MAP_TYPE_RINGBUF, T.BPF_MAP_TYPE_USER_RINGBUF,
                     T.BPF_MAP_TYPE_CGROUP_STORAGE, T.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE}
#: map types whose ``map_alloc_check`` checks the attrs (arrays, hashes, fd maps, queue/stack,
#: local storage); the others (ring buffers, bloom filters, LPM trie, ...) check them in ``map_alloc``
_HAS_ALLOC_CHECK = {T.BPF_MAP_TYPE_HASH, T.BPF_MAP_TYPE_ARRAY, T.BPF_MAP_TYPE_PROG_ARRAY,
                    T.BPF_MAP_TYPE_PERF_EVENT_ARRAY, T.BPF_MAP_TYPE_PERCPU_HASH, T.BPF_MAP_TYPE_PERCPU_ARRAY,
                    T.BPF_MAP_TYPE_CGROUP_ARRAY, T.BPF_MAP_TYPE_LRU_HASH, T.BPF_MAP_TYPE_LRU_PERCPU_HASH,
                    T.BPF_MAP_TYPE_ARRAY_OF_MAPS, T.BPF_MAP_TYPE_HASH_OF_MAPS, T.BPF_MAP_TYPE_QUEUE,
                    T.BPF_MAP_TYPE_STACK, T.BPF_MAP_TYPE_SK_STORAGE,
                    T.BPF_MAP_TYPE_INODE_STORAGE, T.BPF_MAP_TYPE_TASK_STORAGE,
                    T.BPF_MAP_TYPE_DEVMAP, T.BPF_MAP_TYPE_DEVMAP_HASH, T.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
                    32}  # 32: BPF_MAP_TYPE_CGRP_STORAGE
_NR_MAP_TYPES = 34  # BPF_MAP_TYPE_ARENA is 33 in 6.18
BPF_F_TOKEN_FD = 1 << 16
BPF_F_VTYPE_BTF_OBJ_FD = 1 << 15


def is_map(obj: object) -> bool:
    """Whether a file's object is a bpf map (``f_op == &bpf_map_fops``)."""
    return hasattr(obj, "sys_lookup") and hasattr(obj, "map_type")


def map_from_fd(k: SimKernel, fd: int) -> tuple[Any, File]:
    """``__bpf_map_get(fdget(fd))``: EBADF if not open, EINVAL if not a map."""
    f = k.fds.file(fd)
    if not is_map(f.obj):
        raise fail(EINVAL, f"fd {fd} is not a map")
    return f.obj, f


def sys_perms(m: Any, f: File) -> int:
    """``map_get_sys_perms``: the fd's mode, without write for a frozen map."""
    return f.mode & ~FMODE_WRITE if getattr(m, "frozen", False) else f.mode


def bpf_map_value_size(k: SimKernel, m: Any) -> int:
    """The value size user space passes (``bpf_map_value_size``): per-CPU values padded to 8, fds as u32."""
    if m.map_type in _PERCPU:
        return ((m.value_size + 7) & ~7) * k.ncpus
    if m.map_type in _FD_MAPS:
        return 4
    return int(m.value_size)


def has_spin_lock(m: Any) -> bool:
    return bool(getattr(m, "has_spin_lock", False))


def bpf_obj_name_cpy(raw: bytes) -> bytes:
    """``bpf_obj_name_cpy``: ``[A-Za-z0-9_.]`` up to a NUL within 16 bytes, else EINVAL."""
    for i, c in enumerate(raw[:16]):
        if c == 0:
            return bytes(raw[:i])
        if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c in (0x5F, 0x2E)):
            raise fail(EINVAL, f"invalid character {c:#x} in object name")
    raise fail(EINVAL, "object name is not NUL-terminated within 16 bytes")


def bpf_get_file_flag(flags: int) -> int:
    """``bpf_get_file_flag``: the fd mode for BPF_F_RDONLY/BPF_F_WRONLY (both: EINVAL)."""
    rd, wr = flags & F_RDONLY, flags & F_WRONLY
    if rd and wr:
        raise fail(EINVAL, "BPF_F_RDONLY and BPF_F_WRONLY together")
    return FMODE_READ if rd else FMODE_WRITE if wr else FMODE_RDWR


def copy_key(m: Any, ukey: int) -> bytes | None:
    """``___bpf_copy_key``: key_size bytes, or NULL for a keyless map (a non-NULL key is then EINVAL)."""
    if m.key_size:
        return copy_from_user(ukey, m.key_size)
    if ukey:
        raise fail(EINVAL, "key given for a map without keys")
    return None


# ---------------------------------------------------------------------------------------------------
def map_create(k: SimKernel, ua: UAttr) -> int:
    from . import maps as _maps

    maps: Any = _maps
    ua.check_unused(MAP_CREATE_END)
    a: Any = ua.view(MapCreateAttr)
    excl_prog_hash, excl_prog_hash_size = struct.unpack_from("<QI", ua.raw, 80)
    token_flag = a.map_flags & BPF_F_TOKEN_FD
    a.map_flags &= ~BPF_F_TOKEN_FD
    if a.btf_vmlinux_value_type_id:
        if a.map_type != T.BPF_MAP_TYPE_STRUCT_OPS or a.btf_key_type_id or a.btf_value_type_id:
            raise fail(EINVAL, "btf_vmlinux_value_type_id is for struct_ops maps")
    elif a.btf_key_type_id and not a.btf_value_type_id:
        raise fail(EINVAL, "btf_key_type_id without btf_value_type_id")
    if a.map_type not in (T.BPF_MAP_TYPE_BLOOM_FILTER, 33) and a.map_extra != 0:
        raise fail(EINVAL, "map_extra is only for bloom filters and arenas")
    mode = bpf_get_file_flag(a.map_flags)
    if (a.map_flags & F_NUMA_NODE) and a.numa_node != 0xFFFFFFFF and a.numa_node >= 1:
        raise fail(EINVAL, f"numa node {a.numa_node} is not online")
    if a.map_type >= _NR_MAP_TYPES or a.map_type == 0:
        raise fail(EINVAL, f"unknown map type {a.map_type}")
    check = getattr(maps, "map_alloc_check", None)
    if check is not None and a.map_type in _HAS_ALLOC_CHECK:
        check(k, a)  # ops->map_alloc_check runs before the privilege checks; other types check in map_alloc
    if token_flag or (a.map_flags & BPF_F_VTYPE_BTF_OBJ_FD):
        raise fail(EINVAL, "bpf tokens and module BTF are not supported by the simulated kernel")
    if not k.bpf_capable:
        if k.unprivileged_bpf_disabled or a.map_type not in _UNPRIV_MAP_TYPES:
            raise fail(EPERM, "map creation needs CAP_BPF")
    if excl_prog_hash or excl_prog_hash_size:
        raise fail(EINVAL, "exclusive maps (excl_prog_hash) are not supported by the simulated kernel")
    m = maps.create_map(k, a)
    try:
        m.name = bpf_obj_name_cpy(bytes(ua.raw[28:44]))  # map_name
        if a.btf_key_type_id or a.btf_value_type_id or a.btf_vmlinux_value_type_id:
            from .btf import map_attach_btf

            map_attach_btf(k, m, a.btf_fd, a.btf_key_type_id, a.btf_value_type_id)
    except OSError:
        _destroy_map(m)
        raise
    return k.fds.install(register_map(k, m), mode)


def register_map(k: SimKernel, m: Any, prefer_id: int | None = None) -> Any:
    """Publish a new map object: give it an id (``bpf_map_alloc_id``) and the id-freeing release."""
    if not hasattr(m, "frozen"):
        m.frozen = False
    m.id = k.map_ids.alloc(m, prefer_id)
    _wrap_release(k, m)
    return m


def _destroy_map(m: Any) -> None:
    hook = getattr(m, "release", None)
    if callable(hook):
        hook()


def _wrap_release(k: SimKernel, m: Any) -> None:
    """When the map's last reference goes, its id goes first (``bpf_map_free_id``), then its memory."""
    inner = getattr(m, "release", None)

    def release() -> None:
        k.map_ids.remove(m.id)
        btf_obj = getattr(m, "btf", None)
        if btf_obj is not None:
            k.obj_put(btf_obj)
        if callable(inner):
            inner()

    m.release = release


# -- element commands ----------------------------------------------------------------------------------
def map_lookup_elem(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(MAP_ELEM_END)
    a: Any = ua.view(MapElemAttr)
    if a.flags & ~F_LOCK:
        raise fail(EINVAL, "lookup flags")
    m, f = map_from_fd(k, a.map_fd)
    if not sys_perms(m, f) & FMODE_READ:
        raise fail(EPERM, "map fd is not readable")
    if (a.flags & F_LOCK) and not has_spin_lock(m):
        raise fail(EINVAL, "BPF_F_LOCK on a map without a bpf_spin_lock")
    key = copy_key(m, a.key)
    if m.map_type == T.BPF_MAP_TYPE_BLOOM_FILTER:
        # the value is the question: copied in, checked with map_peek_elem, copied back unchanged
        value = m.sys_lookup(key, int(a.flags), copy_from_user(a.value, bpf_map_value_size(k, m)))
    else:
        value = m.sys_lookup(key, int(a.flags))
    copy_to_user(a.value, value)
    return 0


def map_update_elem(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(MAP_ELEM_END)
    a: Any = ua.view(MapElemAttr)
    m, f = map_from_fd(k, a.map_fd)
    if not sys_perms(m, f) & FMODE_WRITE:
        raise fail(EPERM, "map fd is not writable (or the map is frozen)")
    if (a.flags & F_LOCK) and not has_spin_lock(m):
        raise fail(EINVAL, "BPF_F_LOCK on a map without a bpf_spin_lock")
    key = copy_key(m, a.key)
    value = copy_from_user(a.value, bpf_map_value_size(k, m))
    m.sys_update(key, value, int(a.flags))
    return 0


def map_delete_elem(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(MAP_DELETE_END)
    a: Any = ua.view(MapElemAttr)
    m, f = map_from_fd(k, a.map_fd)
    if not sys_perms(m, f) & FMODE_WRITE:
        raise fail(EPERM, "map fd is not writable (or the map is frozen)")
    key = copy_key(m, a.key)
    m.sys_delete(key)
    return 0


def map_get_next_key(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(MAP_GET_NEXT_KEY_END)
    a: Any = ua.view(MapElemAttr)
    m, f = map_from_fd(k, a.map_fd)
    if not sys_perms(m, f) & FMODE_READ:
        raise fail(EPERM, "map fd is not readable")
    key = copy_key(m, a.key) if a.key else None
    nxt = m.sys_get_next_key(key)
    copy_to_user(a.next_key, nxt)
    return 0


def map_lookup_and_delete_elem(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(MAP_ELEM_END)
    a: Any = ua.view(MapElemAttr)
    if a.flags & ~F_LOCK:
        raise fail(EINVAL, "lookup_and_delete flags")
    m, f = map_from_fd(k, a.map_fd)
    perms = sys_perms(m, f)
    if not (perms & FMODE_READ) or not (perms & FMODE_WRITE):
        raise fail(EPERM, "map fd must be readable and writable")
    if a.flags and m.map_type in _QUEUES:
        raise fail(EINVAL, "flags on a queue or stack pop")
    if (a.flags & F_LOCK) and not has_spin_lock(m):
        raise fail(EINVAL, "BPF_F_LOCK on a map without a bpf_spin_lock")
    key = copy_key(m, a.key)
    if m.map_type not in _QUEUES and m.map_type not in _HASHES and m.map_type != T.BPF_MAP_TYPE_STACK_TRACE:
        raise fail(ENOTSUPP, "lookup_and_delete is for queues, stacks, hash and stack trace maps")
    value = m.sys_lookup_and_delete(key, int(a.flags))
    copy_to_user(a.value, value)
    return 0


def map_freeze(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(MAP_FREEZE_END)
    (fd,) = struct.unpack_from("<I", ua.raw, 0)
    m, f = map_from_fd(k, fd)
    if m.map_type == T.BPF_MAP_TYPE_STRUCT_OPS or has_spin_lock(m):
        raise fail(ENOTSUPP, "map with special fields cannot be frozen")
    if not sys_perms(m, f) & FMODE_WRITE:
        raise fail(EPERM, "map fd is not writable")
    if getattr(m, "writecnt", 0):
        raise fail(EBUSY, "map has writable mappings")
    if getattr(m, "frozen", False):
        raise fail(EBUSY, "map is already frozen")
    freeze = getattr(m, "freeze", None)
    if callable(freeze):
        freeze()
    m.frozen = True
    return 0


# -- ids ----------------------------------------------------------------------------------------------
def get_next_id(k: SimKernel, ua: UAttr, ids: Any) -> int:
    """``bpf_obj_get_next_id``."""
    ua.check_unused(GET_NEXT_ID_END)
    start = struct.unpack_from("<I", ua.raw, 0)[0]
    if start >= INT_MAX:
        raise fail(EINVAL, "start_id")
    if not k.capable("CAP_SYS_ADMIN"):
        raise fail(EPERM, "GET_NEXT_ID needs CAP_SYS_ADMIN")
    nxt = ids.get_next(start)
    if nxt is None:
        raise fail(ENOENT, "no more ids")
    ua.put_u32(GetIdAttr.next_id.offset, nxt)
    return 0


def map_get_next_id(k: SimKernel, ua: UAttr) -> int:
    return get_next_id(k, ua, k.map_ids)


def map_get_fd_by_id(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(MAP_GET_FD_BY_ID_END)
    map_id, open_flags = struct.unpack_from("<I4xI", ua.raw, 0)
    if open_flags & ~(F_RDONLY | F_WRONLY):
        raise fail(EINVAL, "open_flags")
    if not k.capable("CAP_SYS_ADMIN"):
        raise fail(EPERM, "GET_FD_BY_ID needs CAP_SYS_ADMIN")
    mode = bpf_get_file_flag(open_flags)
    m = k.map_ids.find(map_id)
    if m is None:
        raise fail(ENOENT, f"no map with id {map_id}")
    return k.fds.install(m, mode)


# -- OBJ_GET_INFO_BY_FD --------------------------------------------------------------------------------
def check_uarg_tail_zero(uaddr: int, expected: int, actual: int) -> None:
    """``bpf_check_uarg_tail_zero`` on a user pointer."""
    if actual > 4096:
        raise fail(E2BIG, "info larger than a page")
    if actual <= expected:
        return
    if not check_zeroed_user(uaddr + expected, actual - expected):
        raise fail(E2BIG, "non-zero bytes past the info struct")


#: sizeof(struct bpf_map_info) on Linux 6.18 (adds ``hash``/``hash_size`` after ``map_extra``)
MAP_INFO_SIZE = 104


def map_get_info(k: SimKernel, ua: UAttr, m: Any, uinfo: int, info_len: int) -> int:
    """``bpf_map_get_info_by_fd``."""
    check_uarg_tail_zero(uinfo, MAP_INFO_SIZE, info_len)
    info_len = min(MAP_INFO_SIZE, info_len)
    user = bytearray(copy_from_user(uinfo, info_len)) if info_len else bytearray()
    user += bytes(MAP_INFO_SIZE - len(user))
    want_hash, hash_size = struct.unpack_from("<QI", user, 88)
    if want_hash or hash_size:
        raise fail(EINVAL, "map content hashes are for exclusive maps")
    info: Any = BpfMapInfo()
    info.type = m.map_type
    info.id = m.id
    info.key_size = m.key_size
    info.value_size = m.value_size
    info.max_entries = m.max_entries
    info.map_flags = int(getattr(m, "map_flags", 0)) & ~(F_RDONLY | F_WRONLY)
    info.name = getattr(m, "name", b"")
    btf_obj = getattr(m, "btf", None)
    if btf_obj is not None:
        info.btf_id = btf_obj.id
        info.btf_key_type_id = getattr(m, "btf_key_type_id", 0)
        info.btf_value_type_id = getattr(m, "btf_value_type_id", 0)
    info.map_extra = getattr(m, "map_extra", 0)
    out = bytes(info) + bytes(MAP_INFO_SIZE - ctypes.sizeof(info))
    copy_to_user(uinfo, out[:info_len])
    ua.put_u32(InfoAttr.info_len.offset, info_len)
    return 0


def obj_get_info_by_fd(k: SimKernel, ua: UAttr) -> int:
    from .btf import BtfObject, btf_get_info
    from .link import BpfLink, link_get_info
    from .prog import BpfProg
    from .progcmds import prog_get_info

    ua.check_unused(INFO_END)
    a: Any = ua.view(InfoAttr)
    try:
        f = k.fds.file(a.bpf_fd)
    except OSError as e:
        if e.errno == EBADF:
            raise fail(EBADFD, f"fd {a.bpf_fd} is not open")
        raise
    obj = f.obj
    if isinstance(obj, BpfProg):
        return prog_get_info(k, ua, obj, a.info, a.info_len)
    if is_map(obj):
        return map_get_info(k, ua, obj, a.info, a.info_len)
    if isinstance(obj, BtfObject):
        return btf_get_info(k, ua, obj, a.info, a.info_len)
    if isinstance(obj, BpfLink):
        return link_get_info(k, ua, obj, a.info, a.info_len)
    raise fail(EINVAL, "fd is not a bpf object")

