"""The kernel's BTF verifier rules, for BPF_BTF_LOAD in the simulated kernel.

Per kind, as kernel/bpf/btf.c's ``btf_*_check_meta`` and resolve passes word
them (the message after ``[id] KIND name`` is the kernel's): names must be
identifiers where the kernel says so, reference kinds carry no name or
kind_flag, ARRAY keeps ``size`` 0, INT bits fit their size, struct members
are in order and inside the struct, DATASEC variables are sorted and inside
the section, and type chains do not loop.
"""
from __future__ import annotations

from ..errors import BtfError
from .types import BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, BTF_MAX_TYPE, MODIFIERS, Btf, BtfKind, BtfType

KSYM_NAME_LEN = 512


def _isalpha(c: int) -> bool:
    """Linux's ctype (lib/ctype.c): ASCII letters and the Latin-1 letters 0xC0-0xFF but 0xD7, 0xF7."""
    return 65 <= c <= 90 or 97 <= c <= 122 or (0xC0 <= c <= 0xFF and c not in (0xD7, 0xF7))


def _name_ok(raw: bytes) -> bool:
    """kernel ``btf_name_valid_identifier`` (``__btf_name_char_ok``): [alpha_.][alnum_.]*, < KSYM_NAME_LEN."""
    if not raw or len(raw) >= KSYM_NAME_LEN:
        return False
    if not (_isalpha(raw[0]) or raw[0] in b"_."):
        return False
    return all(_isalpha(c) or 48 <= c <= 57 or c in b"_." for c in raw[1:])


def _fail(t: BtfType, reason: str, member: str | None = None) -> BtfError:
    """``[id] KIND name [member] reason``; ``.reason`` is the kernel log line's last words."""
    where = f"[{t.id}] {t.kind.name} {t.name or '(anon)'}" + (f" {member or '(anon)'}" if member is not None else "")
    return BtfError(f"{where} {reason}", type_id=t.id, reason=reason)


def _section_name(raw: bytes) -> bool:
    """kernel ``btf_name_valid_section``: printable (Linux isprint: 0x20-0x7E, 0xA0-0xFF)."""
    return bool(raw) and len(raw) < KSYM_NAME_LEN and all(0x20 <= c <= 0x7E or c >= 0xA0 for c in raw)


