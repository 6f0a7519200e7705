"""The verifier log (kernel/bpf/log.c): text for ``attr.log_buf`` at log_level 1 or 2.

Level 1 keeps only the path that led to a rejection: the kernel's log is rewound to the last branch
point when a path verifies, so what is left when verification fails is that path's instructions and
the error. Level 2 keeps everything. Either way the log ends with the ``processed ...`` summary.
``finish(size)`` applies the size rule of ``bpf_vlog_finalize``: if the text (plus its NUL) does not fit
in ``log_size`` bytes, it is truncated and the load fails with ENOSPC (unless it already failed).
"""
from __future__ import annotations

from .errors import ENOSPC, VerifierReject


class VerifierLog:
    """Collects verifier output. ``level`` 0 discards everything except the reason (kept for errors)."""

    def __init__(self, level: int = 0, size: int = 0) -> None:
        self.level = level
        self.size = size
        self.lines: list[str] = []
        self.partial = ""

    @property
    def enabled(self) -> bool:
        return self.level > 0

    @property
    def verbose(self) -> bool:
        return self.level >= 2

    def write(self, line: str) -> None:
        if self.level:
            if self.partial:
                line, self.partial = self.partial + line, ""
            self.lines.append(line)

    def write_partial(self, text: str) -> None:
        """Text the kernel prints without a newline: the next line continues it."""
        if self.level:
            self.partial += text

    def mark(self) -> int:
        return len(self.lines)

    def rewind(self, pos: int) -> None:
        """bpf_vlog_reset(): drop what a fully verified path wrote (level 1 only)."""
        if self.level == 1:
            del self.lines[pos:]

    def text(self) -> str:
        return "".join(ln + "\n" for ln in self.lines) + self.partial

    def reject(self, err: int, msg: str) -> VerifierReject:
        self.write(msg)
        return VerifierReject(err, msg, self.text())

    def finish(self) -> tuple[bytes, bool]:
        """The bytes for log_buf (NUL-terminated, truncated to ``size``) and whether they were truncated."""
        data = self.text().encode()
        if not self.level or not self.size:
            return b"", False
        if len(data) + 1 > self.size:
            return data[: self.size - 1] + b"\0", True
        return data + b"\0", False

    def check_space(self) -> None:
        """Raise ENOSPC if the log did not fit (bpf_vlog_finalize)."""
        _, truncated = self.finish()
        if truncated:
            raise VerifierReject(ENOSPC, "log buffer too small", self.text())
