"""Printing BTF types as C and values as JSON-able objects.

``format_type`` writes C declarations the way ``bpftool btf dump format c``
does; ``format_value`` follows bpftool's ``btf_dumper`` (tools/bpf/bpftool/
btf_dumper.c): integers as numbers, ``char`` arrays holding a string as the
string, structs as objects keyed by member, arrays as lists, enums by
enumerator name, pointers as numbers, 128-bit integers as hex strings.
"""
from __future__ import annotations

import struct

from ..errors import BtfError
from .types import BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, MAX_RESOLVE_DEPTH, Btf, BtfKind, BtfType

_MAX_MEMBERS_SHOWN = 4096


def _base(btf: Btf, t: BtfType, indent: int) -> str:
    k = t.kind
    if k == BtfKind.UNKN:
        return "void"
    if k in (BtfKind.INT, BtfKind.FLOAT, BtfKind.TYPEDEF):
        return t.name
    if k in (BtfKind.STRUCT, BtfKind.UNION):
        kw = "struct" if k == BtfKind.STRUCT else "union"
        if t.name:
            return f"{kw} {t.name}"
        return _body(btf, t, indent) if indent < MAX_RESOLVE_DEPTH else f"{kw} {{...}}"
    if k in (BtfKind.ENUM, BtfKind.ENUM64):
        return f"enum {t.name}" if t.name else _enum_body(t, indent)
    if k == BtfKind.FWD:
        return f"{'union' if t.kind_flag else 'struct'} {t.name}"
    return t.name or k.name.lower()


def _decl(btf: Btf, type_id: int, name: str, depth: int = 0, indent: int = 0) -> str:
    """Render ``type_id`` declaring ``name`` (C declarator syntax, inside out)."""
    if depth > MAX_RESOLVE_DEPTH:
        raise BtfError(f"[{type_id}] Loop detected", type_id=type_id)
    t = btf.type(type_id)
    k = t.kind
    if k == BtfKind.PTR:
        target = btf.type(t.type)
        inner = f"* {name}" if name.startswith("(") else f"*{name}"  # bpftool: "struct x * (*fn)(...)"
        if target.kind in (BtfKind.ARRAY, BtfKind.FUNC_PROTO):
            inner = f"(*{name})"
        return _decl(btf, t.type, inner, depth + 1, indent)
    if k == BtfKind.ARRAY:
        return _decl(btf, t.array_type, f"{name}[{t.array_nelems}]", depth + 1, indent)
    if k in (BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT):
        qual = k.name.lower()
        if btf.type(t.type).kind == BtfKind.PTR:
            return _decl(btf, t.type, f" {qual} {name}".rstrip(), depth + 1, indent)
        inner = _decl(btf, t.type, name, depth + 1, indent)
        return inner if inner.startswith(f"{qual} ") else f"{qual} {inner}"
    if k == BtfKind.TYPE_TAG:
        return _decl(btf, t.type, f"__attribute__((btf_type_tag(\"{t.name}\"))) {name}".rstrip(), depth + 1,
                     indent)
    if k == BtfKind.FUNC_PROTO:
        params = ", ".join(_decl(btf, p.type, p.name, depth + 1, indent) if p.type else "..."
                           for p in t.members)
        return _decl(btf, t.type, f"{name}({params or 'void'})", depth + 1, indent)
    if k in (BtfKind.FUNC, BtfKind.VAR):
        return _decl(btf, t.type, name or t.name, depth + 1, indent)
    base = _base(btf, t, indent)
    if not name:
        return base
    return f"{base}{name}" if name.startswith("[") else f"{base} {name.lstrip()}" if name.startswith(" ") \
        else f"{base} {name}"


