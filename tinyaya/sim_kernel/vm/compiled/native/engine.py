"""The native tier: programs the verifier (or the caller) handed us, as machine code via llvmlite.

``NativeTier(vm, engine).try_run(prog, ctx_addr, cpu, args)`` runs a program natively and returns
r0, or None when the tier does not take the program (``ir.supported`` says why; the engine then
uses the compiled tier). Machine code is built once per program and kept in
``prog.compiled['native']``.

Memory: the region table (ir.py) lives in a ctypes array; entries are filled on demand by the
``resolve`` callback from ``kernel.aspace`` and point into the regions' own buffers (the stack,
context, packet, map values are the same bytes the interpreter uses). ``aspace.add``/``remove`` are
wrapped on this kernel's address space so the table is dropped whenever the set of regions
changes (a slot can be reused by another region).

Helpers: the hot ones run in machine code (helpers_ir.py: array and hash map lookups, in-place hash
updates, the clock, the CPU, perf event output), each falling back to the Python helper for anything
unusual; the others call back (``helper``). Their maps are found through a second direct-mapped table
(``maptab``, filled by the ``map_resolve`` callback with the descriptors of maps.py), dropped with the
region table.

Faults: the native code stops at the faulting instruction with every register saved; the engine
writes them back to the run state and replays that one instruction with the interpreter's closure,
which raises the exception the interpreter would have raised, turned into ``BpfFault`` by
``Vm._fault``: same pc, same message, same address.
"""
from __future__ import annotations

import ctypes
import weakref
from typing import Any

from ....clock import Clock
from ....memory import RegionKind
from ...fault import BpfFault, VmTrap
from ..cfg import NotCompilable
from . import maps as native_maps
from .ir import (
    FLAG_CTX,
    FLAG_WRITABLE,
    STATE_BUDGET,
    STATE_CPU,
    STATE_CTX_SLOT,
    STATE_KTIME,
    STATE_LEN,
    STATE_PC,
    STATE_REGS,
    STATE_SNAP,
    STATE_STACK_BASE,
    STATE_STACK_HOST,
    STATE_STATUS,
    STATUS_BUDGET,
    STATUS_FAULT,
    STATUS_HELPER,
    TABLE_SIZE,
    build_ir,
    supported,
)

M64 = (1 << 64) - 1
_U64 = ctypes.c_uint64
_RESOLVE = ctypes.CFUNCTYPE(_U64, _U64)
_CTX_LOAD = ctypes.CFUNCTYPE(_U64, _U64, _U64, _U64, _U64)
_HELPER = ctypes.CFUNCTYPE(_U64, _U64, _U64, _U64, _U64, _U64, _U64)
#: PYFUNCTYPE: the call keeps the GIL (the callbacks, CFUNCTYPE, take it again re-entrantly): no release and
#: re-acquire around each run; ``run()`` takes no argument (the state's address is in the code)
_PROG = ctypes.PYFUNCTYPE(_U64)
_MAP_RESOLVE = ctypes.CFUNCTYPE(_U64, _U64)
_METH_FASTCALL = 0x0080


class _PyMethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p), ("ml_flags", ctypes.c_int),
                ("ml_doc", ctypes.c_char_p)]


class NativeStop(Exception):
    """Raised by ``pyrun`` when the program stopped (the state's status says why); never escapes try_run."""


def _capi() -> dict[str, int]:
    """The C API functions the machine code's ``pyrun`` calls (none: ``pyrun`` is not built)."""
    try:
        api = ctypes.pythonapi
        return {"py_as_u64": ctypes.cast(api.PyLong_AsUnsignedLongLongMask, ctypes.c_void_p).value or 0,
                "py_from_u64": ctypes.cast(api.PyLong_FromUnsignedLongLong, ctypes.c_void_p).value or 0,
                "py_set_none": ctypes.cast(api.PyErr_SetNone, ctypes.c_void_p).value or 0,
                "py_stop_exc": id(NativeStop)}  # CPython: the class object's address (alive: module global)
    except (AttributeError, ValueError):
        return {}


def _pyfunction(addr: int, name: bytes) -> tuple[Any, Any] | None:
    """A builtin function object over the METH_FASTCALL machine code at ``addr`` (and its PyMethodDef,
    which must outlive it), or None."""
    try:
        new = ctypes.pythonapi.PyCFunction_NewEx
        new.restype = ctypes.py_object
        new.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        md = _PyMethodDef(name, addr, _METH_FASTCALL, None)
        return new(ctypes.addressof(md), None, None), md
    except (AttributeError, ValueError, OSError):
        return None
