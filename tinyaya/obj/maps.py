"""Map definitions: legacy ``maps`` sections, BTF-defined ``.maps`` and global data sections.

* Legacy (aya-obj ``maps.rs::bpf_map_def``; libbpf ``struct bpf_map_def``;
  iproute2 ``struct bpf_elf_map``): consecutive ``__u32`` fields ``type,
  key_size, value_size, max_entries, map_flags`` (libbpf, 20 bytes) ``, id,
  pinning`` (Aya, 28 bytes) ``, inner_id, inner_idx`` (iproute2, 36 bytes).
* BTF (libbpf ``parse_btf_map_def``): a ``.maps`` DATASEC variable whose struct
  members encode ``__uint(name, N)`` as ``int (*name)[N]`` and
  ``__type(name, T)`` as ``T *name``; ``values`` is a zero-length array of
  pointers initialised through ``.rel.maps`` relocations.
* Global data (libbpf ``bpf_object__init_internal_map``, aya ``parse_data_map_section``):
  a one-entry ARRAY named after the section, value_size = section size.
"""
from __future__ import annotations

import struct

from ..uapi.bpf import BpfMapType, MapFlags
from .btf import Btf, BtfKind
from .elf import Elf, Section
from .errors import BtfError, InvalidMapDefinition, MapSymbolNameNotFound
from .model import MapDef, MapOrigin, PinningType, Relocation, Symbol

MINIMUM_MAP_SIZE = 20  # aya-obj: size_of::<u32>() * 5, libbpf's struct bpf_map_def
AYA_MAP_DEF_SIZE = 28


def map_type(value: int) -> BpfMapType | int:
    try:
        return BpfMapType(value)
    except ValueError:
        return value


def _pinning(value: int) -> PinningType:
    try:
        return PinningType(value)
    except ValueError:
        return PinningType.BY_NAME if value else PinningType.NONE


def is_legacy_maps_section(name: str) -> bool:
    return name == "maps" or name.startswith("maps/")


def is_data_section(name: str) -> bool:
    """``.data*``, ``.rodata*``, ``.bss*`` and ``.kconfig`` (libbpf ``sec_is_data``/aya ``BpfSectionKind``)."""
    for prefix in (".data", ".rodata", ".bss"):
        if name == prefix or name.startswith(prefix + "."):
            return True
    return name == ".kconfig"


def is_rodata_section(name: str) -> bool:
    return name == ".rodata" or name.startswith(".rodata.") or name == ".kconfig"


def parse_legacy_maps(elf: Elf, sec: Section, symbols: list[Symbol]) -> list[MapDef]:
    """Legacy map definitions of one ``maps`` section, in symbol order."""
    data = elf.section_data(sec)
    syms = sorted((s for s in symbols if s.section_index == sec.index and not s.is_section
                   and s.type != Symbol.STT_FILE), key=lambda s: (s.value, s.index))
    if not syms:
        if sec.size:
            raise InvalidMapDefinition("maps section has no symbols", section=sec.name)
        return []
    e = elf.e
    out = []
    for sym in syms:
        if not sym.name:
            raise MapSymbolNameNotFound(f"map symbol {sym.index} has no name", section=sec.name)
        size = sym.size if sym.size else len(data) // len(syms)
        if size < MINIMUM_MAP_SIZE:
            raise InvalidMapDefinition(f"map definition is {size} bytes, shorter than {MINIMUM_MAP_SIZE}",
                                       section=sec.name, symbol=sym.name)
        if sym.value + size > len(data):
            raise InvalidMapDefinition(f"map definition ({size} bytes at {sym.value}) is past the end of "
                                       f"the section ({len(data)} bytes)", section=sec.name, symbol=sym.name)
        raw = data[sym.value:sym.value + min(size, AYA_MAP_DEF_SIZE)].ljust(AYA_MAP_DEF_SIZE, b"\0")
        typ, key_size, value_size, max_entries, flags, map_id, pinning = struct.unpack(e + "7I", raw)
        out.append(MapDef(
            name=sym.name, origin=MapOrigin.LEGACY, section_name=sec.name, section_index=sec.index,
            map_type=map_type(typ), key_size=key_size, value_size=value_size, max_entries=max_entries,
            map_flags=flags, pinning=_pinning(pinning), id=map_id, symbol_index=sym.index, offset=sym.value,
        ))
    return out


def parse_data_map(elf: Elf, sec: Section, btf: Btf | None) -> MapDef:
    flags = MapFlags.BPF_F_RDONLY_PROG if is_rodata_section(sec.name) else 0
    value_type = 0
    if btf is not None and (ds := btf.datasec(sec.name)) is not None:
        value_type = ds.id
    return MapDef(
        name=sec.name, origin=MapOrigin.DATA, section_name=sec.name, section_index=sec.index,
        map_type=BpfMapType.BPF_MAP_TYPE_ARRAY, key_size=4, value_size=sec.size, max_entries=1,
        map_flags=int(flags), btf_value_type_id=value_type, data=elf.section_data(sec),
    )


