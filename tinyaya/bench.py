"""Benchmarks of the execution engines: ``python -m tinyaya.bench --output bench-results.json``.

Programs: a 1M-iteration register loop, FNV-1a over 1 KiB of packet data, ~100 straight-line stack and ALU
instructions, an empty program, and the syscall_ebpf example on a ``pt_regs`` context.
Each runs on every requested engine; where bpf() is permitted the same programs also run on
the real kernel (BPF_PROG_TEST_RUN with ``repeat``, JIT on) and the ratio is printed.

Instructions per call are counted by one instrumented interpreter run of the same program,
so every engine's ns/insn divides by the same count. Simulated engines are timed in process CPU
time, best of five rounds (the machine may be busy with other work); the kernel's figure is
PROG_TEST_RUN's own duration. Engines are pluggable: ``ENGINES`` maps
a name to a runner factory, so the compiled and native tiers (issue 9) add themselves there.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .isa import Insn, assemble

XDP = 6
KPROBE = 2
ROOT = Path(__file__).resolve().parents[1]
SYSCALL_EBPF = ROOT / "examples" / "syscall_ebpf" / "syscall_ebpf-ebpf" / "syscall_ebpf.o"


@dataclass
class Bench:
    name: str
    insns: list[Insn]
    prog_type: int
    data: bytes = b""
    ctx: bytes | None = None
    calls: int = 1000
    kernel_ok: bool = True
    note: str = ""
    #: PROG_TEST_RUN repeat count on the real kernel
    kernel_repeat: int = 1000
    #: instructions the kernel executed, from its retval, when that differs from ours (may_goto loops)
    kernel_insns: Callable[[int], int] | None = None


def _loop_program(n: int) -> list[Insn]:
    return assemble(f"""
mov %r0, 0
mov %r1, 0
add %r1, 1
add %r0, %r1
jlt %r1, {n}, -3
exit
""")


def _may_goto_loop_program() -> list[Insn]:
    """r0 = the iterations done while may_goto lasts, r1 = 1 + 2 + ...: a register loop the kernel's
    verifier accepts (the counter hides the bound), so the JIT can be measured on it. tinyaya's
    may_goto allows BPF_MAX_LOOPS (8M) iterations; x86-64 Linux 6.18 stops on time instead
    (timed may_goto), so the kernel's instruction count is 4 * r0 + 4, from its retval."""
    return [Insn(0xB7, 0, 0, 0, 0), Insn(0xB7, 1, 0, 0, 0), Insn(0xE5, 0, 0, 3, 0), Insn(0x07, 0, 0, 0, 1),
            Insn(0x0F, 1, 0, 0, 0), Insn(0x05, 0, 0, -4, 0), Insn(0x95)]


def _fnv_program() -> list[Insn]:
    return assemble("""
ldxw %r2, [%r1+4]
ldxw %r1, [%r1+0]
lddw %r0, 0xcbf29ce484222325
lddw %r5, 0x100000001b3
mov %r4, 0
loop:
mov %r3, %r1
add %r3, 1
jgt %r3, %r2, done
ldxb %r3, [%r1+0]
xor %r0, %r3
mul %r0, %r5
add %r1, 1
add %r4, 1
jlt %r4, 1024, loop
done:
and %r0, 0x7fffffff
exit
""")


def _straight_program() -> list[Insn]:
    lines = ["mov %r0, 1", "mov %r2, 7"]
    for i in range(24):
        slot = 8 * (i % 8 + 1)
        lines += [f"stxdw [%r10-{slot}], %r0", f"ldxdw %r1, [%r10-{slot}]",
                  ["add %r0, %r1", "xor %r0, %r2", "mul %r0, 3", "add %r2, %r1"][i % 4], "lsh %r1, 1"]
    lines += ["and %r0, 0x7fffffff", "exit"]
    return assemble("\n".join(lines))


def programs() -> list[Bench]:
    return [
        Bench("loop_1m", _loop_program(1_000_000), XDP, bytes(64), calls=1, kernel_ok=False,
              note="the kernel's verifier refuses a 1M-iteration open loop (too many states); no JIT figure"),
        Bench("loop_may_goto_8m", _may_goto_loop_program(), XDP, bytes(64), calls=1, kernel_repeat=3,
              kernel_insns=lambda retval: 4 * retval + 4),
        Bench("fnv1a_1k", _fnv_program(), XDP, bytes(i * 7 & 0xFF for i in range(1024)), calls=100),
        Bench("straight_100", _straight_program(), XDP, bytes(64), calls=5000),
        Bench("empty", assemble("mov %r0, 0\nexit"), XDP, bytes(64), calls=20000),
    ]


# -- engines ------------------------------------------------------------------------------------------
Runner = Callable[[Bench, int], float]  # (bench, calls) -> mean ns per call
KernelRunner = Callable[[Bench], tuple[float, int]]  # bench -> (mean ns per call, retval)


