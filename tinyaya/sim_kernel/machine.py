"""The simulated machine: CPUs, processes and threads, and the syscalls they issue.

``Machine(kernel)`` (``kernel.machine``) owns

- one context region per CPU (``RegionKind.CTX``, reused for every event: the
  ``pt_regs`` of a kprobe or the record of a tracepoint is packed into it, and
  the attached programs run on it);
- processes (``Process``: tgid, comm, uid/gid, cwd, user memory as a
  ``RegionKind.USER`` region, so syscall arguments such as paths live at user
  addresses) and their threads (``Task``: pid, a ``task_struct`` region at
  ``task_addr`` laid out at Linux 6.18's offsets for pid, tgid, comm, cred…,
  and a kernel stack whose top holds the syscall's user ``pt_regs``);
- the current task of each CPU (``current_task(cpu)``, a default ``tinyaya``
  process when no syscall is running, e.g. during PROG_TEST_RUN).

``machine.process(comm="sh").syscall("openat", AT_FDCWD, "/etc/passwd", 0)``
issues a syscall: the probes of its path fire in Linux's order
(``tracing/syscall_path.py``), with a plausible return value. Workloads and
strace replays (``tinyaya.sim_kernel.workloads``) drive the same entry points
and advance ``kernel.clock``.
"""
from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from typing import Any

from .errors import EINVAL, fail
from .memory import Region, RegionKind
from .tracing.pt_regs import EFLAGS_IF, PT_REGS_SIZE, PT_REGS_STRUCT, USER_CS, USER_SS
from .tracing.syscall_path import M64, build_plans
from .tracing.syscalls import BY_NAME, BY_NR, NR_syscalls

__all__ = ["Machine", "Process", "Task", "UnknownSyscall", "TASK_STRUCT", "CTX_REGION_SIZE"]

#: offsets in struct task_struct / struct cred of Linux 6.18 x86-64 (from /sys/kernel/btf/vmlinux)
TASK_STRUCT = {"__state": 24, "stack": 32, "flags": 44, "mm": 1136, "exit_code": 1164, "pid": 1264, "tgid": 1268,
               "real_parent": 1280, "parent": 1288, "group_leader": 1328, "start_time": 1552, "real_cred": 1728,
               "cred": 1736, "comm": 1752}
TASK_STRUCT_SIZE = 3264
CRED = {"uid": 8, "gid": 12, "suid": 16, "sgid": 20, "euid": 24, "egid": 28, "fsuid": 32, "fsgid": 36}
_CRED_OFF = 3328
_SCRATCH_OFF = 3584  # struct file, loff_t, open_how, struct filename, kernel_clone_args, sock, timespec
_NAME_OFF = 4096  # kernel copy of a path (PATH_MAX)
_STACK_OFF = 8192
THREAD_SIZE = 16384
_TASK_REGION = _STACK_OFF + THREAD_SIZE
CTX_REGION_SIZE = 4096
USER_REGION_SIZE = 64 * 1024
_USER_ARENA = 4096
_USER_STACK = USER_REGION_SIZE - 4096
USER_IP = 0x7F3A_1C2B_4D5E  # where a libc `syscall` instruction would be
_ENOSYS = -38
_ENOSYS_U64 = _ENOSYS & M64
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_ENTRY_REGS = struct.Struct("<9Q")
CLONE_THREAD = 0x10000
_FD_RETURNING = frozenset({"open", "openat", "openat2", "creat", "socket", "dup", "accept", "accept4",
                           "epoll_create", "epoll_create1", "eventfd", "eventfd2", "memfd_create", "timerfd_create",
                           "signalfd4", "inotify_init1", "pidfd_open", "fanotify_init", "userfaultfd"})
_COUNT_RETURNING = frozenset({"read", "write", "pread64", "pwrite64", "recvfrom", "sendto", "readv", "writev"})
_FORKS = frozenset({"clone", "clone3", "fork", "vfork"})
_EXECS = frozenset({"execve", "execveat"})
_EXITS = frozenset({"exit", "exit_group"})
_SPECIAL_NR = frozenset(BY_NAME[n].nr for n in _FORKS | _EXECS | _EXITS)


