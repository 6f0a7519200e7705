"""Sections, symbols, relocations and instruction bytes checked against llvm-objdump-19 (-h, -t, -r, -d)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tinyaya.isa import encode
from tinyaya.obj import Object

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "obj"
OBJECTS = sorted(p.name for p in FIXTURES.glob("*.o"))
OBJDUMP = shutil.which("llvm-objdump-19")

pytestmark = pytest.mark.skipif(OBJDUMP is None, reason="llvm-objdump-19 is not installed")


def objdump(*args: str) -> str:
    assert OBJDUMP is not None
    return subprocess.run([OBJDUMP, *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("name", OBJECTS)
def test_sections(name: str) -> None:
    obj = Object.from_file(FIXTURES / name)
    rows = re.findall(r"^\s*(\d+) (\S+)\s+([0-9a-f]{8}) ", objdump("-h", str(FIXTURES / name)), re.M)
    assert rows, "objdump listed no sections"
    assert [(int(i), n, int(s, 16)) for i, n, s in rows] == [
        (s.index, s.name, s.size) for s in obj.sections if s.index]


@pytest.mark.parametrize("name", OBJECTS)
def test_symbols(name: str) -> None:
    obj = Object.from_file(FIXTURES / name)
    out = objdump("-t", str(FIXTURES / name)).split("SYMBOL TABLE:\n", 1)[1]
    rows = [re.match(r"([0-9a-f]{16}) (.{7}) (\S+)\t([0-9a-f]{16}) ?(.*)$", line) for line in out.splitlines()
            if line.strip()]
    theirs = [(int(m[1], 16), int(m[4], 16), m[5]) for m in rows if m]
    assert len(theirs) == len(obj.symbols) - 1
    assert theirs == [(s.value, s.size, s.name) for s in obj.symbols[1:]]


@pytest.mark.parametrize("name", OBJECTS)
def test_relocations(name: str) -> None:
    obj = Object.from_file(FIXTURES / name)
    theirs: dict[str, list[tuple[int, str, str]]] = {}
    current = None
    for line in objdump("-r", str(FIXTURES / name)).splitlines():
        if m := re.match(r"RELOCATION RECORDS FOR \[(.*)\]:", line):
            current = theirs.setdefault(m[1], [])
        elif current is not None and (m := re.match(r"([0-9a-f]{16}) (\S+)\s+(\S*)", line)):
            current.append((int(m[1], 16), m[2], m[3]))
    mine = {obj.sections[i].name: [(r.offset, r.type_name, r.symbol_name) for r in rels]
            for i, rels in obj.relocations.items()}
    assert mine == theirs


@pytest.mark.parametrize("name", OBJECTS)
def test_function_bytes(name: str) -> None:
    """Each function's instructions, re-encoded, are the bytes objdump prints under its label."""
    obj = Object.from_file(FIXTURES / name)
    text = objdump("-d", str(FIXTURES / name))
    seen = 0
    for section in re.split(r"\nDisassembly of section ", text)[1:]:
        sec_name, body = section.split(":\n", 1)
        for label, block in re.findall(r"\n[0-9a-f]{16} <([^>]+)>:\n(.*?)(?=\n\n|\Z)", body, re.S):
            raw = bytes.fromhex("".join(re.findall(r"^\s*\d+:\t([0-9a-f]{2}(?: [0-9a-f]{2})*)", block, re.M)))
            fn = next(f for f in obj.functions.values() if f.name == label and f.section_name == sec_name)
            assert encode(list(fn.insns), obj.big_endian) == raw, label
            seen += 1
    assert seen == len(obj.functions)
