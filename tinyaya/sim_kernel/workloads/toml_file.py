"""Custom workloads as TOML files, read with ``tomllib``.

::

    name = "static-site"                 # optional (default: the file's stem)
    description = "nginx serving files"  # optional

    [[process]]
    comm = "nginx"          # required, at most 15 characters
    uid = 33                # optional: uid (default 1000), gid (default uid)
    cpu = 1                 # optional: the CPU it runs on (default: round-robin)
    threads = 2             # optional, default 1
    cwd = "/var/www"        # optional
    spawn = ["ls -l"]       # optional: commands it runs (fork, execve, exit) ...
    spawn_rate = 0.5        # ... this many per second

      [[process.syscall]]
      name = "openat"                              # required: an x86-64 syscall name
      rate = 100                                   # calls per second (> 0), default 1
      args = [-100, "/var/www/index.html", 0]      # integers or strings (at most 6)
      ret = 3                                      # optional return value
      duration_ns = 2000                           # optional time inside the call

Every mistake raises ``WorkloadError`` naming the key (``process[0].syscall[1].rate``)
and its line.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..tracing.syscalls import BY_NAME
from .spec import ProcessSpec, SyscallSpec, WorkloadSpec

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["WorkloadError", "load_workload_file", "parse_workload_toml"]


class WorkloadError(ValueError):
    """A workload that cannot be used; ``key`` and ``line`` say where, when known."""

    def __init__(self, message: str, *, source: str = "", key: str = "", line: int | None = None) -> None:
        where = source + (f":{line}" if line else "")
        text = (f"{where}: " if where else "") + (f"{key}: " if key else "") + message
        super().__init__(text)
        self.message = message
        self.source = source
        self.key = key
        self.line = line


_HEADER = re.compile(r"^\s*\[\[\s*([\w.]+)\s*\]\]")
_TABLE = re.compile(r"^\s*\[\s*([\w.]+)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _key_lines(text: str) -> dict[str, int]:
    """Line of each key, by its dotted path with array indices (``process[0].syscall[1].rate``)."""
    lines: dict[str, int] = {}
    counters: dict[str, int] = {}
    prefix = ""
    for no, raw in enumerate(text.splitlines(), 1):
        m = _HEADER.match(raw)
        if m:
            parts = m.group(1).split(".")
            path = ""
            for i, part in enumerate(parts):
                base = f"{path}.{part}" if path else part
                if i == len(parts) - 1:
                    idx = counters.get(base, 0)
                    counters[base] = idx + 1
                    # nested arrays restart for each parent element
                    for k in [k for k in counters if k.startswith(f"{base}[") or k.startswith(f"{base}.")]:
                        del counters[k]
                    path = f"{base}[{idx}]"
                else:
                    path = f"{base}[{counters.get(base, 1) - 1}]"
            prefix = path
            lines.setdefault(prefix, no)
            continue
        m = _TABLE.match(raw)
        if m:
            prefix = m.group(1)
            lines.setdefault(prefix, no)
            continue
        m = _KEY.match(raw)
        if m:
            lines.setdefault(f"{prefix}.{m.group(1)}" if prefix else m.group(1), no)
    return lines


class _Checker:
    def __init__(self, source: str, lines: dict[str, int]) -> None:
        self.source = source
        self.lines = lines

    def error(self, key: str, message: str) -> WorkloadError:
        line = self.lines.get(key)
        if line is None and "." in key:
            line = self.lines.get(key.rsplit(".", 1)[0])
        return WorkloadError(message, source=self.source, key=key, line=line)

    def unknown(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        for k in table:
            if k not in allowed:
                key = f"{where}.{k}" if where else k
                raise self.error(key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def get(self, table: dict[str, Any], name: str, where: str, kind: type | tuple[type, ...], default: Any = None,
            required: bool = False) -> Any:
        key = f"{where}.{name}" if where else name
        if name not in table:
            if required:
                raise self.error(where or name, f"missing required key {name!r}")
            return default
        v = table[name]
        if isinstance(v, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(key, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(v, kind):
            raise self.error(key, f"expected {_kind_name(kind)}, got {type(v).__name__} {v!r}")
        return v


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def parse_workload_toml(text: str, source: str = "<workload>", default_name: str = "custom") -> WorkloadSpec:
    """Parse a workload file's text; ``WorkloadError`` for any mistake."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise WorkloadError(f"not valid TOML: {e}", source=source, line=int(m.group(1)) if m else None)
    c = _Checker(source, _key_lines(text))
    c.unknown(data, {"name", "description", "process"}, "")
    name = c.get(data, "name", "", str, default_name)
    description = c.get(data, "description", "", str, f"custom workload from {source}")
    procs_raw = c.get(data, "process", "", list, required=True)
    if not procs_raw:
        raise c.error("process", "a workload needs at least one [[process]]")
    procs = []
    for i, pt in enumerate(procs_raw):
        where = f"process[{i}]"
        if not isinstance(pt, dict):
            raise c.error(where, "each process must be a table ([[process]])")
        procs.append(_process(c, pt, where))
    return WorkloadSpec(name, description, tuple(procs))


