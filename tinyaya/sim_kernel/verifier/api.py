"""Entry points: ``verify`` (PROG_LOAD), ``verify_insns`` (bare instructions), ``bench_verify``."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tinyaya.isa import Insn, ld_imm64_value
from tinyaya.isa import opcodes as op

from .backtrack import decode_for_backtrack
from .cfg import check_cfg, check_ld_imm64, find_subprogs
from .check import Env
from .errors import EFAULT, EINVAL, VerifierReject
from .liveness import compute_live_in, compute_stack_live
from .log import VerifierLog
from .regs import Reg, RegType, mark_known

T = RegType
Resolver = Callable[[int, Insn, Insn], Reg]


def _map_reg(m: Any, value_off: int | None) -> Reg:
    r = Reg()
    mark_known(r, 0)
    if value_off is None:
        r.type = T.CONST_PTR_TO_MAP
    else:
        r.type = T.PTR_TO_MAP_VALUE
        r.off = value_off
    r.map = m
    return r


def _resolver_for_kernel(kernel: Any, prog: Any, log: VerifierLog) -> Resolver:
    """ld_imm64 after ``resolve_pseudo_ldimm64``: map addresses, as the architecture notes describe."""
    def resolve(pc: int, lo: Insn, hi: Insn) -> Reg:
        v = ld_imm64_value(lo, hi)
        if lo.src == 0:
            r = Reg()
            mark_known(r, v)
            return r
        if lo.src in (op.BPF_PSEUDO_MAP_FD, op.BPF_PSEUDO_MAP_IDX):
            region = kernel.aspace.regions.get(v >> 32)
            if region is None or region.owner is None:
                raise log.reject(EINVAL, f"fd {lo.imm} is not pointing to valid bpf_map")
            return _map_reg(region.owner, None)
        if lo.src in (op.BPF_PSEUDO_MAP_VALUE, op.BPF_PSEUDO_MAP_IDX_VALUE):
            for m in getattr(prog, "used_maps", []):
                va = getattr(m, "value_addr", None)
                if va is None:
                    continue
                try:
                    base = int(va(0))
                except OSError:
                    continue
                if base <= v < base + max(m.value_size, 1):
                    return _map_reg(m, v - base)
            raise log.reject(EINVAL, "invalid access to map value pointer")
        return _pseudo_other(pc, lo, log)
    return resolve


def _pseudo_other(pc: int, lo: Insn, log: VerifierLog) -> Reg:
    if lo.src == op.BPF_PSEUDO_FUNC:
        r = Reg()
        mark_known(r, 0)
        r.type = T.PTR_TO_FUNC
        r.subprog = pc + lo.imm + 1
        return r
    raise log.reject(EINVAL, "ld_imm64 with BPF_PSEUDO_BTF_ID is not supported by the simulated kernel")


def resolver_for_fds(maps: dict[int, Any], log: VerifierLog) -> Resolver:
    """ld_imm64 before resolution: the imm is a map fd (and, for MAP_VALUE, the next slot's imm the offset)."""
    def resolve(pc: int, lo: Insn, hi: Insn) -> Reg:
        if lo.src == 0:
            r = Reg()
            mark_known(r, ld_imm64_value(lo, hi))
            return r
        if lo.src in (op.BPF_PSEUDO_MAP_FD, op.BPF_PSEUDO_MAP_VALUE):
            m = maps.get(lo.imm)
            if m is None:
                raise log.reject(EINVAL, f"fd {lo.imm} is not pointing to valid bpf_map")
            if lo.src == op.BPF_PSEUDO_MAP_FD:
                if hi.imm:
                    raise log.reject(EINVAL, "unrecognized bpf_ld_imm64 insn")
                return _map_reg(m, None)
            off = hi.imm & 0xFFFFFFFF
            if m.map_type != 2 or m.max_entries != 1 and False:
                raise log.reject(EINVAL, "no direct value access support for this map type")
            if off >= m.value_size:
                raise log.reject(EACCES_, f"invalid access to map value pointer, value_size={m.value_size} off={off}")
            return _map_reg(m, off)
        return _pseudo_other(pc, lo, log)
    return resolve


EACCES_ = 13


BPF_F_SLEEPABLE = 1 << 4


def _run(insns: list[Insn], prog_type: int, gpl: bool, log: VerifierLog, resolve: Resolver,
         expected_attach_type: int = 0, func_info: list[tuple[int, int]] | None = None,
         attach_btf_id: int = 0, prog_flags: int = 0, privileged: bool = True) -> Env:
    if not insns:
        raise log.reject(EINVAL, "empty program")
    subs = find_subprogs(insns, log)
    check_ld_imm64(insns, log)
    check_btf_func(insns, subs, func_info, log)
    # without CAP_BPF there are no bounded loops: every back-edge is refused (check_cfg)
    prune = check_cfg(insns, log, allow_loops=privileged)
    env = Env(insns, prog_type, gpl, log, resolve, expected_attach_type)
    env.sleepable = bool(prog_flags & BPF_F_SLEEPABLE)
    # CAP_BPF / CAP_PERFMON: bpf_capable, allow_ptr_leaks, allow_uninit_stack
    env.bpf_capable = env.allow_ptr_leaks = env.allow_uninit_stack = privileged
    env.subprog_starts = subs
    env.stack_depth = [0] * len(subs)
    # kernel pruning points: jump targets, fall-throughs of jumps, and every call
    env.prune_points = prune
    env.iter_loops = any(i.code == (op.BPF_JMP | op.BPF_JCOND) or (i.code == (op.BPF_JMP | op.BPF_CALL) and i.src == 0
                                                                   and i.imm in (164, 181)) for i in insns)
    for pc, ins in enumerate(insns):
        if ins.code == (op.BPF_JMP | op.BPF_CALL) and ins.src == 0 and ins.imm in (164, 181):
            env.callback_calls.add(pc)
            prune[pc] = True
        if ins.code == op.LD_IMM64 and ins.src == op.BPF_PSEUDO_FUNC and 0 <= pc + ins.imm + 1 < len(insns):
            prune[pc + ins.imm + 1] = True
    env.live = compute_live_in(insns, subs)
    env.stack_live = compute_stack_live(insns, subs)
    env.bt_info = decode_for_backtrack(insns)
    env.insn_cls_jmp = [op.BPF_CLASS(i.code) in (op.BPF_JMP, op.BPF_JMP32) for i in insns]
    env.do_check()
    return env


def check_btf_func(insns: list[Insn], subs: list[int], func_info: list[tuple[int, int]] | None,
                   log: VerifierLog) -> None:
    """check_btf_func(): func_info describes the subprograms exactly; callbacks need it."""
    if func_info:
        if len(func_info) != len(subs):
            raise log.reject(EINVAL, "number of funcs in func_info doesn't match number of subprogs")
        for (off, _tid), start in zip(func_info, subs, strict=True):
            if off != start:
                raise log.reject(EINVAL, "func_info BTF section doesn't match subprog layout in BPF program")
        return
    for ins in insns:
        if ins.code == op.LD_IMM64 and ins.src == op.BPF_PSEUDO_FUNC:
            raise log.reject(EINVAL, "missing btf func_info")


def parse_func_info(prog: Any) -> list[tuple[int, int]] | None:
    import struct
    data = getattr(prog, "func_info", b"") or b""
    rs = int(getattr(prog, "func_info_rec_size", 0) or 0)
    if not data or rs < 8:
        return None
    return [struct.unpack_from("<II", data, k) for k in range(0, len(data) - rs + 1, rs)]


def _summary(env: Env) -> str:
    return (f"processed {env.insn_processed} insns (limit 1000000) max_states_per_insn "
            f"{env.max_states_per_insn} total_states {env.total_states} peak_states {env.total_states} "
            f"mark_read 0")


def verify_insns(insns: list[Insn], prog_type: int, *, maps: dict[int, Any] | None = None, gpl: bool = True,
                 log_level: int = 0, expected_attach_type: int = 0,
                 resolve: Resolver | None = None, func_info: list[tuple[int, int]] | None = None,
                 attach_btf_id: int = 0, prog_flags: int = 0, privileged: bool = True) -> tuple[int, str]:
    """Verify a bare instruction list. Returns (processed insns, log); raises VerifierReject."""
    log = VerifierLog(log_level)
    res = resolve or resolver_for_fds(maps or {}, log)
    env: Env | None = None
    try:
        env = _run(insns, prog_type, gpl, log, res, expected_attach_type, func_info, attach_btf_id, prog_flags,
                   privileged)
    except VerifierReject as e:
        if log.level:
            log.write(f"processed {_processed(e, log)}")
        e.log = log.text()
        raise
    except Exception as e:  # noqa: BLE001 - a verifier bug must not escape PROG_LOAD as a traceback
        raise _internal_error(e, log) from None
    log.write(_summary(env))
    return env.insn_processed, log.text()


def _internal_error(e: BaseException, log: VerifierLog) -> VerifierReject:
    """What Linux does on a verifier bug (``verifier bug`` warnings): the load fails with EFAULT."""
    return log.reject(EFAULT, f"verifier bug: {type(e).__name__}: {e}")


def verify(kernel: Any, prog: Any, log: Any) -> None:
    """PROG_LOAD's verifier: raises VerifierReject (an OSError with Linux's errno) on rejection."""
    level = int(getattr(log, "level", 0) or 0)
    # BPF_LOG_LEVEL1 = 1, BPF_LOG_LEVEL2 = 2, BPF_LOG_STATS = 4 (only the summary line)
    mylog = VerifierLog(2 if level & 2 else 1 if level & 1 else 0)
    stats_only = bool(level & 4) and not level & 3
    lic = getattr(prog, "gpl_compatible", True)
    env: Env | None = None
    try:
        env = _run(list(prog.insns), int(prog.prog_type), bool(lic), mylog,
                   _resolver_for_kernel(kernel, prog, mylog), int(getattr(prog, "expected_attach_type", 0)),
                   parse_func_info(prog), int(getattr(prog, "attach_btf_id", 0) or 0),
                   int(getattr(prog, "prog_flags", 0) or 0), bool(getattr(kernel, "privileged", True)))
    except VerifierReject as e:
        if mylog.level:
            mylog.write(f"processed {_processed(e, mylog)}")
        _flush(mylog, log)
        e.log = mylog.text()
        raise
    except Exception as e:  # noqa: BLE001 - a verifier bug must not escape PROG_LOAD as a traceback
        err = _internal_error(e, mylog)
        _flush(mylog, log)
        raise err from None
    mylog.write(_summary(env))
    if stats_only:
        write = getattr(log, "write", None)
        if write is not None:
            write(_summary(env) + "\n")
    _flush(mylog, log)
    prog.verified_insns = env.insn_processed
    prog.stack_depth = list(env.stack_depth)
    prog.insn_seen = list(env.seen)


def _processed(e: VerifierReject, log: VerifierLog) -> str:
    """``N insns (limit 1000000) max_states_per_insn M total_states T peak_states P mark_read 0``, less the
    leading word, for a rejected program."""
    m, t = getattr(e, "stats", (0, 0))
    return (f"{int(getattr(e, 'processed', 0))} insns (limit 1000000) max_states_per_insn {m} total_states {t} "
            f"peak_states {t} mark_read 0")


def _flush(mine: VerifierLog, theirs: Any) -> None:
    write = getattr(theirs, "write", None)
    if write is None or not mine.level:
        return
    write(mine.text())


def bench_verify(insns: list[Insn], prog_type: int, maps: dict[int, Any] | None = None,
                 repeat: int = 1) -> dict[str, float]:
    """For ``make bench``: verify ``repeat`` times; returns seconds per verification, processed insns and
    nanoseconds per processed instruction."""
    t0 = time.perf_counter()
    processed = 0
    for _ in range(repeat):
        processed, _log = verify_insns(insns, prog_type, maps=maps)
    dt = (time.perf_counter() - t0) / max(repeat, 1)
    return {"seconds": dt, "processed_insns": processed, "ns_per_insn": dt * 1e9 / max(processed, 1)}
