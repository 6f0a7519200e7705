"""bpf(2) map and object commands: one function per command, like libbpf's ``src/bpf.c``.

This module (with ``prog.py`` and ``perf_event.py`` next to it) is the only
place ``union bpf_attr`` is packed. Every function takes the ``Kernel`` first
and goes through ``kernel.bpf(cmd, attr)``, so it runs on ``SimKernel`` and
``LinuxKernel`` alike. Field names are those of ``/usr/include/linux/bpf.h``.
Failures propagate as ``OSError`` with the kernel's errno.
"""
from __future__ import annotations

import ctypes
import errno
from dataclasses import dataclass
from typing import TypeVar

from ..kernel import Kernel
from ..uapi.bpf import (
    BPF_OBJ_NAME_LEN,
    BpfBtfInfo,
    BpfCmd,
    BpfLinkInfo,
    BpfMapInfo,
    BpfProgInfo,
    GetIdAttr,
    InfoAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    ObjAttr,
)
from ._user import UserBuf, cstr, user_ptr

__all__ = [
    "bpf_map_create", "bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_map_delete_elem",
    "bpf_map_get_next_key", "bpf_map_lookup_and_delete_elem", "bpf_map_freeze",
    "bpf_map_lookup_batch", "bpf_map_lookup_and_delete_batch", "bpf_map_update_batch",
    "bpf_map_delete_batch", "BatchResult", "bpf_obj_pin", "bpf_obj_get",
    "bpf_prog_get_next_id", "bpf_map_get_next_id", "bpf_btf_get_next_id", "bpf_link_get_next_id",
    "bpf_prog_get_fd_by_id", "bpf_map_get_fd_by_id", "bpf_btf_get_fd_by_id", "bpf_link_get_fd_by_id",
    "bpf_obj_get_info_by_fd", "bpf_map_get_info_by_fd", "bpf_prog_get_info_by_fd",
    "bpf_btf_get_info_by_fd", "bpf_link_get_info_by_fd", "iter_ids", "bpf_prog_get_xlated_insns",
    "bpf_prog_get_jited_insns", "bpf_btf_get_data",
]


def _name(name: str | bytes) -> bytes:
    """Object names are cut to BPF_OBJ_NAME_LEN - 1 bytes, as libbpf does (the kernel rejects longer ones)."""
    b = name.encode() if isinstance(name, str) else name
    return b[: BPF_OBJ_NAME_LEN - 1]


def bpf_map_create(
    kernel: Kernel,
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    name: str | bytes = b"",
    map_flags: int = 0,
    inner_map_fd: int = 0,
    numa_node: int = 0,
    map_ifindex: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
) -> int:
    """BPF_MAP_CREATE; returns the new map fd."""
    attr = MapCreateAttr(
        map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries,
        map_flags=map_flags, inner_map_fd=inner_map_fd, numa_node=numa_node, map_name=_name(name),
        map_ifindex=map_ifindex, btf_fd=btf_fd, btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id, btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
        map_extra=map_extra,
    )
    return kernel.bpf(BpfCmd.BPF_MAP_CREATE, attr)


def bpf_map_lookup_elem(
    kernel: Kernel, map_fd: int, key: bytes | None, value_size: int, flags: int = 0, *, value_in: bytes = b""
) -> bytes:
    """BPF_MAP_LOOKUP_ELEM. ``value_size`` is the user buffer's size: for per-CPU maps
    ``round_up(value_size, 8) * nr_possible_cpus``. ``key`` None/empty is NULL (queue/stack peek).
    ``value_in`` pre-fills the value buffer: a BLOOM_FILTER lookup reads the value to test from it."""
    k = user_ptr(key)
    v = UserBuf(value_in, size=value_size)
    attr = MapElemAttr(map_fd=map_fd, key=k.addr, value=v.addr, flags=flags)
    kernel.bpf(BpfCmd.BPF_MAP_LOOKUP_ELEM, attr)
    return v.raw()


def bpf_map_update_elem(kernel: Kernel, map_fd: int, key: bytes | None, value: bytes, flags: int = 0) -> None:
    """BPF_MAP_UPDATE_ELEM with BPF_ANY/BPF_NOEXIST/BPF_EXIST/BPF_F_LOCK. NULL key pushes to a queue/stack."""
    k = user_ptr(key)
    v = user_ptr(value)
    attr = MapElemAttr(map_fd=map_fd, key=k.addr, value=v.addr, flags=flags)
    kernel.bpf(BpfCmd.BPF_MAP_UPDATE_ELEM, attr)


