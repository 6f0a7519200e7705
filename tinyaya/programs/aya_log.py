"""Decoding aya-log records (the wire format of ``aya-log-common``), pure bytes in, records out.

An eBPF program that logs with aya-log writes one *record* per log call into
a buffer and sends it to user space: in the **perf-array flavour** with
``bpf_perf_event_output(ctx, &AYA_LOGS, BPF_F_CURRENT_CPU, buf, len)`` into the
``AYA_LOGS`` PERF_EVENT_ARRAY (each record is the raw payload of one
PERF_RECORD_SAMPLE), in the **ring-buffer flavour** of newer aya-log with
``bpf_ringbuf_output`` into the ``AYA_LOGS`` RINGBUF (one record per ring entry).

A record is a sequence of tag-length-value fields: a header of six record
fields, then ``num_args`` argument fields. All integers are native-endian
(little-endian here). Three generations exist; ``decode_record`` detects which
from the first bytes:

``usize`` generation (aya-log-common ≤ 0.1.13, as in DragonOS's syscall_ebpf;
the perf-array flavour tinyaya's example C encoder emits, see
``examples/syscall_ebpf/syscall_ebpf-ebpf/src/aya_log.h``)::

    field := tag: u64 | len: u64 | value: len bytes
    header, in this order:
      Target=1  value: the target string (UTF-8, no NUL)
      Level=2   value: u64   (Error=1, Warn=2, Info=3, Debug=4, Trace=5)
      Module=3  value: the module path string
      File=4    value: the file name string
      Line=5    value: u32
      NumArgs=6 value: u64   (number of argument fields that follow)
    argument tags (``enum Argument``):
      DisplayHint=0 (value: u8 hint for the *next* value: Default=1, LowerHex=2,
      UpperHex=3, Ip=4, LowerMac=5, UpperMac=6),
      I8=1 I16=2 I32=3 I64=4 Isize=5 U8=6 U16=7 U32=8 U64=9 Usize=10 F32=11 F64=12,
      ArrU8Len6=13 ArrU8Len16=14 ArrU16Len8=15, Str=16 (UTF-8 bytes).

    The first 8 bytes of such a record are therefore ``01 00 00 00 00 00 00 00``.

``u8`` generation (aya-log-common 0.1.14 – 0.1.15, perf array)::

    field := tag: u8 | len: u16 | value
    header tags Target=1 … NumArgs=6 as above; Level is a u8, Line a u32, NumArgs a u32.
    argument tags: DisplayHint=0, I8=1 … Usize=10, F32=11, F64=12, Ipv4Addr=13, Ipv6Addr=14,
      ArrU8Len4=15, ArrU8Len6=16, ArrU8Len16=17, ArrU16Len8=18, Bytes=19, Str=20.

``kind`` generation (current aya-log-common, RINGBUF)::

    field := kind: u8 | len: u16 | value
    header kinds are 0-based: Target=0, Level=1, Module=2, File=3, Line=4, NumArgs=5
      (Level u8, Line u32, NumArgs u32);
    argument kinds as in the u8 generation plus Pointer=21; display hints add
      Pointer=7 and Str=8.

The message is rebuilt like aya-log's user side: ``Str`` fragments are the
literal text of the format string, every other argument is formatted with the
display hint that precedes it (then the hint resets to Default). So
``info!("[{}] invoke syscall {}", t, n)`` arrives as
``Str "[" · Hint Default · U64 t · Str "] invoke syscall " · Hint Default · Usize n``.
"""
from __future__ import annotations

import ipaddress
import logging
import struct
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "AyaLogLevel", "DisplayHint", "AyaLogRecord", "AyaLogError", "decode_record", "encode_record_usize",
    "python_level", "TRACE",
]

#: Python has no TRACE level; aya-log's Trace maps to 5, named "TRACE"
TRACE = 5
logging.addLevelName(TRACE, "TRACE")


class AyaLogLevel(IntEnum):
    """``enum Level`` of aya-log-common."""

    Error = 1
    Warn = 2
    Info = 3
    Debug = 4
    Trace = 5


class DisplayHint(IntEnum):
    """``enum DisplayHint``: how the next argument is shown."""

    Default = 1
    LowerHex = 2
    UpperHex = 3
    Ip = 4
    LowerMac = 5
    UpperMac = 6
    Pointer = 7
    Str = 8


