"""Map contents as bpftool shows them: plain text and ``-j`` JSON.

``bpftool -j map dump`` (tools/bpf/bpftool/map.c, ``print_entry_json``)
prints a JSON array with one object per entry: ``{"key": ["0x01", …],
"value": ["0x02", …]}`` (byte lists as hex strings), per-CPU maps with
``"values": [{"cpu": N, "value": […]}, …]`` (one per possible CPU, each
``value_size`` bytes of an 8-byte-aligned slot), and, when the map has BTF
(``bpf_map_info.btf_value_type_id``), ``"formatted"`` from ``do_dump_btf``:
``{"key": …, "value": …}`` or ``{"key": …, "values": [{"cpu": N, "value": …}]}``,
the key only when ``btf_key_type_id`` is set (see ``btffmt``). Without BTF,
bpftool prints no ``formatted``; tinyaya adds one from the map's codec: the
``key``/``value`` types a ``tinyaya.toml`` gives the map (``u8``…``i64``;
``bytes`` leaves that side out), else unsigned integers when the key and
values are 1, 2, 4 or 8 bytes (the syscall_ebpf example's maps have no BTF,
and counts are what people want to read).

Plain text follows ``print_entry_plain`` and ``fprint_hex`` byte for byte,
and a map with BTF prints bpftool's pretty ``btf_dumper`` tree instead.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..obj.btf import Btf
from ..uapi.bpf import BpfMapType
from .btffmt import BtfDumpError, Fields, dump_value, to_json, write_pretty, write_pretty_one

PERCPU_TYPES = {
    BpfMapType.BPF_MAP_TYPE_PERCPU_HASH, BpfMapType.BPF_MAP_TYPE_PERCPU_ARRAY,
    BpfMapType.BPF_MAP_TYPE_LRU_PERCPU_HASH, BpfMapType.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
}
MAP_OF_MAPS_TYPES = {BpfMapType.BPF_MAP_TYPE_ARRAY_OF_MAPS, BpfMapType.BPF_MAP_TYPE_HASH_OF_MAPS}
INT_SIZES = (1, 2, 4, 8)


def hex_bytes(data: bytes) -> list[str]:
    return [f"0x{b:02x}" for b in data]


def map_type_name(map_type: int) -> str:
    """bpftool's spelling: ``hash``, ``percpu_array``, ``perf_event_array``…"""
    try:
        return BpfMapType(map_type).name.removeprefix("BPF_MAP_TYPE_").lower()
    except ValueError:
        return f"type {map_type}"


def as_int(data: bytes) -> int | None:
    return int.from_bytes(data, "little") if len(data) in INT_SIZES else None


@dataclass
class Entry:
    key: bytes
    #: one value, or one per CPU for per-CPU maps
    values: list[bytes]


@dataclass(frozen=True)
class MapBtf:
    """The BTF of a map's key and value (``bpf_map_info.btf_id``, ``btf_key_type_id``, ``btf_value_type_id``)."""

    btf: Btf
    key_type_id: int
    value_type_id: int


def _btf_tree(e: Entry, percpu: bool, mb: MapBtf, plain: bool) -> Fields:
    """``do_dump_btf``: ``{"key": …, "value": …}`` or per CPU ``{"key": …, "values": [{cpu, value}]}``."""
    out = Fields()
    if mb.key_type_id:
        out.items.append(("key", dump_value(mb.btf, mb.key_type_id, e.key, plain=plain)))
    if percpu:
        out.items.append(("values", [Fields([("cpu", i), ("value", dump_value(mb.btf, mb.value_type_id, v,
                                                                             plain=plain))])
                                     for i, v in enumerate(e.values)]))
    else:
        out.items.append(("value", dump_value(mb.btf, mb.value_type_id, e.values[0], plain=plain)))
    return out


_CODEC_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "i8": 1, "i16": 2, "i32": 4, "i64": 8}


@dataclass(frozen=True)
class MapCodec:
    """The key and value types a project file names for a map (``[maps.NAME] key = "u32"``)."""

    key: str | None = None
    value: str | None = None

    @staticmethod
    def from_display(display: dict[str, Any] | None) -> MapCodec | None:
        if not display or not ({"key", "value"} & set(display)):
            return None
        k, v = display.get("key"), display.get("value")
        return MapCodec(k if isinstance(k, str) else None, v if isinstance(v, str) else None)


def _codec_int(data: bytes, typ: str | None) -> Any:
    """``data`` as the codec's type; ``None`` for ``bytes`` or a size that doesn't match the type."""
    if typ is None:
        return as_int(data)
    size = _CODEC_SIZES.get(typ)
    if size is None or size != len(data):
        return None
    return int.from_bytes(data, "little", signed=typ.startswith("i"))


