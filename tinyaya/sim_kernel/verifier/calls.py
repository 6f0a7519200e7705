"""Calls and exits: check_helper_call(), check_func_arg(), check_map_func_compatibility(),
check_func_call() / prepare_func_exit() for bpf-to-bpf calls, check_reference_leak() and
check_return_code() (kernel/bpf/verifier.c).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op
from tinyaya.uapi._enums import BpfMapType as M
from tinyaya.uapi._enums import BpfProgType as P
from tinyaya.uapi.helpers import HELPERS, ArgFlag, ArgType, RetType, helper_allowed, helper_name

from .backtrack import mark_chain_precision, mark_slot_precision
from .errors import E2BIG, EACCES, EINVAL, VerifierReject
from .mem import check_helper_mem, check_ptr_off_reg
from .regs import MEM_RINGBUF, PTR_MAYBE_NULL, Reg, RegType, mark_known, mark_not_init, mark_unknown
from .state import FuncState, Ref, state_str

if TYPE_CHECKING:
    from .check import Env

T = RegType
A = ArgType
F = ArgFlag
MAX_CALL_FRAMES = 8
_LAST_FUNC_ID = 211

MEM_TYPES = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
KEY_TYPES = "fp, pkt, pkt_meta, map_key, map_value"
_MEM_OK = (T.PTR_TO_STACK, T.PTR_TO_PACKET, T.PTR_TO_PACKET_META, T.PTR_TO_MAP_KEY, T.PTR_TO_MAP_VALUE, T.PTR_TO_MEM)

#: check_map_func_compatibility(): map types a helper demands, and helpers a special map type allows
_FUNC_MAPS: dict[str, set[int]] = {
    "tail_call": {M.BPF_MAP_TYPE_PROG_ARRAY},
    "perf_event_read": {M.BPF_MAP_TYPE_PERF_EVENT_ARRAY}, "perf_event_output": {M.BPF_MAP_TYPE_PERF_EVENT_ARRAY},
    "get_stackid": {M.BPF_MAP_TYPE_STACK_TRACE},
    "ringbuf_output": {M.BPF_MAP_TYPE_RINGBUF}, "ringbuf_reserve": {M.BPF_MAP_TYPE_RINGBUF},
    "ringbuf_query": {M.BPF_MAP_TYPE_RINGBUF},
    "map_pop_elem": {M.BPF_MAP_TYPE_QUEUE, M.BPF_MAP_TYPE_STACK},
    "map_push_elem": {M.BPF_MAP_TYPE_QUEUE, M.BPF_MAP_TYPE_STACK, M.BPF_MAP_TYPE_BLOOM_FILTER},
    "map_peek_elem": {M.BPF_MAP_TYPE_QUEUE, M.BPF_MAP_TYPE_STACK, M.BPF_MAP_TYPE_BLOOM_FILTER},
    "redirect_map": {M.BPF_MAP_TYPE_DEVMAP, M.BPF_MAP_TYPE_DEVMAP_HASH, M.BPF_MAP_TYPE_CPUMAP,
                     M.BPF_MAP_TYPE_XSKMAP},
    "map_lookup_percpu_elem": {M.BPF_MAP_TYPE_PERCPU_ARRAY, M.BPF_MAP_TYPE_PERCPU_HASH,
                               M.BPF_MAP_TYPE_LRU_PERCPU_HASH},
    "perf_event_read_value": {M.BPF_MAP_TYPE_PERF_EVENT_ARRAY},
    "current_task_under_cgroup": {M.BPF_MAP_TYPE_CGROUP_ARRAY},
    "skb_under_cgroup": {M.BPF_MAP_TYPE_CGROUP_ARRAY},
    "get_local_storage": {M.BPF_MAP_TYPE_CGROUP_STORAGE, M.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE},
}
_MAP_FUNCS: dict[int, set[str]] = {
    M.BPF_MAP_TYPE_PROG_ARRAY: {"tail_call"},
    M.BPF_MAP_TYPE_PERF_EVENT_ARRAY: {"perf_event_read", "perf_event_output", "skb_output",
                                      "perf_event_read_value", "xdp_output"},
    M.BPF_MAP_TYPE_RINGBUF: {"ringbuf_output", "ringbuf_reserve", "ringbuf_query", "ringbuf_reserve_dynptr"},
    M.BPF_MAP_TYPE_STACK_TRACE: {"get_stackid"},
    M.BPF_MAP_TYPE_QUEUE: {"map_peek_elem", "map_pop_elem", "map_push_elem"},
    M.BPF_MAP_TYPE_STACK: {"map_peek_elem", "map_pop_elem", "map_push_elem"},
    M.BPF_MAP_TYPE_BLOOM_FILTER: {"map_peek_elem", "map_push_elem"},
    M.BPF_MAP_TYPE_CGROUP_ARRAY: {"skb_under_cgroup", "current_task_under_cgroup"},
    M.BPF_MAP_TYPE_CGROUP_STORAGE: {"get_local_storage"},
    M.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: {"get_local_storage"},
    M.BPF_MAP_TYPE_DEVMAP: {"redirect_map", "map_lookup_elem"},
    M.BPF_MAP_TYPE_DEVMAP_HASH: {"redirect_map", "map_lookup_elem"},
    M.BPF_MAP_TYPE_CPUMAP: {"redirect_map"},
    M.BPF_MAP_TYPE_XSKMAP: {"redirect_map", "map_lookup_elem"},
    M.BPF_MAP_TYPE_ARRAY_OF_MAPS: {"map_lookup_elem"},
    M.BPF_MAP_TYPE_HASH_OF_MAPS: {"map_lookup_elem"},
}


#: bpf_helper_changes_pkt_data() (net/core/filter.c): after these, every packet pointer is stale
CHANGES_PKT_DATA = frozenset({
    "clone_redirect", "l3_csum_replace", "l4_csum_replace", "lwt_push_encap", "lwt_seg6_action",
    "lwt_seg6_adjust_srh", "lwt_seg6_store_bytes", "msg_pop_data", "msg_pull_data", "msg_push_data",
    "skb_adjust_room", "skb_change_head", "skb_change_proto", "skb_change_tail", "skb_pull_data",
    "skb_store_bytes", "skb_vlan_pop", "skb_vlan_push", "store_hdr_opt", "xdp_adjust_head", "xdp_adjust_meta",
    "xdp_adjust_tail",
})


def clear_all_pkt_pointers(env: Env) -> None:
    """clear_all_pkt_pointers(): packet pointers (and spills of them) become unknown scalars."""
    pkt = (T.PTR_TO_PACKET, T.PTR_TO_PACKET_META, T.PTR_TO_PACKET_END)
    for f in env.state.frames:
        for r in f.regs:
            if r.type in pkt:
                mark_unknown(r)
        for off, (types, sp) in list(f.stack.items()):
            if sp is not None and sp.type in pkt:
                nsp = Reg()
                mark_unknown(nsp)
                f.stack[off] = (types, nsp)


def _is_const_size(r: Reg) -> bool:
    return r.is_scalar


def constant_map_key(env: Env, key: Reg, key_size: int) -> int | None:
    """get_constant_map_key(): the key on the stack is known zero bytes or a spilled constant of key_size."""
    if key.type != T.PTR_TO_STACK or key.var_off[1] != 0:
        return None
    v = key.var_off[0]
    a = key.off + (v - (1 << 64) if v >> 63 else v)
    frame = env.state.frames[key.frameno]
    base = a & ~7
    types, spilled = frame.stack.get(base, ("?" * 8, None))
    b = a - base
    if b + key_size > 8:
        return None
    seg = types[b:b + key_size]
    if seg == "0" * key_size:
        return 0
    if seg == "r" * key_size and b == 0 and spilled is not None and spilled.is_const() and \
            types[:8].count("r") == key_size:
        mark_slot_precision(env, key.frameno, base)
        return int(spilled.var_off[0] & ((1 << (8 * key_size)) - 1))
    return None


def check_call(env: Env, pc: int, i: Insn) -> int | None:
    if i.src == op.BPF_PSEUDO_CALL:
        if i.off or i.dst or op.BPF_SRC(i.code):
            raise env.reject(EINVAL, "BPF_CALL uses reserved fields")
        return check_func_call(env, pc, i)
    if i.src == op.BPF_PSEUDO_KFUNC_CALL:
        raise env.reject(EINVAL, "calling kernel functions is not supported by the simulated kernel")
    if i.off or i.dst or i.src or op.BPF_SRC(i.code):
        raise env.reject(EINVAL, "BPF_CALL uses reserved fields")
    return check_helper_call(env, pc, i.imm)


def check_helper_call(env: Env, pc: int, func_id: int) -> int:
    name = helper_name(func_id)
    if func_id <= 0 or func_id > _LAST_FUNC_ID or name == "unknown":
        raise env.reject(EINVAL, f"invalid func {name}#{func_id}")
    if not helper_allowed(env.prog_type, func_id):
        raise env.reject(EINVAL, f"program of this type cannot use helper {name}#{func_id}")
    proto = HELPERS.get(func_id)
    if proto is None:
        raise env.reject(EINVAL, f"helper {name}#{func_id} is not supported by the simulated kernel")
    if proto.might_sleep and not env.sleepable:
        raise env.reject(EINVAL, "helper call might sleep in a non-sleepable prog")
    if proto.gpl_only and not env.gpl:
        raise env.reject(EINVAL, "cannot call GPL-restricted function from non-GPL compatible program")
    st = env.state
    if st.active_lock and proto.name not in ("spin_unlock", "spin_lock"):
        raise env.reject(EINVAL, "function calls are not allowed while holding a lock")
    if proto.callback_args:
        return check_callback_call(env, pc, func_id, name)
    regs = env.regs
    map_ = None
    cast_ref = 0
    lock_reg: Reg | None = None
    const_key: int | None = None
    release_id = 0
    alloc_size = 0
    for k, (atype, aflags) in enumerate(proto.args):
        regno = k + 1
        r = env.check_reg_read(regno) if atype != A.ARG_DONTCARE else regs[regno]
        maybe_null = bool(aflags & F.PTR_MAYBE_NULL)
        if atype == A.ARG_ANYTHING:
            continue
        if maybe_null and r.is_null():
            continue
        if atype == A.ARG_CONST_MAP_PTR:
            if r.type != T.CONST_PTR_TO_MAP:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected=map_ptr")
            map_ = r.map
        elif atype in (A.ARG_PTR_TO_LONG, A.ARG_PTR_TO_INT):
            if r.type not in _MEM_OK or r.maybe_null:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected={MEM_TYPES}")
            check_helper_mem(env, regno, 8 if atype == A.ARG_PTR_TO_LONG else 4, True, False, True)
        elif atype == A.ARG_PTR_TO_CTX:
            if r.type != T.PTR_TO_CTX:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected=ctx")
            check_ptr_off_reg(env, r, regno, "ctx")
        elif atype in (A.ARG_PTR_TO_MAP_KEY, A.ARG_PTR_TO_MAP_VALUE):
            if r.type not in _MEM_OK[:5] or r.maybe_null:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected={MEM_TYPES}")
            if map_ is None:
                raise env.reject(EACCES, "invalid map_ptr to access map->key" if atype == A.ARG_PTR_TO_MAP_KEY
                                 else "invalid map_ptr to access map->value")
            size = map_.key_size if atype == A.ARG_PTR_TO_MAP_KEY else map_.value_size
            write = bool(aflags & F.MEM_WRITE)
            if size == 0:
                raise env.reject(EACCES, "invalid zero-sized read")
            if atype == A.ARG_PTR_TO_MAP_KEY and func_id == 1:
                const_key = constant_map_key(env, r, size)
            if size or atype == A.ARG_PTR_TO_MAP_VALUE:
                check_helper_mem(env, regno, size, write, False, bool(aflags & F.MEM_UNINIT))
        elif atype == A.ARG_PTR_TO_MEM:
            if r.type not in _MEM_OK or r.maybe_null:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected={MEM_TYPES}")
            nxt = proto.args[k + 1][0] if k + 1 < len(proto.args) else None
            if nxt not in (A.ARG_CONST_SIZE, A.ARG_CONST_SIZE_OR_ZERO):
                raise env.reject(EINVAL, f"{name} has a memory argument without a size")
            # checked together with the size argument (check_mem_size_reg)
        elif atype in (A.ARG_CONST_SIZE, A.ARG_CONST_SIZE_OR_ZERO):
            zero_ok = atype == A.ARG_CONST_SIZE_OR_ZERO
            if not r.is_scalar:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected=scalar")
            mem_regno = regno - 1
            mflags = proto.args[k - 1][1]
            if r.smin < 0:
                raise env.reject(EACCES, f"R{regno} min value is negative, either use unsigned or 'var &= const'")
            if r.umax == 0 and not zero_ok:
                raise env.reject(EACCES, f"R{regno} invalid zero-sized read: u64=[0,0]")
            if r.umax >= 1 << 29:
                raise env.reject(EACCES, f"R{regno} unbounded memory access, use 'var &= const' or "
                                         "'if (var < const)'")
            mark_chain_precision(env, regno)
            mem = regs[mem_regno]
            if maybe_null or not (proto.args[k - 1][1] & F.PTR_MAYBE_NULL and mem.is_null()):
                if r.umin == 0 and zero_ok and r.umax == 0:
                    pass
                else:
                    check_helper_mem(env, mem_regno, r.umax, bool(mflags & F.MEM_WRITE), zero_ok,
                                     bool(mflags & F.MEM_UNINIT))
        elif atype == A.ARG_CONST_ALLOC_SIZE_OR_ZERO:
            if not r.is_scalar:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected=scalar")
            if not r.is_const():
                raise env.reject(EACCES, f"R{regno} is not a known constant'")
            mark_chain_precision(env, regno)
            alloc_size = r.const_value()
        elif atype == A.ARG_PTR_TO_SOCK_COMMON:
            if r.type not in (T.PTR_TO_SOCKET, T.PTR_TO_SOCK_COMMON) or r.maybe_null:
                # sk_fullsock takes ARG_PTR_TO_SOCK_COMMON, sk_assign ARG_PTR_TO_BTF_ID_SOCK_COMMON
                extra = ", ptr_, trusted_ptr_" if proto.name == "sk_assign" else ""
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected=sock_common, sock, tcp_sock, "
                                         f"xdp_sock{extra}")
            cast_ref = r.ref_obj_id
        elif atype == A.ARG_PTR_TO_SOCK_COMMON_RELEASE:
            if r.type not in (T.PTR_TO_SOCKET, T.PTR_TO_SOCK_COMMON) or r.maybe_null:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected=sock_common, sock, tcp_sock, "
                                         "xdp_sock, ptr_, trusted_ptr_")
            if r.off or r.var_off != (0, 0):
                raise env.reject(EINVAL, f"R{regno} must have zero offset when passed to release func or "
                                         "trusted arg to kfunc")
            if not r.ref_obj_id:
                raise env.reject(EINVAL, f"R{regno} must be referenced when passed to release func")
            release_id = r.ref_obj_id
        elif atype == A.ARG_PTR_TO_RINGBUF_MEM:
            if r.type != T.PTR_TO_MEM or not r.flags & MEM_RINGBUF or r.maybe_null:
                raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected=ringbuf_mem")
            if r.off or r.var_off != (0, 0):
                raise env.reject(EINVAL, f"R{regno} must have zero offset when passed to release func or "
                                         "trusted arg to kfunc")
            if not r.ref_obj_id:
                raise env.reject(EACCES, f"R{regno} must be referenced when passed to release func")
            release_id = r.ref_obj_id
        elif atype == A.ARG_PTR_TO_SPIN_LOCK:
            lock_reg = r
            check_spin_lock_arg(env, r, regno)
        elif atype == A.ARG_PTR_TO_CONST_STR:
            if r.type != T.PTR_TO_MAP_VALUE or not (r.map.map_flags & (1 << 7)):
                raise env.reject(EACCES, f"R{regno} does not point to a readonly map'")
        else:
            raise env.reject(EINVAL, f"{name}: argument type {atype.name} is not supported by the simulated kernel")
    # check_map_func_compatibility()
    if map_ is not None:
        mt = map_.map_type
        allowed = _MAP_FUNCS.get(mt)
        needs = _FUNC_MAPS.get(proto.name)
        if proto.name == "tail_call" and mt != M.BPF_MAP_TYPE_PROG_ARRAY:
            env.log.write_partial("expected prog array map for tail call")
            e = VerifierReject(EINVAL, "expected prog array map for tail call", env.log.text())
            e.processed = env.insn_processed  # type: ignore[attr-defined]
            raise e
        if (allowed is not None and proto.name not in allowed) or (needs is not None and mt not in needs):
            raise env.reject(EINVAL, f"cannot pass map_type {mt} into func {name}#{func_id}")
    if release_id:
        ref = next((x for x in env.state.refs if x.id == release_id), None)
        if ref is None:
            raise env.reject(EINVAL, "R1 must be referenced when passed to release func")
        env.state.refs.remove(ref)
        for f in env.state.frames:
            for r in f.regs:
                if r.ref_obj_id == release_id:
                    mark_unknown(r)
            for off, (types, sp) in list(f.stack.items()):
                if sp is not None and sp.ref_obj_id == release_id:
                    nsp = Reg()
                    mark_unknown(nsp)
                    f.stack[off] = (types, nsp)
    if proto.name in CHANGES_PKT_DATA:
        clear_all_pkt_pointers(env)
    for k in range(1, 6):
        mark_not_init(regs[k])
    r0 = regs[0]
    ret = proto.ret_type
    if ret in (RetType.RET_INTEGER,):
        mark_unknown(r0)
    elif ret == RetType.RET_VOID:
        mark_not_init(r0)
    elif ret == RetType.RET_PTR_TO_MAP_VALUE_OR_NULL:
        mark_known(r0, 0)
        r0.type = T.PTR_TO_MAP_VALUE
        r0.flags = PTR_MAYBE_NULL
        r0.map = map_
        r0.id = env.new_id()
        if func_id == 1 and map_ is not None and const_key is not None and \
                map_.map_type in (M.BPF_MAP_TYPE_ARRAY, M.BPF_MAP_TYPE_PERCPU_ARRAY) and \
                0 <= const_key < map_.max_entries:
            # can_elide_value_nullness(): an array lookup with a constant in-range key cannot fail
            r0.flags = 0
            r0.id = 0
    elif ret == RetType.RET_PTR_TO_RINGBUF_MEM_OR_NULL:
        mark_known(r0, 0)
        r0.type = T.PTR_TO_MEM
        r0.flags = PTR_MAYBE_NULL | MEM_RINGBUF
        r0.mem_size = alloc_size
        env.new_id()  # the kernel takes one id for the maybe-NULL pointer and one for the reference
        r0.id = env.new_id()
        r0.ref_obj_id = r0.id
        env.state.refs.append(Ref(r0.id, pc))
    elif ret in (RetType.RET_PTR_TO_SOCKET_OR_NULL, RetType.RET_PTR_TO_SOCK_COMMON_OR_NULL):
        mark_known(r0, 0)
        r0.type = T.PTR_TO_SOCKET if ret == RetType.RET_PTR_TO_SOCKET_OR_NULL else T.PTR_TO_SOCK_COMMON
        r0.flags = PTR_MAYBE_NULL
        if proto.name == "sk_fullsock":
            # is_ptr_cast_function(): the result shares the argument's reference, it takes no new one
            r0.id = env.new_id()
            r0.ref_obj_id = cast_ref
        else:
            env.new_id()
            r0.id = env.new_id()
            r0.ref_obj_id = r0.id
            env.state.refs.append(Ref(r0.id, pc))
    elif ret == RetType.RET_PTR_TO_MAP_VALUE:
        mark_known(r0, 0)
        r0.type = T.PTR_TO_MAP_VALUE
        r0.map = map_
    else:
        mark_known(r0, 0)
        r0.type = T.PTR_TO_BTF_ID
    if proto.name in ("spin_lock", "spin_unlock") and lock_reg is not None:
        # process_spin_lock(): the lock is identified by the map value it lives in
        ident = lock_reg.id or id(lock_reg.map) & 0x7FFFFFFF or 1
        if proto.name == "spin_lock":
            if env.state.active_lock:
                raise env.reject(EINVAL, "Locking two bpf_spin_locks are not allowed")
            env.state.active_lock = ident
            env.state.active_lock_map = lock_reg.map
        else:
            if not env.state.active_lock:
                raise env.reject(EINVAL, "bpf_spin_unlock without taking a lock")
            if env.state.active_lock != ident or env.state.active_lock_map is not lock_reg.map:
                raise env.reject(EINVAL, "bpf_spin_unlock of different lock")
            env.state.active_lock = 0
            env.state.active_lock_map = None
    return pc + 1


def _map_name(m: object) -> str:
    name = getattr(m, "name", b"")
    return name.decode(errors="replace").rstrip("\0") if isinstance(name, bytes) else str(name)


def check_spin_lock_arg(env: Env, r: Reg, regno: int) -> None:
    """process_spin_lock(): a pointer to the map value's ``struct bpf_spin_lock``, at a constant offset."""
    if r.type != T.PTR_TO_MAP_VALUE or r.maybe_null:
        raise env.reject(EACCES, f"R{regno} type={r.type_str()} expected=map_value, ptr_")
    if r.var_off[1] != 0:
        raise env.reject(EINVAL, f"R{regno} doesn't have constant offset. bpf_spin_lock has to be at the constant "
                                 "offset")
    m = r.map
    lock_off = getattr(m, "spin_lock_off", None)
    if lock_off is None or lock_off < 0:
        if getattr(m, "btf", None) is None and getattr(m, "btf_value_type_id", 0) == 0:
            raise env.reject(EINVAL, f"map '{_map_name(m)}' has to have BTF in order to use bpf_spin_lock")
        raise env.reject(EINVAL, f"map '{_map_name(m)}' has no valid bpf_spin_lock")
    off = r.off + r.var_off[0]
    if off != lock_off:
        raise env.reject(EINVAL, f"off {off} doesn't point to 'struct bpf_spin_lock' that is at {lock_off}")


