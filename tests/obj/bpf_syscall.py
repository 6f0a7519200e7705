"""A minimal bpf(2) caller for tests that load linked programs into the real kernel (never pinned, fds closed)."""
from __future__ import annotations

import ctypes
import os

from tinyaya.uapi.bpf import (
    BPF_ATTR_SIZE,
    BpfCmd,
    BpfMapInfo,
    BtfLoadAttr,
    InfoAttr,
    MapCreateAttr,
    MapElemAttr,
    ProgLoadAttr,
)

SYS_bpf = 321  # x86-64
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    buf = ctypes.create_string_buffer(bytes(attr).ljust(BPF_ATTR_SIZE, b"\0"), BPF_ATTR_SIZE)
    ret = _libc.syscall(SYS_bpf, ctypes.c_int(cmd), buf, ctypes.c_uint(BPF_ATTR_SIZE))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def bpf_available() -> tuple[bool, str]:
    if os.uname().machine != "x86_64":
        return False, "bpf() syscall number here is x86-64's"
    try:
        fd = map_create(2, 4, 4, 1)
    except OSError as e:
        return False, f"bpf() not permitted: {e}"
    os.close(fd)
    return True, ""


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int = 0,
               inner_map_fd: int = 0, map_extra: int = 0, btf_fd: int = 0, btf_key_type_id: int = 0,
               btf_value_type_id: int = 0, name: bytes = b"") -> int:
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries,
                         map_flags=flags, inner_map_fd=inner_map_fd, map_extra=map_extra, btf_fd=btf_fd,
                         btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id, map_name=name[:15])
    return bpf(BpfCmd.BPF_MAP_CREATE, attr)


def map_update(fd: int, key: bytes, value: bytes) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    bpf(BpfCmd.BPF_MAP_UPDATE_ELEM, MapElemAttr(map_fd=fd, key=ctypes.addressof(k), value=ctypes.addressof(v)))


def map_id(fd: int) -> int:
    info = BpfMapInfo()
    bpf(BpfCmd.BPF_OBJ_GET_INFO_BY_FD, InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info),
                                                 info=ctypes.addressof(info)))
    return int(info.id)


def btf_load(data: bytes) -> int:
    buf = ctypes.create_string_buffer(data, len(data))
    log = ctypes.create_string_buffer(65536)
    attr = BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(data), btf_log_buf=ctypes.addressof(log),
                       btf_log_size=len(log), btf_log_level=1)
    try:
        return bpf(BpfCmd.BPF_BTF_LOAD, attr)
    except OSError as e:
        raise OSError(e.errno, f"{e.strerror}: {log.value.decode(errors='replace')[-2000:]}")


def prog_load(prog_type: int, insns: bytes, license: str, expected_attach_type: int = 0, btf_fd: int = 0,
              func_info: bytes = b"", line_info: bytes = b"", prog_flags: int = 0) -> int:
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(1 << 20)
    fi = ctypes.create_string_buffer(func_info, max(len(func_info), 1))
    li = ctypes.create_string_buffer(line_info, max(len(line_info), 1))
    attr = ProgLoadAttr(
        prog_type=prog_type, insn_cnt=len(insns) // 8, insns=ctypes.addressof(code), license=ctypes.addressof(lic),
        log_level=1, log_size=len(log), log_buf=ctypes.addressof(log), expected_attach_type=expected_attach_type,
        prog_btf_fd=btf_fd, prog_flags=prog_flags,
        func_info_rec_size=8 if func_info else 0, func_info=ctypes.addressof(fi) if func_info else 0,
        func_info_cnt=len(func_info) // 8,
        line_info_rec_size=16 if line_info else 0, line_info=ctypes.addressof(li) if line_info else 0,
        line_info_cnt=len(line_info) // 16,
    )
    try:
        return bpf(BpfCmd.BPF_PROG_LOAD, attr)
    except OSError as e:
        raise OSError(e.errno, f"{e.strerror}: {log.value.decode(errors='replace')[-3000:]}")
