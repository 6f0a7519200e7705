"""The ``.BTF`` section: header, type records and string table (uapi linux/btf.h).

``struct btf_header { __u16 magic; __u8 version; __u8 flags; __u32 hdr_len;
__u32 type_off, type_len, str_off, str_len; }``, then ``struct btf_type``
records (``name_off``, ``info`` = vlen:16 | kind:5 << 24 | kind_flag << 31,
``size``/``type``) each followed by its kind's trailing data. Checks mirror the
kernel's ``btf_parse_hdr``/``btf_check_sec_info``/``btf_parse_str_sec``/
``btf_check_all_metas`` and their log wording, so the simulated kernel's
BPF_BTF_LOAD can reuse them.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import BtfError

BTF_MAGIC = 0xEB9F
BTF_MAX_TYPE = 0x000FFFFF
BTF_MAX_NAME_OFFSET = 0x00FFFFFF
BTF_MAX_VLEN = 0xFFFF
MAX_RESOLVE_DEPTH = 32


class BtfKind(IntEnum):
    """``BTF_KIND_*`` (uapi linux/btf.h)."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


BTF_INT_SIGNED = 1 << 0
BTF_INT_CHAR = 1 << 1
BTF_INT_BOOL = 1 << 2

MODIFIERS = frozenset({BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG})
_REF_KINDS = frozenset({BtfKind.PTR, BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT,
                        BtfKind.FUNC, BtfKind.VAR, BtfKind.DECL_TAG, BtfKind.TYPE_TAG})


@dataclass(frozen=True, slots=True)
class BtfMember:
    """``struct btf_member`` (STRUCT/UNION) or ``struct btf_param`` (FUNC_PROTO; offset 0)."""

    name: str
    type: int
    bit_offset: int = 0
    bitfield_size: int = 0
    name_off: int = 0


@dataclass(frozen=True, slots=True)
class BtfEnumValue:
    name: str
    value: int
    name_off: int = 0


