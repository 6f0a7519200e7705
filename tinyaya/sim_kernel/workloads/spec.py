"""Workload specifications and the runner that turns one into syscalls on a ``Machine``.

A ``WorkloadSpec`` names processes (comm, uid, cpu, threads) and the syscall
mix each issues: per syscall a ``rate`` (calls per simulated second), its
arguments (integers; strings, placed in the process's user memory and passed
by address; None, the address of a scratch buffer in that memory) and a ``duration_ns`` (time between entry and exit). The runner picks
syscalls by rate with a seeded ``random.Random``, so a spec and a seed give
the same sequence every time; the clock advances by the inter-arrival gap
(1 s / total rate) before each call and by its duration inside it. A process
may also ``spawn`` commands: a fork, an execve in the child, a few file
syscalls and an exit_group, as a shell running ``ls`` does.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..tracing.syscall_path import M64
from ..tracing.syscalls import BY_NAME, BY_NR

if TYPE_CHECKING:
    from ..machine import Machine, Process, Task

__all__ = ["SyscallSpec", "ProcessSpec", "WorkloadSpec", "RunResult", "WorkloadRunner", "Arg"]

Arg = int | str | bytes | None
_BATCH = 4096
_SPAWN = -1  # template marker: the process spawns a command


@dataclass(frozen=True)
class SyscallSpec:
    name: str
    rate: float = 1.0
    args: tuple[Arg, ...] = ()
    ret: int | None = None
    duration_ns: int = 1000


@dataclass(frozen=True)
class ProcessSpec:
    comm: str
    syscalls: tuple[SyscallSpec, ...]
    uid: int = 1000
    gid: int | None = None
    cpu: int | None = None
    threads: int = 1
    cwd: str = "/"
    #: commands this process runs (fork + execve + exit), each chosen at ``spawn_rate`` per second
    spawn: tuple[str, ...] = ()
    spawn_rate: float = 0.0


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    description: str
    processes: tuple[ProcessSpec, ...]


@dataclass
class RunResult:
    """What one ``run``/``step`` issued: syscall counts by number, events, simulated time."""

    counts: dict[int, int] = field(default_factory=dict)
    events: int = 0
    duration_ns: int = 0
    #: lines of a replay that were not syscalls or could not be parsed: (line number, reason)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def by_name(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for nr, n in sorted(self.counts.items()):
            sc = BY_NR.get(nr)
            out[sc.name if sc else f"syscall_{nr}"] = n
        return out

    def count(self, name: str) -> int:
        sc = BY_NAME.get(name)
        return self.counts.get(sc.nr, 0) if sc else 0


class WorkloadRunner:
    """A started workload: its processes exist on the machine; ``run``/``step`` issue more syscalls."""

    def __init__(self, machine: Machine, spec: WorkloadSpec, seed: int = 0) -> None:
        self.machine = machine
        self.spec = spec
        self.seed = seed
        self.rng = random.Random(seed)
        self.processes: list[Process] = []
        templates: list[tuple[Task, int, tuple[int, ...], int, int, str]] = []
        weights: list[float] = []
        for ps in spec.processes:
            p = machine.process(comm=ps.comm, uid=ps.uid, gid=ps.gid, cpu=None if ps.cpu is None
                                else ps.cpu % machine.ncpus, cwd=ps.cwd)
            self.processes.append(p)
            tasks = [p.leader] + [p.thread(cpu=(p.leader.cpu + i) % machine.ncpus) for i in range(1, ps.threads)]
            for sc in ps.syscalls:
                nr = BY_NAME[sc.name].nr
                vals = [p.scratch if a is None else p._arg(a) for a in sc.args] + [0] * (6 - len(sc.args))
                args = (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5])
                for t in tasks:
                    ret = sc.ret if sc.ret is not None else machine.default_ret(t, nr, args)
                    templates.append((t, nr, args, ret, sc.duration_ns, "special" if nr in _SPECIAL else ""))
                    weights.append(sc.rate / len(tasks))
            for cmd in ps.spawn:
                templates.append((p.leader, _SPAWN, (0,) * 6, 0, 0, cmd))
                weights.append(ps.spawn_rate / len(ps.spawn))
        total = sum(weights)
        if not templates or total <= 0:
            raise ValueError(f"workload {spec.name!r} issues no syscalls")
        self.templates = templates
        acc = 0.0
        self.cum_weights = []
        for w in weights:
            acc += w
            self.cum_weights.append(acc)
        #: simulated time between two syscalls of the whole machine
        self.gap_ns = max(1, int(1e9 / total))
        self._batch: list[tuple[Task, int, tuple[int, ...], int, int, str]] = []
        self._pos = 0
        self._spawning: Iterator[None] | None = None
        self._last_nr = 0
        self.totals = RunResult()
        self._spawned = 0

    # -- running --------------------------------------------------------------------------------------
    def run(self, events: int | None = None, duration_ns: int | None = None) -> RunResult:
        """Issue ``events`` syscalls, or as many as fit in ``duration_ns`` of simulated time."""
        if events is None and duration_ns is None:
            raise ValueError("give events or duration_ns")
        counts: dict[int, int] = {}
        clock = self.machine.clock
        start = clock.ktime_ns
        if events is not None:
            n = self.step(events, counts)
        else:
            assert duration_ns is not None
            end = start + duration_ns
            n = 0
            while clock.ktime_ns < end:
                n += self.step(max(1, min(4096, (end - clock.ktime_ns) // self.gap_ns)), counts)
        res = RunResult(counts, n, clock.ktime_ns - start)
        self._add_totals(res)
        return res

    def _add_totals(self, res: RunResult) -> None:
        t = self.totals
        for nr, c in res.counts.items():
            t.counts[nr] = t.counts.get(nr, 0) + c
        t.events += res.events
        t.duration_ns += res.duration_ns

    def step(self, budget: int, counts: dict[int, int]) -> int:
        """Issue exactly ``budget`` syscalls (a workload never ends), adding them to ``counts``."""
        with self.machine.events_batch():
            return self._step(budget, counts)

    def _step(self, budget: int, counts: dict[int, int]) -> int:
        m = self.machine
        clock = m.clock
        gap = self.gap_ns
        enters, exits = m.plans()  # programs cannot attach or detach while a step runs
        fire_enter = m.fire_enter
        fire_exit = m.fire_exit
        tally = [0] * len(enters)
        done = 0
        while done < budget:
            if self._spawning is not None:
                try:
                    next(self._spawning)
                except StopIteration:
                    self._spawning = None
                    continue
                tally[self._last_nr] += 1
                m.syscall_counts[self._last_nr] -= 1  # counted below with the others
                done += 1
                enters, exits = m.plans()
                continue
            batch = self._batch
            pos = self._pos
            if pos >= len(batch):
                batch = self._batch = self.rng.choices(self.templates, cum_weights=self.cum_weights, k=_BATCH)
                pos = 0
            end = min(len(batch), pos + budget - done)
            while pos < end:
                task, nr, args, ret, dur, cmd = batch[pos]
                pos += 1
                if cmd:
                    if nr == _SPAWN:
                        self._spawning = self._spawn(task, cmd)
                        break
                    clock.ktime_ns += gap
                    m.syscall(task, nr, args, ret)
                    m.syscall_counts[nr] -= 1  # counted below with the others
                    enters, exits = m.plans()
                else:
                    clock.ktime_ns += gap
                    steps = enters[nr]
                    if steps is not None:
                        fire_enter(task, nr, args, steps)
                    clock.ktime_ns += dur
                    steps = exits[nr]
                    if steps is not None:
                        fire_exit(task, nr, args, ret, steps)
                tally[nr] += 1
                done += 1
            self._pos = pos
        sc = m.syscall_counts
        for nr, c in enumerate(tally):
            if c:
                counts[nr] = counts.get(nr, 0) + c
                sc[nr] += c
        return done

    def _spawn(self, parent: Task, cmd: str) -> Iterator[None]:
        """fork → execve → openat/read/write/close → exit_group, one syscall per ``next``."""
        m = self.machine
        argv = cmd.split() or ["true"]
        path = argv[0] if argv[0].startswith("/") else f"/usr/bin/{argv[0]}"

        def call(task: Task, name: str, *args: Arg, ret: int | None = None) -> int:
            nr = BY_NAME[name].nr
            vals = [task.process._arg(a) for a in args] + [0] * (6 - len(args))
            m.clock.ktime_ns += self.gap_ns
            self._last_nr = nr
            return m.syscall(task, nr, (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]), ret)

        pid = call(parent, "clone", 0x01200011, 0, 0, 0, 0)  # CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
        yield
        child = m.tasks.get(pid)
        if child is None:
            return
        call(child, "execve", path, 0, 0, ret=0)
        yield
        fd = call(child, "openat", -100 & M64, "/etc/ld.so.cache", 0o2000000)
        yield
        call(child, "read", fd, 0, 4096, ret=4096)
        yield
        call(child, "close", fd, ret=0)
        yield
        call(child, "write", 1, " ".join(argv[1:]) or argv[0], 64, ret=64)
        yield
        call(child, "exit_group", 0)
        yield
        call(parent, "wait4", pid, 0, 0, 0, ret=pid)
        yield


_SPECIAL = frozenset(BY_NAME[n].nr for n in ("clone", "clone3", "fork", "vfork", "execve", "execveat", "exit",
                                              "exit_group"))
