"""BTF type checks of BPF_BTF_LOAD, with the kernel's log lines (kernel/bpf/btf.c).

Two passes, as ``btf_check_all_metas`` and ``btf_check_all_types`` do:

* *meta*: each record is well-formed for its kind (``btf_*_check_meta``): no
  stray vlen or kind_flag, valid names, element/member/variable type ids that
  are not void, DATASEC sizes and offsets, FUNC/VAR linkage. With a log level,
  every record is logged as ``[id] KIND name details`` (members indented),
  and a failure appends the reason to the record's line.
* *resolve*: referenced type ids exist and have the right kind (a PTR to an
  existing type, a DATASEC of VARs, a FUNC of a FUNC_PROTO, no reference
  loops), as ``btf_resolve`` and ``btf_func_check`` do.

``check_types(types, strings, log)`` raises ``_Reject`` (errno, message);
``btf.py`` turns it into the syscall's failure.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from .errors import EEXIST, EINVAL, ENOTSUPP

__all__ = ["check_types", "BtfReject", "KIND_NAMES"]

KIND_NAMES = {1: "INT", 2: "PTR", 3: "ARRAY", 4: "STRUCT", 5: "UNION", 6: "ENUM", 7: "FWD", 8: "TYPEDEF",
              9: "VOLATILE", 10: "CONST", 11: "RESTRICT", 12: "FUNC", 13: "FUNC_PROTO", 14: "VAR", 15: "DATASEC",
              16: "FLOAT", 17: "DECL_TAG", 18: "TYPE_TAG", 19: "ENUM64"}
_REF_KINDS = {2, 8, 9, 10, 11, 18}  # PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG
BTF_MAX_TYPE = 0x000FFFFF
KSYM_NAME_LEN = 512


class BtfReject(Exception):
    def __init__(self, err: int, msg: str) -> None:
        super().__init__(msg)
        self.err = err


def _ident_ok(name: str, *, allow_empty: bool = False) -> bool:
    """``btf_name_valid_identifier``: ``[A-Za-z_.][A-Za-z0-9_.]*``, shorter than KSYM_NAME_LEN."""
    if not name:
        return allow_empty
    if len(name) >= KSYM_NAME_LEN:
        return False
    first = name[0]
    if not (first.isascii() and (first.isalpha() or first in "_.")):
        return False
    return all(c.isascii() and (c.isalnum() or c in "_.") for c in name[1:])


def _section_ok(name: str) -> bool:
    """``btf_name_valid_section``: any printable characters."""
    return bool(name) and len(name) < KSYM_NAME_LEN and all(c.isprintable() and c.isascii() for c in name)


class _Checker:
    def __init__(self, types: list[Any], strings: bytes, log: Any) -> None:
        self.types = types
        self.strings = strings
        self.log = log
        self.logging = bool(log is not None and getattr(log, "level", 0))

    # -- log lines -----------------------------------------------------------------------------
    def name(self, off: int) -> str:
        if not off:
            return "(anon)"
        end = self.strings.find(b"\0", off)
        return self.strings[off:end].decode(errors="replace")

    def raw_name(self, off: int) -> str:
        end = self.strings.find(b"\0", off)
        return self.strings[off:end].decode(errors="replace")

    def write(self, text: str) -> None:
        if self.logging:
            self.log.write(text)

    def details(self, t: Any) -> str:
        k, st = t.kind, t.size_or_type
        if k == 1:
            data = struct.unpack_from("<I", t.extra)[0] if len(t.extra) >= 4 else 0
            enc = (data >> 24) & 0xF
            encs = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}.get(enc, "UNKN")
            return f"size={st} bits_offset={(data >> 16) & 0xFF} nr_bits={data & 0xFF} encoding={encs}"
        if k in _REF_KINDS or k == 12:
            return f"type_id={st}"
        if k == 3:
            elem, index, n = struct.unpack_from("<III", t.extra) if len(t.extra) >= 12 else (0, 0, 0)
            return f"type_id={elem} index_type_id={index} nr_elems={n}"
        if k in (4, 5, 6, 19, 15):
            return f"size={st} vlen={t.vlen}"
        if k == 7:
            return "union" if t.kind_flag else "struct"
        if k == 13:
            return self.proto_details(t)
        if k == 14:
            linkage = struct.unpack_from("<I", t.extra)[0] if len(t.extra) >= 4 else 0
            return f"type_id={st} linkage={linkage}"
        if k == 16:
            return f"size={st}"
        if k == 17:
            idx = struct.unpack_from("<i", t.extra)[0] if len(t.extra) >= 4 else 0
            return f"type={st} component_idx={idx}"
        return ""

    def proto_details(self, t: Any) -> str:
        args = [struct.unpack_from("<II", t.extra, 8 * j) for j in range(len(t.extra) // 8)]
        out = f"return={t.size_or_type} args=("
        if not args:
            return out + "void)"
        if len(args) == 1 and not args[0][1]:
            return out + "vararg)"
        parts = [f"{args[0][1]} {self.name(args[0][0])}"]
        parts += [f"{ty} {self.name(n)}" for n, ty in args[1:-1]]
        if len(args) > 1:
            n, ty = args[-1]
            parts.append(f"{ty} {self.name(n)}" if ty else "vararg")
        return out + ", ".join(parts) + ")"

    def type_line(self, tid: int, t: Any, msg: str | None = None, *, details: bool = True) -> str:
        line = f"[{tid}] {KIND_NAMES.get(t.kind, 'UNKN')} {self.name(t.name_off)}"
        if details:
            line += " " + self.details(t)
        if msg:
            line += " " + msg
        return line + "\n"

    def reject(self, tid: int, t: Any, msg: str, *, details: bool = True, prefix: str = "") -> BtfReject:
        self.write(prefix + self.type_line(tid, t, msg, details=details))
        return BtfReject(EINVAL, f"[{tid}] {KIND_NAMES.get(t.kind, 'UNKN')} {msg}")

    def sub_reject(self, line: str, msg: str) -> BtfReject:
        self.write(f"{line} {msg}\n")
        return BtfReject(EINVAL, msg)

    # -- pass 1: metas ---------------------------------------------------------------------------
    def check_meta(self, tid: int, t: Any) -> None:
        k = t.kind
        check: Callable[[int, Any], None] | None = {
            1: self.meta_int, 3: self.meta_array, 4: self.meta_struct, 5: self.meta_struct, 6: self.meta_enum,
            19: self.meta_enum, 7: self.meta_fwd, 12: self.meta_func, 13: self.meta_func_proto,
            14: self.meta_var, 15: self.meta_datasec, 16: self.meta_float, 17: self.meta_decl_tag,
        }.get(k)
        if k in _REF_KINDS:
            check = self.meta_ref
        assert check is not None
        check(tid, t)

    def meta_int(self, tid: int, t: Any) -> None:
        if t.vlen:
            raise self.reject(tid, t, "vlen != 0")
        if t.kind_flag:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        data = struct.unpack_from("<I", t.extra)[0]
        if data & 0xF0FF0000 & ~0x00FF0000 & 0xF0000000:
            raise self.reject(tid, t, "Invalid int_data")
        nr_bits = (data & 0xFF) + ((data >> 16) & 0xFF)
        if nr_bits > 128:
            raise self.reject(tid, t, "nr_bits exceeds 128")
        if (nr_bits + 7) // 8 > t.size_or_type:
            raise self.reject(tid, t, "nr_bits exceeds type_size")
        if t.size_or_type not in (1, 2, 4, 8, 16):
            raise self.reject(tid, t, "Unsupported size")
        enc = (data >> 24) & 0xF
        if enc not in (0, 1, 2, 4):
            e = self.reject(tid, t, "Unsupported encoding")
            e.err = ENOTSUPP
            raise e
        self.write(self.type_line(tid, t))

    def meta_ref(self, tid: int, t: Any) -> None:
        if t.vlen:
            raise self.reject(tid, t, "vlen != 0")
        if t.kind_flag and t.kind != 18:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        if t.size_or_type > BTF_MAX_TYPE:
            raise self.reject(tid, t, "Invalid type_id")
        if t.kind in (8, 18):
            if not t.name_off or not _ident_ok(self.raw_name(t.name_off)):
                raise self.reject(tid, t, "Invalid name")
        elif t.name_off:
            raise self.reject(tid, t, "Invalid name")
        self.write(self.type_line(tid, t))

    def meta_array(self, tid: int, t: Any) -> None:
        elem, index, _n = struct.unpack_from("<III", t.extra)
        if t.name_off:
            raise self.reject(tid, t, "Invalid name")
        if t.vlen:
            raise self.reject(tid, t, "vlen != 0")
        if t.kind_flag:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        if t.size_or_type:
            raise self.reject(tid, t, "size != 0")
        if not elem or elem > BTF_MAX_TYPE:
            raise self.reject(tid, t, "Invalid elem")
        if not index or index > BTF_MAX_TYPE:
            raise self.reject(tid, t, "Invalid index")
        self.write(self.type_line(tid, t))

    def meta_struct(self, tid: int, t: Any) -> None:
        if t.name_off and not _ident_ok(self.raw_name(t.name_off)):
            raise self.reject(tid, t, "Invalid name")
        self.write(self.type_line(tid, t))
        size = t.size_or_type
        for j in range(t.vlen):
            name_off, mtype, off = struct.unpack_from("<III", t.extra, 12 * j)
            bitfield = (off >> 24) if t.kind_flag else 0
            bits_off = off & 0xFFFFFF if t.kind_flag else off
            if name_off >= len(self.strings):
                raise self.sub_reject(f"\t(invalid) type_id={mtype} bits_offset={bits_off}",
                                      f"Invalid member name_offset:{name_off}")
            mname = self.name(name_off)
            line = (f"\t{mname} type_id={mtype} bitfield_size={bitfield} bits_offset={bits_off}" if bitfield
                    else f"\t{mname} type_id={mtype} bits_offset={bits_off}")
            if name_off and not _ident_ok(self.raw_name(name_off)):
                raise self.sub_reject(line, "Invalid name")
            if not mtype or mtype > BTF_MAX_TYPE:
                raise self.sub_reject(line, "Invalid type_id")
            if t.kind == 5 and bits_off:
                raise self.sub_reject(line, "Invalid member bits_offset")
            if (bits_off + 7) // 8 > size:
                raise self.sub_reject(line, "Member bits_offset exceeds its struct size")
            self.write(line + "\n")

    def meta_enum(self, tid: int, t: Any) -> None:
        rec = 12 if t.kind == 19 else 8
        if t.kind == 6 and (t.size_or_type > 8 or t.size_or_type & (t.size_or_type - 1) or not t.size_or_type):
            raise self.reject(tid, t, "Unexpected size")
        if t.kind == 19 and (t.size_or_type > 8 or t.size_or_type & (t.size_or_type - 1) or not t.size_or_type):
            raise self.reject(tid, t, "Unexpected size")
        if t.name_off and not _ident_ok(self.raw_name(t.name_off)):
            raise self.reject(tid, t, "Invalid name")
        self.write(self.type_line(tid, t))
        for j in range(t.vlen):
            name_off = struct.unpack_from("<I", t.extra, rec * j)[0]
            if name_off >= len(self.strings):
                raise self.reject(tid, t, f"Invalid name_offset:{name_off}")
            if not name_off or not _ident_ok(self.raw_name(name_off)):
                raise self.reject(tid, t, "Invalid name")
            if t.kind == 6:
                val = struct.unpack_from("<i" if t.kind_flag else "<I", t.extra, 8 * j + 4)[0]
            else:
                lo, hi = struct.unpack_from("<II", t.extra, 12 * j + 4)
                val = (hi << 32) | lo
                if t.kind_flag and val >= 1 << 63:
                    val -= 1 << 64
            self.write(f"\t{self.name(name_off)} val={val}\n")

    def meta_fwd(self, tid: int, t: Any) -> None:
        if t.vlen:
            raise self.reject(tid, t, "vlen != 0")
        if t.size_or_type:
            raise self.reject(tid, t, "type != 0")
        if not t.name_off or not _ident_ok(self.raw_name(t.name_off)):
            raise self.reject(tid, t, "Invalid name")
        self.write(self.type_line(tid, t))

    def meta_func_proto(self, tid: int, t: Any) -> None:
        if t.name_off:
            raise self.reject(tid, t, "Invalid name")
        if t.kind_flag:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        self.write(self.type_line(tid, t))

    def meta_func(self, tid: int, t: Any) -> None:
        if not t.name_off or not _ident_ok(self.raw_name(t.name_off)):
            raise self.reject(tid, t, "Invalid name")
        if t.vlen > 1:  # BTF_FUNC_GLOBAL; extern functions cannot be loaded
            raise self.reject(tid, t, "Invalid func linkage")
        if t.kind_flag:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        self.write(self.type_line(tid, t))

    def meta_var(self, tid: int, t: Any) -> None:
        if t.vlen:
            raise self.reject(tid, t, "vlen != 0")
        if t.kind_flag:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        if not t.name_off or not _ident_ok(self.raw_name(t.name_off)):
            raise self.reject(tid, t, "Invalid name")
        if not t.size_or_type or t.size_or_type > BTF_MAX_TYPE:
            raise self.reject(tid, t, "Invalid type_id")
        linkage = struct.unpack_from("<I", t.extra)[0]
        if linkage not in (0, 1):  # BTF_VAR_STATIC, BTF_VAR_GLOBAL_ALLOCATED
            raise self.reject(tid, t, "Linkage not supported")
        self.write(self.type_line(tid, t))

    def meta_datasec(self, tid: int, t: Any) -> None:
        size = t.size_or_type
        if not size:
            raise self.reject(tid, t, "size == 0")
        if t.kind_flag:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        if not t.name_off or not _section_ok(self.raw_name(t.name_off)):
            raise self.reject(tid, t, "Invalid name")
        self.write(self.type_line(tid, t))
        last_end = 0
        total = 0
        for j in range(t.vlen):
            vtype, off, vsize = struct.unpack_from("<III", t.extra, 12 * j)
            line = f"\t type_id={vtype} offset={off} size={vsize}"
            if not vtype or vtype > BTF_MAX_TYPE:
                raise self.sub_reject(line, "Invalid type_id")
            if off < last_end or off >= size:
                raise self.sub_reject(line, "Invalid offset")
            if not vsize or vsize > size:
                raise self.sub_reject(line, "Invalid size")
            last_end = off + vsize
            if last_end > size:
                raise self.sub_reject(line, "Invalid offset+size")
            self.write(line + "\n")
            total += vsize
        if size < total:
            raise self.reject(tid, t, "Invalid btf_info size")

    def meta_float(self, tid: int, t: Any) -> None:
        if t.vlen:
            raise self.reject(tid, t, "vlen != 0")
        if t.kind_flag:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        if t.size_or_type not in (2, 4, 8, 12, 16):
            raise self.reject(tid, t, "Invalid type_size")
        self.write(self.type_line(tid, t))

    def meta_decl_tag(self, tid: int, t: Any) -> None:
        if not t.name_off or not self.raw_name(t.name_off):
            raise self.reject(tid, t, "Invalid name")
        if t.vlen:
            raise self.reject(tid, t, "vlen != 0")
        if t.kind_flag and t.kind_flag != 1:
            raise self.reject(tid, t, "Invalid btf_info kind_flag")
        idx = struct.unpack_from("<i", t.extra)[0]
        if idx < -1:
            raise self.reject(tid, t, "Invalid component_idx")
        self.write(self.type_line(tid, t))

    # -- pass 2: references -----------------------------------------------------------------------
    def resolve(self, tid: int, t: Any) -> None:
        n = len(self.types)

        def bad(ref: int) -> bool:
            return ref >= n

        k = t.kind
        if k in _REF_KINDS:
            seen = {tid}
            ref = t.size_or_type
            while True:
                if bad(ref) or self.types[ref].kind in (12, 14, 15, 17):  # FUNC, VAR, DATASEC, DECL_TAG
                    raise self.reject(tid, t, "Invalid type_id")
                if ref == 0 or self.types[ref].kind not in _REF_KINDS:
                    break
                if ref in seen:
                    e = self.reject(tid, t, "Loop detected")
                    e.err = EEXIST  # env_stack_push finds the type already on the resolve stack
                    raise e
                seen.add(ref)
                ref = self.types[ref].size_or_type
        elif k == 3:
            elem, index, _ = struct.unpack_from("<III", t.extra)
            if bad(elem) or bad(index) or self.types[index].kind != 1 and self._skip(index).kind != 1:
                raise self.reject(tid, t, "Invalid index" if not bad(elem) else "Invalid elem")
            if self._skip(elem).kind in (12, 13, 14, 15, 17, 7):
                raise self.reject(tid, t, "Invalid elem")
        elif k in (4, 5):
            for j in range(t.vlen):
                name_off, mtype, off = struct.unpack_from("<III", t.extra, 12 * j)
                if bad(mtype) or self._skip(mtype).kind in (12, 13, 14, 15, 17):
                    bits_off = off & 0xFFFFFF if t.kind_flag else off
                    self.write(self.type_line(tid, t))
                    raise self.sub_reject(f"\t{self.name(name_off)} type_id={mtype} bits_offset={bits_off}",
                                          "Invalid member")
        elif k == 12:
            if bad(t.size_or_type) or self.types[t.size_or_type].kind != 13:
                raise self.reject(tid, t, "Invalid type_id")
        elif k == 13:
            if bad(t.size_or_type):
                raise self.reject(tid, t, "Invalid return type")
            for j in range(t.vlen):
                _name, atype = struct.unpack_from("<II", t.extra, 8 * j)
                if bad(atype) or (atype == 0 and j != t.vlen - 1):
                    raise self.reject(tid, t, "Invalid arg#" + str(j + 1))
        elif k == 14:
            if bad(t.size_or_type) or self._skip(t.size_or_type).kind in (12, 13, 14, 15, 17, 7):
                raise self.reject(tid, t, "Invalid type_id")
        elif k == 15:
            for j in range(t.vlen):
                vtype, off, vsize = struct.unpack_from("<III", t.extra, 12 * j)
                if bad(vtype) or self.types[vtype].kind != 14:
                    self.write(self.type_line(tid, t))
                    raise self.sub_reject(f"\t type_id={vtype} offset={off} size={vsize}", "Not a VAR kind member")
        elif k == 17:
            if bad(t.size_or_type):
                raise self.reject(tid, t, "Invalid type")

    def _skip(self, ref: int) -> Any:
        for _ in range(64):
            if ref == 0 or ref >= len(self.types):
                break
            t = self.types[ref]
            if t.kind not in _REF_KINDS - {2}:
                return t
            ref = t.size_or_type
        return self.types[0]


def check_types(types: list[Any], strings: bytes, log: Any) -> None:
    """Check parsed BTF records (``types[0]`` is void) as the kernel does; log like it when asked."""
    c = _Checker(types, strings, log)
    for tid in range(1, len(types)):
        c.check_meta(tid, types[tid])
    for tid in range(1, len(types)):
        c.resolve(tid, types[tid])
