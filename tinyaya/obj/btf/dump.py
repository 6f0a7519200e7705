"""``bpftool btf dump`` raw format (tools/bpf/bpftool/btf.c ``dump_btf_type``), line for line."""
from __future__ import annotations

from .types import BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, Btf, BtfKind, BtfType

_LINKAGE = {0: "static", 1: "global", 2: "extern"}


def _name(s: str) -> str:
    return s if s else "(anon)"


def _int_encoding(enc: int) -> str:
    if enc & BTF_INT_SIGNED:
        return "SIGNED"
    if enc & BTF_INT_CHAR:
        return "CHAR"
    if enc & BTF_INT_BOOL:
        return "BOOL"
    return "(none)"


def dump_type(btf: Btf, t: BtfType) -> str:
    """One type as bpftool prints it (members on following tab-indented lines)."""
    k = t.kind
    out = f"[{t.id}] {k.name} '{_name(t.name)}'"
    if k == BtfKind.INT:
        out += (f" size={t.size} bits_offset={t.int_offset} nr_bits={t.int_bits} "
                f"encoding={_int_encoding(t.int_encoding)}")
    elif k in (BtfKind.PTR, BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT, BtfKind.TYPEDEF,
               BtfKind.TYPE_TAG):
        out += f" type_id={t.type}"
    elif k == BtfKind.ARRAY:
        out += f" type_id={t.array_type} index_type_id={t.array_index_type} nr_elems={t.array_nelems}"
    elif k in (BtfKind.STRUCT, BtfKind.UNION):
        out += f" size={t.size} vlen={t.vlen}"
        for m in t.members:
            out += f"\n\t'{_name(m.name)}' type_id={m.type} bits_offset={m.bit_offset}"
            if m.bitfield_size:
                out += f" bitfield_size={m.bitfield_size}"
    elif k in (BtfKind.ENUM, BtfKind.ENUM64):
        out += f" encoding={'SIGNED' if t.kind_flag else 'UNSIGNED'} size={t.size} vlen={t.vlen}"
        suffix = ("LL" if t.kind_flag else "ULL") if k == BtfKind.ENUM64 else ""
        for v in t.enum_values:
            out += f"\n\t'{_name(v.name)}' val={v.value}{suffix}"
    elif k == BtfKind.FWD:
        out += f" fwd_kind={'union' if t.kind_flag else 'struct'}"
    elif k == BtfKind.FUNC:
        out += f" type_id={t.type} linkage={_LINKAGE.get(t.linkage, 'UNKN')}"
    elif k == BtfKind.FUNC_PROTO:
        out += f" ret_type_id={t.type} vlen={t.vlen}"
        for p in t.members:
            out += f"\n\t'{_name(p.name)}' type_id={p.type}"
    elif k == BtfKind.VAR:
        out += f" type_id={t.type}, linkage={_LINKAGE.get(t.linkage, 'UNKN')}"
    elif k == BtfKind.DATASEC:
        out += f" size={t.size} vlen={t.vlen}"
        for s in t.secinfo:
            var = btf.types[s.type] if s.type < len(btf.types) else None
            vname = _name(var.name) if var is not None else "?"
            vkind = var.kind.name if var is not None else "?"
            out += f"\n\ttype_id={s.type} offset={s.offset} size={s.size} ({vkind} '{vname}')"
    elif k == BtfKind.FLOAT:
        out += f" size={t.size}"
    elif k == BtfKind.DECL_TAG:
        out += f" type_id={t.type} component_idx={t.component_idx}"
    return out


def dump_raw(btf: Btf) -> str:
    """Every type, as ``bpftool btf dump file OBJ`` prints them."""
    return "\n".join(dump_type(btf, t) for t in btf.types[1:]) + "\n"
