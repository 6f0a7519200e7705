"""Generated strace logs (random interleavings of pids, unfinished/resumed pairs, timestamp styles) replay
to exactly the syscalls that were generated; garbage lines never raise."""
from __future__ import annotations

import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from tracing_helpers import sim_kernel

from tinyaya.sim_kernel.tracing.syscalls import BY_NAME
from tinyaya.sim_kernel.workloads.strace import arg_value, parse_line

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40"))
CALLS = [
    ("openat", 'AT_FDCWD, "/etc/x\\"y, z)", O_RDONLY|O_CLOEXEC', "3", "-1 ENOENT (No such file or directory)"),
    ("read", '3, "\\x7fELF\\2\\1"..., 832', "832", "-1 EAGAIN (Resource temporarily unavailable)"),
    ("write", '1, "a) = 5\\n", 6', "6", "-1 EPIPE (Broken pipe)"),
    ("close", "3", "0", "-1 EBADF (Bad file descriptor)"),
    ("mmap", "NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0", "0x7f5025c3f000", None),
    ("futex", "0x7f00, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, NULL, FUTEX_BITSET_MATCH_ANY", "0",
     "-1 ETIMEDOUT (Connection timed out)"),
    ("newfstatat", 'AT_FDCWD, "", {st_mode=S_IFREG|0644, st_size=12, ...}, AT_EMPTY_PATH', "0", None),
    ("getpid", "", "4242", None),
    ("epoll_wait", "4, [{events=EPOLLIN, data={u32=5, u64=5}}], 10, -1", "1", "? ERESTARTSYS (To be restarted)"),
    ("syscall_0x1c3", "0x1, 0x2", "-1 ENOSYS (Function not implemented)", None),
]


def _stamp(style: str, t: float, prev: float) -> str:
    if style == "tt":
        h, rem = divmod(t, 3600)
        m, s = divmod(rem, 60)
        return f"{int(h):02d}:{int(m):02d}:{s:09.6f} "
    if style == "ttt":
        return f"{1_700_000_000 + t:.6f} "
    if style == "r":
        return f"{t - prev:>12.6f} "
    return ""


def generate(rng: random.Random) -> tuple[str, dict[str, int]]:
    pids = [rng.randint(100, 60000) for _ in range(rng.randint(1, 4))]
    style = rng.choice(["", "tt", "ttt", "r"])
    stderr_form = rng.random() < 0.3
    truth: dict[str, int] = {}
    lines: list[str] = []
    pending: dict[int, tuple[str, str]] = {}
    t = prev = 1000.0

    def prefix(pid: int) -> str:
        nonlocal prev, t
        t += rng.random() / 1000
        stamp = _stamp(style, t, prev)
        prev = t
        return (f"[pid {pid:5d}] " if stderr_form else f"{pid:<5d} ") + stamp

    for _ in range(rng.randint(1, 120)):
        pid = rng.choice(pids)
        if pid in pending and rng.random() < 0.6:
            name, ret = pending.pop(pid)
            lines.append(f"{prefix(pid)}<... {name} resumed>) = {ret}")
            continue
        if rng.random() < 0.1:
            lines.append(f"{prefix(pid)}--- SIGCHLD {{si_signo=SIGCHLD, si_code=CLD_EXITED}} ---")
            continue
        if pid in pending:
            continue
        name, args, ok, err = rng.choice(CALLS)
        ret = err if (err and rng.random() < 0.3) else ok
        key = name if name in BY_NAME else name
        truth[key] = truth.get(key, 0) + 1
        if rng.random() < 0.3:
            cut = args[: rng.randint(0, len(args))] if '"' not in args else ""
            lines.append(f"{prefix(pid)}{name}({cut} <unfinished ...>")
            pending[pid] = (name, ret)
        else:
            lines.append(f"{prefix(pid)}{name}({args}) = {ret}")
    return "\n".join(lines) + "\n", truth


def test_generated_logs_replay_exactly() -> None:
    rng = random.Random(1234)
    for _ in range(EXAMPLES):
        text, truth = generate(rng)
        k = sim_kernel()
        res = k.machine.replay(text).run()
        got = {("syscall_0x1c3" if n == "syscall_451" or n == "cachestat" else n): c
               for n, c in res.by_name().items()}
        assert got == truth, text
        assert [s for s in res.skipped if "resumed" not in s[1]] == []


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(st.text(max_size=200))
def test_garbage_lines_never_raise(line: str) -> None:
    pl = parse_line(line)
    assert pl.kind in ("call", "unfinished", "resumed", "skip")


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(st.text(max_size=80))
def test_garbage_arguments_never_raise(text: str) -> None:
    k = sim_kernel()
    v = arg_value(text, k.machine.default_process)
    assert 0 <= v < 1 << 64
