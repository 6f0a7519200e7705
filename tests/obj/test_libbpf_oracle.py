"""Programs and maps as libbpf sees them (bpf_object__open_file, never load), live and recorded."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tinyaya.obj import MapOrigin, Object, describe, parse_program_section
from tinyaya.uapi.bpf import MapFlags

from .libbpf_oracle import FIXTURES, RECORDED, load_libbpf, open_object, prog_type_by_name

RECORDING: dict[str, Any] = json.loads(RECORDED.read_text())
OBJECTS = sorted(RECORDING["objects"])
_STANDARD_DATA = {".data", ".rodata", ".bss", ".kconfig"}
# Where tinyaya (following Aya and the issue) deliberately differs from libbpf 1.x:
NO_LIBBPF_PROGRAMS = {"nosym.o": "libbpf ignores a code section without function symbols; Aya-style parsing "
                                  "makes it one program named after the section"}


def libbpf_map_name(obj_file: str, name: str, origin: MapOrigin) -> str:
    """libbpf ``internal_map_name``: <object name prefix><section> for the standard data sections."""
    if origin is not MapOrigin.DATA or name not in _STANDARD_DATA:
        return name
    obj_name = obj_file.split(".", 1)[0]
    pfx = min(15 - len(name), len(obj_name))
    return obj_name[:pfx] + name


def ours(path: Path) -> dict[str, Any]:
    obj = Object.from_file(path)
    programs = {p.name: {
        "section": p.section_name, "type": int(p.section.prog_type),
        "expected_attach_type": int(p.section.expected_attach_type or 0), "insn_cnt": p.insn_count,
    } for p in obj.programs.values()}
    maps = {}
    described = {d["name"]: d for d in describe(obj)["maps"]}
    for m in obj.maps.values():
        r = m.resolved(ncpus=0, page_size=4096)
        assert described[m.name]["libbpf_name"] == libbpf_map_name(path.name, m.name, m.origin)
        maps[libbpf_map_name(path.name, m.name, m.origin)] = {
            "type": int(m.map_type), "key_size": m.key_size, "value_size": m.value_size,
            "max_entries": r.max_entries, "map_flags": m.map_flags, "map_extra": m.map_extra,
            "numa_node": m.numa_node, "data": m.origin is MapOrigin.DATA,
        }
    return {"programs": programs, "maps": maps}


def compare(name: str, libbpf: dict[str, Any]) -> None:
    mine = ours(FIXTURES / name)
    if name not in NO_LIBBPF_PROGRAMS:
        assert sorted(mine["programs"]) == sorted(p["name"] for p in libbpf["programs"])
    for p in libbpf["programs"]:
        if name in NO_LIBBPF_PROGRAMS:
            break
        m = mine["programs"][p["name"]]
        assert m["section"] == p["section"]
        assert m["insn_cnt"] == p["insn_cnt"], p["name"]
        if p["type"]:  # 0: this libbpf does not know the section name
            assert (m["type"], m["expected_attach_type"]) == (p["type"], p["expected_attach_type"]), p["name"]
    assert sorted(mine["maps"]) == sorted(m["name"] for m in libbpf["maps"])
    for lm in libbpf["maps"]:
        m = dict(mine["maps"][lm["name"]])
        flags = lm["map_flags"]
        if m.pop("data"):
            flags &= ~MapFlags.BPF_F_MMAPABLE  # libbpf mmaps global data; Aya (and tinyaya) do not
        assert m == {k: (flags if k == "map_flags" else lm[k]) for k in m}, lm["name"]


@pytest.mark.parametrize("name", OBJECTS)
def test_matches_recorded_libbpf(name: str) -> None:
    rec = RECORDING["objects"][name]
    if "error" in rec:
        # libbpf 1.x rejects legacy "maps" sections (EOPNOTSUPP), static programs, big-endian objects on a
        # little-endian host (LIBBPF_ERRNO__ENDIAN) and unresolved extern functions; tinyaya parses them.
        Object.from_file(FIXTURES / name)
        return
    compare(name, rec)


@pytest.fixture(scope="module")
def libbpf():
    lib = load_libbpf()
    if lib is None:
        pytest.skip("libbpf.so.1 is not installed")
    return lib


@pytest.mark.parametrize("name", OBJECTS)
def test_matches_live_libbpf(libbpf, name: str) -> None:
    live = open_object(libbpf, FIXTURES / name)
    if "error" in live:
        Object.from_file(FIXTURES / name)
        return
    compare(name, live)


def test_section_names_match_recorded_libbpf() -> None:
    checked = 0
    for name, expected in RECORDING["section_names"].items():
        sec = parse_program_section(name)  # every name parses, including ones this libbpf predates
        if expected is None:
            continue
        assert (int(sec.prog_type), int(sec.expected_attach_type or 0)) == tuple(expected), name
        checked += 1
    assert checked > 60


def test_section_names_match_live_libbpf(libbpf) -> None:
    for name in RECORDING["section_names"]:
        expected = prog_type_by_name(libbpf, name)
        if expected is None:
            continue
        sec = parse_program_section(name)
        assert (int(sec.prog_type), int(sec.expected_attach_type or 0)) == expected, name
