"""The fixture objects and the syscall_ebpf example give identical results under every engine.

* tests/fixtures/vm objects (FNV over a packet, __sk_buff fields, LD_ABS, bpf_loop and
  for_each_map_elem callbacks) through the loader and BPF_PROG_TEST_RUN: retval, data_out, ctx_out
  and every map;
* the syscall_ebpf example attached at sys_enter, driven by the built-in workload (the event
  path of ``tinyaya load``): every map's contents and the perf ring bytes afterwards.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from engine_harness import ENGINES, sim_kernel

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "vm"
SYSCALL_EBPF = ROOT / "examples" / "syscall_ebpf" / "syscall_ebpf-ebpf" / "syscall_ebpf.o"

PACKET = bytes.fromhex("ffffffffffff0011223344550800") + bytes((i * 37 + 5) & 0xFF for i in range(100))
IPV4 = bytes.fromhex("020000000001000000000002" "0800") + bytes.fromhex(
    "4500005400004000400100007f0000017f000001") + bytes(range(64))
SKB_CTX = bytearray(192)
SKB_CTX[8:12] = (77).to_bytes(4, "little")
SKB_CTX[48:52] = (5).to_bytes(4, "little")

CASES = [
    ("fnv_tc.o", "fnv1a", PACKET, None),
    ("fnv_tc.o", "fnv1a", IPV4 * 8, None),
    ("skb_fields.o", "skb_fields", PACKET, bytes(SKB_CTX)),
    ("skb_fields.o", "skb_fields", IPV4, None),
    ("skb_fields.o", "ld_abs", IPV4, None),
    ("skb_fields.o", "ld_abs", PACKET[:12] + b"\x00\x10" + PACKET[14:20], None),
    ("callbacks.o", "callbacks", PACKET, None),
    ("callbacks.o", "callbacks", IPV4[:30], None),
]


def _dump_maps(kernel: Any, ebpf: Any) -> dict[str, Any]:
    """Every map's contents through the kernel's syscall side (``sys_get_next_key``/``sys_lookup``)."""
    out: dict[str, Any] = {}
    for name, m in ebpf.maps():
        obj: Any = kernel.fds.get(int(m.fd))
        rows = []
        key = None
        for _ in range(100000):
            try:
                key = obj.sys_get_next_key(key)
            except OSError:
                break
            try:
                rows.append((bytes(key), bytes(obj.sys_lookup(key, 0))))
            except OSError as e:
                rows.append((bytes(key), e.errno))
        out[name] = sorted(rows, key=repr)
    return out


def _fixture(engine: str, obj: str, prog_name: str, data: bytes, ctx: bytes | None) -> dict[str, Any]:
    from tinyaya.programs.ebpf import Ebpf

    k = sim_kernel(engine)
    ebpf = Ebpf.load_file(FIXTURES / obj, kernel=k)
    prog = ebpf.program_mut(prog_name)
    try:
        prog.load()
    except OSError as e:  # the verifier is another part: a refusal is an outcome to compare too
        return {"load_error": e.errno}
    res = prog.test_run(data=data, ctx=ctx, data_size_out=len(data) + 256, ctx_size_out=len(ctx) if ctx else None)
    return {"retval": res.retval, "data_out": res.data_out, "ctx_out": res.ctx_out, "maps": _dump_maps(k, ebpf)}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_fixture_objects_agree(engine: str, case: tuple) -> None:
    if not (FIXTURES / case[0]).exists():
        pytest.skip(f"fixture {case[0]} not built")
    assert _fixture(engine, *case) == _fixture("interp", *case)


def syscall_ebpf_run(engine: str, steps: int) -> dict[str, Any]:
    """Load and attach the example as ``tinyaya load --kprobe sys_enter`` does; drive the built-in
    workload for ``steps`` syscalls; everything the program can have changed."""
    from tinyaya.programs.ebpf import Ebpf

    k = sim_kernel(engine)
    ebpf = Ebpf.load_file(str(SYSCALL_EBPF), kernel=k)
    prog = ebpf.program_mut("syscall_ebpf")
    prog.load()
    prog.attach("sys_enter", 0)
    counts: Counter[int] = Counter()
    k.machine.workload("default", seed=3).step(steps, counts)
    faults = dict(getattr(k.tracing, "fault_counts", {}))
    return {"maps": _dump_maps(k, ebpf), "counts": dict(counts), "faults": sorted(map(str, faults.values()))}


@pytest.mark.parametrize("engine", ENGINES)
def test_syscall_ebpf_event_path_agrees(engine: str) -> None:
    if not SYSCALL_EBPF.exists():
        pytest.skip("the syscall_ebpf example is not built")
    want = syscall_ebpf_run("interp", 3000)
    assert any(rows for rows in want["maps"].values())
    assert syscall_ebpf_run(engine, 3000) == want
