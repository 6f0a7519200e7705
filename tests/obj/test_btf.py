"""BTF parsing checked against bpftool's raw dump, the C printer, the value formatter and BTF.ext."""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tinyaya.obj import Object
from tinyaya.obj.btf import Btf, BtfError, BtfKind, dump_raw
from tinyaya.obj.btf.ext import format_core_relo
from tinyaya.obj.elf import Elf

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "obj"
WITH_BTF = sorted(p.name for p in FIXTURES.glob("*.o") if Object.from_file(p).btf is not None)
BPFTOOL = shutil.which("bpftool") or ""


@pytest.mark.skipif(not BPFTOOL, reason="bpftool is not installed")
@pytest.mark.parametrize("name", [n for n in WITH_BTF if "bpfeb" not in n])
def test_raw_dump_matches_bpftool(name: str) -> None:
    elf = Elf((FIXTURES / name).read_bytes())
    sec = elf.section_by_name(".BTF")
    assert sec is not None
    btf = Btf.parse(elf.section_data(sec))  # as compiled, before the DATASEC fixup
    theirs = subprocess.run([BPFTOOL, "btf", "dump", "file", str(FIXTURES / name)], check=True,
                            capture_output=True, text=True).stdout
    assert dump_raw(btf) == theirs


def test_big_endian_btf_equals_little_endian() -> None:
    le = Object.from_file(FIXTURES / "globals.o").btf
    be = Object.from_file(FIXTURES / "globals.bpfeb.o").btf
    assert le is not None and be is not None and be.big_endian
    assert dump_raw(le) == dump_raw(be)


def test_c_printer() -> None:
    btf = Object.from_file(FIXTURES / "btf_maps.o").btf
    assert btf is not None
    event = btf.find("event", BtfKind.STRUCT)
    assert event is not None
    assert btf.format_type(event.id) == (
        "struct event {\n\t__u32 pid;\n\t__u64 ts;\n\tchar comm[16];\n\tint kind: 4;\n"
        "\tunsigned int flag: 1;\n\tenum {\n\t\tEV_OPEN = 1,\n\t\tEV_CLOSE = 2,\n\t} type;\n};")
    u32 = btf.find("__u32")
    assert u32 is not None and btf.format_type(u32.id) == "typedef unsigned int __u32;"
    func = btf.find("entry", BtfKind.FUNC)
    assert func is not None and btf.format_type(func.id) == "int entry(void *ctx);"
    outer = btf.find("outer", BtfKind.VAR)
    assert outer is not None
    assert "struct inner_map *values[0];" in btf.format_type(outer.id).replace("\t", "")
    jt = btf.find("jump_table", BtfKind.VAR)
    assert jt is not None and "int (*values[0])(void *);" in btf.format_type(jt.id)


def test_value_formatter() -> None:
    btf = Object.from_file(FIXTURES / "btf_maps.o").btf
    assert btf is not None
    event = btf.find("event", BtfKind.STRUCT)
    assert event is not None
    raw = struct.pack("<IIQ16sII", 42, 0, 7, b"bash", (1 << 4) | 0xF, 2)
    assert btf.format_value(event.id, raw) == {
        "pid": 42, "ts": 7, "comm": "bash", "kind": "0xf", "flag": "0x1", "type": "EV_CLOSE"}
    with pytest.raises(BtfError):
        btf.format_value(event.id, raw[:10])


def test_datasec_value_big_endian() -> None:
    obj = Object.from_file(FIXTURES / "globals.bpfeb.o")
    assert obj.btf is not None
    foo = obj.maps[".data.foo"]
    assert obj.btf.format_value(foo.btf_value_type_id, foo.data or b"") == {
        ".data.foo": [{"foo_a": 42}, {"foo_b": 0x1122334455667788}]}


def test_btf_ext_func_and_line_info() -> None:
    obj = Object.from_file(FIXTURES / "calls.o")
    assert obj.btf is not None and obj.btf_ext is not None
    for fn in obj.functions.values():
        assert fn.func_info and fn.func_info[0].insn_off == 0
        assert obj.btf.type(fn.func_info[0].type_id).name == fn.name
        assert fn.line_info and fn.line_info[0].insn_off == 0
        assert fn.line_info[0].file_name.endswith("calls.c")
    prog = obj.programs["only_square"]
    assert any("square(ctx->rdi)" in li.line for li in prog.line_info)