# --- BTF-defined maps -----------------------------------------------------------------------


def _uint_member(btf: Btf, type_id: int, what: str, sec: str, name: str) -> int:
    """``__uint(x, N)`` is ``int (*x)[N]``: a PTR to an ARRAY of N elements."""
    ptr = btf.type(type_id)
    if ptr.kind != BtfKind.PTR:
        raise InvalidMapDefinition(f"attr '{what}': expected PTR, got {ptr.kind.name}", section=sec, symbol=name)
    arr = btf.type(ptr.type)
    if arr.kind != BtfKind.ARRAY:
        raise InvalidMapDefinition(f"attr '{what}': type [{ptr.type}] is not an array", section=sec, symbol=name)
    return arr.array_nelems


def _type_member(btf: Btf, type_id: int, what: str, sec: str, name: str) -> tuple[int, int]:
    """``__type(x, T)`` is ``T *x``: the pointee's id and size."""
    ptr = btf.type(type_id)
    if ptr.kind != BtfKind.PTR:
        raise InvalidMapDefinition(f"attr '{what}': expected PTR, got {ptr.kind.name}", section=sec, symbol=name)
    try:
        size = btf.size_of(ptr.type)
    except BtfError as e:  # an unsized type
        raise InvalidMapDefinition(f"attr '{what}': can't determine size of type [{ptr.type}]: {e}",
                                   section=sec, symbol=name)
    return ptr.type, size


def parse_btf_map_def(btf: Btf, struct_id: int, sec: Section, name: str, *, depth: int = 0,
                      symbol: Symbol | None = None) -> tuple[MapDef, int | None]:
    """One BTF map definition; returns the MapDef and the bit offset of its ``values`` member, if any."""
    t = btf.resolve(struct_id)
    if t.kind != BtfKind.STRUCT:
        raise InvalidMapDefinition(f"map definition type [{struct_id}] is {t.kind.name}, not a struct",
                                   section=sec.name, symbol=name)
    for _ in range(8):  # Rust wrappers (aya's Array<..> around UnsafeCell<ArrayDef<..>>): one struct member
        if len(t.members) != 1:  # attributes are pointers or arrays, never structs
            break
        inner_t = btf.resolve(t.members[0].type)
        if inner_t.kind != BtfKind.STRUCT:
            break
        t = inner_t
    fields: dict[str, int] = {}
    key_type = value_type = 0
    key_size = value_size = None
    inner: MapDef | None = None
    values_bit_off: int | None = None
    for m in t.members:
        if m.name in ("type", "max_entries", "map_flags", "numa_node", "pinning", "map_extra"):
            fields[m.name] = _uint_member(btf, m.type, m.name, sec.name, name)
        elif m.name == "key_size":
            key_size = _uint_member(btf, m.type, m.name, sec.name, name)
        elif m.name == "value_size":
            value_size = _uint_member(btf, m.type, m.name, sec.name, name)
        elif m.name == "key":
            key_type, ks = _type_member(btf, m.type, m.name, sec.name, name)
            if key_size is not None and key_size != ks:
                raise InvalidMapDefinition(f"conflicting key size {key_size} != {ks}", section=sec.name, symbol=name)
            key_size = ks
        elif m.name == "value":
            value_type, vs = _type_member(btf, m.type, m.name, sec.name, name)
            if value_size is not None and value_size != vs:
                raise InvalidMapDefinition(f"conflicting value size {value_size} != {vs}", section=sec.name,
                                           symbol=name)
            value_size = vs
        elif m.name == "values":
            values_bit_off = m.bit_offset
            arr = btf.type(m.type)
            if arr.kind != BtfKind.ARRAY or arr.array_nelems:
                raise InvalidMapDefinition("'values' must be a zero-length array", section=sec.name, symbol=name)
            elem = btf.resolve(arr.array_type)
            if elem.kind != BtfKind.PTR:
                raise InvalidMapDefinition("'values' elements must be pointers", section=sec.name, symbol=name)
            target = btf.resolve(elem.type)
            if target.kind == BtfKind.STRUCT:
                if depth > 0:
                    raise InvalidMapDefinition("nested map-in-map is not supported", section=sec.name, symbol=name)
                inner, _ = parse_btf_map_def(btf, target.id, sec, f"{name}.inner", depth=depth + 1)
            value_size = 4
        # any other member is ignored, as libbpf does outside strict mode
    typ = fields.get("type", 0)
    return MapDef(
        name=name, origin=MapOrigin.BTF, section_name=sec.name, section_index=sec.index,
        map_type=map_type(typ), key_size=key_size or 0, value_size=value_size or 0,
        max_entries=fields.get("max_entries", 0), map_flags=fields.get("map_flags", 0),
        map_extra=fields.get("map_extra", 0), numa_node=fields.get("numa_node", 0),
        pinning=_pinning(fields.get("pinning", 0)), symbol_index=symbol.index if symbol else None,
        offset=symbol.value if symbol else 0, inner=inner, btf_key_type_id=key_type,
        btf_value_type_id=value_type,
    ), values_bit_off


