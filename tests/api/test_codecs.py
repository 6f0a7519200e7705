"""Key/value codecs: ints of each width, ctypes types, struct formats, raw bytes."""
from __future__ import annotations

import ctypes

import pytest

from tinyaya.maps import CtypesCodec, Raw, StructCodec, as_codec, i8, i16, i32, i64, u8, u16, u32, u64


@pytest.mark.parametrize("codec,value,raw", [
    (u8, 255, b"\xff"), (u16, 0x1234, b"\x34\x12"), (u32, 7, b"\x07\0\0\0"), (u64, 2**64 - 1, b"\xff" * 8),
    (i8, -1, b"\xff"), (i16, -2, b"\xfe\xff"), (i32, -3, b"\xfd\xff\xff\xff"), (i64, -(2**63), b"\0" * 7 + b"\x80"),
])
def test_int_codecs_round_trip(codec: object, value: int, raw: bytes) -> None:
    c = as_codec(codec, 0)  # type: ignore[arg-type]
    assert c.encode(value) == raw and c.decode(raw) == value


@pytest.mark.parametrize("codec,value", [(u8, 256), (u32, -1), (i8, 128), (u64, 2**64)])
def test_int_codecs_reject_values_that_do_not_fit(codec: object, value: int) -> None:
    with pytest.raises(ValueError):
        as_codec(codec, 0).encode(value)  # type: ignore[arg-type]


def test_ctypes_and_struct_codecs() -> None:
    class Pair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint16), ("b", ctypes.c_uint64)]

    c = as_codec(Pair, 0)
    assert isinstance(c, CtypesCodec) and c.size == 16
    got = c.decode(c.encode(Pair(1, 2)))
    assert (got.a, got.b) == (1, 2)
    with pytest.raises(TypeError):
        c.encode(3)
    assert as_codec(ctypes.c_int32, 0).decode(b"\xff\xff\xff\xff") == -1
    s = as_codec("IQ", 0)
    assert isinstance(s, StructCodec) and s.size == 12 and s.decode(s.encode((1, 2))) == (1, 2)
    assert as_codec("<H", 0).decode(b"\x01\x02") == 0x0201
    with pytest.raises(ValueError):
        s.encode((1,))


def test_raw_codec_and_defaults() -> None:
    assert as_codec(None, 3) == Raw(3) and as_codec(5, 0) == Raw(5)
    with pytest.raises(ValueError):
        Raw(3).encode(b"ab")
    with pytest.raises(TypeError):
        as_codec(3.5, 0)  # type: ignore[arg-type]