def bpf_map_delete_elem(kernel: Kernel, map_fd: int, key: bytes | None, flags: int = 0) -> None:
    """BPF_MAP_DELETE_ELEM."""
    k = user_ptr(key)
    attr = MapElemAttr(map_fd=map_fd, key=k.addr, flags=flags)
    kernel.bpf(BpfCmd.BPF_MAP_DELETE_ELEM, attr)


def bpf_map_get_next_key(kernel: Kernel, map_fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """BPF_MAP_GET_NEXT_KEY: the key after ``key``, or the first key when ``key`` is None.

    Returns None at the end (the kernel's ENOENT), like aya's ``bpf_map_get_next_key``.
    """
    k = user_ptr(key)
    nk = UserBuf(size=key_size)
    attr = MapElemAttr(map_fd=map_fd, key=k.addr, value=nk.addr)
    try:
        kernel.bpf(BpfCmd.BPF_MAP_GET_NEXT_KEY, attr)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    return nk.raw()


def bpf_map_lookup_and_delete_elem(
    kernel: Kernel, map_fd: int, key: bytes | None, value_size: int, flags: int = 0
) -> bytes:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM (queue/stack pop with a NULL key; hash maps since 5.14)."""
    k = user_ptr(key)
    v = UserBuf(size=value_size)
    attr = MapElemAttr(map_fd=map_fd, key=k.addr, value=v.addr, flags=flags)
    kernel.bpf(BpfCmd.BPF_MAP_LOOKUP_AND_DELETE_ELEM, attr)
    return v.raw()


def bpf_map_freeze(kernel: Kernel, map_fd: int) -> None:
    """BPF_MAP_FREEZE: user space may no longer write the map."""
    attr = MapElemAttr(map_fd=map_fd)
    kernel.bpf(BpfCmd.BPF_MAP_FREEZE, attr)


@dataclass(frozen=True)
class BatchResult:
    """The outcome of a lookup batch: ``count`` entries, the ``out_batch`` token, and whether the walk is done."""

    keys: list[bytes]
    values: list[bytes]
    out_batch: bytes
    done: bool


def _lookup_batch(
    kernel: Kernel, cmd: BpfCmd, map_fd: int, in_batch: bytes | None, key_size: int, value_size: int,
    count: int, batch_size: int, elem_flags: int, flags: int,
) -> BatchResult:
    inb = user_ptr(in_batch)
    outb = UserBuf(size=max(batch_size, 1))
    keys = UserBuf(size=key_size * count)
    values = UserBuf(size=value_size * count)
    attr = MapBatchAttr(
        in_batch=inb.addr, out_batch=outb.addr, keys=keys.addr, values=values.addr, count=count,
        map_fd=map_fd, elem_flags=elem_flags, flags=flags,
    )
    done = False
    try:
        kernel.bpf(cmd, attr)
    except OSError as e:
        # ENOENT: the walk reached the end; attr.count says how many entries were still copied
        if e.errno != errno.ENOENT:
            raise
        done = True
    n = int(attr.count)
    kraw, vraw = keys.raw(), values.raw()
    return BatchResult(
        keys=[kraw[i * key_size:(i + 1) * key_size] for i in range(n)],
        values=[vraw[i * value_size:(i + 1) * value_size] for i in range(n)],
        out_batch=outb.raw(batch_size),
        done=done,
    )


def bpf_map_lookup_batch(
    kernel: Kernel, map_fd: int, in_batch: bytes | None, key_size: int, value_size: int, count: int,
    *, batch_size: int | None = None, elem_flags: int = 0, flags: int = 0,
) -> BatchResult:
    """BPF_MAP_LOOKUP_BATCH. ``in_batch`` None starts the walk; pass ``out_batch`` back to continue.

    ``batch_size`` is the size of the opaque batch token: the key size for hash
    maps, 4 (a u32 index) for arrays. ``value_size`` is per entry (per-CPU: all CPUs).
    """
    return _lookup_batch(kernel, BpfCmd.BPF_MAP_LOOKUP_BATCH, map_fd, in_batch, key_size, value_size, count,
                         batch_size if batch_size is not None else max(key_size, 4), elem_flags, flags)


def bpf_map_lookup_and_delete_batch(
    kernel: Kernel, map_fd: int, in_batch: bytes | None, key_size: int, value_size: int, count: int,
    *, batch_size: int | None = None, elem_flags: int = 0, flags: int = 0,
) -> BatchResult:
    """BPF_MAP_LOOKUP_AND_DELETE_BATCH (hash maps)."""
    return _lookup_batch(kernel, BpfCmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH, map_fd, in_batch, key_size, value_size,
                         count, batch_size if batch_size is not None else max(key_size, 4), elem_flags, flags)


def bpf_map_update_batch(
    kernel: Kernel, map_fd: int, keys: list[bytes], values: list[bytes], *, elem_flags: int = 0, flags: int = 0
) -> int:
    """BPF_MAP_UPDATE_BATCH; returns how many entries were updated. On failure the OSError
    carries ``count`` (entries done before the failing one) as ``e.count``."""
    kb = UserBuf(b"".join(keys))
    vb = UserBuf(b"".join(values))
    attr = MapBatchAttr(keys=kb.addr, values=vb.addr, count=len(keys), map_fd=map_fd, elem_flags=elem_flags,
                        flags=flags)
    try:
        kernel.bpf(BpfCmd.BPF_MAP_UPDATE_BATCH, attr)
    except OSError as e:
        e.count = int(attr.count)  # type: ignore[attr-defined]
        raise
    return int(attr.count)


def bpf_map_delete_batch(kernel: Kernel, map_fd: int, keys: list[bytes], *, elem_flags: int = 0,
                         flags: int = 0) -> int:
    """BPF_MAP_DELETE_BATCH; returns how many entries were deleted (``e.count`` on failure)."""
    kb = UserBuf(b"".join(keys))
    attr = MapBatchAttr(keys=kb.addr, count=len(keys), map_fd=map_fd, elem_flags=elem_flags, flags=flags)
    try:
        kernel.bpf(BpfCmd.BPF_MAP_DELETE_BATCH, attr)
    except OSError as e:
        e.count = int(attr.count)  # type: ignore[attr-defined]
        raise
    return int(attr.count)


def bpf_obj_pin(kernel: Kernel, fd: int, pathname: str) -> None:
    """BPF_OBJ_PIN: pin a map, program or link at a path on a bpffs."""
    p = cstr(pathname)
    attr = ObjAttr(pathname=p.addr, bpf_fd=fd)
    kernel.bpf(BpfCmd.BPF_OBJ_PIN, attr)


def bpf_obj_get(kernel: Kernel, pathname: str, file_flags: int = 0) -> int:
    """BPF_OBJ_GET: open a pinned object; returns a new fd."""
    p = cstr(pathname)
    attr = ObjAttr(pathname=p.addr, file_flags=file_flags)
    return kernel.bpf(BpfCmd.BPF_OBJ_GET, attr)


def _get_next_id(kernel: Kernel, cmd: BpfCmd, start_id: int) -> int | None:
    attr = GetIdAttr(start_id=start_id)
    try:
        kernel.bpf(cmd, attr)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
    return int(attr.next_id)


def bpf_prog_get_next_id(kernel: Kernel, start_id: int) -> int | None:
    """BPF_PROG_GET_NEXT_ID; None after the last id."""
    return _get_next_id(kernel, BpfCmd.BPF_PROG_GET_NEXT_ID, start_id)


def bpf_map_get_next_id(kernel: Kernel, start_id: int) -> int | None:
    """BPF_MAP_GET_NEXT_ID; None after the last id."""
    return _get_next_id(kernel, BpfCmd.BPF_MAP_GET_NEXT_ID, start_id)


def bpf_btf_get_next_id(kernel: Kernel, start_id: int) -> int | None:
    """BPF_BTF_GET_NEXT_ID; None after the last id."""
    return _get_next_id(kernel, BpfCmd.BPF_BTF_GET_NEXT_ID, start_id)


def bpf_link_get_next_id(kernel: Kernel, start_id: int) -> int | None:
    """BPF_LINK_GET_NEXT_ID; None after the last id."""
    return _get_next_id(kernel, BpfCmd.BPF_LINK_GET_NEXT_ID, start_id)


def iter_ids(kernel: Kernel, kind: str) -> list[int]:
    """All ids of ``kind`` ("prog", "map", "btf" or "link"), as ``bpftool prog list`` walks them."""
    step = {"prog": bpf_prog_get_next_id, "map": bpf_map_get_next_id, "btf": bpf_btf_get_next_id,
            "link": bpf_link_get_next_id}[kind]
    ids: list[int] = []
    cur = step(kernel, 0)
    while cur is not None:
        ids.append(cur)
        cur = step(kernel, cur)
    return ids


def _get_fd_by_id(kernel: Kernel, cmd: BpfCmd, obj_id: int, open_flags: int) -> int:
    attr = GetIdAttr(start_id=obj_id, open_flags=open_flags)
    return kernel.bpf(cmd, attr)


def bpf_prog_get_fd_by_id(kernel: Kernel, prog_id: int, open_flags: int = 0) -> int:
    return _get_fd_by_id(kernel, BpfCmd.BPF_PROG_GET_FD_BY_ID, prog_id, open_flags)


def bpf_map_get_fd_by_id(kernel: Kernel, map_id: int, open_flags: int = 0) -> int:
    return _get_fd_by_id(kernel, BpfCmd.BPF_MAP_GET_FD_BY_ID, map_id, open_flags)


def bpf_btf_get_fd_by_id(kernel: Kernel, btf_id: int, open_flags: int = 0) -> int:
    return _get_fd_by_id(kernel, BpfCmd.BPF_BTF_GET_FD_BY_ID, btf_id, open_flags)


def bpf_link_get_fd_by_id(kernel: Kernel, link_id: int, open_flags: int = 0) -> int:
    return _get_fd_by_id(kernel, BpfCmd.BPF_LINK_GET_FD_BY_ID, link_id, open_flags)


_Info = TypeVar("_Info", bound=ctypes.Structure)


def bpf_obj_get_info_by_fd(kernel: Kernel, fd: int, info: _Info) -> tuple[_Info, int]:
    """BPF_OBJ_GET_INFO_BY_FD into ``info`` (a zeroed or pointer-primed info struct).

    The struct itself is the user buffer, so pointer fields the caller primed
    (e.g. ``bpf_prog_info.map_ids``) are honoured. Returns the info and the
    ``info_len`` the kernel wrote back.
    """
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    kernel.bpf(BpfCmd.BPF_OBJ_GET_INFO_BY_FD, attr)
    return info, int(attr.info_len)


def bpf_map_get_info_by_fd(kernel: Kernel, fd: int) -> BpfMapInfo:
    return bpf_obj_get_info_by_fd(kernel, fd, BpfMapInfo())[0]


def bpf_prog_get_info_by_fd(kernel: Kernel, fd: int, *, map_ids: int = 0) -> tuple[BpfProgInfo, list[int]]:
    """``struct bpf_prog_info`` and, when ``map_ids`` > 0, up to that many ids of the maps the program uses."""
    info = BpfProgInfo()
    ids = (ctypes.c_uint32 * max(map_ids, 1))()
    if map_ids:
        info.nr_map_ids = map_ids
        info.map_ids = ctypes.addressof(ids)
    bpf_obj_get_info_by_fd(kernel, fd, info)
    n = min(int(info.nr_map_ids), map_ids)
    return info, [int(ids[i]) for i in range(n)]


def bpf_btf_get_info_by_fd(kernel: Kernel, fd: int) -> BpfBtfInfo:
    return bpf_obj_get_info_by_fd(kernel, fd, BpfBtfInfo())[0]


def bpf_link_get_info_by_fd(kernel: Kernel, fd: int) -> BpfLinkInfo:
    return bpf_obj_get_info_by_fd(kernel, fd, BpfLinkInfo())[0]


def _prog_info_array(kernel: Kernel, fd: int, len_field: str, ptr_field: str) -> bytes:
    """Two BPF_OBJ_GET_INFO_BY_FD calls, as bpftool does: the length first, then into a buffer that size."""
    info, _ = bpf_obj_get_info_by_fd(kernel, fd, BpfProgInfo())
    n = int(getattr(info, len_field))
    if n == 0:
        return b""
    buf = UserBuf(size=n)
    primed = BpfProgInfo()
    setattr(primed, len_field, n)
    setattr(primed, ptr_field, buf.addr)
    bpf_obj_get_info_by_fd(kernel, fd, primed)
    return buf.raw(min(n, int(getattr(primed, len_field))))


def bpf_prog_get_xlated_insns(kernel: Kernel, fd: int) -> bytes:
    """The translated instructions of a loaded program (``bpftool prog dump xlated``)."""
    return _prog_info_array(kernel, fd, "xlated_prog_len", "xlated_prog_insns")


def bpf_prog_get_jited_insns(kernel: Kernel, fd: int) -> bytes:
    """The JITed machine code of a loaded program (``bpftool prog dump jited``); empty without a JIT."""
    return _prog_info_array(kernel, fd, "jited_prog_len", "jited_prog_insns")


def bpf_btf_get_data(kernel: Kernel, fd: int) -> bytes:
    """The raw BTF of a BTF object (``bpf_btf_info.btf``), e.g. to format a map's keys and values."""
    info = bpf_btf_get_info_by_fd(kernel, fd)
    n = int(info.btf_size)
    buf = UserBuf(size=n)
    primed = BpfBtfInfo(btf=buf.addr, btf_size=n)
    bpf_obj_get_info_by_fd(kernel, fd, primed)
    return buf.raw(min(n, int(primed.btf_size)))
