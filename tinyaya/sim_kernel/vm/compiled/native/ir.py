"""eBPF -> LLVM IR (llvmlite.ir), with the interpreter's semantics (``semantics.py``) spelled in IR.

The function is ``i64 prog(i64* state)`` returning r0. ``state`` (``STATE_*`` slots) carries r1,
r2, the budget, the stack's host address and guest base in, and on a fault the status, the pc and
every register out (so a repeated run only sets what changes, and a call passes one pointer). Memory: an address's region is found through a direct-mapped
table of 1024 entries ``{slot + 1, host pointer, size, flags}`` indexed by ``slot & 1023`` with
``slot = address >> 32`` (regions are 4 GiB apart, memory.py); a miss calls back into Python
(``resolve``), which fills the entry from ``kernel.aspace`` or says the address is unmapped. The
region and offset are those of the exact address ``base + off`` (as decode.py's), and every
access is bounds-checked against the region's size; a failing access stops the program with
``STATUS_FAULT`` and the pc, and the engine replays that one instruction in the interpreter to raise the very same ``BpfFault``.

Frame-pointer accesses inside the 512-byte frame go straight to the stack buffer. Loads from a
context region of a program type whose context fields are rewritten call back (``ctx_load``).
Helpers are called back (``helper``) with the helper id and r1-r5.
"""
from __future__ import annotations

from collections.abc import Container
from typing import Any

from llvmlite import ir  # type: ignore[import-untyped]

from .....isa.insn import Insn
from .....isa.opcodes import (
    BPF_ADD,
    BPF_ALU,
    BPF_ALU64,
    BPF_AND,
    BPF_ARSH,
    BPF_CALL,
    BPF_DIV,
    BPF_END,
    BPF_EXIT,
    BPF_JA,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JLE,
    BPF_JLT,
    BPF_JMP,
    BPF_JMP32,
    BPF_JNE,
    BPF_JSET,
    BPF_JSGE,
    BPF_JSGT,
    BPF_JSLE,
    BPF_JSLT,
    BPF_LDX,
    BPF_LSH,
    BPF_MEM,
    BPF_MEMSX,
    BPF_MOD,
    BPF_MOV,
    BPF_MUL,
    BPF_NEG,
    BPF_OR,
    BPF_RSH,
    BPF_ST,
    BPF_STX,
    BPF_SUB,
    BPF_X,
    BPF_XOR,
    LD_IMM64,
)
from ..cfg import NotCompilable, is_exit, jump_target, width
from .helpers_ir import H_CPU, H_KTIME, H_LOOKUP, H_PERF, H_UPDATE, HelperGen

I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
M32 = 0xFFFF_FFFF
M64 = (1 << 64) - 1
TABLE_BITS = 10
TABLE_SIZE = 1 << TABLE_BITS
STACK_FRAME = 512
BPF_MAX_LOOPS = 8 * 1024 * 1024  # include/linux/bpf.h: the may_goto counter of one run
# state slots (i64 each)
STATE_REGS = 0  # r0..r10 on a fault
STATE_STATUS = 11
STATE_PC = 12
STATE_STACK_HOST = 13
STATE_STACK_BASE = 14
STATE_BUDGET = 15
STATE_CTX_SLOT = 16  # the context region's slot while a snapshot of its rewritten fields is valid
STATE_SNAP = 17  # (valid, value) per context load, see _Gen.load
MAX_SNAP = 64
STATE_CPU = STATE_SNAP + 2 * MAX_SNAP  # the CPU the program runs on (native helpers)
STATE_KTIME = STATE_CPU + 1  # the simulated CLOCK_MONOTONIC at the start of the run (bpf_ktime_get_ns)
STATE_LEN = STATE_KTIME + 1
STATUS_OK, STATUS_FAULT, STATUS_BUDGET, STATUS_HELPER = 0, 1, 2, 3
FLAG_WRITABLE, FLAG_CTX = 1, 2
_SIZES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
_ITYPE = {1: I8, 2: I16, 4: I32, 8: I64}
_JMP = {BPF_JEQ: "==", BPF_JNE: "!=", BPF_JGT: ">", BPF_JGE: ">=", BPF_JLT: "<", BPF_JLE: "<="}
_SJMP = {BPF_JSGT: ">", BPF_JSGE: ">=", BPF_JSLT: "<", BPF_JSLE: "<="}

RESOLVE_T = ir.FunctionType(I64, [I64])  # slot -> 1 (entry filled) or 0 (unmapped)
CTX_LOAD_T = ir.FunctionType(I64, [I64, I64, I64, I64])  # slot, offset, size, signed -> value
HELPER_T = ir.FunctionType(I64, [I64, I64, I64, I64, I64, I64])  # id, r1..r5 -> r0


