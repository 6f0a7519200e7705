"""Map keys and values formatted by their BTF, exactly as bpftool's ``btf_dumper`` prints them.

This follows tools/bpf/bpftool/btf_dumper.c (``btf_dumper_type`` and the
``btf_dumper_*`` functions it dispatches to) rather than a "natural" JSON
rendering, because users compare tinyaya's ``maps dump --json`` with
``bpftool -j map dump``:

* integers of 8/16/32/64 bits print as numbers in their BTF sign
  (``btf_dumper_int``); ``_Bool`` as ``true``/``false``; a ``BTF_INT_CHAR``
  as a one-character string; 128-bit integers, bitfields and integers with a
  bit offset as *hex strings* (``"0x1f"``, ``btf_int128_print``), unsigned;
* a ``char`` array (element named exactly ``char`` or ``BTF_INT_CHAR``, not
  through a typedef) whose bytes are printable up to a NUL prints as a string
  (``is_str_array``); any other array as a list;
* an enum prints its enumerator's name, else the value as a signed integer
  (``btf_dumper_enum``/``btf_dumper_enum64``);
* structs and unions as objects keyed by member name, an anonymous member
  under the name ``""`` (bpftool does not flatten them);
* pointers as unsigned numbers (``%lu``), or ``%p`` in plain text;
* a ``VAR`` as ``{name: value}`` and a ``DATASEC`` (global data maps) as
  ``{section: [{var: value}, ...]}``.

Plain text (``bpftool map dump`` without ``-j`` on a map with BTF) is the same
tree printed by bpftool's pretty ``json_writer``, with a few tokens unquoted
(hex bitfields, ``%p`` pointers, ``0x..`` for unprintable chars). ``dump_value``
returns that tree; ``to_json`` turns it into plain Python data and
``write_pretty`` prints it the way ``json_writer.c`` does.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..obj.btf import Btf
from ..obj.btf.types import BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, MAX_RESOLVE_DEPTH, BtfKind, BtfType

_SKIP = frozenset({BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG})
#: libbpf's btf_is_mod(): the qualifiers ``is_str_array`` looks through (typedefs are not among them)
_MODS = frozenset({BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG})


class Raw(str):
    """A token bpftool writes unquoted (``jsonw_printf``) in plain text: ``0x1f``, ``(nil)``."""


@dataclass
class Fields:
    """A JSON object as bpftool writes it: ordered, and names may repeat (two anonymous members)."""

    items: list[tuple[str, Any]] = field(default_factory=list)


class BtfDumpError(ValueError):
    """The value is shorter than its type, or the type cannot be dumped (bpftool: -EINVAL)."""


@dataclass
class _Dumper:
    btf: Btf
    plain: bool

    def bytes_at(self, data: bytes, off: int, n: int) -> bytes:
        raw = data[off:off + n]
        if len(raw) < n or off < 0:
            raise BtfDumpError(f"value too short: {n} bytes needed at offset {off}, {len(data)} given")
        return raw

    def uint(self, data: bytes, off: int, n: int, signed: bool = False) -> int:
        return int.from_bytes(self.bytes_at(data, off, n), "big" if self.btf.big_endian else "little", signed=signed)

    def hex128(self, v: int) -> Any:
        """``btf_int128_print``: ``0x%llx`` (``0x%llx%016llx`` with a high half), quoted in JSON."""
        text = hex(v & ((1 << 128) - 1))
        return Raw(text) if self.plain else text

    def bitfield(self, data: bytes, off: int, nr_bits: int, bit_offset: int) -> Any:
        """``btf_dumper_bitfield``: the bits, unsigned, as a 128-bit hex number."""
        nbytes = (bit_offset + nr_bits + 7) // 8
        word = self.uint(data, off, nbytes)
        if self.btf.big_endian:
            v = word >> (nbytes * 8 - bit_offset - nr_bits)
        else:
            v = word >> bit_offset
        return self.hex128(v & ((1 << nr_bits) - 1))

    def do_type(self, type_id: int, bit_offset: int, data: bytes, off: int, depth: int = 0) -> Any:
        """``btf_dumper_do_type``: dispatch on the kind of ``type_id``."""
        if depth > MAX_RESOLVE_DEPTH:
            raise BtfDumpError(f"[{type_id}] type chain too deep")
        t = self.btf.type(type_id)
        k = t.kind
        if k == BtfKind.INT:
            return self.int_(t, bit_offset, data, off)
        if k in (BtfKind.STRUCT, BtfKind.UNION):
            return self.struct(t, data, off, depth)
        if k == BtfKind.ARRAY:
            return self.array(t, data, off, depth)
        if k == BtfKind.ENUM:
            return self.enum(t, data, off)
        if k == BtfKind.ENUM64:
            return self.enum64(t, data, off)
        if k == BtfKind.PTR:
            v = self.uint(data, off, 8)
            if self.plain:
                return Raw(hex(v) if v else "(nil)")
            return v
        if k == BtfKind.UNKN:
            return Raw("(unknown)")
        if k in _SKIP:  # btf_dumper_modifier: btf__resolve_type, then dump that
            return self.do_type(self.resolve(type_id), bit_offset, data, off, depth + 1)
        if k == BtfKind.VAR:
            return Fields([(t.name, self.do_type(t.type, bit_offset, data, off, depth + 1))])
        if k == BtfKind.DATASEC:
            return Fields([(t.name, [self.do_type(s.type, 0, data, off + s.offset, depth + 1) for s in t.secinfo])])
        if k == BtfKind.FWD:
            raise BtfDumpError("(fwd-kind-invalid)")
        raise BtfDumpError(f"(unsupported-kind {k.name})")

    def resolve(self, type_id: int) -> int:
        """libbpf ``btf__resolve_type``: through typedefs, qualifiers and vars."""
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self.btf.type(type_id)
            if t.kind not in _SKIP and t.kind != BtfKind.VAR:
                return type_id
            type_id = t.type
        raise BtfDumpError(f"[{type_id}] type chain too deep")

    def int_(self, t: BtfType, bit_offset: int, data: bytes, off: int) -> Any:
        """``btf_dumper_int``."""
        nr_bits = t.int_bits
        if bit_offset or t.int_offset or nr_bits % 8:
            total = bit_offset + t.int_offset  # btf_dumper_int_bits
            return self.bitfield(data, off + total // 8, nr_bits, total % 8)
        if nr_bits == 128:
            return self.hex128(self.uint(data, off, 16))
        enc = t.int_encoding
        if enc in (0, BTF_INT_SIGNED):
            if nr_bits not in (8, 16, 32, 64):
                return self.bitfield(data, off, nr_bits, 0)
            return self.uint(data, off, nr_bits // 8, signed=enc == BTF_INT_SIGNED)
        if enc == BTF_INT_CHAR:
            c = self.uint(data, off, 1)
            if 0x20 <= c < 0x7F:
                return chr(c)
            return Raw(f"0x{c:x}") if self.plain else chr(c)
        if enc == BTF_INT_BOOL:
            return bool(self.uint(data, off, 1))
        raise BtfDumpError(f"[{t.id}] int encoding {enc:#x}")

    def struct(self, t: BtfType, data: bytes, off: int, depth: int) -> Fields:
        """``btf_dumper_struct`` (unions too): every member by name, in order."""
        out = Fields()
        for m in t.members:
            moff = off + m.bit_offset // 8
            if m.bitfield_size:
                out.items.append((m.name, self.bitfield(data, moff, m.bitfield_size, m.bit_offset % 8)))
            else:
                out.items.append((m.name, self.do_type(m.type, m.bit_offset % 8, data, moff, depth + 1)))
        return out

    def size_of(self, type_id: int) -> int:
        try:
            return self.btf.size_of(type_id)
        except Exception as e:  # noqa: BLE001 - a type without a size cannot be dumped
            raise BtfDumpError(f"[{type_id}] has no size: {e}") from None

    def is_str_array(self, t: BtfType, data: bytes, off: int) -> bool:
        """bpftool ``is_str_array``: ``char`` elements, printable bytes up to a NUL within the array."""
        if not t.array_nelems:
            return False
        elem = self.btf.type(t.array_type)
        for _ in range(MAX_RESOLVE_DEPTH):
            if elem.kind not in _MODS:
                break
            elem = self.btf.type(elem.type)
        if elem.kind != BtfKind.INT or elem.size != 1:
            return False
        if elem.int_encoding != BTF_INT_CHAR and elem.name != "char":
            return False
        for c in data[off:off + t.array_nelems]:
            if c == 0:
                return True
            if c <= 0x1F or c >= 0x7F:
                return False
        return False

    def array(self, t: BtfType, data: bytes, off: int, depth: int) -> Any:
        """``btf_dumper_array``: a string for a C string in a char array, else a list."""
        elem_size = self.size_of(t.array_type)
        self.bytes_at(data, off, elem_size * t.array_nelems)
        if self.is_str_array(t, data, off):
            return data[off:off + t.array_nelems].split(b"\0", 1)[0].decode("ascii")
        return [self.do_type(t.array_type, 0, data, off + i * elem_size, depth + 1) for i in range(t.array_nelems)]

    def enum(self, t: BtfType, data: bytes, off: int) -> Any:
        """``btf_dumper_enum``: the value sign-extended from its size, matched against the s32 enumerators."""
        if t.size not in (1, 2, 4, 8):
            raise BtfDumpError(f"[{t.id}] enum of size {t.size}")
        v = self.uint(data, off, t.size, signed=True)
        for ev in t.enum_values:
            val = ev.value & 0xFFFFFFFF
            if val >> 31:
                val -= 1 << 32
            if v == val:
                return ev.name
        return v

    def enum64(self, t: BtfType, data: bytes, off: int) -> Any:
        """``btf_dumper_enum64``: 64-bit compare; unmatched values print signed (``jsonw_int``)."""
        v = self.uint(data, off, 8)
        for ev in t.enum_values:
            if ev.value & 0xFFFFFFFFFFFFFFFF == v:
                return ev.name
        return v - (1 << 64) if v >> 63 else v


def dump_value(btf: Btf, type_id: int, data: bytes, *, plain: bool = False) -> Any:
    """``btf_dumper_type``: ``data`` as ``type_id``, as a tree of scalars, lists, ``Fields`` and ``Raw``.

    Raises ``BtfDumpError`` when the data is shorter than the type or the type can't be dumped.
    """
    return _Dumper(btf, plain).do_type(type_id, 0, bytes(data), 0)


def to_json(node: Any) -> Any:
    """The tree as JSON-able Python data (a repeated name keeps its first place and last value, as json.loads)."""
    if isinstance(node, Fields):
        out: dict[str, Any] = {}
        for k, v in node.items:
            out[k] = to_json(v)
        return out
    if isinstance(node, list):
        return [to_json(v) for v in node]
    if isinstance(node, Raw):
        return str(node)
    return node


def format_json(btf: Btf, type_id: int, data: bytes) -> Any:
    """The ``formatted`` key or value of ``bpftool -j map dump``."""
    return to_json(dump_value(btf, type_id, data))


# --- bpftool's pretty json_writer (tools/bpf/bpftool/json_writer.c) ------------------------------


def _quote(s: str) -> str:
    """``jsonw_puts``: a quoted string with bpftool's escapes."""
    esc = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\b": "\\b", "\\": "\\\\", '"': '\\"'}
    return '"' + "".join(esc.get(c, c) for c in s) + '"'


