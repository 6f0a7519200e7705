"""Load a corpus program into the real kernel with bpf(BPF_PROG_LOAD) and report Linux's verdict.

Raw ctypes, so the oracle does not depend on the code under test. Maps a program needs are created
first; every fd is closed afterwards (nothing is pinned or attached).
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tinyaya.isa import encode
from tinyaya.uapi.bpf import BpfCmd, BtfLoadAttr, MapCreateAttr, ProgLoadAttr

from .corpus import MAPS, CorpusProg, func_btf, subprog_starts

NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280}.get(platform.machine(), 321)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    buf = (ctypes.c_uint8 * 144)()
    ctypes.memmove(buf, ctypes.addressof(attr), ctypes.sizeof(attr))
    ret = _libc.syscall(NR_BPF, cmd, buf, 144)
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    ctypes.memmove(ctypes.addressof(attr), buf, ctypes.sizeof(attr))
    return int(ret)


def bpf_available() -> str | None:
    """None if bpf() works here, else the reason it does not."""
    try:
        attr = MapCreateAttr(map_type=2, key_size=4, value_size=4, max_entries=1)
        fd = _bpf(BpfCmd.BPF_MAP_CREATE, attr)
        os.close(fd)
        return None
    except OSError as e:
        return f"bpf() not permitted: {e}"


@dataclass
class LoadResult:
    verdict: str  # "accept" or "reject"
    errno: str
    log: str


def load_on_linux(prog: CorpusProg, log_level: int = 1, log_size: int = 1 << 20) -> LoadResult:
    return load_with(_bpf, os.close, prog, log_level, log_size)


def load_on_kernel(kernel: Any, prog: CorpusProg, log_level: int = 1, log_size: int = 1 << 20) -> LoadResult:
    """The same load through any ``Kernel`` (e.g. ``SimKernel``): attr bytes in a writable buffer."""
    def call(cmd: int, attr: ctypes.Structure) -> int:
        buf = bytearray(144)
        buf[:ctypes.sizeof(attr)] = bytes(attr)
        ret = int(kernel.bpf(cmd, buf))
        ctypes.memmove(ctypes.addressof(attr), bytes(buf[:ctypes.sizeof(attr)]), ctypes.sizeof(attr))
        return ret
    return load_with(call, kernel.close, prog, log_level, log_size)


def load_with(bpf: Callable[[int, Any], int], close: Callable[[int], None], prog: CorpusProg, log_level: int = 1,
              log_size: int = 1 << 20) -> LoadResult:
    asm = prog.assembled()
    fds: dict[str, int] = {}
    prog_fd = -1
    try:
        for name in prog.maps_used():
            spec = MAPS[name]
            attr = MapCreateAttr(map_type=spec.map_type, key_size=spec.key_size, value_size=spec.value_size,
                                 max_entries=spec.max_entries, map_flags=spec.map_flags)
            fds[name] = bpf(BpfCmd.BPF_MAP_CREATE, attr)
        insns = list(asm.insns)
        for idx, name in asm.map_fds:
            insns[idx] = insns[idx].replace(imm=fds[name])
        for idx, name, _off in asm.map_values:
            insns[idx] = insns[idx].replace(imm=fds[name])
        btf_fd = -1
        fi = None
        if prog.btf_funcs:
            starts = subprog_starts(insns)
            blob = func_btf(len(starts))
            bbuf = ctypes.create_string_buffer(blob, len(blob))
            battr = BtfLoadAttr(btf=ctypes.addressof(bbuf), btf_size=len(blob))
            btf_fd = bpf(BpfCmd.BPF_BTF_LOAD, battr)
            fds["__btf"] = btf_fd
            recs = b"".join(struct.pack("<II", s, 3 + k) for k, s in enumerate(starts))
            fi = ctypes.create_string_buffer(recs, len(recs))
        code = encode(insns)
        code_buf = ctypes.create_string_buffer(code, len(code))
        lic = ctypes.create_string_buffer(prog.license.encode())
        logbuf = ctypes.create_string_buffer(log_size)
        attr = ProgLoadAttr(prog_type=prog.prog_type, insn_cnt=len(insns), insns=ctypes.addressof(code_buf),
                            license=ctypes.addressof(lic), log_level=log_level, log_size=log_size,
                            log_buf=ctypes.addressof(logbuf), expected_attach_type=prog.attach)
        if fi is not None:
            attr.prog_btf_fd = btf_fd
            attr.func_info_rec_size = 8
            attr.func_info = ctypes.addressof(fi)
            attr.func_info_cnt = len(fi.raw) // 8
        try:
            prog_fd = bpf(BpfCmd.BPF_PROG_LOAD, attr)
            return LoadResult("accept", "", logbuf.value.decode(errors="replace"))
        except OSError as e:
            return LoadResult("reject", errno.errorcode.get(e.errno or 0, str(e.errno)),
                              logbuf.value.decode(errors="replace"))
    finally:
        if prog_fd >= 0:
            close(prog_fd)
        for fd in fds.values():
            close(fd)
