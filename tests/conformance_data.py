"""The bpf_conformance suite's ``.data`` files, parsed (shared by the isa, vm and differential tests).

The format (Alan-Jowett/bpf_conformance ``src/bpf_test_parser.cc`` and ``/work/shared/README.md``):
a file is ``# comment`` header lines, then sections that each start with a ``-- name`` line:

* ``-- asm``: the program in the suite's assembler syntax (``tinyaya.isa.assemble`` reads it);
* ``-- raw``: instruction words that replace the assembled program, either one 64-bit word per
  token (``0x5566778800000018``, the slot's bytes read as a little-endian u64) or eight byte
  tokens per line (``07 00 01 00 01 00 00 00``);
* ``-- mem``: the input memory as hex bytes (r1 points to it, r2 holds its length);
* ``-- result``: the expected r0; ``-- error``: the expected error text (may be empty);
* ``-- c``: the C source the program was compiled from; ``-- no register offset``: a note.

A directive the suite's parser does not know makes it skip the file; ``unknown_directives``
records them so a runner can do the same. Files under ``negative/`` are expected to fail
(to assemble, load or run); ``ConformanceTest.negative`` says so.

Usage: ``conformance_dir()`` is the suite's directory or None (tests skip with a reason), and
``load_all()`` parses every file. Import it as ``conformance_data`` with ``tests/`` on sys.path
(``sys.path.insert(0, str(Path(__file__).resolve().parents[1]))`` from a ``tests/<layer>/`` module,
as tests/isa does), or as ``tests.conformance_data`` under ``python -m pytest`` from the repo root.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from tinyaya.isa import Insn, assemble, decode

KNOWN_SECTIONS = ("asm", "raw", "mem", "result", "error", "c", "no register offset")


class ConformanceFormatError(ValueError):
    """A ``.data`` file this parser cannot read (bad hex, bad number)."""


def conformance_dir() -> Path | None:
    """The suite's directory: ``$TINYAYA_CONFORMANCE_DIR``, else ``../shared/conformance`` beside the repo."""
    env = os.environ.get("TINYAYA_CONFORMANCE_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "conformance")
    for c in candidates:
        if c.is_dir() and any(c.glob("*.data")):
            return c
    return None


@dataclass(frozen=True)
class ConformanceTest:
    path: Path
    name: str  # relative to the suite directory, without ".data": "add", "negative/invalid_label"
    asm: str | None = None
    raw: tuple[Insn, ...] | None = None
    mem: bytes = b""
    result: int | None = None
    error: str | None = None  # None: no "-- error" section; "" : the section is present but empty
    c_source: str | None = None
    notes: str | None = None  # the "-- no register offset" section
    unknown_directives: tuple[str, ...] = field(default_factory=tuple)

    @property
    def negative(self) -> bool:
        return self.name.startswith("negative/")

    @property
    def expects_error(self) -> bool:
        return self.error is not None

    def program(self) -> list[Insn]:
        """The instructions under test: ``-- raw`` if given, else the assembled ``-- asm``.

        Raises ``tinyaya.isa.AsmError`` when the assembly is invalid (several negative tests).
        """
        if self.raw is not None:
            return list(self.raw)
        return assemble(self.asm or "")


def _parse_raw(lines: list[str], path: Path) -> tuple[Insn, ...]:
    data = bytearray()
    for line in lines:
        tokens = line.split()
        if not tokens:
            continue
        if all(re.fullmatch(r"[0-9a-fA-F]{2}", t) for t in tokens):
            data += bytes(int(t, 16) for t in tokens)
            continue
        for t in tokens:
            try:
                value = int(t, 16) if t.lower().startswith("0x") else int(t)
            except ValueError:
                raise ConformanceFormatError(f"{path}: bad raw word {t!r}") from None
            if not 0 <= value < 1 << 64:
                raise ConformanceFormatError(f"{path}: raw word out of range {t!r}")
            data += struct.pack("<Q", value)
    if len(data) % 8:
        raise ConformanceFormatError(f"{path}: raw section is {len(data)} bytes, not whole instructions")
    return tuple(decode(bytes(data)))


def parse_data(text: str, path: Path | str = "<string>", name: str | None = None) -> ConformanceTest:
    """Parse the text of one ``.data`` file."""
    p = Path(path)
    sections: dict[str, list[str]] = {}
    unknown: list[str] = []
    current: str | None = None
    for raw_line in text.splitlines():
        line = raw_line.rstrip("\r")
        if line.startswith("--"):
            directive = line[2:].strip()
            if directive in KNOWN_SECTIONS:
                current = directive
                sections.setdefault(current, [])
            else:
                unknown.append(directive)
                current = None
            continue
        if current is not None:
            sections[current].append(line)

    def body(key: str) -> str | None:
        return "\n".join(sections[key]).strip("\n") if key in sections else None

    result = None
    res_text = body("result")
    if res_text is not None and res_text.strip():
        last = [ln.strip() for ln in res_text.splitlines() if ln.strip()][-1]
        try:
            result = int(last, 16) if last.lower().startswith("0x") else int(last)
        except ValueError:
            raise ConformanceFormatError(f"{p}: bad result {last!r}") from None
    mem = b""
    mem_text = body("mem")
    if mem_text:
        try:
            mem = bytes(int(t, 16) for t in mem_text.split())
        except ValueError:
            raise ConformanceFormatError(f"{p}: bad memory byte in {mem_text!r}") from None
    error = body("error")
    return ConformanceTest(
        path=p,
        name=name if name is not None else p.stem,
        asm=body("asm"),
        raw=_parse_raw(sections["raw"], p) if "raw" in sections else None,
        mem=mem,
        result=result,
        error=error.strip() if error is not None else None,
        c_source=body("c"),
        notes=body("no register offset"),
        unknown_directives=tuple(unknown),
    )


def load(path: Path, root: Path | None = None) -> ConformanceTest:
    root = root or path.parent
    name = path.relative_to(root).with_suffix("").as_posix()
    return parse_data(path.read_text(), path, name)


def data_files(root: Path | None = None, negative: bool = True) -> list[Path]:
    """Every ``.data`` file of the suite, sorted (``negative/`` included unless ``negative=False``)."""
    root = root or conformance_dir()
    if root is None:
        return []
    files = sorted(root.glob("*.data"))
    if negative:
        files += sorted((root / "negative").glob("*.data"))
    return files


def load_all(root: Path | None = None, negative: bool = True) -> list[ConformanceTest]:
    root = root or conformance_dir()
    if root is None:
        return []
    return [load(f, root) for f in data_files(root, negative)]
