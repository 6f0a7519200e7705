"""Byte-level surgery on fixture objects for the error tests (offsets located with tinyaya's ELF reader)."""
from __future__ import annotations

import struct

from tinyaya.obj.elf import SHT_RELA, Elf


class Patch:
    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.elf = Elf(bytes(data))
        self.e = self.elf.e

    def bytes(self) -> bytes:
        return bytes(self.data)

    def put(self, fmt: str, off: int, *values: int) -> Patch:
        struct.pack_into(self.e + fmt, self.data, off, *values)
        return self

    def shdr_off(self, name: str) -> int:
        sec = self.elf.section_by_name(name)
        assert sec is not None, name
        return self.elf.e_shoff + 64 * sec.index

    def section_field(self, name: str, field: str, value: int) -> Patch:
        fields = {"name": (0, "I"), "type": (4, "I"), "flags": (8, "Q"), "offset": (24, "Q"), "size": (32, "Q"),
                  "link": (40, "I"), "info": (44, "I"), "entsize": (56, "Q")}
        off, fmt = fields[field]
        return self.put(fmt, self.shdr_off(name) + off, value)

    def symbol_off(self, name: str) -> int:
        st = self.elf.symtab
        assert st is not None
        sym = next(s for s in self.elf.symbols if s.name == name)
        return st.offset + 24 * sym.index

    def symbol_field(self, name: str, field: str, value: int) -> Patch:
        fields = {"shndx": (6, "H"), "value": (8, "Q"), "size": (16, "Q")}
        off, fmt = fields[field]
        return self.put(fmt, self.symbol_off(name) + off, value)

    def reloc_off(self, rel_section: str, index: int = 0) -> int:
        sec = self.elf.section_by_name(rel_section)
        assert sec is not None
        return sec.offset + (24 if sec.type == SHT_RELA else 16) * index

    def to_rela(self) -> Patch:
        """Rewrite every REL section as RELA (addend 0) appended at the end of the file."""
        for sec in self.elf.sections:
            if sec.type != 9:  # SHT_REL
                continue
            entries = [struct.unpack_from(self.e + "QQ", self.data, sec.offset + 16 * i) for i in range(sec.size // 16)]
            new_off = (len(self.data) + 7) & ~7
            self.data.extend(b"\0" * (new_off - len(self.data)))
            for off, info in entries:
                self.data.extend(struct.pack(self.e + "QQq", off, info, 0))
            base = self.elf.e_shoff + 64 * sec.index
            struct.pack_into(self.e + "I", self.data, base + 4, SHT_RELA)
            struct.pack_into(self.e + "QQ", self.data, base + 24, new_off, 24 * len(entries))
            struct.pack_into(self.e + "Q", self.data, base + 56, 24)
        return self
