"""The ``.BTF.ext`` section: func_info, line_info and CO-RE relocation records per code section.

Layout (libbpf ``struct btf_ext_header``, src/libbpf_internal.h): ``__u16 magic;
__u8 version; __u8 flags; __u32 hdr_len; __u32 func_info_off, func_info_len,
line_info_off, line_info_len;`` and, when ``hdr_len >= 32``, ``core_relo_off,
core_relo_len``; offsets count from the end of the header. Each info block is
``__u32 rec_size`` followed by ``struct btf_ext_info_sec { __u32 sec_name_off;
__u32 num_info; records... }`` entries. Record ``insn_off`` values here are byte
offsets into the section, as clang writes them.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import BtfError
from .types import BTF_MAGIC, Btf


class CoreReloKind(IntEnum):
    """``enum bpf_core_relo_kind`` (uapi linux/bpf.h)."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


@dataclass(frozen=True, slots=True)
class ExtFuncInfo:
    insn_off: int  # bytes into the section
    type_id: int


@dataclass(frozen=True, slots=True)
class ExtLineInfo:
    insn_off: int  # bytes into the section
    file_name_off: int
    line_off: int
    line_col: int
    file_name: str
    line: str

    @property
    def line_num(self) -> int:
        return self.line_col >> 10

    @property
    def column(self) -> int:
        return self.line_col & 0x3FF


@dataclass(frozen=True, slots=True)
class CoreRelo:
    """``struct bpf_core_relo``: an access string like ``0:1:2`` against local BTF type ``type_id``."""

    insn_off: int  # bytes into the section
    type_id: int
    access_str_off: int
    kind: CoreReloKind | int
    access_str: str

    @property
    def kind_name(self) -> str:
        return self.kind.name if isinstance(self.kind, CoreReloKind) else str(self.kind)


@dataclass
class BtfExt:
    func_info: dict[str, list[ExtFuncInfo]] = field(default_factory=dict)
    line_info: dict[str, list[ExtLineInfo]] = field(default_factory=dict)
    core_relos: dict[str, list[CoreRelo]] = field(default_factory=dict)
    func_info_rec_size: int = 8
    line_info_rec_size: int = 16
    core_relo_rec_size: int = 16

    @classmethod
    def parse(cls, data: bytes, btf: Btf) -> BtfExt:
        """Parse ``.BTF.ext`` bytes, resolving names against ``btf``'s string table."""
        data = bytes(data)
        e = ">" if btf.big_endian else "<"
        if len(data) < 8:
            raise BtfError(".BTF.ext header not found", section=".BTF.ext")
        magic, version, flags, hdr_len = struct.unpack_from(e + "HBBI", data, 0)
        if magic != BTF_MAGIC:
            raise BtfError(f"Invalid .BTF.ext magic: 0x{magic:x}", section=".BTF.ext")
        if version != 1:
            raise BtfError("Unsupported .BTF.ext version", section=".BTF.ext")
        if flags:
            raise BtfError("Unsupported .BTF.ext flags", section=".BTF.ext")
        if hdr_len < 24 or hdr_len > len(data):
            raise BtfError(f"Invalid .BTF.ext header length {hdr_len}", section=".BTF.ext")
        fi_off, fi_len, li_off, li_len = struct.unpack_from(e + "IIII", data, 8)
        core_off = core_len = 0
        if hdr_len >= 32:
            core_off, core_len = struct.unpack_from(e + "II", data, 24)
        body = data[hdr_len:]
        ext = cls()

        def block(off: int, length: int, min_rec: int, what: str) -> tuple[int, list[tuple[str, int, bytes]]]:
            if not length:
                return min_rec, []
            if off + length > len(body) or length < 4:
                raise BtfError(f".BTF.ext {what} section out of range", section=".BTF.ext")
            d = body[off:off + length]
            rec_size = struct.unpack_from(e + "I", d, 0)[0]
            if rec_size < min_rec or rec_size % 4 or rec_size > 1024:
                raise BtfError(f".BTF.ext {what} record size {rec_size} invalid", section=".BTF.ext")
            pos = 4
            out = []
            while pos < len(d):
                if len(d) - pos < 8:
                    raise BtfError(f".BTF.ext {what} truncated", section=".BTF.ext")
                name_off, num = struct.unpack_from(e + "II", d, pos)
                pos += 8
                if num == 0:
                    raise BtfError(f".BTF.ext {what} has an empty section entry", section=".BTF.ext")
                if num * rec_size > len(d) - pos:
                    raise BtfError(f".BTF.ext {what} records past the end", section=".BTF.ext")
                sec_name = btf.string_at(name_off)
                for i in range(num):
                    out.append((sec_name, rec_size, d[pos + i * rec_size:pos + (i + 1) * rec_size]))
                pos += num * rec_size
            return rec_size, out

        ext.func_info_rec_size, fis = block(fi_off, fi_len, 8, "func_info")
        for sec, _, rec in fis:
            insn_off, type_id = struct.unpack_from(e + "II", rec, 0)
            ext.func_info.setdefault(sec, []).append(ExtFuncInfo(insn_off, type_id))
        ext.line_info_rec_size, lis = block(li_off, li_len, 16, "line_info")
        for sec, _, rec in lis:
            insn_off, fn_off, ln_off, col = struct.unpack_from(e + "IIII", rec, 0)
            ext.line_info.setdefault(sec, []).append(
                ExtLineInfo(insn_off, fn_off, ln_off, col, btf.string_at(fn_off), btf.string_at(ln_off)))
        ext.core_relo_rec_size, crs = block(core_off, core_len, 16, "core_relo")
        for sec, _, rec in crs:
            insn_off, type_id, acc_off, kind = struct.unpack_from(e + "IIII", rec, 0)
            k: CoreReloKind | int = CoreReloKind(kind) if kind in CoreReloKind._value2member_map_ else kind
            ext.core_relos.setdefault(sec, []).append(
                CoreRelo(insn_off, type_id, acc_off, k, btf.string_at(acc_off)))
        return ext


