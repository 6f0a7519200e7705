"""The other typed programs: ``TracePoint``, ``RawTracePoint``, ``SocketFilter``, ``Xdp``, ``SchedClassifier``,
``PerfEvent`` (aya/src/programs/trace_point.rs, raw_trace_point.rs, socket_filter.rs, xdp.rs, tc.rs,
perf_event.rs), and ``program_class`` choosing the class for a section."""
from __future__ import annotations

import errno
import socket as _socket
from enum import Enum
from typing import TYPE_CHECKING, Any

from .. import sys as bpfsys
from ..uapi.bpf import BpfAttachType, BpfProgType
from .errors import AttachError, ProgramSyscallError, Unsupported
from .links import SO_ATTACH_BPF, FdLink, LinkId, SocketLink, perf_attach
from .probe import KProbe, UProbe
from .program import Program

if TYPE_CHECKING:
    from ..obj import ProgramSection

__all__ = ["TracePoint", "RawTracePoint", "SocketFilter", "Xdp", "XdpFlags", "SchedClassifier", "TcAttachType",
           "PerfEvent", "program_class"]


class TracePoint(Program):
    """``attach(category, name)``: a PERF_TYPE_TRACEPOINT event with the id from tracefs."""

    PROG_TYPE = BpfProgType.BPF_PROG_TYPE_TRACEPOINT

    def attach(self, category: str, name: str) -> LinkId:
        prog_fd = self._require_fd()
        try:
            tp_id = bpfsys.tracepoint_id(self.kernel, category, name)
        except OSError as e:
            raise AttachError(e.errno or errno.ENOENT, str(e.strerror))
        try:
            perf_fd = bpfsys.perf_event_open_trace_point(self.kernel, tp_id)
        except OSError as e:
            raise ProgramSyscallError(f"perf_event_open(tracepoint {category}:{name})", e)
        return self._add_link(perf_attach(self.kernel, prog_fd, perf_fd, f"tracepoint {category}:{name}"))


class RawTracePoint(Program):
    """``attach(tp_name)``: BPF_RAW_TRACEPOINT_OPEN."""

    PROG_TYPE = BpfProgType.BPF_PROG_TYPE_RAW_TRACEPOINT

    def attach(self, tp_name: str) -> LinkId:
        prog_fd = self._require_fd()
        try:
            fd = bpfsys.bpf_raw_tracepoint_open(self.kernel, tp_name, prog_fd)
        except OSError as e:
            raise ProgramSyscallError(f"BPF_RAW_TRACEPOINT_OPEN {tp_name}", e)
        return self._add_link(FdLink(self.kernel, fd=fd, target=f"raw_tracepoint {tp_name}"))


class SocketFilter(Program):
    """``attach(sock)``: SO_ATTACH_BPF on a real socket (LinuxKernel only)."""

    PROG_TYPE = BpfProgType.BPF_PROG_TYPE_SOCKET_FILTER

    def attach(self, sock: _socket.socket) -> LinkId:
        prog_fd = self._require_fd()
        if getattr(self.kernel, "backend", "") != "linux":
            raise Unsupported("socket filters attach to real sockets: use the linux backend (test_run works here)")
        try:
            sock.setsockopt(_socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd)
        except OSError as e:
            raise ProgramSyscallError("setsockopt(SO_ATTACH_BPF)", e)
        return self._add_link(SocketLink(self.kernel, sock=sock, prog_fd=prog_fd))


class XdpFlags(int, Enum):
    """``XDP_FLAGS_*`` of if_link.h."""

    DEFAULT = 0
    UPDATE_IF_NOEXIST = 1 << 0
    SKB_MODE = 1 << 1
    DRV_MODE = 1 << 2
    HW_MODE = 1 << 3
    REPLACE = 1 << 4


def _ifindex(interface: str | int) -> int:
    if isinstance(interface, int):
        return interface
    try:
        return _socket.if_nametoindex(interface)
    except OSError:
        raise AttachError(errno.ENODEV, f"no network interface named {interface!r}")