_PY_LEVEL = {
    AyaLogLevel.Error: logging.ERROR, AyaLogLevel.Warn: logging.WARNING, AyaLogLevel.Info: logging.INFO,
    AyaLogLevel.Debug: logging.DEBUG, AyaLogLevel.Trace: TRACE,
}


def python_level(level: AyaLogLevel) -> int:
    """The ``logging`` level of an aya-log level."""
    return _PY_LEVEL[level]


class AyaLogError(ValueError):
    """A record that does not follow the wire format; names the offset and what was wrong."""


@dataclass(frozen=True)
class AyaLogRecord:
    target: str
    level: AyaLogLevel
    module: str
    file: str
    line: int
    message: str
    #: the decoded argument values, in order (Str fragments excluded)
    args: tuple[object, ...] = ()


# argument kinds, per generation: kind -> (name, struct format or None for variable-length)
_SCALARS = {
    "I8": "b", "I16": "h", "I32": "i", "I64": "q", "Isize": "q",
    "U8": "B", "U16": "H", "U32": "I", "U64": "Q", "Usize": "Q", "F32": "f", "F64": "d",
}
_ARGS_USIZE = ["DisplayHint", "I8", "I16", "I32", "I64", "Isize", "U8", "U16", "U32", "U64", "Usize",
               "F32", "F64", "ArrU8Len6", "ArrU8Len16", "ArrU16Len8", "Str"]
_ARGS_U8 = ["DisplayHint", "I8", "I16", "I32", "I64", "Isize", "U8", "U16", "U32", "U64", "Usize",
            "F32", "F64", "Ipv4Addr", "Ipv6Addr", "ArrU8Len4", "ArrU8Len6", "ArrU8Len16", "ArrU16Len8",
            "Bytes", "Str", "Pointer"]


class _Reader:
    def __init__(self, buf: bytes, wide: bool) -> None:
        self.buf = buf
        self.off = 0
        self.wide = wide

    def field(self) -> tuple[int, bytes]:
        head = 16 if self.wide else 3
        if self.off + head > len(self.buf):
            raise AyaLogError(f"record truncated at offset {self.off}: field header needs {head} bytes")
        if self.wide:
            tag, length = struct.unpack_from("<QQ", self.buf, self.off)
        else:
            tag, length = struct.unpack_from("<BH", self.buf, self.off)
        start = self.off + head
        if start + length > len(self.buf):
            raise AyaLogError(f"record truncated at offset {self.off}: value of {length} bytes runs past "
                              f"the end ({len(self.buf)} bytes)")
        self.off = start + length
        return tag, self.buf[start:start + length]


def _int(value: bytes, what: str, sizes: tuple[int, ...]) -> int:
    if len(value) not in sizes:
        raise AyaLogError(f"{what} has {len(value)} bytes, expected {' or '.join(map(str, sizes))}")
    return int.from_bytes(value, "little")


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _format(kind: str, value: bytes, hint: int) -> tuple[str, object]:
    """Format one argument value as aya-log's user side does for its display hint."""
    if kind in _SCALARS:
        fmt = "<" + _SCALARS[kind]
        if len(value) != struct.calcsize(fmt):
            raise AyaLogError(f"argument {kind} has {len(value)} bytes, expected {struct.calcsize(fmt)}")
        (v,) = struct.unpack(fmt, value)
        if isinstance(v, float):
            return repr(v) if hint == DisplayHint.Default else str(v), v
        if hint == DisplayHint.LowerHex:
            return format(v, "x"), v
        if hint == DisplayHint.UpperHex:
            return format(v, "X"), v
        if hint == DisplayHint.Ip and kind == "U32":
            return str(ipaddress.IPv4Address(struct.pack(">I", v))), v
        return str(v), v
    if kind == "Str":
        return _text(value), _text(value)
    if kind == "Pointer":
        v = int.from_bytes(value, "little")
        return f"0x{v:x}", v
    if kind in ("Ipv4Addr", "ArrU8Len4") and len(value) == 4 and hint in (DisplayHint.Ip, DisplayHint.Default):
        return str(ipaddress.IPv4Address(value)), value
    if len(value) == 16 and (kind == "Ipv6Addr" or (kind in ("ArrU8Len16", "ArrU16Len8") and hint == DisplayHint.Ip)):
        # [u16; 8] arrives as native-endian segments; Ipv6Addr::from(segments) reads them as numbers
        raw = struct.pack(">8H", *struct.unpack("<8H", value)) if kind == "ArrU16Len8" else value
        return str(ipaddress.IPv6Address(raw)), value
    if hint in (DisplayHint.LowerMac, DisplayHint.UpperMac) and len(value) == 6:
        mac = ":".join(f"{b:02x}" for b in value)
        return (mac.upper() if hint == DisplayHint.UpperMac else mac), value
    if hint == DisplayHint.Str:
        return _text(value.split(b"\0", 1)[0]), value
    if hint == DisplayHint.UpperHex:
        return value.hex().upper(), value
    if hint == DisplayHint.LowerHex:
        return value.hex(), value
    return str(list(value)), value