class UnknownSyscall(ValueError):
    """A syscall name that x86-64 Linux does not have."""


class Task:
    """A thread: ``pid`` (tid) in thread group ``tgid``, with its ``task_struct`` region."""

    def __init__(self, machine: Machine, process: Process, pid: int, cpu: int) -> None:
        self.machine = machine
        self.process = process
        self.pid = pid
        self.tgid = process.tgid
        self.cpu = cpu
        self.uid = process.uid
        self.gid = process.gid
        self.comm = process.comm
        self.alive = True
        self.region: Region = machine.aspace.add(bytearray(_TASK_REGION), RegionKind.KERNEL,
                                                 f"task_struct:{pid}", owner=self)
        self.buf = self.region.buf
        base = self.region.base
        self.task_addr = base
        self.regs_off = _STACK_OFF + THREAD_SIZE - PT_REGS_SIZE
        #: task_pt_regs(task): the user registers saved at syscall entry
        self.regs_addr = base + self.regs_off
        self.kstack_sp = self.regs_addr - 0x100
        s = base + _SCRATCH_OFF
        self.k_file, self.k_pos, self.k_how, self.k_filename = s, s + 256, s + 264, s + 288
        self.k_path, self.k_kstat, self.k_clone_args, self.k_sock = s + 304, s + 320, s + 448, s + 320
        self.k_timeout = s + 504
        self.k_child = 0
        self.cur_nr = 0
        self.cur_ret = 0
        self._write_task_struct()
        PT_REGS_STRUCT.pack_into(self.buf, self.regs_off, 0, 0, 0, 0, 0, 0, EFLAGS_IF, 0, 0, 0, _ENOSYS & M64,
                                 USER_IP, 0, 0, 0, 0, USER_IP, USER_CS, EFLAGS_IF, process.user_sp, USER_SS)

    @property
    def comm_str(self) -> str:
        return self.comm

    def _write_task_struct(self) -> None:
        b, base = self.buf, self.task_addr
        leader = self.process.threads[0] if self.process.threads else self
        parent = self.machine.tasks.get(self.process.ppid)
        _U64.pack_into(b, TASK_STRUCT["stack"], base + _STACK_OFF)
        struct.pack_into("<ii", b, TASK_STRUCT["pid"], self.pid, self.tgid)
        for f in ("real_parent", "parent"):
            _U64.pack_into(b, TASK_STRUCT[f], parent.task_addr if parent is not None else base)
        _U64.pack_into(b, TASK_STRUCT["group_leader"], leader.task_addr)
        _U64.pack_into(b, TASK_STRUCT["start_time"], self.machine.clock.now_ns())
        _U64.pack_into(b, TASK_STRUCT["real_cred"], base + _CRED_OFF)
        _U64.pack_into(b, TASK_STRUCT["cred"], base + _CRED_OFF)
        self.write_creds()
        self.write_comm()
        # struct filename { const char *name; const char __user *uptr; }: name points at the kernel copy
        _U64.pack_into(b, _SCRATCH_OFF + 288, base + _NAME_OFF)

    def write_creds(self) -> None:
        for f in ("uid", "suid", "euid", "fsuid"):
            _U32.pack_into(self.buf, _CRED_OFF + CRED[f], self.uid & 0xFFFFFFFF)
        for f in ("gid", "sgid", "egid", "fsgid"):
            _U32.pack_into(self.buf, _CRED_OFF + CRED[f], self.gid & 0xFFFFFFFF)

    def write_comm(self) -> None:
        off = TASK_STRUCT["comm"]
        self.buf[off:off + 16] = self.comm.encode()[:15].ljust(16, b"\0")

    def set_kernel_name(self, name: bytes, uptr: int) -> None:
        """The kernel's copy of a path argument (``getname``), behind ``struct filename``."""
        n = min(len(name), 4095)
        self.buf[_NAME_OFF:_NAME_OFF + n + 1] = name[:n] + b"\0"
        _U64.pack_into(self.buf, _SCRATCH_OFF + 296, uptr)

    def __repr__(self) -> str:
        return f"<Task {self.comm}[{self.pid}] tgid={self.tgid} cpu={self.cpu}>"


