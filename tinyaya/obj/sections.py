"""Program section names: which program type and attach target a ``SEC("...")`` name means.

The table is libbpf's ``section_defs[]`` (src/libbpf.c) in its order, matched the
way ``sec_def_matches()`` does -- ``"kprobe+"`` matches ``kprobe`` and
``kprobe/<extra>``, a plain entry matches exactly -- relaxed as Aya's
``ProgramSection::from_str`` (aya-obj/src/obj.rs) is: ``<kind>/<anything>`` is
accepted for every kind, and Aya's own spellings (``extension``,
``cgroup_skb/*``, ``raw_tracepoint``) are understood too.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..uapi.bpf import BpfAttachType as A
from ..uapi.bpf import BpfProgType as P
from .errors import UnknownProgramSection

# Attach types newer than the uapi header tinyaya.uapi was generated from (linux/bpf.h, enum bpf_attach_type).
BPF_TCX_INGRESS = 46
BPF_TCX_EGRESS = 47
BPF_TRACE_UPROBE_MULTI = 48
BPF_CGROUP_UNIX_CONNECT = 49
BPF_CGROUP_UNIX_SENDMSG = 50
BPF_CGROUP_UNIX_RECVMSG = 51
BPF_CGROUP_UNIX_GETPEERNAME = 52
BPF_CGROUP_UNIX_GETSOCKNAME = 53
BPF_NETKIT_PRIMARY = 54
BPF_NETKIT_PEER = 55
BPF_TRACE_KPROBE_SESSION = 56
BPF_TRACE_UPROBE_SESSION = 57
BPF_NETFILTER = 45
# enum bpf_prog_type entry newer than the generated enum
BPF_PROG_TYPE_NETFILTER = 32

AttachType = A | int


@dataclass(frozen=True, slots=True)
class ProgramSection:
    """What a program section name says about its program.

    ``kind`` is the libbpf section prefix without its ``+``/``.s``/``.frags``
    decorations (``"kprobe"``, ``"kretprobe"``, ``"tracepoint"``, ``"xdp"``,
    ``"cgroup/connect4"``...). ``attach_target`` is what follows the first
    ``/``: a kernel function for k(ret)probes, ``"category/name"`` for
    tracepoints, a BTF function for fentry/fexit/lsm... ``expected_attach_type``
    is what BPF_PROG_LOAD's ``expected_attach_type`` gets (None for 0/unset).
    """

    name: str
    kind: str
    prog_type: P | int
    expected_attach_type: AttachType | None = None
    attach_target: str | None = None
    offset: int = 0
    is_retprobe: bool = False
    sleepable: bool = False
    frags: bool = False
    multi: bool = False
    attach_btf: bool = False
    binary_path: str | None = None
    known: bool = True

    @property
    def tracepoint_category(self) -> str | None:
        if self.kind != "tracepoint" or not self.attach_target or "/" not in self.attach_target:
            return None
        return self.attach_target.split("/", 1)[0]

    @property
    def tracepoint_name(self) -> str | None:
        if self.kind != "tracepoint" or not self.attach_target or "/" not in self.attach_target:
            return None
        return self.attach_target.split("/", 1)[1]


@dataclass(frozen=True, slots=True)
class _SecDef:
    sec: str  # libbpf spelling, with trailing "+" for "exact or with /extra"
    kind: str
    prog_type: P | int
    attach: AttachType | None = None
    sleepable: bool = False
    frags: bool = False
    retprobe: bool = False
    multi: bool = False
    attach_btf: bool = False


def _d(sec: str, kind: str, prog_type: P | int, attach: AttachType | None = None, **kw: bool) -> _SecDef:
    return _SecDef(sec, kind, prog_type, attach, **kw)


# libbpf src/libbpf.c section_defs[], in order (the order matters: first match wins).
SECTION_DEFS: tuple[_SecDef, ...] = (
    _d("socket", "socket", P.BPF_PROG_TYPE_SOCKET_FILTER),
    _d("sk_reuseport/migrate", "sk_reuseport/migrate", P.BPF_PROG_TYPE_SK_REUSEPORT,
       A.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE),
    _d("sk_reuseport", "sk_reuseport", P.BPF_PROG_TYPE_SK_REUSEPORT, A.BPF_SK_REUSEPORT_SELECT),
    _d("kprobe+", "kprobe", P.BPF_PROG_TYPE_KPROBE),
    _d("uprobe+", "uprobe", P.BPF_PROG_TYPE_KPROBE),
    _d("uprobe.s+", "uprobe", P.BPF_PROG_TYPE_KPROBE, sleepable=True),
    _d("kretprobe+", "kretprobe", P.BPF_PROG_TYPE_KPROBE, retprobe=True),
    _d("uretprobe+", "uretprobe", P.BPF_PROG_TYPE_KPROBE, retprobe=True),
    _d("uretprobe.s+", "uretprobe", P.BPF_PROG_TYPE_KPROBE, retprobe=True, sleepable=True),
    _d("kprobe.multi+", "kprobe", P.BPF_PROG_TYPE_KPROBE, A.BPF_TRACE_KPROBE_MULTI, multi=True),
    _d("kretprobe.multi+", "kretprobe", P.BPF_PROG_TYPE_KPROBE, A.BPF_TRACE_KPROBE_MULTI, multi=True,
       retprobe=True),
    _d("kprobe.session+", "kprobe.session", P.BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_SESSION, multi=True),
    _d("uprobe.multi+", "uprobe", P.BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_MULTI, multi=True),
    _d("uretprobe.multi+", "uretprobe", P.BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_MULTI, multi=True,
       retprobe=True),
    _d("uprobe.session+", "uprobe.session", P.BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_SESSION, multi=True),
    _d("uprobe.multi.s+", "uprobe", P.BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_MULTI, multi=True,
       sleepable=True),
    _d("uretprobe.multi.s+", "uretprobe", P.BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_MULTI, multi=True,
       sleepable=True, retprobe=True),
    _d("uprobe.session.s+", "uprobe.session", P.BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_SESSION, multi=True,
       sleepable=True),
    _d("ksyscall+", "ksyscall", P.BPF_PROG_TYPE_KPROBE),
    _d("kretsyscall+", "kretsyscall", P.BPF_PROG_TYPE_KPROBE, retprobe=True),
    _d("usdt+", "usdt", P.BPF_PROG_TYPE_KPROBE),
    _d("usdt.s+", "usdt", P.BPF_PROG_TYPE_KPROBE, sleepable=True),
    _d("tc/ingress", "tcx/ingress", P.BPF_PROG_TYPE_SCHED_CLS, BPF_TCX_INGRESS),
    _d("tc/egress", "tcx/egress", P.BPF_PROG_TYPE_SCHED_CLS, BPF_TCX_EGRESS),
    _d("tcx/ingress", "tcx/ingress", P.BPF_PROG_TYPE_SCHED_CLS, BPF_TCX_INGRESS),
    _d("tcx/egress", "tcx/egress", P.BPF_PROG_TYPE_SCHED_CLS, BPF_TCX_EGRESS),
    _d("netkit/primary", "netkit/primary", P.BPF_PROG_TYPE_SCHED_CLS, BPF_NETKIT_PRIMARY),
    _d("netkit/peer", "netkit/peer", P.BPF_PROG_TYPE_SCHED_CLS, BPF_NETKIT_PEER),
    _d("tc", "classifier", P.BPF_PROG_TYPE_SCHED_CLS),
    _d("classifier", "classifier", P.BPF_PROG_TYPE_SCHED_CLS),
    _d("action", "action", P.BPF_PROG_TYPE_SCHED_ACT),
    _d("tracepoint+", "tracepoint", P.BPF_PROG_TYPE_TRACEPOINT),
    _d("tp+", "tracepoint", P.BPF_PROG_TYPE_TRACEPOINT),
    _d("raw_tracepoint+", "raw_tracepoint", P.BPF_PROG_TYPE_RAW_TRACEPOINT),
    _d("raw_tp+", "raw_tracepoint", P.BPF_PROG_TYPE_RAW_TRACEPOINT),
    _d("raw_tracepoint.w+", "raw_tracepoint.w", P.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE),
    _d("raw_tp.w+", "raw_tracepoint.w", P.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE),
    _d("tp_btf+", "tp_btf", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_RAW_TP, attach_btf=True),
    _d("fentry+", "fentry", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FENTRY, attach_btf=True),
    _d("fmod_ret+", "fmod_ret", P.BPF_PROG_TYPE_TRACING, A.BPF_MODIFY_RETURN, attach_btf=True),
    _d("fexit+", "fexit", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FEXIT, attach_btf=True),
    _d("fentry.s+", "fentry", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FENTRY, attach_btf=True, sleepable=True),
    _d("fmod_ret.s+", "fmod_ret", P.BPF_PROG_TYPE_TRACING, A.BPF_MODIFY_RETURN, attach_btf=True,
       sleepable=True),
    _d("fexit.s+", "fexit", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FEXIT, attach_btf=True, sleepable=True),
    _d("freplace+", "freplace", P.BPF_PROG_TYPE_EXT, attach_btf=True),
    _d("lsm+", "lsm", P.BPF_PROG_TYPE_LSM, A.BPF_LSM_MAC, attach_btf=True),
    _d("lsm.s+", "lsm", P.BPF_PROG_TYPE_LSM, A.BPF_LSM_MAC, attach_btf=True, sleepable=True),
    _d("lsm_cgroup+", "lsm_cgroup", P.BPF_PROG_TYPE_LSM, A.BPF_LSM_CGROUP, attach_btf=True),
    _d("iter+", "iter", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_ITER, attach_btf=True),
    _d("iter.s+", "iter", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_ITER, attach_btf=True, sleepable=True),
    _d("syscall", "syscall", P.BPF_PROG_TYPE_SYSCALL, sleepable=True),
    _d("xdp.frags/devmap", "xdp", P.BPF_PROG_TYPE_XDP, A.BPF_XDP_DEVMAP, frags=True),
    _d("xdp/devmap", "xdp", P.BPF_PROG_TYPE_XDP, A.BPF_XDP_DEVMAP),
    _d("xdp.frags/cpumap", "xdp", P.BPF_PROG_TYPE_XDP, A.BPF_XDP_CPUMAP, frags=True),
    _d("xdp/cpumap", "xdp", P.BPF_PROG_TYPE_XDP, A.BPF_XDP_CPUMAP),
    _d("xdp.frags", "xdp", P.BPF_PROG_TYPE_XDP, A.BPF_XDP, frags=True),
    _d("xdp", "xdp", P.BPF_PROG_TYPE_XDP, A.BPF_XDP),
    _d("perf_event", "perf_event", P.BPF_PROG_TYPE_PERF_EVENT),
    _d("lwt_in", "lwt_in", P.BPF_PROG_TYPE_LWT_IN),
    _d("lwt_out", "lwt_out", P.BPF_PROG_TYPE_LWT_OUT),
    _d("lwt_xmit", "lwt_xmit", P.BPF_PROG_TYPE_LWT_XMIT),
    _d("lwt_seg6local", "lwt_seg6local", P.BPF_PROG_TYPE_LWT_SEG6LOCAL),
    _d("sockops", "sockops", P.BPF_PROG_TYPE_SOCK_OPS, A.BPF_CGROUP_SOCK_OPS),
    _d("sk_skb/stream_parser", "sk_skb/stream_parser", P.BPF_PROG_TYPE_SK_SKB, A.BPF_SK_SKB_STREAM_PARSER),
    _d("sk_skb/stream_verdict", "sk_skb/stream_verdict", P.BPF_PROG_TYPE_SK_SKB, A.BPF_SK_SKB_STREAM_VERDICT),
    _d("sk_skb/verdict", "sk_skb/verdict", P.BPF_PROG_TYPE_SK_SKB, A.BPF_SK_SKB_VERDICT),
    _d("sk_skb", "sk_skb", P.BPF_PROG_TYPE_SK_SKB),
    _d("sk_msg", "sk_msg", P.BPF_PROG_TYPE_SK_MSG, A.BPF_SK_MSG_VERDICT),
    _d("lirc_mode2", "lirc_mode2", P.BPF_PROG_TYPE_LIRC_MODE2, A.BPF_LIRC_MODE2),
    _d("flow_dissector", "flow_dissector", P.BPF_PROG_TYPE_FLOW_DISSECTOR, A.BPF_FLOW_DISSECTOR),
    _d("cgroup_skb/ingress", "cgroup_skb/ingress", P.BPF_PROG_TYPE_CGROUP_SKB, A.BPF_CGROUP_INET_INGRESS),
    _d("cgroup_skb/egress", "cgroup_skb/egress", P.BPF_PROG_TYPE_CGROUP_SKB, A.BPF_CGROUP_INET_EGRESS),
    _d("cgroup/skb", "cgroup/skb", P.BPF_PROG_TYPE_CGROUP_SKB),
    _d("cgroup/sock_create", "cgroup/sock_create", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET_SOCK_CREATE),
    _d("cgroup/sock_release", "cgroup/sock_release", P.BPF_PROG_TYPE_CGROUP_SOCK,
       A.BPF_CGROUP_INET_SOCK_RELEASE),
    _d("cgroup/sock", "cgroup/sock", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET_SOCK_CREATE),
    _d("cgroup/post_bind4", "cgroup/post_bind4", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET4_POST_BIND),
    _d("cgroup/post_bind6", "cgroup/post_bind6", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET6_POST_BIND),
    _d("cgroup/bind4", "cgroup/bind4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET4_BIND),
    _d("cgroup/bind6", "cgroup/bind6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET6_BIND),
    _d("cgroup/connect4", "cgroup/connect4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET4_CONNECT),
    _d("cgroup/connect6", "cgroup/connect6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET6_CONNECT),
    _d("cgroup/connect_unix", "cgroup/connect_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UNIX_CONNECT),
    _d("cgroup/sendmsg4", "cgroup/sendmsg4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UDP4_SENDMSG),
    _d("cgroup/sendmsg6", "cgroup/sendmsg6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UDP6_SENDMSG),
    _d("cgroup/sendmsg_unix", "cgroup/sendmsg_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UNIX_SENDMSG),
    _d("cgroup/recvmsg4", "cgroup/recvmsg4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UDP4_RECVMSG),
    _d("cgroup/recvmsg6", "cgroup/recvmsg6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UDP6_RECVMSG),
    _d("cgroup/recvmsg_unix", "cgroup/recvmsg_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UNIX_RECVMSG),
    _d("cgroup/getpeername4", "cgroup/getpeername4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       A.BPF_CGROUP_INET4_GETPEERNAME),
    _d("cgroup/getpeername6", "cgroup/getpeername6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       A.BPF_CGROUP_INET6_GETPEERNAME),
    _d("cgroup/getpeername_unix", "cgroup/getpeername_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       BPF_CGROUP_UNIX_GETPEERNAME),
    _d("cgroup/getsockname4", "cgroup/getsockname4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       A.BPF_CGROUP_INET4_GETSOCKNAME),
    _d("cgroup/getsockname6", "cgroup/getsockname6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       A.BPF_CGROUP_INET6_GETSOCKNAME),
    _d("cgroup/getsockname_unix", "cgroup/getsockname_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
       BPF_CGROUP_UNIX_GETSOCKNAME),
    _d("cgroup/sysctl", "cgroup/sysctl", P.BPF_PROG_TYPE_CGROUP_SYSCTL, A.BPF_CGROUP_SYSCTL),
    _d("cgroup/getsockopt", "cgroup/getsockopt", P.BPF_PROG_TYPE_CGROUP_SOCKOPT, A.BPF_CGROUP_GETSOCKOPT),
    _d("cgroup/setsockopt", "cgroup/setsockopt", P.BPF_PROG_TYPE_CGROUP_SOCKOPT, A.BPF_CGROUP_SETSOCKOPT),
    _d("cgroup/dev", "cgroup/dev", P.BPF_PROG_TYPE_CGROUP_DEVICE, A.BPF_CGROUP_DEVICE),
    _d("struct_ops+", "struct_ops", P.BPF_PROG_TYPE_STRUCT_OPS),
    _d("struct_ops.s+", "struct_ops", P.BPF_PROG_TYPE_STRUCT_OPS, sleepable=True),
    _d("sk_lookup", "sk_lookup", P.BPF_PROG_TYPE_SK_LOOKUP, A.BPF_SK_LOOKUP),
    _d("netfilter", "netfilter", BPF_PROG_TYPE_NETFILTER, BPF_NETFILTER),
)

# Aya's own spellings (aya-obj ProgramSection::from_str) that libbpf's table lacks.
AYA_SECTION_DEFS: tuple[_SecDef, ...] = (
    _d("extension+", "freplace", P.BPF_PROG_TYPE_EXT, attach_btf=True),
    _d("cgroup_skb+", "cgroup/skb", P.BPF_PROG_TYPE_CGROUP_SKB),
    _d("cgroup/sock_ops", "sockops", P.BPF_PROG_TYPE_SOCK_OPS, A.BPF_CGROUP_SOCK_OPS),
    _d("cgroup/device", "cgroup/dev", P.BPF_PROG_TYPE_CGROUP_DEVICE, A.BPF_CGROUP_DEVICE),
)

_NOT_SLOPPY = {"tc", "syscall", "netfilter", "tc/ingress", "tc/egress", "tcx/ingress", "tcx/egress",
               "netkit/primary", "netkit/peer", "cgroup/connect_unix", "cgroup/sendmsg_unix",
               "cgroup/recvmsg_unix", "cgroup/getpeername_unix", "cgroup/getsockname_unix"}
_PROBE_KINDS = {"kprobe", "kretprobe", "ksyscall", "kretsyscall"}
_UPROBE_KINDS = {"uprobe", "uretprobe", "usdt", "uprobe.session"}


def _match(sec: str, name: str) -> str | None:
    """The part after the section prefix if ``name`` matches ``sec`` (libbpf sec_def_matches, relaxed)."""
    base = sec[:-1] if sec.endswith("+") else sec
    if name == base:
        return ""
    if name.startswith(base + "/"):
        return name[len(base) + 1:]
    return None


def _parse_int(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def parse_program_section(name: str) -> ProgramSection:
    """Parse a program section name; raise ``UnknownProgramSection`` if it names no program type."""
    for table in (SECTION_DEFS, AYA_SECTION_DEFS):
        for d in table:
            extra = _match(d.sec, name)
            if extra is None:
                continue
            return _build(name, d, extra)
    # libbpf < 1.0's SEC_SLOPPY_PFX: the plain entries also matched as bare prefixes, so the
    # kernel's samples/bpf spellings ("socket1", "xdp_prog1") keep their program type.
    for d in SECTION_DEFS:
        if not d.sec.endswith("+") and d.sec not in _NOT_SLOPPY and name.startswith(d.sec):
            return _build(name, d, "")
    raise UnknownProgramSection(f"unknown program section '{name}'", section=name)


def unknown_program_section(name: str) -> ProgramSection:
    """The placeholder for an executable section no table knows (libbpf keeps such programs with
    BPF_PROG_TYPE_UNSPEC; loading one is an error)."""
    return ProgramSection(name=name, kind="unknown", prog_type=P.BPF_PROG_TYPE_UNSPEC, known=False)


def _build(name: str, d: _SecDef, extra: str) -> ProgramSection:
    target: str | None = extra or None
    offset = 0
    binary_path: str | None = None
    if target is not None and d.kind in _PROBE_KINDS and not d.multi:
        # kprobe/<func>[+<offset>] (libbpf attach_kprobe: "%m[a-zA-Z0-9_.]+%li")
        func, plus, off = target.partition("+")
        if plus and (value := _parse_int(off)) is not None:
            target, offset = func, value
    elif target is not None and d.kind in _UPROBE_KINDS and not d.multi:
        # uprobe/<path>:<func>[+<offset>] (libbpf attach_uprobe)
        path, colon, func = target.rpartition(":")
        if colon:
            binary_path = path
            fn, plus, off = func.partition("+")
            if plus and (value := _parse_int(off)) is not None:
                func, offset = fn, value
            target = func or None
    elif target is not None and d.multi and d.kind.startswith("u"):
        path, colon, func = target.rpartition(":")
        if colon:
            binary_path, target = path, func or None
    return ProgramSection(
        name=name,
        kind=d.kind,
        prog_type=d.prog_type,
        expected_attach_type=d.attach,
        attach_target=target,
        offset=offset,
        is_retprobe=d.retprobe,
        sleepable=d.sleepable,
        frags=d.frags,
        multi=d.multi,
        attach_btf=d.attach_btf,
        binary_path=binary_path,
    )


__all__ = ["ProgramSection", "SECTION_DEFS", "parse_program_section", "unknown_program_section",
           "UnknownProgramSection"]