def align_of(btf: Btf, type_id: int, depth: int = 0) -> int:
    """libbpf ``btf__align_of`` (pointer size 8): packed structs align to 1."""
    t = btf.resolve(type_id)
    if depth > MAX_RESOLVE_DEPTH:
        raise BtfError(f"[{type_id}] Loop detected", type_id=type_id)
    if t.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FLOAT):
        return max(1, min(8, t.size))
    if t.kind == BtfKind.PTR:
        return 8
    if t.kind == BtfKind.ARRAY:
        return align_of(btf, t.array_type, depth + 1)
    if t.kind in (BtfKind.STRUCT, BtfKind.UNION):
        max_align = 1
        for m in t.members:
            a = align_of(btf, m.type, depth + 1)
            max_align = max(max_align, a)
            if not m.bitfield_size and m.bit_offset % (8 * a):
                return 1
        return 1 if t.size % max_align else max_align
    return 1


def _is_packed(btf: Btf, t: BtfType) -> bool:
    """bpftool ``btf_is_struct_packed``: a member off its natural alignment, or an odd size."""
    max_align = 1
    for m in t.members:
        a = align_of(btf, m.type)
        if not m.bitfield_size and m.bit_offset % (8 * a):
            return True
        max_align = max(max_align, a)
    return bool(t.size % max_align)


_PADS = (("long", 64), ("int", 32), ("short", 16), ("char", 8))


