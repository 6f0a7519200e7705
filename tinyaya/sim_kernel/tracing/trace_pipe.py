"""The trace buffer behind ``/sys/kernel/tracing/trace_pipe``.

``bpf_trace_printk`` (kernel/trace/bpf_trace.c) emits the ``bpf_trace_printk``
trace event; reading trace_pipe consumes the buffered lines, each in the
format of kernel/trace/trace_output.c ``trace_print_context``::

    <comm right-aligned to 16>-<pid left-aligned to 7> [<cpu, 3 digits>] <flags> <sec>.<usec>: <event>: <msg>

The flags column is the irqs-off / need-resched / hardirq-softirq /
preempt-depth / migrate-disable letters; ``...21`` is what Linux 6.18 prints
for a program on a syscall tracepoint (preemption depth 2, migration disabled),
checked by tests/tracing/test_linux_parity.py. The buffer is bounded like the kernel's ring:
when full, the oldest lines go (``overrun``).
"""
from __future__ import annotations

from collections import deque

__all__ = ["TracePipe", "format_trace_line"]

#: what a BPF program on a syscall tracepoint shows on Linux 6.18 x86-64
DEFAULT_FLAGS = "...21"


def format_trace_line(comm: str, pid: int, cpu: int, ts_ns: int, event: str, msg: str,
                      flags: str = DEFAULT_FLAGS) -> str:
    """One trace_pipe line (with its newline)."""
    sec, ns = divmod(ts_ns, 1_000_000_000)
    return f"{comm:>16}-{pid:<7} [{cpu:03d}] {flags} {sec:5d}.{ns // 1000:06d}: {event}: {msg}\n"


class TracePipe:
    """Bounded, consuming line buffer; ``total`` counts every line ever written."""

    def __init__(self, max_lines: int = 65536) -> None:
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.total = 0
        self.overrun = 0

    def write(self, comm: str, pid: int, cpu: int, ts_ns: int, event: str, msg: str) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.overrun += 1
        self.lines.append(format_trace_line(comm, pid, cpu, ts_ns, event, msg))
        self.total += 1

    def read(self) -> bytes:
        """What a non-blocking read of trace_pipe returns now: every buffered line, consumed."""
        out = "".join(self.lines)
        self.lines.clear()
        return out.encode("utf-8", "replace")

    def peek(self) -> bytes:
        """``/sys/kernel/tracing/trace``-like: the buffered lines, not consumed."""
        return "".join(self.lines).encode("utf-8", "replace")
