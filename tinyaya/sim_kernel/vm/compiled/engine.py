"""Engine selection: ``interp`` | ``compiled`` | ``native``, with ``Vm.run``'s exact contract.

``Engine(vm, name).run(prog, ctx_addr, cpu, args=())`` returns r0 or raises ``BpfFault``, like
``Vm.run``. It uses the interpreter's run states (per-CPU stack region, ``RunEnv``), so helpers,
callbacks (which still run in the interpreter), tail calls and fault reports see exactly what
they see under the interpreter. A program the compiled tier declines (``cfg.NotCompilable``) runs
in the interpreter; ``native`` falls back to ``compiled`` for programs it does not take.

``install(vm, name)`` makes ``vm.run`` and ``vm.run_repeat`` (PROG_TEST_RUN's loop) go through the
engine, so every caller (PROG_TEST_RUN, the tracing event path, ``run_with_ctx``) uses it.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from .. import semantics as sem
from ..fault import LdAbsExit, TailCall
from .cfg import NotCompilable
from .translate import CompiledProgram, build

ENGINES = ("interp", "compiled", "native")
#: the engine a new kernel uses unless told otherwise (``TINYAYA_ENGINE`` overrides)
DEFAULT_ENGINE = "compiled"
BPF_MAX_LOOPS = 8 * 1024 * 1024
#: runs after which the compiled engine hands a program to the native tier (when llvmlite is there)
HOT_RUNS = 256
#: programs this long, or with a loop, are worth a native call (its fixed cost is ~0.3-1 us)
NATIVE_MIN_INSNS = 64
STACK_FRAME = 512
M64 = sem.M64
_MISSING = object()
#: one native build at a time in this process (LLVM's target setup is not thread-safe)
_BUILD_LOCK = threading.Lock()


def default_engine() -> str:
    name = os.environ.get("TINYAYA_ENGINE", DEFAULT_ENGINE).strip().lower()
    return name if name in ENGINES else DEFAULT_ENGINE


def native_available() -> bool:
    try:
        import llvmlite  # noqa: F401
    except ImportError:
        return False
    return True


class Engine:
    """Runs programs of one ``Vm`` through the compiled (or native) tier."""

    def __init__(self, vm: Any, name: str = "compiled", *, auto_native: bool | None = None) -> None:
        if name not in ENGINES:
            raise ValueError(f"unknown engine {name!r} (have: {', '.join(ENGINES)})")
        self.vm = vm
        self.name = name
        cls = type(vm)
        self._interp_run = cls.run.__get__(vm)
        self._interp_repeat = cls.run_repeat.__get__(vm)
        #: the VM's per-CPU run states (the interpreter's own dict: a nested run gets another from ``_acquire``)
        self._envs: dict[int, Any] = getattr(vm, "_envs", {})
        self.native: Any = None
        #: native builds running in the background (``_promote``)
        self.builds: list[threading.Thread] = []
        #: the compiled engine promotes hot programs to the native tier when llvmlite is installed
        if auto_native is None:
            auto_native = os.environ.get("TINYAYA_AUTO_NATIVE", "1") != "0"
        self.auto_native = name == "compiled" and auto_native and native_available()
        if name == "native":
            self._native_tier()

    def _native_tier(self) -> Any:
        if self.native is None:
            from .native.engine import NativeTier

            self.native = NativeTier(self.vm, self)
        return self.native

    def _promote(self, prog: Any, *, background: bool = False) -> None:
        """A hot program: run it natively from now on if the native tier takes it and it is worth it.

        ``background``: build the machine code in a thread while the compiled tier goes on running the
        program (the event path: LLVM works on another core, and mostly without the GIL); the program
        switches to native code at its first run after the build. Builds are serialised process-wide."""
        from .cfg import jump_target

        insns = list(prog.insns)
        loops = any((t := jump_target(ins, pc)) is not None and t <= pc for pc, ins in enumerate(insns))
        if len(insns) < NATIVE_MIN_INSNS and not loops:
            prog.compiled.setdefault("native", None)
            prog.compiled.setdefault("native_reason", "small and loop-free: the compiled tier is cheaper")
            return
        tier = self._native_tier()
        if not background:
            with _BUILD_LOCK:
                tier.native_for(prog)
            return

        def build() -> None:
            with _BUILD_LOCK:
                try:
                    tier.native_for(prog)
                except Exception as e:  # noqa: BLE001 - the compiled tier goes on running it
                    cache = prog.compiled
                    if type(cache) is dict:
                        cache.setdefault("native", None)
                        cache["native_reason"] = f"native build failed: {type(e).__name__}: {e}"

        worker = threading.Thread(target=build, name=f"tinyaya-native:{getattr(prog, 'name', '?')}")
        self.builds.append(worker)
        worker.start()

    def wait_builds(self) -> None:
        """Wait for the native builds started in the background (tests, and a clean exit)."""
        while self.builds:
            self.builds.pop().join()

    # -- translation cache --------------------------------------------------------------------------
    def compiled_for(self, prog: Any) -> CompiledProgram | None:
        """The compiled form of ``prog``, built once and kept in ``prog.compiled['compiled']``
        (None: the interpreter runs it)."""
        cache = prog.compiled
        if type(cache) is not dict:
            cache = {}
            prog.compiled = cache
        cp = cache.get("compiled", _MISSING)
        if cp is _MISSING:
            try:
                cp = build(prog, self.vm)
            except NotCompilable as e:
                cp = None
                cache["compiled_reason"] = str(e)
            cache["compiled"] = cp
        return cp  # type: ignore[return-value]

    def _env(self, cpu: int) -> Any:
        vm = self.vm
        envs = getattr(vm, "_envs", None)
        env = envs.get(cpu) if envs is not None else None
        if env is None or env.busy:
            env = vm._acquire(cpu)
        return env

    # -- running --------------------------------------------------------------------------------------
    def run(self, prog: Any, ctx_addr: int, cpu: int, *, args: tuple[int, ...] = ()) -> int:
        """Run ``prog`` with r1 = ``ctx_addr`` (r2.. = ``args``) on ``cpu``: r0, or BpfFault."""
        native = self.native
        if native is not None:
            r = native.try_run(prog, ctx_addr, cpu, args)
            if r is not None:
                return int(r)
        cache = prog.compiled
        cp: Any = cache.get("compiled", _MISSING) if type(cache) is dict else _MISSING
        if cp is _MISSING:
            cp = self.compiled_for(prog)
            cache = prog.compiled
        if cp is None:
            return int(self._interp_run(prog, ctx_addr, cpu, args=args))
        if self.auto_native:
            hot = cache["hot"] = cache.get("hot", 0) + 1
            if hot == HOT_RUNS:
                self._promote(prog, background=True)
        env = self._envs.get(cpu)
        if env is None or env.busy:
            env = self.vm._acquire(cpu)
        env.busy = True
        try:
            R = env.regs
            R[10] = R[15] + STACK_FRAME
            if R[12]:
                R[12].clear()
            env.prog = prog
            if env.tail_calls:
                env.tail_calls = 0
            if env.may_goto_left != BPF_MAX_LOOPS:
                env.may_goto_left = BPF_MAX_LOOPS
            if args:
                a = [x & M64 for x in args[:4]] + [0] * (4 - len(args[:4]))
                r2, r3, r4, r5 = a
                r0 = cp.entry(env, R, 0, ctx_addr & M64, r2, r3, r4, r5, 0, 0, 0, 0, self.vm.budget)
            else:
                r0 = cp.entry(env, R, 0, ctx_addr & M64, 0, 0, 0, 0, 0, 0, 0, 0, self.vm.budget)
            return r0 if type(r0) is int else int(r0)
        except TailCall:
            return self._tail(env)
        except LdAbsExit:
            env.regs[0] = 0
            return 0
        finally:
            env.busy = False

    def _tail(self, env: Any) -> int:
        """Continue in the target of a successful bpf_tail_call, on the same frame and budget."""
        R = env.regs
        vm = self.vm
        while True:
            prog = env.tail_target
            env.prog = prog
            cp = self.compiled_for(prog)
            if cp is None:
                code = vm.code_for(prog)
                env.code_progs[id(code)] = prog
                try:
                    return int(vm._execute(env, code, 0))
                finally:
                    env.code_progs.clear()
            try:
                return int(cp.entry(env, R, *R[0:10], R[13]))
            except TailCall:
                continue
            except LdAbsExit:
                R[0] = 0
                return 0

    def run_repeat(self, prog: Any, ctx_addr: int, cpu: int, repeat: int) -> int:
        """PROG_TEST_RUN's loop: ``repeat`` runs from a fresh register file; the last r0."""
        if self.native is not None:
            r = self.native.run_repeat(prog, ctx_addr, cpu, repeat)
            if r is not None:
                return int(r)
        cp = self.compiled_for(prog)
        if cp is None:
            return int(self._interp_repeat(prog, ctx_addr, cpu, repeat))
        if self.auto_native and repeat >= HOT_RUNS and "native" not in prog.compiled:
            self._promote(prog)
            if self.native is not None:
                r = self.native.run_repeat(prog, ctx_addr, cpu, repeat)
                if r is not None:
                    return int(r)
        env = self._env(cpu)
        env.busy = True
        try:
            R = env.regs
            entry = cp.entry
            ctx = ctx_addr & M64
            fp = R[15] + STACK_FRAME
            budget = self.vm.budget
            frames = R[12]
            r0 = 0
            for _ in range(max(1, repeat)):
                R[10] = fp
                if frames:
                    frames.clear()
                env.prog = prog
                env.tail_calls = 0
                env.may_goto_left = BPF_MAX_LOOPS
                try:
                    r0 = entry(env, R, 0, ctx, 0, 0, 0, 0, 0, 0, 0, 0, budget)
                except TailCall:
                    r0 = self._tail(env)
                except LdAbsExit:
                    R[0] = 0
                    r0 = 0
            return int(r0)
        finally:
            env.busy = False


def install(vm: Any, name: str | None = None, *, auto_native: bool | None = None) -> Engine | None:
    """Route ``vm.run``/``vm.run_repeat`` through engine ``name`` (default: ``default_engine()``).
    ``interp`` removes the routing. ``native`` without llvmlite installs ``compiled``. The compiled
    engine hands hot programs to the native tier when llvmlite is installed, unless ``auto_native``
    is False (or ``TINYAYA_AUTO_NATIVE=0``)."""
    name = name or default_engine()
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r} (have: {', '.join(ENGINES)})")
    for attr in ("run", "run_repeat"):
        vm.__dict__.pop(attr, None)
    if name == "interp":
        vm.engine = None
        return None
    if name == "native" and not native_available():
        name = "compiled"
    eng = Engine(vm, name, auto_native=auto_native)
    vm.run = eng.run
    vm.run_repeat = eng.run_repeat
    vm.engine = eng
    return eng
