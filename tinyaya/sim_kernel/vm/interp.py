"""The interpreter: ``Vm.run(prog, ctx_addr, cpu) -> r0``.

One dispatch loop over pre-decoded closures (``decode.py``), cached per
program in ``prog.compiled``. Per CPU, a 4 KiB stack region (8 frames of 512
bytes, ``MAX_CALL_FRAMES`` x ``MAX_BPF_STACK``) and the run state are
allocated once and reused for every event; a run nested on the same CPU (a
program triggered from inside another) gets a second set, allocated once too.

Faults: whatever goes wrong inside the loop becomes one ``BpfFault`` with the
program name, pc, instruction text and address (see ``fault.py``).
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from typing import Any

from ...isa.insn import Insn
from ..memory import MemoryFault, Region, RegionKind
from . import semantics as sem
from .decode import MAX_CALL_FRAMES, STACK_FRAME, Op, decode, mem_access
from .fault import BpfFault, LdAbsExit, SwitchCode, TailCall, VmTrap
from .fuse import fuse

#: back-edges a single run may take before it is declared non-terminating (unverified programs only
#: can get there: the verifier bounds every loop). 1M-iteration loops stay far below.
DEFAULT_BUDGET = 1 << 26
BPF_MAX_LOOPS = 8 * 1024 * 1024  # include/linux/bpf.h, the may_goto counter
MAX_TAIL_CALL_CNT = 33  # include/linux/bpf.h
M64 = sem.M64
#: R[0..10] registers, 11 RunEnv, 12 frames, 13 budget, 14/15 stack buffer/base, 16-18 its u64/u32/u16 views
REGS_LEN = 19
_ZERO10 = [0] * 10

_UNPACK = {(1, False): struct.Struct("<B"), (2, False): struct.Struct("<H"), (4, False): struct.Struct("<I"),
           (8, False): struct.Struct("<Q"), (1, True): struct.Struct("<b"), (2, True): struct.Struct("<h"),
           (4, True): struct.Struct("<i"), (8, True): struct.Struct("<q")}


@dataclass(eq=False, slots=True)
class RunEnv:
    """What helpers see of the running program (``R[11]``): the kernel, the CPU, the program, the context."""

    vm: Vm
    cpu: int
    regs: list[Any]
    stack: Region
    prog: Any = None
    ctx_addr: int = 0
    tail_calls: int = 0
    tail_target: Any = None
    switch_code: list[Op] | None = None
    may_goto_left: int = BPF_MAX_LOOPS
    busy: bool = False
    code_progs: dict[int, Any] = field(default_factory=dict)

    @property
    def kernel(self) -> Any:
        return self.vm.kernel


class Vm:
    """The eBPF interpreter of one kernel (``kernel.aspace`` is the memory it runs in)."""

    def __init__(self, kernel: Any, *, budget: int = DEFAULT_BUDGET, seed: int | None = None) -> None:
        from .helpers import helper_table

        self.kernel = kernel
        self.aspace = kernel.aspace
        self.budget = budget
        #: fuse straight ALU runs into superinstructions (fuse.py); off only to compare or count
        self.fuse = True
        self.helpers: dict[int, Any] = helper_table()
        self.prandom = random.Random(getattr(kernel, "seed", 0) if seed is None else seed)
        self._states: dict[int, list[RunEnv]] = {}
        #: each CPU's outermost run state
        self._envs: dict[int, RunEnv] = {}
        #: (cpu, purpose) -> long-lived buffers, see contexts.py
        self.buffers: dict[tuple[int, str], Any] = {}

    # -- decoding ---------------------------------------------------------------------------------------
    def code_for(self, prog: Any) -> list[Op]:
        """The decoded closures of ``prog``, cached in ``prog.compiled['interp']``."""
        cache = prog.compiled
        if not isinstance(cache, dict):
            cache = {}
            prog.compiled = cache
        code = cache.get("interp")
        if code is None:
            code = self.decode(prog)
            if self.fuse:
                from .decode import CTX_REWRITE_TYPES

                pt = getattr(prog, "prog_type", None)
                fuse(list(prog.insns), code, self.aspace.regions, pt is None or int(pt) in CTX_REWRITE_TYPES)
            cache["interp"] = code
        return code

    def decode(self, prog: Any) -> list[Op]:
        """One closure per instruction slot, no superinstructions (for instruction counting)."""
        return decode(list(prog.insns), self, getattr(prog, "prog_type", None))

    # -- running ----------------------------------------------------------------------------------------
    def _acquire(self, cpu: int) -> RunEnv:
        """This CPU's first idle run state (a run nested on the same CPU gets another, made once)."""
        states = self._states.setdefault(cpu, [])
        for env in states:
            if not env.busy:
                return env
        depth = len(states)
        stack = self.aspace.add(bytearray(MAX_CALL_FRAMES * STACK_FRAME), RegionKind.STACK,
                                f"stack cpu{cpu}" + (f" nest{depth}" if depth else ""))
        regs: list[Any] = [0] * REGS_LEN
        env = RunEnv(self, cpu, regs, stack)
        regs[11] = env
        regs[12] = []
        regs[14] = stack.buf
        regs[15] = stack.base
        regs[16] = stack.buf.cast("Q")
        regs[17] = stack.buf.cast("I")
        regs[18] = stack.buf.cast("H")
        states.append(env)
        if depth == 0:
            self._envs[cpu] = env
        return env

    def run(self, prog: Any, ctx_addr: int, cpu: int, *, args: tuple[int, ...] = ()) -> int:
        """Run ``prog`` with r1 = ``ctx_addr`` (and r2.. = ``args``) on ``cpu``; return r0 or raise BpfFault."""
        cache = prog.compiled
        code = cache.get("interp") if type(cache) is dict else None
        if code is None:
            code = self.code_for(prog)
        env = self._envs.get(cpu)
        if env is None or env.busy:
            env = self._acquire(cpu)
        env.busy = True
        try:
            R = env.regs
            R[:10] = _ZERO10
            R[1] = ctx_addr & M64
            if args:
                for i, a in enumerate(args[:4]):
                    R[2 + i] = a & M64
            R[10] = R[15] + STACK_FRAME
            if R[12]:
                R[12].clear()
            R[13] = self.budget
            env.prog = prog
            if env.tail_calls:
                env.tail_calls = 0
            if env.may_goto_left != BPF_MAX_LOOPS:
                env.may_goto_left = BPF_MAX_LOOPS
            pc: int | None = 0
            # the dispatch loop, inlined for the common case; anything unusual continues in _execute
            try:
                while pc is not None:
                    pc = code[pc](R)
                return int(R[0])
            except Exception as e:  # noqa: BLE001 - tail calls, returns into another program, faults
                if env.code_progs:
                    env.code_progs.clear()
                return self._resume(env, code, pc, e)
        finally:
            env.busy = False

    def run_repeat(self, prog: Any, ctx_addr: int, cpu: int, repeat: int) -> int:
        """Run ``prog`` ``repeat`` times from a fresh register file each time, as PROG_TEST_RUN's
        ``bpf_test_run`` loop does; return the last r0. The per-run setup is hoisted out of the loop."""
        code = self.code_for(prog)
        env = self._envs.get(cpu)
        if env is None or env.busy:
            env = self._acquire(cpu)
        env.busy = True
        try:
            R = env.regs
            ctx = ctx_addr & M64
            fp = R[15] + STACK_FRAME
            budget = self.budget
            frames = R[12]
            r0 = 0
            for _ in range(max(1, repeat)):
                R[:10] = _ZERO10
                R[1] = ctx
                R[10] = fp
                if frames:
                    frames.clear()
                R[13] = budget
                env.prog = prog
                env.tail_calls = 0
                env.may_goto_left = BPF_MAX_LOOPS
                pc: int | None = 0
                try:
                    while pc is not None:
                        pc = code[pc](R)
                    r0 = R[0]
                except Exception as e:  # noqa: BLE001 - as in run()
                    if env.code_progs:
                        env.code_progs.clear()
                    r0 = self._resume(env, code, pc, e)
            return int(r0)
        finally:
            env.busy = False

    def _resume(self, env: RunEnv, code: list[Op], pc: int | None, exc: Exception) -> int:
        """Handle what stopped the inlined loop (a tail call, a return into another program, an
        LD_ABS exit or a fault) and carry on in ``_execute``."""
        R = env.regs
        if isinstance(exc, TailCall):
            prog = env.tail_target
            code = self.code_for(prog)
            env.prog = prog
            env.code_progs[id(code)] = prog
            return self._execute(env, code, 0)
        if isinstance(exc, SwitchCode):
            assert env.switch_code is not None
            code = env.switch_code
            env.prog = env.code_progs.get(id(code), env.prog)
            return self._execute(env, code, exc.args[0])
        if isinstance(exc, LdAbsExit):
            R[0] = 0
            return 0
        if isinstance(exc, BpfFault):
            raise exc
        raise self._fault(env, code, pc, exc)

    def _execute(self, env: RunEnv, code: list[Op], pc: int | None) -> int:
        """The dispatch loop: ``pc = code[pc](R)`` until an exit returns None."""
        R = env.regs
        while True:
            try:
                while pc is not None:
                    pc = code[pc](R)
                return int(R[0])
            except TailCall:
                prog = env.tail_target
                code = self.code_for(prog)
                env.prog = prog
                env.code_progs[id(code)] = prog
                pc = 0
            except SwitchCode as sc:
                assert env.switch_code is not None
                code = env.switch_code
                env.prog = env.code_progs.get(id(code), env.prog)
                pc = sc.args[0]
            except LdAbsExit:
                R[0] = 0
                return 0
            except BpfFault:
                raise
            except Exception as e:  # noqa: BLE001 - every fault becomes a BpfFault
                raise self._fault(env, code, pc, e)

    def call_function(self, env: RunEnv, func_addr: int, args: tuple[int, ...]) -> int:
        """Run a BPF_PSEUDO_FUNC callback (bpf_loop, for_each_map_elem) in a new frame; return its r0."""
        return self.callback(env, func_addr)(*args)

    def callback(self, env: RunEnv, func_addr: int) -> Any:
        """A Python callable ``cb(r1, r2, ...) -> r0`` running the subprogram at ``func_addr`` in a new
        frame each time (r6-r9 and r10 restored on return), for helpers that call back often."""
        code = self.code_for(env.prog)
        tgt = func_addr - sem.FUNC_ADDR_BASE
        if not 0 <= tgt < len(code):
            raise VmTrap(f"invalid callback address {func_addr:#x}", func_addr)
        R = env.regs
        fr = R[12]
        execute = self._execute

        def cb(*args: int) -> int:
            if len(fr) >= MAX_CALL_FRAMES - 1:
                raise VmTrap(f"the call stack is too deep ({MAX_CALL_FRAMES} frames)")
            fr.append((None, R[6], R[7], R[8], R[9], R[10], code))  # the callback's exit ends the loop
            R[10] += STACK_FRAME
            for i, a in enumerate(args[:5]):
                R[1 + i] = a & M64
            return execute(env, code, tgt)
        return cb

    # -- faults -----------------------------------------------------------------------------------------
    def _fault(self, env: RunEnv, code: list[Op], pc: int | None, exc: BaseException) -> BpfFault:
        if isinstance(exc, VmTrap) and exc.pc is not None:
            pc = exc.pc
        if pc is None:
            pc = -1
        prog = env.code_progs.get(id(code), env.prog)
        insns: list[Insn] = list(prog.insns)
        ins = insns[pc] if 0 <= pc < len(insns) else None
        text = insn_text(insns, pc) if ins is not None else "?"
        name = getattr(prog, "name", "") or ""
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        if isinstance(exc, VmTrap):
            return BpfFault(name, pc, text, exc.addr, exc.message)
        if isinstance(exc, MemoryFault):
            return BpfFault(name, pc, text, exc.addr, str(exc))
        acc = mem_access(ins) if ins is not None else None
        if acc is not None:
            base, off, size, write = acc
            addr = (env.regs[base] + off) & sem.M64
            try:
                self.aspace.find(addr, size, write)
            except MemoryFault as mf:
                return BpfFault(name, pc, text, addr, mf.reason)
            return BpfFault(name, pc, text, addr, f"invalid access ({type(exc).__name__}: {exc})")
        return BpfFault(name, pc, text, None, f"internal error: {type(exc).__name__}: {exc}")

    # -- memory hooks used by the decoded code -----------------------------------------------------------
    def ctx_load(self, region: Region, off: int, size: int, signed: bool) -> int:
        """A load from a context region: the owner may rewrite it (``__sk_buff.data`` is a 32-bit field
        holding a 64-bit pointer, as ``convert_ctx_access`` makes it); otherwise plain memory."""
        hook = getattr(region.owner, "load_field", None)
        if hook is not None:
            v = hook(off, size)
            if v is not None:
                return int(v)
        return int(_UNPACK[(size, signed)].unpack_from(region.buf, off)[0])

    def skb_bytes(self, ctx_addr: int) -> memoryview | None:
        """The linear packet data of the __sk_buff at ``ctx_addr`` (for LD_ABS/LD_IND), or None."""
        region = self.aspace.regions.get(ctx_addr >> 32)
        fn = getattr(region.owner, "packet_bytes", None) if region is not None else None
        return fn() if fn is not None else None

    def ld_abs_bytes(self, ctx_addr: int, k: int, size: int) -> bytes | None:
        """``size`` bytes at LD_ABS offset ``k`` of the __sk_buff at ``ctx_addr``, or None (contexts.py)."""
        region = self.aspace.regions.get(ctx_addr >> 32)
        fn = getattr(region.owner, "ld_abs_bytes", None) if region is not None else None
        return fn(k, size) if fn is not None else None

    # -- entry points implemented elsewhere --------------------------------------------------------------
    def run_with_ctx(self, prog: Any, ctx: bytes, cpu: int = 0) -> tuple[int, bytes]:
        """Run ``prog`` on a copy of ``ctx`` (e.g. a ``struct pt_regs``) in this CPU's context buffer;
        return r0 and the context afterwards. For kprobe programs in tests and benchmarks."""
        from .contexts import raw_ctx_buffer

        buf = raw_ctx_buffer(self, cpu, len(ctx), getattr(prog, "prog_type", None))
        buf.buf[:len(ctx)] = ctx
        r0 = self.run(prog, buf.base, cpu)
        return r0, bytes(buf.buf[:len(ctx)])

    def test_run(self, prog: Any, data_in: bytes, ctx_in: bytes | None, repeat: int, flags: int, cpu: int,
                 data_size_out: int, ctx_size_out: int, **kw: Any) -> Any:
        """BPF_PROG_TEST_RUN for ``prog``; see ``test_run.py``."""
        from .test_run import test_run

        return test_run(self, prog, data_in, ctx_in, repeat, flags, cpu, data_size_out, ctx_size_out, **kw)


def insn_text(insns: list[Insn], pc: int) -> str:
    """The instruction at ``pc`` in llvm-objdump syntax (``tinyaya.isa.disasm``), or a raw fallback."""
    ins = insns[pc]
    try:
        from ...isa.disasm import disasm_insn

        return disasm_insn(insns, pc)
    except Exception:  # noqa: BLE001 - a fault report must not fail on an undecodable instruction
        return f"code={ins.code:#04x} dst=r{ins.dst} src=r{ins.src} off={ins.off} imm={ins.imm}"
