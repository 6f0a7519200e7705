"""``describe(obj)``: the JSON-able content of ``tinyaya inspect OBJ --json``.

Shapes: programs (name, section, type, attach target, insn count), maps (name,
origin, type, key/value size and BTF type, max_entries, flags, pinning,
values), global variables (section, offset, size, C type, initial value),
relocations (offset, type, symbol, and what the symbol resolves to).
"""
from __future__ import annotations

from typing import Any

from ..uapi.bpf import BpfAttachType, BpfMapType, BpfProgType, MapFlags
from .btf import BtfError
from .btf.ext import describe_btf_ext, format_core_relo
from .model import MapDef, Program, Relocation
from .object import Object


def _enum_name(value: object, prefix: str) -> str:
    name = getattr(value, "name", None)
    if name:
        return str(name).removeprefix(prefix).lower()
    return str(int(value)) if isinstance(value, int) else str(value)


def _flags(value: int) -> list[str]:
    out = []
    for f in MapFlags:
        if f.value and value & f.value and f.name:
            out.append(f.name)
    rest = value & ~sum(f.value for f in MapFlags)
    if rest:
        out.append(hex(rest))
    return out


def _type_name(obj: Object, type_id: int) -> str | None:
    if not type_id or obj.btf is None:
        return None
    try:
        return obj.btf.type_name(type_id)
    except BtfError:
        return None


def _core(obj: Object, p: Program) -> list[dict[str, Any]]:
    out = []
    for c in p.core_relos:
        text = format_core_relo(obj.btf, c.type_id, c.access_str, c.kind) if obj.btf else c.access_str
        out.append({"insn": c.insn_off, "type_id": c.type_id, "access": c.access_str, "kind": c.kind,
                    "text": text})
    return out


def describe_program(p: Program, obj: Object | None = None) -> dict[str, Any]:
    s = p.section
    prog_type = s.prog_type if isinstance(s.prog_type, BpfProgType) else int(s.prog_type)
    attach = s.expected_attach_type
    return {
        "name": p.name,
        "section": p.section_name,
        "kind": s.kind,
        "type": _enum_name(prog_type, "BPF_PROG_TYPE_"),
        "prog_type": int(prog_type),
        "expected_attach_type": (_enum_name(attach, "BPF_") if isinstance(attach, BpfAttachType)
                                 else attach),
        "attach_target": s.attach_target,
        "attach_offset": s.offset,
        "binary_path": s.binary_path,
        "retprobe": s.is_retprobe,
        "sleepable": s.sleepable,
        "insns": p.insn_count,
        "offset": p.address,
        "size": p.size,
        "needs_core": p.needs_core,
        "known_section": s.known,
        "func_info": len(p.func_info),
        "line_info": len(p.line_info),
        "core_relocations": _core(obj, p) if obj is not None else [],
    }


_LIBBPF_INTERNAL = (".data", ".rodata", ".bss", ".kconfig")


def libbpf_map_name(obj: Object, m: MapDef) -> str:
    """The name libbpf gives the map (``internal_map_name``): ``<object>.<section>`` for the standard
    global-data sections, cut to 15 bytes; other maps keep their own name."""
    if not m.is_data or m.name not in _LIBBPF_INTERNAL or not obj.path:
        return m.name
    obj_name = obj.path.rsplit("/", 1)[-1].split(".", 1)[0]
    return obj_name[:max(0, 15 - len(m.name))] + m.name


def describe_map(obj: Object, m: MapDef) -> dict[str, Any]:
    mt = m.map_type if isinstance(m.map_type, BpfMapType) else int(m.map_type)
    out: dict[str, Any] = {
        "name": m.name,
        "kernel_name": m.kernel_name,
        "libbpf_name": libbpf_map_name(obj, m),
        "origin": m.origin.value,
        "section": m.section_name,
        "type": _enum_name(mt, "BPF_MAP_TYPE_"),
        "map_type": int(mt),
        "key_size": m.key_size,
        "value_size": m.value_size,
        "key_type": _type_name(obj, m.btf_key_type_id),
        "value_type": _type_name(obj, m.btf_value_type_id),
        "max_entries": m.max_entries,
        "map_flags": m.map_flags,
        "flags": _flags(m.map_flags),
        "pinning": m.pinning.name.lower(),
    }
    if m.map_extra:
        out["map_extra"] = m.map_extra
    if m.numa_node:
        out["numa_node"] = m.numa_node
    if m.id:
        out["id"] = m.id
    if m.values:
        out["values"] = list(m.values)
    if m.inner is not None:
        out["inner"] = describe_map(obj, m.inner)
    return out


