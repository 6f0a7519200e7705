"""BTF objects: BPF_BTF_LOAD, BTF ids, ``bpf_btf_info``, and BTF attached to maps.

BTF_LOAD follows ``btf_parse`` (kernel/bpf/btf.c): the log attributes, the
size limit, the header (``btf_parse_hdr``), the section layout
(``btf_check_sec_info``), the string section (``btf_parse_str_sec``) and a walk
over the type records (``btf_check_all_metas``) that checks each record fits
and has a known kind. The types are then indexed so that map creation can
check ``btf_key_type_id``/``btf_value_type_id`` against key and value sizes
(``map_check_btf``) and find a ``struct bpf_spin_lock`` in the value.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..uapi.bpf import BpfMapType, BtfLoadAttr, InfoAttr
from .btf_check import BtfReject, _Checker
from .errors import E2BIG, EACCES, EINVAL, ENOENT, ENOSPC, ENOTSUPP, EOPNOTSUPP, EPERM, fail
from .mapcmds import check_uarg_tail_zero, get_next_id
from .usermem import copy_from_user, copy_to_user
from .vlog import VerifierLog, finalize_log

if TYPE_CHECKING:
    from .kernel import SimKernel, UAttr

__all__ = ["BtfObject", "btf_load", "btf_from_fd", "btf_get_info", "map_attach_btf", "parse_btf"]

BTF_LOAD_END = 40  # btf_token_fd (6.9+)
BTF_GET_FD_BY_ID_END = 4
BTF_MAX_SIZE = 16 * 1024 * 1024
BTF_MAGIC = 0xEB9F
BTF_HDR_SIZE = 24
BTF_INFO_SIZE = 32
BTF_MAX_NAME_OFFSET = 0xFFFFFF

# BTF kinds (include/uapi/linux/btf.h)
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD, KIND_TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC = 9, 10, 11, 12, 13, 14, 15
KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = 16, 17, 18, 19
_MODIFIERS = {KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG}
#: map types whose ``map_check_btf`` accepts a BTF value without a key type
_KEYLESS_BTF_OK = {BpfMapType.BPF_MAP_TYPE_ARRAY, BpfMapType.BPF_MAP_TYPE_QUEUE, BpfMapType.BPF_MAP_TYPE_STACK,
                   BpfMapType.BPF_MAP_TYPE_BLOOM_FILTER, BpfMapType.BPF_MAP_TYPE_RINGBUF}


@dataclass
class BtfType:
    kind: int
    name: str
    vlen: int
    kind_flag: bool
    size_or_type: int
    extra: bytes = b""
    name_off: int = 0


@dataclass(eq=False)
class BtfObject:
    """A loaded BTF blob (``struct btf``)."""

    data: bytes
    types: list[BtfType] = field(default_factory=list)  # index 0 is void
    id: int = 0
    name: bytes = b""
    kernel_btf: bool = False
    charged: int = 0
    kernel: Any = None

    def release(self) -> None:
        if self.kernel is not None:
            if self.id:
                self.kernel.btf_ids.remove(self.id)
            self.kernel.memlock.uncharge(self.charged)

    def resolve_size(self, type_id: int) -> int | None:
        """``btf_type_id_size``: the size of a type through modifiers, or None for a sizeless type."""
        seen = 0
        while 0 < type_id < len(self.types) and seen < 64:
            t = self.types[type_id]
            if t.kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT, KIND_DATASEC):
                return t.size_or_type
            if t.kind == KIND_PTR:
                return 8
            if t.kind == KIND_ARRAY:
                elem, _index, nelems = struct.unpack("<III", t.extra[:12])
                es = self.resolve_size(elem)
                return None if es is None else es * nelems
            if t.kind in _MODIFIERS:
                type_id = t.size_or_type
                seen += 1
                continue
            return None
        return None

    def spin_lock_off(self, type_id: int) -> int | None:
        """The byte offset of a top-level ``struct bpf_spin_lock`` member of a struct, if it has one."""
        t = self._skip_mods(type_id)
        if t is None or t.kind not in (KIND_STRUCT, KIND_UNION):
            return None
        for j in range(t.vlen):
            _name, mtype, off = struct.unpack_from("<III", t.extra, 12 * j)
            mt = self._skip_mods(mtype)
            if mt is not None and mt.kind == KIND_STRUCT and mt.name == "bpf_spin_lock":
                return (off & 0xFFFFFF if t.kind_flag else off) // 8
        return None

    def _skip_mods(self, type_id: int) -> BtfType | None:
        for _ in range(64):
            if not 0 < type_id < len(self.types):
                return None
            t = self.types[type_id]
            if t.kind not in _MODIFIERS:
                return t
            type_id = t.size_or_type
        return None


class _BtfError(Exception):
    def __init__(self, err: int, msg: str) -> None:
        super().__init__(msg)
        self.err = err
        self.msg = msg


def _extra_len(kind: int, vlen: int) -> int:
    return {KIND_INT: 4, KIND_ARRAY: 12, KIND_STRUCT: 12 * vlen, KIND_UNION: 12 * vlen, KIND_ENUM: 8 * vlen,
            KIND_FUNC_PROTO: 8 * vlen, KIND_VAR: 4, KIND_DATASEC: 12 * vlen, KIND_DECL_TAG: 4,
            KIND_ENUM64: 12 * vlen}.get(kind, 0)


def parse_btf(data: bytes, log: VerifierLog | None = None) -> list[BtfType]:
    """Validate a BTF blob as ``btf_parse`` does; returns the types (index 0 is void).

    Raises ``OSError`` with the kernel's errno; the reason also goes to ``log``.
    """
    try:
        return _parse(data, log)
    except _BtfError as e:
        if log is not None:
            log.write(e.msg)  # btf_verifier_log(env, "..."): these lines have no newline
        raise fail(e.err, e.msg)
    except BtfReject as e:  # already logged, on the record's own line
        raise fail(e.err, str(e))


def _parse(data: bytes, log: VerifierLog | None) -> list[BtfType]:
    size = len(data)
    if size < 8:
        raise _BtfError(EINVAL, "hdr_len not found")
    magic, version, flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if size < hdr_len:
        raise _BtfError(EINVAL, "btf_header not found")
    if hdr_len > BTF_HDR_SIZE and any(data[BTF_HDR_SIZE:hdr_len]):
        raise _BtfError(E2BIG, "Unsupported btf_header")
    hdr = (data[:min(hdr_len, BTF_HDR_SIZE)] + bytes(BTF_HDR_SIZE))[:BTF_HDR_SIZE]
    _, _, _, _, type_off, type_len, str_off, str_len = struct.unpack("<HBBIIIII", hdr)
    if log is not None and log.level:
        log.write(f"magic: 0x{magic:x}\nversion: {version}\nflags: 0x{flags:x}\nhdr_len: {hdr_len}\n"
                  f"type_off: {type_off}\ntype_len: {type_len}\nstr_off: {str_off}\nstr_len: {str_len}\n"
                  f"btf_total_size: {size}\n")
    if magic != BTF_MAGIC:
        raise _BtfError(EINVAL, "Invalid magic")
    if version != 1:
        raise _BtfError(ENOTSUPP, "Unsupported version")
    if flags:
        raise _BtfError(ENOTSUPP, "Unsupported flags")
    if size == hdr_len:
        raise _BtfError(EINVAL, "No data")
    expected_total = size - hdr_len
    total = 0
    for off, ln in sorted([(type_off, type_len), (str_off, str_len)]):
        if expected_total < off:
            raise _BtfError(EINVAL, "Invalid section offset")
        if total < off:
            raise _BtfError(EINVAL, "Unsupported section found")
        if total > off:
            raise _BtfError(EINVAL, "Section overlap found")
        if expected_total - total < ln:
            raise _BtfError(EINVAL, "Total section length too long")
        total += ln
    if expected_total != total:
        raise _BtfError(EINVAL, "Unsupported section found")
    body = data[hdr_len:]
    strs = body[str_off:str_off + str_len]
    if str_off + str_len != len(body):
        raise _BtfError(EINVAL, "String section is not at the end")
    if not str_len or str_len - 1 > BTF_MAX_NAME_OFFSET or strs[-1] != 0 or strs[0] != 0:
        raise _BtfError(EINVAL, "Invalid string section")
    if type_off & 3:
        raise _BtfError(EINVAL, "Unaligned type_off")
    if not type_len:
        raise _BtfError(EINVAL, "No type found")
    tsec = body[type_off:type_off + type_len]
    types: list[BtfType] = [BtfType(0, "", 0, False, 0)]
    checker = _Checker(types, bytes(strs), log)  # type: ignore[arg-type]
    pos = 0
    while pos < len(tsec):
        tid = len(types)
        if len(tsec) - pos < 12:
            raise _BtfError(EINVAL, f"[{tid}] meta_left:{len(tsec) - pos} meta_needed:12")
        name_off, info, st = struct.unpack_from("<III", tsec, pos)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        if info & 0x60FF0000:
            raise _BtfError(EINVAL, f"[{tid}] Invalid btf_info:{info:x}")
        if not 1 <= kind <= KIND_ENUM64:
            raise _BtfError(EINVAL, f"[{tid}] Invalid kind:{kind}")
        if name_off >= str_len:
            raise _BtfError(EINVAL, f"[{tid}] Invalid name_offset:{name_off}")
        extra = _extra_len(kind, vlen)
        end = strs.find(b"\0", name_off)
        name = strs[name_off:end].decode(errors="replace")
        t = BtfType(kind, name, vlen, bool(info >> 31), st, bytes(tsec[pos + 12:pos + 12 + extra]), name_off)
        if len(tsec) - pos - 12 < extra:
            raise checker.reject(tid, t, f"meta_left:{len(tsec) - pos - 12} meta_needed:{extra}", details=False)
        types.append(t)
        checker.check_meta(tid, t)
        pos += 12 + extra
    for tid in range(1, len(types)):
        checker.resolve(tid, types[tid])
    return types


def btf_load(k: SimKernel, ua: UAttr) -> int:
    """``bpf_btf_load`` → ``btf_new_fd``/``btf_parse``; the log as the verifier's (ENOSPC when short)."""
    ua.check_unused(BTF_LOAD_END)
    a: Any = ua.view(BtfLoadAttr)
    (btf_flags,) = struct.unpack_from("<I", ua.raw, 32)
    if btf_flags & ~(1 << 16):
        raise fail(EINVAL, "btf_flags")
    if btf_flags:
        raise fail(EINVAL, "bpf tokens are not supported by the simulated kernel")
    if not k.bpf_capable:
        raise fail(EPERM, "BTF_LOAD needs CAP_BPF")
    log = VerifierLog.from_attr(a.btf_log_level, a.btf_log_buf, a.btf_log_size)
    if a.btf_size > BTF_MAX_SIZE:
        raise fail(E2BIG, "BTF larger than 16 MiB")
    k.memlock.charge(a.btf_size)
    try:
        parse_err: OSError | None = None
        data = b""
        types: list[BtfType] = []
        try:
            data = copy_from_user(a.btf, a.btf_size)
            types = parse_btf(data, log)
        except OSError as e:
            parse_err = e
        # btf_parse: "overwrite err with -ENOSPC or -EFAULT"
        err = finalize_log(log)
        if ua.size >= BtfLoadAttr.btf_log_true_size.offset + 4:
            ua.put_u32(BtfLoadAttr.btf_log_true_size.offset, log.true_size)
        if err:
            raise fail(err, "BTF log")
        if parse_err is not None:
            raise parse_err
    except BaseException:
        k.memlock.uncharge(a.btf_size)
        raise
    obj = BtfObject(data=data, types=types, charged=a.btf_size, kernel=k)
    obj.id = k.btf_ids.alloc(obj)
    return k.fds.install(obj)