def _sim_prog(b: Bench) -> Any:
    return SimpleNamespace(name=b.name, insns=b.insns, prog_type=b.prog_type, compiled=None)


def _sim_kernel() -> Any:
    try:
        from .sim_kernel.kernel import SimKernel
        from .sim_kernel.vm.compiled import install

        k: Any = SimKernel()
        install(k.vm, "interp")  # the interpreter alone: the kernel's default engine is the compiled tier
        return k
    except Exception:  # noqa: BLE001 - fall back to the bare pieces the VM needs
        from .sim_kernel.clock import Clock
        from .sim_kernel.memory import AddressSpace
        from .sim_kernel.vm import Vm

        k = SimpleNamespace(aspace=AddressSpace(), clock=Clock(), ncpus=1, seed=0)
        k.vm = Vm(k)
        return k


ROUNDS = 5


def _best_of(fn: Callable[[], None], calls: int) -> float:
    """Mean ns per call of the best of ROUNDS rounds, in this process's CPU time (``process_time_ns``),
    so that other processes competing for the CPU do not inflate the figure."""
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.process_time_ns()
        fn()
        best = min(best, (time.process_time_ns() - t0) / calls)
    return best


def time_on(vm: Any, prog: Any, b: Bench, calls: int) -> float:
    """Mean ns per call of ``prog`` on ``vm``: ``run_with_ctx`` on the bench's context, or PROG_TEST_RUN
    with ``repeat`` on its data; one warm-up run first (decoding, translation, native code)."""
    if b.ctx is not None:
        ctx = b.ctx
        vm.run_with_ctx(prog, ctx, 0)

        def many() -> None:
            for _ in range(calls):
                vm.run_with_ctx(prog, ctx, 0)
        return _best_of(many, calls)
    vm.test_run(prog, b.data, None, 1, 0, 0, 0, 0)
    return _best_of(lambda: vm.test_run(prog, b.data, None, calls, 0, 0, 0, 0), calls)


def interp_runner() -> Runner:
    kernel = _sim_kernel()

    def run(b: Bench, calls: int) -> float:
        return time_on(kernel.vm, getattr(b, "sim_prog", None) or _sim_prog(b), b, calls)

    return run


#: engine name -> factory of a runner (issue 9 adds "compiled" and "native")
ENGINES: dict[str, Callable[[], Runner]] = {"interp": interp_runner}


def counting_ops(code: list[Callable[[list[Any]], int]]) -> tuple[list[Callable[[list[Any]], int]], list[int]]:
    """The interpreter's per-slot closures, each counting its runs into ``counter[0]``."""
    counter = [0]

    def wrap(op: Callable[[list[Any]], int]) -> Callable[[list[Any]], int]:
        def counted(R: list[Any]) -> int:
            counter[0] += 1
            return op(R)
        return counted

    return [wrap(op) for op in code], counter


def count_insns(b: Bench) -> int:
    """Instructions one call executes, from an instrumented interpreter run."""
    kernel = _sim_kernel()
    vm = kernel.vm
    prog = getattr(b, "sim_prog", None) or _sim_prog(b)
    ops, counter = counting_ops(vm.decode(prog))  # one closure per instruction, not superinstructions
    shadow = SimpleNamespace(name=prog.name, insns=prog.insns, prog_type=prog.prog_type, compiled={"interp": ops})
    if b.ctx is not None:
        vm.run_with_ctx(shadow, b.ctx, 0)
    else:
        vm.test_run(shadow, b.data, None, 1, 0, 0, 0, 0)
    return counter[0]


def kernel_runner() -> KernelRunner | None:
    """PROG_TEST_RUN with repeat on the real kernel, or None where bpf() is not permitted."""
    try:
        from .linux import LinuxKernel
        from .sys.prog import bpf_prog_load, bpf_prog_test_run

        k = LinuxKernel()
        probe = bpf_prog_load(k, XDP, b"".join(i.encode() for i in assemble("mov %r0, 0\nexit")))
        k.close(probe)
    except Exception:  # noqa: BLE001 - no bpf() here: the kernel columns stay empty
        return None
    from .isa import encode

    def run(b: Bench) -> tuple[float, int]:
        fd = bpf_prog_load(k, b.prog_type, encode(b.insns))
        try:
            res = bpf_prog_test_run(k, fd, data=b.data, repeat=b.kernel_repeat)
            return float(res.duration), int(res.retval)
        finally:
            k.close(fd)

    return run


