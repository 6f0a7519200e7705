"""do_check(): abstract interpretation of every path through the program (kernel/bpf/verifier.c).

``Env`` holds what ``struct bpf_verifier_env`` holds: the instructions, the program type, the current
state, the stack of branches still to explore, the explored states per pruning point, and counters.
Each instruction is checked as the kernel checks it (check_alu_op, check_mem_access,
check_cond_jmp_op, check_helper_call, check_func_call, prepare_func_exit, check_return_code).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op
from tinyaya.uapi._enums import BpfProgType as P

from . import tnum as tn
from .alu import scalar_alu, scalar_end, scalar_neg
from .branches import REV, branch_taken, feasible, refine
from .errors import E2BIG, EACCES, EINVAL, VerifierReject
from .log import VerifierLog
from .mem import BPF_MAX_VAR_OFF, check_mem_access
from .regs import (
    PTR_MAYBE_NULL,
    S64_MIN,
    Reg,
    RegType,
    coerce_reg_to_size,
    coerce_subreg_to_size_sx,
    mark_known,
    mark_not_init,
    mark_unknown,
    reg_bounds_sync,
    reg_str,
    zext_32_to_64,
)
from .state import FuncState, VState, init_state, state_str, states_equal

T = RegType
BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000
MAX_CALL_FRAMES = 8
ALU_STR = {op.BPF_ADD: "+=", op.BPF_SUB: "-=", op.BPF_MUL: "*=", op.BPF_DIV: "/=", op.BPF_OR: "|=",
           op.BPF_AND: "&=", op.BPF_LSH: "<<=", op.BPF_RSH: ">>=", op.BPF_NEG: "neg", op.BPF_MOD: "%=",
           op.BPF_XOR: "^=", op.BPF_MOV: "=", op.BPF_ARSH: "s>>=", op.BPF_END: "endian"}
PKT_WRITE_TYPES = {P.BPF_PROG_TYPE_XDP, P.BPF_PROG_TYPE_SCHED_CLS, P.BPF_PROG_TYPE_SCHED_ACT,
                   P.BPF_PROG_TYPE_LWT_XMIT, P.BPF_PROG_TYPE_SK_SKB, P.BPF_PROG_TYPE_SK_MSG}


@dataclass(eq=False)
class Explored:
    """An entry of ``explored_states``: a state seen at a pruning point and how many paths below it are
    still being explored (``branches``; 0 means every continuation of it was proven safe)."""

    state: VState
    branches: int
    parent: Explored | None


class Env:
    def __init__(self, insns: list[Insn], prog_type: int, gpl: bool, log: VerifierLog,
                 resolve_ld_imm64: Callable[[int, Insn, Insn], Reg], expected_attach_type: int = 0) -> None:
        self.insns = insns
        self.prog_type = prog_type
        self.expected_attach_type = expected_attach_type
        self.gpl = gpl
        self.log = log
        self.resolve_ld_imm64 = resolve_ld_imm64
        self.allow_uninit_stack = True  # CAP_PERFMON (bpf_allow_uninit_stack)
        self.meta_ok_types = {P.BPF_PROG_TYPE_XDP, P.BPF_PROG_TYPE_SCHED_CLS, P.BPF_PROG_TYPE_SCHED_ACT}
        self.state: VState = init_state()
        self.stack_depth: list[int] = []
        self.subprog_starts: list[int] = [0]
        self.prune_points: list[bool] = []
        self.live: list[frozenset[int]] = []
        self.explored: dict[int, list[Explored]] = {}
        self.branch_stack: list[tuple[VState, int, Explored | None, int]] = []
        self.parent: Explored | None = None
        self.insn_processed = 0
        self.total_states = 0
        self.peak_states = 0
        self.cur_states = 0
        self.max_states_per_insn = 0
        self.next_id = 0
        self.imm_reg = Reg()
        self.insn_idx = 0
        self.prev_insn_processed = 0
        #: per instruction: seen by some path (for the compiled tier and dead-code reports)
        self.seen: list[bool] = []

    # -- plumbing ------------------------------------------------------------------------------
    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def log_line(self, s: str) -> None:
        self.log.write(s)

    def reject(self, err: int, msg: str) -> VerifierReject:
        e = self.log.reject(err, msg)
        e.processed = self.insn_processed  # type: ignore[attr-defined]
        return e

    def reject_silent(self, err: int, msg: str) -> VerifierReject:
        e = VerifierReject(err, msg, self.log.text())
        e.processed = self.insn_processed  # type: ignore[attr-defined]
        return e

    def may_write_packet(self) -> bool:
        return self.prog_type in PKT_WRITE_TYPES

    @property
    def regs(self) -> list[Reg]:
        return self.state.cur.regs

    def check_reg_read(self, regno: int) -> Reg:
        if regno > 10:
            raise self.reject(EINVAL, f"R{regno} is invalid")
        r = self.regs[regno]
        if r.type == T.NOT_INIT:
            raise self.reject(EACCES, f"R{regno} !read_ok")
        return r

    def check_reg_write(self, regno: int) -> Reg:
        if regno > 10:
            raise self.reject(EINVAL, f"R{regno} is invalid")
        if regno == 10:
            raise self.reject(EACCES, "frame pointer is read only")
        return self.regs[regno]

    def insn_text(self, pc: int) -> str:
        try:
            from tinyaya.isa.disasm import disasm_insn
            text = disasm_insn(self.insns, pc, mcpu="v4")
        except Exception:  # the log is best effort; verification never depends on it
            text = "?"
        return f"{pc}: ({self.insns[pc].code:02x}) {text}"

    # -- the main loop ---------------------------------------------------------------------------
    def do_check(self) -> None:
        insns = self.insns
        n = len(insns)
        self.seen = [False] * n
        self.log.write(f"0: {state_str(self.state.cur)}")
        pc: int | None = 0
        while True:
            if pc is None:
                self.update_branch_counts(self.parent)
                if not self.branch_stack:
                    return
                st, pc, parent, mark = self.branch_stack.pop()
                self.log.rewind(mark)
                self.state = st
                self.parent = parent
                self.cur_states -= 1
                if self.log.enabled:
                    self.log.write(f"from {st.insn_idx} to {pc}: {state_str(st.cur)}")
            assert pc is not None
            self.insn_processed += 1
            if self.insn_processed > BPF_COMPLEXITY_LIMIT_INSNS:
                raise self.reject(E2BIG, f"BPF program is too large. Processed {self.insn_processed} insn")
            if pc >= n or pc < 0:
                raise self.reject(EINVAL, f"invalid insn idx {pc} insn_cnt {n}")
            self.insn_idx = pc
            self.seen[pc] = True
            if self.prune_points[pc] and self.is_state_visited(pc):
                if self.log.verbose:
                    self.log.write(f"{pc}: safe")
                pc = None
                continue
            if self.log.enabled:
                self.log.write(self.insn_text(pc))
            pc = self.step(pc)

    def push_branch(self, st: VState, pc: int, from_pc: int) -> None:
        st.insn_idx = from_pc
        if self.parent is not None:
            self.parent.branches += 1
        self.branch_stack.append((st, pc, self.parent, self.log.mark()))
        self.cur_states += 1
        if len(self.branch_stack) > 8192:
            raise self.reject(E2BIG, f"The sequence of {len(self.branch_stack)} jumps is too complex.")

    def update_branch_counts(self, e: Explored | None) -> None:
        while e is not None:
            e.branches -= 1
            if e.branches > 0:
                break
            e = e.parent

    def frame_live(self, pc: int) -> list[frozenset[int]]:
        frames = self.state.frames
        out: list[frozenset[int]] = []
        for f in frames[:-1]:
            nxt = f.callsite + 1
            out.append(self.live[nxt] & frozenset(range(6, 10)) if nxt < len(self.live) else frozenset())
        out.append(self.live[pc])
        return out

    def is_state_visited(self, pc: int) -> bool:
        cur = self.state
        entries = self.explored.setdefault(pc, [])
        live = self.frame_live(pc)
        is_may_goto = self.insns[pc].code == (op.BPF_JMP | op.BPF_JCOND)
        looping = False
        for e in entries:
            if e.branches > 0:
                looping = True
                if is_may_goto and e.state.may_goto_depth != cur.may_goto_depth and \
                        states_equal(e.state, cur, live):
                    return True
                if e.state.may_goto_depth == cur.may_goto_depth and states_equal(e.state, cur, live, exact=True):
                    self.log_line(f"infinite loop detected at insn {pc}")
                    self.log_line(f"cur state: {state_str(cur.cur)}")
                    raise self.reject(EINVAL, f"old state: {state_str(e.state.cur)}")
                continue
            if states_equal(e.state, cur, live):
                return True
        if is_may_goto:
            prog = [e for e in entries if e.branches > 0]
            if prog:
                widen(cur, prog[-1].state)
        if looping and not is_may_goto and self.insn_processed - self.prev_insn_processed < 100:
            return False
        self.prev_insn_processed = self.insn_processed
        if len(entries) >= 64:
            done = [e for e in entries if e.branches == 0]
            if done:
                entries.remove(done[0])
        e = Explored(cur.copy(), 1, self.parent)
        entries.append(e)
        self.parent = e
        self.total_states += 1
        self.peak_states = max(self.peak_states, sum(len(v) for v in self.explored.values())
                               if self.total_states % 64 == 0 else self.peak_states)
        self.max_states_per_insn = max(self.max_states_per_insn, len(entries))
        return False

    # -- one instruction -------------------------------------------------------------------------
    def step(self, pc: int) -> int | None:
        i = self.insns[pc]
        cls = op.BPF_CLASS(i.code)
        if cls in (op.BPF_ALU, op.BPF_ALU64):
            self.check_alu(i)
            return pc + 1
        if cls == op.BPF_LDX:
            self.check_ldx(i)
            return pc + 1
        if cls == op.BPF_STX:
            self.check_stx(i)
            return pc + 1
        if cls == op.BPF_ST:
            self.check_st(i)
            return pc + 1
        if cls == op.BPF_LD:
            return self.check_ld(pc, i)
        if cls in (op.BPF_JMP, op.BPF_JMP32):
            from .calls import check_call, check_exit
            o = op.BPF_OP(i.code)
            if o == op.BPF_CALL:
                if cls == op.BPF_JMP32:
                    raise self.reject(EINVAL, f"unknown opcode {i.code:02x}")
                return check_call(self, pc, i)
            if o == op.BPF_EXIT:
                if cls == op.BPF_JMP32 or i.src or i.dst or i.off or i.imm or op.BPF_SRC(i.code):
                    raise self.reject(EINVAL, "BPF_EXIT uses reserved fields")
                return check_exit(self, pc)
            if o == op.BPF_JA:
                if op.BPF_SRC(i.code) or i.src or i.dst or (i.imm if cls == op.BPF_JMP else i.off):
                    raise self.reject(EINVAL, "BPF_JA uses reserved fields")
                return pc + 1 + (i.off if cls == op.BPF_JMP else i.imm)
            if o == op.BPF_JCOND:
                if cls != op.BPF_JMP or i.src or i.dst or i.imm or op.BPF_SRC(i.code):
                    raise self.reject(EINVAL, "invalid may_goto imm 0" if cls == op.BPF_JMP else
                                      f"unknown opcode {i.code:02x}")
                other = self.state.copy()
                self.push_branch(other, pc + 1 + i.off, pc)
                self.state.may_goto_depth += 1
                return pc + 1
            if o > op.BPF_JSLE:
                raise self.reject(EINVAL, f"unknown opcode {i.code:02x}")
            return self.check_cond_jmp(pc, i)
        raise self.reject(EINVAL, f"unknown opcode {i.code:02x}")

    # -- ALU -------------------------------------------------------------------------------------
    def check_alu(self, i: Insn) -> None:
        alu64 = op.BPF_CLASS(i.code) == op.BPF_ALU64
        o = op.BPF_OP(i.code)
        x = op.BPF_SRC(i.code) == op.BPF_X
        if o in (op.BPF_NEG, op.BPF_END):
            if o == op.BPF_NEG:
                if x or i.src or i.off or i.imm:
                    raise self.reject(EINVAL, "BPF_NEG uses reserved fields")
            elif i.src or i.off or i.imm not in (16, 32, 64) or (alu64 and x):
                raise self.reject(EINVAL, "BPF_END uses reserved fields")
            dst = self.check_reg_read(i.dst)
            self.check_reg_write(i.dst)
            if dst.is_pointer:
                raise self.reject(EACCES, f"R{i.dst} pointer arithmetic prohibited")
            if o == op.BPF_NEG:
                scalar_neg(dst, not alu64)
            else:
                scalar_end(dst, bool(x), i.imm, alu64)
            return
        if o == op.BPF_MOV:
            if x:
                ok_off = (0, 8, 16, 32) if alu64 else (0, 8, 16)
                if i.off not in ok_off or i.imm:
                    raise self.reject(EINVAL, "BPF_MOV uses reserved fields")
            elif i.src or i.off:
                raise self.reject(EINVAL, "BPF_MOV uses reserved fields")
            if x:
                src = self.check_reg_read(i.src)
            dst = self.check_reg_write(i.dst)
            if not x:
                mark_known(dst, i.imm if alu64 else i.imm & 0xFFFFFFFF)
                return
            if i.off:
                new = src.copy()
                if new.is_pointer:
                    mark_unknown(new)
                if alu64:
                    coerce_subreg_to_size_sx(new, i.off // 8)
                else:
                    coerce_subreg_to_size_sx(new, i.off // 8)
                    coerce_reg_to_size(new, 4)
                new.id = 0
                dst.assign(new)
                return
            if alu64:
                if src.is_scalar and not src.is_const():
                    if not src.id:
                        src.id = self.new_id()
                dst.assign(src)
                return
            new = src.copy()
            if new.is_pointer:
                mark_unknown(new)
                new.var_off = (0, 0xFFFFFFFF)
                reg_bounds_sync(new)
            else:
                new.id = 0
                coerce_reg_to_size(new, 4)
            dst.assign(new)
            return
        if o > op.BPF_END:
            raise self.reject(EINVAL, f"unknown opcode {i.code:02x}")
        if x:
            if i.imm or i.off not in (0, 1) or (i.off == 1 and o not in (op.BPF_DIV, op.BPF_MOD)):
                raise self.reject(EINVAL, "BPF_ALU uses reserved fields")
        elif i.src or i.off not in (0, 1) or (i.off == 1 and o not in (op.BPF_DIV, op.BPF_MOD)):
            raise self.reject(EINVAL, "BPF_ALU uses reserved fields")
        if x:
            src = self.check_reg_read(i.src)
        dst = self.check_reg_read(i.dst)
        self.check_reg_write(i.dst)
        if not x:
            if o in (op.BPF_DIV, op.BPF_MOD) and i.imm == 0:
                raise self.reject(EINVAL, "div by zero")
            if o in (op.BPF_LSH, op.BPF_RSH, op.BPF_ARSH) and not 0 <= i.imm < (64 if alu64 else 32):
                raise self.reject(EINVAL, f"invalid shift {i.imm}")
            src = Reg()
            mark_known(src, i.imm)
        if dst.is_pointer or src.is_pointer:
            self.ptr_alu(i, dst, src, alu64, o)
            return
        scalar_alu(dst, src, o, not alu64, i.off == 1)

    def ptr_alu(self, i: Insn, dst: Reg, src: Reg, alu64: bool, o: int) -> None:
        """adjust_ptr_min_max_vals() and the pointer cases of adjust_reg_min_max_vals()."""
        d = i.dst
        if dst.is_pointer and src.is_pointer:
            if o == op.BPF_SUB and alu64:
                mark_unknown(dst)
                return
            raise self.reject(EACCES, f"R{d} pointer {ALU_STR[o]} pointer prohibited")
        if not alu64:
            if o == op.BPF_SUB:
                mark_unknown(dst)
                return
            raise self.reject(EACCES, f"R{d} 32-bit pointer arithmetic prohibited")
        ptr, off = (dst, src) if dst.is_pointer else (src, dst)
        if ptr.maybe_null:
            raise self.reject(EACCES, f"R{d} pointer arithmetic on {ptr.type_str()} prohibited, null-check it first")
        known = off.is_const()
        if ptr.type == T.CONST_PTR_TO_MAP and not (known and off.var_off[0] == 0 and o == op.BPF_ADD):
            raise self.reject(EACCES, f"R{d} pointer arithmetic on {ptr.type_str()} prohibited")
        if ptr.type in (T.PTR_TO_PACKET_END, T.PTR_TO_FUNC, T.PTR_TO_BTF_ID) or \
                (ptr.type == T.PTR_TO_MEM and ptr.flags & 0x400 and False):
            raise self.reject(EACCES, f"R{d} pointer arithmetic on {ptr.type_str()} prohibited")
        if o == op.BPF_SUB and dst is off:
            raise self.reject(EACCES, f"R{d} tried to subtract pointer from scalar")
        if o in (op.BPF_AND, op.BPF_OR, op.BPF_XOR):
            raise self.reject(EACCES, f"R{d} bitwise operator {ALU_STR[o]} on pointer prohibited")
        if o not in (op.BPF_ADD, op.BPF_SUB):
            raise self.reject(EACCES, f"R{d} pointer arithmetic with {ALU_STR[o]} operator prohibited")
        tname = ptr.type_str()
        smin = off.smin
        if o == op.BPF_SUB and ptr.type == T.PTR_TO_STACK:
            raise self.reject(EACCES, f"R{d} subtraction from stack pointer prohibited")
        if known and not (-BPF_MAX_VAR_OFF < smin < BPF_MAX_VAR_OFF):
            raise self.reject(EINVAL, f"math between {tname} pointer and {smin} is not allowed")
        if smin == S64_MIN:
            raise self.reject(EINVAL, f"math between {tname} pointer and register with unbounded min value "
                                      "is not allowed")
        if not known and off.smin <= -BPF_MAX_VAR_OFF:
            raise self.reject(EINVAL, f"value {off.smin} makes {tname} pointer be out of bounds")
        if not known and off.smax >= BPF_MAX_VAR_OFF:
            raise self.reject(EINVAL, f"value {off.smax} makes {tname} pointer be out of bounds")
        res = ptr.copy()
        if known:
            v = off.var_off[0]
            sv = v - (1 << 64) if v >> 63 else v
            res.off = ptr.off + (sv if o == op.BPF_ADD else -sv)
            if not -BPF_MAX_VAR_OFF < res.off < BPF_MAX_VAR_OFF:
                raise self.reject(EACCES, f"{tname} pointer offset {res.off} is not allowed")
        else:
            tmp = Reg()
            tmp.assign(ptr)
            tmp.type = T.SCALAR_VALUE
            scalar_alu(tmp, off, o, False)
            res.var_off, res.smin, res.smax, res.umin, res.umax = tmp.var_off, tmp.smin, tmp.smax, tmp.umin, tmp.umax
            res.s32_min, res.s32_max, res.u32_min, res.u32_max = tmp.s32_min, tmp.s32_max, tmp.u32_min, tmp.u32_max
            if res.type in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META):
                res.id = self.new_id()
                res.range = 0
        if res.type in (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META) and known and o == op.BPF_SUB:
            res.range = 0
        dst.assign(res)

    # -- loads and stores ---------------------------------------------------------------------------
    def check_ldx(self, i: Insn) -> None:
        size = op.SIZE_BYTES[op.BPF_SIZE(i.code)]
        sx = op.BPF_MODE(i.code) == op.BPF_MEMSX
        if sx and size == 8:
            raise self.reject(EINVAL, f"unknown opcode {i.code:02x}")
        self.check_reg_read(i.src)
        self.check_reg_write(i.dst)
        out = Reg()
        check_mem_access(self, i.src, i.off, size, False, -1, out, sx)
        self.regs[i.dst].assign(out)

    def check_stx(self, i: Insn) -> None:
        mode = op.BPF_MODE(i.code)
        size = op.SIZE_BYTES[op.BPF_SIZE(i.code)]
        if mode == op.BPF_ATOMIC:
            self.check_atomic(i, size)
            return
        if mode != op.BPF_MEM or i.imm:
            raise self.reject(EINVAL, "BPF_STX uses reserved fields")
        self.check_reg_read(i.src)
        self.check_reg_read(i.dst)
        check_mem_access(self, i.dst, i.off, size, True, i.src, None)

    def check_st(self, i: Insn) -> None:
        if op.BPF_MODE(i.code) != op.BPF_MEM or i.src:
            raise self.reject(EINVAL, "BPF_ST uses reserved fields")
        size = op.SIZE_BYTES[op.BPF_SIZE(i.code)]
        self.check_reg_read(i.dst)
        mark_known(self.imm_reg, i.imm & ((1 << (size * 8)) - 1) if size < 8 else i.imm)
        check_mem_access(self, i.dst, i.off, size, True, -1, None)

    def check_atomic(self, i: Insn, size: int) -> None:
        ok = {op.BPF_ADD, op.BPF_OR, op.BPF_AND, op.BPF_XOR}
        if i.imm not in ok | {x | op.BPF_FETCH for x in ok} | {op.BPF_XCHG, op.BPF_CMPXCHG}:
            raise self.reject(EINVAL, f"BPF_ATOMIC uses invalid atomic opcode {i.imm & 0xff:02x}")
        if size not in (4, 8):
            raise self.reject(EINVAL, "invalid atomic operand size")
        self.check_reg_read(i.src)
        self.check_reg_read(i.dst)
        if i.imm == op.BPF_CMPXCHG:
            self.check_reg_read(0)
        if self.regs[i.src].is_pointer:
            raise self.reject(EACCES, f"R{i.src} leaks addr into mem")
        dst = self.regs[i.dst]
        if dst.type in (T.PTR_TO_CTX, T.PTR_TO_PACKET, T.PTR_TO_PACKET_META, T.PTR_TO_FLOW_KEYS):
            raise self.reject(EACCES, f"BPF_ATOMIC stores into R{i.dst} {dst.type_str()} is not allowed")
        fetch = bool(i.imm & op.BPF_FETCH)
        load_reg = 0 if i.imm == op.BPF_CMPXCHG else i.src
        if dst.var_off[1] == 0:
            v = dst.var_off[0] - (1 << 64) if dst.var_off[0] >> 63 else dst.var_off[0]
            if (v + dst.off + i.off) % size:
                desc = {T.PTR_TO_STACK: "stack ", T.PTR_TO_MAP_VALUE: "value ", T.PTR_TO_MEM: ""}.get(dst.type, "")
                raise self.reject(EACCES, f"misaligned {desc}access off {v}+{dst.off}+{i.off} size {size}")
        out = Reg()
        check_mem_access(self, i.dst, i.off, size, False, -1, out)
        check_mem_access(self, i.dst, i.off, size, True, -1 if fetch else i.src, None)
        if fetch:
            if out.is_pointer:
                raise self.reject(EACCES, f"R{load_reg} leaks addr into mem")
            self.regs[load_reg].assign(out)
            if size == 4:
                coerce_reg_to_size(self.regs[load_reg], 4)

    def check_ld(self, pc: int, i: Insn) -> int:
        mode = op.BPF_MODE(i.code)
        if i.code == op.LD_IMM64:
            if i.off:
                raise self.reject(EINVAL, "invalid BPF_LD_IMM insn")
            dst = self.check_reg_write(i.dst)
            dst.assign(self.resolve_ld_imm64(pc, i, self.insns[pc + 1]))
            return pc + 2
        if mode in (op.BPF_ABS, op.BPF_IND):
            if self.prog_type not in (P.BPF_PROG_TYPE_SOCKET_FILTER, P.BPF_PROG_TYPE_SCHED_CLS,
                                      P.BPF_PROG_TYPE_SCHED_ACT):
                raise self.reject(EINVAL, "BPF_LD_[ABS|IND] instructions not allowed for this program type")
            if i.dst or i.off or op.BPF_SIZE(i.code) == op.BPF_DW or (mode == op.BPF_ABS and i.src):
                raise self.reject(EINVAL, "BPF_LD_[ABS|IND] uses reserved fields")
            r6 = self.check_reg_read(6)
            if mode == op.BPF_IND:
                self.check_reg_read(i.src)
            if self.state.refs:
                raise self.reject(EINVAL, "BPF_LD_[ABS|IND] cannot be mixed with socket references")
            if r6.type != T.PTR_TO_CTX:
                raise self.reject(EINVAL, "at the time of BPF_LD_ABS|IND R6 != pointer to skb")
            for r in range(6):
                mark_not_init(self.regs[r])
            mark_unknown(self.regs[0])
            return pc + 1
        raise self.reject(EINVAL, f"unknown opcode {i.code:02x}")

    # -- conditional jumps -------------------------------------------------------------------------
    def check_cond_jmp(self, pc: int, i: Insn) -> int | None:
        jmp32 = op.BPF_CLASS(i.code) == op.BPF_JMP32
        o = op.BPF_OP(i.code)
        x = op.BPF_SRC(i.code) == op.BPF_X
        if x and i.imm or not x and i.src:
            raise self.reject(EINVAL, "BPF_JMP/JMP32 uses reserved fields")
        dst = self.check_reg_read(i.dst)
        if x:
            src = self.check_reg_read(i.src)
        else:
            src = Reg()
            mark_known(src, i.imm if not jmp32 else i.imm & 0xFFFFFFFF)
            if not jmp32:
                mark_known(src, i.imm)
        target = pc + 1 + i.off
        taken_state = self.state.copy()
        # pointer cases
        if dst.is_pointer or src.is_pointer:
            return self.ptr_cond(pc, i, o, jmp32, x, target, taken_state)
        t = branch_taken(dst, src, o, jmp32)
        if t == 1:
            return target
        if t == 0:
            return pc + 1
        # both possible: refine each side
        tregs = taken_state.cur.regs
        tdst = tregs[i.dst]
        tsrc = tregs[i.src] if x else src.copy()
        refine(tdst, tsrc, o, jmp32)
        fsrc = src if x else src.copy()
        refine(dst, fsrc, REV[o], jmp32)
        taken_ok = feasible(tdst) and feasible(tsrc)
        fall_ok = feasible(dst) and feasible(fsrc)
        if taken_ok:
            self.sync_linked(taken_state, tdst)
            if x:
                self.sync_linked(taken_state, tsrc)
        if fall_ok:
            self.sync_linked(self.state, dst)
            if x:
                self.sync_linked(self.state, src)
        if taken_ok and fall_ok:
            self.push_branch(taken_state, target, pc)
            return pc + 1
        if taken_ok:
            self.state = taken_state
            return target
        if fall_ok:
            return pc + 1
        return None

    def sync_linked(self, st: VState, reg: Reg) -> None:
        """sync_linked_regs(): scalars copied from one another share an id and learn the same bounds."""
        if not reg.is_scalar or not reg.id:
            return
        for f in st.frames:
            for r in f.regs:
                if r is not reg and r.is_scalar and r.id == reg.id:
                    keep = r.id
                    r.assign(reg)
                    r.id = keep

    def ptr_cond(self, pc: int, i: Insn, o: int, jmp32: bool, x: bool, target: int, taken: VState) -> int | None:
        dst = self.regs[i.dst]
        src = self.regs[i.src] if x else None
        other = src
        is_zero = (not x and i.imm == 0) or (other is not None and other.is_null())
        if not jmp32 and o in (op.BPF_JEQ, op.BPF_JNE) and is_zero and dst.is_pointer:
            if dst.maybe_null:
                # mark_ptr_or_null_regs(): on one side it is NULL, on the other a valid pointer
                null_st, ok_st = (taken, self.state) if o == op.BPF_JEQ else (self.state, taken)
                self.mark_ptr_or_null(null_st, dst.id, True)
                self.mark_ptr_or_null(ok_st, dst.id, False)
                self.push_branch(taken, target, pc)
                return pc + 1
            if dst.type != T.PTR_TO_BTF_ID:
                # a pointer that cannot be NULL: the branch is decided
                return target if o == op.BPF_JNE else pc + 1
        if not jmp32 and src is not None and o in (op.BPF_JGT, op.BPF_JGE, op.BPF_JLT, op.BPF_JLE):
            pkt = (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META)
            if dst.type in pkt and src.type == T.PTR_TO_PACKET_END:
                self.pkt_compare(taken, dst, o, True)
            elif dst.type == T.PTR_TO_PACKET_END and src.type in pkt:
                self.pkt_compare(taken, src, o, False)
            elif dst.type == T.PTR_TO_PACKET_META and src.type == T.PTR_TO_PACKET:
                pass
        self.push_branch(taken, target, pc)
        return pc + 1

    def pkt_compare(self, taken: VState, pkt: Reg, o: int, pkt_is_dst: bool) -> None:
        """find_good_pkt_pointers(): on the side where ``pkt <= pkt_end`` holds, every packet pointer with
        the same id may access ``pkt.off`` bytes."""
        # normalise to "pkt OP end"
        oo = o if pkt_is_dst else {op.BPF_JGT: op.BPF_JLT, op.BPF_JLT: op.BPF_JGT, op.BPF_JGE: op.BPF_JLE,
                                   op.BPF_JLE: op.BPF_JGE}[o]
        # which side knows pkt <= end (or pkt < end)
        good_on_taken = oo in (op.BPF_JLT, op.BPF_JLE)
        st = taken if good_on_taken else self.state
        rng = max(pkt.off, 0)
        if pkt.var_off != (0, 0) and pkt.umax >= BPF_MAX_VAR_OFF:
            return
        for f in st.frames:
            for r in f.regs:
                if r.type == pkt.type and r.id == pkt.id and r.range < rng:
                    r.range = rng
            for k, (types, sp) in list(f.stack.items()):
                if sp is not None and sp.type == pkt.type and sp.id == pkt.id and sp.range < rng:
                    sp2 = sp.copy()
                    sp2.range = rng
                    f.stack[k] = (types, sp2)

    def mark_ptr_or_null(self, st: VState, id_: int, is_null: bool) -> None:
        if not id_:
            return
        ref = next((r for r in st.refs if r.id == id_), None)
        if is_null and ref is not None:
            st.refs.remove(ref)

        def fix(r: Reg) -> Reg:
            if r.id != id_ or not (r.flags & PTR_MAYBE_NULL):
                return r
            if is_null:
                nr = Reg()
                mark_known(nr, 0)
                return nr
            nr = r.copy()
            nr.flags &= ~PTR_MAYBE_NULL
            if nr.type == T.PTR_TO_MAP_VALUE:
                nr.id = 0
            return nr

        for f in st.frames:
            for k, r in enumerate(f.regs):
                nr = fix(r)
                if nr is not r:
                    f.regs[k] = nr
            for off, (types, sp) in list(f.stack.items()):
                if sp is not None:
                    nsp = fix(sp)
                    if nsp is not sp:
                        f.stack[off] = (types, nsp)


def widen(cur: VState, old: VState) -> None:
    """Forget the scalar values that changed since ``old`` (a may_goto loop's earlier iteration), so the next
    iteration falls within this state and is pruned: sound, since the result over-approximates both."""
    for fc, fo in zip(cur.frames, old.frames, strict=False):
        for k in range(10):
            rc, ro = fc.regs[k], fo.regs[k]
            if rc.is_scalar and ro.is_scalar and not (rc.var_off == ro.var_off and rc.umin == ro.umin
                                                      and rc.umax == ro.umax and rc.smin == ro.smin
                                                      and rc.smax == ro.smax):
                mark_unknown(rc)
        for off, (types, sp) in list(fc.stack.items()):
            osl = fo.stack.get(off)
            if sp is not None and sp.is_scalar and (osl is None or osl[1] is None or osl[1].var_off != sp.var_off):
                nsp = Reg()
                mark_unknown(nsp)
                fc.stack[off] = (types, nsp)


def new_frame(frameno: int, callsite: int, subprog: int) -> FuncState:
    return FuncState(frameno, callsite, subprog)


__all__ = ["Env", "Explored", "new_frame", "reg_str", "tn", "zext_32_to_64", "Any"]