def btf_from_fd(k: SimKernel, fd: int) -> BtfObject:
    """``btf_get_by_fd``: EBADF if not open, EINVAL if not BTF."""
    obj = k.fds.get(fd)
    if not isinstance(obj, BtfObject):
        raise fail(EINVAL, f"fd {fd} is not BTF")
    return obj


def map_attach_btf(k: SimKernel, m: Any, btf_fd: int, key_type_id: int, value_type_id: int) -> None:
    """The BTF part of ``map_create`` (``map_check_btf``): key and value types must match the sizes."""
    obj = btf_from_fd(k, btf_fd)
    if obj.kernel_btf:
        raise fail(EACCES, "kernel BTF for a map")
    if value_type_id:
        if key_type_id:
            ks = obj.resolve_size(key_type_id)
            if ks is None or ks != m.key_size:
                raise fail(EINVAL, "btf_key_type_id does not match key_size")
        elif m.map_type not in _KEYLESS_BTF_OK and getattr(m, "check_btf", None) is None:
            raise fail(EINVAL, "map type needs a BTF key type")
        vs = obj.resolve_size(value_type_id)
        if vs is None or vs != m.value_size:
            raise fail(EINVAL, "btf_value_type_id does not match value_size")
        if key_type_id and m.map_type in (BpfMapType.BPF_MAP_TYPE_ARRAY, BpfMapType.BPF_MAP_TYPE_PERCPU_ARRAY):
            kt = obj._skip_mods(key_type_id)
            if kt is None or kt.kind != KIND_INT or kt.size_or_type != 4:
                raise fail(EINVAL, "array key type must be a 32-bit int")  # array_map_check_btf
        if not key_type_id and m.map_type == BpfMapType.BPF_MAP_TYPE_ARRAY:
            vt = obj._skip_mods(value_type_id)
            if m.max_entries != 1 or vt is None or vt.kind != KIND_DATASEC:
                raise fail(EINVAL, "keyless BTF is only for single-entry global data arrays")
        off = obj.spin_lock_off(value_type_id)
        if off is not None:
            if m.map_flags & (0x80 | 0x100):  # BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG
                raise fail(EACCES, "bpf_spin_lock in a map the program cannot write")
            if m.map_type not in (BpfMapType.BPF_MAP_TYPE_HASH, BpfMapType.BPF_MAP_TYPE_ARRAY):
                raise fail(EOPNOTSUPP, "bpf_spin_lock in this map type")
            m.spin_lock_off = off
        check_btf = getattr(m, "check_btf", None)  # map->ops->map_check_btf, where the type has one
        if check_btf is not None:
            check_btf(obj, key_type_id, value_type_id)
    k.obj_get(obj)
    m.btf = obj
    m.btf_key_type_id = key_type_id
    m.btf_value_type_id = value_type_id


