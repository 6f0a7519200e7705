"""The aya-log decoder: every wire generation, display hints, and malformed input (typed error, no crash)."""
from __future__ import annotations

import logging
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyaya.programs.aya_log import AyaLogError, AyaLogLevel, decode_record, encode_record_usize, python_level

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "200"))

ARGS = [("Str", "["), ("DisplayHint", 1), ("U64", 123), ("Str", "] invoke syscall "), ("DisplayHint", 1),
        ("Usize", 39)]


def test_usize_generation_as_the_example_emits() -> None:
    rec = decode_record(encode_record_usize("syscall_ebpf", AyaLogLevel.Info, "syscall_ebpf", "src/main.c", 66, ARGS))
    assert (rec.target, rec.level, rec.module, rec.file, rec.line) == (
        "syscall_ebpf", AyaLogLevel.Info, "syscall_ebpf", "src/main.c", 66)
    assert rec.message == "[123] invoke syscall 39"
    assert rec.args == (123, 39)


def test_usize_generation_with_trailing_perf_padding() -> None:
    raw = encode_record_usize("t", AyaLogLevel.Error, "m", "f", 1, [("Str", "x")]) + b"\0\0\0\0"
    assert decode_record(raw).message == "x"


def _u8_field(tag: int, value: bytes) -> bytes:
    return struct.pack("<BH", tag, len(value)) + value


def _u8_record(base: int, level: int, args: list[tuple[int, bytes]]) -> bytes:
    head = [_u8_field(base + 0, b"tgt"), _u8_field(base + 1, bytes([level])), _u8_field(base + 2, b"mod"),
            _u8_field(base + 3, b"file.rs"), _u8_field(base + 4, struct.pack("<I", 7)),
            _u8_field(base + 5, struct.pack("<I", len(args)))]
    return b"".join(head) + b"".join(_u8_field(t, v) for t, v in args)


def test_u8_generation_hex_and_ip_hints() -> None:
    args = [(20, b"x="), (0, bytes([2])), (8, struct.pack("<I", 255)), (20, b" ip="), (0, bytes([4])),
            (13, bytes([10, 0, 0, 1])), (20, b" mac="), (0, bytes([6])), (16, bytes([1, 2, 3, 4, 5, 0xAB]))]
    rec = decode_record(_u8_record(1, 2, args))
    assert rec.level is AyaLogLevel.Warn and rec.line == 7 and rec.target == "tgt"
    assert rec.message == "x=ff ip=10.0.0.1 mac=01:02:03:04:05:AB"


def test_kind_generation_ringbuf() -> None:
    args = [(20, b"n="), (0, bytes([1])), (3, struct.pack("<i", -5)), (20, b" s="), (0, bytes([1])), (20, b"hi")]
    rec = decode_record(_u8_record(0, 5, args))
    assert rec.level is AyaLogLevel.Trace and rec.message == "n=-5 s=hi" and rec.args == (-5, "hi")
    assert python_level(rec.level) < logging.DEBUG


@pytest.mark.parametrize("raw", [b"", b"\x07", encode_record_usize("t", AyaLogLevel.Info, "m", "f", 1, ARGS)[:40],
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00" + b"\xff" * 8])
def test_malformed_records_raise_typed_errors(raw: bytes) -> None:
    with pytest.raises(AyaLogError):
        decode_record(raw)


def test_unknown_level_is_named() -> None:
    raw = bytearray(encode_record_usize("t", AyaLogLevel.Info, "m", "f", 1, []))
    struct.pack_into("<Q", raw, 16 + 1 + 16, 9)  # the Level value after the "t" target field
    with pytest.raises(AyaLogError, match="level 9"):
        decode_record(bytes(raw))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 299), st.binary(min_size=1, max_size=4))
def test_mutated_records_never_crash(prefix: bytes, pos: int, patch: bytes) -> None:
    base = bytearray(encode_record_usize("syscall_ebpf", AyaLogLevel.Info, "m", "src/main.c", 3, ARGS))
    pos %= len(base)
    base[pos:pos + len(patch)] = patch
    for raw in (bytes(base), prefix, bytes(base[:pos])):
        try:
            decode_record(raw)
        except AyaLogError:
            pass
