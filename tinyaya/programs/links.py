"""Links: what ``attach`` creates and ``detach`` undoes (aya/src/programs/links.rs, perf_attach.rs).

* ``PerfLink``: a perf event (kprobe, uprobe, tracepoint, perf_event) with the
  program on it, either through a BPF_LINK_CREATE perf link (``link_fd``) or,
  on kernels without perf links, PERF_EVENT_IOC_SET_BPF + ENABLE.
  Detaching closes the link and the perf event, which is what detaches in Linux.
* ``FdLink``: a bpf link fd (raw tracepoint, XDP, tcx…): closing it detaches.
* ``SocketLink``: SO_ATTACH_BPF on a socket; detaching is SO_DETACH_BPF.
"""
from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from .. import sys as bpfsys
from ..kernel import Kernel
from ..uapi.bpf import BpfAttachType
from .errors import AttachError, ProgramSyscallError

__all__ = ["Link", "PerfLink", "FdLink", "SocketLink", "perf_attach", "LinkId"]

#: links are named by small integers, unique within their program (aya's ``*LinkId`` types)
LinkId = int

SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27


@dataclass(eq=False)
class Link:
    kernel: Kernel
    detached: bool = field(default=False, init=False)

    def detach(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


@dataclass(eq=False)
class PerfLink(Link):
    perf_fd: int = -1
    link_fd: int | None = None
    #: what it is attached to, for messages (e.g. "kprobe sys_enter+0")
    target: str = ""

    def detach(self) -> None:
        if self.detached:
            return
        self.detached = True
        try:
            if self.link_fd is not None:
                self.kernel.close(self.link_fd)
            else:
                try:
                    bpfsys.perf_event_ioc_disable(self.kernel, self.perf_fd)
                except OSError:
                    pass
        finally:
            self.kernel.close(self.perf_fd)


@dataclass(eq=False)
class FdLink(Link):
    fd: int = -1
    target: str = ""

    def detach(self) -> None:
        if self.detached:
            return
        self.detached = True
        self.kernel.close(self.fd)

    def pin(self, path: str) -> None:
        bpfsys.bpf_obj_pin(self.kernel, self.fd, path)


@dataclass(eq=False)
class SocketLink(Link):
    sock: socket.socket | None = None
    prog_fd: int = -1

    def detach(self) -> None:
        if self.detached or self.sock is None:
            return
        self.detached = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, self.prog_fd)
        except OSError:
            pass


_NO_PERF_LINK = {errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS, errno.E2BIG, errno.EBADF, 524}


def perf_attach(kernel: Kernel, prog_fd: int, perf_fd: int, target: str, cookie: int = 0) -> PerfLink:
    """Attach ``prog_fd`` to an open perf event, as aya's ``perf_attach``: a perf link when the kernel
    has them (5.15+), else PERF_EVENT_IOC_SET_BPF and PERF_EVENT_IOC_ENABLE. Closes ``perf_fd`` on failure."""
    try:
        try:
            link_fd = bpfsys.bpf_link_create(kernel, prog_fd, perf_fd, BpfAttachType.BPF_PERF_EVENT,
                                             bpf_cookie=cookie)
            return PerfLink(kernel, perf_fd=perf_fd, link_fd=link_fd, target=target)
        except OSError as e:
            if e.errno not in _NO_PERF_LINK:
                raise AttachError(e.errno or errno.EINVAL, f"attaching to {target} failed: BPF_LINK_CREATE: "
                                                           f"{e.strerror}")
        try:
            bpfsys.perf_event_ioc_set_bpf(kernel, perf_fd, prog_fd)
            bpfsys.perf_event_ioc_enable(kernel, perf_fd)
        except OSError as e:
            raise ProgramSyscallError("PERF_EVENT_IOC_SET_BPF", e)
        return PerfLink(kernel, perf_fd=perf_fd, link_fd=None, target=target)
    except BaseException:
        kernel.close(perf_fd)
        raise
