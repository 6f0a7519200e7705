"""``SimKernel``: the simulated kernel's syscall entry points and the ``bpf()`` dispatch table.

``bpf(cmd, attr)`` follows ``__sys_bpf`` (kernel/bpf/syscall.c): the attr
buffer may be shorter than ``union bpf_attr`` (the rest reads as zero) or
longer, if the extra bytes are zero (``bpf_check_uarg_tail_zero``: E2BIG
otherwise, and always past a page); an unknown command is EINVAL. Each
command has one handler; the map commands live in ``mapcmds.py``, PROG_LOAD
and the program commands in ``prog.py``, BTF in ``btf.py``, links in
``link.py``, pins in ``bpffs.py``.
"""
from __future__ import annotations

import ctypes
import mmap as _mmap
import os
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..uapi.bpf import BpfCmd
from . import batchcmds, bpffs, btf, link, mapcmds, prog, progcmds
from .clock import Clock
from .errors import E2BIG, EACCES, EINVAL, ENODEV, ENOENT, ENOMEM, ENOSYS, ENOTTY, fail
from .fdtable import FMODE_WRITE, FdTable, IdAllocator
from .memory import AddressSpace

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["SimKernel", "Memlock", "UAttr", "BPF_ATTR_UNION_SIZE", "DEFAULT_MEMLOCK_LIMIT"]

#: ``sizeof(union bpf_attr)`` of the kernel we mirror (Linux 6.18: prog_load ends with ``keyring_id`` at 164).
#: The uapi header installed here is older (144); the tail check uses the running kernel's size.
BPF_ATTR_UNION_SIZE = 168
PAGE_SIZE = 4096
#: the default memory charge limit when the caller gives none (memcg has no limit by default; we keep
#: the host safe)
DEFAULT_MEMLOCK_LIMIT = 1 << 30


class Memlock:
    """Memory charged for bpf objects, as memcg accounting (``bpf_map_charge_memlock`` in older kernels).

    ``charge(n)`` raises ENOMEM past the limit, as a memcg-accounted
    allocation fails; ``uncharge(n)`` gives it back.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = DEFAULT_MEMLOCK_LIMIT if limit is None else limit
        self.used = 0

    def try_charge(self, nbytes: int) -> bool:
        if nbytes < 0:
            raise ValueError("negative charge")
        if self.used + nbytes > self.limit:
            return False
        self.used += nbytes
        return True

    def charge(self, nbytes: int) -> None:
        if not self.try_charge(nbytes):
            raise fail(ENOMEM, f"memory charge of {nbytes} bytes over the limit ({self.used}/{self.limit} used)")

    def uncharge(self, nbytes: int) -> None:
        self.used = max(0, self.used - nbytes)


class UAttr:
    """The caller's ``union bpf_attr``: the kernel's zero-padded copy, and the user buffer for write-back.

    ``raw`` is what ``copy_from_bpfptr`` leaves in the kernel's ``attr``;
    ``put(offset, data)`` is ``put_user``/``copy_to_user`` into ``uattr``.
    """

    def __init__(self, buf: Buffer) -> None:
        mv = memoryview(buf)
        mv = mv.cast("B") if (mv.format != "B" or mv.ndim != 1) else mv
        self.size = mv.nbytes
        self._user: memoryview | None = None if mv.readonly else mv
        if self.size > PAGE_SIZE:
            raise fail(E2BIG, "attr larger than a page")
        if self.size > BPF_ATTR_UNION_SIZE and any(mv[BPF_ATTR_UNION_SIZE:]):
            raise fail(E2BIG, "non-zero bytes past union bpf_attr")
        n = min(self.size, BPF_ATTR_UNION_SIZE)
        self.raw = bytearray(BPF_ATTR_UNION_SIZE)
        self.raw[:n] = mv[:n]

    def view(self, cls: type[ctypes.Structure]) -> Any:
        """The command's struct, read from the kernel copy."""
        return cls.from_buffer_copy(bytes(self.raw[:ctypes.sizeof(cls)]))

    def check_unused(self, end: int) -> None:
        """``CHECK_ATTR(CMD)``: bytes past the command's last field must be zero, else EINVAL."""
        if any(self.raw[end:]):
            raise fail(EINVAL, f"non-zero attr bytes past offset {end}")

    def put(self, offset: int, data: bytes) -> None:
        """Write back into the caller's attr (silently dropped where the caller's buffer ends)."""
        self.raw[offset:offset + len(data)] = data
        if self._user is not None and offset + len(data) <= self.size:
            self._user[offset:offset + len(data)] = data

    def put_u32(self, offset: int, value: int) -> None:
        self.put(offset, (value & 0xFFFFFFFF).to_bytes(4, "little"))


