"""The verifier log (``struct bpf_verifier_log``, kernel/bpf/log.c, Linux 6.4+).

The verifier (and ``resolve_pseudo_ldimm64``, BTF_LOAD) call ``log.write(text)``
whenever the kernel calls ``verbose(env, ...)``. The log is kept whole in
memory; ``finalize_log`` writes it to ``log_buf`` as ``bpf_vlog_finalize``
leaves it:

* by default the log *rotates*: a buffer that is too small ends up holding
  the last ``log_size - 1`` bytes and a NUL;
* with ``BPF_LOG_FIXED`` (log_level bit 3) it holds the first ``log_size - 1``
  bytes and a NUL;
* either way the call fails with ENOSPC when the log did not fit, and
  ``log_true_size`` is the size that would have fit it (text + NUL).

``bpf_vlog_init``'s checks: buffer and size come together, a buffer needs a
level, the level has no unknown bits, the size is at most ``UINT_MAX >> 2``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import EFAULT, EINVAL, ENOSPC, fail
from .usermem import copy_to_user

__all__ = ["VerifierLog", "finalize_log", "BPF_LOG_LEVEL1", "BPF_LOG_LEVEL2", "BPF_LOG_STATS", "BPF_LOG_FIXED"]

BPF_LOG_LEVEL1 = 1
BPF_LOG_LEVEL2 = 2
BPF_LOG_STATS = 4
BPF_LOG_FIXED = 8
BPF_LOG_MASK = BPF_LOG_LEVEL1 | BPF_LOG_LEVEL2 | BPF_LOG_STATS | BPF_LOG_FIXED


@dataclass
class VerifierLog:
    """What the verifier writes; ``level`` is the log_level (0: nothing is kept)."""

    level: int = 0
    ubuf: int = 0
    len_total: int = 0
    chunks: list[str] = field(default_factory=list)
    #: ``log_true_size`` after finalize
    true_size: int = 0

    @classmethod
    def from_attr(cls, level: int, ubuf: int, size: int) -> VerifierLog:
        """``bpf_vlog_init``: EINVAL for inconsistent log attributes."""
        if bool(ubuf) != bool(size):
            raise fail(EINVAL, "log_buf and log_size must be given together")
        if ubuf and level == 0:
            raise fail(EINVAL, "log_buf without log_level")
        if level & ~BPF_LOG_MASK:
            raise fail(EINVAL, f"log_level {level:#x}")
        if size > 0xFFFFFFFF >> 2:
            raise fail(EINVAL, "log_size too large")
        return cls(level=level, ubuf=ubuf, len_total=size)

    @property
    def enabled(self) -> bool:
        return self.level != 0

    def write(self, text: str) -> None:
        """``verbose(env, fmt, ...)``: append text (kept only when a log was asked for)."""
        if self.level:
            self.chunks.append(text)

    __call__ = write

    def text(self) -> str:
        return "".join(self.chunks)


def finalize_log(log: VerifierLog) -> int:
    """Write the log to user memory; returns 0, ENOSPC (it did not fit) or EFAULT (bad log_buf).

    Sets ``log.true_size`` (``log_true_size``: text plus NUL, 0 when there is no log).
    """
    log.true_size = 0
    if log.level == 0:
        return 0
    data = log.text().encode()
    log.true_size = len(data) + 1 if data else 0
    if not log.ubuf:
        return 0
    if not data:
        return 0
    room = log.len_total - 1
    if len(data) <= room:
        out = data + b"\0"
    elif log.level & BPF_LOG_FIXED:
        out = data[:room] + b"\0"
    else:
        out = data[len(data) - room:] + b"\0"
    try:
        copy_to_user(log.ubuf, out)
    except OSError:
        return EFAULT
    return ENOSPC if log.true_size > log.len_total else 0


def _raise(err: int) -> None:
    if err:
        raise fail(err, "verifier log")
