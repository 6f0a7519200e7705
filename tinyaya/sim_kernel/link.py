"""Links: BPF_LINK_CREATE (perf links), BPF_LINK_DETACH, BPF_RAW_TRACEPOINT_OPEN, link ids and info.

A link (``struct bpf_link``, kernel/bpf/syscall.c) ties a program to an
attach point for as long as the link lives: closing its last fd (or
LINK_DETACH) detaches. Attaching itself is the tracing part's job
(``kernel.tracing.attach(perf_event, prog, cookie)`` and
``attach_raw_tracepoint(name, prog, cookie)``), which return a detach callable.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..uapi.bpf import BpfAttachType, BpfLinkType, BpfProgType, InfoAttr
from .errors import EBADF, EINVAL, ENOENT, ENOSPC, ENOSYS, ENOTSUPP, EOPNOTSUPP, EPERM, fail
from .mapcmds import check_uarg_tail_zero, get_next_id
from .prog import BpfProg, prog_from_fd
from .usermem import copy_from_user, copy_to_user, strncpy_from_user

if TYPE_CHECKING:
    from .kernel import SimKernel, UAttr

__all__ = ["BpfLink", "link_create", "link_detach", "raw_tracepoint_open", "link_get_info"]

PT = BpfProgType
LINK_CREATE_END = 64  # the largest link_create union member (Linux 6.18)
LINK_DETACH_END = 4
LINK_GET_FD_BY_ID_END = 4
RAW_TRACEPOINT_OPEN_END = 24  # raw_tracepoint.cookie
LINK_INFO_SIZE = 64  # sizeof(struct bpf_link_info) on Linux 6.18


@dataclass(eq=False)
class BpfLink:
    """A link: its type, program, and how to detach it."""

    link_type: int
    prog: BpfProg | None
    attach_type: int = 0
    id: int = 0
    #: the detach callable from the tracing part; None once detached
    detach_fn: Callable[[], None] | None = None
    #: what it is attached to, for bpf_link_info (tracepoint name, perf event)
    target: Any = None
    cookie: int = 0
    kernel: Any = None
    released: bool = False

    def detach(self) -> None:
        """Detach now (``bpf_link_detach``); the program reference goes, the link fd stays valid."""
        fn, self.detach_fn = self.detach_fn, None
        if fn is not None:
            fn()
        if self.prog is not None and self.kernel is not None:
            self.kernel.obj_put(self.prog)
        self.prog = None

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.detach()
        if self.kernel is not None and self.id:
            self.kernel.link_ids.remove(self.id)


def _install_link(k: SimKernel, link: BpfLink) -> int:
    link.kernel = k
    if link.prog is not None:
        k.obj_get(link.prog)
    link.id = k.link_ids.alloc(link)
    return k.fds.install(link)


def link_create(k: SimKernel, ua: UAttr) -> int:
    """``link_create`` for perf links (``bpf_perf_link_attach``) and raw tracepoints."""
    ua.check_unused(LINK_CREATE_END)
    prog_fd, target_fd, attach_type, flags = struct.unpack_from("<IIII", ua.raw, 0)
    prog = prog_from_fd(k, prog_fd)
    if prog.prog_type in (PT.BPF_PROG_TYPE_PERF_EVENT, PT.BPF_PROG_TYPE_TRACEPOINT) or (
            prog.prog_type == PT.BPF_PROG_TYPE_KPROBE and attach_type == BpfAttachType.BPF_PERF_EVENT):
        if flags:
            raise fail(EINVAL, "perf link flags")
        (cookie,) = struct.unpack_from("<Q", ua.raw, 16)
        try:
            ev = k.fds.get(target_fd)
        except OSError:
            raise fail(EBADF, f"target_fd {target_fd} is not open")
        if not hasattr(ev, "kind") or not hasattr(ev, "site"):
            raise fail(EBADF, f"target_fd {target_fd} is not a perf event")
        try:
            tracing = k.tracing
        except ImportError:
            raise fail(ENOSYS, "no tracing part")
        link = BpfLink(int(BpfLinkType.BPF_LINK_TYPE_PERF_EVENT), prog, attach_type, target=ev, cookie=cookie)
        fd = _install_link(k, link)
        try:
            link.detach_fn = tracing.attach(ev, prog, cookie)
        except BaseException:
            link.detach_fn = None
            k.fds.close(fd)
            raise
        k.fds.hold(ev)  # the link holds the perf event file (link->perf_file)
        inner = link.detach_fn

        def detach() -> None:
            if inner is not None:
                inner()
            k.fds.put(ev)

        link.detach_fn = detach
        return fd
    if prog.prog_type in (PT.BPF_PROG_TYPE_KPROBE,):
        raise fail(EOPNOTSUPP if attach_type in (42, 47, 48) else EINVAL,
                   "kprobe/uprobe multi links are not supported by the simulated kernel")
    raise fail(EINVAL, f"LINK_CREATE for program type {prog.prog_type}")


def link_from_fd(k: SimKernel, fd: int) -> BpfLink:
    obj = k.fds.get(fd)
    if not isinstance(obj, BpfLink):
        raise fail(EINVAL, f"fd {fd} is not a link")
    return obj


#: link types whose ``bpf_link_ops`` have ``.detach`` (cgroup, xdp, netns, ...): none of those we make;
#: perf event and raw tracepoint links are detached by closing their last fd
_DETACHABLE: set[int] = set()


def link_detach(k: SimKernel, ua: UAttr) -> int:
    """``link_detach``: EOPNOTSUPP for link types without a detach op (perf event and raw tracepoint
    links: Linux 6.18 detaches those only when the link is released)."""
    ua.check_unused(LINK_DETACH_END)
    (fd,) = struct.unpack_from("<I", ua.raw, 0)
    link = link_from_fd(k, fd)
    if link.link_type not in _DETACHABLE:
        raise fail(EOPNOTSUPP, "this link type cannot be detached, only closed")
    link.detach()
    return 0


def raw_tracepoint_open(k: SimKernel, ua: UAttr) -> int:
    """``bpf_raw_tracepoint_open`` → ``bpf_raw_tp_link_attach``."""
    ua.check_unused(RAW_TRACEPOINT_OPEN_END)
    name_ptr, prog_fd, _pad, cookie = struct.unpack_from("<QIIQ", ua.raw, 0)
    prog = prog_from_fd(k, prog_fd)
    if prog.prog_type not in (PT.BPF_PROG_TYPE_RAW_TRACEPOINT, PT.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE):
        raise fail(EINVAL, "BPF_RAW_TRACEPOINT_OPEN needs a raw tracepoint program")
    name = strncpy_from_user(name_ptr, 127).decode(errors="replace")
    try:
        tracing = k.tracing
    except ImportError:
        raise fail(ENOENT, f"no raw tracepoint {name!r}")
    detach = tracing.attach_raw_tracepoint(name, prog, cookie)
    link = BpfLink(int(BpfLinkType.BPF_LINK_TYPE_RAW_TRACEPOINT), prog, int(BpfAttachType.BPF_TRACE_RAW_TP),
                   detach_fn=detach, target=name, cookie=cookie)
    return _install_link(k, link)


def link_get_next_id(k: SimKernel, ua: UAttr) -> int:
    return get_next_id(k, ua, k.link_ids)


def link_get_fd_by_id(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(LINK_GET_FD_BY_ID_END)
    (link_id,) = struct.unpack_from("<I", ua.raw, 0)
    if not k.capable("CAP_SYS_ADMIN"):
        raise fail(EPERM, "GET_FD_BY_ID needs CAP_SYS_ADMIN")
    link = k.link_ids.find(link_id)
    if link is None:
        raise fail(ENOENT, f"no link with id {link_id}")
    return k.fds.install(link)


def _copy_name(uname: int, ulen: int, name: bytes) -> None:
    """``bpf_copy_to_user``: the whole name and NUL if it fits, else ``ulen - 1`` bytes, NUL and ENOSPC."""
    if ulen >= len(name) + 1:
        copy_to_user(uname, name + b"\0")
        return
    copy_to_user(uname, name[:ulen - 1] + b"\0")
    raise fail(ENOSPC, "name buffer too small")


#: enum bpf_perf_event_type
_PERF_EVENT_TYPE = {"uprobe": 1, "uretprobe": 2, "kprobe": 3, "kretprobe": 4, "tracepoint": 5}


def _fill_raw_tp(link: BpfLink, info: bytearray) -> None:
    """``bpf_raw_tp_link_fill_link_info``: raw_tracepoint { tp_name @16, tp_name_len @24, cookie @32 }."""
    uname, ulen = struct.unpack_from("<QI", info, 16)
    if bool(uname) != bool(ulen):
        raise fail(EINVAL, "tp_name and tp_name_len go together")
    name = str(link.target).encode()
    struct.pack_into("<I", info, 24, len(name) + 1)
    struct.pack_into("<Q", info, 32, link.cookie)
    if uname:
        _copy_name(uname, ulen, name)


def _fill_perf_event(link: BpfLink, info: bytearray) -> None:
    """``bpf_perf_link_fill_link_info``: perf_event { type @16, then the kprobe/tracepoint/event member @24 }."""
    ev = link.target
    kind = getattr(getattr(ev, "kind", None), "value", "")
    site = getattr(ev, "site", None)
    if kind in ("kprobe", "kretprobe", "tracepoint", "uprobe", "uretprobe"):
        ptype = _PERF_EVENT_TYPE[kind]
        struct.pack_into("<I", info, 16, ptype)
        uname, ulen = struct.unpack_from("<QI", info, 24)
        if bool(uname) != bool(ulen):
            raise fail(EINVAL, "name and name_len go together")
        name = str(getattr(site, "name", "")).encode()
        struct.pack_into("<I", info, 32, len(name) + 1)
        if kind == "tracepoint":
            struct.pack_into("<Q", info, 40, link.cookie)
        else:
            fn = getattr(site, "fn", None)
            offset = int(getattr(ev, "offset", 0))
            struct.pack_into("<IQQQ", info, 36, offset, int(getattr(fn, "addr", 0)) + offset, 0, link.cookie)
        if uname:
            _copy_name(uname, ulen, name)
        return
    struct.pack_into("<I", info, 16, 6)  # BPF_PERF_EVENT_EVENT: config @24, type @32, cookie @40
    struct.pack_into("<QIIQ", info, 24, int(getattr(ev, "config", 0)), int(getattr(ev, "type", 1)), 0, link.cookie)


def link_get_info(k: SimKernel, ua: UAttr, link: BpfLink, uinfo: int, info_len: int) -> int:
    """``bpf_link_get_info_by_fd``: type, id, prog_id, then the link type's member (``fill_link_info``);
    a failure there (ENOSPC for a short name buffer) leaves the caller's info untouched."""
    check_uarg_tail_zero(uinfo, LINK_INFO_SIZE, info_len)
    info_len = min(LINK_INFO_SIZE, info_len)
    info = bytearray(copy_from_user(uinfo, info_len)) + bytes(LINK_INFO_SIZE - info_len)
    struct.pack_into("<III", info, 0, link.link_type, link.id, link.prog.id if link.prog is not None else 0)
    if link.link_type == BpfLinkType.BPF_LINK_TYPE_RAW_TRACEPOINT:
        _fill_raw_tp(link, info)
    elif link.link_type == BpfLinkType.BPF_LINK_TYPE_PERF_EVENT and link.target is not None:
        _fill_perf_event(link, info)
    copy_to_user(uinfo, bytes(info[:info_len]))
    ua.put_u32(InfoAttr.info_len.offset, info_len)
    return 0


