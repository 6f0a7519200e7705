"""``VerifierReject``: a program the verifier refuses, with the errno BPF_PROG_LOAD returns."""
from __future__ import annotations

import errno as _errno

from ..errors import KernelError

EINVAL = _errno.EINVAL
EACCES = _errno.EACCES
E2BIG = _errno.E2BIG
EFAULT = _errno.EFAULT
ENOSPC = _errno.ENOSPC
EPERM = _errno.EPERM
ENOTSUPP = 524  # the kernel-internal ENOTSUPP that bpf() returns


class VerifierReject(KernelError):
    """BPF_PROG_LOAD fails verification: ``errno`` as Linux returns it (EACCES for safety violations,
    EINVAL for malformed programs, E2BIG for too complex ones), ``message`` the log line that says why,
    ``log`` the whole log text (as the kernel would have written it at the requested level)."""

    def __init__(self, err: int, message: str, log: str = "") -> None:
        super().__init__(err, message)
        self.message = message
        self.log = log
