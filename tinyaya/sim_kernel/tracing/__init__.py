"""The simulated kernel's tracing: kallsyms, kprobes, tracepoints, perf events and rings, trace_pipe."""
from __future__ import annotations

from .core import KPROBE_PMU_TYPE, UPROBE_PMU_TYPE, KprobeSite, RawTracepointLink, Tracing
from .kallsyms import Kallsyms, KernelFunction
from .perf_event import PerfEvent, PerfEventKind
from .perf_ring import PerfRing
from .syscalls import BY_NAME, BY_NR, SYSCALLS, Syscall, syscall_name, syscall_nr
from .trace_pipe import TracePipe, format_trace_line
from .tracepoints import Tracepoint

__all__ = ["Tracing", "KprobeSite", "RawTracepointLink", "KPROBE_PMU_TYPE", "UPROBE_PMU_TYPE", "Kallsyms",
           "KernelFunction", "PerfEvent", "PerfEventKind", "PerfRing", "Syscall", "SYSCALLS", "BY_NAME", "BY_NR",
           "syscall_name", "syscall_nr", "TracePipe", "format_trace_line", "Tracepoint"]
