"""The BTF checks the simulated kernel's BPF_BTF_LOAD uses, judged by the real kernel on mutated blobs."""
from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

from tinyaya.obj import Object
from tinyaya.obj.btf import Btf, BtfError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "obj"
EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "200")) * 3
SOURCES = ["calls.o", "globals.o", "btf_maps.o", "kconfig.o", "isa.v4.o", "core.o", "kfunc.o", "struct_ops.o"]


@pytest.fixture(scope="module")
def kernel_bpf():
    from .bpf_syscall import bpf_available

    ok, why = bpf_available()
    if not ok:
        pytest.skip(why)
    from . import bpf_syscall

    return bpf_syscall


def _mutate(rng: random.Random, blob: bytes) -> bytes:
    b = bytearray(blob)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(b))
        if rng.random() < 0.5:
            b[pos] = rng.randrange(256)
        else:
            pos -= pos % 4
            if pos + 4 <= len(b):
                b[pos:pos + 4] = struct.pack("<I", rng.choice(
                    [0, 1, 2, 3, 0xFFFFFFFF, 0x80000000, rng.randrange(1 << 32), rng.randrange(64)]))
    return bytes(b)


def _same_reason(ours: BtfError, theirs: str) -> bool:
    """Does the kernel's last log line end with our reason?"""
    reason = str(getattr(ours, "reason", ours))
    return theirs.strip().endswith(reason) or reason in theirs


@pytest.mark.linux
def test_fixture_btf_loads_after_fixup(kernel_bpf) -> None:
    for name in SOURCES:
        obj = Object.from_file(FIXTURES / name)
        assert obj.btf is not None
        Btf.parse_for_kernel(obj.btf.raw)
        os.close(kernel_bpf.btf_load(obj.btf.raw))


@pytest.mark.linux
def test_mutated_btf_verdicts_match_the_kernel(kernel_bpf) -> None:
    rng = random.Random(1234)
    blobs = [Object.from_file(FIXTURES / n).btf.raw for n in SOURCES]  # type: ignore[union-attr]
    false_reject, false_accept, same_reason, both_reject = [], [], 0, 0
    for _ in range(EXAMPLES):
        blob = _mutate(rng, rng.choice(blobs))
        ours: BtfError | None = None
        try:
            Btf.parse_for_kernel(blob)
        except BtfError as e:
            ours = e
        try:
            os.close(kernel_bpf.btf_load(blob))
            theirs = None
        except OSError as e:
            theirs = str(e).splitlines()[-1]
        if ours is not None and theirs is None:
            false_reject.append(str(ours))
        elif ours is None and theirs is not None:
            false_accept.append(theirs)
        elif ours is not None and theirs is not None:
            both_reject += 1
            same_reason += _same_reason(ours, theirs)
    assert not false_reject, f"BTF the kernel accepts but tinyaya rejects: {false_reject[:5]}"
    assert len(false_accept) <= EXAMPLES // 100, f"BTF tinyaya accepts but the kernel rejects: {false_accept[:5]}"
    assert same_reason >= 0.8 * both_reject, f"only {same_reason}/{both_reject} rejections give the kernel's reason"


def _bpftool_dump(map_id: int) -> list[dict]:
    import json
    import shutil
    import subprocess

    bpftool = shutil.which("bpftool")
    if bpftool is None:
        pytest.skip("bpftool is not installed")
    out = subprocess.run([bpftool, "-j", "map", "dump", "id", str(map_id)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


@pytest.mark.linux
@pytest.mark.parametrize(("name", "map_name"), [
    ("btf_maps.o", "events_by_pid"), ("globals.o", ".data"), ("globals.o", ".rodata"), ("globals.o", ".bss"),
    ("globals.o", ".data.foo"), ("kconfig.o", ".kconfig"), ("calls.o", "acc"),
])
def test_format_value_matches_bpftool_map_dump(kernel_bpf, name: str, map_name: str) -> None:
    """``formatted`` values as ``bpftool -j map dump`` prints them for the same bytes in a real map."""
    obj = Object.from_file(FIXTURES / name)
    assert obj.btf is not None
    m = obj.maps[map_name]
    rng = random.Random(name + map_name)
    fds: list[int] = []
    try:
        btf_fd = kernel_bpf.btf_load(obj.btf.raw)
        fds.append(btf_fd)
        fd = kernel_bpf.map_create(int(m.map_type), m.key_size, m.value_size, min(m.max_entries, 8), m.map_flags,
                                   btf_fd=btf_fd, btf_key_type_id=m.btf_key_type_id,
                                   btf_value_type_id=m.btf_value_type_id, name=b"tinyaya_fmt")
        fds.append(fd)
        values: dict[bytes, bytes] = {}
        for i in range(min(m.max_entries, 3)):
            key = i.to_bytes(m.key_size, "little")
            if m.data is not None and i == 0:
                value = m.data
            else:
                value = bytes(rng.choice([0, 1, 0x41, 0x7F, 0xFF, rng.randrange(256)]) for _ in range(m.value_size))
                if i == 1 and m.value_size >= 24:  # a printable string with junk after its NUL
                    value = value[:16] + b"bash\0\x01\x02\x03" + value[24:]
            kernel_bpf.map_update(fd, key, value)
            values[key] = value
        dumped = _bpftool_dump(kernel_bpf.map_id(fd))
    finally:
        for f in fds:
            os.close(f)
    assert len(dumped) == len(values)
    for entry in dumped:
        key = bytes(int(b, 16) for b in entry["key"])
        assert obj.btf.format_value(m.btf_value_type_id, values[key]) == entry["formatted"]["value"]
        if m.btf_key_type_id:
            assert obj.btf.format_value(m.btf_key_type_id, key) == entry["formatted"]["key"]
