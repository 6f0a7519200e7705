"""How the simulated kernel fails: OSError with Linux's errno, as the syscall would."""
from __future__ import annotations

import errno as _errno
import os


class KernelError(OSError):
    """A failed simulated syscall. ``errno`` is Linux's value for the same call."""

    def __init__(self, err: int, detail: str = "") -> None:
        super().__init__(err, os.strerror(err) + (f" ({detail})" if detail else ""))


def fail(err: int, detail: str = "") -> KernelError:
    """``raise fail(errno.EINVAL, "key_size 0")``."""
    return KernelError(err, detail)


EPERM = _errno.EPERM
ENOENT = _errno.ENOENT
E2BIG = _errno.E2BIG
EBADF = _errno.EBADF
EAGAIN = _errno.EAGAIN
ENOMEM = _errno.ENOMEM
EACCES = _errno.EACCES
EFAULT = _errno.EFAULT
EBUSY = _errno.EBUSY
EEXIST = _errno.EEXIST
EINVAL = _errno.EINVAL
ENOSPC = _errno.ENOSPC
ENOTSUPP = 524  # the kernel-internal ENOTSUPP that bpf() leaks to user space
EOPNOTSUPP = _errno.EOPNOTSUPP
ENOTDIR = _errno.ENOTDIR
ENODEV = _errno.ENODEV
ENOSYS = _errno.ENOSYS
ESRCH = _errno.ESRCH
ENOTTY = _errno.ENOTTY
EOVERFLOW = _errno.EOVERFLOW
ERANGE = _errno.ERANGE
EIO = _errno.EIO
EDEADLK = _errno.EDEADLK
EMFILE = _errno.EMFILE
ELOOP = _errno.ELOOP
EINTR = _errno.EINTR
EEXIST = _errno.EEXIST
EXDEV = _errno.EXDEV
