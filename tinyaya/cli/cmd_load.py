"""``tinyaya load``: load an object, attach its programs, drive a workload and show the maps live."""
from __future__ import annotations

import sys
from collections import deque
from pathlib import Path
from typing import Any

import click

from . import runner
from .errors import bad_input
from .pins import ensure_file


@click.command("load")
@click.argument("obj", required=False)
@click.option("--kprobe", "kprobe", metavar="FN[+OFF]", help="Attach the program(s) as a kprobe on kernel function FN.")
@click.option("--kretprobe", metavar="FN", help="Attach as a kretprobe on FN.")
@click.option("--tracepoint", metavar="CAT:NAME", help="Attach to tracepoint CAT:NAME (e.g. raw_syscalls:sys_enter).")
@click.option("--program", "programs", multiple=True, metavar="NAME", help="Only this program (repeatable).")
@click.option("--workload", metavar="NAME|FILE", help="Built-in workload name or a workload TOML file.")
@click.option("--replay", type=click.Path(dir_okay=False), metavar="FILE", help="Replay an `strace -f` log.")
@click.option("--events", type=click.IntRange(min=0), help="Stop after N simulated syscalls.")
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after S seconds (wall clock).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between map refreshes.")
@click.option("--backend", type=click.Choice(["sim", "linux"]), default="sim", show_default=True,
              help="The simulated kernel, or the real one (needs root and bpf()).")
@click.option("--set-global", "set_globals", multiple=True, metavar="NAME=VALUE",
              help="Override a global variable before load (integer or 0x-hex bytes).")
@click.option("--pin", "pin_dir", metavar="DIR", help="Also pin maps under DIR (a bpffs path).")
@click.option("--verifier-log", is_flag=True, help="Print the verifier log even when loading succeeds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated workload.")
@click.option("--engine", type=click.Choice(["interp", "compiled", "native"]), default=None,
              help="How the simulated kernel runs programs (default: $TINYAYA_ENGINE, else compiled).")
@click.option("--quiet", "-q", is_flag=True, help="Only the final summary.")
def load_cmd(obj: str | None, kprobe: str | None, kretprobe: str | None, tracepoint: str | None,
             programs: tuple[str, ...], workload: str | None, replay: str | None, events: int | None,
             duration: float | None, interval: float, backend: str, set_globals: tuple[str, ...],
             pin_dir: str | None, verifier_log: bool, seed: int, engine: str | None, quiet: bool) -> None:
    """Load OBJ, attach its programs, run a workload and show the maps live.

    Without OBJ, reads `tinyaya.toml` in the current directory. Programs attach
    to their section's default target unless --kprobe, --kretprobe or
    --tracepoint says otherwise. On a terminal the view is live; otherwise
    plain text is printed every interval, then a summary. The maps stay pinned
    for `tinyaya maps …` in other shells.

    \b
    Example:
      tinyaya load examples/syscall_ebpf/syscall_ebpf-ebpf/syscall_ebpf.o --kprobe sys_enter --events 1000
    """
    project: dict[str, Any] = {}
    if obj is None:
        from .project import load_project

        project = load_project(Path("tinyaya.toml"))
        obj = str(project["object"])
    if sum(x is not None for x in (kprobe, kretprobe, tracepoint)) > 1:
        bad_input("give at most one of --kprobe, --kretprobe, --tracepoint")
    if workload and replay:
        bad_input("give either --workload or --replay, not both")
    if events is not None and duration is not None:
        bad_input("give either --events or --duration, not both")
    ensure_file(obj)
    if replay:
        ensure_file(replay)
    attach = runner.AttachSpec.from_options(kprobe, kretprobe, tracepoint, project)
    opts = runner.LoadOptions(
        obj=obj, attach=attach, programs=list(programs) or list(project.get("programs", [])),
        workload=workload or project.get("workload"), replay=replay, events=events, duration=duration,
        interval=interval, backend=backend, set_globals=_parse_globals(set_globals), pin_dir=pin_dir,
        verifier_log=verifier_log, seed=seed, map_display=project.get("maps", {}), engine=engine,
    )
    if opts.events is None and opts.duration is None and not opts.replay and not sys.stdout.isatty():
        opts.duration = 10.0  # a pipe gets a bounded run by default
    _sigterm_as_interrupt()
    with runner.LoadSession(opts) as session:
        view = _View(session, quiet)
        session.run(view.tick)
        view.final()


def _sigterm_as_interrupt() -> None:
    """`kill PID` stops a load the way Ctrl-C does: the summary is printed and the state saved."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _parse_globals(items: tuple[str, ...]) -> dict[str, bytes | int]:
    out: dict[str, bytes | int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            bad_input(f"--set-global {item!r}: expected NAME=VALUE")
        v = value.strip()
        try:
            if v.lower().startswith("0x") and len(v) > 10:
                out[name] = bytes.fromhex(v[2:])
            else:
                out[name] = int(v, 0)
        except ValueError:
            bad_input(f"--set-global {name}: {value!r} is not an integer or 0x-hex bytes")
    return out


class _View:
    """Live rich view on a terminal, plain text at each interval otherwise."""

    def __init__(self, session: runner.LoadSession, quiet: bool) -> None:
        self.s = session
        self.quiet = quiet
        self.tty = sys.stdout.isatty() and not quiet
        self.live: Any = None
        self.logs: deque[str] = deque(maxlen=8)
        if self.tty:
            from rich.live import Live

            self.live = Live(self._render(), refresh_per_second=4, transient=False)
            self.live.start()

    def tick(self) -> None:
        self.logs.extend(self.s.drain_logs())
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(self._render())
            return
        for name in self.s.table_maps():
            for line in self.s.seed_lines(name):
                click.echo(line)
        for line in self.logs:
            click.echo(line)
        self.logs.clear()
        sys.stdout.flush()

    def _render(self) -> Any:
        """Status, tables, trace_pipe and aya-log, cut to the terminal's height (the busiest rows stay)."""
        from rich.console import Group
        from rich.text import Text

        def line(text: str, style: str | None = None) -> Text:
            return Text(text, style=style or "", no_wrap=True, overflow="ellipsis")

        height = self.live.console.height if self.live is not None else 24
        trace = list(self.s.trace_tail)[-3:]
        logs = list(self.logs)[-3:]
        tables = self.s.table_maps()
        fixed = 1 + (1 + len(trace) if trace else 0) + (1 + len(logs) if logs else 0)
        # a table costs its title, 4 border/header lines and a caption line besides its rows
        per_table = max(1, (height - fixed - 1) // max(1, len(tables)) - 6)
        parts: list[Any] = [line(self.s.status_line(), "bold")]
        for name in tables:
            parts.append(self.s.rich_table(name, per_table))
        if trace:
            parts.append(line("trace_pipe:", "bold"))
            parts.extend(line(t) for t in trace)
        if logs:
            parts.append(line("aya-log:", "bold"))
            parts.extend(line(t) for t in logs)
        return Group(*parts)

    def final(self) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.stop()
        for line in self.s.summary_lines():
            click.echo(line)


COMMANDS = [load_cmd]

