"""The files user space reads to find tracing events: tracefs, the perf PMUs in sysfs, /proc/kallsyms.

Paths and contents as on Linux 6.x:

- ``/sys/kernel/tracing/events/<cat>/<name>/id`` and ``format`` (also under
  ``/sys/kernel/debug/tracing``), ``available_events`` (``cat:name`` lines),
  ``available_filter_functions`` (the functions a kprobe may attach to),
  ``trace_pipe`` (consuming; non-blocking here: what is buffered now) and ``trace``;
- ``/sys/bus/event_source/devices/kprobe/type`` (the dynamic PMU type) and
  ``format/retprobe`` = ``config:0`` (kernel/trace/trace_event_perf.c,
  ``PMU_FORMAT_ATTR(retprobe, "config:0")``), the same for ``uprobe``;
- ``/proc/kallsyms``;
- ``/sys/devices/system/cpu/{possible,online}``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ENOENT, fail

if TYPE_CHECKING:
    from .core import Tracing

__all__ = ["read_tracing_file", "TRACEFS_ROOTS"]

TRACEFS_ROOTS = ("/sys/kernel/tracing/", "/sys/kernel/debug/tracing/")
_PMU_ROOT = "/sys/bus/event_source/devices/"


def _cpu_range(n: int) -> bytes:
    return (f"0-{n - 1}\n" if n > 1 else "0\n").encode()


def read_tracing_file(tracing: Tracing, path: str) -> bytes:
    from .core import KPROBE_PMU_TYPE, UPROBE_PMU_TYPE

    p = path.rstrip("/") if path != "/" else path
    if p == "/proc/kallsyms":
        return tracing.kallsyms.proc_kallsyms()
    if p in ("/sys/devices/system/cpu/possible", "/sys/devices/system/cpu/online",
             "/sys/devices/system/cpu/present"):
        return _cpu_range(tracing.ncpus())
    if p.startswith(_PMU_ROOT):
        rest = p[len(_PMU_ROOT):]
        for pmu, ptype in (("kprobe", KPROBE_PMU_TYPE), ("uprobe", UPROBE_PMU_TYPE)):
            if rest == f"{pmu}/type":
                return f"{ptype}\n".encode()
            if rest == f"{pmu}/format/retprobe":
                return b"config:0\n"
            if rest == f"{pmu}/format/ref_ctr_offset" and pmu == "uprobe":
                return b"config:32-63\n"
        raise fail(ENOENT, path)
    for root in TRACEFS_ROOTS:
        if p.startswith(root):
            return _tracefs(tracing, p[len(root):], path)
    raise fail(ENOENT, path)


def _tracefs(tracing: Tracing, rel: str, path: str) -> bytes:
    if rel == "trace_pipe":
        return tracing.trace_pipe.read()
    if rel == "trace":
        return tracing.trace_pipe.peek()
    if rel == "available_events":
        return "".join(f"{tp.full_name}\n" for tp in tracing.tracepoints).encode()
    if rel == "available_filter_functions":
        return "".join(f"{fn.name}\n" for fn in tracing.kallsyms.functions).encode()
    parts = rel.split("/")
    if len(parts) == 4 and parts[0] == "events":
        tp = tracing.tracepoints_by_name.get(f"{parts[1]}:{parts[2]}")
        if tp is not None:
            if parts[3] == "id":
                return f"{tp.id}\n".encode()
            if parts[3] == "format":
                return tp.format_text().encode()
            if parts[3] == "enable":
                return b"0\n"
    raise fail(ENOENT, path)
