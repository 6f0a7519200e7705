"""The simulated kernel's clocks. Time is injected, never read from the host.

``ktime_ns`` is CLOCK_MONOTONIC (bpf_ktime_get_ns); ``boot_ns`` is
CLOCK_BOOTTIME (bpf_ktime_get_boot_ns), which also counts simulated suspend.
The workload advances the clock; nothing else does.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Clock:
    #: CLOCK_MONOTONIC in ns; starts a little after boot, like a real machine
    ktime_ns: int = 5_000_000_000
    #: time spent suspended (added to CLOCK_BOOTTIME only)
    suspended_ns: int = 0

    def now_ns(self) -> int:
        return self.ktime_ns

    def boot_ns(self) -> int:
        return self.ktime_ns + self.suspended_ns

    def advance(self, ns: int) -> None:
        if ns < 0:
            raise ValueError("time does not go backwards")
        self.ktime_ns += ns