def check_meta(btf: Btf, t: BtfType) -> None:
    """kernel ``btf_check_meta`` for one type (no cross-type lookups: ids are checked at resolve)."""
    k = t.kind
    name = btf.raw_string_at(t.name_off)

    def _ident(_unused: str, off: int | None = None) -> bool:
        return _name_ok(btf.raw_string_at(off) if off is not None else name)

    if k in (BtfKind.PTR, BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT, BtfKind.TYPEDEF,
             BtfKind.TYPE_TAG, BtfKind.VAR, BtfKind.ARRAY, BtfKind.INT, BtfKind.FLOAT, BtfKind.FWD,
             BtfKind.DECL_TAG) and t.vlen:
        raise _fail(t, "vlen != 0")
    if k in (BtfKind.PTR, BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT, BtfKind.ARRAY, BtfKind.FUNC_PROTO):
        if t.name_off:
            raise _fail(t, "Invalid name")
    # TYPE_TAG and DECL_TAG may set kind_flag: the tag is then a raw __attribute__ (e.g. address_space(1))
    if k in (BtfKind.PTR, BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT, BtfKind.ARRAY, BtfKind.INT,
             BtfKind.TYPEDEF, BtfKind.FUNC, BtfKind.VAR, BtfKind.DATASEC) and t.kind_flag:
        raise _fail(t, "Invalid btf_info kind_flag")
    if k in (BtfKind.TYPEDEF, BtfKind.FUNC, BtfKind.FWD, BtfKind.VAR) and not _ident(t.name):
        raise _fail(t, "Invalid name")
    if k in (BtfKind.TYPE_TAG, BtfKind.DECL_TAG) and not name:
        raise _fail(t, "Invalid name")
    if k in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64) and t.name_off and not _ident(t.name):
        raise _fail(t, "Invalid name")

    if k in (BtfKind.PTR, BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG,
             BtfKind.FUNC, BtfKind.VAR, BtfKind.DECL_TAG) and t.type > BTF_MAX_TYPE:
        raise _fail(t, "Invalid type_id")  # btf_ref_type_check_meta: !BTF_TYPE_ID_VALID

    if k == BtfKind.INT:
        if t.int_data & ~0x0FFFFFFF:
            raise _fail(t, f"Invalid int_data:{t.int_data:x}")
        nr_bits = t.int_bits + t.int_offset  # btf_int_check_meta counts the offset in
        if nr_bits > 128:
            raise _fail(t, "nr_bits exceeds 128")
        if (nr_bits + 7) // 8 > t.size:
            raise _fail(t, "nr_bits exceeds type_size")
        if t.int_encoding not in (0, BTF_INT_SIGNED, BTF_INT_CHAR, BTF_INT_BOOL):
            raise _fail(t, "Unsupported encoding")
    elif k == BtfKind.ARRAY:
        if t.size:
            raise _fail(t, "size != 0")
        if t.array_type == 0 or t.array_type > BTF_MAX_TYPE:
            raise _fail(t, "Invalid elem")
        if t.array_index_type == 0 or t.array_index_type > BTF_MAX_TYPE:
            raise _fail(t, "Invalid index")
    elif k in (BtfKind.STRUCT, BtfKind.UNION):
        last = 0
        for m in t.members:
            if m.name_off >= len(btf.strings):
                raise _fail(t, f"Invalid member name_offset:{m.name_off}")
            if m.name_off and not _ident(m.name, m.name_off):
                raise _fail(t, "Invalid name", m.name)
            if m.type == 0 or m.type > BTF_MAX_TYPE:
                raise _fail(t, "Invalid type_id", m.name)
            if k == BtfKind.UNION and m.bit_offset:
                raise _fail(t, "Invalid member bits_offset", m.name)
            if (m.bit_offset + 7) // 8 > t.size:
                raise _fail(t, "Member bits_offset exceeds its struct size", m.name)
            if m.bit_offset < last:
                raise _fail(t, "Invalid member bits_offset", m.name)
            last = m.bit_offset
    elif k in (BtfKind.ENUM, BtfKind.ENUM64):
        if k == BtfKind.ENUM and t.size not in (1, 2, 4, 8) or k == BtfKind.ENUM64 and t.size not in (1, 2, 4, 8):
            raise _fail(t, "Unexpected size")
        for v in t.enum_values:
            if v.name_off >= len(btf.strings):
                raise _fail(t, f"Invalid name_offset:{v.name_off}")
            if not _ident(v.name, v.name_off):
                raise _fail(t, "Invalid name", v.name)
    elif k == BtfKind.FWD:
        if t.size_or_type:
            raise _fail(t, "type != 0")
    elif k == BtfKind.FUNC:
        if t.linkage > 1:  # BPF_BTF_LOAD takes static and global functions only
            raise _fail(t, "Invalid func linkage")
    elif k == BtfKind.VAR:
        if t.type == 0:
            raise _fail(t, "Invalid type_id")
        if t.linkage > 1:
            raise _fail(t, "Linkage not supported")
    elif k == BtfKind.DATASEC:
        if not _section_name(name):
            raise _fail(t, "Invalid name")
        if not t.size:
            raise _fail(t, "size == 0")
        if not t.secinfo:
            raise _fail(t, "vlen == 0")
        last = 0
        for s in t.secinfo:
            where = f"type_id={s.type} offset={s.offset} size={s.size}"
            if s.type == 0 or s.type > BTF_MAX_TYPE:
                raise _fail(t, f"{where} Invalid type_id")
            if s.offset < last or s.offset >= t.size:
                raise _fail(t, f"{where} Invalid offset")
            if not s.size or s.size > t.size:
                raise _fail(t, f"{where} Invalid size")
            if t.size - s.offset < s.size:
                raise _fail(t, f"{where} Invalid offset+size")
            last = s.offset + s.size
    elif k == BtfKind.FLOAT:
        if t.size not in (2, 4, 8, 12, 16):
            raise _fail(t, "Invalid type_size")
    elif k == BtfKind.DECL_TAG:
        if t.component_idx < -1:
            raise _fail(t, "Invalid component_idx")


