"""Aya's ``ProgramError`` and ``EbpfError`` variants (aya/src/programs/mod.rs, aya/src/bpf.rs) as exceptions.

Variants are subclasses and also attributes of their base, so
``except ProgramError.LoadError`` and ``except LoadError`` both work.
"""
from __future__ import annotations

import os

__all__ = [
    "ProgramError", "AlreadyLoaded", "NotLoaded", "AlreadyAttached", "NotAttached", "LoadError",
    "AttachError", "UnexpectedProgramType", "ProgramNotFound", "ProgramSyscallError", "Unsupported",
    "InvalidName", "EbpfError", "FileError", "ParseFailed", "RelocationFailed", "UnsupportedMap",
    "MapCreateError", "UnexpectedPinningType", "EndiannessMismatch",
]


class ProgramError(Exception):
    """Base of every program error."""

    AlreadyLoaded: type[AlreadyLoaded]
    NotLoaded: type[NotLoaded]
    AlreadyAttached: type[AlreadyAttached]
    NotAttached: type[NotAttached]
    LoadError: type[LoadError]
    AttachError: type[AttachError]
    UnexpectedProgramType: type[UnexpectedProgramType]
    NotFound: type[ProgramNotFound]
    SyscallError: type[ProgramSyscallError]
    Unsupported: type[Unsupported]
    InvalidName: type[InvalidName]


class AlreadyLoaded(ProgramError):
    def __init__(self, name: str) -> None:
        super().__init__(f"the program {name} is already loaded")


class NotLoaded(ProgramError):
    def __init__(self, name: str) -> None:
        super().__init__(f"the program {name} is not loaded (call load() first)")


class AlreadyAttached(ProgramError):
    def __init__(self, what: str) -> None:
        super().__init__(f"the program is already attached to {what}")


class NotAttached(ProgramError):
    """Unknown link id (aya: ``ProgramError::NotAttached``)."""

    def __init__(self, link_id: object) -> None:
        super().__init__(f"no link {link_id!r}: the program is not attached there")


class LoadError(ProgramError, OSError):
    """BPF_PROG_LOAD failed; ``verifier_log`` is the verifier's explanation (may be empty)."""

    def __init__(self, name: str, err: int, verifier_log: str) -> None:
        OSError.__init__(self, err, f"the BPF_PROG_LOAD syscall for {name} failed: {os.strerror(err)}")
        self.name = name
        self.verifier_log = verifier_log

    def __str__(self) -> str:
        return str(self.args[1])


class AttachError(ProgramError, OSError):
    """Attaching failed; the message says why in one line (e.g. this kernel has no kprobes)."""

    def __init__(self, err: int, message: str) -> None:
        OSError.__init__(self, err, message)

    def __str__(self) -> str:
        return str(self.args[1])


class UnexpectedProgramType(ProgramError):
    def __init__(self, name: str, wanted: str, got: str) -> None:
        super().__init__(f"program {name} is a {got}, not a {wanted}")


class ProgramNotFound(ProgramError, KeyError):
    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f" (the object has: {', '.join(known)})" if known else ""
        ProgramError.__init__(self, f"no program named {name!r}{hint}")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


class ProgramSyscallError(ProgramError, OSError):
    def __init__(self, call: str, err: OSError) -> None:
        code = err.errno or 0
        OSError.__init__(self, code, f"{call} failed: {err.strerror or os.strerror(code)}")
        self.call = call

    def __str__(self) -> str:
        return str(self.args[1])


class Unsupported(ProgramError):
    def __init__(self, what: str) -> None:
        super().__init__(what)


class InvalidName(ProgramError):
    def __init__(self, name: str) -> None:
        super().__init__(f"invalid name {name!r}")


for _cls, _attr in ((AlreadyLoaded, "AlreadyLoaded"), (NotLoaded, "NotLoaded"), (AlreadyAttached, "AlreadyAttached"),
                    (NotAttached, "NotAttached"), (LoadError, "LoadError"), (AttachError, "AttachError"),
                    (UnexpectedProgramType, "UnexpectedProgramType"), (ProgramNotFound, "NotFound"),
                    (ProgramSyscallError, "SyscallError"), (Unsupported, "Unsupported"),
                    (InvalidName, "InvalidName")):
    setattr(ProgramError, _attr, _cls)


class EbpfError(Exception):
    """Base of loader errors (aya's ``EbpfError``)."""

    FileError: type[FileError]
    ParseError: type[ParseFailed]
    RelocationError: type[RelocationFailed]
    UnsupportedMap: type[UnsupportedMap]
    MapError: type[MapCreateError]
    UnexpectedPinningType: type[UnexpectedPinningType]
    EndiannessMismatch: type[EndiannessMismatch]


class FileError(EbpfError, OSError):
    def __init__(self, path: str, err: OSError) -> None:
        OSError.__init__(self, err.errno or 0, f"error loading {path}: {err.strerror or err}")
        self.path = path

    def __str__(self) -> str:
        return str(self.args[1])


class ParseFailed(EbpfError):
    """The object could not be parsed; ``__cause__`` is the ``tinyaya.obj`` ParseError."""


class RelocationFailed(EbpfError):
    """A program could not be relocated; ``__cause__`` is the ``tinyaya.obj`` RelocationError."""


class UnsupportedMap(EbpfError):
    def __init__(self, name: str, map_type: int) -> None:
        super().__init__(f"map {name} has an unsupported type {map_type} (use allow_unsupported_maps())")
        self.name = name
        self.map_type = map_type


class MapCreateError(EbpfError, OSError):
    def __init__(self, name: str, err: OSError) -> None:
        OSError.__init__(self, err.errno or 0, f"failed to create map {name}: {err.strerror or err}")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[1])


class EndiannessMismatch(EbpfError):
    """A big-endian object (``-target bpfeb``) on a little-endian kernel, or the reverse."""

    def __init__(self, path: str, obj_order: str, kernel_order: str) -> None:
        super().__init__(f"{path} is a {obj_order}-endian object (bpf{'eb' if obj_order == 'big' else 'el'}) "
                         f"but the kernel is {kernel_order}-endian: rebuild it with -target bpf")
        self.path = path


class UnexpectedPinningType(EbpfError):
    def __init__(self, name: str, value: int) -> None:
        super().__init__(f"map {name} has an unexpected pinning type {value}")


for _ecls, _eattr in ((FileError, "FileError"), (ParseFailed, "ParseError"), (RelocationFailed, "RelocationError"),
                    (UnsupportedMap, "UnsupportedMap"), (MapCreateError, "MapError"),
                    (UnexpectedPinningType, "UnexpectedPinningType"), (EndiannessMismatch, "EndiannessMismatch")):
    setattr(EbpfError, _eattr, _ecls)