def btf_get_next_id(k: SimKernel, ua: UAttr) -> int:
    return get_next_id(k, ua, k.btf_ids)


def btf_get_fd_by_id(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(BTF_GET_FD_BY_ID_END)
    (btf_id,) = struct.unpack_from("<I", ua.raw, 0)
    if not k.capable("CAP_SYS_ADMIN"):
        raise fail(EPERM, "GET_FD_BY_ID needs CAP_SYS_ADMIN")
    obj = k.btf_ids.find(btf_id)
    if obj is None:
        raise fail(ENOENT, f"no BTF with id {btf_id}")
    return k.fds.install(obj)


def btf_get_info(k: SimKernel, ua: UAttr, obj: BtfObject, uinfo: int, info_len: int) -> int:
    """``btf_get_info_by_fd``: the blob up to ``btf_size``, the name with ENOSPC when it does not fit."""
    check_uarg_tail_zero(uinfo, BTF_INFO_SIZE, info_len)
    info_copy = min(info_len, BTF_INFO_SIZE)
    info = bytearray(copy_from_user(uinfo, info_copy)) + bytes(BTF_INFO_SIZE - info_copy)
    ubtf, ubtf_size, _id, uname, uname_len, _kernel = struct.unpack_from("<QIIQII", info, 0)
    copy_to_user(ubtf, obj.data[:min(len(obj.data), ubtf_size)])
    if bool(uname) != bool(uname_len):
        raise fail(EINVAL, "name and name_len go together")
    err = 0
    if uname:
        if uname_len >= len(obj.name) + 1:
            copy_to_user(uname, obj.name + b"\0")
        else:
            copy_to_user(uname, obj.name[:uname_len - 1] + b"\0")
            err = ENOSPC
    struct.pack_into("<QIIQII", info, 0, ubtf, len(obj.data), obj.id, uname, len(obj.name), int(obj.kernel_btf))
    copy_to_user(uinfo, bytes(info[:info_copy]))
    ua.put_u32(InfoAttr.info_len.offset, info_copy)
    if err:
        raise fail(err, "name buffer too small")
    return 0