def _insn_at(obj: Object, section_index: int, offset: int) -> Any:
    fn = obj.function_containing(section_index, offset)
    return fn.insns[(offset - fn.address) // 8] if fn is not None else None


def _relocation_target(obj: Object, r: Relocation) -> str:
    """What a relocation resolves to: the map, the data offset, or the function it lands on
    (a section symbol's target depends on the instruction's immediate, as link_program reads it)."""
    sym = obj.symbols[r.symbol_index] if r.symbol_index < len(obj.symbols) else None
    if sym is None:
        return "?"
    if not sym.is_defined:
        var = obj.variables.get(sym.name)
        if var is not None and var.section_index < 0:
            return f"data {var.section_name}+{var.offset}"
        if sym.name in obj.ksyms:
            return f"ksym {sym.name}"
        return f"undefined {sym.name}"
    sec = obj.section(sym.section_index)
    if sec is None:
        return "?"
    ins = _insn_at(obj, r.section_index, r.offset)
    imm = ins.imm if ins is not None and sym.is_section else 0
    for m in obj.maps.values():
        if m.section_index != sec.index:
            continue
        if m.is_data:  # as link_program: sym.value + the ld_imm64's own immediate (+ a RELA addend)
            data_imm = ins.imm if ins is not None and ins.is_ld_imm64 else 0
            return f"data {m.name}+{sym.value + data_imm + (r.addend or 0)}"
        if m.offset == sym.value + imm:
            return f"map {m.name}"
    if sec.is_executable:
        if ins is not None and ins.is_ld_imm64:
            addr = sym.value + ins.imm + (r.addend or 0)
        elif ins is not None:
            addr = (sym.value // 8 + ins.imm + 1) * 8
        else:
            addr = sym.value
        fn = obj.function_at(sec.index, addr)
        kind = "program" if any(p.section_index == sec.index and p.address == addr
                                for p in obj.programs.values()) else "function"
        return f"{kind} {fn.name}" if fn else f"code {sec.name}+{addr:#x}"
    return f"section {sec.name}"


def describe(obj: Object) -> dict[str, Any]:
    """Everything ``tinyaya inspect --json`` shows about an object, as plain JSON-able data."""
    variables = []
    for v in obj.variables.values():
        entry: dict[str, Any] = {"name": v.name, "section": v.section_name, "offset": v.offset, "size": v.size,
                                 "global": v.is_global, "type": _type_name(obj, v.btf_type_id)}
        mdef = obj.maps.get(v.section_name)
        if mdef is not None and mdef.data is not None:
            raw = mdef.data[v.offset:v.offset + v.size]
            entry["value"] = raw.hex()
            if obj.btf is not None and v.btf_type_id:
                try:
                    entry["formatted"] = obj.btf.format_value(v.btf_type_id, raw)
                except BtfError:
                    pass
        variables.append(entry)
    relocations = []
    code_sections = {p.section_index for p in obj.programs.values()} | (
        {obj.text_section_index} if obj.text_section_index is not None else set())
    for sec_index, rels in sorted(obj.relocations.items()):
        if sec_index not in code_sections and obj.sections[sec_index].name not in (".maps", ".struct_ops",
                                                                                    ".struct_ops.link"):
            continue
        for r in rels:
            relocations.append({
                "section": r.section_name, "offset": r.offset, "type": r.type_name, "symbol": r.symbol_name,
                "addend": r.addend, "target": _relocation_target(obj, r),
            })
    return {
        "path": obj.path,
        "endianness": obj.endianness.value,
        "license": obj.license,
        "kernel_version": obj.kernel_version,
        "programs": [describe_program(p, obj) for p in obj.programs.values()],
        "maps": [describe_map(obj, m) for m in obj.maps.values()],
        "globals": variables,
        "functions": [{"name": f.name, "section": f.section_name, "offset": f.address, "insns": f.insn_count}
                      for f in obj.functions.values()],
        "relocations": relocations,
        "btf": None if obj.btf is None else {"types": len(obj.btf) - 1},
        "core_relocations": sum(len(v) for v in obj.btf_ext.core_relos.values()) if obj.btf_ext else 0,
        "warnings": list(obj.warnings),
        "ksyms": sorted(obj.ksyms),
        "btf_ext": describe_btf_ext(obj.btf_ext, obj.btf) if obj.btf_ext is not None and obj.btf else {},
    }
