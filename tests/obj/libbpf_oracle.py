"""libbpf as an oracle, through ctypes over libbpf.so: open objects (never load) and report what
libbpf sees (bpf_object__open_file, bpf_object__next_program/bpf_program__*, bpf_object__next_map/bpf_map__*).

``python -m tests.obj.libbpf_oracle`` re-records tests/fixtures/obj/libbpf_oracle.json.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "obj"
RECORDED = FIXTURES / "libbpf_oracle.json"
LIBBPF_PATHS = ("/usr/lib/x86_64-linux-gnu/libbpf.so.1", "libbpf.so.1", "libbpf.so")


def load_libbpf() -> ctypes.CDLL | None:
    for name in LIBBPF_PATHS:
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
        vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
        lib.bpf_object__open_file.restype = vp
        lib.bpf_object__open_file.argtypes = [cp, vp]
        lib.bpf_object__close.argtypes = [vp]
        lib.bpf_object__next_program.restype = vp
        lib.bpf_object__next_program.argtypes = [vp, vp]
        lib.bpf_object__next_map.restype = vp
        lib.bpf_object__next_map.argtypes = [vp, vp]
        for fn in ("bpf_program__name", "bpf_program__section_name", "bpf_map__name"):
            getattr(lib, fn).restype = cp
            getattr(lib, fn).argtypes = [vp]
        for fn in ("bpf_program__type", "bpf_program__expected_attach_type", "bpf_map__type",
                   "bpf_map__key_size", "bpf_map__value_size", "bpf_map__max_entries", "bpf_map__map_flags",
                   "bpf_map__numa_node"):
            getattr(lib, fn).restype = ctypes.c_uint32
            getattr(lib, fn).argtypes = [vp]
        lib.bpf_program__insn_cnt.restype = sz
        lib.bpf_program__insn_cnt.argtypes = [vp]
        lib.bpf_map__map_extra.restype = ctypes.c_uint64
        lib.bpf_map__map_extra.argtypes = [vp]
        lib.libbpf_prog_type_by_name.argtypes = [cp, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
        lib.libbpf_set_print.restype = vp
        lib.libbpf_set_print.argtypes = [vp]
        lib.libbpf_set_print(None)  # silence libbpf's warnings
        return lib
    return None


def libbpf_version(lib: ctypes.CDLL) -> str:
    return f"{lib.libbpf_major_version()}.{lib.libbpf_minor_version()}"


def open_object(lib: ctypes.CDLL, path: Path) -> dict[str, Any]:
    """What libbpf reports for ``path`` after bpf_object__open_file, or {"error": errno}."""
    ctypes.set_errno(0)
    obj = lib.bpf_object__open_file(str(path).encode(), None)
    if not obj:
        return {"error": ctypes.get_errno()}
    try:
        programs = []
        prog = lib.bpf_object__next_program(obj, None)
        while prog:
            programs.append({
                "name": lib.bpf_program__name(prog).decode(),
                "section": lib.bpf_program__section_name(prog).decode(),
                "type": lib.bpf_program__type(prog),
                "expected_attach_type": lib.bpf_program__expected_attach_type(prog),
                "insn_cnt": lib.bpf_program__insn_cnt(prog),
            })
            prog = lib.bpf_object__next_program(obj, prog)
        maps = []
        m = lib.bpf_object__next_map(obj, None)
        while m:
            maps.append({
                "name": lib.bpf_map__name(m).decode(),
                "type": lib.bpf_map__type(m),
                "key_size": lib.bpf_map__key_size(m),
                "value_size": lib.bpf_map__value_size(m),
                "max_entries": lib.bpf_map__max_entries(m),
                "map_flags": lib.bpf_map__map_flags(m),
                "map_extra": lib.bpf_map__map_extra(m),
                "numa_node": lib.bpf_map__numa_node(m),
            })
            m = lib.bpf_object__next_map(obj, m)
        return {"programs": programs, "maps": maps}
    finally:
        lib.bpf_object__close(obj)


def prog_type_by_name(lib: ctypes.CDLL, name: str) -> tuple[int, int] | None:
    t, a = ctypes.c_int(), ctypes.c_int()
    if lib.libbpf_prog_type_by_name(name.encode(), ctypes.byref(t), ctypes.byref(a)):
        return None
    return t.value, a.value


def record() -> dict[str, Any]:
    lib = load_libbpf()
    if lib is None:
        raise SystemExit("libbpf.so not found")
    out: dict[str, Any] = {"libbpf_version": libbpf_version(lib), "objects": {}}
    for path in sorted(FIXTURES.glob("*.o")):
        out["objects"][path.name] = open_object(lib, path)
    from tests.obj.section_names import SECTION_NAMES

    out["section_names"] = {n: prog_type_by_name(lib, n) for n in SECTION_NAMES}
    return out


if __name__ == "__main__":
    data = record()
    RECORDED.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(data['objects'])} objects with libbpf {data['libbpf_version']} -> {RECORDED}")