class Xdp(Program):
    """``attach(interface, flags)``: an XDP link (BPF_LINK_CREATE with BPF_XDP)."""

    PROG_TYPE = BpfProgType.BPF_PROG_TYPE_XDP

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.expected_attach_type:
            self.expected_attach_type = BpfAttachType.BPF_XDP  # as aya loads XDP programs

    def attach(self, interface: str | int, flags: int = 0) -> LinkId:
        prog_fd = self._require_fd()
        ifindex = _ifindex(interface)
        try:
            fd = bpfsys.bpf_link_create(self.kernel, prog_fd, ifindex, BpfAttachType.BPF_XDP, flags=int(flags))
        except OSError as e:
            raise ProgramSyscallError(f"BPF_LINK_CREATE (xdp on {interface})", e)
        return self._add_link(FdLink(self.kernel, fd=fd, target=f"xdp {interface}"))


#: enum bpf_attach_type values added in 6.6 (linux/bpf.h)
BPF_TCX_INGRESS = 46
BPF_TCX_EGRESS = 47


class TcAttachType(Enum):
    Ingress = "ingress"
    Egress = "egress"


class SchedClassifier(Program):
    """``attach(interface, TcAttachType)``: a tcx link (BPF_LINK_CREATE with BPF_TCX_INGRESS/EGRESS, 6.6+)."""

    PROG_TYPE = BpfProgType.BPF_PROG_TYPE_SCHED_CLS

    def attach(self, interface: str | int, attach_type: TcAttachType = TcAttachType.Ingress) -> LinkId:
        prog_fd = self._require_fd()
        ifindex = _ifindex(interface)
        at = BPF_TCX_INGRESS if attach_type is TcAttachType.Ingress else BPF_TCX_EGRESS
        try:
            fd = bpfsys.bpf_link_create(self.kernel, prog_fd, ifindex, at)
        except OSError as e:
            raise ProgramSyscallError(f"BPF_LINK_CREATE (tcx {attach_type.value} on {interface})", e)
        return self._add_link(FdLink(self.kernel, fd=fd, target=f"tcx {attach_type.value} {interface}"))


class PerfEvent(Program):
    """``attach(perf_type, config, pid=None, cpu=0, sample_period=1)``: any perf event."""

    PROG_TYPE = BpfProgType.BPF_PROG_TYPE_PERF_EVENT

    def attach(self, perf_type: int, config: int, *, pid: int | None = None, cpu: int = 0,
               sample_period: int = 1, sample_frequency: int | None = None) -> LinkId:
        prog_fd = self._require_fd()
        try:
            perf_fd = bpfsys.perf_event_open_generic(self.kernel, perf_type, config, pid=pid, cpu=cpu,
                                                     sample_period=sample_period, sample_frequency=sample_frequency)
        except OSError as e:
            raise ProgramSyscallError(f"perf_event_open(type {perf_type}, config {config})", e)
        return self._add_link(perf_attach(self.kernel, prog_fd, perf_fd, f"perf_event {perf_type}:{config}"))


_BY_KIND: dict[str, type[Program]] = {
    "kprobe": KProbe, "kretprobe": KProbe, "ksyscall": KProbe, "kretsyscall": KProbe,
    "uprobe": UProbe, "uretprobe": UProbe,
    "tracepoint": TracePoint, "tp": TracePoint,
    "raw_tracepoint": RawTracePoint, "raw_tp": RawTracePoint,
    "socket": SocketFilter, "xdp": Xdp, "classifier": SchedClassifier, "tc": SchedClassifier,
    "tcx": SchedClassifier, "perf_event": PerfEvent,
}

_BY_TYPE: dict[int, type[Program]] = {
    BpfProgType.BPF_PROG_TYPE_KPROBE: KProbe, BpfProgType.BPF_PROG_TYPE_TRACEPOINT: TracePoint,
    BpfProgType.BPF_PROG_TYPE_RAW_TRACEPOINT: RawTracePoint, BpfProgType.BPF_PROG_TYPE_SOCKET_FILTER: SocketFilter,
    BpfProgType.BPF_PROG_TYPE_XDP: Xdp, BpfProgType.BPF_PROG_TYPE_SCHED_CLS: SchedClassifier,
    BpfProgType.BPF_PROG_TYPE_PERF_EVENT: PerfEvent,
}


def program_class(section: ProgramSection | None, prog_type: int | None = None) -> type[Program]:
    """The typed class for a section (by its kind, then its program type); ``Program`` otherwise."""
    if section is not None:
        kind = section.kind.split("/", 1)[0].split(".", 1)[0]
        cls = _BY_KIND.get(kind)
        if cls is not None:
            return cls
        prog_type = int(section.prog_type)
    if prog_type is not None and prog_type in _BY_TYPE:
        return _BY_TYPE[prog_type]
    return Program
