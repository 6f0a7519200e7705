"""do_check(): abstract interpretation of every path through the program (kernel/bpf/verifier.c).

``Env`` holds what ``struct bpf_verifier_env`` holds: the instructions, the program type, the current
state, the stack of branches still to explore, the explored states per pruning point, and counters.
Each instruction is checked as the kernel checks it (check_alu_op, check_mem_access,
check_cond_jmp_op, check_helper_call, check_func_call, prepare_func_exit, check_return_code).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op
from tinyaya.uapi._enums import BpfProgType as P

from . import jumps as _jumps
from . import ptr_alu as _ptr_alu
from . import tnum as tn
from .alu import scalar_alu, scalar_end, scalar_neg
from .backtrack import propagate_precision
from .disasm import annotate_insn, print_insn
from .errors import E2BIG, EACCES, EINVAL, VerifierReject
from .log import VerifierLog
from .mem import check_alignment, check_mem_access
from .regs import (
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
from .state import FuncState, VState, exact_key, init_state, state_str, states_equal

T = RegType
BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000
MAX_CALL_FRAMES = 8
ALU_STR = {op.BPF_ADD: "+=", op.BPF_SUB: "-=", op.BPF_MUL: "*=", op.BPF_DIV: "/=", op.BPF_OR: "|=",
           op.BPF_AND: "&=", op.BPF_LSH: "<<=", op.BPF_RSH: ">>=", op.BPF_NEG: "neg", op.BPF_MOD: "%=",
           op.BPF_XOR: "^=", op.BPF_MOV: "=", op.BPF_ARSH: "s>>=", op.BPF_END: "endian"}
PKT_WRITE_TYPES = {P.BPF_PROG_TYPE_XDP, P.BPF_PROG_TYPE_SCHED_CLS, P.BPF_PROG_TYPE_SCHED_ACT,
                   P.BPF_PROG_TYPE_LWT_XMIT, P.BPF_PROG_TYPE_SK_SKB, P.BPF_PROG_TYPE_SK_MSG,
                   P.BPF_PROG_TYPE_CGROUP_SOCKOPT}


@dataclass(eq=False)
class Explored:
    """An entry of ``explored_states``: a state seen at a pruning point and how many paths below it are
    still being explored (``branches``; 0 means every continuation of it was proven safe)."""

    state: VState
    branches: int
    parent: Explored | None
    miss: int = 0
    hit: int = 0
    #: the instructions from the parent checkpoint to this one (backtrack.py records)
    hist: list[list[object]] = field(default_factory=list)


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
        self.bpf_capable = True  # CAP_BPF
        self.allow_ptr_leaks = True  # CAP_PERFMON: pointers may become scalars, be stored and compared
        self.sleepable = False  # BPF_F_SLEEPABLE
        self.meta_ok_types = {P.BPF_PROG_TYPE_XDP, P.BPF_PROG_TYPE_SCHED_CLS, P.BPF_PROG_TYPE_SCHED_ACT}
        self.state: VState = init_state()
        self.stack_depth: list[int] = []
        self.subprog_starts: list[int] = [0]
        self.prune_points: list[bool] = []
        self.live: list[frozenset[int]] = []
        self.stack_live: list[frozenset[int] | None] = []
        self.bt_info: list[tuple[int, int, int, int]] = []
        self.insn_cls_jmp: list[bool] = []
        self.explored: dict[int, list[Explored]] = {}
        self.loop_keys: dict[tuple[int, tuple[object, ...]], Explored] = {}
        self.branch_stack: list[tuple[VState, int, Explored | None, int, list[list[object]]]] = []
        #: the current path's instructions since its last checkpoint; ``cur_rec`` is the one being checked
        self.hist: list[list[object]] = []
        self.cur_rec: list[object] = [0, 0, None]
        self.parent: Explored | None = None
        self.insn_processed = 0
        self.total_states = 0
        self.peak_states = 0
        self.cur_states = 0
        self.max_states_per_insn = 0
        self.next_id = 0
        self.imm_reg = Reg()
        #: insn_aux_data[].ptr_type: the pointer type each load/store first saw
        self.aux_ptr_type: dict[int, RegType] = {}
        self.insn_idx = 0
        self.prev_insn_processed = 0
        self.jmps_processed = 0
        self.prev_jmps_processed = 0
        #: per instruction: seen by some path (for the compiled tier and dead-code reports)
        self.seen: list[bool] = []
        #: helper calls that take a callback (bpf_loop, bpf_for_each_map_elem): loop heads for pruning
        self.callback_calls: set[int] = set()
        #: may_goto or callback loops: they are pruned against states still being explored, whose precision
        #: marks are not complete yet, so every scalar is compared (the kernel's RANGE_WITHIN for loop entries)
        self.iter_loops = False

    # -- plumbing ------------------------------------------------------------------------------
    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def log_line(self, s: str) -> None:
        self.log.write(s)

    def reject(self, err: int, msg: str) -> VerifierReject:
        e = self.log.reject(err, msg)
        e.processed = self.insn_processed  # type: ignore[attr-defined]
        e.stats = (self.max_states_per_insn, self.total_states)  # type: ignore[attr-defined]
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
        return f"{pc}: {print_insn(self.insns, pc)}"

    def annotate(self, pc: int, line_idx: int) -> None:
        annotate_insn(self, pc, line_idx)

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
                    self.log.rewind(0)
                    return
                st, pc, parent, mark, hist = self.branch_stack.pop()
                self.log.rewind(mark)
                self.state = st
                self.parent = parent
                self.hist = hist
                self.cur_states -= 1
                if self.log.enabled:
                    self.log.write(f"from {st.insn_idx} to {pc}: {state_str(st.cur)}")
                    if self.log.verbose:
                        self.log.write(f"{pc}: {state_str(st.cur)}")
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
            if self.insn_cls_jmp[pc]:
                self.jmps_processed += 1
            self.cur_rec = [pc, len(self.state.frames) - 1, None]
            self.hist.append(self.cur_rec)
            if self.log.enabled:
                line_idx = self.log.mark()
                self.log.write(self.insn_text(pc))
                st_before = self.state
                npc = self.step(pc)
                if npc is not None and self.state is st_before:
                    self.annotate(pc, line_idx)
                pc = npc
            else:
                pc = self.step(pc)

    def push_branch(self, st: VState, pc: int, from_pc: int) -> None:
        st.insn_idx = from_pc
        if self.parent is not None:
            self.parent.branches += 1
        self.branch_stack.append((st, pc, self.parent, self.log.mark(), list(self.hist)))
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
        for k in range(len(frames) - 1):
            callee = frames[k + 1]
            if callee.in_callback:
                # the callback returns to the helper call, which reads its arguments again
                out.append(self.live[callee.callsite])
                continue
            nxt = callee.callsite + 1
            out.append(self.live[nxt] & frozenset(range(6, 10)) if nxt < len(self.live) else frozenset())
        out.append(self.live[pc])
        return out

    def frame_stack_live(self, pc: int) -> list[frozenset[int] | None]:
        frames = self.state.frames
        out: list[frozenset[int] | None] = []
        for k in range(len(frames) - 1):
            callee = frames[k + 1]
            at = callee.callsite if callee.in_callback else callee.callsite + 1
            out.append(self.stack_live[at] if at < len(self.stack_live) else None)
        out.append(self.stack_live[pc])
        return out

    def is_state_visited(self, pc: int) -> bool:
        """is_state_visited(): prune if a fully explored state here covers this one; reject an exact repeat
        of a state still being explored (an infinite loop); otherwise remember this state."""
        cur = self.state
        entries = self.explored.setdefault(pc, [])
        live = self.frame_live(pc)
        slive = self.frame_stack_live(pc)
        callback_call = pc in self.callback_calls
        is_may_goto = self.insns[pc].code == (op.BPF_JMP | op.BPF_JCOND) or callback_call
        looping = False
        for e in entries:
            if e.branches > 0:
                looping = True
                if is_may_goto and (e.state.may_goto_depth != cur.may_goto_depth or callback_call) \
                        and states_equal(e.state, cur, live, slots_live=slive, all_precise=self.iter_loops):
                    saved = self.insn_idx
                    propagate_precision(self, e.state, live)
                    self.insn_idx = saved
                    return True
                continue
            if states_equal(e.state, cur, live, slots_live=slive, all_precise=self.iter_loops):
                e.hit += 1
                saved = self.insn_idx
                propagate_precision(self, e.state, live)
                self.insn_idx = saved
                return True
            e.miss += 1
        key = None
        if looping and not callback_call:
            key = exact_key(cur, live)
            old = self.loop_keys.get((pc, key))
            if old is not None and old.branches > 0:
                self.log_line(f"infinite loop detected at insn {pc}")
                self.log_line(f"cur state: {state_str(cur.cur)}")
                raise self.reject(EINVAL, f"old state: {state_str(old.state.cur)}")
        # evict explored states that keep failing to prune (the kernel's miss_cnt heuristic)
        if len(entries) > 8 and self.insn_processed - self.prev_insn_processed >= 100:
            entries[:] = [e for e in entries if e.branches > 0 or e.miss <= 3 * e.hit + 3]
        if is_may_goto:
            prog = [e for e in entries if e.branches > 0]
            if prog:
                widen(cur, prog[-1].state)
        # when to remember a state (the kernel's heuristics): a forced checkpoint, or at least 2 jumps and
        # 8 instructions since the last one; inside a loop, at least 20 jumps or 100 instructions
        force = is_may_goto or self.jmps_processed - self.prev_jmps_processed > 40
        jmps = self.jmps_processed - self.prev_jmps_processed
        insns = self.insn_processed - self.prev_insn_processed
        add = force or (jmps >= 2 and insns >= 8)
        if looping and not force and jmps < 20 and insns < 100:
            add = False
        if not add:
            return False
        self.prev_insn_processed = self.insn_processed
        self.prev_jmps_processed = self.jmps_processed
        if len(entries) >= 64:
            done = [e for e in entries if e.branches == 0]
            if done:
                entries.remove(done[0])
        e = Explored(cur.copy(), 1, self.parent)
        e.hist = self.hist
        self.hist = []
        # forget the precision marks this path inherited (mark_all_scalars_imprecise): new ones flow back
        for f in cur.frames:
            for r in f.regs:
                r.precise = False
        entries.append(e)
        self.loop_keys[(pc, key if key is not None else exact_key(cur, live))] = e
        self.parent = e
        self.total_states += 1
        self.peak_states = max(self.peak_states, sum(len(v) for v in self.explored.values())
                               if self.total_states % 64 == 0 else self.peak_states)
        self.max_states_per_insn = max(self.max_states_per_insn, len(entries))
        return False

    # -- delegated checks (jumps.py, ptr_alu.py) ----------------------------------------------------
    def check_cond_jmp(self, pc: int, i: Insn) -> int | None:
        return _jumps.check_cond_jmp(self, pc, i)

    def ptr_alu(self, i: Insn, dst: Reg, src: Reg, alu64: bool, o: int) -> None:
        _ptr_alu.ptr_alu(self, i, dst, src, alu64, o)

    def mark_ptr_or_null(self, st: VState, id_: int, is_null: bool) -> None:
        _jumps.mark_ptr_or_null(self, st, id_, is_null)

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
        was_precise = dst.precise
        scalar_alu(dst, src, o, not alu64, i.off == 1)
        # the result's history is dst's (and src's): it stays marked only if theirs is
        dst.precise = was_precise and (not x or src.precise)

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
        self.save_aux_ptr_type(i.src)
        self.regs[i.dst].assign(out)

    def save_aux_ptr_type(self, regno: int) -> None:
        """save_aux_ptr_type(): one load/store instruction must always see the same kind of pointer when
        either is rewritten per type (ctx fields, sockets); Linux refuses it otherwise."""
        t = self.regs[regno].type
        prev = self.aux_ptr_type.get(self.insn_idx)
        if prev is None:
            self.aux_ptr_type[self.insn_idx] = t
            return
        rewritten = (T.PTR_TO_CTX, T.PTR_TO_SOCKET, T.PTR_TO_SOCK_COMMON, T.PTR_TO_BTF_ID)
        if prev != t and (prev in rewritten or t in rewritten):
            raise self.reject(EINVAL, "same insn cannot be used with different pointers")

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
        self.save_aux_ptr_type(i.dst)

    def check_st(self, i: Insn) -> None:
        if op.BPF_MODE(i.code) != op.BPF_MEM or i.src:
            raise self.reject(EINVAL, "BPF_ST uses reserved fields")
        size = op.SIZE_BYTES[op.BPF_SIZE(i.code)]
        self.check_reg_read(i.dst)
        mark_known(self.imm_reg, i.imm & ((1 << (size * 8)) - 1) if size < 8 else i.imm)
        check_mem_access(self, i.dst, i.off, size, True, -1, None)
        self.save_aux_ptr_type(i.dst)

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
        desc = {T.PTR_TO_STACK: "stack ", T.PTR_TO_MAP_VALUE: "value ", T.PTR_TO_MEM: ""}.get(dst.type, "")
        check_alignment(self, dst, i.off, size, desc)
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
