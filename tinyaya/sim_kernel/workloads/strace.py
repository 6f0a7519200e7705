"""Replay of ``strace -f`` logs on the simulated machine.

Each syscall line becomes the same syscall, by the same pid, on the machine:
names map to x86-64 numbers (``syscall_0x1c3`` to 0x1c3), string arguments go
into the process's user memory and are passed by address, integers, flags
(``O_RDONLY|O_CLOEXEC``) and constants (``AT_FDCWD``) become their values,
structures and arrays a pointer to a scratch buffer, and the return value
(``= 3``, ``= -1 ENOENT (...)``) is what exit probes see.

Forms understood (strace(1)): ``PID  name(args) = ret`` (``-f -o FILE``),
``[pid PID] name(...)`` (``-f`` to stderr), no pid (a single process);
timestamps from ``-t``, ``-tt``, ``-ttt`` and ``-r`` advance the clock by the
time between lines; ``-T`` durations (``<0.000012>``), ``-i`` instruction pointers and ``-n``
syscall numbers are ignored (the name decides); ``-y`` fd
annotations (``3</etc/passwd>``) are stripped. ``name(... <unfinished ...>``
fires the entry probes and ``<... name resumed> ...) = ret`` the exit probes.
Signal lines (``--- SIGCHLD ... ---``), exit lines (``+++ exited with 0 +++``),
``-k`` stack frames (`` > /lib/...``) and strace's own messages are skipped; a ``strace: Process N attached`` notice
that strace wrote into the middle of a line (tracing to stderr) is cut out and
the line joined again. A ``clone`` with ``CLONE_THREAD``
makes the child a thread of its parent's process (a pre-pass finds these, so a
child that speaks before its parent's clone returns is placed correctly).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..tracing.syscall_path import M64
from ..tracing.syscalls import BY_NAME
from .constants import CONSTANTS
from .spec import RunResult

if TYPE_CHECKING:
    from ..machine import Machine, Process, Task

__all__ = ["StraceReplay", "StraceError", "StraceLine", "parse_line", "split_args"]


class StraceError(ValueError):
    """A log that cannot be replayed (missing, unreadable, or a malformed line in strict mode)."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None) -> None:
        super().__init__(f"{source}{f':{line}' if line else ''}: {message}" if source else message)
        self.line = line


_PREFIX = re.compile(r"^\s*(?:\[pid\s+(\d+)\]\s*|(\d+)\s+)?"
                     r"(?:(\d{1,2}:\d{2}:\d{2}(?:\.\d+)?|\d+\.\d+)\s+)?"
                     r"(?:\[[0-9a-f?]{8,16}\]\s+)?(?:\[\s*\d{1,4}\]\s+)?")
#: strace's own notices, which strace writes into the middle of a line when tracing to stderr
_NOTICE = re.compile(r"strace: Process \d+ (?:attached|detached|resumed|suspended)\n")
_CALL = re.compile(r"^([a-z_][a-z0-9_]*)\((.*)$")
_RESUMED = re.compile(r"^<\.\.\.\s+([a-z_][a-z0-9_]*)\s+resumed>\s?(.*)$")
_RETVAL = re.compile(r"(0x[0-9a-fA-F]+|-?\d+|\?)(?:<[^>]*>)?(?:\s+(E[A-Z0-9_]+))?")
_UNFINISHED = " <unfinished ...>"
_ERRNO = {"EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "ENXIO": 6, "E2BIG": 7, "ENOEXEC": 8,
          "EBADF": 9, "ECHILD": 10, "EAGAIN": 11, "ENOMEM": 12, "EACCES": 13, "EFAULT": 14, "EBUSY": 16,
          "EEXIST": 17, "EXDEV": 18, "ENODEV": 19, "ENOTDIR": 20, "EISDIR": 21, "EINVAL": 22, "ENFILE": 23,
          "EMFILE": 24, "ENOTTY": 25, "EFBIG": 27, "ENOSPC": 28, "ESPIPE": 29, "EROFS": 30, "EPIPE": 32,
          "ERANGE": 34, "EDEADLK": 35, "ENAMETOOLONG": 36, "ENOSYS": 38, "ENOTEMPTY": 39, "ELOOP": 40,
          "ENODATA": 61, "ETIME": 62, "EOVERFLOW": 75, "ENOTSOCK": 88, "EOPNOTSUPP": 95, "EAFNOSUPPORT": 97,
          "EADDRINUSE": 98, "ECONNRESET": 104, "ENOTCONN": 107, "ETIMEDOUT": 110, "ECONNREFUSED": 111,
          "EINPROGRESS": 115, "ERESTARTSYS": 512, "ERESTARTNOINTR": 513, "ERESTARTNOHAND": 514,
          "ERESTART_RESTARTBLOCK": 516}


