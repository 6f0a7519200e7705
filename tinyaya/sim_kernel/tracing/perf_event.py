"""``PerfEvent``: the kernel object behind a perf_event_open(2) fd.

Semantics follow kernel/events/core.c: ``PERF_EVENT_IOC_SET_BPF`` attaches one
program per event (``perf_event_set_bpf_prog``: EEXIST if it has one, EINVAL
for a program of the wrong type), ENABLE/DISABLE toggle the event, ``mmap``
maps a ring of one header page plus 2^n data pages (EINVAL otherwise), and
``output`` is ``perf_event_output`` for ``bpf_perf_event_output``: the event
must be a PERF_COUNT_SW_BPF_OUTPUT software event (EINVAL) running on the
calling CPU (EOPNOTSUPP; an event that is disabled is on no CPU), and a full
ring drops the sample (ENOSPC) and reports it later as PERF_RECORD_LOST.

As on Linux, a program attached to a kprobe or tracepoint runs whether or not
the event is enabled (``kprobe_perf_func`` calls ``trace_call_bpf`` before it
looks at the enabled perf events); DISABLE only stops sampling into the ring.
"""
from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from ...uapi.perf_event import (
    PAGE_SIZE,
    PERF_EVENT_IOC_DISABLE,
    PERF_EVENT_IOC_ENABLE,
    PERF_EVENT_IOC_ID,
    PERF_EVENT_IOC_PAUSE_OUTPUT,
    PERF_EVENT_IOC_RESET,
    PERF_EVENT_IOC_SET_BPF,
    PerfSampleFormat,
)
from ..errors import EINVAL, ENOTTY, EOPNOTSUPP, fail
from .perf_ring import PerfRing

if TYPE_CHECKING:
    from .core import KprobeSite, Tracing
    from .tracepoints import Tracepoint
    from .uprobes import UprobeSite

__all__ = ["PerfEvent", "PerfEventKind"]

_SUPPORTED_SAMPLE = (PerfSampleFormat.PERF_SAMPLE_TID | PerfSampleFormat.PERF_SAMPLE_TIME
                     | PerfSampleFormat.PERF_SAMPLE_CPU | PerfSampleFormat.PERF_SAMPLE_PERIOD
                     | PerfSampleFormat.PERF_SAMPLE_RAW | PerfSampleFormat.PERF_SAMPLE_IP
                     | PerfSampleFormat.PERF_SAMPLE_ID | PerfSampleFormat.PERF_SAMPLE_STREAM_ID)


class PerfEventKind(Enum):
    BPF_OUTPUT = "bpf_output"
    SOFTWARE = "software"
    TRACEPOINT = "tracepoint"
    KPROBE = "kprobe"
    KRETPROBE = "kretprobe"
    UPROBE = "uprobe"
    URETPROBE = "uretprobe"


_BPF_OUTPUT = PerfEventKind.BPF_OUTPUT
_SAMPLE_RAW = int(PerfSampleFormat.PERF_SAMPLE_RAW)


