"""The ``tinyaya`` command group.

Every command has ``--help`` with an example; data commands take ``--json``.
Errors are one line on stderr and exit 2 (bad input) or 1 (failed
operation); ``--debug`` shows the Python traceback instead.
"""
from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from .errors import EXIT_BAD_INPUT, CliError, describe_exception, print_error


class TinyayaGroup(click.Group):
    """A click group whose errors are one line, not a usage block, and never a traceback."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            return super().main(args=argv, prog_name=prog_name or "tinyaya", complete_var=complete_var,
                                standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            print("tinyaya: aborted", file=sys.stderr)
            sys.exit(130)
        except click.UsageError as e:
            where = f"{e.ctx.command_path}: " if e.ctx is not None else ""
            print(f"tinyaya: error: {where}{e.format_message()}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except click.ClickException as e:
            print(f"tinyaya: error: {e.format_message()}", file=sys.stderr)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)
        except Exception as e:  # noqa: BLE001 - the one place every error becomes one line
            if debug:
                raise
            err = e if isinstance(e, CliError) else describe_exception(e)
            print_error(err)
            sys.exit(err.code)


@click.group(cls=TinyayaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tinyaya")
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """tinyaya: the Aya eBPF workflow from Python, on a bundled simulated Linux kernel.

    \b
    Example:
      tinyaya load examples/syscall_ebpf/syscall_ebpf-ebpf/syscall_ebpf.o --kprobe sys_enter
      tinyaya maps dump SYSCALL_LIST --json
    """


def _register() -> None:
    from . import cmd_inspect, cmd_load, cmd_maps, cmd_misc, cmd_prog

    for mod in (cmd_load, cmd_maps, cmd_prog, cmd_inspect, cmd_misc):
        for command in mod.COMMANDS:
            cli.add_command(command)


_register()


if __name__ == "__main__":
    cli()
