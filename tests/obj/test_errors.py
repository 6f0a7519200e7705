"""Malformed objects give typed errors that name the file, section and symbol (issue 3, item 7)."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tinyaya.obj import (
    BtfError,
    InvalidElf,
    InvalidKernelVersion,
    InvalidMapDefinition,
    InvalidRelocationOffset,
    InvalidSymbol,
    MalformedObject,
    MissingLicenseNullTerminator,
    Object,
    ObjError,
    ParseError,
    RelocationError,
    SectionError,
    SymbolError,
    UnknownProgramSection,
    link_program,
)

from .elfpatch import Patch

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "obj"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_err(data: bytes, cls: type[ObjError], path: str = "bad.o", strict: bool = False) -> ObjError:
    with pytest.raises(cls) as e:
        Object.parse(data, path, strict=strict)
    assert not isinstance(e.value, MalformedObject), e.value
    assert path in str(e.value)
    return e.value


def test_not_elf() -> None:
    parse_err(b"", InvalidElf)
    parse_err(b"\x7fELF", InvalidElf)
    parse_err(b"hello world, this is not an object file at all" * 3, InvalidElf)


def test_header_checks() -> None:
    data = raw("nosym.o")
    parse_err(Patch(data).put("B", 4, 1).bytes(), InvalidElf)  # ELFCLASS32
    parse_err(Patch(data).put("B", 5, 3).bytes(), InvalidElf)  # bad EI_DATA
    parse_err(Patch(data).put("H", 16, 2).bytes(), InvalidElf)  # ET_EXEC
    parse_err(Patch(data).put("H", 18, 62).bytes(), InvalidElf)  # EM_X86_64
    parse_err(Patch(data).put("Q", 40, len(data) + 8).bytes(), InvalidElf)  # e_shoff past the end
    parse_err(Patch(data).put("H", 62, 200).bytes(), InvalidElf)  # e_shstrndx out of range


def test_e_machine_zero_from_old_toolchains() -> None:
    data = raw("legacy_aya.o")
    old = Object.parse(Patch(data).put("H", 18, 0).bytes())
    new = Object.parse(data)
    assert old.e_machine == 0 and new.e_machine == 247
    assert old.programs == new.programs and old.maps == new.maps


@pytest.mark.parametrize("name", ["calls.o", "globals.o", "legacy_aya.o", "calls.bpfeb.o", "btf_maps.o"])
def test_rela_sections_link_like_rel(name: str) -> None:
    data = raw(name)
    rela = Object.parse(Patch(data).to_rela().bytes())
    rel = Object.parse(data)
    assert any(s.type == 4 for s in rela.sections) and not any(s.type == 4 for s in rel.sections)
    fds = {n: 3 + i for i, n in enumerate(rel.maps)}
    assert rela.maps == rel.maps
    for prog in rel.programs:
        assert link_program(rela, prog, map_fds=fds).insns == link_program(rel, prog, map_fds=fds).insns


def test_section_data_past_end() -> None:
    e = parse_err(Patch(raw("calls.o")).section_field("xdp", "size", 1 << 40).bytes(), SectionError)
    assert e.section == "xdp"


def test_symbol_section_index_out_of_range() -> None:
    e = parse_err(Patch(raw("calls.o")).symbol_field("square", "shndx", 999).bytes(), InvalidSymbol)
    assert e.symbol == "square"


def test_relocation_symbol_out_of_range() -> None:
    p = Patch(raw("calls.o"))
    off = p.reloc_off(".relxdp", 0)
    p.put("Q", off + 8, (5000 << 32) | 10)
    e = parse_err(p.bytes(), SymbolError)
    assert e.section == ".relxdp" and "5000" in str(e)


@pytest.mark.parametrize(("new_offset", "what"), [(4, "unaligned"), (1 << 20, "past the end")])
def test_relocation_offset(new_offset: int, what: str) -> None:
    p = Patch(raw("calls.o"))
    p.put("Q", p.reloc_off(".relxdp", 0), new_offset)
    e = parse_err(p.bytes(), InvalidRelocationOffset)
    assert isinstance(e, RelocationError) and e.section == "xdp" and what in str(e)
    assert e.symbol == "global_helper"


def test_relocation_not_on_ld_imm64_or_call() -> None:
    p = Patch(raw("legacy_aya.o"))
    p.put("Q", p.reloc_off(".relkprobe", 0), 0)  # onto insn 0, an ALU/store, not ld_imm64
    obj = Object.parse(p.bytes(), "x.o")
    with pytest.raises(InvalidRelocationOffset, match="not on an ld_imm64 or call") as e:
        link_program(obj, "syscall_ebpf", map_fds={n: 3 for n in obj.maps})
    assert "x.o" in str(e.value) and e.value.symbol == "SYSCALL_LIST"


def test_legacy_map_definition_too_short() -> None:
    e = parse_err(Patch(raw("legacy_aya.o")).symbol_field("PINNED", "size", 12).bytes(), InvalidMapDefinition)
    assert e.symbol == "PINNED" and e.section == "maps" and "20" in str(e)


def test_legacy_map_definition_past_end() -> None:
    e = parse_err(Patch(raw("legacy_aya.o")).symbol_field("EVENTS", "value", 70).bytes(), InvalidMapDefinition)
    assert e.symbol == "EVENTS"


def test_legacy_maps_zero_symbol_sizes_use_the_stride() -> None:
    data = raw("legacy_aya.o")
    p = Patch(data)
    for name in ("SYSCALL_LIST", "PINNED", "EVENTS"):
        p.symbol_field(name, "size", 0)
    assert Object.parse(p.bytes()).maps == Object.parse(data).maps


@pytest.mark.parametrize(("name", "size", "expect"), [
    ("legacy_libbpf.o", 20, {"counts": (6, 4, 8, 4, 0), "lru": (9, 8, 16, 128, 2)}),
    ("legacy_iproute2.o", 36, {"acc_map": (2, 4, 4, 2, 0)}),
    ("legacy_aya.o", 28, {"SYSCALL_LIST": (1, 4, 4, 1024, 0), "PINNED": (2, 4, 8, 16, 0), "EVENTS": (4, 4, 4, 0, 0)}),
])
def test_legacy_layouts(name: str, size: int, expect: dict[str, tuple[int, ...]]) -> None:
    obj = Object.parse(raw(name))
    sec = obj.section_by_name("maps")
    assert sec is not None and sec.size == size * len(expect)
    got = {m.name: (int(m.map_type), m.key_size, m.value_size, m.max_entries, m.map_flags)
           for m in obj.maps.values()}
    assert got == expect
    if name == "legacy_aya.o":
        assert obj.maps["PINNED"].pinning.name == "BY_NAME" and obj.maps["PINNED"].id == 7
    if name == "legacy_iproute2.o":
        assert obj.maps["acc_map"].pinning.name == "GLOBAL_NS"


def test_license_without_nul() -> None:
    p = Patch(raw("legacy_aya.o"))
    sec = p.elf.section_by_name("license")
    assert sec is not None
    p.data[sec.offset + sec.size - 1] = ord("x")
    parse_err(p.bytes(), MissingLicenseNullTerminator)


def test_version_size() -> None:
    parse_err(Patch(raw("legacy_aya.o")).section_field("version", "size", 3).bytes(), InvalidKernelVersion)


def test_license_and_version() -> None:
    obj = Object.parse(raw("legacy_aya.o"))
    assert obj.license == "Dual MIT/GPL" and obj.kernel_version == 0x060000
    assert obj.programs["syscall_ebpf"].license == "Dual MIT/GPL"
    assert Object.parse(raw("calls.o")).kernel_version is None


def test_unknown_program_section() -> None:
    p = Patch(raw("legacy_iproute2.o"))
    shstr = p.elf.sections[p.elf.shstrndx]
    table = bytes(p.data[shstr.offset:shstr.offset + shstr.size])
    at = table.index(b"\0action\0") + 1
    p.data[shstr.offset + at:shstr.offset + at + 6] = b"bogus_"
    e = parse_err(p.bytes(), UnknownProgramSection, strict=True)
    assert e.section == "bogus_"
    # by default the program is kept (as libbpf keeps it, type UNSPEC) and refused at link time
    obj = Object.parse(p.bytes(), "bad.o")
    prog = obj.programs["act_main"]
    assert not prog.section.known and int(prog.section.prog_type) == 0 and obj.warnings
    with pytest.raises(UnknownProgramSection, match="bogus_") as e2:
        link_program(obj, "act_main", map_fds={})
    assert "bad.o" in str(e2.value)


def test_bad_btf_names_section() -> None:
    p = Patch(raw("calls.o"))
    sec = p.elf.section_by_name(".BTF")
    assert sec is not None
    p.put("I", sec.offset + 16, 1 << 30)  # str_off far away
    e = parse_err(p.bytes(), BtfError)
    assert e.section == ".BTF" and "Invalid section offset" in str(e)


def test_errors_are_picklable_and_carry_fields() -> None:
    with pytest.raises(ParseError) as e:
        Object.parse(b"junk", "junk.o")
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is type(e.value) and str(again) == str(e.value)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.o")))
def test_truncation_at_every_offset(name: str) -> None:
    """Every prefix of every fixture parses or raises a specific typed error."""
    data = raw(name)
    step = 1 if len(data) <= 16384 else max(1, len(data) // 2000)
    for n in range(0, len(data), step):
        try:
            obj = Object.parse(data[:n], name)
        except ObjError as e:
            assert not isinstance(e, MalformedObject), f"{n}: {e}"
            continue
        for prog in obj.programs:  # a prefix that parses must also link or fail typed
            try:
                link_program(obj, prog, map_fds={m: 3 for m in obj.maps})
            except (RelocationError, UnknownProgramSection):
                pass


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.o")))
def test_every_section_truncated(name: str) -> None:
    """Each section cut short (size 0, 1, half, one byte less): parsed, or a specific typed error."""
    data = raw(name)
    elf = Patch(data).elf
    for sec in elf.sections[1:]:
        for size in sorted({0, 1, sec.size // 2, max(sec.size - 1, 0)}):
            if size >= sec.size:
                continue
            p = Patch(data)
            p.put("Q", elf.e_shoff + 64 * sec.index + 32, size)
            try:
                obj = Object.parse(p.bytes(), name)
            except ObjError as e:
                assert not isinstance(e, MalformedObject), f"{sec.name} at {size}: {e}"
                assert name in str(e)
                continue
            for prog in obj.programs:
                try:
                    link_program(obj, prog, map_fds={m: 3 for m in obj.maps})
                except (RelocationError, UnknownProgramSection):
                    pass
