"""Helper prototypes: ``struct bpf_func_proto`` for the helpers tinyaya knows, and which program types
may call which helper.

Argument and return types follow the kernel's ``bpf_func_proto``s (kernel/bpf/helpers.c,
kernel/trace/bpf_trace.c, kernel/bpf/ringbuf.c, net/core/filter.c, kernel/bpf/stackmap.c). The verifier
checks calls against them; the VM (tinyaya.sim_kernel.vm) implements the semantics.

``HELPER_AVAILABILITY`` was measured on Linux 6.18 as root (CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN):
for each program type, the helper ids for which BPF_PROG_LOAD did not say ``program of this type
cannot use helper`` or ``invalid func``. It mirrors each type's ``get_func_proto`` callback.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from ._enums import BpfFuncId, BpfProgType


class ArgType(IntEnum):
    """enum bpf_arg_type (base types; flags are in ``ArgFlag``)."""

    ARG_DONTCARE = 0
    ARG_CONST_MAP_PTR = 1
    ARG_PTR_TO_MAP_KEY = 2
    ARG_PTR_TO_MAP_VALUE = 3
    ARG_PTR_TO_MEM = 4
    ARG_CONST_SIZE = 5
    ARG_CONST_SIZE_OR_ZERO = 6
    ARG_PTR_TO_CTX = 7
    ARG_ANYTHING = 8
    ARG_PTR_TO_SPIN_LOCK = 9
    ARG_PTR_TO_RINGBUF_MEM = 10  # ARG_PTR_TO_MEM | MEM_RINGBUF | OBJ_RELEASE in the kernel
    ARG_CONST_ALLOC_SIZE_OR_ZERO = 11
    ARG_PTR_TO_FUNC = 12
    ARG_PTR_TO_STACK = 13
    ARG_PTR_TO_CONST_STR = 14
    ARG_PTR_TO_LONG = 15  # ARG_PTR_TO_FIXED_SIZE_MEM of 8 bytes, written by the helper
    ARG_PTR_TO_INT = 16  # ARG_PTR_TO_FIXED_SIZE_MEM of 4 bytes, written by the helper
    ARG_PTR_TO_SOCK_COMMON_RELEASE = 17  # ARG_PTR_TO_BTF_ID_SOCK_COMMON | OBJ_RELEASE (sk_release)
    ARG_PTR_TO_SOCK_COMMON = 18  # ARG_PTR_TO_BTF_ID_SOCK_COMMON (sk_assign, sk_fullsock)


class ArgFlag(IntFlag):
    NONE = 0
    PTR_MAYBE_NULL = 1
    MEM_RDONLY = 2
    MEM_UNINIT = 4  # the helper writes the memory; it need not be initialised
    MEM_WRITE = 8


class RetType(IntEnum):
    """enum bpf_return_type."""

    RET_INTEGER = 0
    RET_VOID = 1
    RET_PTR_TO_MAP_VALUE_OR_NULL = 2
    RET_PTR_TO_RINGBUF_MEM_OR_NULL = 3  # RET_PTR_TO_MEM | MEM_RINGBUF | PTR_MAYBE_NULL
    RET_PTR_TO_BTF_ID = 4  # a trusted kernel object (get_current_task_btf)
    RET_PTR_TO_MAP_VALUE = 5  # never NULL (get_local_storage)
    RET_PTR_TO_SOCKET_OR_NULL = 6  # a referenced struct bpf_sock (sk_lookup_tcp/udp)
    RET_PTR_TO_SOCK_COMMON_OR_NULL = 7  # a referenced struct bpf_sock (skc_lookup_tcp)


Arg = tuple[ArgType, ArgFlag]
A = ArgType
F = ArgFlag


@dataclass(frozen=True)
class FuncProto:
    func_id: int
    name: str
    ret_type: RetType
    args: tuple[Arg, ...]
    gpl_only: bool = False
    #: the callback's argument count for helpers that take a subprogram (bpf_loop, for_each_map_elem)
    callback_args: int = 0
    #: only sleepable programs may call it (``bpf_func_proto.might_sleep``)
    might_sleep: bool = False

    @property
    def full_name(self) -> str:
        return f"bpf_{self.name}"


def _a(t: ArgType, f: ArgFlag = F.NONE) -> Arg:
    return (t, f)


ANY = _a(A.ARG_ANYTHING)
MAP = _a(A.ARG_CONST_MAP_PTR)
KEY = _a(A.ARG_PTR_TO_MAP_KEY)
CTX = _a(A.ARG_PTR_TO_CTX)
MEM_RO = _a(A.ARG_PTR_TO_MEM, F.MEM_RDONLY)
MEM_RO_NULL = _a(A.ARG_PTR_TO_MEM, F.MEM_RDONLY | F.PTR_MAYBE_NULL)
UNINIT = _a(A.ARG_PTR_TO_MEM, F.MEM_UNINIT | F.MEM_WRITE)
SIZE = _a(A.ARG_CONST_SIZE)
SIZE0 = _a(A.ARG_CONST_SIZE_OR_ZERO)
R = RetType
_INT = R.RET_INTEGER


def _p(name: str, ret: RetType, *args: Arg, gpl: bool = False, cb: int = 0, sleep: bool = False) -> FuncProto:
    return FuncProto(int(BpfFuncId[f"BPF_FUNC_{name}"]), name, ret, tuple(args), gpl, cb, sleep)


_PROTOS = [
    _p("map_lookup_elem", R.RET_PTR_TO_MAP_VALUE_OR_NULL, MAP, KEY),
    _p("map_update_elem", _INT, MAP, KEY, _a(A.ARG_PTR_TO_MAP_VALUE), ANY),
    _p("map_delete_elem", _INT, MAP, KEY),
    _p("probe_read", _INT, UNINIT, SIZE0, ANY, gpl=True),
    _p("ktime_get_ns", _INT),
    _p("trace_printk", _INT, MEM_RO, SIZE, gpl=True),
    _p("get_prandom_u32", _INT),
    _p("get_smp_processor_id", _INT),
    _p("skb_store_bytes", _INT, CTX, ANY, MEM_RO, SIZE, ANY),
    _p("tail_call", R.RET_VOID, CTX, MAP, ANY),
    _p("get_current_pid_tgid", _INT),
    _p("get_current_uid_gid", _INT),
    _p("get_current_comm", _INT, UNINIT, SIZE),
    _p("get_cgroup_classid", _INT, CTX),
    _p("perf_event_read", _INT, MAP, ANY),
    _p("redirect", _INT, ANY, ANY),
    _p("perf_event_output", _INT, CTX, MAP, ANY, MEM_RO, SIZE0, gpl=True),
    _p("skb_load_bytes", _INT, CTX, ANY, UNINIT, SIZE),
    _p("get_stackid", _INT, CTX, MAP, ANY, gpl=True),
    _p("get_current_task", _INT, gpl=True),
    _p("get_numa_node_id", _INT),
    _p("xdp_adjust_head", _INT, CTX, ANY),
    _p("probe_read_str", _INT, UNINIT, SIZE0, ANY, gpl=True),
    _p("get_socket_cookie", _INT, CTX),
    _p("get_socket_uid", _INT, CTX),
    _p("redirect_map", _INT, MAP, ANY, ANY),
    _p("xdp_adjust_meta", _INT, CTX, ANY),
    _p("xdp_adjust_tail", _INT, CTX, ANY),
    _p("get_current_cgroup_id", _INT),
    _p("map_push_elem", _INT, MAP, _a(A.ARG_PTR_TO_MAP_VALUE), ANY),
    _p("map_pop_elem", _INT, MAP, _a(A.ARG_PTR_TO_MAP_VALUE, F.MEM_UNINIT | F.MEM_WRITE)),
    _p("map_peek_elem", _INT, MAP, _a(A.ARG_PTR_TO_MAP_VALUE, F.MEM_UNINIT | F.MEM_WRITE)),
    _p("spin_lock", R.RET_VOID, _a(A.ARG_PTR_TO_SPIN_LOCK)),
    _p("spin_unlock", R.RET_VOID, _a(A.ARG_PTR_TO_SPIN_LOCK)),
    _p("send_signal", _INT, ANY),
    _p("probe_read_user", _INT, UNINIT, SIZE0, ANY, gpl=True),
    _p("probe_read_kernel", _INT, UNINIT, SIZE0, ANY, gpl=True),
    _p("probe_read_user_str", _INT, UNINIT, SIZE0, ANY, gpl=True),
    _p("probe_read_kernel_str", _INT, UNINIT, SIZE0, ANY, gpl=True),
    _p("jiffies64", _INT),
    _p("ktime_get_boot_ns", _INT),
    _p("ringbuf_output", _INT, MAP, MEM_RO, SIZE0, ANY),
    _p("ringbuf_reserve", R.RET_PTR_TO_RINGBUF_MEM_OR_NULL, MAP, _a(A.ARG_CONST_ALLOC_SIZE_OR_ZERO), ANY),
    _p("ringbuf_submit", R.RET_VOID, _a(A.ARG_PTR_TO_RINGBUF_MEM), ANY),
    _p("ringbuf_discard", R.RET_VOID, _a(A.ARG_PTR_TO_RINGBUF_MEM), ANY),
    _p("ringbuf_query", _INT, MAP, ANY),
    _p("get_current_task_btf", R.RET_PTR_TO_BTF_ID, gpl=True),
    _p("for_each_map_elem", _INT, MAP, _a(A.ARG_PTR_TO_FUNC), _a(A.ARG_PTR_TO_STACK, F.PTR_MAYBE_NULL), ANY, cb=4),
    _p("snprintf", _INT, _a(A.ARG_PTR_TO_MEM, F.MEM_UNINIT | F.MEM_WRITE | F.PTR_MAYBE_NULL), SIZE0,
       _a(A.ARG_PTR_TO_CONST_STR), MEM_RO_NULL, SIZE0),
    _p("trace_vprintk", _INT, MEM_RO, SIZE, MEM_RO_NULL, SIZE0, gpl=True),
    _p("loop", _INT, ANY, _a(A.ARG_PTR_TO_FUNC), _a(A.ARG_PTR_TO_STACK, F.PTR_MAYBE_NULL), ANY, cb=2),
    _p("ktime_get_coarse_ns", _INT),
    _p("map_lookup_percpu_elem", R.RET_PTR_TO_MAP_VALUE_OR_NULL, MAP, KEY, ANY),
    _p("ktime_get_tai_ns", _INT),
    # the rest were read off the kernel's answers to probe programs (bpf(BPF_PROG_LOAD) on Linux 6.18)
    # and checked against their bpf_func_protos
    _p("current_task_under_cgroup", _INT, MAP, ANY),
    _p("perf_event_read_value", _INT, MAP, ANY, UNINIT, SIZE, gpl=True),
    _p("get_stack", _INT, CTX, UNINIT, SIZE0, ANY, gpl=True),
    _p("strtol", _INT, MEM_RO, SIZE, ANY, _a(A.ARG_PTR_TO_LONG)),
    _p("strtoul", _INT, MEM_RO, SIZE, ANY, _a(A.ARG_PTR_TO_LONG)),
    _p("send_signal_thread", _INT, ANY),
    _p("get_ns_current_pid_tgid", _INT, ANY, ANY, UNINIT, SIZE),
    _p("get_current_ancestor_cgroup_id", _INT, ANY),
    _p("snprintf_btf", _INT, UNINIT, SIZE, MEM_RO, SIZE, ANY),
    _p("get_func_ip", _INT, CTX, gpl=True),
    _p("get_attach_cookie", _INT, CTX),
    _p("get_branch_snapshot", _INT, UNINIT, SIZE0, gpl=True),
    _p("l3_csum_replace", _INT, CTX, ANY, ANY, ANY, ANY),
    _p("l4_csum_replace", _INT, CTX, ANY, ANY, ANY, ANY),
    _p("clone_redirect", _INT, CTX, ANY, ANY),
    _p("skb_vlan_push", _INT, CTX, ANY, ANY),
    _p("skb_vlan_pop", _INT, CTX),
    _p("skb_get_tunnel_key", _INT, CTX, UNINIT, SIZE, ANY),
    _p("skb_set_tunnel_key", _INT, CTX, MEM_RO, SIZE, ANY),
    _p("get_route_realm", _INT, CTX),
    _p("csum_diff", _INT, MEM_RO_NULL, SIZE0, MEM_RO_NULL, SIZE0, ANY),
    _p("skb_get_tunnel_opt", _INT, CTX, UNINIT, SIZE),
    _p("skb_set_tunnel_opt", _INT, CTX, MEM_RO, SIZE),
    _p("skb_change_proto", _INT, CTX, ANY, ANY),
    _p("skb_change_type", _INT, CTX, ANY),
    _p("skb_under_cgroup", _INT, CTX, MAP, ANY),
    _p("get_hash_recalc", _INT, CTX),
    _p("skb_change_tail", _INT, CTX, ANY, ANY),
    _p("skb_pull_data", _INT, CTX, ANY),
    _p("csum_update", _INT, CTX, ANY),
    _p("set_hash_invalid", _INT, CTX),
    _p("skb_change_head", _INT, CTX, ANY, ANY),
    _p("set_hash", _INT, CTX, ANY),
    _p("skb_adjust_room", _INT, CTX, ANY, ANY, ANY),
    _p("skb_get_xfrm_state", _INT, CTX, ANY, UNINIT, SIZE, ANY),
    _p("skb_load_bytes_relative", _INT, CTX, ANY, UNINIT, SIZE, ANY),
    _p("fib_lookup", _INT, CTX, UNINIT, SIZE, ANY, gpl=True),
    _p("skb_cgroup_id", _INT, CTX),
    _p("skb_ancestor_cgroup_id", _INT, CTX, ANY),
    _p("skb_ecn_set_ce", _INT, CTX),
    _p("csum_level", _INT, CTX, ANY),
    _p("skb_cgroup_classid", _INT, CTX),
    _p("redirect_neigh", _INT, ANY, MEM_RO_NULL, SIZE0, ANY),
    _p("redirect_peer", _INT, ANY, ANY),
    _p("check_mtu", _INT, CTX, ANY, _a(A.ARG_PTR_TO_INT), ANY, ANY, gpl=True),
    _p("skb_set_tstamp", _INT, CTX, ANY, ANY),
    _p("xdp_get_buff_len", _INT, CTX),
    _p("xdp_load_bytes", _INT, CTX, ANY, UNINIT, SIZE),
    _p("xdp_store_bytes", _INT, CTX, ANY, MEM_RO, SIZE),
    _p("perf_prog_read_value", _INT, CTX, UNINIT, SIZE, gpl=True),
    _p("read_branch_records", _INT, CTX, _a(A.ARG_PTR_TO_MEM, F.MEM_UNINIT | F.MEM_WRITE | F.PTR_MAYBE_NULL), SIZE0, ANY, gpl=True),
    _p("copy_from_user", _INT, UNINIT, SIZE0, ANY, sleep=True),
    _p("sk_lookup_tcp", R.RET_PTR_TO_SOCKET_OR_NULL, CTX, MEM_RO, SIZE0, ANY, ANY),
    _p("sk_lookup_udp", R.RET_PTR_TO_SOCKET_OR_NULL, CTX, MEM_RO, SIZE0, ANY, ANY),
    _p("skc_lookup_tcp", R.RET_PTR_TO_SOCK_COMMON_OR_NULL, CTX, MEM_RO, SIZE0, ANY, ANY),
    _p("sk_release", _INT, _a(A.ARG_PTR_TO_SOCK_COMMON_RELEASE)),
    _p("sk_assign", _INT, CTX, _a(A.ARG_PTR_TO_SOCK_COMMON), ANY),
    _p("sk_fullsock", R.RET_PTR_TO_SOCKET_OR_NULL, _a(A.ARG_PTR_TO_SOCK_COMMON)),
    _p("get_netns_cookie", _INT, _a(A.ARG_PTR_TO_CTX, F.PTR_MAYBE_NULL)),
    _p("get_local_storage", R.RET_PTR_TO_MAP_VALUE, MAP, ANY),
]

#: func_id -> prototype
HELPERS: dict[int, FuncProto] = {p.func_id: p for p in _PROTOS}


def helper_name(func_id: int) -> str:
    """func_id_name(): ``bpf_map_lookup_elem`` for 1, ``unknown`` past the enum."""
    try:
        return "bpf_" + BpfFuncId(func_id).name[len("BPF_FUNC_"):]
    except ValueError:
        return "unknown"


def _ranges(spec: str) -> frozenset[int]:
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


_AVAILABILITY_SPEC = {
    "BPF_PROG_TYPE_KPROBE": "1-8,12,14-17,22,25,27,35,37,42,45,55,67,80,87-89,93-94,105-106,109,112-115,117-118,"
                            "120,123,125,130-134,141,148-149,153-154,156-158,164-165,169-177,180-182,191,194-195,"
                            "197-203,208-211",
    "BPF_PROG_TYPE_PERF_EVENT": "1-8,12,14-17,22,25,27,35,37,42,45,55-56,67,80,87-89,93-94,105-106,109,112-115,"
                                "117-120,123,125,130-134,141,148-149,153-154,156-158,164-165,169-177,180-182,191,"
                                "194-195,197-203,208-211",
    "BPF_PROG_TYPE_XDP": "1-3,5-8,12,14-17,22-23,25,28,35,37,42,44,51,54-55,65,69,80,84-89,93-94,99-100,105-106,"
                         "109-110,112-115,117-118,120,123,125,130-134,136-141,148-149,153-154,156-158,160,163-165,"
                         "169-172,175-178,180-182,188-191,194-211",
    "BPF_PROG_TYPE_SOCKET_FILTER": "1-3,5-8,12,14-17,22,25-26,35,37,42,46-47,55,68,80,87-89,93-94,105-106,109,"
                                   "112-115,117-118,120,122-123,125,130-134,136-141,148-149,153-154,156-158,160,"
                                   "164-165,169-172,175-178,180-182,191,194-203,208-211",
    "BPF_PROG_TYPE_SCHED_CLS": "1-3,5-26,28-35,37-43,46-48,50,55,66,68-69,79-80,83-89,93-100,105-110,112-115,"
                               "117-118,120,122-125,130-141,148-149,151-158,160,163-165,169-172,175-178,180-182,"
                               "191-192,194-211",
    "BPF_PROG_TYPE_CGROUP_SKB": "1-3,5-8,12,14-17,22,25-26,35,37,42,46-47,55,68,79-81,83-89,93-99,105-109,112-115,"
                                "117-118,120,122-123,125,128-134,136-141,148-149,153-154,156-158,160,164-165,"
                                "169-172,175-178,180-182,191,194-203,208-211",
    "BPF_PROG_TYPE_SYSCALL": "1-214",
}
_ALIASES = {"BPF_PROG_TYPE_TRACEPOINT": "BPF_PROG_TYPE_KPROBE", "BPF_PROG_TYPE_RAW_TRACEPOINT": "BPF_PROG_TYPE_KPROBE",
            "BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE": "BPF_PROG_TYPE_KPROBE",
            "BPF_PROG_TYPE_SCHED_ACT": "BPF_PROG_TYPE_SCHED_CLS"}

#: prog type -> helper ids it may call (types not listed: the base set of SOCKET_FILTER)
HELPER_AVAILABILITY: dict[int, frozenset[int]] = {
    int(BpfProgType[k]): _ranges(v) for k, v in _AVAILABILITY_SPEC.items()
}
HELPER_AVAILABILITY.update({int(BpfProgType[k]): HELPER_AVAILABILITY[int(BpfProgType[v])] for k, v in _ALIASES.items()})


def helper_allowed(prog_type: int, func_id: int) -> bool:
    avail = HELPER_AVAILABILITY.get(prog_type, HELPER_AVAILABILITY[int(BpfProgType.BPF_PROG_TYPE_SOCKET_FILTER)])
    return func_id in avail
