"""Hypothesis fuzzing over mutated fixtures: parse, describe and link raise only specific typed errors.

The example count comes from TINYAYA_FUZZ_EXAMPLES (default 200 per test).
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.obj import (
    MalformedObject,
    Object,
    ObjError,
    RelocationError,
    UnknownProgramSection,
    describe,
    link_program,
)
from tinyaya.obj.elf import Elf

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "obj"
DATA = {p.name: p.read_bytes() for p in sorted(FIXTURES.glob("*.o"))}
EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "200"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _regions(data: bytes) -> list[tuple[int, int]]:
    """Interesting byte ranges: the ELF header, section headers, symbols, relocations, BTF, maps."""
    elf = Elf(data)
    out = [(0, 64), (elf.e_shoff, 64 * len(elf.sections))]
    for s in elf.sections:
        if s.index and s.type != 8 and s.size and (s.type in (2, 9, 4) or s.name in (".BTF", ".BTF.ext", "maps",
                                                                                       ".maps", "license")):
            out.append((s.offset, s.size))
    return out


REGIONS = {name: _regions(d) for name, d in DATA.items()}
INTERESTING = [0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


class Case:
    """A mutated fixture with a short repr (the mutations, not 30 kB of bytes)."""

    def __init__(self, name: str, data: bytes, edits: list[str]) -> None:
        self.name, self.data, self.edits = name, data, edits

    def __repr__(self) -> str:
        return f"Case({self.name!r}, {len(self.data)} bytes, edits={self.edits})"


@st.composite
def mutated(draw: st.DrawFn) -> Case:
    name = draw(st.sampled_from(sorted(DATA)))
    buf = bytearray(DATA[name])
    edits: list[str] = []
    regions = REGIONS[name]
    for _ in range(draw(st.integers(1, 6))):
        start, length = draw(st.sampled_from(regions))
        pos = start + draw(st.integers(0, max(0, length - 1)))
        kind = draw(st.sampled_from(["byte", "u32", "u16"]))
        if kind == "byte":
            buf[pos] = draw(st.integers(0, 255))
            edits.append(f"{pos}:={buf[pos]:#x}")
        elif pos + 4 <= len(buf):
            v = draw(st.sampled_from(INTERESTING) | st.integers(0, 0xFFFFFFFF))
            size = 4 if kind == "u32" else 2
            buf[pos:pos + size] = struct.pack("<I" if size == 4 else "<H", v & ((1 << (8 * size)) - 1))
            edits.append(f"{pos}:u{8 * size}={v:#x}")
    if draw(st.booleans()) and draw(st.booleans()):
        buf = buf[:draw(st.integers(0, len(buf)))]
        edits.append(f"truncate {len(buf)}")
    return Case(name, bytes(buf), edits)


def exercise(name: str, data: bytes) -> None:
    try:
        obj = Object.parse(data, name)
    except ObjError as e:
        assert not isinstance(e, MalformedObject), f"untyped failure caught by the safety net: {e}"
        str(e)
        return
    json.dumps(describe(obj))
    fds = {m: 3 + i for i, m in enumerate(obj.maps)}
    for prog in obj.programs:
        try:
            lp = link_program(obj, prog, map_fds=fds)
            lp.insn_bytes()
        except (RelocationError, UnknownProgramSection) as e:
            str(e)


@SETTINGS
@given(mutated())
def test_mutated_objects_raise_only_typed_errors(case: Case) -> None:
    exercise(case.name, case.data)


@SETTINGS
@given(st.sampled_from(sorted(DATA)), st.data())
def test_random_section_truncation(name: str, data: st.DataObject) -> None:
    """Shrink one section's size field: truncation inside a section rather than of the file."""
    raw = bytearray(DATA[name])
    elf = Elf(bytes(raw))
    sec = data.draw(st.sampled_from([s for s in elf.sections if s.index and s.size]))
    new = data.draw(st.integers(0, sec.size - 1))
    struct.pack_into(elf.e + "Q", raw, elf.e_shoff + 64 * sec.index + 32, new)
    exercise(name, bytes(raw))
