"""A small, strict ELF64 reader for eBPF relocatable objects.

Layouts are the System V gABI's (``Elf64_Ehdr``, ``Elf64_Shdr``, ``Elf64_Sym``,
``Elf64_Rel``/``Elf64_Rela``, /usr/include/elf.h). Every offset and index is
bounds-checked before use, so a truncated or corrupted file gives an
``InvalidElf``/``SectionError``/``SymbolError``, never an IndexError or a hang.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import InvalidElf, SectionError, SymbolError
from .model import Relocation, Symbol

EM_NONE = 0
EM_BPF = 247
ET_REL = 1
SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

_MAX_SECTIONS = 1 << 16
MAX_NOBITS_SIZE = 1 << 26  # a .bss past 64 MiB is corrupt: the kernel caps a map value far lower


@dataclass(frozen=True, slots=True)
class Section:
    """One ``Elf64_Shdr`` with its name resolved."""

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    @property
    def is_executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)

    @property
    def is_nobits(self) -> bool:
        return self.type == SHT_NOBITS


class Elf:
    """Parsed ELF headers, section table and symbol table of one object."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self._parse_header()
        self.sections = self._parse_sections()
        self._by_name: dict[str, Section] = {}
        for s in self.sections:
            self._by_name.setdefault(s.name, s)
        self.symtab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
        self.symbols = self._parse_symbols() if self.symtab is not None else []

    # --- header ---------------------------------------------------------------------------

    def _parse_header(self) -> None:
        d = self.data
        if len(d) < 16 or d[:4] != b"\x7fELF":
            raise InvalidElf("not an ELF file (bad magic)")
        if d[4] != 2:
            raise InvalidElf(f"not a 64-bit ELF object (EI_CLASS {d[4]})")
        if d[5] == 1:
            self.big_endian = False
        elif d[5] == 2:
            self.big_endian = True
        else:
            raise InvalidElf(f"unknown ELF data encoding (EI_DATA {d[5]})")
        self.e = ">" if self.big_endian else "<"
        if len(d) < 64:
            raise InvalidElf(f"truncated ELF header ({len(d)} bytes, need 64)")
        (e_type, e_machine, _ver, _entry, _phoff, e_shoff, _flags, _ehsize, _phentsize, _phnum,
         e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from(self.e + "HHIQQQIHHHHHH", d, 16)
        if e_type != ET_REL:
            raise InvalidElf(f"not a relocatable object (e_type {e_type})")
        if e_machine not in (EM_BPF, EM_NONE):
            raise InvalidElf(f"not an eBPF object (e_machine {e_machine})")
        self.e_machine = e_machine
        if e_shoff == 0:
            raise InvalidElf("no section header table")
        if e_shentsize != 64:
            raise InvalidElf(f"bad section header size {e_shentsize}")
        self.e_shoff = e_shoff
        if e_shoff + 64 > len(d):
            raise InvalidElf(f"section header table at {e_shoff} is past the end of the file ({len(d)} bytes)")
        # e_shnum == 0 / e_shstrndx == SHN_XINDEX: the real values are in section 0 (gABI "Extended Section Header")
        sh0 = struct.unpack_from(self.e + "IIQQQQIIQQ", d, e_shoff)
        self.shnum = e_shnum if e_shnum else sh0[5]
        self.shstrndx = sh0[6] if e_shstrndx == SHN_XINDEX else e_shstrndx
        if not 0 < self.shnum <= _MAX_SECTIONS:
            raise InvalidElf(f"bad section count {self.shnum}")
        if e_shoff + 64 * self.shnum > len(d):
            raise InvalidElf(f"section header table ({self.shnum} entries at {e_shoff}) is past the end of the file")
        if not 0 < self.shstrndx < self.shnum:
            raise InvalidElf(f"section name table index {self.shstrndx} out of range")

    def _parse_sections(self) -> list[Section]:
        d = self.data
        raw = [struct.unpack_from(self.e + "IIQQQQIIQQ", d, self.e_shoff + 64 * i) for i in range(self.shnum)]
        strtab = raw[self.shstrndx]
        if strtab[1] != SHT_STRTAB:
            raise InvalidElf(f"section name table (section {self.shstrndx}) is not a string table")
        str_off, str_size = strtab[4], strtab[5]
        if str_off + str_size > len(d):
            raise InvalidElf("section name table is past the end of the file")
        names = d[str_off:str_off + str_size]
        out = []
        for i, (name_off, typ, flags, addr, off, size, link, info, align, entsize) in enumerate(raw):
            if i == 0:
                out.append(Section(0, "", SHT_NULL, 0, 0, 0, 0, 0, 0, 0, 0))
                continue
            name = _cstr(names, name_off)
            if name is None:
                raise SectionError(f"section {i}: name offset {name_off} out of range", section=f"#{i}")
            if typ != SHT_NOBITS and typ != SHT_NULL and off + size > len(d):
                raise SectionError(f"section data ({size} bytes at {off}) is past the end of the file "
                                   f"({len(d)} bytes)", section=name)
            out.append(Section(i, name, typ, flags, addr, off, size, link, info, align, entsize))
        return out

    # --- accessors -------------------------------------------------------------------------

    def section(self, index: int) -> Section | None:
        if 0 < index < len(self.sections):
            return self.sections[index]
        return None

    def section_by_name(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def section_data(self, s: Section) -> bytes:
        if s.type == SHT_NOBITS:
            if s.size > MAX_NOBITS_SIZE:
                raise SectionError(f"NOBITS section of {s.size} bytes is too large", section=s.name)
            return bytes(s.size)
        return self.data[s.offset:s.offset + s.size]

    # --- symbols ---------------------------------------------------------------------------

    def _parse_symbols(self) -> list[Symbol]:
        st = self.symtab
        assert st is not None
        if st.entsize not in (0, 24):
            raise SymbolError(f"bad symbol entry size {st.entsize}", section=st.name)
        if st.size % 24:
            raise SymbolError(f"symbol table size {st.size} is not a multiple of 24", section=st.name)
        strsec = self.section(st.link)
        if strsec is None or strsec.type != SHT_STRTAB:
            raise SymbolError(f"symbol string table (section {st.link}) missing", section=st.name)
        strs = self.section_data(strsec)
        d = self.section_data(st)
        out = []
        for i in range(st.size // 24):
            name_off, info, other, shndx, value, size = struct.unpack_from(self.e + "IBBHQQ", d, 24 * i)
            name = _cstr(strs, name_off)
            if name is None:
                raise SymbolError(f"symbol {i}: name offset {name_off} out of range", section=st.name)
            typ, bind = info & 0xF, info >> 4
            if typ == Symbol.STT_SECTION and not name:
                sec = self.section(shndx)
                name = sec.name if sec is not None else ""
            out.append(Symbol(i, name, value, size, typ, bind, shndx, other))
        return out

    def symbol(self, index: int) -> Symbol | None:
        if 0 <= index < len(self.symbols):
            return self.symbols[index]
        return None

    # --- relocations -----------------------------------------------------------------------

    def relocations(self) -> dict[int, list[Relocation]]:
        """Relocations per target section index (REL and RELA sections)."""
        out: dict[int, list[Relocation]] = {}
        for s in self.sections:
            if s.type not in (SHT_REL, SHT_RELA):
                continue
            target = self.section(s.info)
            if target is None:
                raise SectionError(f"relocation section applies to section {s.info}, which does not exist",
                                   section=s.name)
            rela = s.type == SHT_RELA
            entsize = 24 if rela else 16
            if s.size % entsize:
                raise SectionError(f"relocation section size {s.size} is not a multiple of {entsize}",
                                   section=s.name)
            if s.link != 0 and (self.symtab is None or s.link != self.symtab.index):
                raise SectionError(f"relocation section links to section {s.link}, not the symbol table",
                                   section=s.name)
            d = self.section_data(s)
            fmt = self.e + ("QQq" if rela else "QQ")
            rels = out.setdefault(target.index, [])
            for i in range(s.size // entsize):
                fields = struct.unpack_from(fmt, d, entsize * i)
                r_offset, r_info = fields[0], fields[1]
                addend = fields[2] if rela else None
                sym_index, typ = r_info >> 32, r_info & 0xFFFFFFFF
                sym = self.symbol(sym_index)
                if sym is None:
                    raise SymbolError(f"relocation {i} refers to symbol {sym_index}, out of range "
                                      f"({len(self.symbols)} symbols)", section=s.name)
                rels.append(Relocation(target.index, target.name, r_offset, typ, sym_index, sym.name, addend))
        return out


def _cstr(table: bytes, off: int) -> str | None:
    if off >= len(table) and not (off == 0 and not table):
        return None
    end = table.find(b"\0", off)
    if end < 0:
        return None
    return table[off:end].decode("utf-8", errors="replace")