def _syscall_ebpf_bench() -> Bench | None:
    """The syscall_ebpf example's kprobe program, loaded into a SimKernel with its maps."""
    if not SYSCALL_EBPF.exists():
        return None
    try:
        from .programs.ebpf import Ebpf
        from .sim_kernel.kernel import SimKernel
        from .sim_kernel.vm.compiled import install

        kernel = SimKernel()
        install(kernel.vm, "interp")  # the interpreter row and the instruction count: the kernel defaults to compiled
        ebpf = Ebpf.load_file(str(SYSCALL_EBPF), kernel=kernel)
        prog: Any = ebpf.program_mut("syscall_ebpf")
        prog.load()
        fd = int(prog.fd)
        from .sim_kernel.prog import prog_from_fd

        bpf_prog = prog_from_fd(kernel, fd)
    except Exception as e:  # noqa: BLE001 - the loader is another part; report why it was skipped
        print(f"syscall_ebpf: skipped ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    regs = bytearray(168)
    regs[0x68:0x70] = (39).to_bytes(8, "little")  # rsi: the syscall number (getpid)
    b = Bench("syscall_ebpf", list(bpf_prog.insns), KPROBE, ctx=bytes(regs), calls=2000, kernel_ok=False,
              note="kprobe programs have no BPF_PROG_TEST_RUN in Linux (ENOTSUPP)")
    b.sim_prog = bpf_prog  # type: ignore[attr-defined]
    b.kernel_for_sim = kernel  # type: ignore[attr-defined]
    return b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyaya.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--output", default="bench-results.json")
    ap.add_argument("--engine", default="interp", help="comma-separated: " + ",".join(ENGINES))
    ap.add_argument("--no-kernel", action="store_true", help="skip the real kernel even where bpf() works")
    ap.add_argument("--quick", action="store_true", help="fewer calls (for smoke tests)")
    ap.add_argument("--only", default="", help="comma-separated benchmark names to run (default: all)")
    args = ap.parse_args(argv)
    engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        print(f"unknown engine(s): {', '.join(unknown)} (have: {', '.join(ENGINES)})", file=sys.stderr)
        return 2
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    benches = [b for b in programs() if not only or b.name in only]
    if not only or "syscall_ebpf" in only:
        sc = _syscall_ebpf_bench()
        if sc is not None:
            benches.append(sc)
    krun = None if args.no_kernel else kernel_runner()
    results: list[dict[str, Any]] = []
    print(f"{'benchmark':16} {'engine':10} {'ns/insn':>9} {'ns/call':>12} {'calls/s':>12} {'insns':>9}  vs kernel")
    for b in benches:
        calls = max(1, b.calls // 10) if args.quick else b.calls
        n = count_insns_for(b)
        kernel_ns: float | None = None
        kernel_n = n
        if krun is not None and b.kernel_ok:
            try:
                kernel_ns, retval = krun(b)
                if b.kernel_insns is not None:
                    kernel_n = b.kernel_insns(retval)
            except Exception as e:  # noqa: BLE001
                print(f"{b.name}: kernel run failed: {e}", file=sys.stderr)
        rows: list[tuple[str, float, int]] = []
        for eng in engines:
            runner = ENGINES[eng]()
            if hasattr(b, "kernel_for_sim") and eng == "interp":
                runner = _runner_on(b.kernel_for_sim)
            rows.append((eng, runner(b, calls), n))
        if kernel_ns is not None:
            rows.append(("kernel-jit", kernel_ns, kernel_n))
        kernel_per_insn = kernel_ns / kernel_n if kernel_ns and kernel_n else None
        for eng, ns, count in rows:
            per_insn = ns / count if count else None
            rec: dict[str, Any] = {"name": b.name, "engine": eng, "ns_per_insn": per_insn, "ns_per_call": ns,
                                   "calls_per_sec": 1e9 / ns if ns else None, "insns_per_call": count}
            ratio = ""
            if kernel_per_insn and per_insn and eng != "kernel-jit":
                rec["ratio_vs_kernel"] = per_insn / kernel_per_insn  # per instruction: counts may differ
                ratio = f"{per_insn / kernel_per_insn:10.1f}x"
            if b.note:
                rec["note"] = b.note
            results.append(rec)
            print(f"{b.name:16} {eng:10} {per_insn or 0:9.2f} {ns:12.0f} {1e9 / ns if ns else 0:12.0f} "
                  f"{count:9}  {ratio}")
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


def count_insns_for(b: Bench) -> int:
    if hasattr(b, "kernel_for_sim"):
        return _count_on(b)
    return count_insns(b)


def _runner_on(kernel: Any) -> Runner:
    def run(b: Bench, calls: int) -> float:
        return time_on(kernel.vm, b.sim_prog, b, calls)  # type: ignore[attr-defined]
    return run


def _count_on(b: Bench) -> int:
    kernel = b.kernel_for_sim  # type: ignore[attr-defined]
    vm = kernel.vm
    prog = b.sim_prog  # type: ignore[attr-defined]
    ops, counter = counting_ops(vm.decode(prog))
    shadow = SimpleNamespace(name=prog.name, insns=prog.insns, prog_type=prog.prog_type, compiled={"interp": ops})
    assert b.ctx is not None
    vm.run_with_ctx(shadow, b.ctx, 0)
    return counter[0]


if __name__ == "__main__":
    raise SystemExit(main())