def supported(insns: list[Insn], helpers: dict[int, Any], callback_helpers: frozenset[int]) -> str | None:
    """None if the native tier takes the program, else why not."""
    n = len(insns)
    targets: set[int] = set()
    pc = 0
    while pc < n:
        ins = insns[pc]
        c, d, s = ins.code, ins.dst, ins.src
        cls = c & 0x07
        w = width(insns, pc)
        if d > 10 or s > 10:
            return "invalid register"
        if cls in (BPF_ALU, BPF_ALU64):
            op = c & 0xF0
            if d == 10 or _alu_unsupported(ins):
                return "ALU encoding"
        elif cls in (BPF_JMP, BPF_JMP32):
            op = c & 0xF0
            if op == BPF_CALL and cls == BPF_JMP:
                if c & BPF_X or s != 0:
                    return "calls other than helpers"
                if ins.imm not in helpers or ins.imm in callback_helpers or ins.imm == 12:
                    return f"helper {ins.imm}"
            elif op == BPF_EXIT and cls == BPF_JMP:
                pass
            elif op == BPF_JA or op in _JMP or op in _SJMP or op == BPF_JSET or (op == 0xE0 and cls == BPF_JMP):
                t = jump_target(ins, pc)
                if t is None or not 0 <= t < n:
                    return "jump out of range"
                targets.add(t)
            else:
                return "jump encoding"
        elif c == LD_IMM64:
            if w != 2 or d > 9 or s == 4:
                return "ld_imm64"
        elif cls == BPF_LDX:
            if d > 9 or c & 0xE0 not in (BPF_MEM, BPF_MEMSX) or (c & 0xE0 == BPF_MEMSX and c & 0x18 == 0x18):
                return "load encoding"
        elif cls in (BPF_ST, BPF_STX):
            if c & 0xE0 != BPF_MEM:
                return "atomics"
        else:
            return f"opcode {c:#x}"
        pc += w
    for t in targets:
        if t > 0 and insns[t - 1].code == LD_IMM64 and width(insns, t - 1) == 2:
            return "jump into a ld_imm64"
    last = insns[-1]
    if not (is_exit(last) or (last.code & 0x07) in (BPF_JMP, BPF_JMP32) and (last.code & 0xF0) == BPF_JA):
        return "runs off its end"
    return None


def _alu_unsupported(ins: Insn) -> bool:
    c, off, imm = ins.code, ins.off, ins.imm
    op = c & 0xF0
    alu64 = c & 0x07 == BPF_ALU64
    if op == BPF_END:
        return imm not in (16, 32, 64) or (alu64 and bool(c & BPF_X))
    if op in (BPF_DIV, BPF_MOD):
        return off not in (0, 1)
    if op == BPF_MOV:
        return off not in ((0, 8, 16, 32) if alu64 else (0, 8, 16)) if c & BPF_X else off != 0
    return op not in (BPF_ADD, BPF_SUB, BPF_MUL, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_NEG, BPF_XOR, BPF_ARSH) \
        or off != 0