class Process:
    """A thread group: its credentials, cwd, user memory and threads."""

    def __init__(self, machine: Machine, tgid: int, comm: str, uid: int, gid: int, cwd: str, cpu: int,
                 ppid: int) -> None:
        self.machine = machine
        self.tgid = tgid
        self.comm = comm[:15]
        self.uid = uid
        self.gid = gid
        self.cwd = cwd
        self.ppid = ppid
        self.threads: list[Task] = []
        self.user: Region = machine.aspace.add(bytearray(USER_REGION_SIZE), RegionKind.USER,
                                               f"user:{comm}[{tgid}]", owner=self)
        self._arena = _USER_ARENA
        self._strings: dict[bytes, int] = {}
        #: bumped each time the string arena wraps (addresses handed out before may now hold other data)
        self.string_generation = 0
        #: a replayed log's argument texts -> (value, string_generation), so repeated paths parse once
        self.arg_cache: dict[str, tuple[int, int]] = {}
        self.next_fd = 3
        self.next_mmap = 0x7F3A_0000_0000
        self.alive = True
        self.threads.append(Task(machine, self, tgid, cpu))

    @property
    def leader(self) -> Task:
        return self.threads[0]

    @property
    def pid(self) -> int:
        return self.tgid

    def __repr__(self) -> str:
        return f"<Process {self.comm}[{self.tgid}] uid={self.uid} threads={len(self.threads)}>"

    # -- user memory ------------------------------------------------------------------------------
    def alloc(self, data: bytes) -> int:
        """Copy ``data`` into this process's user memory; returns its user address."""
        n = (len(data) + 8) & ~7
        if n > _USER_STACK - _USER_ARENA:
            data = data[:_USER_STACK - _USER_ARENA - 16]
            n = (len(data) + 8) & ~7
        if self._arena + n > _USER_STACK:
            self._arena = _USER_ARENA  # the arena wraps: old strings may be overwritten, as a reused buffer
            self._strings.clear()
            self.string_generation += 1
        off = self._arena
        self.user.buf[off:off + len(data) + 1] = data + b"\0"
        self._arena += n
        return self.user.base + off

    def string(self, s: str | bytes) -> int:
        """The user address of a NUL-terminated string (reused while the arena has room)."""
        b = s.encode() if isinstance(s, str) else bytes(s)
        addr = self._strings.get(b)
        if addr is None:
            addr = self._strings[b] = self.alloc(b)
        return addr

    @property
    def scratch(self) -> int:
        """A 2 KiB buffer in user memory (what a workload passes for read buffers and structs)."""
        return self.user.base + 2048

    @property
    def user_sp(self) -> int:
        return self.user.base + _USER_STACK + 2048

    # -- threads and syscalls -----------------------------------------------------------------------
    def thread(self, cpu: int | None = None, tid: int | None = None) -> Task:
        """A new thread in this process (``clone(CLONE_THREAD)`` without the syscall)."""
        m = self.machine
        t = Task(m, self, m.alloc_pid(tid), self.leader.cpu if cpu is None else cpu % m.ncpus)
        self.threads.append(t)
        m.tasks[t.pid] = t
        return t

    def syscall(self, name: str | int, *args: int | str | bytes | None, ret: int | None = None,
                thread: Task | None = None, duration_ns: int = 1000) -> int:
        """Issue a syscall by name (or number) with integer or string arguments; returns its result.

        Strings and bytes are copied into user memory and passed by address;
        ``ret`` forces the return value (otherwise a plausible one is made up).
        """
        nr = self.machine.syscall_nr(name)
        if len(args) > 6:
            raise fail(EINVAL, f"{name}: a syscall has at most 6 arguments")
        vals = [self._arg(a) for a in args] + [0] * (6 - len(args))
        task = thread or self.leader
        self.machine.clock.advance(duration_ns)
        return self.machine.syscall(task, nr, (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]), ret)

    def _arg(self, a: int | str | bytes | None) -> int:
        if a is None:
            return 0
        if isinstance(a, (str, bytes, bytearray)):
            return self.string(a)
        return int(a) & M64