def test_core_relocations_parsed_and_described() -> None:
    obj = Object.from_file(FIXTURES / "core.o")
    assert obj.btf is not None and obj.btf_ext is not None
    relos = obj.btf_ext.core_relos["fentry/wake_up_new_task"]
    prog = obj.programs["read_tgid"]
    assert prog.needs_core and len(prog.core_relos) == len(relos) == 9
    texts = {format_core_relo(obj.btf, r.type_id, r.access_str, int(r.kind)) for r in relos}
    assert texts == {
        "FIELD_BYTE_OFFSET struct task_struct.signal (0:2)",
        "FIELD_BYTE_OFFSET struct signal_struct.nr_threads (0:0)",
        "FIELD_EXISTS struct task_struct.comm (0:3)",
        "FIELD_BYTE_OFFSET struct task_struct.comm[1] (0:3:1)",
        "TYPE_EXISTS struct signal_struct (0)",
        "TYPE_SIZE struct task_struct (0)",
        "ENUMVAL_EXISTS enum pid_type::PIDTYPE_TGID (1)",
        "ENUMVAL_VALUE enum pid_type::PIDTYPE_TGID (1)",
        "FIELD_BYTE_OFFSET struct task_struct.tgid (0:1)",
    }
    # each record points at an instruction of the program
    for c in prog.core_relos:
        assert 0 <= c.insn_off < prog.insn_count
    assert format_core_relo(obj.btf, 99999, "0:1", 0).startswith("FIELD_BYTE_OFFSET [99999]")


def _hdr(type_len: int, str_len: int, **kw: int) -> bytes:
    f = {"magic": 0xEB9F, "version": 1, "flags": 0, "hdr_len": 24, "type_off": 0, "str_off": type_len}
    f.update(kw)
    return struct.pack("<HBBIIIII", f["magic"], f["version"], f["flags"], f["hdr_len"], f["type_off"],
                       type_len, f["str_off"], str_len)


@pytest.mark.parametrize(("blob", "reason"), [
    (b"\x9f\xeb", "hdr_len not found"),
    (_hdr(0, 1, hdr_len=200) + b"\0", "btf_header not found"),
    (_hdr(0, 1, magic=0x1234) + b"\0", "Invalid magic"),
    (_hdr(0, 1, version=2) + b"\0", "Unsupported version"),
    (_hdr(0, 1, flags=1) + b"\0", "Unsupported flags"),
    (_hdr(0, 9) + b"\0", "Total section length too long"),
    (_hdr(0, 1, str_off=9) + b"\0", "Invalid section offset"),
    (_hdr(0, 2) + b"a\0", "Invalid string section"),
    (_hdr(16, 4) + struct.pack("<III", 1, 1 << 24, 4) + struct.pack("<I", 32) + b"\0int", "Invalid string section"),
    (_hdr(16, 5) + struct.pack("<III", 9, 1 << 24, 4) + struct.pack("<I", 32) + b"\0int\0", "Invalid name_offset"),
    (_hdr(12, 1) + struct.pack("<III", 0, 2 << 24, 7) + b"\0", "Invalid type_id"),
    (_hdr(12, 1) + struct.pack("<III", 0, 25 << 24, 0) + b"\0", "Invalid kind"),
    (_hdr(12, 1) + struct.pack("<III", 0, 1 << 24, 4) + b"\0", "INT (anon) meta_left:0 meta_needed:4"),
    (_hdr(12, 1) + struct.pack("<III", 0, (2 << 24) | 1, 0) + b"\0", "vlen != 0"),
])
def test_invalid_btf_reasons(blob: bytes, reason: str) -> None:
    with pytest.raises(BtfError) as e:
        Btf.parse_for_kernel(blob)
    assert reason in str(e.value)


def test_loop_detected() -> None:
    # [1] TYPEDEF 'a' -> [2], [2] TYPEDEF 'a' -> [1]
    types = struct.pack("<III", 1, 8 << 24, 2) + struct.pack("<III", 1, 8 << 24, 1)
    btf = Btf.parse(_hdr(len(types), 3) + types + b"\0a\0")
    with pytest.raises(BtfError, match="Loop detected"):
        btf.size_of(1)
    with pytest.raises(BtfError):
        btf.format_value(1, b"\0" * 8)
    with pytest.raises(BtfError, match="Loop detected"):
        btf.check_for_kernel()