class StraceLine:
    """One parsed line: ``kind`` is "call", "unfinished", "resumed" or "skip"."""

    __slots__ = ("kind", "pid", "ts", "name", "args", "ret", "reason", "relative")

    def __init__(self, kind: str, pid: int | None = None, ts: float | None = None, name: str = "",
                 args: list[str] | None = None, ret: int | None = None, reason: str = "") -> None:
        self.kind = kind
        self.pid = pid
        self.ts = ts
        self.name = name
        self.args = args or []
        self.ret = ret
        self.reason = reason
        #: the timestamp is a -r delta (not a time of day or an epoch time)
        self.relative = False


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[()\[\]{},]|[^"()\[\]{},]+')


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments, respecting quotes, (), [] and {}."""
    if not any(c in text for c in '"([{'):
        return [a.strip() for a in text.split(",")] if text.strip() else []
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        if tok in "([{":
            depth += 1
        elif tok in ")]}":
            depth -= 1
        cur.append(tok)
    last = "".join(cur).strip()
    if last:
        out.append(last)
    return out


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    if ":" in text:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return float(text)


def _ret(tail: str) -> tuple[str, int | None] | None:
    """Split ``args) = ret ...`` into the argument text and the return value (None for ``?``).

    The separator is the last `` = `` that follows a ``)``, so strings holding
    ``) = `` and errno texts in parentheses (``-1 ENOENT (No such file…)``) are fine.
    """
    idx = len(tail)
    while True:
        i = tail.rfind(" = ", 0, idx)
        if i < 0:
            return None
        before = tail[:i].rstrip()
        if before.endswith(")"):
            break
        idx = i
    m = _RETVAL.match(tail[i + 3:].lstrip())
    if m is None:
        return None
    val = m.group(1)
    if val == "?":
        ret: int | None = None
    else:
        ret = int(val, 0)
        if ret == -1 and m.group(2):
            ret = -_ERRNO.get(m.group(2), 1)
        elif ret > 0x7FFF_FFFF_FFFF_FFFF:
            ret -= 1 << 64
    return before[:-1], ret


def parse_line(line: str) -> StraceLine:
    """Parse one log line; never raises (a line it does not understand is ``skip`` with a reason)."""
    return _parse_line(line)


def _parse_line(line: str) -> StraceLine:
    line = line.rstrip("\n")
    m = _PREFIX.match(line)
    assert m is not None  # every group is optional
    pid_s = m.group(1) or m.group(2)
    pid = int(pid_s) if pid_s else None
    ts = _ts(m.group(3))
    rest = line[m.end():]
    pl = _parse_rest(rest, pid, ts)
    if ts is not None and ":" not in m.group(3) and ts < 1e6:
        pl.relative = True
    return pl


def _parse_rest(rest: str, pid: int | None, ts: float | None) -> StraceLine:
    if not rest or rest.startswith(("---", "+++", "strace:", "????", "> ", "[ Process PID=")):
        return StraceLine("skip", pid, ts, reason="signal, exit or strace message")
    rm = _RESUMED.match(rest)
    if rm is not None:
        got = _ret(rm.group(2))
        if got is None:
            return StraceLine("skip", pid, ts, reason=f"no return value in resumed {rm.group(1)}")
        return StraceLine("resumed", pid, ts, rm.group(1), split_args(got[0]), got[1])
    cm = _CALL.match(rest)
    if cm is None:
        return StraceLine("skip", pid, ts, reason="not a syscall line")
    name, tail = cm.group(1), cm.group(2)
    if tail.endswith(_UNFINISHED) or tail.endswith("<unfinished ...>"):
        body = tail[: tail.rfind("<unfinished")].rstrip().rstrip(",")
        return StraceLine("unfinished", pid, ts, name, split_args(body))
    got = _ret(tail)
    if got is None:
        return StraceLine("skip", pid, ts, name, reason=f"no return value for {name}")
    return StraceLine("call", pid, ts, name, split_args(got[0]), got[1])


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "a": "\a", "b": "\b", "\\": "\\", '"': '"',
            "'": "'", "e": "\x1b"}


def _unescape(body: str) -> bytes:
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\" or i + 1 >= n:
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nx = body[i + 1]
        if nx == "x" and i + 3 < n + 1:
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif nx.isdigit():
            j = i + 1
            while j < n and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out += _ESCAPES.get(nx, nx).encode()
            i += 2
    return bytes(out)


_NUM = re.compile(r"^-?(0x[0-9a-fA-F]+|0[0-7]*|[1-9]\d*)$")


def arg_value(text: str, process: Process) -> int:
    """The u64 an strace argument stands for in ``process``."""
    t = text.strip()
    if "/*" in t:
        t = re.sub(r"/\*.*?\*/", "", t).strip()
    if not t:
        return 0
    if t[0] == '"':
        end = t.rfind('"')
        return process.string(_unescape(t[1:end] if end > 0 else t[1:]))
    if t[0] in "{[~" or t.startswith("&"):
        return process.scratch
    lt = t.find("<")
    if lt > 0:  # -y: 3</etc/passwd>
        t = t[:lt]
    if _NUM.match(t):
        neg = t.startswith("-")
        body = t[1:] if neg else t
        v = int(body, 16) if body.startswith("0x") else (int(body, 8) if len(body) > 1 and body[0] == "0"
                                                         else int(body))
        return (-v if neg else v) & M64
    if t == "NULL":
        return 0
    total = 0
    for part in t.split("|"):
        part = part.strip()
        if _NUM.match(part):
            total |= int(part, 0) if not (len(part) > 1 and part[0] == "0" and part[1] != "x") else int(part, 8)
        else:
            total |= CONSTANTS.get(part, 0)
    return total & M64


def _looks_like_a_path(text: str) -> bool:
    """A path to a log, rather than the log's text (several lines, or one syscall line that is no file)."""
    if "\n" in text:
        return False
    try:
        exists = Path(text).exists()
    except (OSError, ValueError):
        exists = False
    return exists or "(" not in text


