"""``LinuxKernel``: the ``Kernel`` protocol over the real kernel's syscalls, through ctypes.

This is the oracle the simulated kernel is compared against. Each call is
the raw syscall, with no policy of its own:

* ``bpf(cmd, attr)`` is ``syscall(__NR_bpf, cmd, &attr, sizeof attr)`` (x86-64: 321);
* ``perf_event_open`` is ``syscall(__NR_perf_event_open, …)`` (x86-64: 298);
* ``ioctl`` is libc's ``ioctl(2)``; ``mmap``/``munmap`` use Python's ``mmap``
  module; ``close`` is ``os.close``; ``read_file`` reads with ``open()``.

Failures raise ``OSError`` with the errno the kernel returned.
"""
from __future__ import annotations

import ctypes
import errno
import mmap as _mmap
import os
import platform
from typing import TYPE_CHECKING

from .uapi.bpf import BpfCmd, BpfMapType, MapCreateAttr

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["LinuxKernel", "linux_bpf_available", "NR_BPF", "NR_PERF_EVENT_OPEN"]

#: syscall numbers per machine (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h)
_SYSCALL_NUMBERS = {
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "riscv64": (280, 241),
}
NR_BPF, NR_PERF_EVENT_OPEN = _SYSCALL_NUMBERS.get(platform.machine(), (321, 298))

_libc: ctypes.CDLL | None = None


def _load_libc() -> ctypes.CDLL:
    global _libc  # a process-wide handle to libc, not mutable state of any kernel
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        libc.ioctl.restype = ctypes.c_int
        libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]
        _libc = libc
    return _libc


class _UserBuffer:
    """A writable view of a caller's attr buffer, at a stable address, written back after the call.

    A writable buffer (bytearray, ctypes structure, writable memoryview) is used
    in place; a read-only one (bytes) is copied, since the kernel may write into
    ``union bpf_attr`` (e.g. BPF_MAP_GET_NEXT_ID's next_id).
    """

    def __init__(self, attr: Buffer) -> None:
        view = memoryview(attr).cast("B")
        self.size = view.nbytes
        self.arr: ctypes.Array[ctypes.c_char]
        if self.size == 0:
            self.arr = (ctypes.c_char * 1)()
        elif view.readonly:
            self.arr = (ctypes.c_char * self.size).from_buffer_copy(view)
        else:
            self.arr = (ctypes.c_char * self.size).from_buffer(view)
        view.release()

    @property
    def address(self) -> int:
        return 0 if self.size == 0 else ctypes.addressof(self.arr)


class LinuxKernel:
    """The real kernel, as a ``tinyaya.kernel.Kernel``."""

    backend = "linux"

    def __init__(self) -> None:
        self._libc = _load_libc()
        self._maps: dict[int, _mmap.mmap] = {}

    def __repr__(self) -> str:
        return f"LinuxKernel({platform.release()})"

    def _syscall(self, nr: int, *args: ctypes.c_long | ctypes.c_ulong | ctypes.c_int) -> int:
        ret = int(self._libc.syscall(ctypes.c_long(nr), *args))
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return ret

    def bpf(self, cmd: int, attr: Buffer) -> int:
        buf = _UserBuffer(attr)
        return self._syscall(NR_BPF, ctypes.c_long(int(cmd)), ctypes.c_ulong(buf.address), ctypes.c_ulong(buf.size))

    def perf_event_open(self, attr: Buffer, pid: int, cpu: int, group_fd: int, flags: int) -> int:
        buf = _UserBuffer(attr)
        return self._syscall(
            NR_PERF_EVENT_OPEN, ctypes.c_ulong(buf.address), ctypes.c_long(pid), ctypes.c_long(cpu),
            ctypes.c_long(group_fd), ctypes.c_ulong(flags),
        )

    def ioctl(self, fd: int, request: int, arg: int = 0) -> int:
        ret = int(self._libc.ioctl(fd, request & 0xFFFF_FFFF_FFFF_FFFF, arg & 0xFFFF_FFFF_FFFF_FFFF))
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return ret

    def mmap(self, fd: int, length: int, prot: int, flags: int, offset: int = 0) -> memoryview:
        m = _mmap.mmap(fd, length, flags=flags, prot=prot, offset=offset)
        view = memoryview(m)
        self._maps[id(view)] = m
        return view

    def munmap(self, mem: memoryview) -> None:
        m = self._maps.pop(id(mem), None)
        if m is None and isinstance(mem.obj, _mmap.mmap):
            m = mem.obj
        mem.release()
        if m is not None:
            try:
                m.close()
            except BufferError:
                # another view of the mapping is still alive; it is unmapped when that view is dropped
                pass

    def close(self, fd: int) -> None:
        os.close(fd)

    def read_file(self, path: str) -> bytes:
        if path.endswith("/trace_pipe"):
            return _read_nonblocking(path)
        with open(path, "rb") as f:
            return f.read()


def _read_nonblocking(path: str) -> bytes:
    """What trace_pipe holds now: read with O_NONBLOCK until EAGAIN."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def linux_bpf_available() -> tuple[bool, str]:
    """Whether bpf(2) works here: creates and closes a one-entry ARRAY. Returns ``(ok, reason)``."""
    if platform.system() != "Linux":
        return False, f"not Linux ({platform.system()})"
    if platform.machine() not in _SYSCALL_NUMBERS:
        return False, f"unknown syscall numbers for {platform.machine()}"
    try:
        kernel = LinuxKernel()
    except OSError as e:  # pragma: no cover - libc missing
        return False, f"libc not loadable: {e}"
    attr = MapCreateAttr(map_type=BpfMapType.BPF_MAP_TYPE_ARRAY, key_size=4, value_size=4, max_entries=1)
    try:
        fd = kernel.bpf(BpfCmd.BPF_MAP_CREATE, attr)
    except OSError as e:
        name = errno.errorcode.get(e.errno or 0, str(e.errno))
        return False, f"bpf(BPF_MAP_CREATE) is not permitted here: {name} ({os.strerror(e.errno or 0)})"
    kernel.close(fd)
    return True, ""