_BUDGET_MSG = "runtime budget of back-edges exhausted (the program does not terminate)"
_llvm: dict[str, Any] = {}


def _target_machine() -> Any:
    """A new target machine: an MCJIT engine takes ownership of the one it is given."""
    if "target" not in _llvm:
        import llvmlite.binding as llvm  # type: ignore[import-untyped]

        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _llvm["llvm"] = llvm
        _llvm["target"] = llvm.Target.from_default_triple()
    return _llvm["target"].create_target_machine(opt=3, codemodel="jitdefault")


class NativeProgram:
    """One program's machine code and what keeps it alive."""

    def __init__(self, fn: Any, engine: Any, ir_text: str, snaps: list[tuple[int, int, bool]], pure: bool,
                 tier: NativeTier, uses_ktime: bool = False, natives: frozenset[int] = frozenset()) -> None:
        #: the tier whose region table and callbacks the machine code calls (kept alive by this)
        self.tier = tier
        self.fn = fn
        self.engine = engine
        self.ir = ir_text
        self.snaps = snaps
        self.pure = pure
        #: the machine code reads ``STATE_KTIME`` (bpf_ktime_get_ns natively)
        self.uses_ktime = uses_ktime
        #: the helper ids done natively
        self.natives = natives
        #: ``pyrun(r1, clock) -> r0``: the machine code as a builtin function (no ctypes marshalling)
        self.pyrun: Any = None
        self._methoddef: Any = None


def _native_helpers(helpers: dict[int, Any]) -> frozenset[int]:
    """The helper ids helpers_ir.py implements whose entry in ``helpers`` is still the stock Python helper."""
    from ... import helpers as h
    from ... import helpers_maps as hm
    from .helpers_ir import H_CPU, H_KTIME, H_LOOKUP, H_PERF, H_UPDATE

    stock = {H_LOOKUP: hm.bpf_map_lookup_elem, H_UPDATE: hm.bpf_map_update_elem, H_KTIME: h.bpf_ktime_get_ns,
             H_CPU: h.bpf_get_smp_processor_id, H_PERF: hm.bpf_perf_event_output}
    return frozenset(i for i, f in stock.items() if helpers.get(i) is f)


