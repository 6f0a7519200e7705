"""Faults, bpf-to-bpf calls, tail calls, callbacks and helpers."""
from __future__ import annotations

import pytest
from vmfakes import FakeArrayMap, kernel_fixture, prog  # noqa: F401 - the kernel fixture

from tinyaya.isa import Insn
from tinyaya.sim_kernel.vm import BpfFault


def test_out_of_bounds_load_is_a_fault(kernel) -> None:
    with pytest.raises(BpfFault) as ei:
        kernel.vm.run(prog("mov %r1, 16\nldxdw %r0, [%r1+0]\nexit", name="oob"), 0, 0)
    f = ei.value
    assert (f.prog_name, f.pc, f.addr) == ("oob", 1, 16)
    assert "unmapped" in f.message and f.insn_text


def test_stack_overflow_past_region(kernel) -> None:
    with pytest.raises(BpfFault):
        kernel.vm.run(prog("ldxdw %r0, [%r10+4000]\nexit"), 0, 0)  # past the 8 frames


def test_non_terminating_loop_is_stopped(kernel) -> None:
    kernel.vm.budget = 1000
    with pytest.raises(BpfFault, match="budget"):
        kernel.vm.run(prog("mov %r0, 0\nja -1\nexit"), 0, 0)


def test_local_call_preserves_callee_saved_registers(kernel) -> None:
    src = """
    mov %r6, 11
    mov %r1, 4
    call local sub
    add %r0, %r6
    exit
    sub:
    mov %r6, 100
    stdw [%r10-8], 7
    ldxdw %r0, [%r10-8]
    add %r0, %r1
    exit
    """
    assert kernel.vm.run(prog(src), 0, 0) == 4 + 7 + 11


def test_call_depth_limit(kernel) -> None:
    with pytest.raises(BpfFault, match="too deep"):
        kernel.vm.run(prog("call local self\nexit\nself:\ncall local self\nexit"), 0, 0)


def test_helpers_and_maps(kernel) -> None:
    m = FakeArrayMap(kernel, 8, 4)
    lo, hi = m.addr & 0xFFFF_FFFF, m.addr >> 32
    insns = [
        Insn(0x62, 10, 0, -4, 2),              # *(u32 *)(r10-4) = 2
        Insn(0x18, 1, 1, 0, lo), Insn(0, 0, 0, 0, hi),  # r1 = map
        Insn(0xBF, 2, 10), Insn(0x07, 2, 0, 0, -4),
        Insn(0x85, 0, 0, 0, 1),                 # map_lookup_elem
        Insn(0x15, 0, 0, 2, 0),                 # if r0 == 0 goto out
        Insn(0x7A, 0, 0, 0, 77),                # *(u64 *)(r0) = 77
        Insn(0x85, 0, 0, 0, 14),                # get_current_pid_tgid
        Insn(0x95),
    ]
    r0 = kernel.vm.run(prog(insns), 0, 1)
    assert r0 == (1200 << 32) | 1234
    assert bytes(m.values.buf[16:24]) == (77).to_bytes(8, "little")


def test_tail_call(kernel) -> None:
    m = FakeArrayMap(kernel, 4, 4)
    m.progs[1] = prog("mov %r0, 42\nexit", name="target")
    lo, hi = m.addr & 0xFFFF_FFFF, m.addr >> 32
    caller = prog([Insn(0x18, 2, 1, 0, lo), Insn(0, 0, 0, 0, hi), Insn(0xB7, 3, 0, 0, 1), Insn(0x85, 0, 0, 0, 12),
                   Insn(0xB7, 0, 0, 0, 1), Insn(0x95)])
    assert kernel.vm.run(caller, 0, 0) == 42
    missing = prog([Insn(0x18, 2, 1, 0, lo), Insn(0, 0, 0, 0, hi), Insn(0xB7, 3, 0, 0, 3), Insn(0x85, 0, 0, 0, 12),
                    Insn(0xB7, 0, 0, 0, 1), Insn(0x95)])
    assert kernel.vm.run(missing, 0, 0) == 1  # an empty slot falls through


