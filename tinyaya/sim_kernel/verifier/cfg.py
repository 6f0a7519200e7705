"""Structural checks before abstract interpretation: check_subprogs() and check_cfg() of kernel/bpf/verifier.c,
plus the ld_imm64 well-formedness rules of resolve_pseudo_ldimm64().
"""
from __future__ import annotations

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op

from .errors import EINVAL
from .log import VerifierLog


def is_pseudo_call(i: Insn) -> bool:
    return i.code == (op.BPF_JMP | op.BPF_CALL) and i.src == op.BPF_PSEUDO_CALL


def is_pseudo_func(i: Insn) -> bool:
    return i.code == op.LD_IMM64 and i.src == op.BPF_PSEUDO_FUNC


def jump_target(pc: int, i: Insn) -> int:
    if i.code == (op.BPF_JMP32 | op.BPF_JA):
        return pc + i.imm + 1
    return pc + i.off + 1


def is_jump(i: Insn) -> bool:
    cls = op.BPF_CLASS(i.code)
    return cls in (op.BPF_JMP, op.BPF_JMP32) and op.BPF_OP(i.code) not in (op.BPF_CALL, op.BPF_EXIT)


def check_ld_imm64(insns: list[Insn], log: VerifierLog) -> None:
    n = len(insns)
    i = 0
    while i < n:
        ins = insns[i]
        if op.BPF_CLASS(ins.code) == op.BPF_LDX and (
                op.BPF_MODE(ins.code) not in (op.BPF_MEM, op.BPF_MEMSX) or ins.imm != 0):
            raise log.reject(EINVAL, "BPF_LDX uses reserved fields")
        if ins.code == op.LD_IMM64:
            if i == n - 1 or insns[i + 1].code != 0 or insns[i + 1].dst != 0 or insns[i + 1].src != 0 \
                    or insns[i + 1].off != 0:
                raise log.reject(EINVAL, "invalid bpf_ld_imm64 insn")
            if ins.src not in (0, op.BPF_PSEUDO_MAP_FD, op.BPF_PSEUDO_MAP_VALUE, op.BPF_PSEUDO_MAP_IDX,
                               op.BPF_PSEUDO_MAP_IDX_VALUE, op.BPF_PSEUDO_FUNC, op.BPF_PSEUDO_BTF_ID):
                raise log.reject(EINVAL, "unrecognized bpf_ld_imm64 insn")
            i += 2
            continue
        i += 1


def find_subprogs(insns: list[Insn], log: VerifierLog) -> list[int]:
    """add_subprog_and_kfunc() + check_subprogs(): subprogram starts, and jumps stay inside their subprog."""
    n = len(insns)
    starts = {0}
    for pc, i in enumerate(insns):
        if is_pseudo_call(i) or is_pseudo_func(i):
            t = pc + i.imm + 1
            if t < 0 or t >= n:
                raise log.reject(EINVAL, "call to invalid destination" if is_pseudo_call(i)
                                 else "function pointer to invalid destination")
            starts.add(t)
    subs = sorted(starts)
    bounds = subs + [n]
    for k in range(len(subs)):
        lo, hi = bounds[k], bounds[k + 1]
        for pc in range(lo, hi):
            i = insns[pc]
            if is_jump(i) and not (i.code == (op.BPF_JMP | op.BPF_JCOND) and False):
                t = jump_target(pc, i)
                if t < lo or t >= hi:
                    raise log.reject(EINVAL, f"jump out of range from insn {pc} to {t}")
        last = insns[hi - 1]
        if last.code not in (op.BPF_JMP | op.BPF_EXIT, op.BPF_JMP | op.BPF_JA, op.BPF_JMP32 | op.BPF_JA):
            raise log.reject(EINVAL, "last insn is not an exit or jmp")
    return subs


def check_cfg(insns: list[Insn], log: VerifierLog, allow_loops: bool = True) -> list[bool]:
    """Depth-first walk from insn 0: every insn reachable, no jump into a ld_imm64's second slot,
    and (without CAP_BPF) no back-edge. Returns, per insn, whether it is a pruning point (a jump target
    or the insn after a jump)."""
    n = len(insns)
    second = [False] * n
    for pc, i in enumerate(insns):
        if i.code == op.LD_IMM64 and pc + 1 < n:
            second[pc + 1] = True
    prune = [False] * n
    state = [0] * n  # 0 unseen, 1 on stack, 2 done
    stack: list[tuple[int, list[int]]] = []

    def succs(pc: int) -> list[int]:
        i = insns[pc]
        cls = op.BPF_CLASS(i.code)
        if i.code == op.LD_IMM64:
            out = [pc + 2]
            if is_pseudo_func(i):
                out.append(pc + i.imm + 1)
            return out
        if cls not in (op.BPF_JMP, op.BPF_JMP32):
            return [pc + 1]
        o = op.BPF_OP(i.code)
        if o == op.BPF_EXIT:
            return []
        if o == op.BPF_CALL:
            return [pc + 1, pc + i.imm + 1] if is_pseudo_call(i) else [pc + 1]
        t = jump_target(pc, i)
        if o == op.BPF_JA:
            return [t]
        return [pc + 1, t]

    state[0] = 1
    stack.append((0, succs(0)))
    while stack:
        pc, todo = stack[-1]
        if not todo:
            state[pc] = 2
            stack.pop()
            continue
        w = todo.pop(0)
        if w < 0 or w >= n:
            raise log.reject(EINVAL, f"jump out of range from insn {pc} to {w}")
        if second[w]:
            raise log.reject(EINVAL, f"jump into the middle of ldimm64 insn {w - 1}")
        if is_jump(insns[pc]) or (insns[pc].code == (op.BPF_JMP | op.BPF_CALL)):
            prune[w] = True
        if state[w] == 0:
            state[w] = 1
            stack.append((w, succs(w)))
        elif state[w] == 1 and not allow_loops:
            raise log.reject(EINVAL, f"back-edge from insn {pc} to {w}")
    for pc in range(n):
        if state[pc] == 0 and not second[pc]:
            raise log.reject(EINVAL, f"unreachable insn {pc}")
    return prune
