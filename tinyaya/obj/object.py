"""``Object``: an eBPF ELF object parsed into programs, functions, maps, BTF and relocations.

Follows aya-obj ``Object::parse`` (obj.rs) and libbpf ``bpf_object__elf_collect``:
the ``license`` and ``version`` sections, programs as the function symbols of
executable sections other than ``.text`` (a section without one is a single
program named after it), ``.text`` functions as subprograms, maps from
``maps``/``.maps``/data sections, and ``.BTF``/``.BTF.ext``.
"""
from __future__ import annotations

import bisect
import dataclasses
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..isa import InsnDecodeError, decode
from .btf import Btf, BtfExt, BtfKind
from .elf import SHT_NOBITS, SHT_PROGBITS, Elf, Section
from .errors import (
    BtfError,
    InvalidElf,
    InvalidGlobalData,
    InvalidKernelVersion,
    InvalidLicense,
    InvalidProgramCode,
    InvalidRelocationOffset,
    InvalidSymbol,
    MissingLicenseNullTerminator,
    ObjError,
    ParseError,
    SymbolNotFound,
)
from .externs import parse_kconfig
from .maps import (
    is_data_section,
    is_legacy_maps_section,
    is_struct_ops_section,
    parse_btf_maps,
    parse_data_map,
    parse_legacy_maps,
    parse_struct_ops,
)
from .model import (
    CoreReloRef,
    Endianness,
    FuncInfo,
    Function,
    GlobalVariable,
    LineInfo,
    MapDef,
    Program,
    Relocation,
    Symbol,
)
from .sections import ProgramSection, UnknownProgramSection, parse_program_section, unknown_program_section

KERNEL_VERSION_ANY = 0xFFFF_FFFE


class MalformedObject(ParseError):
    """A malformation no specific check caught (a safety net: parse never raises anything untyped)."""


