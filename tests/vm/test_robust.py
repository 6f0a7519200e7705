"""Arbitrary instruction bytes never escape the VM as anything but r0 or a BpfFault, and never hang."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vmfakes import FakeKernel, prog

from tinyaya.isa import Insn
from tinyaya.sim_kernel.memory import RegionKind
from tinyaya.sim_kernel.vm import BpfFault

EXAMPLES = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "40")) * 5

# opcodes weighted toward valid ones, so that programs get somewhere before they fault
VALID = [0x04, 0x07, 0x0C, 0x0F, 0x14, 0x17, 0x24, 0x27, 0x34, 0x37, 0x3C, 0x3F, 0x47, 0x57, 0x67, 0x77, 0x87,
         0x97, 0x9F, 0xA7, 0xAF, 0xB4, 0xB7, 0xBC, 0xBF, 0xC7, 0xD4, 0xD7, 0xDC, 0x05, 0x06, 0x15, 0x16, 0x1D,
         0x25, 0x2D, 0x35, 0x45, 0x55, 0x65, 0x75, 0xA5, 0xB5, 0xC5, 0xD5, 0xE5, 0x85, 0x8D, 0x95, 0x18, 0x61,
         0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62, 0x6A, 0x72, 0x7A, 0x63, 0x6B, 0x73, 0x7B, 0xC3, 0xDB, 0x20,
         0x28, 0x30, 0x40, 0x48, 0x50]

insn = st.builds(Insn, st.one_of(st.sampled_from(VALID), st.integers(0, 255)), st.integers(0, 15),
                 st.integers(0, 15), st.integers(-40, 40), st.one_of(st.integers(-64, 64),
                                                                     st.integers(-(1 << 31), (1 << 31) - 1)))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(insns=st.lists(insn, min_size=1, max_size=24), fuse=st.booleans(), prog_type=st.sampled_from([1, 2, 6, 31]))
def test_any_program_returns_or_faults(insns: list[Insn], fuse: bool, prog_type: int) -> None:
    k = FakeKernel()
    k.vm.budget = 2000
    k.vm.fuse = fuse
    mem = k.aspace.add(bytearray(64), RegionKind.CTX, "ctx")
    try:
        r0 = k.vm.run(prog(insns, prog_type=prog_type), mem.base, 0)
    except BpfFault as f:
        assert isinstance(f.pc, int) and f.message
    else:
        assert 0 <= r0 < 1 << 64


@settings(max_examples=EXAMPLES, deadline=None)
@given(raw=st.binary(min_size=1, max_size=200), mem=st.binary(max_size=32))
def test_plugin_never_raises(raw: bytes, mem: bytes) -> None:
    import io

    from tinyaya.conformance_plugin import main

    out = io.StringIO()
    rc = main([mem.hex(" ")] if mem else [], io.StringIO(raw.hex(" ") + "\n"), out)
    assert rc in (0, 1)
    if rc == 0 and len(raw) % 8 == 0:
        assert int(out.getvalue(), 16) >= 0
