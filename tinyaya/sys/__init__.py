"""User space's syscall layer: one function per bpf(2) command plus perf_event_open helpers.

Like libbpf's ``src/bpf.c`` and aya's ``sys/``: the only place ``union bpf_attr``
and ``struct perf_event_attr`` are packed. Every function takes a ``Kernel``
(``SimKernel`` or ``LinuxKernel``) first and raises ``OSError`` with the errno.
"""
from .bpf import *  # noqa: F403
from .bpf import __all__ as _bpf_all
from .perf_event import *  # noqa: F403
from .perf_event import __all__ as _perf_all
from .prog import *  # noqa: F403
from .prog import __all__ as _prog_all

__all__ = [*_bpf_all, *_prog_all, *_perf_all]