@dataclass(frozen=True, slots=True)
class BtfVarSecinfo:
    """``struct btf_var_secinfo`` of a DATASEC."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class BtfType:
    """One type record. ``size_or_type`` is the raw union; the kind-specific views are filled per kind."""

    id: int
    kind: BtfKind
    name: str
    name_off: int
    vlen: int
    kind_flag: bool
    size_or_type: int
    members: tuple[BtfMember, ...] = ()  # STRUCT, UNION, FUNC_PROTO params
    enum_values: tuple[BtfEnumValue, ...] = ()  # ENUM, ENUM64
    secinfo: tuple[BtfVarSecinfo, ...] = ()  # DATASEC
    array_type: int = 0
    array_index_type: int = 0
    array_nelems: int = 0
    int_encoding: int = 0
    int_offset: int = 0
    int_bits: int = 0
    linkage: int = 0  # VAR, FUNC (vlen)
    component_idx: int = -1  # DECL_TAG
    int_data: int = 0  # INT: the raw encoding word
    offset: int = 0  # byte offset of the record in the type section

    @property
    def size(self) -> int:
        return self.size_or_type

    @property
    def type(self) -> int:
        return self.size_or_type

    @property
    def kind_name(self) -> str:
        return self.kind.name


VOID = BtfType(0, BtfKind.UNKN, "void", 0, 0, False, 0)


@dataclass
class Btf:
    """A parsed ``.BTF``: ``types[id]`` (id 0 is void) and the string table."""

    types: list[BtfType]
    strings: bytes
    big_endian: bool = False
    raw: bytes = b""
    _by_name: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _lenient_names: bool = field(default=False, repr=False)

    # --- parsing ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes, endian: str | bool | None = None, *,
              on_type: Callable[[Btf, BtfType], None] | None = None) -> Btf:
        """Parse and check ``.BTF`` bytes; ``endian`` ("little"/"big"/True for big) or None to detect.

        Raises ``BtfError`` whose ``reason`` is the kernel verifier's wording. ``on_type`` is
        called on each type as soon as it is read (the kernel checks each type's meta in order);
        with it, the structural id checks are left to the caller.
        """
        data = bytes(data)
        if len(data) < 8:
            raise BtfError("hdr_len not found")
        if endian is None:
            big = data[:2] == b"\xeb\x9f"
        elif isinstance(endian, bool):
            big = endian
        else:
            big = str(endian) in ("big", "Endianness.BIG")
        e = ">" if big else "<"
        magic, version, flags, hdr_len = struct.unpack_from(e + "HBBI", data, 0)
        # kernel btf_parse_hdr: a shorter header reads as zeros, a longer one must be zero-padded
        if hdr_len > len(data):
            raise BtfError("btf_header not found")
        if hdr_len > 24 and any(data[24:hdr_len]):
            raise BtfError("Unsupported btf_header")
        header = data[:min(hdr_len, 24)].ljust(24, b"\0")
        if magic != BTF_MAGIC:
            raise BtfError("Invalid magic", magic=magic)
        if version != 1:
            raise BtfError("Unsupported version")
        if flags:
            raise BtfError("Unsupported flags")
        type_off, type_len, str_off, str_len = struct.unpack_from(e + "IIII", header, 8)
        if type_off % 4:
            raise BtfError("Unaligned type_off")
        # kernel btf_check_sec_info: sections in offset order, inside the data, not overlapping
        body = len(data) - hdr_len
        total = 0
        for off, length in sorted([(type_off, type_len), (str_off, str_len)]):
            if body < off:
                raise BtfError("Invalid section offset")
            if total < off and on_type is not None:
                raise BtfError("Unsupported section found")
            if total > off:
                raise BtfError("Section overlap found")
            if body - max(total, off) < length:
                raise BtfError("Total section length too long")
            total = max(total, off) + length
        if on_type is not None and total != body:
            raise BtfError("Unsupported section found")
        strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
        if not strings or strings[0] != 0 or strings[-1] != 0 or str_len > BTF_MAX_NAME_OFFSET:
            raise BtfError("Invalid string section")
        tdata = data[hdr_len + type_off:hdr_len + type_off + type_len]
        btf = cls([VOID], strings, big, data)
        btf._lenient_names = on_type is not None
        btf._parse_types(tdata, e, on_type)
        if on_type is None:
            btf._check()
        for t in btf.types[1:]:
            if t.name:
                btf._by_name.setdefault(t.name, []).append(t.id)
        return btf

    def _str(self, off: int, what: str = "name_offset", tid: int | None = None) -> str:
        if off >= len(self.strings) and self._lenient_names and what != "name_offset":
            return ""  # kernel order: reported by check_meta after the type's own name
        if off >= len(self.strings):
            prefix = f"[{tid}] " if tid is not None else ""
            raise BtfError(f"{prefix}Invalid {what}:{off}", type_id=tid)
        end = self.strings.find(b"\0", off)
        return self.strings[off:end].decode("utf-8", errors="replace")

    def raw_string_at(self, off: int) -> bytes:
        """The undecoded bytes of the string at ``off`` (b"" if out of range)."""
        if off >= len(self.strings):
            return b""
        return self.strings[off:self.strings.find(b"\0", off)]

    def string_at(self, off: int) -> str:
        """The string at ``off`` in the string section (``BtfError`` "Invalid name_offset" if out of range)."""
        return self._str(off)

    def _parse_types(self, d: bytes, e: str, on_type: Callable[[Btf, BtfType], None] | None = None) -> None:
        pos = 0
        n = len(d)
        u32 = struct.Struct(e + "I")
        while pos < n:
            if n - pos < 12:
                raise BtfError("btf_type truncated", offset=pos)
            if len(self.types) > BTF_MAX_TYPE:
                raise BtfError("Exceeded max num of types")
            name_off, info, st = struct.unpack_from(e + "III", d, pos)
            start = pos
            pos += 12
            vlen = info & 0xFFFF
            kind_v = (info >> 24) & 0x1F
            kflag = bool(info >> 31)
            tid = len(self.types)
            if info & 0x60FF0000:  # bits outside BTF_INFO_MASK
                raise BtfError(f"[{tid}] Invalid btf_info:{info:x}", type_id=tid, reason=f"Invalid btf_info:{info:x}")
            if not 0 < kind_v <= BtfKind.ENUM64:
                raise BtfError(f"[{tid}] Invalid kind:{kind_v}", type_id=tid)
            kind = BtfKind(kind_v)
            name = self._str(name_off, tid=tid)
            kw: dict = {}

            def need(size: int, what: str, _pos: int = pos, _tid: int = tid, _name: str = name) -> None:
                if n - _pos < size:
                    raise BtfError(f"[{_tid}] {what} {_name or '(anon)'} meta_left:{n - _pos} meta_needed:{size}",
                                   type_id=_tid)

            if kind == BtfKind.INT:
                need(4, "INT")
                v = u32.unpack_from(d, pos)[0]
                kw.update(int_encoding=(v >> 24) & 0xF, int_offset=(v >> 16) & 0xFF, int_bits=v & 0xFF, int_data=v)
                pos += 4
            elif kind == BtfKind.ARRAY:
                need(12, "ARRAY")
                a, ix, ne = struct.unpack_from(e + "III", d, pos)
                kw.update(array_type=a, array_index_type=ix, array_nelems=ne)
                pos += 12
            elif kind in (BtfKind.STRUCT, BtfKind.UNION):
                need(12 * vlen, kind.name)
                mems = []
                for i in range(vlen):
                    mn, mt, mo = struct.unpack_from(e + "III", d, pos + 12 * i)
                    if kflag:
                        mems.append(BtfMember(self._str(mn, 'member name_offset', tid), mt, mo & 0xFFFFFF, mo >> 24, mn))
                    else:
                        mems.append(BtfMember(self._str(mn, 'member name_offset', tid), mt, mo, 0, mn))
                kw["members"] = tuple(mems)
                pos += 12 * vlen
            elif kind == BtfKind.ENUM:
                need(8 * vlen, "ENUM")
                signed = kflag
                vals = []
                for i in range(vlen):
                    vn, vv = struct.unpack_from(e + ("Ii" if signed else "II"), d, pos + 8 * i)
                    vals.append(BtfEnumValue(self._str(vn, 'enum name_offset', tid), vv, vn))
                kw["enum_values"] = tuple(vals)
                pos += 8 * vlen
            elif kind == BtfKind.ENUM64:
                need(12 * vlen, "ENUM64")
                vals = []
                for i in range(vlen):
                    vn, lo, hi = struct.unpack_from(e + "III", d, pos + 12 * i)
                    v64 = (hi << 32) | lo
                    if kflag and v64 >> 63:
                        v64 -= 1 << 64
                    vals.append(BtfEnumValue(self._str(vn, 'enum name_offset', tid), v64, vn))
                kw["enum_values"] = tuple(vals)
                pos += 12 * vlen
            elif kind == BtfKind.FUNC_PROTO:
                need(8 * vlen, "FUNC_PROTO")
                params = []
                for i in range(vlen):
                    pn, pt = struct.unpack_from(e + "II", d, pos + 8 * i)
                    params.append(BtfMember(self._str(pn, 'param name_offset', tid), pt, name_off=pn))
                kw["members"] = tuple(params)
                pos += 8 * vlen
            elif kind == BtfKind.VAR:
                need(4, "VAR")
                kw["linkage"] = u32.unpack_from(d, pos)[0]
                pos += 4
            elif kind == BtfKind.DATASEC:
                need(12 * vlen, "DATASEC")
                kw["secinfo"] = tuple(BtfVarSecinfo(*struct.unpack_from(e + "III", d, pos + 12 * i))
                                      for i in range(vlen))
                pos += 12 * vlen
            elif kind == BtfKind.DECL_TAG:
                need(4, "DECL_TAG")
                kw["component_idx"] = struct.unpack_from(e + "i", d, pos)[0]
                pos += 4
            elif kind == BtfKind.FUNC:
                kw["linkage"] = vlen
            t = BtfType(tid, kind, name, name_off, vlen, kflag, st, offset=start, **kw)
            self.types.append(t)
            if on_type is not None:
                on_type(self, t)

    def _check(self) -> None:
        """Structural checks every user needs: referenced type ids exist. The kernel's stricter
        per-kind rules are in ``verify.check_for_kernel`` (libbpf parses objects leniently too)."""
        nr = len(self.types)

        def ref(t: BtfType, tid: int) -> None:
            if tid >= nr:
                raise BtfError(f"[{t.id}] {t.kind.name} {t.name or '(anon)'} Invalid type_id", type_id=t.id)

        for t in self.types[1:]:
            k = t.kind
            if k in _REF_KINDS:
                ref(t, t.type)
            if k == BtfKind.ARRAY:
                ref(t, t.array_type)
                ref(t, t.array_index_type)
            elif k in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.FUNC_PROTO):
                for m in t.members:
                    ref(t, m.type)
                if k == BtfKind.FUNC_PROTO:
                    ref(t, t.type)
            elif k == BtfKind.DATASEC:
                for s in t.secinfo:
                    ref(t, s.type)

    @classmethod
    def parse_for_kernel(cls, data: bytes) -> Btf:
        """What BPF_BTF_LOAD accepts: native (little-endian) BTF passing every check, including
        ``check_for_kernel``. Raises ``BtfError`` (``.reason``, ``.errno``) otherwise."""
        from .verify import check_for_kernel, check_meta

        btf = cls.parse(data, "little", on_type=check_meta)
        check_for_kernel(btf, metas_done=True)
        return btf

    def check_for_kernel(self) -> None:
        """The kernel's BTF verifier rules (kernel/bpf/btf.c ``btf_check_all_metas`` and
        ``btf_check_all_types``), which a compiled object may need fixing up to pass."""
        from .verify import check_for_kernel

        check_for_kernel(self)

    def with_datasec_layout(self, sizes: dict[str, int], offsets: dict[tuple[str, str], int],
                            allocate: frozenset[str] = frozenset()) -> Btf:
        """A copy whose DATASEC sizes and variable offsets come from the ELF (libbpf
        ``btf_fixup_datasec``, aya ``Btf::fixup_and_sanitize``): clang leaves DATASEC size 0 and
        often every variable offset 0. ``sizes`` is section name -> size, ``offsets`` is
        (section, variable) -> symbol value. VARs named in ``allocate`` (``__kconfig`` externs) become
        ``BTF_VAR_GLOBAL_ALLOCATED``, as libbpf makes them (the kernel refuses extern VARs).
        The raw bytes are patched, so ``raw`` stays loadable."""
        e = ">" if self.big_endian else "<"
        hdr_len, type_off = struct.unpack_from(e + "I", self.raw, 4)[0], struct.unpack_from(e + "I", self.raw, 8)[0]
        buf = bytearray(self.raw)
        changed = False
        for t in self.types[1:]:
            if t.kind == BtfKind.VAR and t.name in allocate and t.linkage == 2:
                struct.pack_into(e + "I", buf, hdr_len + type_off + t.offset + 12, 1)
                changed = True
            if t.kind != BtfKind.DATASEC or t.name not in sizes:
                continue
            rec = hdr_len + type_off + t.offset
            if t.size != sizes[t.name] and sizes[t.name] <= 0xFFFFFFFF:
                struct.pack_into(e + "I", buf, rec + 8, sizes[t.name])
                changed = True
            for i, vs in enumerate(t.secinfo):
                var = self.types[vs.type] if vs.type < len(self.types) else None
                if var is None or var.kind != BtfKind.VAR:
                    continue
                off = offsets.get((t.name, var.name))
                if off is not None and off != vs.offset and off <= 0xFFFFFFFF:
                    struct.pack_into(e + "I", buf, rec + 12 + 12 * i + 4, off)
                    changed = True
            # the kernel wants a DATASEC's variables in increasing offset order (btf_datasec_resolve)
            entries = [struct.unpack_from(e + "III", buf, rec + 12 + 12 * i) for i in range(len(t.secinfo))]
            ordered = sorted(entries, key=lambda v: v[1])
            if ordered != entries:
                for i, v in enumerate(ordered):
                    struct.pack_into(e + "III", buf, rec + 12 + 12 * i, *v)
                changed = True
        return Btf.parse(bytes(buf), self.big_endian) if changed else self

    def with_ksyms_sanitized(self) -> Btf:
        """A copy the kernel accepts although the object declares ``__ksym`` externs.

        The ``.ksyms`` DATASEC lists FUNC externs and has size 0, both of which BTF_LOAD
        refuses; libbpf swaps in dummy int VARs (``bpf_object__collect_externs``). Keeping
        every type id, this rewrites the DATASEC record in place as an anonymous STRUCT of
        ``int`` members (same record size), and makes extern VARs allocated globals.
        """
        ds = self.datasec(".ksyms")
        int_t = next((t for t in self.types[1:] if t.kind == BtfKind.INT and t.size == 4 and t.int_bits == 32
                      and not t.int_offset), None)
        if ds is None or int_t is None:
            return self
        e = ">" if self.big_endian else "<"
        hdr_len, type_off = struct.unpack_from(e + "II", self.raw, 4)[0], struct.unpack_from(e + "I", self.raw, 8)[0]
        buf = bytearray(self.raw)
        rec = hdr_len + type_off + ds.offset
        struct.pack_into(e + "III", buf, rec, 0, (BtfKind.STRUCT << 24) | ds.vlen, 4 * ds.vlen)
        base = hdr_len + type_off
        for i, vs in enumerate(ds.secinfo):
            struct.pack_into(e + "III", buf, rec + 12 + 12 * i, 0, int_t.id, 32 * i)
            ext = self.types[vs.type] if vs.type < len(self.types) else None
            if ext is not None and ext.kind == BtfKind.VAR and ext.linkage == 2:
                struct.pack_into(e + "I", buf, base + ext.offset + 12, 1)
            elif ext is not None and ext.kind == BtfKind.FUNC:
                # kfunc declarations: extern -> global linkage, unnamed parameters named (libbpf does both)
                struct.pack_into(e + "I", buf, base + ext.offset + 4, (BtfKind.FUNC << 24) | 1)
                proto = self.types[ext.type] if ext.type < len(self.types) else None
                if proto is not None and proto.kind == BtfKind.FUNC_PROTO:
                    for j, prm in enumerate(proto.members):
                        if prm.type and not prm.name_off:
                            struct.pack_into(e + "I", buf, base + proto.offset + 12 + 8 * j, ext.name_off)
        return Btf.parse(bytes(buf), self.big_endian)

    # --- queries ---------------------------------------------------------------------------

    def type(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise BtfError(f"Invalid type_id {type_id}", type_id=type_id)
        return self.types[type_id]

    def __len__(self) -> int:
        return len(self.types)

    def find(self, name: str, kind: BtfKind | None = None) -> BtfType | None:
        for tid in self._by_name.get(name, ()):
            t = self.types[tid]
            if kind is None or t.kind == kind:
                return t
        return None

    def resolve(self, type_id: int) -> BtfType:
        """Skip typedef/const/volatile/restrict/type_tag (kernel ``btf_type_skip_modifiers``)."""
        t = self.type(type_id)
        for _ in range(MAX_RESOLVE_DEPTH):
            if t.kind not in MODIFIERS:
                return t
            t = self.type(t.type)
        raise BtfError(f"[{type_id}] Loop detected", type_id=type_id)

    def size_of(self, type_id: int, _depth: int = 0) -> int:
        """Byte size of a type (kernel ``btf_type_id_size``/libbpf ``btf__resolve_size``)."""
        if _depth > MAX_RESOLVE_DEPTH:
            raise BtfError(f"[{type_id}] Loop detected", type_id=type_id)
        t = self.resolve(type_id)
        k = t.kind
        if k in (BtfKind.INT, BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FLOAT,
                 BtfKind.DATASEC):
            return t.size
        if k == BtfKind.PTR:
            return 8
        if k == BtfKind.ARRAY:
            elem = self.size_of(t.array_type, _depth + 1)
            total = elem * t.array_nelems
            if total > 0xFFFFFFFF:
                raise BtfError(f"[{t.id}] ARRAY Array size overflows U32_MAX", type_id=t.id,
                               reason="Array size overflows U32_MAX")
            return total
        if k == BtfKind.VAR:
            return self.size_of(t.type, _depth + 1)
        raise BtfError(f"[{t.id}] {k.name} has no size", type_id=t.id)

    def datasec(self, section_name: str) -> BtfType | None:
        return self.find(section_name, BtfKind.DATASEC)

    def format_type(self, type_id: int) -> str:
        """A C declaration of the type (structs/unions/enums with their members)."""
        from .format import format_type

        return format_type(self, type_id)

    def type_name(self, type_id: int) -> str:
        """The C spelling of a type, e.g. ``unsigned int``, ``struct event``, ``char[16]``."""
        from .format import type_name

        return type_name(self, type_id)

    def format_value(self, type_id: int, data: bytes) -> object:
        """A JSON-able rendering of ``data`` as type ``type_id``, like bpftool's ``formatted`` output."""
        from .format import format_value

        return format_value(self, type_id, data)
