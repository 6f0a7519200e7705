"""User buffers for pointer fields of ``union bpf_attr``: ctypes arrays whose addresses go into attr.

A user pointer in attr must stay valid for the duration of the syscall, so
each buffer object is kept alive by the caller's frame while the call runs.
"""
from __future__ import annotations

import ctypes


class UserBuf:
    """A zero-initialised or copied ctypes char array; ``addr`` is 0 (NULL) for ``None`` or an empty buffer."""

    __slots__ = ("arr", "size")

    def __init__(self, data: bytes | None = None, size: int | None = None) -> None:
        if data is None and size is None:
            self.size = 0
        elif size is None:
            assert data is not None
            self.size = len(data)
        else:
            self.size = size
        self.arr: ctypes.Array[ctypes.c_char] = (ctypes.c_char * max(self.size, 1))()
        if data:
            ctypes.memmove(self.arr, data, min(len(data), self.size))

    @property
    def addr(self) -> int:
        return ctypes.addressof(self.arr) if self.size else 0

    def raw(self, n: int | None = None) -> bytes:
        return ctypes.string_at(ctypes.addressof(self.arr), self.size if n is None else min(n, self.size))


def cstr(s: str | bytes) -> UserBuf:
    """A NUL-terminated string in user memory."""
    b = s.encode() if isinstance(s, str) else s
    return UserBuf(b + b"\0")


def user_ptr(data: bytes | None) -> UserBuf:
    """``None`` and ``b""`` become NULL, as libbpf passes a NULL key for key_size 0 maps."""
    return UserBuf(data if data else None)
