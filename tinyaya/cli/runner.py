"""The work behind ``tinyaya load``: load, attach, pin, drive the workload, collect what to show.

Everything here goes through the Aya-shaped API (``tinyaya.programs``,
``tinyaya.maps``) and the ``Kernel`` protocol; the simulated machine is only
asked to run its workload, which is what a real machine does by itself.
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..kernel import Kernel
from .errors import bad_input, failed
from .kernels import open_kernel
from .mapfmt import Entry
from .render import counts_table, is_syscall_counter, seed_format, sorted_counts
from .state import LoadLock, LoadRecord, load_pin_dir, state_dir

WRITE_NR = 1
#: events per workload step: from STEP_MIN, adapted so that one step takes about STEP_SECONDS
STEP_MIN = 2000
STEP_MAX = 50000
STEP_SECONDS = 0.02


@dataclass
class AttachSpec:
    kind: str = "default"  # default | kprobe | kretprobe | tracepoint
    target: str = ""
    offset: int = 0

    @staticmethod
    def from_options(kprobe: str | None, kretprobe: str | None, tracepoint: str | None,
                     project: dict[str, Any]) -> AttachSpec:
        if kprobe:
            fn, _, off = kprobe.partition("+")
            try:
                return AttachSpec("kprobe", fn, int(off, 0) if off else 0)
            except ValueError:
                bad_input(f"--kprobe {kprobe!r}: the offset after '+' must be an integer")
        if kretprobe:
            return AttachSpec("kretprobe", kretprobe)
        if tracepoint:
            cat, sep, name = tracepoint.partition(":")
            if not sep:
                cat, sep, name = tracepoint.partition("/")
            if not sep or not cat or not name:
                bad_input(f"--tracepoint {tracepoint!r}: expected CATEGORY:NAME, e.g. raw_syscalls:sys_enter")
            return AttachSpec("tracepoint", f"{cat}:{name}")
        attach = project.get("attach")
        if isinstance(attach, dict):
            kind = str(attach.get("kind", "default"))
            return AttachSpec(kind, str(attach.get("target", "")), int(attach.get("offset", 0)))
        return AttachSpec()


@dataclass
class LoadOptions:
    obj: str
    attach: AttachSpec
    programs: list[str]
    workload: str | None
    replay: str | None
    events: int | None
    duration: float | None
    interval: float
    backend: str
    set_globals: dict[str, bytes | int]
    pin_dir: str | None
    verifier_log: bool
    seed: int
    map_display: dict[str, dict[str, Any]] = field(default_factory=dict)
    engine: str | None = None


class LoadSession:
    def __init__(self, opts: LoadOptions) -> None:
        self.o = opts
        self.lock = LoadLock()
        self.kernel: Kernel | None = None
        self.bpf: Any = None
        self.logger: Any = None
        self.links: list[tuple[Any, Any]] = []
        self.stats_fd: int | None = None
        self.attached: dict[str, str] = {}
        self.maps: dict[str, Any] = {}
        self.map_meta: dict[str, tuple[int, int, int]] = {}
        self.started = time.monotonic()
        self.issued = 0
        self.by_nr: Counter[int] = Counter()
        self.trace_tail: deque[str] = deque(maxlen=50)
        self._logs: deque[str] = deque(maxlen=1000)
        self.record: LoadRecord | None = None
        self.driver: Any = None
        self.workload_name = ""

    # -- setup -----------------------------------------------------------------------------------------
    def __enter__(self) -> LoadSession:
        other = self.lock.acquire()
        if other is not None:
            failed(f"another `tinyaya load` is running (pid {other}); stop it first")
        try:
            self._setup()
        except BaseException:
            self._teardown("failed")
            raise
        return self

    def _setup(self) -> None:
        from ..programs import EbpfLoader

        self.kernel = open_kernel(self.o.backend, engine=self.o.engine)
        if self.o.backend == "sim":
            # like `sysctl kernel.bpf_stats_enabled=1`: `tinyaya prog list` then shows run_cnt/run_time_ns
            from ..sys.prog import bpf_enable_stats

            self.stats_fd = bpf_enable_stats(self.kernel)
        loader = EbpfLoader(kernel=self.kernel)
        for name, value in self.o.set_globals.items():
            loader.set_global(name, value)
        if self.o.verifier_log:
            loader.verifier_log_level(1)
        self.bpf = loader.load_file(self.o.obj)
        self._init_logger()
        self._load_and_attach()
        self._pin()
        self.record = LoadRecord(
            obj=str(Path(self.o.obj).resolve()), pid=os.getpid(), backend=self.o.backend,
            programs=[{"name": n, "attach": a} for n, a in self._attached_names()],
            maps=list(self.maps), map_display=self.o.map_display,
        )
        self.driver = self._make_driver()
        self.record.workload = self.workload_name
        (state_dir() / "trace_pipe").write_text("")  # `tinyaya trace` shows this load's lines
        self.record.save()

    def _init_logger(self) -> None:
        from ..programs import EbpfLogger

        if not any(name == "AYA_LOGS" for name, _ in self.bpf.maps()):
            return
        try:
            self.logger = EbpfLogger.init(self.bpf, logger=_quiet_logger())
        except Exception as e:  # noqa: BLE001 - aya's main.rs only warns when the logger can't start
            self._logs.append(f"warning: failed to initialize eBPF logger: {e}")

    def _selected(self) -> list[tuple[str, Any]]:
        progs = list(self.bpf.programs())
        if self.o.programs:
            known = {n for n, _ in progs}
            for want in self.o.programs:
                if want not in known:
                    bad_input(f"{self.o.obj}: no program named {want!r} (programs: {', '.join(sorted(known))})")
            progs = [(n, p) for n, p in progs if n in self.o.programs]
        if not progs:
            bad_input(f"{self.o.obj}: the object has no programs")
        return progs

    def _load_and_attach(self) -> None:
        from ..programs.errors import ProgramError

        for name, _ in self._selected():
            prog = self.bpf.program_mut(name)
            try:
                prog.load()
            except ProgramError as e:
                log = getattr(e, "verifier_log", None)
                failed(f"{self.o.obj}: program {name!r}: the verifier rejected it ({e})", str(log) if log else None)
            if self.o.verifier_log and getattr(prog, "verifier_log", None):
                self._logs.append(str(prog.verifier_log))
            link = self._attach(name, prog)
            self.links.append((prog, link))

    def _attach(self, name: str, prog: Any) -> Any:
        """Attach as the options say, or to the section's own target (``kprobe/FN``, ``tracepoint/CAT/NAME``)."""
        from ..programs.probe import ProbeKind

        a = self.o.attach
        kind, target, offset = a.kind, a.target, a.offset
        cls = prog.__class__.__name__
        section = getattr(prog, "section", None)
        if kind == "default":
            kind, target, offset = self._default_target(name, cls, section)
        try:
            if kind in ("kprobe", "kretprobe"):
                if cls != "KProbe":
                    bad_input(f"program {name!r} is a {cls}, not a kprobe; it can't attach to {target}")
                prog.kind = ProbeKind.KRetProbe if kind == "kretprobe" else ProbeKind.KProbe
                link = prog.attach(target, offset)
            elif kind == "tracepoint":
                if cls != "TracePoint":
                    bad_input(f"program {name!r} is a {cls}, not a tracepoint program; it can't attach to {target}")
                cat, _, tp = target.partition(":")
                link = prog.attach(cat, tp)
            elif kind == "raw_tracepoint":
                link = prog.attach(target)
            else:
                bad_input(f"unknown attach kind {kind!r}")
        except OSError as e:
            text = str(e.strerror or e)
            if "this kernel has no" in text:  # no kprobe PMU at all (the real kernel here, for one)
                failed(f"cannot attach {kind} {target}: {text}")
            if e.errno == errno.ENOENT:
                what = "tracepoint" if kind in ("tracepoint", "raw_tracepoint") else "kernel function"
                hint = " (see `tinyaya ksyms`)" if self.o.backend == "sim" and what == "kernel function" else ""
                bad_input(f"no {what} named {target!r}{hint}")
            raise
        self.attached[name] = f"{kind}:{target}" + (f"+{offset}" if offset else "")
        return link

    def _default_target(self, name: str, cls: str, section: Any) -> tuple[str, str, int]:
        sec = getattr(section, "name", "?")
        target = getattr(section, "attach_target", None)
        if cls == "KProbe":
            if not target:
                bad_input(f"program {name!r} (section {sec!r}) names no kernel function: give --kprobe FN")
            return ("kretprobe" if getattr(section, "is_retprobe", False) else "kprobe", target,
                    int(getattr(section, "offset", 0) or 0))
        if cls == "TracePoint":
            if not target or "/" not in target:
                bad_input(f"program {name!r} (section {sec!r}) names no tracepoint: give --tracepoint CAT:NAME")
            cat, _, tp = target.partition("/")
            return "tracepoint", f"{cat}:{tp}", 0
        if cls == "RawTracePoint":
            if not target:
                bad_input(f"program {name!r} (section {sec!r}) names no raw tracepoint")
            return "raw_tracepoint", target, 0
        bad_input(f"program {name!r} is a {cls} (section {sec!r}); `tinyaya load` attaches kprobes and "
                  f"tracepoints — use `tinyaya run` to test-run it")

    def _attached_names(self) -> list[tuple[str, str]]:
        return list(self.attached.items())

    def _pin(self) -> None:
        from ..sys import bpf as sysbpf

        base = load_pin_dir()
        if self.o.backend == "sim":
            if base.exists():
                shutil.rmtree(base)
            (base / "maps").mkdir(parents=True, mode=0o700)
            (base / "progs").mkdir(parents=True, mode=0o700)
        for name, m in self.bpf.maps():
            self.maps[name] = m
            info = sysbpf.bpf_map_get_info_by_fd(self.kernel, m.fd)  # type: ignore[arg-type]
            self.map_meta[name] = (int(info.type), int(info.key_size), int(info.value_size))
            if self.o.backend == "sim":
                sysbpf.bpf_obj_pin(self.kernel, m.fd, str(base / "maps" / name))  # type: ignore[arg-type]
            if self.o.pin_dir:
                sysbpf.bpf_obj_pin(self.kernel, m.fd, str(Path(self.o.pin_dir) / name))  # type: ignore[arg-type]
        if self.o.backend == "sim":
            for prog, _ in self.links:
                sysbpf.bpf_obj_pin(self.kernel, prog.fd, str(base / "progs" / prog.name))  # type: ignore[arg-type]

    def _make_driver(self) -> Any:
        if self.o.backend != "sim":
            self.workload_name = "the real machine"
            return None
        from .workload import make_driver

        driver, self.workload_name = make_driver(self.kernel, self.o.workload, self.o.replay, self.o.seed)
        return driver

    # -- running ---------------------------------------------------------------------------------------
    def run(self, tick: Callable[[], None]) -> None:
        deadline = None if self.o.duration is None else self.started + self.o.duration
        next_tick = time.monotonic() + self.o.interval
        step = STEP_MIN
        try:
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if self.driver is not None:
                    budget = step
                    if self.o.events is not None:
                        budget = min(budget, self.o.events - self.issued)
                    if budget <= 0:
                        break
                    t0 = time.perf_counter()
                    n = self.driver.step(budget, self.by_nr)
                    self.issued += n
                    if n == 0:
                        break  # a replay or a finite workload ended
                    # about STEP_SECONDS of events per step: responsive to Ctrl-C, --duration and the live
                    # view, while the per-step work (trace_pipe, aya-log records) stays small per event
                    took = time.perf_counter() - t0
                    if took > 0:
                        step = max(STEP_MIN, min(STEP_MAX, int(n * STEP_SECONDS / took)))
                else:
                    time.sleep(min(0.05, max(0.0, next_tick - now)))
                self._collect_trace()
                if time.monotonic() >= next_tick:
                    self._save_progress()
                    tick()
                    next_tick = time.monotonic() + self.o.interval
        except KeyboardInterrupt:
            pass
        self._collect_trace()
        self._save_progress()
        tick()

    def _collect_trace(self) -> None:
        if self.kernel is None:
            return
        if self.logger is not None:
            for rec in self.logger.poll():
                level = getattr(rec.level, "name", str(rec.level)).upper()
                self._logs.append(f"[{level} {rec.target}] {rec.message}")
        try:
            data = self.kernel.read_file("/sys/kernel/tracing/trace_pipe")
        except OSError:
            return
        if not data:
            return
        lines = data.decode(errors="replace").splitlines()
        self.trace_tail.extend(lines)
        with open(state_dir() / "trace_pipe", "a") as f:
            f.write("\n".join(lines) + "\n")

    def _save_progress(self) -> None:
        if self.record is None:
            return
        self.record.syscalls_issued = self.issued
        self.record.syscalls_by_nr = {str(k): v for k, v in sorted(self.by_nr.items())}
        self.record.faults = self.faults()
        self.record.save()

    def faults(self) -> int:
        total = 0
        for prog, _ in self.links:
            total += int(getattr(prog, "fault_count", 0) or 0)
        return total

    def drain_logs(self) -> list[str]:
        out = list(self._logs)
        self._logs.clear()
        return out

    # -- what to show ----------------------------------------------------------------------------------
    def table_maps(self) -> list[str]:
        from .mapfmt import PERCPU_TYPES

        out = []
        for name, (mtype, ks, vs) in self.map_meta.items():
            disp = self.o.map_display.get(name, {})
            if disp.get("hide"):
                continue
            if mtype in (1, 2, 5, 6, 9, 10) and ks in (1, 2, 4, 8) and vs in (1, 2, 4, 8):
                out.append(name)
            elif mtype in PERCPU_TYPES and ks in (4, 8) and vs in (4, 8):
                out.append(name)
        return out

    def _entries(self, name: str) -> list[Entry]:
        from ..sys import bpf as sysbpf
        from .pins import OpenMap, iter_entries

        m = self.maps[name]
        info = sysbpf.bpf_map_get_info_by_fd(self.kernel, m.fd)  # type: ignore[arg-type]
        om = OpenMap(name, m.fd, info, load_pin_dir() / "maps" / name)
        return list(iter_entries(self.kernel, om))  # type: ignore[arg-type]

    def _rows(self, name: str) -> list[tuple[int, int]]:
        disp = self.o.map_display.get(name, {})
        return sorted_counts(self._entries(name), str(disp.get("sort", "key")), disp.get("top"))  # type: ignore[arg-type]

    def seed_lines(self, name: str) -> list[str]:
        return seed_format(name, self._rows(name))

    def rich_table(self, name: str, max_rows: int | None = None) -> Any:
        _, ks, vs = self.map_meta[name]
        return counts_table(name, self._rows(name), is_syscall_counter(name, ks, vs, self.o.map_display.get(name)),
                            max_rows)

    def status_line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.issued / elapsed
        faults = self.faults()
        progress = ""
        total = getattr(self.driver, "total_lines", None)
        if total:
            progress = f"  replay {100 * getattr(self.driver, 'pos', 0) // total}% of {total} lines"
        return (f"{Path(self.o.obj).name} [{self.o.backend}] {self.workload_name}: "
                f"{self.issued} syscalls ({rate:,.0f}/s), {faults} faults{progress}")

    def summary_lines(self) -> list[str]:
        writes = self.by_nr.get(WRITE_NR, 0)
        elapsed = time.monotonic() - self.started
        out = []
        if self.o.backend == "sim":
            out.append(f"workload {self.workload_name}: issued {self.issued} syscalls "
                       f"({writes} write, {self.issued - writes} non-write) in {elapsed:.2f}s")
        else:
            out.append(f"ran {elapsed:.2f}s on the real kernel")
        faults = self.faults()
        if faults:
            out.append(f"runtime faults: {faults} (see `tinyaya trace`)")
        if self.o.backend == "sim":
            out.append("maps are pinned for other shells: tinyaya maps dump [NAME] [--json]")
        return out

    # -- teardown --------------------------------------------------------------------------------------
    def __exit__(self, *exc: object) -> None:
        self._teardown("failed" if exc[0] not in (None, KeyboardInterrupt) else "finished")

    def _teardown(self, status: str) -> None:
        try:
            if self.record is not None:
                self.record.status = status
                self.record.finished = time.time()
                self._save_progress()
                self.record.save()
            for prog, link in self.links:
                try:
                    prog.detach(link)
                except Exception:  # noqa: BLE001 - teardown goes on; the kernel closes what is left
                    pass
            if self.bpf is not None and hasattr(self.bpf, "close"):
                self.bpf.close()
        finally:
            self.lock.release()



def _quiet_logger() -> logging.Logger:
    """EbpfLogger's records go to the live view, not through Python logging."""
    lg = logging.getLogger("tinyaya.load.aya_log")
    lg.disabled = True
    return lg