def _process(c: _Checker, pt: dict[str, Any], where: str) -> ProcessSpec:
    c.unknown(pt, {"comm", "uid", "gid", "cpu", "threads", "cwd", "syscall", "spawn", "spawn_rate"}, where)
    comm = c.get(pt, "comm", where, str, required=True)
    if not comm or len(comm) > 15:
        raise c.error(f"{where}.comm", f"comm must be 1 to 15 characters (TASK_COMM_LEN - 1), got {comm!r}")
    uid = c.get(pt, "uid", where, int, 1000)
    gid = c.get(pt, "gid", where, int, None)
    for k, v in (("uid", uid), ("gid", gid)):
        if v is not None and not 0 <= v < 2**32 - 1:
            raise c.error(f"{where}.{k}", f"{k} must be between 0 and 4294967294, got {v}")
    cpu = c.get(pt, "cpu", where, int, None)
    if cpu is not None and cpu < 0:
        raise c.error(f"{where}.cpu", f"cpu must be >= 0, got {cpu}")
    threads = c.get(pt, "threads", where, int, 1)
    if not 1 <= threads <= 1024:
        raise c.error(f"{where}.threads", f"threads must be between 1 and 1024, got {threads}")
    cwd = c.get(pt, "cwd", where, str, "/")
    spawn = c.get(pt, "spawn", where, list, [])
    for j, cmd in enumerate(spawn):
        if not isinstance(cmd, str) or not cmd.strip():
            raise c.error(f"{where}.spawn", f"spawn[{j}] must be a non-empty command string, got {cmd!r}")
    spawn_rate = float(c.get(pt, "spawn_rate", where, (int, float), 1.0 if spawn else 0.0))
    if spawn_rate < 0:
        raise c.error(f"{where}.spawn_rate", f"spawn_rate must be >= 0, got {spawn_rate}")
    sc_raw = c.get(pt, "syscall", where, list, [])
    if not sc_raw and not spawn:
        raise c.error(where, "a process needs at least one [[process.syscall]] (or spawn)")
    syscalls = []
    for j, st in enumerate(sc_raw):
        w = f"{where}.syscall[{j}]"
        if not isinstance(st, dict):
            raise c.error(w, "each syscall must be a table ([[process.syscall]])")
        syscalls.append(_syscall(c, st, w))
    return ProcessSpec(comm, tuple(syscalls), uid, gid, cpu, threads, cwd, tuple(spawn), spawn_rate)


def _syscall(c: _Checker, st: dict[str, Any], where: str) -> SyscallSpec:
    c.unknown(st, {"name", "rate", "args", "ret", "duration_ns"}, where)
    name = c.get(st, "name", where, str, required=True)
    if name not in BY_NAME:
        raise c.error(f"{where}.name", f"no x86-64 syscall named {name!r}")
    rate = float(c.get(st, "rate", where, (int, float), 1.0))
    if not rate > 0 or rate != rate or rate == float("inf"):
        raise c.error(f"{where}.rate", f"rate must be a positive number of calls per second, got {rate}")
    args = c.get(st, "args", where, list, [])
    if len(args) > 6:
        raise c.error(f"{where}.args", f"a syscall takes at most 6 arguments, got {len(args)}")
    for k, a in enumerate(args):
        if isinstance(a, bool) or not isinstance(a, (int, str)):
            raise c.error(f"{where}.args", f"args[{k}] must be an integer or a string, got {a!r}")
        if isinstance(a, int) and not -(2**63) <= a < 2**64:
            raise c.error(f"{where}.args", f"args[{k}] = {a} does not fit in 64 bits")
    ret = c.get(st, "ret", where, int, None)
    if ret is not None and not -(2**63) <= ret < 2**63:
        raise c.error(f"{where}.ret", f"ret = {ret} does not fit in a long")
    dur = c.get(st, "duration_ns", where, int, 1000)
    if dur < 0:
        raise c.error(f"{where}.duration_ns", f"duration_ns must be >= 0, got {dur}")
    return SyscallSpec(name, rate, tuple(args), ret, dur)


def load_workload_file(path: str | Path) -> WorkloadSpec:
    """Read a workload TOML file; ``WorkloadError`` if it is missing or wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkloadError("no such workload file", source=str(p))
    except (OSError, UnicodeDecodeError) as e:
        raise WorkloadError(f"cannot read workload file: {e}", source=str(p))
    return parse_workload_toml(text, str(p), p.stem)