Handler = Callable[["SimKernel", UAttr], int]


class SimKernel:
    """The simulated Linux kernel: ``bpf()``, ``perf_event_open()``, ``ioctl``, ``mmap``, ``close``, files."""

    backend = "sim"

    def __init__(self, *, ncpus: int = 2, bpffs_root: str | os.PathLike[str] | None = None,
                 memlock_limit: int | None = None, privileged: bool = True, seed: int = 0) -> None:
        if ncpus < 1:
            raise ValueError("ncpus must be at least 1")
        self.ncpus = ncpus
        self.seed = seed
        self.privileged = privileged
        #: /proc/sys/kernel/unprivileged_bpf_disabled (2: disabled, admin may re-enable; most distros)
        self.unprivileged_bpf_disabled = 2
        #: /proc/sys/kernel/bpf_stats_enabled (BPF_ENABLE_STATS)
        self.bpf_stats_enabled = False
        #: run statistics being added up during a batch of events (``Machine.events_batch``), else None
        self.stats_batch: dict[Any, list[int]] | None = None
        self._stats_users = 0
        self.uid = os.getuid()
        self.aspace = AddressSpace()
        self.fds = FdTable()
        self.clock = Clock()
        self.memlock = Memlock(memlock_limit)
        self.map_ids = IdAllocator()
        self.prog_ids = IdAllocator()
        self.link_ids = IdAllocator()
        self.btf_ids = IdAllocator()
        self.bpffs = bpffs.BpfFs(self, bpffs_root)
        self._mmaps: dict[int, tuple[memoryview, object]] = {}

    def __repr__(self) -> str:
        return f"SimKernel(ncpus={self.ncpus}, bpffs={str(self.bpffs.root)!r})"

    # -- lazily built parts (each owned by its own module) ------------------------------------------
    @cached_property
    def vm(self) -> Any:
        """The execution engine: the interpreter, routed through the compiled tier (or the native one,
        with llvmlite) as ``TINYAYA_ENGINE`` says, "compiled" by default (docs/engines.md)."""
        from .vm import Vm
        from .vm.compiled import install

        vm = Vm(self)
        install(vm)
        return vm

    @cached_property
    def tracing(self) -> Any:
        from .tracing import Tracing

        return Tracing(self)

    @cached_property
    def machine(self) -> Any:
        from .machine import Machine

        return Machine(self)

    def process(self, comm: str = "proc", **kw: Any) -> Any:
        """A new simulated process whose ``.syscall("openat", …)`` fires the probes: ``kernel.machine.process``."""
        return self.machine.process(comm=comm, **kw)

    def ktime_get_ns(self) -> int:
        return self.clock.now_ns()

    def set_bpf_stats(self, on: bool) -> None:
        """Turn run-time statistics on or off (``bpf_stats_enabled_key``); attached programs pick it up."""
        if on == self.bpf_stats_enabled:
            return
        if not on and self.stats_batch:
            self.flush_run_stats()  # what a running batch counted while they were on
        self.bpf_stats_enabled = on
        tracing = self.__dict__.get("tracing")  # cached_property: only if already built
        if tracing is not None:
            tracing.version += 1  # the probe plans capture the runner: rebuild them

    def prog_runner(self) -> Any:
        """What attached programs run through: ``vm.run``, timed and counted while statistics are on
        (``__bpf_prog_run`` with ``bpf_stats_enabled_key``: run_cnt and run_time_ns of bpf_prog_info)."""
        run = self.vm.run
        if not self.bpf_stats_enabled:
            return run
        clock = time.perf_counter_ns
        kernel = self

        def counted(prog: Any, ctx_addr: int, cpu: int) -> int:
            t0 = clock()
            try:
                return run(prog, ctx_addr, cpu)  # type: ignore[no-any-return]
            finally:
                dt = clock() - t0
                acc = kernel.stats_batch
                if acc is not None:  # inside a batch of events: added up, written once at its end
                    a = acc.get(prog)
                    if a is None:
                        acc[prog] = [1, dt]
                    else:
                        a[0] += 1
                        a[1] += dt
                elif kernel.bpf_stats_enabled:
                    # account_run, inlined: one update of both counters (a pinned program's live in its pin file)
                    prog.add_run_stats(1, dt)

        return counted

    def flush_run_stats(self) -> None:
        """Write the run statistics a batch of events added up (``stats_batch``) to the programs (those of
        runs while statistics were on: turning them off ends the batch's counting, see set_bpf_stats)."""
        acc = self.stats_batch
        if acc:
            self.stats_batch = {}
            if self.bpf_stats_enabled:
                for prog, (n, ns) in acc.items():
                    prog.add_run_stats(n, ns)

    def account_run(self, prog: Any, count: int = 1, ns: int = 0) -> None:
        """Count program runs in its statistics, as ``__bpf_prog_run`` does only while run-time statistics
        are on (``kernel.bpf_stats_enabled``: the sysctl or a BPF_ENABLE_STATS fd). Whoever runs a
        program (PROG_TEST_RUN here, the tracing part for attached programs) calls this."""
        if self.bpf_stats_enabled:
            prog.run_cnt += count
            prog.run_time_ns += ns

    def capable(self, cap: str = "CAP_BPF") -> bool:
        """``capable()``/``bpf_token_capable()``: the simulated caller has every capability or none."""
        return self.privileged

    @property
    def bpf_capable(self) -> bool:
        return self.privileged

    # -- references -----------------------------------------------------------------------------------
    def obj_get(self, obj: object) -> None:
        """Take a kernel reference on a bpf object (``bpf_map_inc``, ``bpf_prog_inc``, ``btf_get``)."""
        self.fds.hold(obj)

    def obj_put(self, obj: object) -> None:
        self.fds.put(obj)

    # -- bpf(2) ---------------------------------------------------------------------------------------
    def bpf(self, cmd: int, attr: Buffer) -> int:
        """bpf(2). Returns the command's result (an fd or 0); failures raise OSError with Linux's errno."""
        ua = UAttr(attr)
        handler = _DISPATCH.get(int(cmd)) if isinstance(cmd, int) else None
        if handler is None:
            raise fail(EINVAL, f"unknown or unsupported bpf command {cmd}")
        return handler(self, ua)

    # -- other syscalls -------------------------------------------------------------------------------
    def perf_event_open(self, attr: Buffer, pid: int, cpu: int, group_fd: int, flags: int) -> int:
        try:
            tracing = self.tracing
        except ImportError:
            raise fail(ENOSYS, "perf_event_open: the tracing part is not available")
        return int(tracing.perf_event_open(attr, pid, cpu, group_fd, flags))

    def ioctl(self, fd: int, request: int, arg: int = 0) -> int:
        f = self.fds.file(fd)
        fn = getattr(f.obj, "ioctl", None)
        if fn is None:
            raise fail(ENOTTY, f"fd {fd} has no ioctls")
        return int(fn(request, arg))

    def mmap(self, fd: int, length: int, prot: int, flags: int, offset: int = 0) -> memoryview:
        f = self.fds.file(fd)
        fn = getattr(f.obj, "mmap", None)
        if fn is None:
            raise fail(ENODEV, f"fd {fd} cannot be mmap'd")
        if (prot & _mmap.PROT_WRITE) and (flags & _mmap.MAP_SHARED) and not (f.mode & FMODE_WRITE):
            raise fail(EACCES, "writable shared mapping of a read-only fd")
        mem = fn(length, prot, flags, offset)
        self._mmaps[id(mem)] = (mem, f.obj)
        self.fds.hold(f.obj)  # a mapping keeps its object alive, as vma->vm_file does
        return mem  # type: ignore[no-any-return]

    def munmap(self, mem: memoryview) -> None:
        entry = self._mmaps.pop(id(mem), None)
        if entry is None:
            raise fail(EINVAL, "munmap of memory that was not mapped here")
        _, obj = entry
        fn = getattr(obj, "munmap", None)
        if fn is not None:
            fn(mem)
        self.fds.put(obj)

    def close(self, fd: int) -> None:
        self.fds.close(fd)

    def read_file(self, path: str) -> bytes:
        """sysfs/procfs basics from the simulated machine; tracefs, kallsyms and the rest from tracing."""
        cpus = "0" if self.ncpus == 1 else f"0-{self.ncpus - 1}"
        fixed = {
            "/sys/devices/system/cpu/possible": cpus,
            "/sys/devices/system/cpu/online": cpus,
            "/sys/devices/system/cpu/present": cpus,
            "/proc/sys/kernel/unprivileged_bpf_disabled": str(self.unprivileged_bpf_disabled),
            "/proc/sys/kernel/bpf_stats_enabled": str(int(self.bpf_stats_enabled)),
            "/proc/sys/net/core/bpf_jit_enable": "1",
            "/proc/sys/kernel/perf_event_paranoid": "2",
        }
        if path in fixed:
            return (fixed[path] + "\n").encode()
        try:
            tracing = self.tracing
        except ImportError:
            raise fail(ENOENT, path)
        return bytes(tracing.read_file(path))

    # -- object lookup used by the command handlers ------------------------------------------------
    def bpffs_path(self, path: str | bytes) -> Path:
        return self.bpffs.resolve(path)

    def shutdown(self) -> None:
        """Close every fd (what process exit does)."""
        for mem, _obj in list(self._mmaps.values()):
            try:
                self.munmap(mem)
            except OSError:
                pass
        self.fds.close_all()


