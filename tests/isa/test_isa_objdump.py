"""The disassembler against llvm-objdump-19, line for line, on the committed fixtures.

``tests/fixtures/isa`` holds clang-19 objects (C sources built for -mcpu=v1..v4 and one
big-endian build) and ``encodings.o`` (every opcode byte and edge-case fields, from
gen_encodings.py), each with two recorded dumps: ``X.objdump`` (``llvm-objdump-19 -d``, LLVM's
default decoder without ALU32, matched by ``mcpu="generic"``) and ``X.mcpu4.objdump``
(``--mcpu=v4``). The objects are read minimally with pyelftools; the address and hex-byte
columns of the dumps are dropped. For the C objects the ``<sym+off>`` jump annotations are
compared too, through the ``target_label`` hook.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from tinyaya.isa import decode, disasm_lines

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "isa"
OBJECTS = sorted(FIXTURES.glob("*.o"))
DUMPS = [(obj, kind) for obj in OBJECTS for kind in ("objdump", "mcpu4.objdump")]

_LINE = re.compile(r"^\s*(\d+):\t(?:(?:[0-9a-f]{2} )*[0-9a-f]{2}\t)?(.*)$")
_ANNOTATION = re.compile(r" <[^<>]*>$")


def parse_objdump(text: str) -> dict[str, list[tuple[int, str]]]:
    """Section name -> [(slot, text)] from ``llvm-objdump -d`` output."""
    out: dict[str, list[tuple[int, str]]] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("Disassembly of section "):
            section = line[len("Disassembly of section "):].rstrip(":")
            out[section] = []
            continue
        m = _LINE.match(line)
        if m and section is not None:
            out[section].append((int(m.group(1)), m.group(2).rstrip()))
    return out


class ObjectCode:
    """Executable sections of an object, and its symbols for objdump-style ``<sym+off>`` labels."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as f:
            elf = ELFFile(f)
            self.big_endian = not elf.little_endian
            self.sections: dict[str, bytes] = {}
            index: dict[int, str] = {}
            for i, sec in enumerate(elf.iter_sections()):
                if sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and sec["sh_size"]:
                    self.sections[sec.name] = sec.data()
                    index[i] = sec.name
            self.symbols: dict[str, list[tuple[int, int, str]]] = {name: [] for name in self.sections}
            symtab = elf.get_section_by_name(".symtab")
            for sym in symtab.iter_symbols() if isinstance(symtab, SymbolTableSection) else []:
                shndx = sym["st_shndx"]
                if not isinstance(shndx, int) or shndx not in index:
                    continue
                kind = sym["st_info"]["type"]
                if kind == "STT_FUNC":
                    self.symbols[index[shndx]].append((sym["st_value"], 1, sym.name))
                elif kind == "STT_SECTION":
                    self.symbols[index[shndx]].append((sym["st_value"], 0, index[shndx]))

    def label(self, section: str):  # type: ignore[no-untyped-def]
        syms = sorted(self.symbols[section])

        def target_label(slot: int) -> str | None:
            addr = (slot * 8) & 0xFFFFFFFFFFFFFFFF
            best = None
            for value, _, name in syms:
                if value <= addr:
                    best = (value, name)
            if best is None:
                return None
            return best[1] if addr == best[0] else f"{best[1]}+0x{addr - best[0]:x}"

        return target_label


@pytest.mark.parametrize("obj,kind", DUMPS, ids=[f"{o.stem}-{k}" for o, k in DUMPS])
def test_matches_recorded_objdump(obj: Path, kind: str) -> None:
    code = ObjectCode(obj)
    recorded = parse_objdump((FIXTURES / f"{obj.stem}.{kind}").read_text())
    mcpu = "v4" if kind.startswith("mcpu4") else "generic"
    assert set(recorded) == set(code.sections)
    compared = 0
    for section, data in code.sections.items():
        insns = decode(data, big_endian=code.big_endian)
        with_labels = obj.stem != "encodings"
        mine = disasm_lines(insns, mcpu=mcpu, target_label=code.label(section) if with_labels else None)
        theirs = recorded[section] if with_labels else [(pc, _ANNOTATION.sub("", t)) for pc, t in recorded[section]]
        mismatches = [(pc, t, dict(mine).get(pc)) for pc, t in theirs if dict(mine).get(pc) != t]
        assert not mismatches[:20], f"{obj.name} [{section}] {len(mismatches)} lines differ, e.g. (pc, objdump, ours)"
        assert [pc for pc, _ in mine] == [pc for pc, _ in theirs]
        compared += len(theirs)
    assert compared > 0


def test_fixture_set_covers_the_isa() -> None:
    """The C fixtures really contain the v3/v4 features they claim (guards against a silent rebuild change)."""
    text = "".join((FIXTURES / f"{o.stem}.mcpu4.objdump").read_text() for o in OBJECTS if o.stem != "encodings")
    for needle in ("s/=", "(s8)", "(s32)", "*(s8 *)", "*(s16 *)", "bswap16", "bswap64", "be16", "be32",
                   "may_goto", "gotol", "atomic_fetch_add((u32", "atomic_fetch_xor((u64", "xchg32_32", "cmpxchg_64",
                   "lock *(u32 *)", "if w", "skb[", " ll", "call 0x", "call -0x1", "s>>="):
        assert needle in text, needle
    assert any("bpfeb" in o.name for o in OBJECTS)


@pytest.mark.skipif(shutil.which("llvm-objdump-19") is None, reason="llvm-objdump-19 is not installed")
def test_recorded_dumps_are_current() -> None:
    """The recorded dumps are what llvm-objdump-19 prints for the committed objects today."""
    for obj in OBJECTS:
        extra = ["-z", "--no-show-raw-insn"] if obj.stem == "encodings" else []
        for kind, flags in (("objdump", []), ("mcpu4.objdump", ["--mcpu=v4"])):
            live = subprocess.run(["llvm-objdump-19", "-d", *extra, *flags, obj.name], cwd=FIXTURES,
                                  capture_output=True, text=True, check=True).stdout
            assert live == (FIXTURES / f"{obj.stem}.{kind}").read_text(), f"{obj.name} {kind}: run make -C {FIXTURES}"