@dataclass
class Object:
    """A parsed eBPF object. Mutable only through ``override_global``."""

    endianness: Endianness
    license: str
    kernel_version: int | None
    programs: dict[str, Program]
    maps: dict[str, MapDef]
    functions: dict[tuple[int, int], Function]
    symbols: list[Symbol]
    relocations: dict[int, tuple[Relocation, ...]]
    sections: list[Section]
    btf: Btf | None = None
    btf_ext: BtfExt | None = None
    variables: dict[str, GlobalVariable] = field(default_factory=dict)
    text_section_index: int | None = None
    path: str | None = None
    e_machine: int = 247
    warnings: list[str] = field(default_factory=list)
    ksyms: dict[str, int] = field(default_factory=dict)  # __ksym extern -> its local BTF type id
    _function_index: dict[int, tuple[list[int], list[Function]]] | None = field(
        default=None, init=False, repr=False, compare=False)

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes, path: str | None = None, *, strict: bool = False) -> Object:
        """Parse object bytes. Raises only ``ParseError``/``RelocationError`` subclasses.

        An executable section whose name no program table knows becomes a program of
        kind ``"unknown"`` (``BPF_PROG_TYPE_UNSPEC``, as libbpf keeps it) that
        ``link_program`` refuses with ``UnknownProgramSection``; ``strict=True`` raises
        ``UnknownProgramSection`` at parse time instead (aya-obj's behaviour).
        """
        try:
            return _parse(bytes(data), path, strict)
        except ObjError as e:
            if e.path is None:
                e.path = path
            raise
        except (struct.error, IndexError, ValueError, KeyError, UnicodeError, ArithmeticError, RecursionError,
                MemoryError, TypeError, AttributeError) as e:
            raise MalformedObject(f"malformed object ({type(e).__name__}: {e})", path=path)

    @classmethod
    def from_file(cls, path: str | Path, *, strict: bool = False) -> Object:
        """Read and parse a file (the one I/O convenience of this package)."""
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise InvalidElf(f"cannot read object: {e.strerror or e}", path=str(path)) from None
        return cls.parse(data, str(path), strict=strict)

    # --- queries ---------------------------------------------------------------------------

    @property
    def big_endian(self) -> bool:
        return self.endianness is Endianness.BIG

    def section(self, index: int) -> Section | None:
        return self.sections[index] if 0 < index < len(self.sections) else None

    def section_by_name(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def function_at(self, section_index: int, address: int) -> Function | None:
        return self.functions.get((section_index, address))

    def function_containing(self, section_index: int, offset: int) -> Function | None:
        """The function whose code covers byte ``offset`` of the section."""
        if self._function_index is None:
            index: dict[int, tuple[list[int], list[Function]]] = {}
            for (sec, addr), fn in sorted(self.functions.items(), key=lambda kv: kv[0]):
                addrs_, fns_ = index.setdefault(sec, ([], []))
                addrs_.append(addr)
                fns_.append(fn)
            self._function_index = index
        addrs, fns = self._function_index.get(section_index, ([], []))
        i = bisect.bisect_right(addrs, offset) - 1
        if i >= 0 and offset < fns[i].address + fns[i].size:
            return fns[i]
        return None

    def program_function(self, name: str) -> Function:
        p = self.programs[name]
        return self.functions[(p.section_index, p.address)]

    @property
    def needs_core(self) -> bool:
        return bool(self.btf_ext and any(self.btf_ext.core_relos.values()))

    # --- global data -----------------------------------------------------------------------

    def override_global(self, name: str, value: bytes, *, must_exist: bool = True) -> Object:
        """Set a global variable's initial value (aya ``EbpfLoader::override_global``,
        aya-obj ``Object::patch_map_data``). Patches in place and returns self."""
        var = self.variables.get(name)
        if var is None:
            if must_exist:
                raise SymbolNotFound(f"global variable '{name}' not found", symbol=name, path=self.path)
            return self
        value = bytes(value)
        if len(value) != var.size:
            raise InvalidGlobalData(f"value is {len(value)} bytes but '{name}' is {var.size} bytes",
                                    section=var.section_name, symbol=name, path=self.path,
                                    sym_size=var.size, data_size=len(value))
        mdef = next((m for m in self.maps.values() if m.is_data and m.section_index == var.section_index), None)
        if mdef is None or mdef.data is None:
            raise SymbolNotFound(f"'{name}' is not in a global data section", symbol=name,
                                 section=var.section_name, path=self.path)
        buf = bytearray(mdef.data)
        buf[var.offset:var.offset + var.size] = value
        self.maps[mdef.name] = dataclasses.replace(mdef, data=bytes(buf))
        return self

    set_global = override_global


# --- parsing ------------------------------------------------------------------------------------


def _parse(data: bytes, path: str | None, strict: bool = False) -> Object:
    elf = Elf(data)
    endian = Endianness.BIG if elf.big_endian else Endianness.LITTLE
    license = "GPL"
    kernel_version: int | None = None
    btf: Btf | None = None
    btf_ext: BtfExt | None = None
    if (s := elf.section_by_name("license")) is not None:
        license = _parse_license(elf.section_data(s))
    if (s := elf.section_by_name("version")) is not None:
        raw = elf.section_data(s)
        if len(raw) != 4:
            raise InvalidKernelVersion(f"version section is {len(raw)} bytes, not 4", section="version")
        v = struct.unpack(elf.e + "I", raw)[0]
        kernel_version = None if v == KERNEL_VERSION_ANY else v
    if (s := elf.section_by_name(".BTF")) is not None:
        try:
            btf = Btf.parse(elf.section_data(s), elf.big_endian)
        except BtfError as e:
            e.section = e.section or ".BTF"
            raise
        if (x := elf.section_by_name(".BTF.ext")) is not None:
            try:
                btf_ext = BtfExt.parse(elf.section_data(x), btf)
            except BtfError as e:
                e.section = ".BTF.ext"
                raise
    symbols = elf.symbols
    kconfig, kvars = parse_kconfig(btf, symbols)
    ksyms = _ksyms(btf, symbols)
    if btf is not None:
        btf = _fixup_datasecs(btf, elf, symbols, kconfig, kvars).with_ksyms_sanitized()
    for sym in symbols:
        if sym.section_index >= len(elf.sections) and sym.section_index < 0xFF00:
            raise InvalidSymbol(f"symbol {sym.index} refers to section {sym.section_index}, out of range "
                                f"({len(elf.sections)} sections)", symbol=sym.name)
    relocations = {k: tuple(v) for k, v in elf.relocations().items()}
    text = elf.section_by_name(".text")
    text_index = text.index if text is not None and text.is_executable else None

    functions: dict[tuple[int, int], Function] = {}
    programs: dict[str, Program] = {}
    warnings: list[str] = []
    for sec in elf.sections:
        if not sec.is_executable or sec.size == 0 or sec.type != SHT_PROGBITS:
            continue
        psec: ProgramSection | None = None
        if sec.index != text_index:
            try:
                psec = parse_program_section(sec.name)
            except UnknownProgramSection:
                if strict:
                    raise
                psec = unknown_program_section(sec.name)
                warnings.append(f"section '{sec.name}': unknown program section; its programs cannot be loaded")
        for fn in _functions(elf, sec, symbols, btf_ext):
            functions[(sec.index, fn.address)] = fn
            if psec is None:
                continue
            name = fn.name if fn.name not in programs else f"{sec.name}/{fn.name}"
            programs[name] = Program(
                name=fn.name, section_name=sec.name, section=psec, section_index=sec.index, address=fn.address,
                size=fn.size, insns=fn.insns, license=license, kernel_version=kernel_version,
                func_info=fn.func_info, line_info=fn.line_info, core_relos=fn.core_relos,
            )
        _check_code_relocations(sec, relocations.get(sec.index, ()))

    maps: dict[str, MapDef] = {}
    variables: dict[str, GlobalVariable] = {}
    for sec in elf.sections:
        if sec.index == 0:
            continue
        if is_legacy_maps_section(sec.name) and sec.type in (SHT_PROGBITS, SHT_NOBITS):
            for m in parse_legacy_maps(elf, sec, symbols):
                maps[m.name] = m
        elif is_struct_ops_section(sec.name) and sec.size:
            for m in parse_struct_ops(elf, sec, btf, symbols, list(relocations.get(sec.index, ()))):
                maps[m.name] = m
                for idx, prog_name in enumerate(m.values):  # libbpf: expected_attach_type = member index
                    if prog_name is not None and prog_name in programs:
                        p = programs[prog_name]
                        programs[prog_name] = dataclasses.replace(
                            p, section=dataclasses.replace(p.section, expected_attach_type=idx))
        elif sec.name == ".maps":
            for m in parse_btf_maps(sec, btf, symbols, list(relocations.get(sec.index, ()))):
                maps[m.name] = m
        elif is_data_section(sec.name) and sec.type in (SHT_PROGBITS, SHT_NOBITS) and not sec.is_executable:
            if sec.size == 0:
                continue
            maps[sec.name] = parse_data_map(elf, sec, btf)
            variables.update(_variables(sec, symbols, btf))

    if kconfig is not None:
        maps[kconfig.name] = kconfig
        variables.update(kvars)

    return Object(
        endianness=endian, license=license, kernel_version=kernel_version, programs=programs, maps=maps,
        functions=functions, symbols=symbols, relocations=relocations, sections=elf.sections, btf=btf,
        btf_ext=btf_ext, variables=variables, text_section_index=text_index, path=path, e_machine=elf.e_machine,
        warnings=warnings, ksyms=ksyms,
    )


def _parse_license(raw: bytes) -> str:
    end = raw.find(b"\0")
    if end < 0:
        raise MissingLicenseNullTerminator("license is not NUL-terminated", section="license")
    try:
        return raw[:end].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidLicense("license is not ASCII", section="license")


def _functions(elf: Elf, sec: Section, symbols: list[Symbol], ext: BtfExt | None) -> list[Function]:
    """Split an executable section into its functions (aya-obj ``parse_programs``/``parse_text_section``)."""
    if sec.size % 8:
        raise InvalidProgramCode(f"section size {sec.size} is not a multiple of 8", section=sec.name)
    code = elf.section_data(sec)
    syms = sorted((s for s in symbols if s.section_index == sec.index and s.is_function),
                  key=lambda s: (s.value, s.index))
    if not syms:
        spans = [(sec.name, 0, sec.size, True)]
    else:
        spans = []
        firsts = [s for i, s in enumerate(syms) if i == 0 or syms[i - 1].value != s.value]
        for i, s in enumerate(firsts):  # one function per address; its end is the next one's start
            nxt = firsts[i + 1].value if i + 1 < len(firsts) else sec.size
            size = s.size if s.size else nxt - s.value
            spans.append((s.name, s.value, size, s.bind != Symbol.STB_LOCAL))
    out = []
    sec_ext = _SectionExt(ext, sec.name)
    for name, addr, size, is_global in spans:
        if addr % 8 or size % 8:
            raise InvalidProgramCode(f"function at {addr} of {size} bytes is not 8-byte aligned",
                                     section=sec.name, symbol=name)
        if addr + size > sec.size:
            raise InvalidSymbol(f"function ({size} bytes at {addr}) is past the end of the section "
                                f"({sec.size} bytes)", section=sec.name, symbol=name)
        try:
            insns = tuple(decode(code[addr:addr + size], elf.big_endian))
        except InsnDecodeError as e:
            raise InvalidProgramCode(str(e), section=sec.name, symbol=name)
        fi, li, cr = sec_ext.for_function(addr, size)
        out.append(Function(name, sec.index, sec.name, addr, size, insns, is_global, fi, li, cr))
    return out


class _SectionExt:
    """One section's BTF.ext records, sorted by insn_off once, sliced per function with bisect."""

    def __init__(self, ext: BtfExt | None, sec_name: str) -> None:
        def prep(records: list) -> tuple[list, list[int]]:
            records = sorted(records, key=lambda r: r.insn_off)
            return records, [r.insn_off for r in records]

        self.fi = prep(ext.func_info.get(sec_name, []) if ext else [])
        self.li = prep(ext.line_info.get(sec_name, []) if ext else [])
        self.cr = prep(ext.core_relos.get(sec_name, []) if ext else [])

    @staticmethod
    def _slice(prepared: tuple[list, list[int]], lo: int, hi: int) -> list:
        records, keys = prepared
        return records[bisect.bisect_left(keys, lo):bisect.bisect_left(keys, hi)]

    def for_function(self, addr: int, size: int
                     ) -> tuple[tuple[FuncInfo, ...], tuple[LineInfo, ...], tuple[CoreReloRef, ...]]:
        lo, hi = addr, addr + size
        fi = tuple(FuncInfo((r.insn_off - lo) // 8, r.type_id) for r in self._slice(self.fi, lo, hi))
        li = tuple(LineInfo((r.insn_off - lo) // 8, r.file_name_off, r.line_off, r.line_col, r.file_name, r.line)
                   for r in self._slice(self.li, lo, hi))
        cr = tuple(CoreReloRef((r.insn_off - lo) // 8, r.type_id, r.access_str, int(r.kind))
                   for r in self._slice(self.cr, lo, hi))
        return fi, li, cr


def _check_code_relocations(sec: Section, rels: tuple[Relocation, ...]) -> None:
    for r in rels:
        if r.offset % 8 or r.offset + 8 > sec.size:
            raise InvalidRelocationOffset(
                f"relocation {r.type_name} at offset {r.offset} is {'unaligned' if r.offset % 8 else 'past the end'}"
                f" (section size {sec.size})", section=sec.name, symbol=r.symbol_name, offset=r.offset)


def _variables(sec: Section, symbols: list[Symbol], btf: Btf | None) -> dict[str, GlobalVariable]:
    var_types: dict[str, int] = {}
    if btf is not None and (ds := btf.datasec(sec.name)) is not None:
        for vs in ds.secinfo:
            t = btf.type(vs.type)
            if t.kind == BtfKind.VAR:
                var_types[t.name] = t.type
    out = {}
    for s in symbols:
        if s.section_index != sec.index or s.type != Symbol.STT_OBJECT or not s.name:
            continue
        if s.value + s.size > sec.size:
            raise InvalidSymbol(f"variable ({s.size} bytes at {s.value}) is past the end of the section",
                                section=sec.name, symbol=s.name)
        out[s.name] = GlobalVariable(s.name, sec.name, sec.index, s.value, s.size,
                                     s.bind != Symbol.STB_LOCAL, var_types.get(s.name, 0))
    return out


def _fixup_datasecs(btf: Btf, elf: Elf, symbols: list[Symbol], kconfig: MapDef | None,
                    kvars: dict[str, GlobalVariable]) -> Btf:
    sizes = {s.name: s.size for s in elf.sections if s.index}
    offsets: dict[tuple[str, str], int] = {}
    if kconfig is not None:  # libbpf: the .kconfig DATASEC describes the synthesised map
        sizes[kconfig.section_name] = kconfig.value_size
        offsets.update(((v.section_name, v.name), v.offset) for v in kvars.values())
    for sym in symbols:
        sec = elf.section(sym.section_index)
        if sec is not None and sym.type == Symbol.STT_OBJECT and sym.name:
            offsets[(sec.name, sym.name)] = sym.value
    return btf.with_datasec_layout(sizes, offsets, frozenset(kvars))


def _ksyms(btf: Btf | None, symbols: list[Symbol]) -> dict[str, int]:
    """``__ksym`` externs: undefined symbols whose BTF FUNC/VAR sits in the ``.ksyms`` DATASEC."""
    if btf is None or (ds := btf.datasec(".ksyms")) is None:
        return {}
    undefined = {s.name for s in symbols if not s.is_defined}
    out = {}
    for vs in ds.secinfo:
        t = btf.type(vs.type)
        if t.name in undefined and t.kind in (BtfKind.FUNC, BtfKind.VAR):
            out[t.name] = t.id
    return out