def check_callback_call(env: Env, pc: int, func_id: int, name: str) -> int:
    """bpf_loop / bpf_for_each_map_elem: the helper may call its callback any number of times.

    Like the kernel (push_callback_call, and the callback's exit returning to the call), one path goes on
    after the call (no more calls) and one enters the callback; when the callback returns, the call
    instruction is checked again, so the callback is verified until its entry states repeat.
    """
    regs = env.regs
    is_loop = func_id == 181
    r1 = env.check_reg_read(1)
    map_ = None
    if not is_loop:
        if r1.type != T.CONST_PTR_TO_MAP:
            raise env.reject(EACCES, f"R1 type={r1.type_str()} expected=map_ptr")
        map_ = r1.map
        if map_.map_type not in (M.BPF_MAP_TYPE_HASH, M.BPF_MAP_TYPE_LRU_HASH, M.BPF_MAP_TYPE_ARRAY,
                                 M.BPF_MAP_TYPE_PERCPU_HASH, M.BPF_MAP_TYPE_PERCPU_ARRAY,
                                 M.BPF_MAP_TYPE_LRU_PERCPU_HASH):
            raise env.reject(524, "callback function not allowed for map")  # ENOTSUPP
    fn = env.check_reg_read(2)
    if fn.type != T.PTR_TO_FUNC:
        raise env.reject(EACCES, f"R2 type={fn.type_str()} expected=func")
    ctx = env.check_reg_read(3)
    if not (ctx.type == T.PTR_TO_STACK or ctx.is_null()):
        raise env.reject(EACCES, f"R3 type={ctx.type_str()} expected=fp")
    env.check_reg_read(4)
    if env.state.active_lock:
        raise env.reject(EINVAL, "function calls are not allowed while holding a lock")
    if len(env.state.frames) >= MAX_CALL_FRAMES:
        raise env.reject(E2BIG, f"the call stack of {len(env.state.frames) + 1} frames is too deep !")
    target = fn.subprog
    if target not in env.subprog_starts:
        raise env.reject(EINVAL, f"R2 is not a function: insn {target}")
    # the path that enters the callback
    st = env.state.copy()
    caller = st.cur
    callee = FuncState(len(st.frames), pc, env.subprog_starts.index(target))
    callee.in_callback = True
    if is_loop:
        mark_unknown(callee.regs[1])
        callee.regs[2] = caller.regs[3].copy()
    else:
        callee.regs[1] = caller.regs[1].copy()
        for k, t in ((2, T.PTR_TO_MAP_KEY), (3, T.PTR_TO_MAP_VALUE)):
            r = callee.regs[k]
            mark_known(r, 0)
            r.type = t
            r.map = map_
        callee.regs[4] = caller.regs[3].copy()
    st.frames.append(callee)
    env.push_branch(st, target, pc)
    # the path that leaves the helper
    for k in range(1, 6):
        mark_not_init(regs[k])
    mark_unknown(regs[0])
    return pc + 1