class Machine:
    """CPUs, processes and the syscall entry points of one simulated kernel."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.aspace = kernel.aspace
        self.clock = kernel.clock
        self.ncpus = int(getattr(kernel, "ncpus", 1))
        self.tracing = kernel.tracing
        self.ctx_regions = [self.aspace.add(bytearray(CTX_REGION_SIZE), RegionKind.CTX, f"ctx:cpu{c}")
                            for c in range(self.ncpus)]
        self.ctx_bufs = [r.buf for r in self.ctx_regions]
        self.ctx_addrs = [r.base for r in self.ctx_regions]
        #: the ip a kprobe program sees, per CPU (bpf_get_func_ip, PERF_SAMPLE_IP)
        self.current_ips = [0] * self.ncpus
        self.current: list[Task | None] = [None] * self.ncpus
        self.processes: dict[int, Process] = {}
        self.tasks: dict[int, Task] = {}
        self._next_pid = 1000
        self._next_cpu = 0
        self._plan_version = -1
        self._enters: list[Any] = []
        self._exits: list[Any] = []
        #: syscalls issued, by number
        self.syscall_counts = [0] * (NR_syscalls + 1)
        #: pid 1, the parent of every process the workloads start (task->real_parent points at it)
        self.init_process = self.process(comm="systemd", uid=0, gid=0, cpu=0, pid=1, ppid=0)
        #: the process that stands for tinyaya itself (PROG_TEST_RUN's current); a low pid, clear of replayed logs
        self.default_process = self.process(comm="tinyaya", uid=0, gid=0, cpu=0, pid=100)

    # -- processes ----------------------------------------------------------------------------------
    def alloc_pid(self, want: int | None = None) -> int:
        if want is not None and want > 0 and want not in self.tasks:
            self._next_pid = max(self._next_pid, want + 1)
            return want
        while self._next_pid in self.tasks:
            self._next_pid += 1
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def process(self, comm: str = "proc", uid: int = 1000, gid: int | None = None, cpu: int | None = None,
                cwd: str = "/", pid: int | None = None, ppid: int = 1) -> Process:
        """A new process (one thread) on ``cpu`` (round-robin if None)."""
        if cpu is None:
            cpu = self._next_cpu
            self._next_cpu = (self._next_cpu + 1) % self.ncpus
        if not 0 <= cpu < self.ncpus:
            raise fail(EINVAL, f"cpu {cpu}: the machine has {self.ncpus} CPUs")
        tgid = self.alloc_pid(pid)
        self.tasks[tgid] = None  # type: ignore[assignment]  # reserve while the Task is built
        p = Process(self, tgid, comm, uid, uid if gid is None else gid, cwd, cpu, ppid)
        self.processes[tgid] = p
        self.tasks[tgid] = p.leader
        return p

    def current_task(self, cpu: int) -> Task:
        """The task running on ``cpu``: the one in a syscall, else the default ``tinyaya`` process."""
        t = self.current[cpu] if 0 <= cpu < self.ncpus else None
        return t if t is not None else self.default_process.leader

    def current_ip(self, cpu: int) -> int:
        return self.current_ips[cpu] if 0 <= cpu < self.ncpus else 0

    @staticmethod
    def syscall_nr(name: str | int) -> int:
        if isinstance(name, int):
            return name
        sc = BY_NAME.get(name)
        if sc is None:
            raise UnknownSyscall(f"no x86-64 syscall named {name!r}")
        return sc.nr

    # -- the event path -------------------------------------------------------------------------------
    def shared_storages(self) -> list[Any]:
        """The shared (pinned) storages of the maps the attached programs use."""
        out: list[Any] = []
        seen: set[int] = set()
        for prog in list(self.tracing.attached):
            for m in getattr(prog, "used_maps", ()):
                st = getattr(m, "storage", None)
                if st is not None and getattr(st, "shared", False) and id(st) not in seen:
                    seen.add(id(st))
                    out.append(st)
        return out

    @contextlib.contextmanager
    def events_batch(self) -> Iterator[None]:
        """A batch of events (one workload step): the writer locks of the shared (pinned) maps the
        attached programs use are taken once for the whole batch instead of once per update, and run
        statistics are added up and written once at its end. Readers in other processes are not held
        up (they read through the seqlock); a writer in another process waits at most one batch."""
        kernel = self.kernel
        if kernel.stats_batch is not None:  # nested: the outer batch holds the locks and the statistics
            yield
            return
        locked: list[Any] = []
        kernel.stats_batch = {}
        try:
            for st in self.shared_storages():
                st.lock()
                locked.append(st)
            yield
        finally:
            try:
                kernel.flush_run_stats()
            finally:
                kernel.stats_batch = None
                for st in reversed(locked):
                    st.unlock()

    def _replan(self) -> None:
        self._enters, self._exits = build_plans(self)
        self._plan_version = self.tracing.version

    def syscall(self, task: Task, nr: int, args: tuple[int, ...], ret: int | None = None) -> int:
        """One whole syscall of ``task``: entry probes, its effects, exit probes. ``args`` are six u64."""
        if ret is None:
            ret = self.default_ret(task, nr, args)
        if nr in _SPECIAL_NR:
            return self._special(task, nr, args, ret)
        self.syscall_enter(task, nr, args)
        self.syscall_exit(task, nr, args, ret)
        return ret

    def plans(self) -> tuple[list[Any], list[Any]]:
        """The entry and exit steps per syscall number (index ``NR_syscalls``: an unknown number), current."""
        if self._plan_version != self.tracing.version:
            self._replan()
        return self._enters, self._exits

    def syscall_enter(self, task: Task, nr: int, args: tuple[int, ...]) -> None:
        """The entry half (for a replayed ``<unfinished ...>`` line)."""
        if self._plan_version != self.tracing.version:
            self._replan()
        idx = nr if 0 <= nr < NR_syscalls else NR_syscalls
        self.syscall_counts[idx] += 1
        steps = self._enters[idx]
        if steps is not None:
            self.fire_enter(task, nr, args, steps)

    def fire_enter(self, task: Task, nr: int, args: tuple[int, ...], steps: list[Any]) -> None:
        """Save the user registers (``pt_regs`` at the top of the kernel stack) and run the entry steps."""
        cpu = task.cpu
        self.current[cpu] = task
        task.cur_nr = nr
        # r10 r9 r8 ax cx dx si di orig_ax; the rest was written when the task was created
        _ENTRY_REGS.pack_into(task.buf, task.regs_off + 56, args[3], args[5], args[4], _ENOSYS_U64, USER_IP,
                              args[2], args[1], args[0], nr)
        for step in steps:
            step(task, cpu, nr, args, 0)
        self.current[cpu] = None

    def syscall_exit(self, task: Task, nr: int, args: tuple[int, ...], ret: int) -> None:
        """The exit half (for a replayed ``<... resumed>`` line)."""
        if self._plan_version != self.tracing.version:
            self._replan()
        steps = self._exits[nr if 0 <= nr < NR_syscalls else NR_syscalls]
        if steps is not None:
            self.fire_exit(task, nr, args, ret, steps)

    def fire_exit(self, task: Task, nr: int, args: tuple[int, ...], ret: int, steps: list[Any]) -> None:
        cpu = task.cpu
        self.current[cpu] = task
        task.cur_nr = nr
        task.cur_ret = ret
        _U64.pack_into(task.buf, task.regs_off + 80, ret & M64)
        for step in steps:
            step(task, cpu, nr, args, ret)
        self.current[cpu] = None

    def default_ret(self, task: Task, nr: int, args: tuple[int, ...]) -> int:
        """A plausible return value when the caller gives none."""
        sc = BY_NR.get(nr)
        if sc is None:
            return -38  # ENOSYS
        name, p = sc.name, task.process
        if name in _FD_RETURNING:
            fd = p.next_fd
            p.next_fd += 1
            return fd
        if name in _COUNT_RETURNING:
            return int(args[2] & 0x7FFFFFFF)
        if name == "getpid":
            return task.tgid
        if name == "gettid":
            return task.pid
        if name == "getppid":
            return p.ppid
        if name in ("getuid", "geteuid"):
            return task.uid
        if name in ("getgid", "getegid"):
            return task.gid
        if name == "mmap":
            addr = p.next_mmap
            p.next_mmap += (args[1] + 4095) & ~4095
            return addr
        if name in _FORKS:
            return self.alloc_pid()
        return 0

    # -- syscalls with effects on the machine: fork, exec, exit ------------------------------------------
    def _special(self, task: Task, nr: int, args: tuple[int, ...], ret: int) -> int:
        from .tracing.sched import fire_exec, fire_exit, fire_fork

        name = BY_NR[nr].name
        if name in _FORKS:
            child = None
            if ret > 0:
                flags = args[0] if name == "clone" else 0
                if name == "clone3":
                    flags = self._read_user_u64(args[0])
                child = self.fork(task, ret, thread=bool(flags & CLONE_THREAD))
                task.k_child = child.task_addr
            self.syscall_enter(task, nr, args)
            if child is not None:
                fire_fork(self, task, child)
            self.syscall_exit(task, nr, args, ret)
            return ret
        if name in _EXECS:
            path_addr = args[0] if name == "execve" else args[1]
            path = self._read_user_str(path_addr)
            task.set_kernel_name(path, path_addr)
            self.syscall_enter(task, nr, args)
            if ret == 0:
                self.exec(task, path)
                fire_exec(self, task, path)
            self.syscall_exit(task, nr, args, ret)
            return ret
        # exit, exit_group: no return, so no exit probes
        self.syscall_enter(task, nr, args)
        group = name == "exit_group"
        victims = [t for t in task.process.threads if t.alive] if group else [task]
        for t in victims:
            fire_exit(self, t, group_dead=group or len(task.process.threads) == 1)
            t.alive = False
        if all(not t.alive for t in task.process.threads):
            self.reap(task.process)
        return 0

    def reap(self, process: Process) -> None:
        """Forget a process that exited: its pids and its memory go (``release_task``)."""
        if process is self.default_process or process is self.init_process:
            return
        process.alive = False
        for t in process.threads:
            t.alive = False
            if self.tasks.get(t.pid) is t:
                del self.tasks[t.pid]
            self.aspace.remove(t.region)
        if self.processes.get(process.tgid) is process:
            del self.processes[process.tgid]
        self.aspace.remove(process.user)

    def fork(self, parent: Task, child_pid: int, thread: bool = False) -> Task:
        """Create the child of a successful fork/clone (a thread of the same process with CLONE_THREAD)."""
        existing = self.tasks.get(child_pid)
        if existing is not None:
            return existing  # a replayed log showed the child before the parent's clone returned
        if thread:
            return parent.process.thread(tid=child_pid)
        p = parent.process
        child = self.process(comm=p.comm, uid=p.uid, gid=p.gid, cwd=p.cwd, pid=child_pid, ppid=p.tgid,
                             cpu=child_pid % self.ncpus)
        return child.leader

    def exec(self, task: Task, path: bytes) -> None:
        """A successful execve: the process takes the file's base name as its comm."""
        comm = os.path.basename(path.decode(errors="replace")) or "exe"
        p = task.process
        p.comm = comm[:15]
        for t in p.threads:
            t.comm = p.comm
            t.write_comm()

    def _read_user_str(self, addr: int) -> bytes:
        try:
            return self.aspace.read_cstr(addr, 4096)
        except Exception:
            return b""

    def _read_user_u64(self, addr: int) -> int:
        try:
            return int(_U64.unpack(self.aspace.read(addr, 8))[0])
        except Exception:
            return 0

    # -- workloads ----------------------------------------------------------------------------------------
    def workload(self, spec: Any = "default", seed: int = 0) -> Any:
        """A runner of a built-in workload (by name), a ``WorkloadSpec`` or a workload TOML file."""
        from .workloads import start_workload

        return start_workload(self, spec, seed)

    def replay(self, source: Any) -> Any:
        """A runner that replays an ``strace -f`` log (a path, or the text)."""
        from .workloads.strace import StraceReplay

        return StraceReplay(self, source)
