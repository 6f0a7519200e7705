"""Opening the maps and programs of the last load through their bpffs pins (BPF_OBJ_GET)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..kernel import Kernel, possible_cpus
from ..sys import bpf as sysbpf
from ..uapi.bpf import BpfMapInfo
from .errors import bad_input, failed
from .mapfmt import MAP_OF_MAPS_TYPES, PERCPU_TYPES, Entry, MapBtf
from .state import LoadRecord, load_pin_dir


@dataclass
class OpenMap:
    name: str
    fd: int
    info: BpfMapInfo
    path: Path

    @property
    def percpu(self) -> bool:
        return self.info.type in PERCPU_TYPES

    @property
    def map_of_maps(self) -> bool:
        return self.info.type in MAP_OF_MAPS_TYPES


def pinned_map_paths(pin_dir: Path | None = None) -> dict[str, Path]:
    d = (pin_dir or load_pin_dir()) / "maps"
    if not d.is_dir():
        return {}
    return {p.name: p for p in sorted(d.iterdir())}


def require_load() -> LoadRecord:
    from .state import require_load_record

    rec = require_load_record()
    if not pinned_map_paths():
        bad_input("no load to inspect: run `tinyaya load OBJ` first (its maps are pinned for other shells)")
    return rec


def open_map(kernel: Kernel, name: str, pin_dir: Path | None = None) -> OpenMap:
    paths = pinned_map_paths(pin_dir)
    if name not in paths:
        known = ", ".join(paths) or "none"
        bad_input(f"no map named {name!r} in the last load (maps: {known})")
    fd = sysbpf.bpf_obj_get(kernel, str(paths[name]))
    return OpenMap(name, fd, sysbpf.bpf_map_get_info_by_fd(kernel, fd), paths[name])


def open_all_maps(kernel: Kernel, pin_dir: Path | None = None) -> list[OpenMap]:
    return [open_map(kernel, n, pin_dir) for n in pinned_map_paths(pin_dir)]


def value_size_for(kernel: Kernel, m: OpenMap) -> int:
    if m.percpu:
        return ((m.info.value_size + 7) // 8 * 8) * len(possible_cpus(kernel))
    return int(m.info.value_size)


def split_percpu(kernel: Kernel, m: OpenMap, raw: bytes) -> list[bytes]:
    if not m.percpu:
        return [raw]
    stride = (m.info.value_size + 7) // 8 * 8
    return [raw[i:i + m.info.value_size] for i in range(0, len(raw), stride)]


def iter_entries(kernel: Kernel, m: OpenMap, limit: int | None = None) -> Iterator[Entry]:
    """Walk the map with GET_NEXT_KEY + LOOKUP, as bpftool does; keys deleted meanwhile are skipped."""
    from ..uapi.bpf import BpfMapType

    if m.info.type in (BpfMapType.BPF_MAP_TYPE_PERF_EVENT_ARRAY, BpfMapType.BPF_MAP_TYPE_RINGBUF,
                       BpfMapType.BPF_MAP_TYPE_QUEUE, BpfMapType.BPF_MAP_TYPE_STACK,
                       BpfMapType.BPF_MAP_TYPE_BLOOM_FILTER, BpfMapType.BPF_MAP_TYPE_PROG_ARRAY):
        return
    vsize = value_size_for(kernel, m)
    key: bytes | None = None
    n = 0
    while limit is None or n < limit:
        nxt = sysbpf.bpf_map_get_next_key(kernel, m.fd, key, m.info.key_size)
        if nxt is None:
            return
        key = nxt
        try:
            raw = sysbpf.bpf_map_lookup_elem(kernel, m.fd, key, vsize)
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno == 2:
                continue
            raise
        n += 1
        yield Entry(key, split_percpu(kernel, m, raw))


def kernel_map_btf(kernel: Kernel, info: BpfMapInfo) -> MapBtf | None:
    """The map's BTF from the kernel, as bpftool's ``get_map_kv_btf``: only with a ``btf_value_type_id``.

    BPF_BTF_GET_FD_BY_ID on ``btf_id``, then the raw BTF through BPF_OBJ_GET_INFO_BY_FD
    (``bpf_btf_info.btf``), parsed by ``tinyaya.obj.btf``.
    """
    if not info.btf_id or not info.btf_value_type_id:
        return None
    from ..obj.btf import Btf
    from ..obj.errors import BtfError

    try:
        fd = sysbpf.bpf_btf_get_fd_by_id(kernel, int(info.btf_id))
    except OSError:
        return None
    try:
        data = sysbpf.bpf_btf_get_data(kernel, fd)
    finally:
        kernel.close(fd)
    try:
        btf = Btf.parse(data)
    except BtfError:
        return None
    return MapBtf(btf, int(info.btf_key_type_id), int(info.btf_value_type_id))


class MapBtfSource:
    """Where ``maps dump`` finds a map's BTF: the kernel first, else the loaded object.

    The simulated bpffs keeps a pinned map's contents but not its BTF object, so a
    map opened from another shell reports ``btf_id`` 0. For a simulated load the
    same types are in the object the load recorded (``last-load.json``): the map's
    definition names its key and value type ids in the object's BTF, which is what
    the loader gave BPF_MAP_CREATE.
    """

    def __init__(self, kernel: Kernel, record: LoadRecord | None) -> None:
        self.kernel = kernel
        self.record = record
        self._obj: object | None = None
        self._obj_tried = False

    def _object(self) -> object | None:
        if not self._obj_tried:
            self._obj_tried = True
            if self.record is not None and self.record.backend == "sim":
                from ..obj import Object

                try:
                    self._obj = Object.parse(Path(self.record.obj).read_bytes(), self.record.obj)
                except Exception:  # noqa: BLE001 - an object changed or gone since the load: no BTF
                    self._obj = None
        return self._obj

    def for_map(self, m: OpenMap) -> MapBtf | None:
        mb = kernel_map_btf(self.kernel, m.info)
        if mb is not None or m.info.btf_id:
            return mb
        obj = self._object()
        btf = getattr(obj, "btf", None)
        mdef = getattr(obj, "maps", {}).get(m.name)
        if btf is None or mdef is None or not mdef.btf_value_type_id:
            return None
        if (mdef.key_size, mdef.value_size) != (m.info.key_size, m.info.value_size):
            return None
        return MapBtf(btf, int(mdef.btf_key_type_id), int(mdef.btf_value_type_id))


def close_maps(kernel: Kernel, maps: list[OpenMap]) -> None:
    for m in maps:
        try:
            kernel.close(m.fd)
        except OSError:
            pass


def parse_hex_bytes(text: str, size: int, what: str) -> bytes:
    """``01 00 00 00``, ``0x01 0x00 …``, ``01000000`` or a decimal integer (``42``) for ``what``."""
    t = text.strip()
    parts = t.replace(",", " ").split()
    try:
        if len(parts) > 1:
            data = bytes(int(p, 16) for p in parts)
        elif t.lower().startswith("0x") and len(t) > 2 and len(t) == 2 + 2 * size:
            data = bytes.fromhex(t[2:])
        elif t.isdigit() or (t.startswith("-") and t[1:].isdigit()):
            data = (int(t) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        else:
            data = bytes.fromhex(t)
    except ValueError:
        bad_input(f"{what}: not hex bytes or an integer: {text!r}")
    if len(data) != size:
        bad_input(f"{what}: {len(data)} bytes given, the map's {what} size is {size}")
    return data


def ensure_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        bad_input(f"{path}: no such file")
    if p.is_dir():
        bad_input(f"{path}: is a directory")
    if not os.access(p, os.R_OK):
        failed(f"{path}: permission denied")
    return p
