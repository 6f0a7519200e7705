"""How the CLI fails: one line on stderr naming what was wrong and where, then exit 2 (bad input) or 1
(a failed operation). A verifier rejection adds the log, with the failing instruction highlighted.
No traceback unless ``--debug`` is given."""
from __future__ import annotations

import errno
import os
import sys
from typing import NoReturn

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_BAD_INPUT, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail


def bad_input(message: str) -> NoReturn:
    raise CliError(message, EXIT_BAD_INPUT)


def failed(message: str, detail: str | None = None) -> NoReturn:
    raise CliError(message, EXIT_FAILED, detail)


def describe_exception(exc: BaseException) -> CliError:
    """Turn any exception from the layers below into the CLI's one-line error."""
    if isinstance(exc, CliError):
        return exc
    # Typed errors of the object loader and the API carry their own precise message.
    mod = type(exc).__module__
    name = type(exc).__name__
    log = getattr(exc, "verifier_log", None)
    if log:
        return CliError(f"{exc}", EXIT_FAILED, str(log))
    if mod.startswith("tinyaya.obj") or name in ("ParseError", "RelocationError", "AsmError", "BtfError"):
        return CliError(str(exc), EXIT_BAD_INPUT)
    if isinstance(exc, FileNotFoundError):
        return CliError(f"{exc.filename or exc}: no such file", EXIT_BAD_INPUT)
    if isinstance(exc, IsADirectoryError):
        return CliError(f"{exc.filename}: is a directory", EXIT_BAD_INPUT)
    if isinstance(exc, PermissionError) and exc.filename:
        return CliError(f"{exc.filename}: permission denied", EXIT_FAILED)
    if isinstance(exc, OSError) and exc.errno is not None:
        text = f"{exc.strerror or os.strerror(exc.errno)}"
        code_name = errno.errorcode.get(exc.errno, str(exc.errno))
        where = f"{exc.filename}: " if exc.filename else ""
        return CliError(f"{where}{text} ({code_name})", EXIT_FAILED)
    if mod.startswith("tinyaya"):
        # Aya-named API errors (ProgramError, MapError, ...) are failed operations unless they are about input.
        bad = any(w in name for w in ("NotFound", "Invalid", "Unknown", "Parse", "Relocation", "Workload", "Replay",
                                      "Config", "Endianness"))
        return CliError(str(exc) or name, EXIT_BAD_INPUT if bad else EXIT_FAILED)
    return CliError(f"internal error: {name}: {exc} (rerun with --debug for the traceback)", EXIT_FAILED)


def print_error(err: CliError) -> None:
    from rich.console import Console

    msg = err.message.replace("\n", " ")
    print(f"tinyaya: error: {msg}", file=sys.stderr)
    if err.detail:
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        for line in err.detail.rstrip("\n").splitlines():
            style = "bold red" if _is_failing_line(line) else None
            console.print(line, style=style, markup=False)


def _is_failing_line(line: str) -> bool:
    # The verifier's error lines follow the instruction they refer to; highlight the error wording.
    keys = ("invalid", "!read_ok", "unreachable", "back-edge", "out of range", "not allowed", "prohibited",
            "unknown", "expected", "Unreleased", "too large", "R0 ", "misaligned")
    return any(k in line for k in keys) and not line.startswith(("processed", ";"))