def _generation(buf: bytes) -> str:
    if len(buf) >= 8 and struct.unpack_from("<Q", buf, 0)[0] == 1:
        return "usize"
    if buf[:1] == b"\x01":
        return "u8"
    if buf[:1] == b"\x00":
        return "kind"
    raise AyaLogError(f"not an aya-log record: first byte {buf[:1].hex() or '(empty)'}")


def decode_record(buf: bytes) -> AyaLogRecord:
    """Decode one record (any generation); raises ``AyaLogError`` naming the offset on bad input."""
    buf = bytes(buf)
    gen = _generation(buf)
    r = _Reader(buf, wide=gen == "usize")
    base = 0 if gen == "kind" else 1
    names = ["target", "level", "module", "file", "line", "num_args"]
    header: dict[str, bytes] = {}
    for i, name in enumerate(names):
        tag, value = r.field()
        if tag != base + i:
            raise AyaLogError(f"record field {i} at offset {r.off - len(value)} has tag {tag}, expected "
                              f"{name} ({base + i})")
        header[name] = value
    level_raw = _int(header["level"], "Level", (1, 8))
    try:
        level = AyaLogLevel(level_raw)
    except ValueError:
        raise AyaLogError(f"unknown log level {level_raw}")
    line = _int(header["line"], "Line", (4,))
    num_args = _int(header["num_args"], "NumArgs", (4, 8))
    kinds = _ARGS_USIZE if gen == "usize" else _ARGS_U8
    parts: list[str] = []
    args: list[object] = []
    hint: int | None = None  # set by a DisplayHint field, for the argument that follows it
    for _ in range(num_args):
        at = r.off
        tag, value = r.field()
        if tag >= len(kinds):
            raise AyaLogError(f"argument at offset {at} has unknown kind {tag}")
        kind = kinds[tag]
        if kind == "DisplayHint":
            hint = _int(value, "DisplayHint", (1,))
            if hint not in DisplayHint._value2member_map_:
                raise AyaLogError(f"unknown display hint {hint} at offset {at}")
            continue
        if kind == "Str" and hint is None:  # a literal fragment of the format string
            parts.append(_text(value))
            continue
        text, v = _format(kind, value, DisplayHint.Default if hint is None else hint)
        parts.append(text)
        args.append(v)
        hint = None
    return AyaLogRecord(
        target=_text(header["target"]), level=level, module=_text(header["module"]),
        file=_text(header["file"]), line=line, message="".join(parts), args=tuple(args),
    )


def encode_record_usize(
    target: str, level: AyaLogLevel, module: str, file: str, line: int,
    args: list[tuple[str, object]] | None = None,
) -> bytes:
    """Encode a record in the ``usize`` generation (for tests and for fixtures): ``args`` are
    ``(kind, value)`` pairs with kinds named as in ``enum Argument`` (``"Str"``, ``"U64"``,
    ``"DisplayHint"``…)."""
    def field(tag: int, value: bytes) -> bytes:
        return struct.pack("<QQ", tag, len(value)) + value

    args = args or []
    out = [
        field(1, target.encode()), field(2, struct.pack("<Q", int(level))), field(3, module.encode()),
        field(4, file.encode()), field(5, struct.pack("<I", line)), field(6, struct.pack("<Q", len(args))),
    ]
    for kind, value in args:
        tag = _ARGS_USIZE.index(kind)
        if kind == "Str":
            raw = str(value).encode()
        elif kind == "DisplayHint":
            raw = struct.pack("<B", int(value))  # type: ignore[call-overload]
        elif kind in _SCALARS:
            raw = struct.pack("<" + _SCALARS[kind], value)
        else:
            raw = bytes(value)  # type: ignore[call-overload]
        out.append(field(tag, raw))
    return b"".join(out)