def test_object_btf_needs_fixup_for_kernel() -> None:
    elf = Elf((FIXTURES / "globals.o").read_bytes())
    sec = elf.section_by_name(".BTF")
    assert sec is not None
    btf = Btf.parse(elf.section_data(sec))
    with pytest.raises(BtfError, match="DATASEC .* size == 0"):
        btf.check_for_kernel()


@pytest.mark.parametrize("name", ["globals.o", "globals.bpfeb.o", "btf_maps.o"])
def test_datasec_fixup_from_elf(name: str) -> None:
    """Like libbpf's btf_fixup_datasec: sizes from the sections, offsets from the symbols."""
    obj = Object.from_file(FIXTURES / name)
    assert obj.btf is not None
    checked = 0
    for t in obj.btf.types:
        if t.kind != BtfKind.DATASEC or t.name == "license":
            continue
        sec = obj.section_by_name(t.name)
        assert sec is not None and t.size == sec.size
        for vs in t.secinfo:
            var = obj.btf.type(vs.type)
            sym = next(s for s in obj.symbols if s.name == var.name and s.section_index == sec.index)
            assert vs.offset == sym.value
            checked += 1
    assert checked >= 5
    obj.btf.check_for_kernel()  # DATASEC sizes are no longer 0


VMLINUX = Path("/sys/kernel/btf/vmlinux")


@pytest.mark.skipif(not BPFTOOL or not VMLINUX.exists(), reason="needs bpftool and /sys/kernel/btf/vmlinux")
def test_vmlinux_btf_matches_bpftool_and_passes_kernel_rules() -> None:
    """Every kind the running kernel uses (ENUM64, TYPE_TAG/DECL_TAG attributes, FLOAT...), line for line."""
    btf = Btf.parse(VMLINUX.read_bytes())
    theirs = subprocess.run([BPFTOOL, "btf", "dump", "file", str(VMLINUX)], check=True, capture_output=True,
                            text=True).stdout
    assert dump_raw(btf) == theirs
    btf.check_for_kernel()
    task = btf.find("task_struct", BtfKind.STRUCT)
    assert task is not None and btf.format_type(task.id).startswith("struct task_struct {")


@pytest.mark.skipif(not BPFTOOL or not VMLINUX.exists(), reason="needs bpftool and /sys/kernel/btf/vmlinux")
def test_c_printer_matches_bpftool_format_c_on_vmlinux() -> None:
    """Struct/union/enum definitions as ``bpftool btf dump format c`` writes them (padding, packed,
    anonymous members, function pointers). bpftool renames duplicate type names (``___2``); those differ."""
    import re

    btf = Btf.parse(VMLINUX.read_bytes())
    out = subprocess.run([BPFTOOL, "btf", "dump", "file", str(VMLINUX), "format", "c"], check=True,
                         capture_output=True, text=True).stdout
    theirs = {f"{m[1]} {m[2]}": m[0] for m in re.finditer(r"^(struct|union|enum) (\w+) \{\n.*?^\}[^;\n]*;", out,
                                                             re.M | re.S)}
    kw = {BtfKind.STRUCT: "struct", BtfKind.UNION: "union", BtfKind.ENUM: "enum", BtfKind.ENUM64: "enum"}
    same = total = 0
    for t in btf.types:
        if t.kind in kw and t.name and f"{kw[t.kind]} {t.name}" in theirs:
            total += 1
            same += btf.format_type(t.id) == theirs[f"{kw[t.kind]} {t.name}"]
    assert total > 5000 and same >= 0.99 * total, f"{same}/{total}"


def test_btf_ext_described_and_printed() -> None:
    from tinyaya.obj.btf import describe_btf_ext, format_btf_ext

    obj = Object.from_file(FIXTURES / "calls.o")
    assert obj.btf is not None and obj.btf_ext is not None
    d = describe_btf_ext(obj.btf_ext, obj.btf)
    assert [f["func"] for f in d[".text"]["func_info"]] == ["global_helper", "add_square", "loop_cb", "square"]
    assert len(d["xdp"]["line_info"]) == sum(len(p.line_info) for p in obj.programs.values()
                                              if p.section_name == "xdp")
    text = format_btf_ext(obj.btf_ext, obj.btf)
    assert "func_info  insn    16: [16] add_square" in text and "calls.c:" in text