class StraceReplay:
    """Replays a log; ``run(events=N)``/``step(budget, counts)`` go on where the last call stopped."""

    def __init__(self, machine: Machine, source: str | Path | Iterable[str], *, strict: bool = False,
                 first_comm: str = "strace", default_duration_ns: int = 1000) -> None:
        self.machine = machine
        self.strict = strict
        self.first_comm = first_comm
        self.default_duration_ns = default_duration_ns
        self.source = ""
        if isinstance(source, Path) or (isinstance(source, str) and _looks_like_a_path(source)):
            p = Path(source)
            self.source = str(p)
            try:
                text = p.read_text(encoding="utf-8", errors="surrogateescape")
            except FileNotFoundError:
                raise StraceError("no such strace log", source=str(p))
            except OSError as e:
                raise StraceError(f"cannot read strace log: {e}", source=str(p))
            self.lines = _NOTICE.sub("", text).splitlines()
        elif isinstance(source, str):
            self.lines = _NOTICE.sub("", source).splitlines()
        else:
            self.lines = _NOTICE.sub("", "".join(f"{str(x).rstrip(chr(10))}\n" for x in source)  # type: ignore[union-attr]
                                     ).splitlines()
        self.pos = 0
        self.skipped: list[tuple[int, str]] = []
        self.tasks: dict[int, Task] = {}
        self._pending: dict[int, tuple[int, tuple[int, ...]]] = {}
        self._last_ts: float | None = None
        self._threads, self._parents = self._prepass()
        # strace (to stderr) drops the [pid N] prefix while only one process is traced: unprefixed lines
        # belong to the one still alive, else to the first process (a parent that is nobody's child)
        self._root = next((p for p in self._parents.values() if p not in self._parents), None)
        self._alive: set[int] = set()
        self.totals = RunResult()
        self.progress: Callable[[int, int], None] | None = None


    @property
    def total_lines(self) -> int:
        return len(self.lines)

    @property
    def done(self) -> bool:
        return self.pos >= len(self.lines)

    def _prepass(self) -> tuple[dict[int, int], dict[int, int]]:
        """child pid → parent pid for every clone/fork, and which children are threads (CLONE_THREAD)."""
        threads: dict[int, int] = {}
        parents: dict[int, int] = {}
        open_calls: dict[int, StraceLine] = {}
        for raw in self.lines:
            if "clone" not in raw and "fork" not in raw:
                continue
            pl = parse_line(raw)
            if pl.name not in ("clone", "clone3", "fork", "vfork"):
                continue
            if pl.kind == "unfinished" and pl.pid is not None:
                open_calls[pl.pid] = pl
                continue
            args = pl.args
            if pl.kind == "resumed" and pl.pid is not None and pl.pid in open_calls:
                args = open_calls.pop(pl.pid).args + args
            if pl.kind in ("call", "resumed") and pl.ret is not None and pl.ret > 0 and pl.pid is not None:
                parents[pl.ret] = pl.pid
                if any("CLONE_THREAD" in a for a in args):
                    threads[pl.ret] = pl.pid
        return threads, parents

    def _resolve(self, pid: int | None) -> int | None:
        if pid is not None:
            return pid
        if len(self._alive) == 1:
            return next(iter(self._alive))
        return self._root

    def _task(self, pid: int | None) -> Task:
        pid = self._resolve(pid)
        if pid is not None:
            self._alive.add(pid)
        key = -1 if pid is None else pid
        t = self.tasks.get(key)
        if t is not None and t.alive:
            return t
        m = self.machine
        existing = m.tasks.get(pid) if pid is not None else None
        if existing is not None and existing.alive and existing.process is not m.default_process:
            t = existing
        elif pid is not None and pid in self._threads and self._threads[pid] in self.tasks:
            t = self.tasks[self._threads[pid]].process.thread(tid=pid)
        else:
            parent_pid = self._parents.get(pid) if pid is not None else None
            parent = self.tasks.get(parent_pid) if parent_pid is not None else None
            comm = parent.process.comm if parent is not None else self.first_comm
            proc = m.process(comm=comm, uid=0, pid=pid, cpu=(pid or 0) % m.ncpus,
                             ppid=parent.tgid if parent is not None else 1)
            t = proc.leader
        self.tasks[key] = t
        return t

    def _advance(self, ts: float | None) -> None:
        clock = self.machine.clock
        if ts is None:
            clock.ktime_ns += self.default_duration_ns
            return
        if self._last_ts is not None and ts > self._last_ts:
            clock.ktime_ns += int(round((ts - self._last_ts) * 1e9))
        elif self._last_ts is None:
            clock.ktime_ns += self.default_duration_ns
        self._last_ts = ts

    def run(self, events: int | None = None) -> RunResult:
        """Replay up to ``events`` syscalls (all that remain if None)."""
        counts: dict[int, int] = {}
        start = self.machine.clock.ktime_ns
        first_skip = len(self.skipped)
        n = self.step(events if events is not None else len(self.lines) + 1, counts)
        res = RunResult(counts, n, self.machine.clock.ktime_ns - start, self.skipped[first_skip:])
        t = self.totals
        for nr, c in counts.items():
            t.counts[nr] = t.counts.get(nr, 0) + c
        t.events += n
        t.duration_ns += res.duration_ns
        return res

    def step(self, budget: int, counts: dict[int, int]) -> int:
        """Replay lines until ``budget`` syscalls were entered or the log ends; returns how many."""
        with self.machine.events_batch():
            return self._step(budget, counts)

    def _step(self, budget: int, counts: dict[int, int]) -> int:
        m = self.machine
        done = 0
        lines = self.lines
        while done < budget and self.pos < len(lines):
            lineno = self.pos + 1
            raw = lines[self.pos]
            self.pos += 1
            pl = parse_line(raw)
            if pl.kind == "skip":
                if "+++ exited" in raw or "+++ killed" in raw:
                    self._alive.discard(self._resolve(pl.pid))  # type: ignore[arg-type]
                elif raw.strip() and pl.reason not in ("signal, exit or strace message",):
                    self._skip(lineno, pl.reason, raw)
                continue
            if pl.relative and pl.ts is not None:
                m.clock.ktime_ns += int(round(pl.ts * 1e9))
            else:
                self._advance(pl.ts)
            nr = self._nr(pl.name)
            if nr is None:
                self._skip(lineno, f"unknown syscall {pl.name!r}", raw)
                continue
            task = self._task(pl.pid)
            if pl.kind == "resumed":
                pend = self._pending.pop(task.pid, None)
                if pend is None and pl.pid is None:
                    # an unprefixed resumed line: the call is pending in exactly one task
                    cands = [p for p, v in self._pending.items() if v[0] == nr or v[0] < 0]
                    if len(cands) == 1:
                        task = self.machine.tasks.get(cands[0]) or task
                        pend = self._pending.pop(cands[0])
                if pend is None:
                    self._skip(lineno, f"resumed {pl.name} without its unfinished line", raw)
                    continue
                pnr, args = pend
                if pnr >= 0 and pl.ret is not None:
                    m.syscall_exit(task, pnr, args, pl.ret)
                continue
            args = self._args(pl.args, task.process)
            if pl.kind == "unfinished":
                if nr in _SPECIAL_NR:
                    # fork/exec/exit change the machine: replay them whole, at their entry
                    self._pending_special(task, nr, args, lineno)
                else:
                    m.syscall_enter(task, nr, args)
                    self._pending[task.pid] = (nr, args)
            elif pl.ret is None or nr in _SPECIAL_NR:
                self._special_or_noreturn(task, nr, args, pl.ret)
            else:
                m.syscall_enter(task, nr, args)
                m.syscall_exit(task, nr, args, pl.ret)
            counts[nr] = counts.get(nr, 0) + 1
            done += 1
            if self.progress is not None and done % 4096 == 0:
                self.progress(self.pos, len(lines))
        return done

    def _pending_special(self, task: Task, nr: int, args: tuple[int, ...], lineno: int) -> None:
        ret = self._future_ret(task.pid, nr, lineno)
        self._special_or_noreturn(task, nr, args, ret)
        self._pending[task.pid] = (-1, args)  # the resumed line only closes it

    def _future_ret(self, pid: int, nr: int, lineno: int) -> int | None:
        """The return value on the matching ``resumed`` line, looked ahead for."""
        for raw in self.lines[lineno:lineno + 100000]:
            if "resumed>" not in raw:
                continue
            pl = parse_line(raw)
            if pl.kind == "resumed" and pl.pid == pid:
                return pl.ret
        return None

    def _special_or_noreturn(self, task: Task, nr: int, args: tuple[int, ...], ret: int | None) -> None:
        m = self.machine
        if nr in _SPECIAL_NR:
            m.syscall(task, nr, args, 0 if ret is None else ret)
            return
        m.syscall_enter(task, nr, args)  # `= ?`: the call did not return (or was restarted)

    def _nr(self, name: str) -> int | None:
        sc = BY_NAME.get(name)
        if sc is not None:
            return sc.nr
        if name.startswith("syscall_"):
            try:
                return int(name[8:], 0)
            except ValueError:
                return None
        return None

    def _args(self, texts: list[str], process: Process) -> tuple[int, ...]:
        cache = process.arg_cache
        if len(cache) > 50_000:
            cache.clear()
        vals = []
        for a in texts[:6]:
            v = cache.get(a)
            if v is None or (v[1] != process.string_generation and a.startswith('"')):
                v = cache[a] = (arg_value(a, process), process.string_generation)
            vals.append(v[0])
        vals += [0] * (6 - len(vals))
        return vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]

    def _skip(self, lineno: int, reason: str, raw: str) -> None:
        if self.strict:
            raise StraceError(f"{reason}: {raw[:120]}", source=self.source, line=lineno)
        self.skipped.append((lineno, reason))


_SPECIAL_NR = frozenset(BY_NAME[n].nr for n in ("clone", "clone3", "fork", "vfork", "execve", "execveat", "exit",
                                                 "exit_group"))