def _scalar(v: Any) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _quote(v)
    if v is None:
        return "null"
    return str(v)


class PrettyWriter:
    """``json_writer_t`` with ``jsonw_pretty(true)``: 4-space indents, a newline before every name.

    Values in arrays get no newline of their own, which gives bpftool's ``[{`` and ``},{``.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.depth = 0
        self.sep = ""

    def _eor(self) -> None:
        if self.sep:
            self.parts.append(self.sep)
        self.sep = ","

    def _eol(self) -> None:
        self.parts.append("\n" + "    " * self.depth)

    def begin(self, c: str) -> None:
        self._eor()
        self.parts.append(c)
        self.depth += 1
        self.sep = ""

    def end(self, c: str) -> None:
        self.depth -= 1
        if self.sep:
            self._eol()
        self.parts.append(c)
        self.sep = ","

    def name(self, n: str) -> None:
        self._eor()
        self._eol()
        self.sep = ""
        self.parts.append(_quote(n) + ": ")

    def value(self, node: Any) -> None:
        if isinstance(node, Fields):
            self.begin("{")
            for k, v in node.items:
                self.name(k)
                self.value(v)
            self.end("}")
        elif isinstance(node, list):
            self.begin("[")
            for v in node:
                self.value(v)
            self.end("]")
        else:
            self._eor()
            self.parts.append(_scalar(node))

    def text(self) -> str:
        return "".join(self.parts)


def write_pretty(nodes: list[Any]) -> str:
    """A top-level array of ``nodes`` as bpftool prints it, with the final newline of ``jsonw_destroy``."""
    w = PrettyWriter()
    w.value(list(nodes))
    return w.text() + "\n"


def write_pretty_one(node: Any) -> str:
    """One value as bpftool's pretty writer prints it (``map lookup``), with the final newline."""
    w = PrettyWriter()
    w.value(node)
    return w.text() + "\n"


def iter_fields(node: Any) -> Iterator[tuple[str, Any]]:
    """The (name, value) pairs of a ``Fields`` node (for tests and tables)."""
    if isinstance(node, Fields):
        yield from node.items
