"""The differential harness: run the same ``union bpf_attr`` bytes on SimKernel and on the real kernel.

A test writes a *scenario*: a function of one ``Side`` (a kernel plus its own
user memory and fds) that issues bpf() calls and returns what it observed,
in a form that does not depend on the kernel (errnos, written-back attr
fields, user buffer contents; fds appear as ``FD`` and are never compared by
number). ``compare(scenario)`` runs it on both kernels and asserts the two
observations are equal::

    def scenario(s: Side) -> list:
        fd = s.fd(s.bpf(BPF_MAP_CREATE, map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 2)))
        key, val = s.buf(u32(1)), s.buf(8)
        return [s.bpf(BPF_MAP_LOOKUP_ELEM, elem(fd, key, val)).outcome, s.read(val, 8)]

    def test_lookup(kernels):
        kernels.compare(scenario)

Everything a Side creates (fds) is closed when the scenario ends, so
nothing is left behind on the real kernel.
"""
from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tinyaya.uapi.bpf import (
    BtfLoadAttr,
    InfoAttr,
    LinkCreateAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    ProgLoadAttr,
    TestRunAttr,
)

ATTR_SIZE = 168  # sizeof(union bpf_attr) on Linux 6.18
#: example count of the hypothesis tests (TINYAYA_FUZZ_EXAMPLES, default 40)
FUZZ_EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
FD = "<fd>"


@dataclass(frozen=True)
class Res:
    """One bpf() call: its return value or errno, and the attr bytes after the call."""

    ret: int
    err: int
    attr: bytes

    @property
    def ok(self) -> bool:
        return self.err == 0

    @property
    def outcome(self) -> Any:
        """What to compare: ``"ok"``, ``FD`` (a new fd) or the errno's name."""
        if self.err:
            return errno.errorcode.get(self.err, str(self.err))
        return "ok" if self.ret == 0 else FD

    def u32(self, off: int) -> int:
        return int(struct.unpack_from("<I", self.attr, off)[0])


class Side:
    """One kernel under test, with user memory and the fds it opened."""

    def __init__(self, kernel: Any, name: str) -> None:
        self.k = kernel
        self.name = name
        self._bufs: list[ctypes.Array[ctypes.c_char]] = []
        self.fds: list[int] = []

    @property
    def is_sim(self) -> bool:
        return getattr(self.k, "backend", "") == "sim"

    # -- user memory ------------------------------------------------------------------------------
    def buf(self, data: bytes | int) -> int:
        """A user buffer holding ``data`` (or ``data`` zero bytes); returns its address."""
        if isinstance(data, int):
            arr = ctypes.create_string_buffer(max(data, 1))
        else:
            arr = ctypes.create_string_buffer(bytes(data), max(len(data), 1))
        self._bufs.append(arr)
        return ctypes.addressof(arr)

    def read(self, addr: int, n: int) -> bytes:
        return ctypes.string_at(addr, n)

    def cstr(self, s: str | bytes) -> int:
        b = s.encode() if isinstance(s, str) else s
        return self.buf(b + b"\0")

    # -- syscalls ---------------------------------------------------------------------------------
    def bpf(self, cmd: int, attr: bytes | bytearray, size: int | None = None) -> Res:
        """bpf(cmd, attr[:size]); fds it returns are remembered and closed at the end."""
        raw = bytearray(attr)
        if size is not None:
            raw = raw[:size] if size <= len(raw) else raw + bytes(size - len(raw))
        try:
            ret = int(self.k.bpf(cmd, raw))
        except OSError as e:
            return Res(-1, e.errno or 0, bytes(raw))
        if ret > 0:
            self.fds.append(ret)
        return Res(ret, 0, bytes(raw))

    def fd(self, res: Res) -> int:
        """The fd a successful call returned (the scenario fails loudly if it did not succeed)."""
        assert res.ok and res.ret > 0, f"{self.name}: expected an fd, got {res.outcome}"
        return res.ret

    def close(self, fd: int) -> Any:
        try:
            self.k.close(fd)
        except OSError as e:
            return errno.errorcode.get(e.errno or 0)
        if fd in self.fds:
            self.fds.remove(fd)
        return "ok"

    def cleanup(self) -> None:
        for fd in reversed(self.fds):
            try:
                self.k.close(fd)
            except OSError:
                pass
        self.fds.clear()

    def bad_fd(self) -> int:
        """An fd number that is not open on this side."""
        fd = 1000
        while True:
            if self.is_sim:
                if fd not in self.k.fds:
                    return fd
            else:
                try:
                    os.fstat(fd)
                except OSError:
                    return fd
            fd += 1

    def non_bpf_fd(self) -> int:
        """An open fd that is not a bpf object: on Linux a real file; on the sim, an object that is no bpf one."""
        if self.is_sim:
            fd = self.k.fds.install(object())
        else:
            fd = os.open("/dev/null", os.O_RDONLY)
        self.fds.append(fd)
        return fd


