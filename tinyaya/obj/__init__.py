"""Pure eBPF object parsing (like aya-obj): ELF bytes in, frozen dataclasses out, no syscalls.

``Object.parse(data, path)`` gives programs, maps (legacy ``maps``, BTF ``.maps``
and global data), BTF and BTF.ext, symbols and relocations;
``link_program(obj, name, map_fds=...)`` relocates and links one program into
the instructions BPF_PROG_LOAD takes; ``describe(obj)`` is what
``tinyaya inspect --json`` prints.
"""
from .describe import describe
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .link import link_program
from .model import (
    CoreReloRef,
    Endianness,
    FuncInfo,
    Function,
    GlobalVariable,
    LineInfo,
    LinkedProgram,
    MapDef,
    MapOrigin,
    MapReference,
    PinningType,
    Program,
    Relocation,
    Symbol,
)
from .object import MalformedObject, Object
from .sections import ProgramSection, parse_program_section

__all__ = [
    *_errors_all,
    "CoreReloRef", "Endianness", "FuncInfo", "Function", "GlobalVariable", "LineInfo",
    "LinkedProgram", "MapDef", "MapOrigin", "MapReference", "PinningType", "Program", "Relocation",
    "Symbol", "ProgramSection", "parse_program_section", "Object", "MalformedObject", "link_program",
    "describe",
]
