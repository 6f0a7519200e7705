"""Bad input never escapes as a Python exception: random attrs for every command, with fields drawn from
the values that matter (small fds, sizes around the edges, valid and invalid pointers), must either
succeed or raise OSError. ``TINYAYA_FUZZ_EXAMPLES`` sets the example count."""
from __future__ import annotations

import ctypes
import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyaya.sim_kernel import SimKernel
from tinyaya.uapi.bpf import BpfCmd, MapCreateAttr, ProgLoadAttr

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40")) * 5
_BUF = ctypes.create_string_buffer(4096)  # a valid user buffer of zeros, shared by every example
_RET0 = ctypes.create_string_buffer(struct.pack("<BBhiBBhi", 0xB7, 0, 0, 0, 0x95, 0, 0, 0), 16)
_GPL = ctypes.create_string_buffer(b"GPL")


def _kernel() -> SimKernel:
    k = SimKernel()
    for t, ks, vs, me in ((2, 4, 8, 4), (1, 4, 8, 4), (22, 0, 4, 4), (6, 4, 4, 2), (27, 0, 0, 4096),
                          (3, 4, 4, 2), (30, 0, 4, 8)):
        k.bpf(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=t, key_size=ks, value_size=vs, max_entries=me))
    k.bpf(BpfCmd.BPF_PROG_LOAD, ProgLoadAttr(prog_type=1, insn_cnt=2, insns=ctypes.addressof(_RET0),
                                             license=ctypes.addressof(_GPL)))
    return k


u32 = st.one_of(st.integers(0, 12), st.sampled_from([0xFFFFFFFF, 0x7FFFFFFF, 64, 128, 4096, 1 << 20]),
                st.integers(0, 0xFFFFFFFF))
ptr = st.one_of(st.just(0), st.just(ctypes.addressof(_BUF)), st.just(ctypes.addressof(_BUF) + 4000),
                st.sampled_from([8, 0x1000, (1 << 47) - 8, (1 << 64) - 1]))
field = st.one_of(u32.map(lambda v: struct.pack("<I", v)), ptr.map(lambda v: struct.pack("<Q", v)))
attr = st.lists(field, max_size=24).map(lambda parts: b"".join(parts)[:200])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cmd=st.one_of(st.integers(0, 40), st.integers(-5, 1 << 31)), raw=attr)
def test_random_attrs_fail_only_with_oserror(cmd: int, raw: bytes) -> None:
    k = _kernel()
    ctypes.memset(_BUF, 0, 4096)
    try:
        k.bpf(cmd, bytearray(raw))
    except OSError:
        pass
    finally:
        k.shutdown()
