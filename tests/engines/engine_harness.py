"""Run the same program under every engine and observe everything a program can change.

``ENGINES`` are the engines compared with the interpreter: ``compiled`` always, ``native`` when
llvmlite is installed. ``observe(engine, insns, ...)`` runs an unverified program directly on
``Vm.run`` (as the conformance plugin does) with a writable and a read-only region and returns
r0 or the fault (pc, address, message, instruction text), plus both regions and the stack.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tinyaya.isa import Insn
from tinyaya.sim_kernel.memory import RegionKind
from tinyaya.sim_kernel.vm import BpfFault
from tinyaya.sim_kernel.vm.compiled import install, native_available

ENGINES = ["compiled"] + (["native"] if native_available() else [])
ALL = ["interp", *ENGINES]


def sim_kernel(engine: str) -> Any:
    from tinyaya.sim_kernel import SimKernel

    k = SimKernel()
    install(k.vm, engine)
    return k


def prog(insns: list[Insn], prog_type: int = 2, name: str = "t") -> Any:
    return SimpleNamespace(name=name, insns=list(insns), prog_type=prog_type, compiled=None)


def observe(engine: str, insns: list[Insn], *, init: bytes = bytes(64), mem: bytes | None = None,
            budget: int | None = None, prog_type: int = 2, runs: int = 1) -> tuple[Any, ...]:
    """r0 or the fault, and the memory afterwards. r1 = a writable region (``init``), r2 = a
    read-only one (or, with ``mem``, r1 = ``mem`` and r2 = its length, the conformance convention)."""
    k = sim_kernel(engine)
    vm = k.vm
    if budget is not None:
        vm.budget = budget
    rw = k.aspace.add(bytearray(mem if mem is not None else init), RegionKind.MAP_VALUE, "rw")
    ro = k.aspace.add(bytearray(init), RegionKind.RODATA, "ro", writable=False)
    p = prog(insns, prog_type)
    args = (len(mem),) if mem is not None else (ro.base,)
    out: list[Any] = []
    for _ in range(runs):
        try:
            out.append(vm.run(p, rw.base, 0, args=args))
        except BpfFault as f:
            out.append(("fault", f.pc, f.addr, f.message, f.insn_text, str(f)))
    env = vm._envs[0] if hasattr(vm, "_envs") else vm._states[0][0]
    return tuple(out), bytes(rw.buf), bytes(ro.buf), bytes(env.stack.buf)