# -- cgroup-style attachment: the simulated kernel has no cgroups, sockets or netns to attach to --------
PROG_ATTACH_END = 32  # expected_revision
PROG_QUERY_END = 64  # query.revision
TASK_FD_QUERY_END = 48  # task_fd_query.probe_addr
#: ``attach_type_to_prog_type`` for the attach types whose target is a cgroup fd
_CGROUP_ATTACH = set(range(0, 4)) | {6} | set(range(8, 16)) | {18, 19, 20, 21, 22} | set(range(29, 33)) | {34}


def prog_detach(k: SimKernel, ua: UAttr) -> int:
    """``bpf_prog_detach``: a cgroup target fd that is not a cgroup is EBADF (there are none here)."""
    ua.check_unused(PROG_ATTACH_END)
    _target, attach_bpf_fd, attach_type = struct.unpack_from("<III", ua.raw, 0)
    if attach_type not in _CGROUP_ATTACH:
        raise fail(EINVAL, f"attach type {attach_type} is not supported by the simulated kernel")
    if attach_bpf_fd:
        prog_from_fd(k, attach_bpf_fd)
    raise fail(EBADF, "target_fd is not a cgroup")


def prog_query(k: SimKernel, ua: UAttr) -> int:
    """``bpf_prog_query``."""
    if not k.capable("CAP_NET_ADMIN"):
        raise fail(EPERM, "BPF_PROG_QUERY needs CAP_NET_ADMIN")
    ua.check_unused(PROG_QUERY_END)
    _target, attach_type, query_flags = struct.unpack_from("<III", ua.raw, 0)
    if query_flags & ~1:
        raise fail(EINVAL, "query_flags")
    if attach_type not in _CGROUP_ATTACH:
        raise fail(EINVAL, f"attach type {attach_type} is not supported by the simulated kernel")
    raise fail(EBADF, "target_fd is not a cgroup")


def task_fd_query(k: SimKernel, ua: UAttr) -> int:
    """``bpf_task_fd_query``: only this process exists to be queried; its perf/raw-tp fds are not probes
    of a real task here (ENOTSUPP), others are EBADF."""
    if not k.capable("CAP_SYS_ADMIN"):
        raise fail(EPERM, "BPF_TASK_FD_QUERY needs CAP_SYS_ADMIN")
    ua.check_unused(TASK_FD_QUERY_END)
    pid, fd, flags = struct.unpack_from("<III", ua.raw, 0)
    if flags:
        raise fail(EINVAL, "task_fd_query flags")
    import os

    if pid != os.getpid():
        raise fail(ENOENT, f"no task {pid}")
    k.fds.get(fd)
    raise fail(ENOTSUPP, "fd is not a probe of this task")
