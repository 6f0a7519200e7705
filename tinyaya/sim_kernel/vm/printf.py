"""The format strings of bpf_trace_printk, bpf_trace_vprintk and bpf_snprintf.

Linux checks and expands them in ``bpf_bprintf_prepare`` (kernel/bpf/helpers.c):
conversions ``%d %i %u %x %X`` with ``l``/``ll`` modifiers, ``%c``, ``%s``,
``%p`` with ``px``/``pK``/``pks``/``pus``/``pi4``/``pI4``/``pi6``/``pI6``/``pB``,
``%%``; optional flags ``0 + - space`` and a width. Anything else is -EINVAL.
Without ``l``, an integer argument is truncated to 32 bits as the C vararg would be.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable

from ..errors import EINVAL

MAX_BPRINTF_VARARGS = 12
MAX_BPRINTF_STR = 1024  # strings read by %s are bounded


class FormatError(ValueError):
    """The format is one bpf_bprintf_prepare rejects (the helper returns -EINVAL)."""


def bprintf(fmt: bytes, args: list[int], read_str: Callable[[int, bool], bytes | None],
            read_mem: Callable[[int, int], bytes | None]) -> bytes:
    """Expand ``fmt`` with ``args``. ``read_str(addr, user)`` reads a NUL-terminated string (None on fault),
    ``read_mem(addr, n)`` reads bytes (None on fault). Raises FormatError where Linux returns -EINVAL."""
    out = bytearray()
    i = 0
    n = len(fmt)
    argi = 0

    def next_arg() -> int:
        nonlocal argi
        if argi >= len(args):
            raise FormatError("more conversions than arguments")
        v = args[argi]
        argi += 1
        return v

    while i < n:
        ch = fmt[i]
        if ch != 0x25:  # '%'
            if ch < 0x20 and ch not in (0x09, 0x0A, 0x0D) or ch >= 0x7F:
                raise FormatError("non-printable character in format")
            out.append(ch)
            i += 1
            continue
        i += 1
        if i < n and fmt[i] == 0x25:
            out.append(0x25)
            i += 1
            continue
        start = i
        while i < n and fmt[i] in b"0+- ":
            i += 1
        if i < n and 0x31 <= fmt[i] <= 0x39:
            i += 1
            while i < n and 0x30 <= fmt[i] <= 0x39:
                i += 1
        spec = fmt[start:i].decode()
        if i >= n:
            raise FormatError("incomplete conversion")
        conv = chr(fmt[i])
        if conv == "c":
            i += 1
            out += _pad(chr(next_arg() & 0xFF), spec).encode("latin-1")
            continue
        if conv == "s":
            i += 1
            s = read_str(next_arg(), False) or b""
            out += _pad(s.decode("latin-1"), spec).encode("latin-1")
            continue
        if conv == "p":
            i += 1
            v = next_arg()
            mod = fmt[i:i + 2]
            if mod[:1] in (b"k", b"u") and mod[1:2] == b"s":
                i += 2
                s = read_str(v, mod[:1] == b"u") or b""
                out += _pad(s.decode("latin-1"), spec).encode("latin-1")
            elif mod[:1] in (b"i", b"I") and mod[1:2] in (b"4", b"6"):
                i += 2
                raw = read_mem(v, 4 if mod[1:2] == b"4" else 16)
                if raw is None:
                    txt = ""
                elif mod[1:2] == b"4":
                    txt = str(ipaddress.IPv4Address(raw)) if mod[:1] == b"I" else "".join(f"{b:03d}" for b in raw)
                else:
                    txt = str(ipaddress.IPv6Address(raw)) if mod[:1] == b"I" else raw.hex()
                out += txt.encode()
            else:
                if mod[:1] in (b"x", b"K", b"B", b"S", b"s"):
                    i += 1
                out += _pad(f"{v & 0xFFFF_FFFF_FFFF_FFFF:016x}", spec).encode()
            continue
        longs = 0
        while i < n and fmt[i] == 0x6C:  # 'l'
            longs += 1
            i += 1
        if longs > 2 or i >= n:
            raise FormatError("bad length modifier")
        conv = chr(fmt[i])
        i += 1
        if conv not in "diuxX":
            raise FormatError(f"unsupported conversion %{conv}")
        v = next_arg()
        bits = 64 if longs else 32
        v &= (1 << bits) - 1
        if conv in "di" and v >> (bits - 1):
            v -= 1 << bits
        pyfmt = "%" + spec + ("d" if conv in "diu" else conv)
        out += (pyfmt % v).encode()
    return bytes(out)


def _pad(s: str, spec: str) -> str:
    width = int(spec.lstrip("0+- ") or 0)
    return s.ljust(width) if "-" in spec else s.rjust(width)


def count_conversions(fmt: bytes) -> int:
    """How many arguments the format consumes (for bpf_trace_printk's 3-argument limit)."""
    k = 0
    i = 0
    while i < len(fmt):
        if fmt[i] == 0x25:
            if i + 1 < len(fmt) and fmt[i + 1] == 0x25:
                i += 2
                continue
            k += 1
        i += 1
    return k


__all__ = ["EINVAL", "FormatError", "MAX_BPRINTF_VARARGS", "bprintf", "count_conversions"]