class PerfEvent:
    """One open perf event. ``site`` is its kprobe site or tracepoint (None for software events)."""

    raw_ring: PerfRing | None = None

    def __init__(self, tracing: Tracing, kind: PerfEventKind, *, event_id: int, cpu: int, pid: int,
                 enabled: bool, sample_type: int = 0, sample_period: int = 1,
                 site: KprobeSite | Tracepoint | UprobeSite | None = None, offset: int = 0, config: int = 0) -> None:
        #: for the native tier's bpf_perf_event_output (see ``_native_refresh``): whether a sample can be
        #: written natively, the event's CPU and the address of its ring's ``ctl``
        self.nctl = (ctypes.c_uint64 * 4)()
        self._enabled = enabled
        self._released = False
        self.tracing = tracing
        self.kind = kind
        self.id = event_id
        self.cpu = cpu
        self.pid = pid
        self.sample_type = sample_type
        self.sample_period = sample_period
        self.site = site
        self.offset = offset
        self.config = config
        self.ring: PerfRing | None = None
        self.prog: object | None = None
        self._detach: Callable[[], None] | None = None
        self._native_refresh()

    # -- the native tier's view ---------------------------------------------------------------------
    def _native_refresh(self) -> None:
        """``nctl[0]``: 1 when ``output`` would write a RAW-only sample into the ring (a BPF output event,
        enabled, not released, mapped, PERF_SAMPLE_RAW alone); ``nctl[1]``: the CPU; ``nctl[2]``: the ring's
        ``ctl``. Anything else makes the native tier call ``output`` itself."""
        ring = self.__dict__.get("ring")
        ok = (self.kind is _BPF_OUTPUT and self._enabled and not self._released and ring is not None
              and self.sample_type == _SAMPLE_RAW and self.cpu >= 0)
        self.nctl[1] = self.cpu & 0xFFFF_FFFF_FFFF_FFFF
        self.nctl[2] = ctypes.addressof(ring.ctl) if ring is not None else 0
        self.nctl[0] = int(ok)
        #: the same test for the Python path (``bpf_perf_event_output``): the ring a RAW-only sample from
        #: ``self.cpu`` goes to with ``PerfRing.sample``, or None when ``output`` must decide
        self.raw_ring = ring if ok else None

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, v: bool) -> None:
        self._enabled = v
        self._native_refresh()

    @property
    def released(self) -> bool:
        return self._released

    @released.setter
    def released(self, v: bool) -> None:
        self._released = v
        self._native_refresh()

    @property
    def samples(self) -> int:
        """Samples written (for tests and the CLI)."""
        ring = self.ring
        return int(ring.ctl[2]) if ring is not None else 0

    @samples.setter
    def samples(self, v: int) -> None:
        if self.ring is not None:
            self.ring.ctl[2] = v

    def __repr__(self) -> str:
        where = f" {getattr(self.site, 'name', '')}" if self.site is not None else ""
        return f"<PerfEvent {self.kind.value}{where} id={self.id} cpu={self.cpu}>"

    # -- ioctl(2) -------------------------------------------------------------------------------
    def ioctl(self, request: int, arg: int = 0) -> int:
        if request == PERF_EVENT_IOC_ENABLE:
            self.enabled = True
            return 0
        if request == PERF_EVENT_IOC_DISABLE:
            self.enabled = False
            return 0
        if request == PERF_EVENT_IOC_RESET:
            return 0
        if request == PERF_EVENT_IOC_SET_BPF:
            prog = self.tracing.prog_from_fd(int(arg))
            self.tracing.attach(self, prog)
            return 0
        if request == PERF_EVENT_IOC_ID:
            # the id is written through a user pointer: the caller's address in this process
            from ..usermem import copy_to_user
            copy_to_user(int(arg), struct.pack("<Q", self.id))
            return 0
        if request == PERF_EVENT_IOC_PAUSE_OUTPUT:
            return 0
        raise fail(ENOTTY, f"perf event ioctl {request:#x}")

    # -- mmap(2) --------------------------------------------------------------------------------
    def mmap(self, length: int, prot: int = 3, flags: int = 1, offset: int = 0) -> memoryview:
        """Map the ring: ``length`` = (1 + 2^n) pages at offset 0 (``perf_mmap``)."""
        if offset != 0 or length <= PAGE_SIZE or length % PAGE_SIZE:
            raise fail(EINVAL, f"perf mmap length {length} offset {offset}: need (1 + 2^n) pages at 0")
        pages = length // PAGE_SIZE - 1
        if pages & (pages - 1):
            raise fail(EINVAL, f"perf mmap of {pages} data pages: not a power of two")
        if self.ring is not None:
            if self.ring.data_size != pages * PAGE_SIZE:
                raise fail(EINVAL, "perf event already mapped with another size")
            return self.ring.view
        self.ring = PerfRing(pages, self.id)
        self._native_refresh()
        return self.ring.view

    # -- bpf_perf_event_output ------------------------------------------------------------------
    def output(self, cpu: int, raw: bytes | bytearray | memoryview) -> int:
        """``perf_event_output`` of one RAW sample on ``cpu``: 0, or -EINVAL/-EOPNOTSUPP/-ENOSPC."""
        if self.kind is not _BPF_OUTPUT:
            return -EINVAL
        if not self._enabled or self.cpu != cpu or self._released:
            return -EOPNOTSUPP
        ring = self.ring
        if ring is None:
            # no buffer mapped yet: perf_output_begin finds no event->rb and fails with ENOSPC
            return -28
        prefix = self._prefix(cpu) if self.sample_type != _SAMPLE_RAW else b""
        if ring.output_raw(prefix, raw):
            ring.ctl[2] += 1
            return 0
        return -28  # ENOSPC

    def _prefix(self, cpu: int) -> bytes:
        """The sample fields before RAW, in ``perf_output_sample`` order."""
        st = self.sample_type
        out = bytearray()
        machine = self.tracing.kernel.machine
        task = machine.current_task(cpu)
        if st & PerfSampleFormat.PERF_SAMPLE_IP:
            out += struct.pack("<Q", machine.current_ip(cpu))
        if st & PerfSampleFormat.PERF_SAMPLE_TID:
            out += struct.pack("<II", task.tgid, task.pid)
        if st & PerfSampleFormat.PERF_SAMPLE_TIME:
            out += struct.pack("<Q", self.tracing.kernel.clock.now_ns())
        if st & PerfSampleFormat.PERF_SAMPLE_ID:
            out += struct.pack("<Q", self.id)
        if st & PerfSampleFormat.PERF_SAMPLE_STREAM_ID:
            out += struct.pack("<Q", self.id)
        if st & PerfSampleFormat.PERF_SAMPLE_CPU:
            out += struct.pack("<II", cpu, 0)
        if st & PerfSampleFormat.PERF_SAMPLE_PERIOD:
            out += struct.pack("<Q", self.sample_period)
        return bytes(out)

    # -- close(2) -------------------------------------------------------------------------------
    def release(self) -> None:
        """Last reference gone: detach the program (``perf_event_free_bpf_prog``) and drop the ring."""
        if self.released:
            return
        self.released = True
        if self._detach is not None:
            detach, self._detach = self._detach, None
            detach()
        self.tracing.forget(self)


SUPPORTED_SAMPLE_TYPE = int(_SUPPORTED_SAMPLE)