def _padding(cur: int, nxt: int, next_align: int, in_bitfield: bool) -> list[str]:
    """bpftool ``btf_dump_emit_bit_padding``: anonymous bitfields that reproduce a gap's layout."""
    out: list[str] = []
    if cur >= nxt:
        return out
    # the largest of long/int/short/char whose alignment boundary the gap reaches
    pad_type, pad_bits = next(((n, b) for n, b in _PADS if -(-cur // b) * b <= nxt), _PADS[-1])
    new = -(-cur // pad_bits) * pad_bits
    if cur < new <= nxt:
        if in_bitfield or (new == nxt and -(-cur // (next_align * 8)) * next_align * 8 != new) or \
                (new != nxt and nxt - new <= new - cur):
            out.append(f"{pad_type}: {new - cur if in_bitfield else 0};")
        cur = new
    while cur != nxt:
        bits = min(nxt - cur, pad_bits)
        if bits == pad_bits:
            out.append(f"{pad_type}: {pad_bits};")
        else:
            name = next(n for n, b in reversed(_PADS) if b >= bits)
            out.append(f"{name}: {bits};")
        cur += bits
    return out


def _body(btf: Btf, t: BtfType, indent: int = 0) -> str:
    """A struct/union definition laid out as ``bpftool btf dump format c`` does (padding, packed)."""
    kw = "struct" if t.kind == BtfKind.STRUCT else "union"
    is_struct = t.kind == BtfKind.STRUCT
    pad = "\t" * (indent + 1)
    lines = [f"{kw} {t.name + ' ' if t.name else ''}{{"]
    packed = _is_packed(btf, t)
    off = 0
    prev_bitfield = False
    for m in t.members[:_MAX_MEMBERS_SHOWN]:
        if is_struct:
            align = 1 if packed else align_of(btf, m.type)
            in_bitfield = prev_bitfield and m.bitfield_size != 0
            lines += [pad + p for p in _padding(off, m.bit_offset, align, in_bitfield)]
        text = _decl(btf, m.type, m.name, 0, indent + 1)
        if m.bitfield_size:
            lines.append(f"{pad}{text}: {m.bitfield_size};")
            off = m.bit_offset + m.bitfield_size
            prev_bitfield = True
        else:
            lines.append(f"{pad}{text};")
            try:
                size = btf.size_of(m.type)
            except BtfError:
                size = 0
            off = m.bit_offset + size * 8
            prev_bitfield = False
    if is_struct and len(t.members) <= _MAX_MEMBERS_SHOWN:
        lines += [pad + p for p in _padding(off, t.size * 8, 1 if packed else align_of(btf, t.id), False)]
    if len(lines) == 1:
        return f"{kw} {t.name + ' ' if t.name else ''}{{}}" + (" __attribute__((packed))" if packed else "")
    lines.append("\t" * indent + "}" + (" __attribute__((packed))" if packed else ""))
    return "\n".join(lines)


def _enum_body(t: BtfType, indent: int = 0) -> str:
    """bpftool's layout: one enumerator per line, each with a trailing comma."""
    pad = "\t" * (indent + 1)
    lines = [f"enum {t.name + ' ' if t.name else ''}{{"]
    suffix = ("LL" if t.kind_flag else "ULL") if t.kind == BtfKind.ENUM64 else ""
    lines += [f"{pad}{v.name} = {v.value}{suffix}," for v in t.enum_values[:_MAX_MEMBERS_SHOWN]]
    lines.append("\t" * indent + "}")
    return "\n".join(lines)


def type_name(btf: Btf, type_id: int) -> str:
    """The C spelling of a type without a declared name (``unsigned int``, ``char[16]``, ``struct x *``)."""
    return _decl(btf, type_id, "").strip()


def format_type(btf: Btf, type_id: int) -> str:
    """A C declaration: full definitions for structs, unions and enums; typedefs, functions and variables."""
    t = btf.type(type_id)
    k = t.kind
    if k in (BtfKind.STRUCT, BtfKind.UNION):
        return _body(btf, t) + ";"
    if k in (BtfKind.ENUM, BtfKind.ENUM64):
        return _enum_body(t) + ";"
    if k == BtfKind.TYPEDEF:
        return f"typedef {_decl(btf, t.type, t.name)};"
    if k == BtfKind.FUNC:
        linkage = {0: "static ", 1: "", 2: "extern "}.get(t.linkage, "")
        return f"{linkage}{_decl(btf, t.type, t.name)};"
    if k == BtfKind.VAR:
        linkage = {0: "static ", 1: "", 2: "extern "}.get(t.linkage, "")
        return f"{linkage}{_decl(btf, t.type, t.name)};"
    if k == BtfKind.DATASEC:
        lines = [f"SEC(\"{t.name}\") /* size {t.size} */"]
        for s in t.secinfo:
            lines.append(f"\t/* offset {s.offset} size {s.size} */ {format_type(btf, s.type)}")
        return "\n".join(lines)
    if k == BtfKind.DECL_TAG:
        return f"__attribute__((btf_decl_tag(\"{t.name}\"))) /* on [{t.type}] component {t.component_idx} */"
    if k == BtfKind.FWD:
        return f"{_base(btf, t, 0)};"
    return type_name(btf, type_id)


# --- values ------------------------------------------------------------------------------------


def _is_char(btf: Btf, type_id: int) -> bool:
    """bpftool ``is_str_array``'s element test: through qualifiers (not typedefs) to a 1-byte INT
    that is BTF_INT_CHAR or named exactly ``char``."""
    t = btf.type(type_id)
    for _ in range(MAX_RESOLVE_DEPTH):
        if t.kind not in (BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT, BtfKind.TYPE_TAG):
            break
        t = btf.type(t.type)
    return t.kind == BtfKind.INT and t.size == 1 and (bool(t.int_encoding & BTF_INT_CHAR) or t.name == "char")


def _is_str(data: bytes) -> bool:
    """bpftool ``is_str_array``: bytes 0x20..0x7e up to a NUL inside the array."""
    for c in data:
        if c == 0:
            return True
        if c <= 0x1F or c >= 0x7F:
            return False
    return False


def _int(data: bytes, off: int, size: int, signed: bool, big: bool) -> int:
    raw = data[off:off + size]
    if len(raw) < size:
        raise BtfError("value shorter than its type")
    return int.from_bytes(raw, "big" if big else "little", signed=signed)


def format_value(btf: Btf, type_id: int, data: bytes, *, _depth: int = 0) -> object:
    """Render ``data`` as ``type_id`` the way ``bpftool -j map dump`` writes ``formatted``
    (tools/bpf/bpftool/btf_dumper.c): numbers, bitfields and 128-bit integers as hex strings,
    char arrays holding a string as the string, enums by name, a DATASEC as
    ``{section: [{var: value}, ...]}``. Raises ``BtfError`` on short data."""
    return _value(btf, type_id, bytes(data), 0, 0, 0, _depth)


def _value(btf: Btf, type_id: int, data: bytes, off: int, bit_off: int, bits: int, depth: int) -> object:
    if depth > MAX_RESOLVE_DEPTH:
        raise BtfError(f"[{type_id}] Loop detected", type_id=type_id)
    big = btf.big_endian
    t = btf.resolve(type_id)
    k = t.kind
    if k == BtfKind.VAR:
        return {t.name: _value(btf, t.type, data, off, 0, 0, depth + 1)}
    if bits:  # a bitfield member: extract from the containing storage
        size = btf.size_of(t.id) if k in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64) else 8
        nbytes = (bit_off % 8 + bits + 7) // 8
        start = off + bit_off // 8
        raw = data[start:start + nbytes]
        if len(raw) < nbytes:
            raise BtfError("value shorter than its type")
        word = int.from_bytes(raw, "big" if big else "little")
        if big:
            shift = nbytes * 8 - (bit_off % 8) - bits
        else:
            shift = bit_off % 8
        v = (word >> shift) & ((1 << bits) - 1)
        del size
        return f"0x{v:x}"  # btf_dumper_bitfield: unsigned, in hex
    if k == BtfKind.INT:
        if t.int_bits and t.int_bits < t.size * 8 or t.int_offset:
            return _value(btf, type_id, data, off, t.int_offset, t.int_bits, depth + 1) if t.int_bits else 0
        signed = bool(t.int_encoding & BTF_INT_SIGNED)
        if t.size == 16:
            return hex(_int(data, off, 16, False, big))
        v = _int(data, off, t.size, signed, big)
        if t.int_encoding & BTF_INT_BOOL:
            return bool(v)
        if t.int_encoding & BTF_INT_CHAR:
            return chr(v & 0xFF)
        return v
    if k == BtfKind.PTR:
        return _int(data, off, 8, False, big)
    if k in (BtfKind.ENUM, BtfKind.ENUM64):
        v = _int(data, off, t.size, bool(t.kind_flag), big)
        for ev in t.enum_values:
            if ev.value == v or ev.value & ((1 << (8 * t.size)) - 1) == v:
                return ev.name
        return _int(data, off, t.size, True, big)  # btf_dumper_enum: the value, signed
    if k == BtfKind.FLOAT:
        raw = data[off:off + t.size]
        if len(raw) < t.size:
            raise BtfError("value shorter than its type")
        fmt = {4: "f", 8: "d"}.get(t.size)
        if fmt is None:
            return "0x" + raw.hex()
        return struct.unpack((">" if big else "<") + fmt, raw)[0]
    if k == BtfKind.ARRAY:
        elem_size = btf.size_of(t.array_type)
        n = t.array_nelems
        if off + elem_size * n > len(data):
            raise BtfError("value shorter than its type")
        if n and elem_size == 1 and _is_char(btf, t.array_type) and _is_str(data[off:off + n]):
            return data[off:off + n].split(b"\0", 1)[0].decode("ascii")
        return [_value(btf, t.array_type, data, off + i * elem_size, 0, 0, depth + 1) for i in range(n)]
    if k in (BtfKind.STRUCT, BtfKind.UNION):
        out: dict[str, object] = {}
        for m in t.members:
            mv = _value(btf, m.type, data, off + (0 if m.bitfield_size else m.bit_offset // 8),
                        m.bit_offset if m.bitfield_size else 0, m.bitfield_size, depth + 1)
            out[m.name] = mv  # an anonymous member under "" (bpftool does not flatten)
        return out
    if k == BtfKind.DATASEC:  # btf_dumper_datasec: {section: [{var: value}, ...]}
        return {t.name: [_value(btf, s.type, data, off + s.offset, 0, 0, depth + 1) for s in t.secinfo]}
    raw = data[off:]
    return "0x" + raw.hex()