class _Gen:
    def __init__(self, insns: list[Insn], table_addr: int, cbs: dict[str, int], ctx_rewrite: bool,
                 natives: frozenset[int] = frozenset(), maptab_addr: int = 0, state_addr: int = 0) -> None:
        self.insns = insns
        self.state_addr = state_addr
        self.module = ir.Module(name="tinyaya_native")
        #: helper ids called natively (helpers_ir.py), with the Python helper as fallback
        self.natives = natives
        self.hgen = HelperGen(self.module, table_addr, maptab_addr, cbs, STATE_CPU, STATE_KTIME) if natives else None
        self.uses_ktime = False
        self.stop_bb: ir.Block | None = None
        #: inside the checked-once version of a group (``emit_group``): (base register, host address of
        #: base + 0), so that its accesses through that register need no check
        self.direct: tuple[int, Any] | None = None
        #: inside the checked-per-access version of a group: accesses call ``checked`` (small IR: that
        #: version only runs when the group's single check failed, i.e. when a fault is coming)
        self.compact = False
        self._checked: ir.Function | None = None
        fnty = ir.FunctionType(I64, [I64.as_pointer()])
        self.fn = ir.Function(self.module, fnty, name="prog")
        self.table = ir.Constant(I64, table_addr)
        self.cbs = cbs
        self.ctx_rewrite = ctx_rewrite
        #: context loads with a snapshot slot: (offset, size, signed) in slot order
        self.snaps: list[tuple[int, int, bool]] = []

    def const(self, v: int) -> ir.Constant:
        return ir.Constant(I64, v & M64)

    def cb(self, b: ir.IRBuilder, name: str, fnty: ir.FunctionType) -> Any:
        return b.inttoptr(ir.Constant(I64, self.cbs[name]), fnty.as_pointer())

    def build(self) -> ir.Module:
        fn = self.fn
        (state,) = fn.args
        entry = fn.append_basic_block("entry")
        b = ir.IRBuilder(entry)
        self.state = state
        r1 = b.load(b.gep(state, [ir.Constant(I32, STATE_REGS + 1)]))
        r2 = b.load(b.gep(state, [ir.Constant(I32, STATE_REGS + 2)]))
        budget = b.load(b.gep(state, [ir.Constant(I32, STATE_BUDGET)]))
        self.regs = [b.alloca(I64, name=f"r{i}") for i in range(11)]
        self.okp = b.alloca(I64, name="native_ok")
        self.budget = b.alloca(I64, name="budget")
        self.may_goto = b.alloca(I64, name="may_goto_left")
        self.last_slot = b.alloca(I64, name="last_slot")
        self.last_host = b.alloca(I64, name="last_host")
        self.last_size = b.alloca(I64, name="last_size")
        self.last_flags = b.alloca(I64, name="last_flags")
        for slot_var in (self.last_slot, self.last_host, self.last_size, self.last_flags):
            b.store(self.const(M64), slot_var)
        b.store(self.const(BPF_MAX_LOOPS), self.may_goto)
        for r in self.regs:
            b.store(self.const(0), r)
        b.store(r1, self.regs[1])
        b.store(r2, self.regs[2])
        self.stack_host = b.load(b.gep(state, [ir.Constant(I32, STATE_STACK_HOST)]))
        fp = b.add(b.load(b.gep(state, [ir.Constant(I32, STATE_STACK_BASE)])), self.const(STACK_FRAME))
        b.store(fp, self.regs[10])
        b.store(budget, self.budget)
        n = len(self.insns)
        leaders = {0}
        pc = 0
        while pc < n:
            ins = self.insns[pc]
            t = jump_target(ins, pc)
            w = width(self.insns, pc)
            if t is not None:
                leaders.add(t)
                leaders.add(pc + w)
            elif is_exit(ins):
                leaders.add(pc + w)
            pc += w
        self.blocks = {x: fn.append_basic_block(f"pc{x}") for x in sorted(leaders) if x < n}
        b.branch(self.blocks[0])
        pc = 0
        b = ir.IRBuilder(self.blocks[0])
        while pc < n:
            if pc in self.blocks and b.block is not self.blocks[pc]:
                if not b.block.is_terminated:
                    b.branch(self.blocks[pc])
                b = ir.IRBuilder(self.blocks[pc])
            w = width(self.insns, pc)
            if b.block.is_terminated:  # unreachable code after a jump: skip to the next leader
                pc += w
                continue
            group = self.group(pc, leaders)
            if group is not None:
                b, pc = self.emit_group(b, pc, *group)
                continue
            b = self.insn(b, pc)
            pc += w
        if not b.block.is_terminated:
            b.unreachable()
        if self.state_addr:
            # ``i64 run()``: ``prog`` on the tier's own state, so that a call from Python passes nothing
            run = ir.Function(self.module, ir.FunctionType(I64, []), name="run")
            rb = ir.IRBuilder(run.append_basic_block("entry"))
            rb.ret(rb.call(fn, [rb.inttoptr(self.const(self.state_addr), I64.as_pointer())]))
            if "py_as_u64" in self.cbs:
                self.pyrun(fn)
        return self.module

    def pyrun(self, fn: ir.Function) -> None:
        """``PyObject *pyrun(PyObject *self, PyObject *const *args, Py_ssize_t nargs)``, a METH_FASTCALL
        function of (r1, clock): both ints taken modulo 2**64 into the state, then ``prog``; r0 as a
        Python int, or, when the program stopped (a fault, the budget, a helper's exception: the state's
        status), NULL with the exception ``cbs["py_stop_exc"]`` set, so a run that ends normally needs no
        look at the state. Called from Python without ctypes' marshalling."""
        p8 = I8.as_pointer()
        f = ir.Function(self.module, ir.FunctionType(p8, [p8, p8.as_pointer(), I64]), name="pyrun")
        b = ir.IRBuilder(f.append_basic_block("entry"))
        _self, args, _nargs = f.args
        as_u64 = b.inttoptr(ir.Constant(I64, self.cbs["py_as_u64"]), ir.FunctionType(I64, [p8]).as_pointer())
        from_u64 = b.inttoptr(ir.Constant(I64, self.cbs["py_from_u64"]), ir.FunctionType(p8, [I64]).as_pointer())
        state = b.inttoptr(self.const(self.state_addr), I64.as_pointer())
        r1 = b.call(as_u64, [b.load(b.gep(args, [ir.Constant(I64, 0)]))])
        kt = b.call(as_u64, [b.load(b.gep(args, [ir.Constant(I64, 1)]))])
        b.store(r1, b.gep(state, [ir.Constant(I32, STATE_REGS + 1)]))
        b.store(kt, b.gep(state, [ir.Constant(I32, STATE_KTIME)]))
        r0 = b.call(fn, [state])
        status = b.load(b.gep(state, [ir.Constant(I32, STATE_STATUS)]))
        stop_bb = f.append_basic_block("stopped")
        ok_bb = f.append_basic_block("returned")
        b.cbranch(b.icmp_unsigned("!=", status, self.const(0)), stop_bb, ok_bb)
        sb = ir.IRBuilder(stop_bb)
        set_none = sb.inttoptr(ir.Constant(I64, self.cbs["py_set_none"]), ir.FunctionType(ir.VoidType(), [p8]).as_pointer())
        sb.call(set_none, [sb.inttoptr(ir.Constant(I64, self.cbs["py_stop_exc"]), p8)])
        sb.ret(ir.Constant(p8, None))
        ob = ir.IRBuilder(ok_bb)
        ob.ret(ob.call(from_u64, [r0]))

    # -- helpers ---------------------------------------------------------------------------------------
    def get(self, b: ir.IRBuilder, r: int) -> Any:
        return b.load(self.regs[r])

    def set(self, b: ir.IRBuilder, r: int, v: Any) -> None:
        b.store(v, self.regs[r])

    def stop(self, b: ir.IRBuilder, status: int, pc: int) -> None:
        """Save the status and the pc into ``state``, then (in the one block every stop shares, which
        keeps the IR small) every register; return 0."""
        b.store(self.const(status), b.gep(self.state, [ir.Constant(I32, STATE_STATUS)]))
        b.store(self.const(pc), b.gep(self.state, [ir.Constant(I32, STATE_PC)]))
        if self.stop_bb is None:
            self.stop_bb = self.fn.append_basic_block("stop")
            sb = ir.IRBuilder(self.stop_bb)
            for i in range(11):
                sb.store(self.get(sb, i), sb.gep(self.state, [ir.Constant(I32, STATE_REGS + i)]))
            sb.ret(self.const(0))
        b.branch(self.stop_bb)

    def check(self, b: ir.IRBuilder, bad: Any, status: int, pc: int) -> ir.IRBuilder:
        """Stop with ``status`` when ``bad``; the builder continues on the good path."""
        fail = self.fn.append_basic_block(f"fail{pc}")
        ok = self.fn.append_basic_block(f"ok{pc}")
        b.cbranch(bad, fail, ok)
        self.stop(ir.IRBuilder(fail), status, pc)
        return ir.IRBuilder(ok)

    # -- memory ----------------------------------------------------------------------------------------
    def address(self, b: ir.IRBuilder, base: int, off: int, size: int, write: bool, pc: int
                ) -> tuple[ir.IRBuilder, Any, Any, Any, Any]:
        """(builder, host pointer, slot, offset, flags) of an access at the exact address, bounds-checked."""
        # the exact address base + off (mod 2**64) picks the region, whatever the sign of off: a
        # pointer just below its region plus a positive offset lands in it (decode.py's slow path)
        a = b.add(self.get(b, base), self.const(off))
        slot = b.lshr(a, self.const(32))
        o = b.and_(a, self.const(M32))
        # the last region used is kept in registers (last_slot/host/size/flags): a loop over one
        # buffer skips the table; every helper call forgets it (a callback may change the regions)
        same = b.icmp_unsigned("==", slot, b.load(self.last_slot))
        look_bb = self.fn.append_basic_block(f"look{pc}")
        have_bb = self.fn.append_basic_block(f"have{pc}")
        b.cbranch(same, have_bb, look_bb)
        lb = ir.IRBuilder(look_bb)
        idx = lb.and_(slot, self.const(TABLE_SIZE - 1))
        tbl = lb.inttoptr(self.table, I64.as_pointer())
        e = lb.gep(tbl, [lb.mul(idx, self.const(4))])
        tag = lb.load(e)
        miss = lb.icmp_unsigned("!=", tag, lb.add(slot, self.const(1)))
        resolve_bb = self.fn.append_basic_block(f"resolve{pc}")
        hit_bb = self.fn.append_basic_block(f"hit{pc}")
        lb.cbranch(miss, resolve_bb, hit_bb)
        rb = ir.IRBuilder(resolve_bb)
        found = rb.call(self.cb(rb, "resolve", RESOLVE_T), [slot])
        rb = self.check(rb, rb.icmp_unsigned("==", found, self.const(0)), STATUS_FAULT, pc)
        rb.branch(hit_bb)
        hb = ir.IRBuilder(hit_bb)
        hb.store(hb.load(hb.gep(e, [ir.Constant(I32, 1)])), self.last_host)
        hb.store(hb.load(hb.gep(e, [ir.Constant(I32, 2)])), self.last_size)
        hb.store(hb.load(hb.gep(e, [ir.Constant(I32, 3)])), self.last_flags)
        hb.store(slot, self.last_slot)
        hb.branch(have_bb)
        b = ir.IRBuilder(have_bb)
        host = b.load(self.last_host)
        rsize = b.load(self.last_size)
        flags = b.load(self.last_flags)
        bad = b.icmp_unsigned(">", b.add(o, self.const(size)), rsize)
        if write:
            bad = b.or_(bad, b.icmp_unsigned("==", b.and_(flags, self.const(FLAG_WRITABLE)), self.const(0)))
        b = self.check(b, bad, STATUS_FAULT, pc)
        ptr = b.inttoptr(b.add(host, o), _ITYPE[size].as_pointer())
        return b, ptr, slot, o, flags

    # -- groups of accesses through one register, checked once ------------------------------------------
    def mem_base(self, ins: Insn) -> tuple[int, int, bool] | None:
        """(base register, size, is a store) of a memory access that needs a region check, else None."""
        c = ins.code
        cls = c & 0x07
        if cls == BPF_LDX and c & 0xE0 in (BPF_MEM, BPF_MEMSX):
            size, reg, store = _SIZES[c & 0x18], ins.src, False
        elif cls in (BPF_ST, BPF_STX) and c & 0xE0 == BPF_MEM:
            size, reg, store = _SIZES[c & 0x18], ins.dst, True
        else:
            return None
        if reg == 10 and -STACK_FRAME <= ins.off <= -size:
            return None  # the frame: direct already
        return reg, size, store

    def group(self, pc: int, leaders: Container[int]) -> tuple[int, int, list[tuple[int, int, bool]]] | None:
        """A run of accesses through one register from ``pc`` on, in one basic block, with that register
        unchanged in between (and no call, jump or exit): (register, end pc, [(off, size, store)]), or None
        for fewer than two such accesses."""
        first = self.mem_base(self.insns[pc])
        if first is None:
            return None
        base = first[0]
        accesses: list[tuple[int, int, bool]] = []
        n = len(self.insns)
        j = pc
        while j < n and (j == pc or j not in leaders):
            ins = self.insns[j]
            c = ins.code
            cls = c & 0x07
            if cls in (BPF_JMP, BPF_JMP32):
                break
            mb = self.mem_base(ins)
            if mb is not None and mb[0] == base:
                accesses.append((ins.off, mb[1], mb[2]))
            elif mb is not None and self.ctx_rewrite and not mb[2]:
                break  # a load that may call back into Python (a rewritten context field) ends the group
            writes = ins.dst if cls in (BPF_ALU, BPF_ALU64, BPF_LDX) or c == LD_IMM64 else None
            j += width(self.insns, j)
            if writes == base:
                break  # (a load into the base register is the group's last access)
        if len(accesses) < 2:
            return None
        return base, j, accesses

    def emit_group(self, b: ir.IRBuilder, pc: int, base: int, end: int, accesses: list[tuple[int, int, bool]]
                   ) -> tuple[ir.IRBuilder, int]:
        """Check once that every access of the group lies in one region (and may write it, and is no
        rewritten context load): then run the group without checks; else run it with a check per access,
        which faults at the very access that would. Either way the same stores and loads happen."""
        lo = min(off for off, _, _ in accesses)
        span = max(off + size for off, size, _ in accesses) - lo
        a0 = b.add(self.get(b, base), self.const(lo))
        slot = b.lshr(a0, self.const(32))
        same = b.icmp_unsigned("==", b.lshr(b.add(a0, self.const(span - 1)), self.const(32)), slot)
        o0 = b.and_(a0, self.const(M32))
        look_bb = self.fn.append_basic_block(f"glook{pc}")
        have_bb = self.fn.append_basic_block(f"ghave{pc}")
        fast_bb = self.fn.append_basic_block(f"gfast{pc}")
        slow_bb = self.fn.append_basic_block(f"gslow{pc}")
        cont = self.fn.append_basic_block(f"gdone{pc}")
        b.cbranch(b.icmp_unsigned("==", slot, b.load(self.last_slot)), have_bb, look_bb)
        lb = ir.IRBuilder(look_bb)
        e = lb.gep(lb.inttoptr(self.table, I64.as_pointer()), [lb.mul(lb.and_(slot, self.const(TABLE_SIZE - 1)),
                                                                     self.const(4))])
        res_bb = self.fn.append_basic_block(f"gres{pc}")
        hit_bb = self.fn.append_basic_block(f"ghit{pc}")
        lb.cbranch(lb.icmp_unsigned("!=", lb.load(e), lb.add(slot, self.const(1))), res_bb, hit_bb)
        rb = ir.IRBuilder(res_bb)
        found = rb.call(self.cb(rb, "resolve", RESOLVE_T), [slot])
        rb.cbranch(rb.icmp_unsigned("==", found, self.const(0)), slow_bb, hit_bb)  # unmapped: the slow path faults
        hb = ir.IRBuilder(hit_bb)
        hb.store(hb.load(hb.gep(e, [ir.Constant(I32, 1)])), self.last_host)
        hb.store(hb.load(hb.gep(e, [ir.Constant(I32, 2)])), self.last_size)
        hb.store(hb.load(hb.gep(e, [ir.Constant(I32, 3)])), self.last_flags)
        hb.store(slot, self.last_slot)
        hb.branch(have_bb)
        b = ir.IRBuilder(have_bb)
        flags = b.load(self.last_flags)
        ok = b.and_(same, b.icmp_unsigned("<=", b.add(o0, self.const(span)), b.load(self.last_size)))
        if any(store for _, _, store in accesses):
            ok = b.and_(ok, b.icmp_unsigned("!=", b.and_(flags, self.const(FLAG_WRITABLE)), self.const(0)))
        if self.ctx_rewrite and not all(store for _, _, store in accesses):
            ok = b.and_(ok, b.icmp_unsigned("==", b.and_(flags, self.const(FLAG_CTX)), self.const(0)))
        host0 = b.sub(b.add(b.load(self.last_host), o0), self.const(lo))
        b.cbranch(ok, fast_bb, slow_bb)
        for bb, direct in ((fast_bb, (base, host0)), (slow_bb, None)):
            gb = ir.IRBuilder(bb)
            self.direct = direct
            self.compact = direct is None
            j = pc
            while j < end:
                gb = self.insn(gb, j)
                j += width(self.insns, j)
            self.direct = None
            self.compact = False
            gb.branch(cont)
        return ir.IRBuilder(cont), end

    def checked(self) -> ir.Function:
        """``i64 checked(i64 addr, i64 size, i64 write)``: the host address of the access, or 0 when it
        faults (unmapped, past the end, or a write to a read-only region). Not inlined."""
        if self._checked is not None:
            return self._checked
        f = ir.Function(self.module, ir.FunctionType(I64, [I64, I64, I64]), name="checked")
        f.linkage = "internal"
        f.attributes.add("noinline")
        self._checked = f
        a, size, write = f.args
        b = ir.IRBuilder(f.append_basic_block("entry"))
        slot = b.lshr(a, self.const(32))
        o = b.and_(a, self.const(M32))
        e = b.gep(b.inttoptr(self.table, I64.as_pointer()), [b.mul(b.and_(slot, self.const(TABLE_SIZE - 1)),
                                                                 self.const(4))])
        res_bb, hit_bb, bad_bb, ok_bb = (f.append_basic_block(x) for x in ("res", "hit", "bad", "ok"))
        b.cbranch(b.icmp_unsigned("!=", b.load(e), b.add(slot, self.const(1))), res_bb, hit_bb)
        rb = ir.IRBuilder(res_bb)
        found = rb.call(self.cb(rb, "resolve", RESOLVE_T), [slot])
        rb.cbranch(rb.icmp_unsigned("==", found, self.const(0)), bad_bb, hit_bb)
        hb = ir.IRBuilder(hit_bb)
        flags = hb.load(hb.gep(e, [ir.Constant(I32, 3)]))
        bad = hb.icmp_unsigned(">", hb.add(o, size), hb.load(hb.gep(e, [ir.Constant(I32, 2)])))
        ro = hb.icmp_unsigned("==", hb.and_(flags, self.const(FLAG_WRITABLE)), self.const(0))
        bad = hb.or_(bad, hb.and_(hb.icmp_unsigned("!=", write, self.const(0)), ro))
        hb.cbranch(bad, bad_bb, ok_bb)
        ir.IRBuilder(bad_bb).ret(self.const(0))
        ob = ir.IRBuilder(ok_bb)
        ob.ret(ob.add(ob.load(ob.gep(e, [ir.Constant(I32, 1)])), o))
        return f

    def compact_ptr(self, b: ir.IRBuilder, reg: int, off: int, size: int, write: bool, pc: int
                    ) -> tuple[ir.IRBuilder, Any]:
        """(builder, host pointer) of an access checked by ``checked``, stopping with a fault when it fails."""
        a = b.add(self.get(b, reg), self.const(off))
        host = b.call(self.checked(), [a, self.const(size), self.const(int(write))])
        b = self.check(b, b.icmp_unsigned("==", host, self.const(0)), STATUS_FAULT, pc)
        return b, b.inttoptr(host, _ITYPE[size].as_pointer())

    def direct_ptr(self, b: ir.IRBuilder, reg: int, off: int, size: int) -> Any:
        """The host pointer of an access through the group's register in its checked-once version, or None."""
        d = self.direct
        if d is None or d[0] != reg:
            return None
        return b.inttoptr(b.add(d[1], self.const(off)), _ITYPE[size].as_pointer())

    def frame_ptr(self, b: ir.IRBuilder, off: int, size: int) -> Any:
        return b.inttoptr(b.add(self.stack_host, self.const(STACK_FRAME + off)), _ITYPE[size].as_pointer())

    def load(self, b: ir.IRBuilder, ins: Insn, pc: int) -> ir.IRBuilder:
        size = _SIZES[ins.code & 0x18]
        signed = ins.code & 0xE0 == BPF_MEMSX
        def ext(bb: ir.IRBuilder, v: Any) -> Any:
            return v if size == 8 else (bb.sext(v, I64) if signed else bb.zext(v, I64))
        if ins.src == 10 and -STACK_FRAME <= ins.off <= -size:
            v = b.load(self.frame_ptr(b, ins.off, size), align=1)
            self.set(b, ins.dst, ext(b, v))
            return b
        dp = self.direct_ptr(b, ins.src, ins.off, size)
        if dp is not None:
            self.set(b, ins.dst, ext(b, b.load(dp, align=1)))
            return b
        if self.compact and not self.ctx_rewrite:
            b, dp = self.compact_ptr(b, ins.src, ins.off, size, False, pc)
            self.set(b, ins.dst, ext(b, b.load(dp, align=1)))
            return b
        b, ptr, slot, o, flags = self.address(b, ins.src, ins.off, size, False, pc)
        if not self.ctx_rewrite:
            v = b.load(ptr, align=1)
            self.set(b, ins.dst, ext(b, v))
            return b
        is_ctx = b.icmp_unsigned("!=", b.and_(flags, self.const(FLAG_CTX)), self.const(0))
        ctx_bb = self.fn.append_basic_block(f"ctx{pc}")
        mem_bb = self.fn.append_basic_block(f"mem{pc}")
        done = self.fn.append_basic_block(f"loaded{pc}")
        b.cbranch(is_ctx, ctx_bb, mem_bb)
        cb = ir.IRBuilder(ctx_bb)
        if len(self.snaps) < MAX_SNAP and ins.off >= 0:
            # a PROG_TEST_RUN loop of a program without stores or helper calls may fill in the rewritten
            # field once (NativeTier.run_repeat); anything else asks Python each time
            i = len(self.snaps)
            self.snaps.append((ins.off, size, signed))
            st = self.state
            valid = cb.load(cb.gep(st, [ir.Constant(I32, STATE_SNAP + 2 * i)]))
            same = cb.and_(cb.icmp_unsigned("==", cb.load(cb.gep(st, [ir.Constant(I32, STATE_CTX_SLOT)])), slot),
                           cb.icmp_unsigned("==", o, self.const(ins.off)))
            use = cb.and_(cb.icmp_unsigned("!=", valid, self.const(0)), same)
            snap_bb = self.fn.append_basic_block(f"snap{pc}")
            call_bb = self.fn.append_basic_block(f"ctxcall{pc}")
            cb.cbranch(use, snap_bb, call_bb)
            sb = ir.IRBuilder(snap_bb)
            self.set(sb, ins.dst, sb.load(sb.gep(st, [ir.Constant(I32, STATE_SNAP + 2 * i + 1)])))
            sb.branch(done)
            cb = ir.IRBuilder(call_bb)
        cv = cb.call(self.cb(cb, "ctx_load", CTX_LOAD_T), [slot, o, self.const(size), self.const(int(signed))])
        self.set(cb, ins.dst, cv)
        cb.store(self.const(M64), self.last_slot)  # Python ran: forget the kept region
        cb.branch(done)
        mb = ir.IRBuilder(mem_bb)
        v = mb.load(ptr, align=1)
        self.set(mb, ins.dst, ext(mb, v))
        mb.branch(done)
        return ir.IRBuilder(done)

    def store(self, b: ir.IRBuilder, ins: Insn, pc: int) -> ir.IRBuilder:
        size = _SIZES[ins.code & 0x18]
        if ins.code & 0x07 == BPF_ST:
            val: Any = ir.Constant(_ITYPE[size], ins.imm & ((1 << (8 * size)) - 1))
        else:
            val = self.get(b, ins.src)
            if size < 8:
                val = b.trunc(val, _ITYPE[size])
        if ins.dst == 10 and -STACK_FRAME <= ins.off <= -size:
            b.store(val, self.frame_ptr(b, ins.off, size), align=1)
            return b
        dp = self.direct_ptr(b, ins.dst, ins.off, size)
        if dp is None and self.compact:
            b, dp = self.compact_ptr(b, ins.dst, ins.off, size, True, pc)
        if dp is not None:
            b.store(val, dp, align=1)
            return b
        b, ptr, _slot, _o, _flags = self.address(b, ins.dst, ins.off, size, True, pc)
        b.store(val, ptr, align=1)
        return b

    # -- instructions ----------------------------------------------------------------------------------
    def insn(self, b: ir.IRBuilder, pc: int) -> ir.IRBuilder:
        ins = self.insns[pc]
        c = ins.code
        cls = c & 0x07
        nxt = pc + width(self.insns, pc)
        if cls in (BPF_ALU, BPF_ALU64):
            self.alu(b, ins)
        elif c == LD_IMM64:
            hi = self.insns[pc + 1]
            self.set(b, ins.dst, self.const(((hi.imm & M32) << 32) | (ins.imm & M32)))
        elif cls == BPF_LDX:
            b = self.load(b, ins, pc)
        elif cls in (BPF_ST, BPF_STX):
            b = self.store(b, ins, pc)
        elif is_exit(ins):
            b.ret(self.get(b, 0))
            return b
        elif c == (BPF_JMP | BPF_CALL) and ins.imm in self.natives:
            b = self.native_call(b, ins.imm, pc)
        elif c == (BPF_JMP | BPF_CALL):
            args = [self.const(ins.imm)] + [self.get(b, i) for i in range(1, 6)]
            r0 = b.call(self.cb(b, "helper", HELPER_T), args)
            self.set(b, 0, r0)
            b.store(self.const(M64), self.last_slot)  # the regions may have changed
            st = b.load(b.gep(self.state, [ir.Constant(I32, STATE_STATUS)]))
            b = self.check(b, b.icmp_unsigned("!=", st, self.const(0)), STATUS_HELPER, pc)
        else:  # jumps
            tgt = jump_target(ins, pc)
            assert tgt is not None
            back = tgt <= pc
            if c & 0xF0 == BPF_JA:
                if back:
                    b = self.spend(b, pc)
                b.branch(self.blocks[tgt])
                return b
            if c == (BPF_JMP | 0xE0):  # may_goto: fall through while the run's counter lasts
                left = b.load(self.may_goto)
                dec = self.fn.append_basic_block(f"maygoto{pc}")
                b.cbranch(b.icmp_signed("<=", left, self.const(0)), self.blocks[tgt], dec)
                db = ir.IRBuilder(dec)
                db.store(db.sub(left, self.const(1)), self.may_goto)
                db.branch(self.blocks[nxt])
                return b
            cond = self.condition(b, ins)
            if back:
                taken = self.fn.append_basic_block(f"back{pc}")
                b.cbranch(cond, taken, self.blocks[nxt])
                tb = self.spend(ir.IRBuilder(taken), pc)
                tb.branch(self.blocks[tgt])
            else:
                b.cbranch(cond, self.blocks[tgt], self.blocks[nxt])
            return b
        return b

    def native_call(self, b: ir.IRBuilder, hid: int, pc: int) -> ir.IRBuilder:
        """A helper done in machine code, falling back to the Python helper when it says so."""
        hg = self.hgen
        assert hg is not None
        if hid == H_KTIME:
            self.uses_ktime = True
            self.set(b, 0, b.load(b.gep(self.state, [ir.Constant(I32, STATE_KTIME)])))
            return b
        if hid == H_CPU:
            self.set(b, 0, b.load(b.gep(self.state, [ir.Constant(I32, STATE_CPU)])))
            return b
        fn = {H_LOOKUP: hg.lookup, H_UPDATE: hg.update, H_PERF: hg.perf_output}[hid]()
        args = [self.state] + [self.get(b, i) for i in range(1, 6)]
        v = b.call(fn, args + [self.okp])
        ok = b.icmp_unsigned("!=", b.load(self.okp), self.const(0))
        fast = self.fn.append_basic_block(f"native{pc}")
        slow = self.fn.append_basic_block(f"callback{pc}")
        done = self.fn.append_basic_block(f"helped{pc}")
        b.cbranch(ok, fast, slow)
        fb = ir.IRBuilder(fast)
        self.set(fb, 0, v)
        fb.branch(done)
        sb = ir.IRBuilder(slow)
        r0 = sb.call(self.cb(sb, "helper", HELPER_T), [self.const(hid)] + args[1:])
        self.set(sb, 0, r0)
        sb.store(self.const(M64), self.last_slot)  # the regions may have changed
        st = sb.load(sb.gep(self.state, [ir.Constant(I32, STATE_STATUS)]))
        sb = self.check(sb, sb.icmp_unsigned("!=", st, self.const(0)), STATUS_HELPER, pc)
        sb.branch(done)
        return ir.IRBuilder(done)

    def spend(self, b: ir.IRBuilder, pc: int) -> ir.IRBuilder:
        """A backward jump spends one unit of the budget, as the interpreter's does."""
        left = b.sub(b.load(self.budget), self.const(1))
        b.store(left, self.budget)
        return self.check(b, b.icmp_signed("<", left, self.const(0)), STATUS_BUDGET, pc)

    def condition(self, b: ir.IRBuilder, ins: Insn) -> Any:
        c = ins.code
        j32 = c & 0x07 == BPF_JMP32
        d = self.get(b, ins.dst)
        s = self.get(b, ins.src) if c & BPF_X else self.const(ins.imm if not j32 else ins.imm & M32)
        if j32:
            d, s = b.trunc(d, I32), b.trunc(s, I32)
        op = c & 0xF0
        zero = ir.Constant(d.type, 0)
        if op == BPF_JSET:
            return b.icmp_unsigned("!=", b.and_(d, s), zero)
        if op in _JMP:
            return b.icmp_unsigned(_JMP[op], d, s)
        return b.icmp_signed(_SJMP[op], d, s)

    def alu(self, b: ir.IRBuilder, ins: Insn) -> None:
        c, off = ins.code, ins.off
        alu64 = c & 0x07 == BPF_ALU64
        op = c & 0xF0
        x = bool(c & BPF_X)
        d = self.get(b, ins.dst)
        if op == BPF_END:
            w = ins.imm
            swap = alu64 or x
            if not swap:
                self.set(b, ins.dst, d if w == 64 else b.and_(d, self.const((1 << w) - 1)))
                return
            if w == 64:
                self.set(b, ins.dst, self.bswap(b, d, I64))
                return
            t = ir.IntType(w)
            self.set(b, ins.dst, b.zext(self.bswap(b, b.trunc(d, t), t), I64))
            return
        s = self.get(b, ins.src) if x else self.const(ins.imm if alu64 else ins.imm & M32)
        if op == BPF_MOV:
            if off:
                v = b.sext(b.trunc(s, ir.IntType(off)), I64 if alu64 else I32)
                self.set(b, ins.dst, v if alu64 else b.zext(v, I64))
            else:
                self.set(b, ins.dst, s if alu64 else b.and_(s, self.const(M32)))
            return
        t = I64 if alu64 else I32
        bits = 64 if alu64 else 32
        if not alu64:
            d, s = b.trunc(d, I32), b.trunc(s, I32)
        zero = ir.Constant(t, 0)
        if op == BPF_ADD:
            v = b.add(d, s)
        elif op == BPF_SUB:
            v = b.sub(d, s)
        elif op == BPF_MUL:
            v = b.mul(d, s)
        elif op == BPF_OR:
            v = b.or_(d, s)
        elif op == BPF_AND:
            v = b.and_(d, s)
        elif op == BPF_XOR:
            v = b.xor(d, s)
        elif op == BPF_NEG:
            v = b.sub(zero, d)
        elif op in (BPF_LSH, BPF_RSH, BPF_ARSH):
            sh = b.and_(s, ir.Constant(t, bits - 1))
            v = b.shl(d, sh) if op == BPF_LSH else b.lshr(d, sh) if op == BPF_RSH else b.ashr(d, sh)
        else:  # DIV / MOD, unsigned (off 0) or signed (off 1): x/0 = 0, x%0 = x, INT_MIN/-1 = INT_MIN
            is_zero = b.icmp_unsigned("==", s, zero)
            safe = is_zero
            if off == 1:
                ovf = b.and_(b.icmp_unsigned("==", d, ir.Constant(t, 1 << (bits - 1))),
                             b.icmp_unsigned("==", s, ir.Constant(t, (1 << bits) - 1)))
                safe = b.or_(is_zero, ovf)
            div = b.select(safe, ir.Constant(t, 1), s)
            if op == BPF_DIV:
                q = b.sdiv(d, div) if off else b.udiv(d, div)
                v = b.select(is_zero, zero, q)
            else:
                r = b.srem(d, div) if off else b.urem(d, div)
                v = b.select(is_zero, d, r)
        self.set(b, ins.dst, v if alu64 else b.zext(v, I64))

    def bswap(self, b: ir.IRBuilder, v: Any, t: ir.IntType) -> Any:
        fn = self.module.declare_intrinsic("llvm.bswap", [t])
        return b.call(fn, [v])


def build_ir(insns: list[Insn], table_addr: int, cbs: dict[str, int], ctx_rewrite: bool,
             natives: frozenset[int] = frozenset(), maptab_addr: int = 0, state_addr: int = 0
             ) -> tuple[str, list[tuple[int, int, bool]], bool, bool]:
    """The LLVM IR text of ``insns`` (``supported`` must have said yes), its context-load snapshot
    slots, whether the program is pure (no stores outside its stack, no helper calls), and whether it
    reads the clock natively (``STATE_KTIME`` must then be set before each run). ``natives``: the helper
    ids to call natively (helpers_ir.py), ``maptab_addr`` their map table; with ``state_addr``, the module
    also has ``i64 run()``, ``prog`` on that state."""
    if len(insns) == 0:
        raise NotCompilable("empty program")
    g = _Gen(insns, table_addr, cbs, ctx_rewrite, natives, maptab_addr, state_addr)
    text = str(g.build())
    pure = not any((i.code & 0x07) in (BPF_ST, BPF_STX) and not (i.dst == 10 and -STACK_FRAME <= i.off < 0)
                   or i.code == (BPF_JMP | BPF_CALL) for i in insns)
    return text, g.snaps, pure, g.uses_ktime
