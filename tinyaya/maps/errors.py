"""Aya's ``MapError`` variants (aya/src/maps/mod.rs), as exception classes.

Each variant is a subclass of ``MapError`` and is also reachable as an
attribute of it, so both ``except KeyNotFound`` and ``except MapError.KeyNotFound``
work. ``SyscallError`` is also an ``OSError`` carrying the kernel's errno.
"""
from __future__ import annotations

import os

__all__ = [
    "MapError", "InvalidMapType", "InvalidName", "InvalidKeySize", "InvalidValueSize", "OutOfBounds",
    "KeyNotFound", "ElementNotFound", "ProgramNotLoaded", "SyscallError", "PinError", "Unsupported",
    "NotFound", "syscall_error",
]


class MapError(Exception):
    """Base of every error raised by tinyaya's user-space maps."""

    InvalidMapType: type[InvalidMapType]
    InvalidName: type[InvalidName]
    InvalidKeySize: type[InvalidKeySize]
    InvalidValueSize: type[InvalidValueSize]
    OutOfBounds: type[OutOfBounds]
    KeyNotFound: type[KeyNotFound]
    ElementNotFound: type[ElementNotFound]
    ProgramNotLoaded: type[ProgramNotLoaded]
    SyscallError: type[SyscallError]
    PinError: type[PinError]
    Unsupported: type[Unsupported]
    NotFound: type[NotFound]


class InvalidMapType(MapError):
    """The map's type is not the one this wrapper handles (``map_type`` is the kernel's)."""

    def __init__(self, map_type: int, wanted: str = "") -> None:
        super().__init__(f"invalid map type {map_type}" + (f", expected {wanted}" if wanted else ""))
        self.map_type = map_type


class InvalidName(MapError):
    def __init__(self, name: str) -> None:
        super().__init__(f"invalid map name {name!r}")
        self.name = name


class InvalidKeySize(MapError):
    def __init__(self, size: int, expected: int) -> None:
        super().__init__(f"invalid key size {size}, expected {expected}")
        self.size = size
        self.expected = expected


class InvalidValueSize(MapError):
    def __init__(self, size: int, expected: int) -> None:
        super().__init__(f"invalid value size {size}, expected {expected}")
        self.size = size
        self.expected = expected


class OutOfBounds(MapError, IndexError):
    def __init__(self, index: int, max_entries: int) -> None:
        MapError.__init__(self, f"the index is {index} but max_entries is {max_entries}")
        self.index = index
        self.max_entries = max_entries


class KeyNotFound(MapError, KeyError):
    """The key is not in the map (ENOENT on lookup or delete)."""

    def __init__(self, key: object = None) -> None:
        MapError.__init__(self, "key not found" if key is None else f"key not found: {key!r}")
        self.key = key

    def __str__(self) -> str:
        return str(self.args[0])


class ElementNotFound(MapError):
    """A queue or stack is empty, or a bloom filter does not contain the value."""

    def __init__(self, what: str = "element not found") -> None:
        super().__init__(what)


class ProgramNotLoaded(MapError):
    def __init__(self, name: str = "") -> None:
        super().__init__(f"the program {name!r} is not loaded" if name else "the program is not loaded")


class NotFound(MapError, KeyError):
    """No map of that name in the object (``Ebpf.map(name)``)."""

    def __init__(self, name: str) -> None:
        MapError.__init__(self, f"map {name!r} not found")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


class SyscallError(MapError, OSError):
    """A bpf() command failed: ``call`` names it, ``errno`` is the kernel's."""

    def __init__(self, call: str, err: OSError) -> None:
        code = err.errno or 0
        OSError.__init__(self, code, f"{call} failed: {err.strerror or os.strerror(code)}")
        self.call = call
        self.io_error = err


class PinError(MapError):
    def __init__(self, path: str, err: OSError | str) -> None:
        super().__init__(f"pinning/opening {path} failed: {err}")
        self.path = path
        self.errno = err.errno if isinstance(err, OSError) else None


class Unsupported(MapError):
    def __init__(self, what: str) -> None:
        super().__init__(what)


def syscall_error(call: str, err: OSError) -> SyscallError:
    return SyscallError(call, err)


for _cls in (InvalidMapType, InvalidName, InvalidKeySize, InvalidValueSize, OutOfBounds, KeyNotFound,
             ElementNotFound, ProgramNotLoaded, SyscallError, PinError, Unsupported, NotFound):
    setattr(MapError, _cls.__name__, _cls)
