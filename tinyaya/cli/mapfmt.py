"""Map contents as bpftool shows them: plain text and ``-j`` JSON.

``bpftool -j map dump`` prints a JSON array with one object per entry:
``{"key": ["0x01", …], "value": ["0x02", …]}`` (byte lists as hex strings),
per-CPU maps with ``"values": [{"cpu": N, "value": […]}, …]``, plus a
``"formatted"`` object when the types are known: from BTF, or, without BTF,
as unsigned integers when a key or value is 1, 2, 4 or 8 bytes.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..uapi.bpf import BpfMapType

PERCPU_TYPES = {
    BpfMapType.BPF_MAP_TYPE_PERCPU_HASH, BpfMapType.BPF_MAP_TYPE_PERCPU_ARRAY,
    BpfMapType.BPF_MAP_TYPE_LRU_PERCPU_HASH, BpfMapType.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
}
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


Formatter = Callable[[bytes], Any]


def entry_json(e: Entry, percpu: bool, fmt_key: Formatter | None, fmt_value: Formatter | None) -> dict[str, Any]:
    out: dict[str, Any] = {"key": hex_bytes(e.key)}
    if percpu:
        out["values"] = [{"cpu": i, "value": hex_bytes(v)} for i, v in enumerate(e.values)]
    else:
        out["value"] = hex_bytes(e.values[0])
    fk = fmt_key(e.key) if fmt_key else as_int(e.key)
    if percpu:
        fv: list[Any] = [fmt_value(v) if fmt_value else as_int(v) for v in e.values]
        if fk is not None and all(x is not None for x in fv):
            out["formatted"] = {"key": fk, "values": [{"cpu": i, "value": x} for i, x in enumerate(fv)]}
    else:
        v1 = fmt_value(e.values[0]) if fmt_value else as_int(e.values[0])
        if fk is not None and v1 is not None:
            out["formatted"] = {"key": fk, "value": v1}
    return out


def entries_json(entries: Iterable[Entry], percpu: bool, fmt_key: Formatter | None = None,
                 fmt_value: Formatter | None = None) -> list[dict[str, Any]]:
    return [entry_json(e, percpu, fmt_key, fmt_value) for e in entries]


def entry_text(e: Entry, percpu: bool) -> str:
    """bpftool's plain layout: ``key: 01 00 00 00  value: 02 00 00 00``."""
    key = " ".join(f"{b:02x}" for b in e.key)
    if not percpu:
        return f"key: {key}  value: {' '.join(f'{b:02x}' for b in e.values[0])}"
    lines = [f"key:\n{key}"]
    for cpu, v in enumerate(e.values):
        lines.append(f"value (CPU {cpu:02d}): {' '.join(f'{b:02x}' for b in v)}")
    return "\n".join(lines)