_DISPATCH: dict[int, Handler] = {
    BpfCmd.BPF_MAP_CREATE: mapcmds.map_create,
    BpfCmd.BPF_MAP_LOOKUP_ELEM: mapcmds.map_lookup_elem,
    BpfCmd.BPF_MAP_UPDATE_ELEM: mapcmds.map_update_elem,
    BpfCmd.BPF_MAP_DELETE_ELEM: mapcmds.map_delete_elem,
    BpfCmd.BPF_MAP_GET_NEXT_KEY: mapcmds.map_get_next_key,
    BpfCmd.BPF_MAP_LOOKUP_AND_DELETE_ELEM: mapcmds.map_lookup_and_delete_elem,
    BpfCmd.BPF_MAP_FREEZE: mapcmds.map_freeze,
    BpfCmd.BPF_MAP_LOOKUP_BATCH: batchcmds.map_lookup_batch,
    BpfCmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH: batchcmds.map_lookup_and_delete_batch,
    BpfCmd.BPF_MAP_UPDATE_BATCH: batchcmds.map_update_batch,
    BpfCmd.BPF_MAP_DELETE_BATCH: batchcmds.map_delete_batch,
    BpfCmd.BPF_MAP_GET_NEXT_ID: mapcmds.map_get_next_id,
    BpfCmd.BPF_MAP_GET_FD_BY_ID: mapcmds.map_get_fd_by_id,
    BpfCmd.BPF_PROG_LOAD: prog.prog_load,
    BpfCmd.BPF_PROG_TEST_RUN: progcmds.prog_test_run,
    BpfCmd.BPF_PROG_GET_NEXT_ID: progcmds.prog_get_next_id,
    BpfCmd.BPF_PROG_GET_FD_BY_ID: progcmds.prog_get_fd_by_id,
    BpfCmd.BPF_OBJ_GET_INFO_BY_FD: mapcmds.obj_get_info_by_fd,
    BpfCmd.BPF_OBJ_PIN: bpffs.obj_pin,
    BpfCmd.BPF_OBJ_GET: bpffs.obj_get,
    BpfCmd.BPF_BTF_LOAD: btf.btf_load,
    BpfCmd.BPF_BTF_GET_NEXT_ID: btf.btf_get_next_id,
    BpfCmd.BPF_BTF_GET_FD_BY_ID: btf.btf_get_fd_by_id,
    BpfCmd.BPF_LINK_CREATE: link.link_create,
    BpfCmd.BPF_LINK_DETACH: link.link_detach,
    BpfCmd.BPF_LINK_GET_NEXT_ID: link.link_get_next_id,
    BpfCmd.BPF_LINK_GET_FD_BY_ID: link.link_get_fd_by_id,
    BpfCmd.BPF_RAW_TRACEPOINT_OPEN: link.raw_tracepoint_open,
    BpfCmd.BPF_PROG_DETACH: link.prog_detach,
    BpfCmd.BPF_PROG_QUERY: link.prog_query,
    BpfCmd.BPF_TASK_FD_QUERY: link.task_fd_query,
    BpfCmd.BPF_ENABLE_STATS: progcmds.enable_stats,
    BpfCmd.BPF_PROG_BIND_MAP: progcmds.prog_bind_map,
}