class Pair:
    """The two kernels of a differential test."""

    def __init__(self, sim_factory: Callable[[], Any], linux: Any) -> None:
        self.sim_factory = sim_factory
        self.linux = linux

    def run(self, scenario: Callable[[Side], Any]) -> tuple[Any, Any]:
        sim = Side(self.sim_factory(), "sim")
        lin = Side(self.linux, "linux")
        try:
            a = scenario(sim)
        finally:
            sim.cleanup()
        try:
            b = scenario(lin)
        finally:
            lin.cleanup()
        return a, b

    def compare(self, scenario: Callable[[Side], Any]) -> Any:
        a, b = self.run(scenario)
        assert a == b, f"sim and linux differ:\n  sim:   {a!r}\n  linux: {b!r}"
        return a


# -- attr builders (field names as in linux/bpf.h) --------------------------------------------------
def pad(struct_obj: ctypes.Structure, size: int = ATTR_SIZE) -> bytearray:
    raw = bytearray(bytes(struct_obj))
    return raw + bytearray(size - len(raw)) if len(raw) < size else raw


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int = 0,
               name: bytes = b"", **kw: int) -> bytearray:
    a = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries,
                      map_flags=map_flags, **kw)
    raw = pad(a)
    raw[MapCreateAttr.map_name.offset:MapCreateAttr.map_name.offset + len(name)] = name
    return raw


def elem(map_fd: int, key: int = 0, value: int = 0, flags: int = 0) -> bytearray:
    return pad(MapElemAttr(map_fd=map_fd, key=key, value=value, flags=flags))


def batch(map_fd: int, keys: int, values: int, count: int, in_batch: int = 0, out_batch: int = 0,
          elem_flags: int = 0, flags: int = 0) -> bytearray:
    return pad(MapBatchAttr(in_batch=in_batch, out_batch=out_batch, keys=keys, values=values, count=count,
                            map_fd=map_fd, elem_flags=elem_flags, flags=flags))


def prog_load(s: Side, prog_type: int, insns: bytes, license: bytes = b"GPL", log_level: int = 0,
              log_size: int = 0, name: bytes = b"", **kw: int) -> tuple[bytearray, int]:
    """A PROG_LOAD attr with insns/license/log buffer in ``s``'s memory; returns (attr, log_buf address)."""
    log = s.buf(log_size) if log_size else 0
    a = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(insns) // 8, insns=s.buf(insns), license=s.cstr(license),
                     log_level=log_level, log_size=log_size, log_buf=log, **kw)
    raw = pad(a)
    raw[ProgLoadAttr.prog_name.offset:ProgLoadAttr.prog_name.offset + len(name)] = name
    return raw, log


def get_id(start_id: int = 0, open_flags: int = 0) -> bytearray:
    return bytearray(struct.pack("<III", start_id, 0, open_flags)).ljust(ATTR_SIZE, b"\0")


def info(bpf_fd: int, info_len: int, info_addr: int) -> bytearray:
    return pad(InfoAttr(bpf_fd=bpf_fd, info_len=info_len, info=info_addr))


def obj(pathname: int, bpf_fd: int = 0, file_flags: int = 0) -> bytearray:
    return bytearray(struct.pack("<QII", pathname, bpf_fd, file_flags)).ljust(ATTR_SIZE, b"\0")


def run_attr(prog_fd: int, **kw: int) -> bytearray:
    return pad(TestRunAttr(prog_fd=prog_fd, **kw))


def btf_load(btf: int, btf_size: int, log_buf: int = 0, log_size: int = 0, log_level: int = 0) -> bytearray:
    return pad(BtfLoadAttr(btf=btf, btf_size=btf_size, btf_log_buf=log_buf, btf_log_size=log_size,
                           btf_log_level=log_level))


def link_create(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0, cookie: int = 0) -> bytearray:
    return pad(LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type, flags=flags,
                              bpf_cookie=cookie))


def u32(v: int) -> bytes:
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


#: r0 = 0; exit
RET0 = insn(0xB7) + insn(0x95)


def ld_map_fd(dst: int, fd: int, src: int = 1, imm2: int = 0) -> bytes:
    """``ld_imm64 dst, map`` with a pseudo source (BPF_PSEUDO_MAP_FD by default)."""
    return insn(0x18, dst, src, 0, fd) + insn(0, 0, 0, 0, imm2)
