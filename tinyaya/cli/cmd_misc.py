"""``tinyaya run|trace|ksyms|workloads|conformance-plugin|completion``."""
from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
from pathlib import Path

import click

from .errors import bad_input, failed
from .pins import ensure_file


def _hex_or_file(value: str | None, what: str) -> bytes | None:
    """``@FILE`` or a path reads bytes from a file; anything else is hex (spaces allowed)."""
    if value is None:
        return None
    if value.startswith("@") or (os.path.sep in value and Path(value).exists()):
        return ensure_file(value.lstrip("@")).read_bytes()
    text = value.replace(" ", "").replace(":", "")
    if text.lower().startswith("0x"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        bad_input(f"--{what}: not hex bytes and not a file: {value!r}")


@click.command("run")
@click.argument("obj")
@click.option("--program", metavar="NAME", help="The program to run (default: the only one).")
@click.option("--data", metavar="HEX|@FILE", help="Packet data (data_in).")
@click.option("--ctx", metavar="HEX|@FILE", help="Context (ctx_in).")
@click.option("--repeat", type=click.IntRange(min=0), default=1, show_default=True, help="Runs (the duration is per run).")
@click.option("--backend", type=click.Choice(["sim", "linux"]), default="sim", show_default=True)
@click.option("--engine", type=click.Choice(["interp", "compiled", "native"]), default=None,
              help="How the simulated kernel runs the program (default: $TINYAYA_ENGINE, else compiled).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def run_cmd(obj: str, program: str | None, data: str | None, ctx: str | None, repeat: int, backend: str,
            engine: str | None, as_json: bool) -> None:
    """Load a program and run it once (BPF_PROG_TEST_RUN), printing retval, data_out and duration.

    \b
    Example:
      tinyaya run xdp.o --program xdp_pass --data 'ff ff ff ff ff ff 00 11 22 33 44 55 08 00'
    """
    from ..programs import EbpfLoader
    from .kernels import open_kernel

    ensure_file(obj)
    din = _hex_or_file(data, "data")
    cin = _hex_or_file(ctx, "ctx")
    kernel = open_kernel(backend, engine=engine)
    bpf = EbpfLoader(kernel=kernel).load_file(obj)
    names = [n for n, _ in bpf.programs()]
    if program is None:
        if len(names) != 1:
            bad_input(f"{obj}: has {len(names)} programs ({', '.join(names)}); choose one with --program")
        program = names[0]
    if program not in names:
        bad_input(f"{obj}: no program named {program!r} (programs: {', '.join(names)})")
    prog = bpf.program_mut(program)
    prog.load()
    res = prog.test_run(data=din, ctx=cin, repeat=repeat)
    out = {"program": program, "retval": res.retval, "duration_ns": res.duration, "data_out": res.data_out.hex(),
           "ctx_out": res.ctx_out.hex()}
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"retval: {res.retval} ({res.retval:#x})")
    click.echo(f"duration: {res.duration} ns")
    if res.data_out:
        click.echo(f"data_out: {res.data_out.hex(' ')}")
    if res.ctx_out:
        click.echo(f"ctx_out: {res.ctx_out.hex(' ')}")


@click.command("trace")
@click.option("--follow", "-f", is_flag=True, help="Keep following while a load runs (Ctrl-C stops).")
@click.option("--lines", "-n", type=click.IntRange(min=0), default=0, help="Only the last N lines.")
def trace_cmd(follow: bool, lines: int) -> None:
    """Print the trace_pipe output (bpf_trace_printk, runtime faults) of the last load.

    \b
    Example:
      tinyaya trace -f
    """
    from .state import LoadLock, state_dir

    path = state_dir() / "trace_pipe"
    if not path.exists():
        if not follow:
            return
        path.touch(mode=0o600)
    with open(path) as f:
        existing = f.readlines()
        for line in existing[-lines:] if lines else existing:
            click.echo(line.rstrip("\n"))
        while follow:
            line = f.readline()
            if line:
                click.echo(line.rstrip("\n"))
                continue
            if LoadLock().holder() is None:
                return
            time.sleep(0.2)


@click.command("ksyms")
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def ksyms_cmd(pattern: str | None, as_json: bool) -> None:
    """List the simulated kernel's functions (kallsyms) that probes can attach to; PATTERN is a glob.

    \b
    Example:
      tinyaya ksyms 'vfs_*'
    """
    from ..sim_kernel.tracing.kallsyms import kernel_functions

    rows = []
    for fn in kernel_functions():
        if pattern and not fnmatch.fnmatch(fn.name, pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"):
            continue
        rows.append({"address": f"{fn.address:016x}", "name": fn.name, "signature": fn.signature})
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['address']} T {r['name']:<40} {r['signature']}")


@click.command("workloads")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def workloads_cmd(as_json: bool) -> None:
    """List the built-in simulated workloads (use with `tinyaya load --workload NAME`).

    \b
    Example:
      tinyaya workloads
    """
    from ..sim_kernel.workloads import list_workloads

    rows = [{"name": w.name, "description": w.description} for w in list_workloads()]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['name']:<16} {r['description']}")


@click.command("conformance-plugin", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def conformance_plugin_cmd(args: tuple[str, ...]) -> None:
    """bpf_conformance plugin: program as base16 on stdin, memory as base16 in the first argument; prints r0.

    \b
    Example:
      echo b7000000010000009500000000000000 | tinyaya conformance-plugin ""
    """
    from ..conformance_plugin import main as plugin_main

    sys.exit(plugin_main(list(args)))


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_cmd(shell: str) -> None:
    """Print the shell completion script.

    \b
    Example:
      eval "$(tinyaya completion bash)"
    """
    from click.shell_completion import get_completion_class

    from .main import cli

    cls = get_completion_class(shell)
    if cls is None:
        failed(f"no completion for {shell}")
    comp = cls(cli, {}, "tinyaya", "_TINYAYA_COMPLETE")
    click.echo(comp.source())


COMMANDS = [run_cmd, trace_cmd, ksyms_cmd, workloads_cmd, conformance_plugin_cmd, completion_cmd]