def parse_btf_maps(sec: Section, btf: Btf | None, symbols: list[Symbol],
                   relocations: list[Relocation]) -> list[MapDef]:
    """Maps of the ``.maps`` section, with ``values`` filled from its relocations."""
    if btf is None:
        raise InvalidMapDefinition(".maps section but no .BTF section", section=sec.name)
    ds = btf.datasec(sec.name)
    if ds is None:
        raise InvalidMapDefinition("no BTF DATASEC for the .maps section", section=sec.name)
    by_name = {s.name: s for s in symbols if s.section_index == sec.index and not s.is_section}
    out = []
    for vs in ds.secinfo:
        var = btf.type(vs.type)
        if var.kind != BtfKind.VAR:
            raise InvalidMapDefinition(f"DATASEC entry [{vs.type}] is {var.kind.name}, not a VAR", section=sec.name)
        sym = by_name.get(var.name)
        if sym is None:
            raise InvalidMapDefinition("no ELF symbol for map", section=sec.name, symbol=var.name)
        mdef, values_bit_off = parse_btf_map_def(btf, var.type, sec, var.name, symbol=sym)
        if values_bit_off is not None:
            mdef = _with_values(mdef, sym, values_bit_off // 8, relocations)
        out.append(mdef)
    return out


def _with_values(mdef: MapDef, sym: Symbol, values_off: int, relocations: list[Relocation]) -> MapDef:
    """Initial ``values`` from ``.rel.maps`` (libbpf ``bpf_object__collect_map_relos``)."""
    import dataclasses

    start = sym.value + values_off
    end = sym.value + (sym.size if sym.size else 1 << 30)
    slots: dict[int, str] = {}
    for r in relocations:
        if not start <= r.offset < end:
            continue
        if (r.offset - start) % 8:
            raise InvalidMapDefinition(f"'values' relocation at {r.offset} is not 8-byte aligned",
                                       section=mdef.section_name, symbol=mdef.name)
        slots[(r.offset - start) // 8] = r.symbol_name
    if not slots:
        return mdef
    n = max(slots) + 1
    values = tuple(slots.get(i) for i in range(n))
    max_entries = mdef.max_entries or n
    return dataclasses.replace(mdef, values=values, max_entries=max_entries)


BPF_F_LINK = 1 << 13  # uapi: map_flags of a .struct_ops.link map (attach through BPF_LINK_CREATE)


def is_struct_ops_section(name: str) -> bool:
    return name in (".struct_ops", ".struct_ops.link")


def parse_struct_ops(elf: Elf, sec: Section, btf: Btf | None, symbols: list[Symbol],
                     relocations: list[Relocation]) -> list[MapDef]:
    """STRUCT_OPS maps (libbpf ``init_struct_ops_maps``): one per variable of ``.struct_ops[.link]``.

    ``values[i]`` names the program that member ``i`` points to (from ``R_BPF_64_ABS64``
    relocations); such a program's expected_attach_type is that member index.
    """
    if btf is None or (ds := btf.datasec(sec.name)) is None:
        raise InvalidMapDefinition("struct_ops section without BTF", section=sec.name)
    data = elf.section_data(sec)
    by_name = {s.name: s for s in symbols if s.section_index == sec.index and not s.is_section}
    out = []
    for vs in ds.secinfo:
        var = btf.type(vs.type)
        sym = by_name.get(var.name)
        if var.kind != BtfKind.VAR or sym is None:
            raise InvalidMapDefinition("struct_ops variable without a symbol", section=sec.name, symbol=var.name)
        st = btf.resolve(var.type)
        if st.kind != BtfKind.STRUCT:
            raise InvalidMapDefinition("struct_ops variable is not a struct", section=sec.name, symbol=var.name)
        size = st.size
        if sym.value + size > len(data):
            raise InvalidMapDefinition("struct_ops variable is past the end of its section", section=sec.name,
                                       symbol=var.name)
        members = {m.bit_offset // 8: i for i, m in enumerate(st.members) if not m.bitfield_size}
        slots: dict[int, str] = {}
        for r in relocations:
            if sym.value <= r.offset < sym.value + size:
                idx = members.get(r.offset - sym.value)
                if idx is None:
                    raise InvalidMapDefinition(f"relocation at {r.offset} is not on a member", section=sec.name,
                                               symbol=var.name)
                slots[idx] = r.symbol_name
        values = tuple(slots.get(i) for i in range(max(slots) + 1)) if slots else ()
        out.append(MapDef(
            name=var.name, origin=MapOrigin.BTF, section_name=sec.name, section_index=sec.index,
            map_type=BpfMapType.BPF_MAP_TYPE_STRUCT_OPS, key_size=4, value_size=size, max_entries=1,
            map_flags=BPF_F_LINK if sec.name.endswith(".link") else 0, symbol_index=sym.index, offset=sym.value,
            values=values, btf_value_type_id=var.type, data=data[sym.value:sym.value + size],
        ))
    return out
