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
SOURCES = ["calls.o", "globals.o", "btf_maps.o", "kconfig.o", "isa.v4.o", "core.o"]


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
