"""bpf(2) program, BTF and link commands: PROG_LOAD, BTF_LOAD, PROG_TEST_RUN, LINK_CREATE/DETACH,
RAW_TRACEPOINT_OPEN (libbpf ``src/bpf.c``: ``bpf_prog_load``, ``bpf_btf_load``, ``bpf_prog_test_run_opts``,
``bpf_link_create``, ``bpf_link_detach``, ``bpf_raw_tracepoint_open``)."""
from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..kernel import Kernel
from ..uapi.bpf import (
    BPF_OBJ_NAME_LEN,
    BPF_STATS_RUN_TIME,
    BpfCmd,
    BtfLoadAttr,
    EnableStatsAttr,
    LinkCreateAttr,
    LinkDetachAttr,
    ProgLoadAttr,
    RawTracepointAttr,
    TestRunAttr,
)
from ._user import UserBuf, cstr, user_ptr

__all__ = [
    "ProgLoadError", "BtfLoadError", "bpf_prog_load", "bpf_btf_load", "TestRunResult", "bpf_prog_test_run",
    "bpf_link_create", "bpf_link_detach", "bpf_raw_tracepoint_open", "bpf_enable_stats", "MIN_LOG_BUF_SIZE",
    "MAX_LOG_BUF_SIZE",
]

#: aya's VerifierLog sizes: start at 10 KiB (after a first attempt without a log), grow x10 on ENOSPC
MIN_LOG_BUF_SIZE = 10 * 1024
#: the kernel's cap on log_size is UINT_MAX >> 2; we stop earlier, at 16 MiB
MAX_LOG_BUF_SIZE = 16 * 1024 * 1024


class ProgLoadError(OSError):
    """BPF_PROG_LOAD failed. ``verifier_log`` is what the verifier wrote into log_buf (may be empty)."""

    def __init__(self, err: int, verifier_log: str, name: str = "") -> None:
        what = f"BPF_PROG_LOAD{f' of {name}' if name else ''} failed: {os.strerror(err)}"
        super().__init__(err, what)
        self.verifier_log = verifier_log


class BtfLoadError(OSError):
    """BPF_BTF_LOAD failed; ``verifier_log`` holds the BTF log."""

    def __init__(self, err: int, verifier_log: str) -> None:
        super().__init__(err, f"BPF_BTF_LOAD failed: {os.strerror(err)}")
        self.verifier_log = verifier_log


def _log_text(buf: UserBuf) -> str:
    raw = buf.raw()
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _with_log(
    attempt: Callable[[int, UserBuf], int], log_level: int, log_size: int | None
) -> tuple[int | None, int, str]:
    """Run ``attempt(log_level, buf)`` as aya's ``retry_with_verifier_logs`` and libbpf do.

    A first try without a log when none was asked for (the fast path); on
    failure, again with log_level 1 and a buffer to capture why; on ENOSPC (the
    log did not fit) again with a buffer ten times larger. Returns
    ``(fd or None, errno, log)``.
    """
    size = 0 if log_level == 0 else (log_size or MIN_LOG_BUF_SIZE)
    level = log_level
    while True:
        buf = UserBuf(size=size) if size else UserBuf()
        try:
            return attempt(level, buf), 0, _log_text(buf) if size else ""
        except OSError as e:
            err = e.errno or errno.EINVAL
            log = _log_text(buf) if size else ""
            if size == 0:
                size, level = MIN_LOG_BUF_SIZE, 1
                continue
            if err == errno.ENOSPC and size < MAX_LOG_BUF_SIZE:
                size = min(size * 10, MAX_LOG_BUF_SIZE)
                continue
            return None, err, log


def bpf_prog_load(
    kernel: Kernel,
    prog_type: int,
    insns: bytes,
    license: str = "GPL",
    *,
    name: str | bytes = b"",
    expected_attach_type: int = 0,
    kern_version: int = 0,
    prog_flags: int = 0,
    prog_ifindex: int = 0,
    log_level: int = 0,
    log_size: int | None = None,
    prog_btf_fd: int = 0,
    func_info: bytes = b"",
    func_info_rec_size: int = 0,
    line_info: bytes = b"",
    line_info_rec_size: int = 0,
    attach_btf_id: int = 0,
    attach_prog_fd: int = 0,
    fd_array: Sequence[int] = (),
    log_out: list[str] | None = None,
) -> int:
    """BPF_PROG_LOAD; returns the program fd.

    On failure raises ``ProgLoadError`` carrying the verifier log (retrying with
    a log buffer, growing it on ENOSPC). When ``log_out`` is a list, the log of
    a successful load with ``log_level`` > 0 is appended to it.
    """
    if len(insns) % 8:
        raise ProgLoadError(errno.EINVAL, "", str(name))
    code = UserBuf(insns)
    lic = cstr(license)
    fi = user_ptr(func_info)
    li = user_ptr(line_info)
    fds = (ctypes.c_int32 * max(len(fd_array), 1))(*fd_array)
    prog_name = (name.encode() if isinstance(name, str) else name)[: BPF_OBJ_NAME_LEN - 1]

    def attempt(level: int, buf: UserBuf) -> int:
        attr = ProgLoadAttr(
            prog_type=prog_type, insn_cnt=len(insns) // 8, insns=code.addr, license=lic.addr,
            log_level=level, log_size=buf.size, log_buf=buf.addr, kern_version=kern_version,
            prog_flags=prog_flags, prog_name=prog_name, prog_ifindex=prog_ifindex,
            expected_attach_type=expected_attach_type, prog_btf_fd=prog_btf_fd,
            func_info_rec_size=func_info_rec_size if func_info else 0, func_info=fi.addr,
            func_info_cnt=len(func_info) // func_info_rec_size if func_info else 0,
            line_info_rec_size=line_info_rec_size if line_info else 0, line_info=li.addr,
            line_info_cnt=len(line_info) // line_info_rec_size if line_info else 0,
            attach_btf_id=attach_btf_id, attach_prog_fd=attach_prog_fd,
            fd_array=ctypes.addressof(fds) if fd_array else 0,
        )
        return kernel.bpf(BpfCmd.BPF_PROG_LOAD, attr)

    fd, err, log = _with_log(attempt, log_level, log_size)
    if fd is None:
        raise ProgLoadError(err, log, prog_name.decode(errors="replace"))
    if log_out is not None and log:
        log_out.append(log)
    return fd


