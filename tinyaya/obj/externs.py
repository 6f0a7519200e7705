"""``extern`` variables: the ``.kconfig`` map libbpf and aya synthesise for ``__kconfig`` externs.

An ``extern ... __kconfig`` variable is an undefined ELF symbol with a BTF VAR
in a ``.kconfig`` DATASEC. libbpf (``bpf_object__collect_externs``,
``cmp_externs``) lays them out in one read-only ARRAY map named ``.kconfig``:
sorted by alignment (largest first), then size (smallest first), then name,
each at the next offset aligned to its type. The loader fills in the values
(``LINUX_KERNEL_VERSION``, ``CONFIG_*``); here they start as zeros.
"""
from __future__ import annotations

from ..uapi.bpf import BpfMapType, MapFlags
from .btf import Btf, BtfError, BtfKind
from .errors import InvalidSymbol
from .model import GlobalVariable, MapDef, MapOrigin, Symbol

KCONFIG_SECTION = ".kconfig"
KCONFIG_SECTION_INDEX = -1  # no ELF section backs the map


def _align(btf: Btf, type_id: int, depth: int = 0) -> int:
    t = btf.resolve(type_id)
    if depth > 16:
        return 1
    if t.kind in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FLOAT):
        return max(1, min(t.size, 8))
    if t.kind == BtfKind.PTR:
        return 8
    if t.kind == BtfKind.ARRAY:
        return _align(btf, t.array_type, depth + 1)
    if t.kind in (BtfKind.STRUCT, BtfKind.UNION):
        return max((_align(btf, m.type, depth + 1) for m in t.members), default=1)
    return 1


def parse_kconfig(btf: Btf | None, symbols: list[Symbol]) -> tuple[MapDef | None, dict[str, GlobalVariable]]:
    """The ``.kconfig`` map and its variables, if the object declares ``__kconfig`` externs."""
    if btf is None:
        return None, {}
    ds = btf.datasec(KCONFIG_SECTION)
    if ds is None or not ds.secinfo:
        return None, {}
    undefined = {s.name for s in symbols if not s.is_defined and s.name}
    externs = []
    for vs in ds.secinfo:
        var = btf.type(vs.type)
        if var.kind != BtfKind.VAR:
            continue
        if var.name not in undefined:
            raise InvalidSymbol("__kconfig extern has no undefined ELF symbol", section=KCONFIG_SECTION,
                                symbol=var.name)
        try:
            size = btf.size_of(var.type)
        except BtfError as e:
            raise InvalidSymbol(f"__kconfig extern has no size: {e}", section=KCONFIG_SECTION, symbol=var.name)
        externs.append((var.name, var.type, size, _align(btf, var.type)))
    externs.sort(key=lambda x: (-x[3], x[2], x[0]))
    off = 0
    variables = {}
    for name, type_id, size, align in externs:
        off = (off + align - 1) // align * align
        variables[name] = GlobalVariable(name, KCONFIG_SECTION, KCONFIG_SECTION_INDEX, off, size, True, type_id)
        off += size
    value_size = max(1, off)
    mdef = MapDef(
        name=KCONFIG_SECTION, origin=MapOrigin.DATA, section_name=KCONFIG_SECTION,
        section_index=KCONFIG_SECTION_INDEX, map_type=BpfMapType.BPF_MAP_TYPE_ARRAY, key_size=4,
        value_size=value_size, max_entries=1, map_flags=int(MapFlags.BPF_F_RDONLY_PROG),
        btf_value_type_id=ds.id, data=bytes(value_size),
    )
    return mdef, variables
