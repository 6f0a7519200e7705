"""Differential fuzzing of the verifier: random programs (the soundness test's snippets) loaded into Linux and
into SimKernel must get the same verdict and errno. Runs where bpf() is permitted."""
from __future__ import annotations

import ctypes
import errno
import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tinyaya.isa import Insn, encode
from tinyaya.isa import opcodes as op
from tinyaya.uapi.bpf import BpfCmd, MapCreateAttr, ProgLoadAttr

from .corpus import key_message
from .fuzz_gen import (
    RINGBUF_FD,
    XDP,
    bounded_loop_snippet,
    build,
    build_with_subprog,
    build_xdp,
    callee_snippet,
    extra_snippet,
    snippet,
    xdp_snippet,
)
from .linux_oracle import bpf_available

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "100"))
pytestmark = pytest.mark.linux


def _verdict(kernel, insns: list[Insn], prog_type: int = 2) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    def call(cmd: int, attr: ctypes.Structure) -> int:
        buf = bytearray(144)
        buf[:ctypes.sizeof(attr)] = bytes(attr)
        return int(kernel.bpf(cmd, buf))

    map_fd = call(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=2, key_size=4, value_size=48, max_entries=1))
    rb_fd = call(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=27, key_size=0, value_size=0, max_entries=4096))
    try:
        insns = [i.replace(imm=rb_fd if i.imm == RINGBUF_FD else map_fd)
                 if i.code == op.LD_IMM64 and i.src == op.BPF_PSEUDO_MAP_FD else i for i in insns]
        code = ctypes.create_string_buffer(encode(insns))
        lic = ctypes.create_string_buffer(b"GPL")
        log = ctypes.create_string_buffer(1 << 20)
        attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(insns), insns=ctypes.addressof(code),
                            license=ctypes.addressof(lic), log_level=1, log_size=1 << 20,
                            log_buf=ctypes.addressof(log))
        try:
            kernel.close(call(BpfCmd.BPF_PROG_LOAD, attr))
            return ("accept", "", "")
        except OSError as e:
            return ("reject", errno.errorcode.get(e.errno or 0, str(e.errno)),
                    key_message(log.value.decode(errors="replace")))
    finally:
        kernel.close(map_fd)
        kernel.close(rb_fd)


@pytest.fixture(scope="module")
def kernels():  # type: ignore[no-untyped-def]
    why = bpf_available()
    if why:
        pytest.skip(why)
    sk = pytest.importorskip("tinyaya.sim_kernel.kernel", reason="SimKernel not available")
    from tinyaya.kernel import LinuxKernel
    return LinuxKernel(), sk.SimKernel()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.generate, Phase.shrink])
@given(st.lists(extra_snippet, min_size=1, max_size=12))
def test_same_verdict_as_linux(kernels, snippets: list[list[Insn]]) -> None:  # type: ignore[no-untyped-def]
    linux, sim = kernels
    insns = build(snippets)
    want = _verdict(linux, insns)
    got = _verdict(sim, insns)
    assert got[:2] == want[:2], f"linux {want} tinyaya {got}"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.generate, Phase.shrink])
@given(st.lists(xdp_snippet, min_size=1, max_size=10))
def test_same_verdict_as_linux_xdp(kernels, snippets: list[list[Insn]]) -> None:  # type: ignore[no-untyped-def]
    linux, sim = kernels
    insns = build_xdp(snippets)
    want = _verdict(linux, insns, XDP)
    got = _verdict(sim, insns, XDP)
    assert got[:2] == want[:2], f"linux {want} tinyaya {got}"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.generate, Phase.shrink])
@given(st.lists(snippet, min_size=0, max_size=6), st.lists(callee_snippet, min_size=0, max_size=6), st.integers(0, 2))
def test_same_verdict_as_linux_with_calls(kernels, snippets, callee, kind) -> None:  # type: ignore[no-untyped-def]
    linux, sim = kernels
    insns = build_with_subprog(snippets, callee, kind)
    want = _verdict(linux, insns)
    got = _verdict(sim, insns)
    assert got[:2] == want[:2], f"linux {want} tinyaya {got}"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.generate, Phase.shrink])
@given(st.lists(bounded_loop_snippet, min_size=1, max_size=6))
def test_same_verdict_as_linux_with_loops(kernels, snippets: list[list[Insn]]) -> None:  # type: ignore[no-untyped-def]
    linux, sim = kernels
    insns = build(snippets)
    want = _verdict(linux, insns)
    got = _verdict(sim, insns)
    assert got[:2] == want[:2], f"linux {want} tinyaya {got}"