def bpf_btf_load(kernel: Kernel, btf: bytes, *, log_level: int = 0, log_size: int | None = None,
                 log_out: list[str] | None = None) -> int:
    """BPF_BTF_LOAD; returns the BTF fd or raises ``BtfLoadError`` with the log."""
    data = UserBuf(btf)

    def attempt(level: int, buf: UserBuf) -> int:
        attr = BtfLoadAttr(btf=data.addr, btf_size=len(btf), btf_log_buf=buf.addr, btf_log_size=buf.size,
                           btf_log_level=level)
        return kernel.bpf(BpfCmd.BPF_BTF_LOAD, attr)

    fd, err, log = _with_log(attempt, log_level, log_size)
    if fd is None:
        raise BtfLoadError(err, log)
    if log_out is not None and log:
        log_out.append(log)
    return fd


@dataclass(frozen=True)
class TestRunResult:
    """What BPF_PROG_TEST_RUN wrote back: ``retval``, ``duration`` (ns per run), ``data_out``, ``ctx_out``."""

    retval: int
    duration: int
    data_out: bytes
    ctx_out: bytes


def bpf_prog_test_run(
    kernel: Kernel,
    prog_fd: int,
    *,
    data: bytes | None = None,
    data_size_out: int | None = None,
    ctx: bytes | None = None,
    ctx_size_out: int | None = None,
    repeat: int = 0,
    flags: int = 0,
    cpu: int = 0,
    batch_size: int = 0,
) -> TestRunResult:
    """BPF_PROG_TEST_RUN. Output buffers default to the input sizes plus 256 bytes of headroom for data."""
    din = user_ptr(data)
    cin = user_ptr(ctx)
    dsize = data_size_out if data_size_out is not None else (len(data) + 256 if data else 0)
    csize = ctx_size_out if ctx_size_out is not None else (len(ctx) if ctx else 0)
    dout = UserBuf(size=dsize)
    cout = UserBuf(size=csize)
    attr = TestRunAttr(
        prog_fd=prog_fd, data_size_in=len(data or b""), data_size_out=dsize, data_in=din.addr, data_out=dout.addr,
        repeat=repeat, ctx_size_in=len(ctx or b""), ctx_size_out=csize, ctx_in=cin.addr, ctx_out=cout.addr,
        flags=flags, cpu=cpu, batch_size=batch_size,
    )
    kernel.bpf(BpfCmd.BPF_PROG_TEST_RUN, attr)
    dn = min(int(attr.data_size_out), dsize)
    cn = min(int(attr.ctx_size_out), csize)
    return TestRunResult(retval=int(attr.retval), duration=int(attr.duration), data_out=dout.raw(dn),
                         ctx_out=cout.raw(cn))


def bpf_link_create(kernel: Kernel, prog_fd: int, target_fd: int, attach_type: int, *, flags: int = 0,
                    bpf_cookie: int = 0) -> int:
    """BPF_LINK_CREATE (perf links: ``target_fd`` is the perf event fd, attach_type BPF_PERF_EVENT)."""
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type, flags=flags,
                          bpf_cookie=bpf_cookie)
    return kernel.bpf(BpfCmd.BPF_LINK_CREATE, attr)


def bpf_link_detach(kernel: Kernel, link_fd: int) -> None:
    """BPF_LINK_DETACH: detach the program; the link fd stays open (and defunct) until closed."""
    attr = LinkDetachAttr(link_fd=link_fd)
    kernel.bpf(BpfCmd.BPF_LINK_DETACH, attr)


def bpf_enable_stats(kernel: Kernel, stats_type: int = BPF_STATS_RUN_TIME) -> int:
    """BPF_ENABLE_STATS: run_cnt/run_time_ns are counted while the returned fd is open (libbpf's
    ``bpf_enable_stats``)."""
    return kernel.bpf(BpfCmd.BPF_ENABLE_STATS, EnableStatsAttr(type=stats_type))


def bpf_raw_tracepoint_open(kernel: Kernel, name: str | None, prog_fd: int) -> int:
    """BPF_RAW_TRACEPOINT_OPEN; returns a raw-tracepoint link fd."""
    n = cstr(name) if name is not None else UserBuf()
    attr = RawTracepointAttr(name=n.addr, prog_fd=prog_fd)
    return kernel.bpf(BpfCmd.BPF_RAW_TRACEPOINT_OPEN, attr)