def check_func_call(env: Env, pc: int, i: Insn) -> int:
    st = env.state
    if len(st.frames) >= MAX_CALL_FRAMES:
        raise env.reject(E2BIG, f"the call stack of {len(st.frames) + 1} frames is too deep !")
    if st.active_lock:
        raise env.reject(EINVAL, "function calls are not allowed while holding a lock")
    target = pc + i.imm + 1
    sub = env.subprog_starts.index(target)
    caller = st.cur
    callee = FuncState(len(st.frames), pc, sub)
    for r in range(1, 6):
        callee.regs[r] = caller.regs[r].copy()
    for r in range(1, 6):
        mark_not_init(caller.regs[r])
    st.frames.append(callee)
    if env.log.enabled:
        env.log.write("caller:")
        env.log.write(" " + state_str(caller))
        env.log.write("callee:")
        env.log.write(" " + state_str(callee))
    check_combined_stack(env)
    return target


def check_combined_stack(env: Env) -> None:
    total = 0
    for f in env.state.frames:
        d = env.stack_depth[f.subprog]
        total += max((d + 31) // 32 * 32, 32) if d else 32
    if env.prog_type in (P.BPF_PROG_TYPE_KPROBE, P.BPF_PROG_TYPE_TRACEPOINT, P.BPF_PROG_TYPE_RAW_TRACEPOINT,
                         P.BPF_PROG_TYPE_PERF_EVENT, P.BPF_PROG_TYPE_TRACING):
        return  # these use the JIT's private stack (bpf_enable_priv_stack): no combined limit
    if total > 512 and len(env.state.frames) > 1:
        raise env.reject(EACCES, f"combined stack size of {len(env.state.frames)} calls is {total}. Too large")


def check_exit(env: Env, pc: int) -> int | None:
    st = env.state
    if st.active_lock:
        raise env.reject(EINVAL, "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region"
                         if len(st.frames) == 1 else "bpf_spin_unlock is missing")
    r0 = env.check_reg_read(0)
    if len(st.frames) > 1 and st.cur.in_callback:
        mark_chain_precision(env, 0)
        if not r0.is_scalar:
            raise env.reject(EINVAL, f"At callback return the register R0 is not a known value ({r0.type_str()})")
        if r0.smin < 0 or r0.smax > 1:
            raise env.reject(EINVAL, f"At callback return the register R0 has smin={r0.smin} smax={r0.smax} "
                                     "should have been in [0, 1]")
        callee = st.frames.pop()
        if env.log.enabled:
            env.log.write("returning from callee:")
            env.log.write(" " + state_str(callee))
            env.log.write(f"to caller at {callee.callsite}:")
            env.log.write(" " + state_str(st.cur))
        return callee.callsite
    if len(st.frames) > 1:
        if r0.type == T.PTR_TO_STACK:
            raise env.reject(EINVAL, "cannot return stack pointer to the caller")
        callee = st.frames.pop()
        caller = st.cur
        caller.regs[0] = r0.copy()
        for r in range(1, 6):
            mark_not_init(caller.regs[r])
        if env.log.enabled:
            env.log.write("returning from callee:")
            env.log.write(" " + state_str(callee))
            env.log.write(f"to caller at {callee.callsite + 1}:")
            env.log.write(" " + state_str(caller))
        return callee.callsite + 1
    if st.refs:
        ref = st.refs[0]
        env.log_line(f"Unreleased reference id={ref.id} alloc_insn={ref.insn_idx}")
        raise env.reject(EINVAL, "BPF_EXIT instruction in main prog would lead to reference leak")
    if r0.is_pointer and not env.allow_ptr_leaks:
        raise env.reject(EACCES, "R0 leaks addr as return value")
    check_return_code(env, r0)
    return None


def return_range(prog_type: int, expected_attach_type: int) -> tuple[int, int] | None:
    """The r0 range check_return_code() enforces for a program type (None: any value)."""
    if prog_type == P.BPF_PROG_TYPE_CGROUP_SKB:
        return (0, 3) if expected_attach_type == 1 else (0, 1)
    if prog_type in (P.BPF_PROG_TYPE_CGROUP_SOCK, P.BPF_PROG_TYPE_CGROUP_DEVICE, P.BPF_PROG_TYPE_CGROUP_SYSCTL,
                     P.BPF_PROG_TYPE_SOCK_OPS, P.BPF_PROG_TYPE_CGROUP_SOCKOPT):
        return (0, 1)
    return None


def check_return_code(env: Env, r0: Reg) -> None:
    lo_hi = return_range(env.prog_type, env.expected_attach_type)
    if lo_hi is None:
        return
    mark_chain_precision(env, 0)
    if not r0.is_scalar:
        raise env.reject(EINVAL, f"At program exit the register R0 is not a known value ({r0.type_str()})")
    if r0.smin < lo_hi[0] or r0.smax > lo_hi[1]:
        raise env.reject(EINVAL, f"At program exit the register R0 has smin={r0.smin} smax={r0.smax} "
                                 f"should have been in [{lo_hi[0]}, {lo_hi[1]}]")
