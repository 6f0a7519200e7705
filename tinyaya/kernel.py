"""The ``Kernel`` protocol: the syscall boundary that everything above the kernel uses.

This is tinyaya's equivalent of aya's ``sys/`` layer. The loader, the
Aya-shaped maps and programs, and the CLI reach a kernel only through these
calls, so they run unchanged on the simulated kernel (``SimKernel``) and on
the real one (``LinuxKernel``).

Semantics are Linux's: arguments are uapi byte layouts with user pointers
(addresses in this process), results are ints, and failures raise
``OSError`` with Linux's errno.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

#: A writable buffer of uapi bytes: a bytearray, a memoryview or a ctypes structure/array.
#: (collections.abc.Buffer would say it exactly, but needs Python 3.12.)
Buffer = Any


@runtime_checkable
class Kernel(Protocol):
    """What a kernel offers user space: bpf(2), perf_event_open(2), ioctl(2), mmap(2), close(2) and a few files."""

    #: "sim" or "linux"
    backend: str

    def bpf(self, cmd: int, attr: Buffer) -> int:
        """bpf(2): ``attr`` is a writable buffer holding ``union bpf_attr`` bytes; the kernel may write back into it."""
        ...

    def perf_event_open(self, attr: Buffer, pid: int, cpu: int, group_fd: int, flags: int) -> int:
        """perf_event_open(2) with ``struct perf_event_attr`` bytes."""
        ...

    def ioctl(self, fd: int, request: int, arg: int = 0) -> int:
        """ioctl(2), for the perf event ioctls (PERF_EVENT_IOC_ENABLE, _DISABLE, _SET_BPF)."""
        ...

    def mmap(self, fd: int, length: int, prot: int, flags: int, offset: int = 0) -> memoryview:
        """mmap(2) of a perf event or map fd; returns a writable view of the shared memory."""
        ...

    def munmap(self, mem: memoryview) -> None:
        ...

    def close(self, fd: int) -> None:
        ...

    def read_file(self, path: str) -> bytes:
        """Read a sysfs/tracefs/procfs file, e.g. ``/sys/devices/system/cpu/possible``,
        ``/sys/bus/event_source/devices/kprobe/type``,
        ``/sys/kernel/tracing/events/raw_syscalls/sys_enter/id`` or ``/proc/kallsyms``.
        ``/sys/kernel/tracing/trace_pipe`` returns what is buffered now, without blocking.
        Raises OSError(ENOENT) for a path the kernel does not have."""
        ...


def possible_cpus(kernel: Kernel) -> list[int]:
    """Parse ``/sys/devices/system/cpu/possible`` (e.g. ``0-3`` or ``0,2-5``), as aya's ``possible_cpus()``."""
    text = kernel.read_file("/sys/devices/system/cpu/possible").decode().strip()
    cpus: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def __getattr__(name: str) -> object:
    # LinuxKernel lives in tinyaya.linux; importing it lazily keeps ctypes/libc out of the sim path.
    if name == "LinuxKernel":
        from .linux import LinuxKernel

        return LinuxKernel
    raise AttributeError(name)
