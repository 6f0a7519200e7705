"""User memory access for the simulated ``bpf()``: ``copy_from_user``/``copy_to_user``.

Pointers in ``union bpf_attr`` are addresses in *this* process, as they are
for the real syscall. The simulated kernel reads and writes them the way the
kernel's uaccess routines do: a bad pointer makes the copy fail with EFAULT,
it never crashes the interpreter. We get that guarantee from
``process_vm_readv(2)``/``process_vm_writev(2)`` on our own pid, which return
EFAULT (or a short count) instead of faulting. Where those are not permitted
(some seccomp profiles), ``/proc/self/mem`` gives the same guarantee (EIO on
an unmapped page).

Semantics follow ``include/linux/uaccess.h``: ``copy_from_user`` of 0 bytes
succeeds for any pointer; ``strncpy_from_user`` returns the bytes up to the
NUL (or ``count`` bytes) and fails only if a byte before that is unreadable.
"""
from __future__ import annotations

import ctypes
import errno
import os

from .errors import EFAULT, fail

__all__ = ["copy_from_user", "copy_to_user", "strncpy_from_user", "clear_user", "check_zeroed_user",
           "access_ok", "TASK_SIZE"]

#: x86-64's user address limit (``TASK_SIZE_MAX``, 47-bit user space): ``access_ok`` rejects anything above
TASK_SIZE = (1 << 47) - 4096
_PAGE = 4096
#: largest single iovec we hand to the kernel; bigger copies are chunked
_CHUNK = 1 << 26


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True)
_readv = _libc.process_vm_readv
_writev = _libc.process_vm_writev
for _f in (_readv, _writev):
    _f.restype = ctypes.c_ssize_t
    _f.argtypes = [ctypes.c_int, ctypes.POINTER(_Iovec), ctypes.c_ulong, ctypes.POINTER(_Iovec),
                   ctypes.c_ulong, ctypes.c_ulong]

_use_proc_mem: bool | None = None  # decided on first use (a process-wide property, not simulated state)


def access_ok(addr: int, size: int) -> bool:
    """``access_ok()``: the range lies in user space (it says nothing about mappings)."""
    return 0 <= addr and size >= 0 and addr + size <= TASK_SIZE


def _vm_copy(remote: int, local: ctypes.Array[ctypes.c_char], n: int, write: bool) -> int:
    """One process_vm_{readv,writev}; returns bytes copied or -errno."""
    liov = _Iovec(ctypes.addressof(local), n)
    riov = _Iovec(remote, n)
    fn = _writev if write else _readv
    r = fn(os.getpid(), ctypes.byref(liov), 1, ctypes.byref(riov), 1, 0)
    if r < 0:
        return -ctypes.get_errno()
    return int(r)


def _proc_mem_copy(remote: int, local: ctypes.Array[ctypes.c_char], n: int, write: bool) -> int:
    try:
        fd = os.open("/proc/self/mem", os.O_RDWR if write else os.O_RDONLY)
    except OSError as e:
        return -(e.errno or errno.EFAULT)
    try:
        if write:
            return os.pwrite(fd, ctypes.string_at(ctypes.addressof(local), n), remote)
        data = os.pread(fd, n, remote)
        ctypes.memmove(local, data, len(data))
        return len(data)
    except OSError as e:
        return -(e.errno or errno.EFAULT)
    finally:
        os.close(fd)


def _copy(remote: int, local: ctypes.Array[ctypes.c_char], n: int, write: bool) -> int:
    global _use_proc_mem
    if _use_proc_mem is None:
        probe = ctypes.create_string_buffer(1)
        _use_proc_mem = _vm_copy(ctypes.addressof(probe), probe, 1, False) in (-errno.EPERM, -errno.ENOSYS)
    if _use_proc_mem:
        return _proc_mem_copy(remote, local, n, write)
    return _vm_copy(remote, local, n, write)


def copy_from_user(addr: int, n: int) -> bytes:
    """Read ``n`` bytes at user address ``addr``; EFAULT if any of them is unreadable."""
    if n <= 0:
        return b""
    if not access_ok(addr, n):
        raise fail(EFAULT, f"copy_from_user({addr:#x}, {n})")
    out = bytearray()
    pos = 0
    while pos < n:
        chunk = min(_CHUNK, n - pos)
        buf = ctypes.create_string_buffer(chunk)
        got = _copy(addr + pos, buf, chunk, False)
        if got != chunk:
            raise fail(EFAULT, f"copy_from_user({addr:#x}, {n})")
        out += buf.raw
        pos += chunk
    return bytes(out)


def copy_to_user(addr: int, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` at user address ``addr``; EFAULT if any byte is unwritable."""
    n = len(data)
    if n == 0:
        return
    if not access_ok(addr, n):
        raise fail(EFAULT, f"copy_to_user({addr:#x}, {n})")
    mv = memoryview(data).cast("B")
    pos = 0
    while pos < n:
        chunk = min(_CHUNK, n - pos)
        buf = ctypes.create_string_buffer(bytes(mv[pos:pos + chunk]), chunk)
        if _copy(addr + pos, buf, chunk, True) != chunk:
            raise fail(EFAULT, f"copy_to_user({addr:#x}, {n})")
        pos += chunk


def clear_user(addr: int, n: int) -> None:
    """Zero ``n`` user bytes (``clear_user``)."""
    copy_to_user(addr, bytes(n))


def strncpy_from_user(addr: int, count: int) -> bytes:
    """``strncpy_from_user``: the bytes before the first NUL, at most ``count`` of them.

    Reads page by page so that a string ending just before an unmapped page
    is fine; EFAULT only when a byte that is needed cannot be read.
    """
    if count <= 0:
        return b""
    if not access_ok(addr, 1):
        raise fail(EFAULT, f"strncpy_from_user({addr:#x})")
    out = bytearray()
    pos = addr
    while len(out) < count:
        chunk = min(count - len(out), _PAGE - (pos % _PAGE))
        data = copy_from_user(pos, chunk)
        nul = data.find(b"\0")
        if nul >= 0:
            out += data[:nul]
            return bytes(out)
        out += data
        pos += chunk
    return bytes(out)


def check_zeroed_user(addr: int, n: int) -> bool:
    """``check_zeroed_user``: whether ``n`` user bytes are all zero (EFAULT if unreadable)."""
    return not any(copy_from_user(addr, n))