_TYPE_KINDS = {CoreReloKind.TYPE_ID_LOCAL, CoreReloKind.TYPE_ID_TARGET, CoreReloKind.TYPE_EXISTS,
               CoreReloKind.TYPE_SIZE, CoreReloKind.TYPE_MATCHES}
_ENUM_KINDS = {CoreReloKind.ENUMVAL_EXISTS, CoreReloKind.ENUMVAL_VALUE}


def format_core_relo(btf: Btf, type_id: int, access_str: str, kind: int) -> str:
    """A CO-RE relocation in words, like libbpf's ``bpf_core_format_spec``:
    ``FIELD_BYTE_OFFSET struct task_struct.tgid (0:1)``. Never raises on bad input."""
    from .format import type_name
    from .types import BtfKind

    kind_name = CoreReloKind(kind).name if kind in CoreReloKind._value2member_map_ else f"kind {kind}"
    try:
        root = btf.type(type_id)
        text = type_name(btf, type_id)
        parts = [int(p) for p in access_str.split(":")] if access_str else []
        if kind in _ENUM_KINDS and parts:
            t = btf.resolve(type_id)
            text += f"::{t.enum_values[parts[0]].name}" if parts[0] < len(t.enum_values) else f"::#{parts[0]}"
        elif kind not in _TYPE_KINDS and parts:
            if parts[0]:
                text += f"[{parts[0]}]"
            cur = root
            for idx in parts[1:]:
                cur = btf.resolve(cur.id)
                if cur.kind in (BtfKind.STRUCT, BtfKind.UNION) and idx < len(cur.members):
                    m = cur.members[idx]
                    text += f".{m.name}" if m.name else ".<anon>"
                    cur = btf.type(m.type)
                elif cur.kind == BtfKind.ARRAY:
                    text += f"[{idx}]"
                    cur = btf.type(cur.array_type)
                else:
                    text += f".#{idx}"
                    break
    except (BtfError, ValueError, IndexError):
        text = f"[{type_id}]"
    return f"{kind_name} {text} ({access_str})"


def describe_btf_ext(ext: BtfExt, btf: Btf) -> dict[str, dict[str, list[dict[str, object]]]]:
    """``.BTF.ext`` per code section as JSON-able records; ``insn`` is the instruction index in the section."""
    out: dict[str, dict[str, list[dict[str, object]]]] = {}
    for sec, fis in ext.func_info.items():
        rows = out.setdefault(sec, {"func_info": [], "line_info": [], "core_relo": []})["func_info"]
        for f in fis:
            try:
                name = btf.type(f.type_id).name
            except BtfError:
                name = "?"
            rows.append({"insn": f.insn_off // 8, "type_id": f.type_id, "func": name})
    for sec, lis in ext.line_info.items():
        rows = out.setdefault(sec, {"func_info": [], "line_info": [], "core_relo": []})["line_info"]
        for li in lis:
            rows.append({"insn": li.insn_off // 8, "file": li.file_name, "line": li.line_num, "column": li.column,
                         "source": li.line})
    for sec, crs in ext.core_relos.items():
        rows = out.setdefault(sec, {"func_info": [], "line_info": [], "core_relo": []})["core_relo"]
        for c in crs:
            rows.append({"insn": c.insn_off // 8, "type_id": c.type_id, "access": c.access_str, "kind": c.kind_name,
                         "text": format_core_relo(btf, c.type_id, c.access_str, int(c.kind))})
    return out


def format_btf_ext(ext: BtfExt, btf: Btf) -> str:
    """The ``.BTF.ext`` records as text, one line each (for ``tinyaya inspect``)."""
    lines: list[str] = []
    for sec, kinds in describe_btf_ext(ext, btf).items():
        lines.append(f"section '{sec}':")
        for f in kinds["func_info"]:
            lines.append(f"  func_info  insn {f['insn']:>5}: [{f['type_id']}] {f['func']}")
        for li in kinds["line_info"]:
            lines.append(f"  line_info  insn {li['insn']:>5}: {li['file']}:{li['line']}:{li['column']}"
                         f"  {str(li['source']).strip()}")
        for c in kinds["core_relo"]:
            lines.append(f"  core_relo  insn {c['insn']:>5}: {c['text']}")
    return "\n".join(lines)