def _int_formatted(e: Entry, percpu: bool, codec: MapCodec | None = None) -> dict[str, Any] | None:
    c = codec or MapCodec()
    fk = _codec_int(e.key, c.key)
    fv = [_codec_int(v, c.value) for v in e.values]
    if any(x is None for x in fv):
        return None
    out: dict[str, Any] = {} if fk is None else {"key": fk}
    if fk is None and c.key != "bytes":
        return None
    if percpu:
        out["values"] = [{"cpu": i, "value": x} for i, x in enumerate(fv)]
    else:
        out["value"] = fv[0]
    return out


def entry_json(e: Entry, percpu: bool, btf: MapBtf | None = None, *, map_of_maps: bool = False,
               codec: MapCodec | None = None) -> dict[str, Any]:
    """One element of ``bpftool -j map dump`` (``print_entry_json``)."""
    out: dict[str, Any] = {"key": hex_bytes(e.key)}
    if percpu:
        out["values"] = [{"cpu": i, "value": hex_bytes(v)} for i, v in enumerate(e.values)]
    else:
        out["value"] = hex_bytes(e.values[0])
        if map_of_maps and len(e.values[0]) >= 4:
            out["inner_map_id"] = int.from_bytes(e.values[0][:4], "little")
    if btf is not None and btf.value_type_id:
        try:
            out["formatted"] = to_json(_btf_tree(e, percpu, btf, plain=False))
        except BtfDumpError:
            pass
    else:
        f = _int_formatted(e, percpu, codec)
        if f is not None:
            out["formatted"] = f
    return out


def entries_json(entries: Iterable[Entry], percpu: bool, btf: MapBtf | None = None, *,
                 map_of_maps: bool = False, codec: MapCodec | None = None) -> list[dict[str, Any]]:
    return [entry_json(e, percpu, btf, map_of_maps=map_of_maps, codec=codec) for e in entries]


def fprint_hex(data: bytes) -> str:
    """bpftool ``fprint_hex(…, " ")``: bytes as ``%02hhx``, two spaces every 8, a newline every 16."""
    parts: list[str] = []
    for i, b in enumerate(data):
        if i:
            parts.append("\n" if i % 16 == 0 else "  " if i % 8 == 0 else " ")
        parts.append(f"{b:02x}")
    return "".join(parts)


def entry_text(e: Entry, percpu: bool, key_size: int | None = None, value_size: int | None = None, *,
               map_of_maps: bool = False) -> str:
    """bpftool's ``print_entry_plain``: ``key: 01 00 00 00  value: 02 00 00 00`` and its longer layouts."""
    ks = len(e.key) if key_size is None else key_size
    vs = len(e.values[0]) if value_size is None else value_size
    if percpu:
        lines = ["key:", fprint_hex(e.key)]
        for cpu, v in enumerate(e.values):
            lines.append(f"value (CPU {cpu:02d}):{chr(10) if vs > 16 else ' '}{fprint_hex(v)}")
        return "\n".join(lines)
    break_names = ks > 16 or vs > 16
    single_line = ks + vs <= 24 and not break_names
    sep = "\n" if break_names else " "
    out = ""
    if ks:
        out += f"key:{sep}{fprint_hex(e.key)}" + ("  " if single_line else "\n")
    if vs:
        if map_of_maps:
            out += f"inner_map_id:{sep}{int.from_bytes(e.values[0][:4], 'little')} "
        else:
            out += f"value:{sep}{fprint_hex(e.values[0])}"
    return out


def found_line(n: int) -> str:
    """The last line of a plain ``bpftool map dump``."""
    return f"Found {n} element{'s' if n != 1 else ''}"


def entries_btf_text(entries: Iterable[Entry], percpu: bool, btf: MapBtf) -> str:
    """Plain ``bpftool map dump`` of a map with BTF: the btf_dumper tree, pretty-printed (no ``Found`` line)."""
    trees: list[Any] = []
    for e in entries:
        try:
            trees.append(_btf_tree(e, percpu, btf, plain=True))
        except BtfDumpError:
            trees.append(Fields([("key", fprint_hex(e.key))]))
    return write_pretty(trees)


def entry_btf_text(e: Entry, percpu: bool, btf: MapBtf) -> str:
    """Plain ``bpftool map lookup`` of a map with BTF: one pretty btf_dumper object, no array around it."""
    try:
        return write_pretty_one(_btf_tree(e, percpu, btf, plain=True))
    except BtfDumpError:
        return entry_text(e, percpu)