def _int_is_regular(t: BtfType) -> bool:
    """kernel ``btf_type_int_is_regular``: whole bytes, no offset, 1/2/4/8 bytes of bits."""
    return t.int_bits % 8 == 0 and not t.int_offset and t.int_bits // 8 in (1, 2, 4, 8)


_SOURCE_ONLY = (BtfKind.DATASEC, BtfKind.VAR, BtfKind.DECL_TAG)  # btf_type_is_resolve_source_only


def _check_resolved(btf: Btf, t: BtfType) -> None:
    """The resolve pass: loops, sized element/member types, FUNC -> FUNC_PROTO, DATASEC -> VAR."""
    k = t.kind
    if k in MODIFIERS or k == BtfKind.PTR:
        if btf.type(t.type).kind in _SOURCE_ONLY:
            raise _fail(t, "Invalid type_id")
        cur = t
        for _ in range(32):
            if cur.kind not in MODIFIERS and cur.kind != BtfKind.PTR:
                break
            cur = btf.type(cur.type)
        else:
            raise _fail(t, "Loop detected")
    if k == BtfKind.ARRAY:
        idx = btf.resolve(t.array_index_type)
        if idx.kind != BtfKind.INT or not _int_is_regular(idx):
            raise _fail(t, "Invalid index")
        elem = btf.resolve(t.array_type)
        if elem.kind in (BtfKind.FUNC, BtfKind.FUNC_PROTO, BtfKind.DATASEC, BtfKind.VAR, BtfKind.FWD,
                         BtfKind.DECL_TAG, BtfKind.UNKN):
            raise _fail(t, "Invalid elem")
        if elem.kind == BtfKind.INT and not _int_is_regular(elem):
            raise _fail(t, "Invalid array of int")
        btf.size_of(t.id)
    elif k in (BtfKind.STRUCT, BtfKind.UNION):
        for m in t.members:
            mt = btf.resolve(m.type)
            if mt.kind in (BtfKind.FUNC, BtfKind.FUNC_PROTO, BtfKind.DATASEC, BtfKind.VAR, BtfKind.DECL_TAG,
                           BtfKind.UNKN):
                raise _fail(t, "Invalid member", m.name)
            if t.kind_flag:  # btf_*_check_kflag_member
                if mt.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64):
                    width = mt.int_bits if mt.kind == BtfKind.INT else mt.size * 8
                    if not m.bitfield_size and m.bit_offset % 8:
                        raise _fail(t, "Invalid member offset", m.name)
                    if m.bitfield_size > width:
                        raise _fail(t, "Invalid member bitfield_size", m.name)
                    bits = m.bitfield_size or width
                    if m.bit_offset % 8 + bits > 128:
                        raise _fail(t, "nr_copy_bits exceeds 128", m.name)
                    if m.bit_offset // 8 > t.size or t.size - m.bit_offset // 8 < (m.bit_offset % 8 + bits + 7) // 8:
                        raise _fail(t, "Member exceeds struct_size", m.name)
                    continue
                if m.bitfield_size:
                    raise _fail(t, "Invalid member bitfield_size", m.name)
            if mt.kind != BtfKind.FWD and not m.bitfield_size:
                if mt.kind == BtfKind.INT:  # btf_int_check_member: only the significant bits count
                    need = (m.bit_offset % 8 + mt.int_bits + 7) // 8
                else:
                    need = btf.size_of(mt.id)
                    if m.bit_offset % 8 and mt.kind not in (BtfKind.ENUM, BtfKind.ENUM64):
                        raise _fail(t, "Member is not byte aligned", m.name)
                if m.bit_offset // 8 > t.size or t.size - m.bit_offset // 8 < need:
                    raise _fail(t, "Member exceeds struct_size", m.name)
    elif k == BtfKind.FUNC:
        proto = btf.type(t.type)
        if proto.kind != BtfKind.FUNC_PROTO:
            raise _fail(t, "Invalid type_id")
        params = list(proto.members)
        if params and params[-1].type == 0:  # vararg
            params.pop()
        for i, p in enumerate(params):  # btf_func_check: every real argument is typed and named
            if not p.type or not p.name_off:
                raise _fail(t, f"Invalid arg#{i + 1}")
    elif k == BtfKind.FUNC_PROTO:  # btf_func_proto_check
        for i, p in enumerate(t.members):
            if p.name_off >= len(btf.strings) or p.name_off and not _name_ok(btf.raw_string_at(p.name_off)):
                raise _fail(t, f"Invalid arg#{i + 1}")
            if p.type == 0 and (p.name_off or i != len(t.members) - 1):
                raise _fail(t, f"Invalid arg#{i + 1}")
        bad = (BtfKind.FUNC, BtfKind.FUNC_PROTO, BtfKind.DATASEC, BtfKind.VAR, BtfKind.DECL_TAG)
        if t.type and btf.resolve(t.type).kind in bad:
            raise _fail(t, "Invalid return type")
        for i, p in enumerate(t.members):
            if p.type and btf.resolve(p.type).kind in bad:
                raise _fail(t, f"Invalid arg#{i + 1}")
    elif k == BtfKind.VAR:
        vt = btf.resolve(t.type)
        if vt.kind in (BtfKind.FUNC, BtfKind.FUNC_PROTO, BtfKind.DATASEC, BtfKind.VAR, BtfKind.FWD, BtfKind.UNKN):
            raise _fail(t, "Invalid type_id")
        btf.size_of(t.type)
    elif k == BtfKind.DATASEC:
        for s in t.secinfo:
            var = btf.type(s.type)
            if var.kind != BtfKind.VAR:
                raise _fail(t, f"type_id={s.type} offset={s.offset} size={s.size} Not a VAR kind member")
            if btf.size_of(var.type) > s.size:
                raise _fail(t, f"type_id={s.type} offset={s.offset} size={s.size} Invalid size")
    elif k == BtfKind.DECL_TAG:
        target = btf.type(t.type)
        if target.kind not in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.VAR, BtfKind.FUNC, BtfKind.TYPEDEF):
            raise _fail(t, "Invalid type")
        if t.component_idx != -1:
            n = len(btf.type(target.type).members) if target.kind == BtfKind.FUNC else len(target.members)
            if target.kind in (BtfKind.VAR, BtfKind.TYPEDEF) or t.component_idx >= n:
                raise _fail(t, "Invalid component_idx")


