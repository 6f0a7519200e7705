"""Perf event arrays and their per-CPU rings (aya/src/maps/perf/)."""
from .perf_buffer import Events, PerfBuffer, PerfBufferError, read_ring
from .perf_event_array import (
    AsyncPerfEventArray,
    AsyncPerfEventArrayBuffer,
    PerfEventArray,
    PerfEventArrayBuffer,
)

__all__ = [
    "Events", "PerfBuffer", "PerfBufferError", "read_ring", "AsyncPerfEventArray", "AsyncPerfEventArrayBuffer",
    "PerfEventArray", "PerfEventArrayBuffer",
]
