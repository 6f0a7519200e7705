"""Object contents: program sections and attach targets, maps of every origin, globals, override_global, describe."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tinyaya.obj import (
    InvalidGlobalData,
    MapOrigin,
    Object,
    PinningType,
    SymbolNotFound,
    UnknownProgramSection,
    describe,
    link_program,
    parse_program_section,
)
from tinyaya.uapi.bpf import BpfAttachType, BpfMapType, BpfProgType, MapFlags

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "obj"


def load(name: str) -> Object:
    return Object.from_file(FIXTURES / name)


@pytest.mark.parametrize(("name", "kind", "prog_type", "target", "extra"), [
    ("kprobe/do_sys_openat2+16", "kprobe", BpfProgType.BPF_PROG_TYPE_KPROBE, "do_sys_openat2", {"offset": 16}),
    ("kprobe/vfs_read+0x10", "kprobe", BpfProgType.BPF_PROG_TYPE_KPROBE, "vfs_read", {"offset": 16}),
    ("kretprobe/do_sys_openat2", "kretprobe", BpfProgType.BPF_PROG_TYPE_KPROBE, "do_sys_openat2",
     {"is_retprobe": True}),
    ("kprobe", "kprobe", BpfProgType.BPF_PROG_TYPE_KPROBE, None, {}),
    ("uretprobe//usr/bin/bash:readline+8", "uretprobe", BpfProgType.BPF_PROG_TYPE_KPROBE, "readline",
     {"binary_path": "/usr/bin/bash", "offset": 8, "is_retprobe": True}),
    ("uprobe.s//lib/libc.so.6:malloc", "uprobe", BpfProgType.BPF_PROG_TYPE_KPROBE, "malloc", {"sleepable": True}),
    ("tracepoint/syscalls/sys_enter_openat", "tracepoint", BpfProgType.BPF_PROG_TYPE_TRACEPOINT,
     "syscalls/sys_enter_openat", {"tracepoint_category": "syscalls", "tracepoint_name": "sys_enter_openat"}),
    ("tp/sched/sched_process_exec", "tracepoint", BpfProgType.BPF_PROG_TYPE_TRACEPOINT, "sched/sched_process_exec",
     {}),
    ("raw_tp/sys_enter", "raw_tracepoint", BpfProgType.BPF_PROG_TYPE_RAW_TRACEPOINT, "sys_enter", {}),
    ("fentry/do_unlinkat", "fentry", BpfProgType.BPF_PROG_TYPE_TRACING, "do_unlinkat",
     {"expected_attach_type": BpfAttachType.BPF_TRACE_FENTRY}),
    ("lsm.s/bprm_check_security", "lsm", BpfProgType.BPF_PROG_TYPE_LSM, "bprm_check_security",
     {"sleepable": True, "expected_attach_type": BpfAttachType.BPF_LSM_MAC}),
    ("xdp.frags", "xdp", BpfProgType.BPF_PROG_TYPE_XDP, None, {"frags": True}),
    ("xdp/devmap", "xdp", BpfProgType.BPF_PROG_TYPE_XDP, None,
     {"expected_attach_type": BpfAttachType.BPF_XDP_DEVMAP}),
    ("cgroup/connect4", "cgroup/connect4", BpfProgType.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, None,
     {"expected_attach_type": BpfAttachType.BPF_CGROUP_INET4_CONNECT}),
    ("classifier/ingress_main", "classifier", BpfProgType.BPF_PROG_TYPE_SCHED_CLS, "ingress_main", {}),
    ("ksyscall/openat", "ksyscall", BpfProgType.BPF_PROG_TYPE_KPROBE, "openat", {}),
    ("extension", "freplace", BpfProgType.BPF_PROG_TYPE_EXT, None, {}),
    ("syscall", "syscall", BpfProgType.BPF_PROG_TYPE_SYSCALL, None, {"sleepable": True}),
])
def test_program_sections(name: str, kind: str, prog_type: BpfProgType, target: str | None,
                          extra: dict[str, object]) -> None:
    sec = parse_program_section(name)
    assert (sec.kind, sec.prog_type, sec.attach_target) == (kind, prog_type, target)
    for key, value in extra.items():
        assert getattr(sec, key) == value, key


def test_unknown_program_section_name() -> None:
    with pytest.raises(UnknownProgramSection) as e:
        parse_program_section("not_a_program/x")
    assert e.value.section == "not_a_program/x"


def test_sections_fixture_all_known() -> None:
    obj = load("sections.o")
    assert len(obj.programs) == 55 and all(p.section.known for p in obj.programs.values())
    assert obj.programs["p_kp_off"].section.offset == 16


def test_several_programs_per_section() -> None:
    obj = load("calls.o")
    xdp = [p for p in obj.programs.values() if p.section_name == "xdp"]
    assert [p.name for p in xdp] == ["xdp_first", "xdp_second"]
    assert xdp[1].address == xdp[0].size


def test_program_without_symbol_named_after_section() -> None:
    obj = load("nosym.o")
    (prog,) = obj.programs.values()
    assert prog.name == "socket/raw" and prog.section.kind == "socket" and prog.insn_count == 2


def test_btf_maps() -> None:
    obj = load("btf_maps.o")
    m = obj.maps
    ev = m["events_by_pid"]
    assert (ev.origin, ev.map_type, ev.key_size, ev.value_size, ev.max_entries) == (
        MapOrigin.BTF, BpfMapType.BPF_MAP_TYPE_HASH, 4, 40, 10240)
    assert ev.map_flags == MapFlags.BPF_F_NO_PREALLOC and ev.pinning is PinningType.BY_NAME
    assert obj.btf is not None and obj.btf.type_name(ev.btf_value_type_id) == "struct event"
    assert obj.btf.type_name(ev.btf_key_type_id) == "__u32"
    assert (m["sized"].key_size, m["sized"].value_size, m["sized"].btf_key_type_id) == (4, 8, 0)
    assert m["bloom"].map_extra == 3 and m["numa"].map_flags == MapFlags.BPF_F_NUMA_NODE
    outer = m["outer"]
    assert outer.values == ("inner_a", None, "inner_b") and outer.inner is not None
    assert (outer.inner.map_type, outer.inner.key_size, outer.inner.value_size) == (BpfMapType.BPF_MAP_TYPE_ARRAY, 4, 4)
    assert m["jump_table"].values == (None, "tail_a", "tail_b")


def test_resolved_perf_array_and_ringbuf() -> None:
    obj = load("btf_maps.o")
    assert obj.maps["perf_events"].max_entries == 0
    assert obj.maps["perf_events"].resolved(ncpus=6).max_entries == 6
    assert obj.maps["rb"].max_entries == 12388
    assert obj.maps["rb"].resolved(ncpus=6, page_size=4096).max_entries == 16384
    assert obj.maps["sized"].resolved(ncpus=6) == obj.maps["sized"]


def test_global_data_maps() -> None:
    obj = load("globals.o")
    names = {n for n, m in obj.maps.items() if m.origin is MapOrigin.DATA}
    assert names == {".data", ".rodata", ".bss", ".data.foo", ".rodata.str1.1", ".rodata.cst16"}
    for n in names:
        m = obj.maps[n]
        sec = obj.section_by_name(n)
        assert sec is not None and m.value_size == sec.size and m.max_entries == 1 and m.key_size == 4
        assert bool(m.map_flags & MapFlags.BPF_F_RDONLY_PROG) == n.startswith(".rodata")
        assert m.data is not None and len(m.data) == sec.size
    assert obj.maps[".bss"].data == bytes(40)
    assert obj.maps[".rodata.str1.1"].data == b"world\0"
    assert struct.unpack("<i", (obj.maps[".data"].data or b"")[:4]) == (5,)


def test_kernel_name_is_cut_to_15_bytes() -> None:
    obj = load("globals.o")
    from dataclasses import replace
    m = replace(obj.maps[".rodata.str1.1"], name=".rodata.str1.1.extra.long")
    assert m.kernel_name == ".rodata.str1.1." and len(m.kernel_name) == 15


def test_override_global() -> None:
    obj = load("globals.o")
    obj.override_global("target_pid", struct.pack("<I", 4242))
    assert (obj.maps[".rodata"].data or b"")[:4] == struct.pack("<I", 4242)
    obj.override_global("hits", struct.pack("<Q", 7))  # .bss too, as Aya allows
    assert (obj.maps[".bss"].data or b"")[:8] == struct.pack("<Q", 7)
    with pytest.raises(InvalidGlobalData) as e:
        obj.override_global("target_pid", b"\0" * 8)
    assert e.value.symbol == "target_pid" and "4 bytes" in str(e.value)
    with pytest.raises(SymbolNotFound):
        obj.override_global("no_such_global", b"\0")
    obj.override_global("no_such_global", b"\0", must_exist=False)
    # the linked program still points at the same map/offset
    lp = link_program(obj, "use_globals", map_fds={n: 3 for n in obj.maps})
    assert any(r.map_name == ".rodata" and r.value_offset == 0 for r in lp.map_refs)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.o")))
def test_describe_is_json(name: str) -> None:
    obj = load(name)
    d = json.loads(json.dumps(describe(obj)))
    assert [p["name"] for p in d["programs"]] == list(obj.programs)
    assert [m["name"] for m in d["maps"]] == list(obj.maps)
    for p in d["programs"]:
        assert p["insns"] == obj.programs[p["name"]].insn_count


def test_describe_content() -> None:
    d = describe(load("legacy_aya.o"))
    prog = d["programs"][0]
    assert (prog["name"], prog["section"], prog["type"], prog["insns"]) == ("syscall_ebpf", "kprobe", "kprobe", 38)
    m = {x["name"]: x for x in d["maps"]}["SYSCALL_LIST"]
    assert (m["origin"], m["type"], m["key_size"], m["value_size"], m["max_entries"]) == ("legacy", "hash", 4, 4, 1024)
    assert {r["target"] for r in d["relocations"]} == {"map SYSCALL_LIST", "map EVENTS", "map PINNED"}
    g = {x["name"]: x for x in describe(load("globals.o"))["globals"]}
    assert g["prefix"]["formatted"] == "tiny" and g["counter"]["formatted"] == 5
    assert g["misses"]["type"] == "__u64[4]"
    kp = {p["name"]: p for p in describe(load("sections.o"))["programs"]}["p_kp_off"]
    assert (kp["attach_target"], kp["attach_offset"]) == ("do_sys_openat2", 16)


def test_samples_style_object() -> None:
    """samples/bpf spellings (libbpf < 1.0 sloppy prefixes) and a Cilium-style '2/1' tail-call section."""
    obj = load("samples_style.o")
    kinds = {p.name: (p.section.kind, int(p.section.prog_type), p.section.known) for p in obj.programs.values()}
    assert kinds == {"bpf_prog1": ("socket", 1, True), "xdp_count": ("xdp", 6, True),
                     "bpf_prog2": ("kprobe", 2, True), "tail_handle_ipv4": ("unknown", 0, False)}
    assert obj.kernel_version == 0x050A00 and len(obj.warnings) == 1 and "2/1" in obj.warnings[0]
    assert {n: (m.key_size, m.value_size, m.max_entries) for n, m in obj.maps.items()} == {
        "my_map": (4, 8, 256), "rxcnt": (4, 8, 256)}
    d = describe(obj)
    assert d["warnings"] == obj.warnings
    assert {p["name"]: p["type"] for p in d["programs"]}["tail_handle_ipv4"] == "unspec"


def test_aya_shaped_btf_maps() -> None:
    """aya-ebpf wraps the definition (Array<..> -> UnsafeCell<ArrayDef<..>>); unknown members are ignored."""
    obj = load("aya_btf_maps.o")
    got = {n: (int(m.map_type), m.key_size, m.value_size, m.max_entries, m.map_flags) for n, m in obj.maps.items()}
    assert got == {"COUNTERS": (2, 4, 8, 4, MapFlags.BPF_F_MMAPABLE), "EXTRA": (1, 4, 4, 16, 0)}
    lp = link_program(obj, "aya_xdp", map_fds={"COUNTERS": 5, "EXTRA": 6})
    assert [r.map_name for r in lp.map_refs] == ["COUNTERS", "EXTRA"]


def test_struct_ops_map() -> None:
    obj = load("struct_ops.o")
    m = obj.maps["tiny_cc"]
    assert (m.map_type, m.key_size, m.value_size, m.max_entries) == (BpfMapType.BPF_MAP_TYPE_STRUCT_OPS, 4, 48, 1)
    assert m.values == ("tiny_init", "tiny_ssthresh", "tiny_cong_avoid")
    assert [int(obj.programs[n].section.expected_attach_type or 0) for n in m.values if n] == [0, 1, 2]
    assert m.data is not None and m.data[28:35] == b"tiny_cc"


def test_relocation_targets_follow_the_immediate() -> None:
    """Against the .text section symbol the target is in the instruction: sym.value/8 + imm + 1 for a
    call, sym.value + imm for a callback's ld_imm64."""
    d = describe(load("calls.o"))
    got = [(r["section"], r["offset"], r["symbol"], r["target"]) for r in d["relocations"]]
    assert got == [
        (".text", 24, "acc", "map acc"), (".text", 192, "total", "data .bss+0"),
        ("xdp", 8, "global_helper", "function global_helper"), ("xdp", 48, ".text", "function loop_cb"),
        ("xdp", 136, ".text", "function add_square"), ("kprobe/do_unlinkat", 8, ".text", "function square"),
        ("kprobe/do_unlinkat", 16, "total", "data .bss+0")]
    d = describe(load("struct_ops.o"))
    assert [r["target"] for r in d["relocations"]] == [
        "program tiny_init", "program tiny_ssthresh", "program tiny_cong_avoid"]