def _check_sections(btf: Btf) -> None:
    """kernel ``btf_check_sec_info``: the type and string sections tile the data with no gap."""
    import struct

    if len(btf.raw) < 24:
        return
    e = ">" if btf.big_endian else "<"
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(e + "IIIII", btf.raw, 4)
    total = 0
    for off, length in sorted([(type_off, type_len), (str_off, str_len)]):
        if total < off:
            raise BtfError("Unsupported section found")
        if total > off:
            raise BtfError("Section overlap found")
        total += length
    if total != len(btf.raw) - hdr_len:
        raise BtfError("Unsupported section found")


def check_for_kernel(btf: Btf, *, metas_done: bool = False) -> None:
    """Raise ``BtfError`` with the kernel's wording for the first rule ``btf`` breaks."""
    if not metas_done:
        for t in btf.types[1:]:
            check_meta(btf, t)
    _check_sections(btf)
    nr = len(btf.types)
    for t in btf.types[1:]:
        _check_ids(t, nr)
    for t in btf.types[1:]:
        _check_resolved(btf, t)


def _check_ids(t: BtfType, nr: int) -> None:
    """Referenced ids exist, with the message the kernel's resolve step gives for each role."""
    k = t.kind
    if k in (BtfKind.PTR, BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.FUNC,
             BtfKind.VAR, BtfKind.DECL_TAG, BtfKind.TYPE_TAG) and t.type >= nr:
        raise _fail(t, "Invalid type_id")
    if k == BtfKind.FUNC_PROTO and t.type >= nr:
        raise _fail(t, "Invalid return type")
    if k == BtfKind.ARRAY and t.array_type >= nr:
        raise _fail(t, "Invalid elem")
    if k == BtfKind.ARRAY and t.array_index_type >= nr:
        raise _fail(t, "Invalid index")
    for i, m in enumerate(t.members):
        if m.type >= nr:
            if k == BtfKind.FUNC_PROTO:
                raise _fail(t, f"Invalid arg#{i + 1}")
            raise _fail(t, "Invalid member", m.name)
    for s in t.secinfo:
        if s.type >= nr:
            raise _fail(t, f"type_id={s.type} offset={s.offset} size={s.size} Invalid type_id")
