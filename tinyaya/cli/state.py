"""Where the CLI keeps the state of a load, so that other shells can see it.

A load pins every map and program it creates into the simulated kernel's
bpffs under ``<bpffs>/tinyaya/last/{maps,progs}/NAME`` and records what it
did in ``<state>/last-load.json``. ``tinyaya maps …`` and ``tinyaya prog …``
open those pins through ``BPF_OBJ_GET`` (the syscall boundary, never kernel
internals), while the load runs or after it has finished.

The state directory is ``$TINYAYA_STATE_DIR``, else ``$XDG_RUNTIME_DIR/tinyaya``,
else ``/tmp/tinyaya-$UID``; it is created 0700.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


def state_dir() -> Path:
    env = os.environ.get("TINYAYA_STATE_DIR")
    if env:
        base = Path(env)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        base = Path(os.environ["XDG_RUNTIME_DIR"]) / "tinyaya"
    else:
        base = Path(f"/tmp/tinyaya-{os.getuid()}")
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base


def bpffs_root() -> Path:
    root = state_dir() / "bpffs"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def load_pin_dir() -> Path:
    """The bpffs directory of the last load's pins (inside the simulated bpffs)."""
    return bpffs_root() / "tinyaya" / "last"


@dataclass
class LoadRecord:
    """What ``tinyaya load`` writes to ``last-load.json``."""

    obj: str
    pid: int
    backend: str
    started: float = field(default_factory=time.time)
    status: str = "running"  # running | finished | failed
    programs: list[dict[str, object]] = field(default_factory=list)
    maps: list[str] = field(default_factory=list)
    map_display: dict[str, dict[str, object]] = field(default_factory=dict)
    workload: str = ""
    syscalls_issued: int = 0
    syscalls_by_nr: dict[str, int] = field(default_factory=dict)
    events: int = 0
    faults: int = 0
    finished: float | None = None

    def save(self) -> None:
        path = state_dir() / "last-load.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=1)
        os.replace(tmp, path)

    @staticmethod
    def read() -> LoadRecord | None:
        path = state_dir() / "last-load.json"
        try:
            data = json.loads(path.read_text())
            return LoadRecord(**data)
        except (OSError, ValueError, TypeError):
            return None


class LoadLock:
    """One load at a time per state directory: a pid file, stale when its process is gone."""

    def __init__(self) -> None:
        self.path = state_dir() / "load.pid"
        self.held = False

    def holder(self) -> int | None:
        try:
            pid = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid == os.getpid():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def acquire(self) -> int | None:
        """Take the lock; returns the pid of a live holder instead if there is one."""
        other = self.holder()
        if other is not None:
            return other
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, self.path)
        self.held = True
        return None

    def release(self) -> None:
        if self.held:
            try:
                if int(self.path.read_text().strip()) == os.getpid():
                    self.path.unlink()
            except (OSError, ValueError):
                pass
            self.held = False


def require_load_record() -> LoadRecord:
    """The last load's record, or a one-line error telling the user to run a load first."""
    from .errors import bad_input

    rec = LoadRecord.read()
    if rec is not None and rec.backend != "sim":
        bad_input("the last load ran on the real kernel (--backend linux): its maps lived while it ran; "
                  "pin them with `tinyaya load --pin DIR` and read them with bpftool")
    if rec is None or not load_pin_dir().is_dir():
        bad_input("no load to inspect: run `tinyaya load OBJ` first (its maps are pinned for other shells)")
    return rec
