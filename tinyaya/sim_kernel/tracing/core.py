"""``Tracing``: the simulated kernel's tracing subsystem (``kernel.tracing``).

It owns what kernel/events/core.c, kernel/trace/trace_kprobe.c,
kernel/trace/trace_event_perf.c and kernel/trace/bpf_trace.c do for BPF:

- ``perf_event_open`` for the software BPF_OUTPUT event, tracepoints
  (``PERF_TYPE_TRACEPOINT``, config = tracepoint id) and the kprobe PMU
  (dynamic type from ``/sys/bus/event_source/devices/kprobe/type``, config
  bit 0 = retprobe, config1 = user pointer to the function name, config2 =
  offset, or config1 = 0 and config2 = an address);
- ``attach``/detach of programs to those events (PERF_EVENT_IOC_SET_BPF and
  perf links), and raw tracepoints; several programs on one event run in
  attach order (``bpf_prog_array``), at most 64 (``BPF_TRACE_MAX_PROGS``);
- running the attached programs through ``kernel.vm`` (a ``BpfFault`` is
  counted on the program and logged to trace_pipe, the event goes on);
- the files of tracefs, sysfs and procfs that user space reads to find
  those events, and trace_pipe with ``trace_printk``.

The machine (``kernel.machine``) decides when events fire; it reads the
attached-program lists (``kprobes``, ``Tracepoint.progs``, ``raw_tracepoints``)
and rebuilds its per-syscall plan when ``version`` changes.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from ...uapi._enums import BpfProgType
from ...uapi.perf_event import (
    ATTR_FLAG_DISABLED,
    PAGE_SIZE,
    PERF_ATTR_SIZE_VER0,
    PERF_ATTR_SIZE_VER8,
    PERF_FLAG_FD_CLOEXEC,
    PERF_FLAG_FD_NO_GROUP,
    PERF_FLAG_FD_OUTPUT,
    PERF_FLAG_PID_CGROUP,
    PerfEventAttr,
    PerfSwIds,
    PerfTypeId,
)
from ..errors import E2BIG, EBADF, EEXIST, EFAULT, EINVAL, ENODEV, ENOENT, fail
from ..vm.fault import BpfFault
from .kallsyms import Kallsyms, KernelFunction
from .perf_event import SUPPORTED_SAMPLE_TYPE, PerfEvent, PerfEventKind
from .sysfs import read_tracing_file
from .trace_pipe import TracePipe
from .tracepoints import RAW_TP_ARGS, Tracepoint, build_tracepoints
from .uprobes import UprobeSite, resolve_offset, syscall_of

__all__ = ["Tracing", "KprobeSite", "RawTracepointLink", "KPROBE_PMU_TYPE", "UPROBE_PMU_TYPE",
           "BPF_TRACE_MAX_PROGS", "Attachment"]

#: the dynamic PMU types a typical x86-64 machine assigns (``perf_pmu_register`` after the fixed ones)
KPROBE_PMU_TYPE = 6
UPROBE_PMU_TYPE = 7
BPF_TRACE_MAX_PROGS = 64
KSYM_NAME_LEN = 512

#: one attached program: (prog, bpf_cookie, ip the program sees)
Attachment = tuple[Any, int, int]


class KprobeSite:
    """The kprobes on one kernel function: entry programs and return programs."""

    __slots__ = ("fn", "entry", "ret")

    def __init__(self, fn: KernelFunction) -> None:
        self.fn = fn
        self.entry: list[Attachment] = []
        self.ret: list[Attachment] = []

    @property
    def name(self) -> str:
        return self.fn.name


class RawTracepointLink:
    """The link fd of BPF_RAW_TRACEPOINT_OPEN (``struct bpf_raw_tp_link``); closing it detaches."""

    link_type = 1  # BPF_LINK_TYPE_RAW_TRACEPOINT

    def __init__(self, tp_name: str, prog: object, detach: Callable[[], None]) -> None:
        self.tp_name = tp_name
        self.prog = prog
        self._detach: Callable[[], None] | None = detach

    def release(self) -> None:
        if self._detach is not None:
            detach, self._detach = self._detach, None
            detach()


_KPROBE_PROG = {int(BpfProgType.BPF_PROG_TYPE_KPROBE)}
_TRACEPOINT_PROG = {int(BpfProgType.BPF_PROG_TYPE_TRACEPOINT)}
_PERF_EVENT_PROG = {int(BpfProgType.BPF_PROG_TYPE_PERF_EVENT)}
_RAW_TP_PROG = {int(BpfProgType.BPF_PROG_TYPE_RAW_TRACEPOINT),
                int(BpfProgType.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE),
                int(BpfProgType.BPF_PROG_TYPE_TRACING)}


class Tracing:
    """The tracing subsystem of one ``SimKernel``."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.kallsyms = Kallsyms()
        self.tracepoints: list[Tracepoint] = build_tracepoints()
        self.tracepoints_by_id: dict[int, Tracepoint] = {tp.id: tp for tp in self.tracepoints}
        self.tracepoints_by_name: dict[str, Tracepoint] = {tp.full_name: tp for tp in self.tracepoints}
        #: raw tracepoint name -> attached (prog, cookie, 0), in attach order
        self.raw_tracepoints: dict[str, list[Attachment]] = {name: [] for name in RAW_TP_ARGS}
        #: function name -> its kprobes (only functions that have or had a probe)
        self.kprobes: dict[str, KprobeSite] = {}
        #: (binary path, file offset) -> its uprobes
        self.uprobes: dict[tuple[str, int], UprobeSite] = {}
        self.trace_pipe = TracePipe()
        #: bumped on every attach/detach; the machine rebuilds its plans when it changes
        self.version = 0
        ncpus = int(getattr(kernel, "ncpus", 1))
        #: the bpf_cookie of the program running on each CPU (bpf_get_attach_cookie)
        self.cookies: list[int] = [0] * ncpus
        #: runtime faults per program
        self.fault_counts: Counter[Any] = Counter()
        self.events: dict[int, PerfEvent] = {}
        self._next_event_id = 1
        #: attached programs -> how many attachments hold each (the machine's event batches lock their maps)
        self.attached: Counter[Any] = Counter()

    # -- perf_event_open(2) ---------------------------------------------------------------------
    def perf_event_open(self, attr: Any, pid: int, cpu: int, group_fd: int, flags: int) -> int:
        """Open an event and install it in ``kernel.fds``; errnos as ``sys_perf_event_open``."""
        a = self._copy_attr(attr)
        if flags & ~(PERF_FLAG_FD_NO_GROUP | PERF_FLAG_FD_OUTPUT | PERF_FLAG_PID_CGROUP | PERF_FLAG_FD_CLOEXEC):
            raise fail(EINVAL, f"perf_event_open flags {flags:#x}")
        ncpus = len(self.cookies)
        if pid == -1 and cpu == -1:
            raise fail(EINVAL, "pid -1 needs a cpu")
        if cpu < -1 or pid < -1:
            raise fail(EINVAL, f"cpu {cpu} pid {pid}")
        if cpu >= ncpus:
            raise fail(ENODEV, f"cpu {cpu} is not online")
        if group_fd != -1:
            leader = self.kernel.fds.get(group_fd)
            if not isinstance(leader, PerfEvent):
                raise fail(EBADF, f"group_fd {group_fd} is not a perf event")
        if a.sample_type & ~SUPPORTED_SAMPLE_TYPE:
            raise fail(EINVAL, f"sample_type {a.sample_type:#x} not supported by the simulated kernel")
        enabled = not (a.flags & ATTR_FLAG_DISABLED)
        common = dict(event_id=self._next_event_id, cpu=cpu, pid=pid, enabled=enabled,
                      sample_type=int(a.sample_type), sample_period=int(a.sample_period), config=int(a.config))
        if a.type == PerfTypeId.PERF_TYPE_SOFTWARE:
            if a.config >= 12:
                raise fail(ENOENT, f"software event {a.config}")
            kind = PerfEventKind.BPF_OUTPUT if a.config == PerfSwIds.PERF_COUNT_SW_BPF_OUTPUT \
                else PerfEventKind.SOFTWARE
            ev = PerfEvent(self, kind, **common)  # type: ignore[arg-type]
        elif a.type == PerfTypeId.PERF_TYPE_TRACEPOINT:
            tp = self.tracepoints_by_id.get(int(a.config))
            if tp is None:
                raise fail(EINVAL, f"no tracepoint with id {a.config}")
            ev = PerfEvent(self, PerfEventKind.TRACEPOINT, site=tp, **common)  # type: ignore[arg-type]
        elif a.type == KPROBE_PMU_TYPE:
            ev = self._open_kprobe(a, common)
        elif a.type == UPROBE_PMU_TYPE:
            ev = self._open_uprobe(a, common)
        else:
            raise fail(ENOENT, f"no PMU of type {a.type}")
        self._next_event_id += 1
        fd = int(self.kernel.fds.install(ev))
        self.events[ev.id] = ev
        return fd

    @staticmethod
    def _copy_attr(attr: Any) -> PerfEventAttr:
        """``perf_copy_attr``: size 0 means VER0; sizes outside [VER0, PAGE_SIZE] are E2BIG; bytes past
        what we know must be zero (E2BIG)."""
        try:
            data = bytes(attr)
        except TypeError:
            raise fail(EFAULT, "perf_event_attr is not a buffer")
        if len(data) < 8:
            raise fail(EFAULT, "perf_event_attr shorter than its size field")
        size = int.from_bytes(data[4:8], "little") or PERF_ATTR_SIZE_VER0
        if size < PERF_ATTR_SIZE_VER0 or size > PAGE_SIZE:
            raise fail(E2BIG, f"perf_event_attr.size {size}")
        if len(data) < size:
            raise fail(EFAULT, f"perf_event_attr.size {size} but only {len(data)} bytes")
        if any(data[PERF_ATTR_SIZE_VER8:size]):
            raise fail(E2BIG, "non-zero bytes past the known perf_event_attr")
        known = data[:min(size, PERF_ATTR_SIZE_VER8)].ljust(PERF_ATTR_SIZE_VER8, b"\0")
        return PerfEventAttr.from_buffer_copy(known)

    @staticmethod
    def _user_string(addr: int, limit: int) -> bytes:
        from ..usermem import strncpy_from_user
        return strncpy_from_user(addr, limit)

    def _open_kprobe(self, a: PerfEventAttr, common: dict[str, Any]) -> PerfEvent:
        """``perf_kprobe_init`` + ``create_local_trace_kprobe``: by name (config1) + offset, or by address."""
        if a.config & ~1:
            raise fail(EINVAL, f"kprobe config {a.config:#x}: only bit 0 (retprobe) is defined")
        retprobe = bool(a.config & 1)
        offset = int(a.config2)
        if a.config1:
            name_b = self._user_string(int(a.config1), KSYM_NAME_LEN)
            if len(name_b) >= KSYM_NAME_LEN:
                raise fail(E2BIG, "kprobe function name too long")
            name = name_b.decode(errors="replace")
            if not name:
                raise fail(EINVAL, "empty kprobe function name")
            fn = self.kallsyms.get(name)
            if fn is None:
                raise fail(ENOENT, f"no kernel function {name!r}")
        else:
            found = self.kallsyms.lookup_addr(offset)
            if found is None:
                raise fail(ENOENT, f"no kernel function at {offset:#x}")
            fn, offset = found
        if retprobe and offset:
            raise fail(EINVAL, "a return probe must be at the function entry (offset 0)")
        if offset < 0 or offset >= fn.size:
            raise fail(EINVAL, f"offset {offset:#x} is outside {fn.name} (size {fn.size:#x})")
        site = self.kprobes.get(fn.name)
        if site is None:
            site = self.kprobes[fn.name] = KprobeSite(fn)
        kind = PerfEventKind.KRETPROBE if retprobe else PerfEventKind.KPROBE
        return PerfEvent(self, kind, site=site, offset=offset, **common)

    def _open_uprobe(self, a: PerfEventAttr, common: dict[str, Any]) -> PerfEvent:
        """``perf_uprobe_init``: config1 = path, config2 = file offset, config bit 0 = retprobe."""
        if a.config & ~((0xFFFFFFFF << 32) | 1):
            raise fail(EINVAL, f"uprobe config {a.config:#x}: only bit 0 (retprobe) and 32-63 (ref_ctr_offset)")
        if not a.config1:
            raise fail(EINVAL, "uprobe without a path")
        path = self._user_string(int(a.config1), 4096).decode(errors="surrogateescape")
        offset = int(a.config2)
        try:
            vaddr, names = resolve_offset(path, offset)
        except FileNotFoundError:
            raise fail(ENOENT, f"uprobe: no such file {path!r}")
        except ValueError as e:
            raise fail(EINVAL, f"uprobe: {e}")
        except OSError as e:
            raise fail(e.errno or ENOENT, f"uprobe on {path!r}: {e.strerror}")
        site = self.uprobes.get((path, offset))
        if site is None:
            site = self.uprobes[(path, offset)] = UprobeSite(path, offset, vaddr, names, syscall_of(names))
        kind = PerfEventKind.URETPROBE if a.config & 1 else PerfEventKind.UPROBE
        return PerfEvent(self, kind, site=site, offset=offset, **common)

    def forget(self, ev: PerfEvent) -> None:
        self.events.pop(ev.id, None)

    # -- attaching programs ---------------------------------------------------------------------
    def prog_from_fd(self, fd: int) -> Any:
        """``bpf_prog_get``: EBADF for a closed fd, EINVAL for an fd that is not a program."""
        if fd < 0:
            raise fail(EBADF, f"prog fd {fd}")
        obj = self.kernel.fds.get(fd)
        if getattr(obj, "prog_type", None) is None or hasattr(obj, "map_type"):
            raise fail(EINVAL, f"fd {fd} is not a BPF program")
        return obj

    def attach(self, perf_event: PerfEvent, prog: Any, cookie: int = 0) -> Callable[[], None]:
        """``perf_event_set_bpf_prog``: attach ``prog`` to the event; returns an idempotent detach.

        Takes its own reference on the program (``kernel.fds.hold``), dropped by detach.
        """
        if perf_event.released:
            raise fail(EBADF, "perf event is closed")
        if perf_event.prog is not None:
            raise fail(EEXIST, f"{perf_event!r} already has a program")
        ptype = int(getattr(prog, "prog_type", -1))
        kind = perf_event.kind
        lst: list[Any]
        ip = 0
        if kind in (PerfEventKind.UPROBE, PerfEventKind.URETPROBE):
            if ptype not in _KPROBE_PROG:
                raise fail(EINVAL, "a uprobe takes a BPF_PROG_TYPE_KPROBE program")
            usite = perf_event.site
            assert isinstance(usite, UprobeSite)
            lst = usite.ret if kind is PerfEventKind.URETPROBE else usite.entry
            if len(lst) >= BPF_TRACE_MAX_PROGS:
                raise fail(E2BIG, f"{BPF_TRACE_MAX_PROGS} programs already attached here")
            return self._attach_entry(perf_event, prog, lst, (prog, cookie, usite.ip, perf_event.pid))
        if kind in (PerfEventKind.KPROBE, PerfEventKind.KRETPROBE):
            if ptype not in _KPROBE_PROG:
                raise fail(EINVAL, "a kprobe takes a BPF_PROG_TYPE_KPROBE program")
            site = perf_event.site
            assert isinstance(site, KprobeSite)
            lst = site.ret if kind is PerfEventKind.KRETPROBE else site.entry
            ip = site.fn.addr + perf_event.offset
        elif kind is PerfEventKind.TRACEPOINT:
            if ptype not in _TRACEPOINT_PROG:
                raise fail(EINVAL, "a tracepoint takes a BPF_PROG_TYPE_TRACEPOINT program")
            tp = perf_event.site
            assert isinstance(tp, Tracepoint)
            max_ctx = getattr(prog, "max_ctx_offset", 0) or 0
            if max_ctx > tp.size:
                raise fail(13, f"program reads ctx up to {max_ctx}, {tp.full_name} has {tp.size} bytes")  # EACCES
            lst = tp.progs  # type: ignore[assignment]
        else:
            if ptype not in _PERF_EVENT_PROG:
                raise fail(EINVAL, "a software event takes a BPF_PROG_TYPE_PERF_EVENT program")
            lst = []  # sampling of software events is not simulated: the program never runs
        if len(lst) >= BPF_TRACE_MAX_PROGS:
            raise fail(E2BIG, f"{BPF_TRACE_MAX_PROGS} programs already attached here")
        return self._attach_entry(perf_event, prog, lst, (prog, cookie, ip))

    def _attach_entry(self, perf_event: PerfEvent, prog: Any, lst: list[Any], entry: tuple[Any, ...],
                      ) -> Callable[[], None]:
        lst.append(entry)
        self._hold(prog)
        perf_event.prog = prog
        self.version += 1
        done = False

        def detach() -> None:
            nonlocal done
            if done:
                return
            done = True
            for i, e in enumerate(lst):
                if e is entry:
                    del lst[i]
                    break
            perf_event.prog = None
            perf_event._detach = None
            self.version += 1
            self._put(prog)

        perf_event._detach = detach
        return detach

    def attach_raw_tracepoint(self, name: str, prog: Any, cookie: int = 0) -> Callable[[], None]:
        """``bpf_probe_register``: attach to a raw tracepoint by name; ENOENT if there is none."""
        lst = self.raw_tracepoints.get(name)
        if lst is None:
            raise fail(ENOENT, f"no raw tracepoint {name!r}")
        if int(getattr(prog, "prog_type", -1)) not in _RAW_TP_PROG:
            raise fail(EINVAL, "a raw tracepoint takes a BPF_PROG_TYPE_RAW_TRACEPOINT program")
        entry: Attachment = (prog, cookie, 0)
        lst.append(entry)
        self._hold(prog)
        self.version += 1
        done = False

        def detach() -> None:
            nonlocal done
            if done:
                return
            done = True
            for i, e in enumerate(lst):
                if e is entry:
                    del lst[i]
                    break
            self.version += 1
            self._put(prog)

        return detach

    def raw_tracepoint_open(self, name: str, prog: Any) -> int:
        """BPF_RAW_TRACEPOINT_OPEN: attach and install a link fd; closing it detaches."""
        detach = self.attach_raw_tracepoint(name, prog)
        return int(self.kernel.fds.install(RawTracepointLink(name, prog, detach)))

    def _hold(self, prog: Any) -> None:
        self.attached[prog] += 1
        fds = getattr(self.kernel, "fds", None)
        if fds is not None:
            fds.hold(prog)

    def _put(self, prog: Any) -> None:
        self.attached[prog] -= 1
        if self.attached[prog] <= 0:
            del self.attached[prog]
        fds = getattr(self.kernel, "fds", None)
        if fds is not None:
            fds.put(prog)

    # -- running programs -----------------------------------------------------------------------
    def run_progs(self, progs: list[Attachment], ctx_addr: int, cpu: int) -> None:
        """Run each attached program on ``ctx_addr`` (``bpf_prog_run_array``); faults are counted and logged."""
        run = self.kernel.prog_runner()
        cookies = self.cookies
        for prog, cookie, _ip in progs:
            cookies[cpu] = cookie
            try:
                run(prog, ctx_addr, cpu)
            except BpfFault as e:
                self.record_fault(prog, cpu, e)

    def record_fault(self, prog: Any, cpu: int, fault: BpfFault) -> None:
        """Count a runtime fault on the program and log it to trace_pipe."""
        self.fault_counts[prog] += 1
        try:
            prog.fault_count = getattr(prog, "fault_count", 0) + 1
        except AttributeError:
            pass
        task = self.kernel.machine.current_task(cpu)
        self.trace_pipe.write(task.comm_str, task.pid, cpu, self.kernel.clock.now_ns(), "bpf_fault", str(fault))

    # -- trace_pipe -----------------------------------------------------------------------------
    def trace_printk(self, cpu: int, task: Any, msg: bytes) -> None:
        """A ``bpf_trace_printk`` line: ``comm-pid [cpu] flags ts: bpf_trace_printk: msg``."""
        text = msg.split(b"\0", 1)[0].decode("utf-8", "replace")
        if text.endswith("\n"):
            text = text[:-1]
        comm = getattr(task, "comm_str", None) or "<idle>"
        pid = int(getattr(task, "pid", 0))
        self.trace_pipe.write(comm, pid, cpu, self.kernel.clock.now_ns(), "bpf_trace_printk", text)

    # -- files ----------------------------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        """tracefs, the perf PMUs in sysfs, and /proc/kallsyms; ENOENT for anything else."""
        return read_tracing_file(self, path)

    def close_all(self) -> None:
        """Detach everything (used when the simulated kernel shuts down)."""
        for ev in list(self.events.values()):
            ev.release()

    def ncpus(self) -> int:
        return len(self.cookies)

    def __repr__(self) -> str:
        return f"<Tracing {len(self.events)} events, version {self.version}>"

