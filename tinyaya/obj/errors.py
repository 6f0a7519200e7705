"""Typed errors of the object layer, named after aya-obj's ``ParseError``/``RelocationError`` variants.

Every error carries where it happened -- the file (``path``, filled in by
``Object.parse`` when a path is known), the ELF section and the symbol -- and
prints them: ``prog.o: section 'kprobe/x': symbol 'memset': call to undefined symbol``.
Nothing in ``tinyaya.obj`` raises any other exception type on bad input.
"""
from __future__ import annotations

import errno as _errno
from typing import Any


class ObjError(Exception):
    """Base of every object-layer error (``ParseError`` and ``RelocationError``)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        section: str | None = None,
        symbol: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.section = section
        self.symbol = symbol
        self.details = details
        for key, value in details.items():
            setattr(self, key, value)

    def where(self) -> str:
        parts = []
        if self.path:
            parts.append(self.path)
        if self.section is not None:
            parts.append(f"section '{self.section}'")
        if self.symbol is not None:
            parts.append(f"symbol '{self.symbol}'")
        return ": ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable despite keyword-only args
        return (_rebuild, (type(self), self.message, self.path, self.section, self.symbol, self.details))


def _rebuild(cls: type[ObjError], message: str, path: str | None, section: str | None,
             symbol: str | None, details: dict[str, Any]) -> ObjError:
    return cls(message, path=path, section=section, symbol=symbol, **details)


class ParseError(ObjError):
    """The object cannot be parsed (aya-obj ``ParseError``)."""


class RelocationError(ObjError):
    """A program cannot be relocated or linked (aya-obj ``RelocationError``)."""


# --- ParseError variants --------------------------------------------------------------------

class InvalidElf(ParseError):
    """Not an ELF file, not a 64-bit EM_BPF relocatable object, or a malformed header/table."""


class SectionError(ParseError):
    """A section header or its contents is out of range or malformed."""


class SectionNotFound(ParseError):
    """A symbol or relocation refers to a section index that does not exist."""


class SymbolError(ParseError):
    """A symbol table entry is malformed (bad name offset, bad section index...)."""


class SymbolTableNotFound(ParseError):
    """The object has sections that need a symbol table but none is present."""


class InvalidLicense(ParseError):
    """The ``license`` section is not a NUL-terminated string."""


class MissingLicenseNullTerminator(InvalidLicense):
    """The ``license`` section has no NUL terminator."""


class InvalidKernelVersion(ParseError):
    """The ``version`` section is not a 4-byte integer."""


class InvalidProgramSection(ParseError):
    """An executable section's name is not a program section aya/libbpf recognise."""


class UnknownProgramSection(InvalidProgramSection):
    """The section name matches no known program type (``parse_program_section``)."""


class InvalidProgramCode(ParseError):
    """A program's instruction bytes are not a whole number of 8-byte slots."""


class InvalidMapDefinition(ParseError):
    """A map definition (legacy ``maps`` or BTF ``.maps``) is malformed."""


class MapSymbolNameNotFound(ParseError):
    """A map symbol has no name."""


class InvalidSymbol(ParseError):
    """A symbol refers to data that is not there (e.g. a variable past its section end)."""


class SymbolNotFound(ParseError):
    """``override_global`` named a symbol that the object does not define."""


class InvalidGlobalData(ParseError):
    """``override_global`` was given a value whose size differs from the variable's."""


class BtfError(ParseError):
    """Malformed ``.BTF``/``.BTF.ext`` data. ``reason`` is worded like the kernel's BTF verifier log
    and ``errno`` is what BPF_BTF_LOAD returns for it (EINVAL unless stated)."""

    def __init__(self, message: str, *, errno: int = _errno.EINVAL, **kw: Any) -> None:
        kw.setdefault("reason", message)
        super().__init__(message, errno=errno, **kw)


# --- RelocationError variants ---------------------------------------------------------------

class UnknownSymbol(RelocationError):
    """A relocation refers to a symbol that is undefined or out of range (e.g. ``memset``)."""


class InvalidRelocationOffset(RelocationError):
    """A relocation's offset is unaligned, past the end of its section, or not on the right instruction."""


class RelocationSectionNotFound(RelocationError):
    """A relocation's symbol lives in a section that does not exist (aya-obj ``SectionNotFound``)."""


class UnknownFunction(RelocationError):
    """A bpf-to-bpf call or function pointer does not land on the start of a known function."""


class MapNotFound(RelocationError):
    """An instruction refers to a map for which no fd was supplied, or a symbol that is no map."""


class UnsupportedRelocation(RelocationError):
    """A relocation type or target the linker does not handle (e.g. an extern ``.ksyms`` variable)."""


class CoreRelocationsUnsupported(RelocationError):
    """The program carries BTF CO-RE relocations; applying them is not implemented yet."""


class UnknownProgram(RelocationError):
    """``link_program`` was asked for a program the object does not contain."""


__all__ = [
    "ObjError", "ParseError", "RelocationError", "InvalidElf", "SectionError", "SectionNotFound",
    "SymbolError", "SymbolTableNotFound", "InvalidLicense", "MissingLicenseNullTerminator",
    "InvalidKernelVersion", "InvalidProgramSection", "UnknownProgramSection", "InvalidProgramCode",
    "InvalidMapDefinition", "MapSymbolNameNotFound", "InvalidSymbol", "SymbolNotFound",
    "InvalidGlobalData", "BtfError", "UnknownSymbol", "InvalidRelocationOffset",
    "RelocationSectionNotFound", "UnknownFunction", "MapNotFound", "UnsupportedRelocation",
    "CoreRelocationsUnsupported", "UnknownProgram",
]
