"""Typed key and value codecs: Python values <-> the bytes a map stores.

The Rust side gets this from ``Pod`` generics (``HashMap<_, u32, u64>``);
here a codec is named where the map is wrapped:

* the integer codecs ``u8 u16 u32 u64 i8 i16 i32 i64`` (little-endian, as on x86-64);
* a ctypes type (``ctypes.c_uint32``, a ``ctypes.Structure`` or array type): values are
  instances (plain ints for simple ctypes types);
* a ``struct`` format string (``"<IQ"``): values are tuples (a single value for one field);
* ``Raw(n)`` (or ``None``: the map's size): values are ``bytes``.
"""
from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Codec", "IntCodec", "CtypesCodec", "StructCodec", "Raw", "as_codec", "CodecSpec",
    "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64",
]


@runtime_checkable
class Codec(Protocol):
    @property
    def size(self) -> int: ...

    def encode(self, value: Any) -> bytes: ...

    def decode(self, raw: bytes) -> Any: ...


@dataclass(frozen=True)
class IntCodec:
    size: int
    signed: bool = False

    def encode(self, value: Any) -> bytes:
        try:
            return int(value).to_bytes(self.size, "little", signed=self.signed)
        except OverflowError:
            raise ValueError(f"{value} does not fit in {'i' if self.signed else 'u'}{self.size * 8}")

    def decode(self, raw: bytes) -> int:
        return int.from_bytes(raw[: self.size], "little", signed=self.signed)

    def __repr__(self) -> str:
        return f"{'i' if self.signed else 'u'}{self.size * 8}"


u8, u16, u32, u64 = IntCodec(1), IntCodec(2), IntCodec(4), IntCodec(8)
i8, i16, i32, i64 = IntCodec(1, True), IntCodec(2, True), IntCodec(4, True), IntCodec(8, True)


class CtypesCodec:
    """Values of a ctypes type; simple types (``c_uint32``…) decode to their Python value."""

    def __init__(self, ctype: type) -> None:
        self.ctype = ctype
        self.size = ctypes.sizeof(ctype)  # type: ignore[arg-type]
        self._simple = issubclass(ctype, ctypes._SimpleCData)

    def encode(self, value: Any) -> bytes:
        if isinstance(value, self.ctype):
            return bytes(value)  # type: ignore[call-overload]
        if self._simple:
            return bytes(self.ctype(value))
        if isinstance(value, bytes | bytearray) and len(value) == self.size:
            return bytes(value)
        raise TypeError(f"expected {self.ctype.__name__}, got {type(value).__name__}")

    def decode(self, raw: bytes) -> Any:
        obj = self.ctype.from_buffer_copy(raw[: self.size])  # type: ignore[attr-defined]
        return obj.value if self._simple else obj

    def __repr__(self) -> str:
        return self.ctype.__name__


class StructCodec:
    """Values described by a ``struct`` format; a one-field format decodes to a bare value."""

    def __init__(self, fmt: str) -> None:
        if fmt[:1] not in "<>!=@":
            fmt = "<" + fmt
        self.fmt = fmt
        self.st = struct.Struct(fmt)
        self.size = self.st.size
        self._single = len(self.st.unpack(bytes(self.size))) == 1

    def encode(self, value: Any) -> bytes:
        try:
            return self.st.pack(value) if self._single else self.st.pack(*value)
        except struct.error as e:
            raise ValueError(f"cannot pack {value!r} as {self.fmt}: {e}")

    def decode(self, raw: bytes) -> Any:
        out = self.st.unpack(raw[: self.size])
        return out[0] if self._single else out

    def __repr__(self) -> str:
        return f"struct({self.fmt!r})"


@dataclass(frozen=True)
class Raw:
    """Plain bytes of a fixed size."""

    size: int

    def encode(self, value: Any) -> bytes:
        b = bytes(value)
        if len(b) != self.size:
            raise ValueError(f"expected {self.size} bytes, got {len(b)}")
        return b

    def decode(self, raw: bytes) -> bytes:
        return bytes(raw[: self.size])


CodecSpec = Codec | type | str | int | None


def as_codec(spec: CodecSpec, default_size: int) -> Codec:
    """Turn a codec spec into a ``Codec``; ``None`` is ``Raw(default_size)``, an int is ``Raw(n)``."""
    if spec is None:
        return Raw(default_size)
    if isinstance(spec, int) and not isinstance(spec, bool):
        return Raw(spec)
    if isinstance(spec, str):
        return StructCodec(spec)
    if isinstance(spec, type) and issubclass(spec, ctypes._SimpleCData | ctypes.Structure | ctypes.Union
                                              | ctypes.Array):
        return CtypesCodec(spec)
    if isinstance(spec, Codec):
        return spec
    raise TypeError(f"not a codec: {spec!r} (use u32/u64/…, a ctypes type, a struct format or Raw(n))")