class NativeTier:
    def __init__(self, vm: Any, engine: Any) -> None:
        self.vm = vm
        self.engine = engine
        #: build machine code for any program run (engine "native"), or only for promoted ones
        self.on_demand = engine.name == "native"
        self.table = (_U64 * (TABLE_SIZE * 4))()
        self.table_addr = ctypes.addressof(self.table)
        self.keep: dict[int, Any] = {}
        #: the map table: {slot + 1, descriptor address} per entry (helpers_ir.py)
        self.maptab = (_U64 * (TABLE_SIZE * 2))()
        self.maptab_addr = ctypes.addressof(self.maptab)
        self.keep_maps: dict[int, list[Any]] = {}
        self.state = (_U64 * STATE_LEN)()
        self.state_addr = ctypes.addressof(self.state)
        self._entered_env: Any = None
        self._budget = -1
        self.env: Any = None
        self.pending: BaseException | None = None
        self._stack_host: dict[int, tuple[Any, int, Any]] = {}
        self._cb_resolve = _RESOLVE(self._resolve)
        self._cb_ctx = _CTX_LOAD(self._ctx_load)
        self._cb_helper = _HELPER(self._helper)
        self._cb_map = _MAP_RESOLVE(self._map_resolve)
        self.cbs = {"resolve": ctypes.cast(self._cb_resolve, ctypes.c_void_p).value or 0,
                    "ctx_load": ctypes.cast(self._cb_ctx, ctypes.c_void_p).value or 0,
                    "helper": ctypes.cast(self._cb_helper, ctypes.c_void_p).value or 0,
                    "map_resolve": ctypes.cast(self._cb_map, ctypes.c_void_p).value or 0,
                    **_capi()}
        #: the lean path of ``try_run``: ``prog.compiled[_lean_key]`` maps a CPU to (run state, NativeProgram,
        #: stack host address, pyrun) once the program ran on the CPU's first run state
        self._lean_key = f"native_lean:{id(self):x}"
        self._kernel: Any = getattr(vm, "kernel", None)
        self._wrap_aspace()

    # -- the region table ------------------------------------------------------------------------------
    def _wrap_aspace(self) -> None:
        """Wrap ``aspace.add``/``remove`` once per address space; every native tier on it (weakly
        referenced) drops its table when the set of regions changes."""
        aspace = self.vm.aspace
        tiers: weakref.WeakSet[NativeTier] | None = aspace.__dict__.get("_native_tiers")
        if tiers is None:
            tiers = weakref.WeakSet()
            add, remove = aspace.add, aspace.remove

            def add_(*a: Any, **kw: Any) -> Any:
                for t in list(tiers):
                    t.invalidate()
                return add(*a, **kw)

            def remove_(region: Any) -> None:
                for t in list(tiers):
                    t.invalidate()
                remove(region)
            aspace.add = add_
            aspace.remove = remove_
            aspace.__dict__["_native_tiers"] = tiers
        tiers.add(self)

    def invalidate(self) -> None:
        ctypes.memset(self.table_addr, 0, ctypes.sizeof(self.table))
        self.keep.clear()
        ctypes.memset(self.maptab_addr, 0, ctypes.sizeof(self.maptab))
        self.keep_maps.clear()

    def _host(self, region: Any) -> tuple[Any, int] | None:
        try:
            arr = (ctypes.c_char * max(region.size, 1)).from_buffer(region.buf)
        except (TypeError, ValueError, BufferError):
            return None
        return arr, ctypes.addressof(arr)

    def _resolve(self, slot: int) -> int:
        try:
            region = self.vm.aspace.regions.get(slot)
            if region is None:
                return 0
            h = self._host(region)
            if h is None:
                return 0
            idx = (slot & (TABLE_SIZE - 1)) * 4
            flags = (FLAG_WRITABLE if region.writable else 0) | (FLAG_CTX if region.kind is RegionKind.CTX else 0)
            self.keep[idx] = h[0]
            t = self.table
            t[idx + 1], t[idx + 2], t[idx + 3] = h[1], region.size, flags
            t[idx] = slot + 1
            return 1
        except BaseException as e:  # noqa: BLE001 - nothing may cross the C boundary
            self.pending = e
            return 0

    def _map_resolve(self, slot: int) -> int:
        """Fill the map table's entry for the region at ``slot`` with its owner's descriptor (0: none)."""
        try:
            region = self.vm.aspace.regions.get(slot)
            if region is None or region.owner is None:
                return 0
            idx = (slot & (TABLE_SIZE - 1)) * 2
            keep: list[Any] = []
            d = native_maps.build_desc(region.owner, keep)
            if d is not None:
                keep.append(d)
            self.keep_maps[idx] = keep
            t = self.maptab
            t[idx + 1] = ctypes.addressof(d) if d is not None else 0
            t[idx] = slot + 1
            return 1
        except BaseException as e:  # noqa: BLE001 - nothing may cross the C boundary
            self.pending = e
            return 0

    def _ctx_load(self, slot: int, off: int, size: int, signed: int) -> int:
        try:
            region = self.vm.aspace.regions[slot]
            v = self.vm.ctx_load(region, off, size, bool(signed))
            return int(v) & M64
        except BaseException as e:  # noqa: BLE001
            self.pending = e
            self.state[STATE_STATUS] = STATUS_HELPER
            return 0

    def _helper(self, hid: int, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        try:
            return int(self.vm.helpers[hid](self.env, r1, r2, r3, r4, r5)) & M64
        except BaseException as e:  # noqa: BLE001
            self.pending = e
            self.state[STATE_STATUS] = STATUS_HELPER
            return 0

    # -- translation -----------------------------------------------------------------------------------
    def native_for(self, prog: Any) -> NativeProgram | None:
        cache = prog.compiled
        if type(cache) is not dict:
            cache = {}
            prog.compiled = cache
        np = cache.get("native", False)
        if np is not False and np is not None and np.tier is not self:
            np = False  # built for another tier (another install on this kernel): its table, not ours
        if np is False:
            try:
                np = self._build(prog)
            except NotCompilable as e:
                np = None
                cache["native_reason"] = str(e)
            cache["native"] = np
        return np  # type: ignore[no-any-return]

    def accepts(self, prog: Any) -> bool:
        return self.native_for(prog) is not None

    def _build(self, prog: Any) -> NativeProgram:
        from ...decode import CTX_REWRITE_TYPES
        from ..translate import _calls_back

        insns = list(prog.insns)
        cb = frozenset(i for i, f in self.vm.helpers.items() if _calls_back(f))
        why = supported(insns, self.vm.helpers, cb)
        if why is not None:
            raise NotCompilable(why)
        pt = getattr(prog, "prog_type", None)
        natives = _native_helpers(self.vm.helpers)
        text, snaps, pure, uses_ktime = build_ir(insns, self.table_addr, self.cbs,
                                                 pt is None or int(pt) in CTX_REWRITE_TYPES, natives, self.maptab_addr,
                                                 self.state_addr)
        tm = _target_machine()
        llvm = _llvm["llvm"]
        mod = llvm.parse_assembly(text)
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=2)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
        ee = llvm.create_mcjit_compiler(mod, tm)
        ee.finalize_object()
        fn = _PROG(ee.get_function_address("run"))
        np = NativeProgram(fn, ee, text, snaps, pure, self, uses_ktime, natives)
        if "py_as_u64" in self.cbs:
            made = _pyfunction(ee.get_function_address("pyrun"), b"tinyaya_native_run")
            if made is not None:
                np.pyrun, np._methoddef = made
        return np

    # -- running ---------------------------------------------------------------------------------------
    def _enter(self, prog: Any, cpu: int) -> tuple[NativeProgram, Any] | None:
        """The program's machine code and a run state with the stack set up, or None."""
        cache = prog.compiled
        got = cache.get("native", False) if type(cache) is dict else False
        if got is not False and got is not None and getattr(got, "tier", self) is not self:
            got = self.native_for(prog) if self.on_demand else False
        if got is False and not self.on_demand:
            return None  # the compiled engine promotes hot programs itself (Engine._promote)
        np: NativeProgram | None = self.native_for(prog) if got is False else got  # type: ignore[assignment]
        if np is None:
            return None
        env = self.engine._env(cpu)
        if env is not self._entered_env:
            hs = self._stack_host.get(id(env))
            if hs is None or hs[0] is not env.stack:
                h = self._host(env.stack)
                if h is None:
                    return None
                hs = (env.stack, h[1], h[0])
                self._stack_host[id(env)] = hs
            st = self.state
            st[STATE_STACK_HOST] = hs[1]
            st[STATE_STACK_BASE] = env.stack.base
            self._entered_env = env
        R = env.regs
        R[10] = R[15] + 512
        env.prog = prog
        if env.tail_calls:
            env.tail_calls = 0
        self.state[STATE_CPU] = env.cpu
        return np, env

    def _ktime(self) -> int:
        return int(self._kernel.clock.now_ns()) & M64

    def try_run(self, prog: Any, ctx_addr: int, cpu: int, args: tuple[int, ...]) -> int | None:
        """Run ``prog`` natively: r0, or None if the native tier does not take it.

        The lean path: a program that already ran natively on this CPU, from the CPU's first run state (not
        busy: not nested), with no extra arguments, calls the machine code's ``pyrun`` with r1 and the clock
        (a builtin function: no ctypes marshalling); anything else goes through ``_enter``."""
        cache = prog.compiled
        lean = cache.get(self._lean_key) if type(cache) is dict else None
        last = lean.get(cpu) if lean is not None else None
        if last is not None and not args and self.env is None:
            lenv: Any = last[0]
            lnp: NativeProgram = last[1]
            if not lenv.busy and cache.get("native") is lnp and self.vm.budget == self._budget:
                lenv.busy = True
                self.env = lenv
                lenv.prog = prog
                try:
                    if lenv is not self._entered_env:
                        st = self.state
                        st[STATE_STACK_HOST] = last[2]
                        st[STATE_STACK_BASE] = lenv.stack.base
                        st[STATE_CPU] = lenv.cpu
                        self._entered_env = lenv
                    c = self._kernel.clock
                    try:
                        return last[3](ctx_addr, c.ktime_ns if type(c) is Clock else int(c.now_ns()))  # type: ignore[no-any-return]
                    except NativeStop:
                        pass
                    self._budget = -1  # (outside the handler: the fault is not chained to NativeStop)
                    self._fault(prog, lenv)
                    raise AssertionError("unreachable: _fault raises")
                finally:
                    self.env = None
                    lenv.busy = False
        if len(args) > 1:
            return None
        entered = self._enter(prog, cpu)
        if entered is None:
            return None
        np, env = entered
        env.busy = True
        outer = self.env
        self.env = env
        st = self.state
        try:
            st[1] = ctx_addr & M64
            st[2] = (args[0] & M64) if args else 0
            if np.uses_ktime:
                st[STATE_KTIME] = self._ktime()
            budget = self.vm.budget
            if budget != self._budget:
                st[STATE_BUDGET] = self._budget = budget
            if (outer is None and not args and np.pyrun is not None and type(prog.compiled) is dict
                    and getattr(self.vm, "_envs", {}).get(cpu) is env):
                prog.compiled.setdefault(self._lean_key, {})[cpu] = (env, np, self._stack_host[id(env)][1], np.pyrun)
            r0 = np.fn()
            if st[STATE_STATUS]:
                self._budget = -1
                self._fault(prog, env)
            return int(r0)
        finally:
            self.env = outer
            env.busy = False
            if outer is not None:  # a nested run: the outer program's CPU (its native helpers read it)
                st[STATE_CPU] = outer.cpu

    def run_repeat(self, prog: Any, ctx_addr: int, cpu: int, repeat: int) -> int | None:
        """PROG_TEST_RUN's loop natively, the per-run setup hoisted; None if not taken."""
        entered = self._enter(prog, cpu)
        if entered is None:
            return None
        np, env = entered
        env.busy = True
        outer = self.env
        self.env = env
        st = self.state
        if np.uses_ktime:
            st[STATE_KTIME] = self._ktime()
        fn = np.fn
        ctx = ctx_addr & M64
        budget = self.vm.budget
        r0 = 0
        snapped = np.pure and bool(np.snaps) and self._snapshot(np, ctx)
        try:
            pyrun = np.pyrun
            if pyrun is not None:
                # the builtin entry point: r1 and the clock per call, the rest of the state set once (a
                # run that ends normally leaves r2, the budget slot and the status as they were)
                st[2] = 0
                st[STATE_BUDGET] = budget
                st[STATE_STATUS] = 0
                kt = int(st[STATE_KTIME])
                try:
                    for _ in range(max(1, repeat)):
                        r0 = pyrun(ctx, kt)
                except NativeStop:
                    self._budget = -1
                    self._fault(prog, env)
                self._budget = budget
                return int(r0)
            for _ in range(max(1, repeat)):
                st[1] = ctx
                st[2] = 0
                st[STATE_BUDGET] = budget
                st[STATE_STATUS] = 0
                r0 = fn()
                if st[STATE_STATUS]:
                    self._budget = -1
                    self._fault(prog, env)
            self._budget = budget
            return int(r0)
        finally:
            if snapped:
                st[STATE_CTX_SLOT] = 0
                for i in range(len(np.snaps)):
                    st[STATE_SNAP + 2 * i] = 0
            self.env = outer
            env.busy = False
            if outer is not None:
                st[STATE_CPU] = outer.cpu

    def _snapshot(self, np: NativeProgram, ctx: int) -> bool:
        """Fill in the rewritten context fields a pure program loads, once for a PROG_TEST_RUN loop: with
        no stores outside its stack and no helper calls, nothing can change them between runs."""
        region = self.vm.aspace.regions.get(ctx >> 32)
        if region is None or region.kind is not RegionKind.CTX:
            return False
        st = self.state
        for i, (off, size, signed) in enumerate(np.snaps):
            try:
                v = int(self.vm.ctx_load(region, off, size, signed)) & M64
            except Exception:  # noqa: BLE001 - leave it to the call at run time, which faults there
                continue
            st[STATE_SNAP + 2 * i + 1] = v
            st[STATE_SNAP + 2 * i] = 1
        st[STATE_CTX_SLOT] = ctx >> 32
        return True

    def _fault(self, prog: Any, env: Any) -> None:
        st = self.state
        status, pc = int(st[STATE_STATUS]), int(st[STATE_PC])
        st[STATE_STATUS] = 0
        R = env.regs
        R[0:11] = [int(st[STATE_REGS + i]) for i in range(11)]
        vm = self.vm
        pending, self.pending = self.pending, None
        if status == STATUS_BUDGET:
            raise vm._fault(env, None, pc, VmTrap(_BUDGET_MSG))
        if status == STATUS_HELPER and pending is not None:
            if isinstance(pending, BpfFault):
                raise pending
            raise vm._fault(env, None, pc, pending)
        if status == STATUS_FAULT and pending is None:
            ops = prog.compiled.get("native_ops")
            if ops is None:
                ops = prog.compiled["native_ops"] = vm.decode(prog)
            try:
                ops[pc](R)
            except Exception as e:  # noqa: BLE001 - the interpreter's own fault for this instruction
                raise vm._fault(env, None, pc, e)
        raise vm._fault(env, None, pc, RuntimeError(f"native tier stopped with status {status}"))