def test_tail_call_limit(kernel) -> None:
    m = FakeArrayMap(kernel, 4, 1)
    lo, hi = m.addr & 0xFFFF_FFFF, m.addr >> 32
    # the program tail-calls itself, counting in a stack-free way through the map value
    selfp = prog([Insn(0x18, 2, 1, 0, lo), Insn(0, 0, 0, 0, hi), Insn(0xB7, 3, 0, 0, 0), Insn(0x85, 0, 0, 0, 12),
                  Insn(0xB7, 0, 0, 0, 7), Insn(0x95)])
    m.progs[0] = selfp
    assert kernel.vm.run(selfp, 0, 0) == 7  # after 33 tail calls the 34th falls through


def test_bpf_loop_callback(kernel) -> None:
    # r1 = 10, r2 = &cb, r3 = fp-8 (ctx), r4 = 0; cb adds the index to *ctx
    insns = [
        Insn(0x7A, 10, 0, -8, 0),
        Insn(0xB7, 1, 0, 0, 10), Insn(0x18, 2, 4, 0, 7), Insn(0), Insn(0xBF, 3, 10), Insn(0x07, 3, 0, 0, -8),
        Insn(0xB7, 4, 0, 0, 0), Insn(0x85, 0, 0, 0, 181),
        Insn(0x79, 0, 10, -8, 0), Insn(0x95),
        # cb(index r1, ctx r2)
        Insn(0x79, 3, 2, 0, 0), Insn(0x0F, 3, 1), Insn(0x7B, 2, 3, 0, 0), Insn(0xB7, 0, 0, 0, 0), Insn(0x95),
    ]
    assert kernel.vm.run(prog(insns), 0, 0) == sum(range(10))


def test_trace_printk_and_comm(kernel) -> None:
    fmt = b"pid %d %s!\0"
    kernel.task.comm = b"cat"
    from tinyaya.sim_kernel.memory import RegionKind

    buf = kernel.aspace.add(bytearray(64), RegionKind.KERNEL, "fmt")
    buf.buf[:len(fmt)] = fmt
    buf.buf[32:36] = b"abc\0"
    insns = [
        Insn(0x18, 1, 0, 0, buf.base & 0xFFFF_FFFF), Insn(0, 0, 0, 0, buf.base >> 32),
        Insn(0xB7, 2, 0, 0, len(fmt)), Insn(0xB7, 3, 0, 0, -5),
        Insn(0x18, 4, 0, 0, (buf.base + 32) & 0xFFFF_FFFF), Insn(0, 0, 0, 0, buf.base >> 32),
        Insn(0x85, 0, 0, 0, 6), Insn(0x95),
    ]
    assert kernel.vm.run(prog(insns), 0, 1) == len(b"pid -5 abc!")
    assert kernel.printed == [(1, b"pid -5 abc!")]


def test_probe_read_bad_pointer_returns_efault(kernel) -> None:
    src = """
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    mov %r3, 12345
    call 4
    exit
    """
    assert kernel.vm.run(prog(src), 0, 0) == (-14) & ((1 << 64) - 1)


def test_fault_names_the_instruction_in_llvm_syntax(kernel) -> None:
    with pytest.raises(BpfFault) as ei:
        kernel.vm.run(prog("mov %r1, 0\nstw [%r1+4], 9\nexit"), 0, 0)
    assert ei.value.insn_text == "*(u32 *)(r1 + 0x4) = 0x9"
    assert ei.value.pc == 1 and ei.value.addr == 4


def test_write_to_read_only_memory_faults(kernel) -> None:
    from tinyaya.sim_kernel.memory import RegionKind

    ro = kernel.aspace.add(bytearray(16), RegionKind.RODATA, ".rodata", writable=False)
    insns = [Insn(0x18, 1, 0, 0, ro.base & 0xFFFF_FFFF), Insn(0, 0, 0, 0, ro.base >> 32), Insn(0x62, 1, 0, 0, 1),
             Insn(0x95)]
    with pytest.raises(BpfFault, match="read-only"):
        kernel.vm.run(prog(insns), 0, 0)
    assert bytes(ro.buf) == bytes(16)


def test_plugin_accepts_unspaced_hex() -> None:
    import io

    from tinyaya.conformance_plugin import main

    out = io.StringIO()
    assert main([""], io.StringIO("b7000000010000009500000000000000\n"), out) == 0
    assert out.getvalue().strip() == "1"
