"""perf_event_open(2) for the events BPF programs attach to, and the perf ioctls.

Shapes follow aya's ``sys/perf_event.rs`` (``perf_event_open_probe``,
``perf_event_open_trace_point``, ``perf_event_open_bpf``) and libbpf's
``perf_event_open_probe``/``perf_event_kprobe_open_legacy``. Layouts come from
``tinyaya.uapi.perf_event``.
"""
from __future__ import annotations

import errno
import os

from ..kernel import Kernel
from ..uapi.perf_event import (
    ATTR_FLAG_FREQ,
    PERF_ATTR_SIZE_VER8,
    PERF_EVENT_IOC_DISABLE,
    PERF_EVENT_IOC_ENABLE,
    PERF_EVENT_IOC_SET_BPF,
    PERF_FLAG_FD_CLOEXEC,
    PerfEventAttr,
    PerfSampleFormat,
    PerfSwIds,
    PerfTypeId,
)
from ._user import cstr

__all__ = [
    "KPROBE_PMU", "UPROBE_PMU", "TRACEFS_ROOTS", "ProbeUnsupported", "pmu_type", "retprobe_bit",
    "perf_event_open_probe", "tracepoint_id", "perf_event_open_trace_point", "perf_event_open_bpf_output",
    "perf_event_open_generic", "perf_event_ioc_set_bpf", "perf_event_ioc_enable", "perf_event_ioc_disable",
]

KPROBE_PMU = "kprobe"
UPROBE_PMU = "uprobe"
#: where tracefs may be mounted, in the order aya tries them
TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


class ProbeUnsupported(OSError):
    """The kernel has no PMU for this probe kind (e.g. built without CONFIG_KPROBE_EVENTS)."""


def pmu_type(kernel: Kernel, pmu: str) -> int:
    """The dynamic PMU type of ``kprobe``/``uprobe``, from ``/sys/bus/event_source/devices/<pmu>/type``."""
    path = f"/sys/bus/event_source/devices/{pmu}/type"
    try:
        return int(kernel.read_file(path).decode().strip())
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise ProbeUnsupported(
                errno.ENOENT,
                f"this kernel has no {pmu}s: {path} is missing (built without CONFIG_{pmu.upper()}_EVENTS)",
            )
        raise


def retprobe_bit(kernel: Kernel, pmu: str) -> int:
    """The ``config:N`` bit that turns a probe into a return probe, from ``…/<pmu>/format/retprobe``."""
    text = kernel.read_file(f"/sys/bus/event_source/devices/{pmu}/format/retprobe").decode().strip()
    # e.g. "config:0"
    try:
        return int(text.split(":", 1)[1].split("-")[0])
    except (IndexError, ValueError):
        raise OSError(errno.EINVAL, f"unexpected {pmu} retprobe format {text!r}")


def perf_event_open_probe(
    kernel: Kernel, name: str, offset: int = 0, *, retprobe: bool = False, pmu: str = KPROBE_PMU,
    pid: int | None = None, cookie: int = 0,
) -> int:
    """Open a kprobe/kretprobe (or uprobe) perf event through its PMU, as aya's ``perf_event_open_probe``.

    ``attr.config1`` is a user pointer to the function name (``kprobe_func``) or
    binary path (``uprobe_path``); ``attr.config2`` is the offset
    (``probe_offset``). System-wide probes use pid -1 on CPU 0.
    """
    ptype = pmu_type(kernel, pmu)
    attr = PerfEventAttr()
    attr.size = PERF_ATTR_SIZE_VER8
    attr.type = ptype
    if retprobe:
        attr.config = 1 << retprobe_bit(kernel, pmu)
    func = cstr(name)
    attr.config1 = func.addr
    attr.config2 = offset
    cpu = 0 if pid is None else -1
    return kernel.perf_event_open(attr, -1 if pid is None else pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)


def tracepoint_id(kernel: Kernel, category: str, name: str) -> int:
    """A tracepoint's id from ``<tracefs>/events/<category>/<name>/id``."""
    if "/" in category or "/" in name or category in ("", ".", "..") or name in ("", ".", ".."):
        raise OSError(errno.EINVAL, f"bad tracepoint name {category}:{name}")
    last: OSError | None = None
    for root in TRACEFS_ROOTS:
        try:
            return int(kernel.read_file(f"{root}/events/{category}/{name}/id").decode().strip())
        except OSError as e:
            last = e
    assert last is not None
    raise OSError(last.errno or errno.ENOENT,
                  f"tracepoint {category}:{name} not found under {' or '.join(TRACEFS_ROOTS)} "
                  f"({os.strerror(last.errno or errno.ENOENT)}; is tracefs mounted?)")


def perf_event_open_trace_point(kernel: Kernel, tp_id: int, pid: int | None = None) -> int:
    """Open a PERF_TYPE_TRACEPOINT event (aya's ``perf_event_open_trace_point``): system-wide on CPU 0."""
    attr = PerfEventAttr()
    attr.size = PERF_ATTR_SIZE_VER8
    attr.type = PerfTypeId.PERF_TYPE_TRACEPOINT
    attr.config = tp_id
    attr.sample_period = 1
    attr.wakeup_events = 1
    cpu = 0 if pid is None else -1
    return kernel.perf_event_open(attr, -1 if pid is None else pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)


def perf_event_open_bpf_output(kernel: Kernel, cpu: int) -> int:
    """The software BPF_OUTPUT event of one CPU, with PERF_SAMPLE_RAW (aya's ``perf_event_open_bpf``)."""
    attr = PerfEventAttr()
    attr.size = PERF_ATTR_SIZE_VER8
    attr.type = PerfTypeId.PERF_TYPE_SOFTWARE
    attr.config = PerfSwIds.PERF_COUNT_SW_BPF_OUTPUT
    attr.sample_type = PerfSampleFormat.PERF_SAMPLE_RAW
    attr.sample_period = 1
    attr.wakeup_events = 1
    return kernel.perf_event_open(attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)


def perf_event_open_generic(
    kernel: Kernel, perf_type: int, config: int, *, pid: int | None = None, cpu: int = 0, sample_period: int = 1,
    sample_frequency: int | None = None,
) -> int:
    """Any perf event a PERF_EVENT program can sample (aya's ``perf_event_open`` with a sample policy):
    ``sample_frequency`` (Hz) sets ``freq`` and ``sample_freq``, else ``sample_period``."""
    attr = PerfEventAttr()
    attr.size = PERF_ATTR_SIZE_VER8
    attr.type = perf_type
    attr.config = config
    if sample_frequency is not None:
        attr.flags |= ATTR_FLAG_FREQ
        attr.sample_period = sample_frequency
    else:
        attr.sample_period = sample_period
    return kernel.perf_event_open(attr, -1 if pid is None else pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)


def perf_event_ioc_set_bpf(kernel: Kernel, perf_fd: int, prog_fd: int) -> None:
    """PERF_EVENT_IOC_SET_BPF: run ``prog_fd`` on every event."""
    kernel.ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd)


def perf_event_ioc_enable(kernel: Kernel, perf_fd: int) -> None:
    kernel.ioctl(perf_fd, PERF_EVENT_IOC_ENABLE, 0)


def perf_event_ioc_disable(kernel: Kernel, perf_fd: int) -> None:
    kernel.ioctl(perf_fd, PERF_EVENT_IOC_DISABLE, 0)

