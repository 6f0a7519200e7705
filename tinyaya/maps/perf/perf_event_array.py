"""``PerfEventArray`` and ``AsyncPerfEventArray`` (aya/src/maps/perf/).

``open(cpu, page_count)`` opens the software BPF_OUTPUT event on that CPU,
mmaps its ring, stores the perf fd at index ``cpu`` of the map (so
``bpf_perf_event_output(…, BPF_F_CURRENT_CPU, …)`` on that CPU lands there)
and enables the event, as aya's ``PerfEventArray::open`` does.
"""
from __future__ import annotations

import asyncio
import mmap
from typing import Any

from ... import sys as bpfsys
from ...kernel import possible_cpus
from ...uapi.bpf import BpfMapType
from ..base import MapData, TypedMap, call
from ..codec import u32
from ..errors import OutOfBounds
from .perf_buffer import Events, PerfBuffer

__all__ = ["PerfEventArray", "PerfEventArrayBuffer", "AsyncPerfEventArray", "AsyncPerfEventArrayBuffer"]


class PerfEventArrayBuffer:
    """The ring of one CPU; ``read_events()`` drains it."""

    def __init__(self, array: PerfEventArray, buf: PerfBuffer) -> None:
        self.array = array
        self.buf = buf

    @property
    def cpu(self) -> int:
        return self.buf.cpu

    @property
    def fd(self) -> int:
        return self.buf.fd

    def readable(self) -> bool:
        return self.buf.readable()

    def read_events(self, max_records: int | None = None) -> tuple[list[bytes], Events]:
        return self.buf.read_events(max_records)

    def close(self) -> None:
        """Remove our fd from the map slot and close the event."""
        if not self.buf.closed:
            try:
                self.array.map.delete(self.buf.cpu.to_bytes(4, "little"))
            except Exception:  # the slot may be gone already (map closed, or replaced)
                pass
            self.buf.close()


class PerfEventArray(TypedMap):
    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_PERF_EVENT_ARRAY,)

    def __init__(self, map: MapData) -> None:
        super().__init__(map, u32, u32)
        self.buffers: list[PerfEventArrayBuffer] = []

    def cpus(self) -> list[int]:
        return [c for c in possible_cpus(self.map.kernel) if c < self.map.max_entries]

    def open(self, cpu: int, page_count: int = 2) -> PerfEventArrayBuffer:
        if not 0 <= cpu < self.map.max_entries:
            raise OutOfBounds(cpu, self.map.max_entries)
        kernel = self.map.kernel
        fd = call("perf_event_open", bpfsys.perf_event_open_bpf_output, kernel, cpu)
        try:
            buf = PerfBuffer(kernel, cpu, fd, page_count, mmap.PAGESIZE)
        except BaseException:
            kernel.close(fd)
            raise
        try:
            self.map.update(cpu.to_bytes(4, "little"), fd.to_bytes(4, "little"))
            call("perf_event_ioc_enable", bpfsys.perf_event_ioc_enable, kernel, fd)
        except BaseException:
            buf.close()
            raise
        out = PerfEventArrayBuffer(self, buf)
        self.buffers.append(out)
        return out

    def open_all(self, page_count: int = 2) -> list[PerfEventArrayBuffer]:
        """One buffer per possible CPU (aya users loop over ``online_cpus()``)."""
        return [self.open(cpu, page_count) for cpu in self.cpus()]

    def read_all(self) -> tuple[list[bytes], Events]:
        """Drain every open buffer, in CPU order."""
        out: list[bytes] = []
        read = lost = 0
        for b in self.buffers:
            samples, ev = b.read_events()
            out.extend(samples)
            read += ev.read
            lost += ev.lost
        return out, Events(read, lost)

    def close(self) -> None:
        for b in self.buffers:
            b.close()
        self.buffers.clear()

    def __enter__(self) -> PerfEventArray:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPerfEventArrayBuffer:
    """``await buf.read_events()`` waits until the ring holds something, then drains it."""

    def __init__(self, inner: PerfEventArrayBuffer, poll_interval: float) -> None:
        self.inner = inner
        self.poll_interval = poll_interval

    @property
    def cpu(self) -> int:
        return self.inner.cpu

    async def read_events(self, max_records: int | None = None) -> tuple[list[bytes], Events]:
        # A simulated kernel's fds are not pollable, so both backends poll the ring's head.
        while not self.inner.readable():
            await asyncio.sleep(self.poll_interval)
        return self.inner.read_events(max_records)

    def close(self) -> None:
        self.inner.close()


class AsyncPerfEventArray:
    """The asyncio face of ``PerfEventArray`` (aya's ``AsyncPerfEventArray``)."""

    def __init__(self, map: MapData, poll_interval: float = 0.01) -> None:
        self.sync = PerfEventArray(map)
        self.poll_interval = poll_interval

    @property
    def map(self) -> MapData:
        return self.sync.map

    def cpus(self) -> list[int]:
        return self.sync.cpus()

    def open(self, cpu: int, page_count: int = 2) -> AsyncPerfEventArrayBuffer:
        return AsyncPerfEventArrayBuffer(self.sync.open(cpu, page_count), self.poll_interval)

    def close(self) -> None:
        self.sync.close()

    @classmethod
    def from_pin(cls, path: str, kernel: Any = None) -> AsyncPerfEventArray:
        return cls(MapData.from_pin(path, kernel))
