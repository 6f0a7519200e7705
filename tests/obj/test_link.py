"""link_program: map and data relocations, bpf-to-bpf calls, callbacks, func/line info, typed errors."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tinyaya.isa import ld_imm64_value
from tinyaya.isa.opcodes import BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE
from tinyaya.obj import (
    CoreRelocationsUnsupported,
    LinkedProgram,
    MapNotFound,
    Object,
    RelocationError,
    UnknownProgram,
    UnknownProgramSection,
    UnknownSymbol,
    link_program,
)
from tinyaya.obj.model import R_BPF_64_64

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "obj"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples/syscall_ebpf/syscall_ebpf-ebpf/syscall_ebpf.o"
LINKABLE = ["btf_maps.o", "kconfig.o", "calls.o", "calls.bpfeb.o", "calls.v1.o", "calls.v4.o", "globals.o", "globals.bpfeb.o",
            "isa.v1.o", "isa.v2.o", "isa.v3.o", "isa.v4.o", "legacy_aya.o", "legacy_aya.bpfeb.o",
            "legacy_iproute2.o", "legacy_libbpf.o", "nosym.o", "samesec.o", "sections.o", "samples_style.o",
            "aya_btf_maps.o", "struct_ops.o"]


def fds(obj: Object) -> dict[str, int]:
    return {name: 1000 + i for i, name in enumerate(obj.maps)}


def check_linked(obj: Object, lp: LinkedProgram) -> None:
    """Structural invariants of a linked program."""
    starts = dict(lp.function_starts)
    start_set = set(starts.values())
    assert starts[lp.name if lp.name in starts else next(iter(starts))] == 0
    by_fd = {v: k for k, v in fds(obj).items()}
    i = 0
    while i < len(lp.insns):
        ins = lp.insns[i]
        if ins.is_ld_imm64:
            if ins.src == BPF_PSEUDO_FUNC:
                assert i + ins.imm + 1 in start_set
            elif ins.src == BPF_PSEUDO_MAP_FD:
                assert ins.imm in by_fd and not obj.maps[by_fd[ins.imm]].is_data
            elif ins.src == BPF_PSEUDO_MAP_VALUE:
                m = obj.maps[by_fd[ins.imm]]
                assert m.is_data and 0 <= lp.insns[i + 1].imm <= m.value_size
            i += 2
            continue
        if ins.code == 0x85 and ins.src == BPF_PSEUDO_CALL:
            assert i + ins.imm + 1 in start_set, f"call at {i} lands on no function start"
        i += 1
    # func_info: one per function, at its start, naming it
    if obj.btf is not None and lp.func_info:
        assert [f.insn_off for f in lp.func_info] == sorted(start_set)
        for f in lp.func_info:
            name = next(n for n, s in lp.function_starts if s == f.insn_off)
            assert obj.btf.type(f.type_id).name == name
        offs = [li.insn_off for li in lp.line_info]
        assert offs == sorted(offs) and offs[0] == 0 and offs[-1] < len(lp.insns)


@pytest.mark.parametrize("name", LINKABLE)
def test_every_program_links(name: str) -> None:
    obj = Object.from_file(FIXTURES / name)
    assert obj.programs
    for prog, p in obj.programs.items():
        if not p.section.known:
            with pytest.raises(UnknownProgramSection):
                link_program(obj, prog, map_fds=fds(obj))
            continue
        lp = link_program(obj, prog, map_fds=fds(obj))
        check_linked(obj, lp)


def test_example_object_links() -> None:
    if not EXAMPLE.exists():
        pytest.skip("the example object is not built")
    obj = Object.from_file(EXAMPLE)
    prog = obj.programs["syscall_ebpf"]
    assert prog.section.kind == "kprobe" and prog.section.attach_target is None
    m = obj.maps["SYSCALL_LIST"]
    assert (m.origin.value, int(m.map_type), m.key_size, m.value_size, m.max_entries) == ("legacy", 1, 4, 4, 1024)
    lp = link_program(obj, "syscall_ebpf", map_fds=fds(obj))
    check_linked(obj, lp)
    assert {r.map_name for r in lp.map_refs} >= {"SYSCALL_LIST", "AYA_LOGS", "AYA_LOG_BUF"}


def test_calls_through_text_section_symbol() -> None:
    obj = Object.from_file(FIXTURES / "calls.o")
    rels = obj.relocations[obj.programs["xdp_second"].section_index]
    assert any(r.symbol_name == ".text" and obj.symbols[r.symbol_index].is_section for r in rels)
    lp = link_program(obj, "xdp_second", map_fds=fds(obj))
    # loop_cb via ld_imm64 (BPF_PSEUDO_FUNC), add_square via the .text section symbol, square reached from it
    assert lp.subprograms == ["loop_cb", "add_square", "square"]
    starts = dict(lp.function_starts)
    funcs = [i for i, ins in enumerate(lp.insns) if ins.is_ld_imm64 and ins.src == BPF_PSEUDO_FUNC]
    assert len(funcs) == 1 and funcs[0] + lp.insns[funcs[0]].imm + 1 == starts["loop_cb"]
    # each appended function's code is the function's own, apart from relocated slots
    for name, start in lp.function_starts[1:]:
        fn = next(f for f in obj.functions.values() if f.name == name)
        for k, ins in enumerate(fn.insns):
            linked = lp.insns[start + k]
            if ins.code == 0x85 and ins.src == BPF_PSEUDO_CALL or ins.is_ld_imm64 or k and fn.insns[k - 1].is_ld_imm64:
                continue
            assert linked == ins


def test_each_subprogram_appended_once() -> None:
    obj = Object.from_file(FIXTURES / "calls.o")
    lp = link_program(obj, "xdp_first", map_fds=fds(obj))
    assert lp.subprograms == ["global_helper", "add_square", "square"]
    assert len(lp.insns) == sum(f.insn_count for f in obj.functions.values()
                                if f.name in ("xdp_first", "global_helper", "add_square", "square"))
    only = link_program(obj, "only_square", map_fds=fds(obj))
    assert only.subprograms == ["square"]


def test_pc_relative_call_in_program_section() -> None:
    obj = Object.from_file(FIXTURES / "samesec.o")
    assert not obj.relocations.get(obj.programs["tc_prog"].section_index)
    lp = link_program(obj, "tc_prog", map_fds={})
    assert lp.subprograms == ["bump"]


def test_data_relocations_carry_symbol_offsets() -> None:
    for name in ("globals.o", "globals.bpfeb.o"):
        obj = Object.from_file(FIXTURES / name)
        prog = obj.programs["use_globals"]
        lp = link_program(obj, "use_globals", map_fds=fds(obj))
        for r in obj.relocations[prog.section_index]:
            assert r.type == R_BPF_64_64
            sym = obj.symbols[r.symbol_index]
            if obj.sections[sym.section_index].name == ".maps":
                continue
            i = (r.offset - prog.address) // 8
            orig = prog.insns[i]
            ins = lp.insns[i]
            assert ins.src == BPF_PSEUDO_MAP_VALUE
            assert lp.insns[i + 1].imm == sym.value + orig.imm
            var = obj.variables.get(sym.name)
            if var is not None:
                assert lp.insns[i + 1].imm == var.offset
        assert {r.map_name for r in lp.map_refs} >= {".data", ".rodata", ".bss", ".data.foo", ".rodata.str1.1",
                                                     ".rodata.cst16"}


def test_map_fd_relocation() -> None:
    obj = Object.from_file(FIXTURES / "legacy_aya.o")
    lp = link_program(obj, "syscall_ebpf", map_fds={"SYSCALL_LIST": 7, "EVENTS": 9, "PINNED": 8})
    lds = [(ins.src, ins.imm) for ins in lp.insns if ins.is_ld_imm64 and ins.src]
    assert lds == [(BPF_PSEUDO_MAP_FD, 7), (BPF_PSEUDO_MAP_FD, 7), (BPF_PSEUDO_MAP_FD, 9)]
    assert all(ld_imm64_value(lp.insns[r.insn_index], lp.insns[r.insn_index + 1]) >> 32 == 0 for r in lp.map_refs)


def test_big_endian_links_like_little_endian() -> None:
    for base in ("calls", "globals", "legacy_aya"):
        le = Object.from_file(FIXTURES / f"{base}.o")
        be = Object.from_file(FIXTURES / f"{base}.bpfeb.o")
        assert be.big_endian and not le.big_endian
        for prog in le.programs:
            a = link_program(le, prog, map_fds=fds(le))
            b = link_program(be, prog, map_fds=fds(be))
            assert a.insns == b.insns and a.subprograms == b.subprograms
            assert b.insn_bytes() != a.insn_bytes()


def test_undefined_call_names_symbol_and_site() -> None:
    obj = Object.from_file(FIXTURES / "memset.o")
    with pytest.raises(UnknownSymbol) as e:
        link_program(obj, "calls_memset", map_fds={})
    assert e.value.symbol == "memset" and e.value.section == "kprobe/vfs_read"
    assert "memset.o" in str(e.value) and "calls_memset+0x30" in str(e.value)
    assert isinstance(e.value, RelocationError)


def test_missing_map_fd() -> None:
    obj = Object.from_file(FIXTURES / "legacy_aya.o")
    with pytest.raises(MapNotFound, match="EVENTS"):
        link_program(obj, "syscall_ebpf", map_fds={"SYSCALL_LIST": 3})


def test_unknown_program() -> None:
    obj = Object.from_file(FIXTURES / "calls.o")
    with pytest.raises(UnknownProgram):
        link_program(obj, "nope", map_fds={})


def test_core_relocations_are_a_clear_error() -> None:
    obj = Object.from_file(FIXTURES / "core.o")
    with pytest.raises(CoreRelocationsUnsupported, match="CO-RE"):
        link_program(obj, "read_tgid", map_fds={})
    assert link_program(obj, "read_tgid", map_fds={}, allow_core=True).insns


# --- the real kernel's verifier as the judge of the linked code --------------------------------------


@pytest.fixture(scope="module")
def kernel_bpf():
    from .bpf_syscall import bpf_available

    ok, why = bpf_available()
    if not ok:
        pytest.skip(why)
    from . import bpf_syscall

    return bpf_syscall


@pytest.mark.linux
@pytest.mark.parametrize(("name", "prog", "with_btf"), [
    ("calls.o", "xdp_first", True), ("calls.o", "xdp_second", True), ("calls.o", "only_square", True),
    ("calls.v1.o", "xdp_second", True), ("calls.v1.o", "xdp_first", False), ("calls.v4.o", "xdp_second", True),
    ("globals.o", "use_globals", True), ("globals.o", "use_globals", False), ("legacy_aya.o", "syscall_ebpf", False),
    ("legacy_libbpf.o", "sock", False), ("isa.v4.o", "isa_mix", True), ("isa.v1.o", "isa_mix", False),
    ("btf_maps.o", "tail_a", True), ("btf_maps.o", "entry", True), ("samesec.o", "tc_prog", True),
    ("kconfig.o", "read_kconfig", True), ("legacy_iproute2.o", "cls_main", False),
    ("samples_style.o", "bpf_prog1", True), ("samples_style.o", "xdp_count", True), ("aya_btf_maps.o", "aya_xdp", True),
])
def test_real_kernel_accepts_linked_program(kernel_bpf, name: str, prog: str, with_btf: bool) -> None:
    obj = Object.from_file(FIXTURES / name)
    p = obj.programs[prog]
    opened: list[int] = []
    try:
        map_fds = {}
        for m in obj.maps.values():
            r = m.resolved(ncpus=os.cpu_count() or 1)
            inner_fd = 0
            if r.inner is not None:  # map-in-map: the kernel takes a template inner map
                i = r.inner
                inner_fd = kernel_bpf.map_create(int(i.map_type), i.key_size, i.value_size, i.max_entries,
                                                 i.map_flags)
                opened.append(inner_fd)
            map_fds[m.name] = kernel_bpf.map_create(int(r.map_type), r.key_size, r.value_size, r.max_entries,
                                                    r.map_flags, inner_map_fd=inner_fd, map_extra=r.map_extra)
            opened.append(map_fds[m.name])
        lp = link_program(obj, prog, map_fds=map_fds)
        btf_fd = 0
        if with_btf and obj.btf is not None:
            btf_fd = kernel_bpf.btf_load(obj.btf.raw)
            opened.append(btf_fd)
        fd = kernel_bpf.prog_load(
            int(p.section.prog_type), lp.insn_bytes(), p.license, int(p.section.expected_attach_type or 0),
            btf_fd, lp.func_info_bytes() if btf_fd else b"", lp.line_info_bytes() if btf_fd else b"")
        opened.append(fd)
    finally:
        for fd in opened:
            os.close(fd)


def test_lenient_link_for_inspection() -> None:
    """inspect --disasm wants to show code that cannot be loaded: memset calls, CO-RE, unknown sections."""
    obj = Object.from_file(FIXTURES / "memset.o")
    lp = link_program(obj, "calls_memset", map_fds={}, lenient=True)
    assert len(lp.insns) == obj.programs["calls_memset"].insn_count
    assert lp.problems and "memset" in lp.problems[0]
    core = Object.from_file(FIXTURES / "core.o")
    assert "CO-RE" in link_program(core, "read_tgid", map_fds={}, lenient=True).problems[0]
    legacy = Object.from_file(FIXTURES / "legacy_aya.o")
    lp = link_program(legacy, "syscall_ebpf", map_fds={}, lenient=True)
    assert sum("no fd for map" in p for p in lp.problems) == 3
    samples = Object.from_file(FIXTURES / "samples_style.o")
    assert link_program(samples, "tail_handle_ipv4", map_fds={}, lenient=True).insns


def test_ksym_externs_need_a_resolver() -> None:
    obj = Object.from_file(FIXTURES / "kfunc.o")
    assert set(obj.ksyms) == {"bpf_task_from_pid", "bpf_task_release"}
    with pytest.raises(UnknownSymbol, match="kfunc 'bpf_task_from_pid' needs the kernel's BTF"):
        link_program(obj, "use_kfunc", map_fds={})

    def missing(name: str, is_func: bool) -> tuple[int, int]:
        raise LookupError(name)

    with pytest.raises(UnknownSymbol, match="not in the kernel's BTF"):
        link_program(obj, "use_kfunc", map_fds={}, resolve_ksym=missing)
    lp = link_program(obj, "use_kfunc", map_fds={}, resolve_ksym=lambda n, f: (7 if n.endswith("pid") else 9, 0))
    calls = [(i.src, i.imm) for i in lp.insns if i.code == 0x85]
    assert calls == [(2, 7), (2, 9)]  # BPF_PSEUDO_KFUNC_CALL with the kernel BTF ids


@pytest.mark.linux
def test_real_kernel_accepts_kfunc_calls(kernel_bpf) -> None:
    vmlinux = Path("/sys/kernel/btf/vmlinux")
    if not vmlinux.exists():
        pytest.skip("no /sys/kernel/btf/vmlinux")
    from tinyaya.obj.btf import Btf, BtfKind

    kbtf = Btf.parse(vmlinux.read_bytes())

    def resolve(name: str, is_func: bool) -> tuple[int, int]:
        t = kbtf.find(name, BtfKind.FUNC if is_func else BtfKind.VAR)
        if t is None:
            raise LookupError(name)
        return t.id, 0

    obj = Object.from_file(FIXTURES / "kfunc.o")
    p = obj.programs["use_kfunc"]
    lp = link_program(obj, "use_kfunc", map_fds={}, resolve_ksym=resolve)
    assert obj.btf is not None
    btf_fd = kernel_bpf.btf_load(obj.btf.raw)  # .ksyms sanitized as libbpf does
    try:
        fd = kernel_bpf.prog_load(int(p.section.prog_type), lp.insn_bytes(), p.license, btf_fd=btf_fd,
                                  func_info=lp.func_info_bytes(), line_info=lp.line_info_bytes(),
                                  prog_flags=1 << 4)  # BPF_F_SLEEPABLE, as libbpf sets for SEC("syscall")
        os.close(fd)
    finally:
        os.close(btf_fd)
