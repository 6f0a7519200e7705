"""Program section names checked against libbpf's libbpf_prog_type_by_name (recorded with the oracle)."""

SECTION_NAMES = [
    "socket", "sk_reuseport", "sk_reuseport/migrate",
    "kprobe", "kprobe/do_sys_openat2", "kprobe/do_sys_openat2+16", "kretprobe/do_sys_openat2",
    "uprobe", "uprobe//usr/bin/bash:readline", "uretprobe//usr/bin/bash:readline", "uprobe.s//bin/x:f",
    "uretprobe.s//bin/x:f", "kprobe.multi/vfs_*", "kretprobe.multi/vfs_*", "uprobe.multi//bin/x:f*",
    "uretprobe.multi//bin/x:f*", "ksyscall/openat", "kretsyscall/openat", "usdt", "usdt.s",
    "tc", "tc/ingress", "tc/egress", "tcx/ingress", "tcx/egress", "classifier", "action",
    "tracepoint/syscalls/sys_enter_openat", "tp/sched/sched_switch", "raw_tracepoint/sys_enter",
    "raw_tp/sys_enter", "raw_tracepoint.w/sys_enter", "raw_tp.w/sys_enter", "tp_btf/sched_switch",
    "fentry/do_unlinkat", "fexit/do_unlinkat", "fmod_ret/security_file_open", "fentry.s/f", "fexit.s/f",
    "fmod_ret.s/f", "freplace/handler", "lsm/file_open", "lsm.s/file_open", "lsm_cgroup/socket_bind",
    "iter/task", "iter.s/task", "syscall", "xdp", "xdp.frags", "xdp/devmap", "xdp.frags/devmap",
    "xdp/cpumap", "xdp.frags/cpumap", "perf_event", "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local",
    "sockops", "sk_skb/stream_parser", "sk_skb/stream_verdict", "sk_skb/verdict", "sk_skb", "sk_msg",
    "lirc_mode2", "flow_dissector", "cgroup_skb/ingress", "cgroup_skb/egress", "cgroup/skb",
    "cgroup/sock_create", "cgroup/sock_release", "cgroup/sock", "cgroup/post_bind4", "cgroup/post_bind6",
    "cgroup/bind4", "cgroup/bind6", "cgroup/connect4", "cgroup/connect6", "cgroup/connect_unix",
    "cgroup/sendmsg4", "cgroup/sendmsg6", "cgroup/sendmsg_unix", "cgroup/recvmsg4", "cgroup/recvmsg6",
    "cgroup/recvmsg_unix", "cgroup/getpeername4", "cgroup/getpeername6", "cgroup/getsockname4",
    "cgroup/getsockname6", "cgroup/sysctl", "cgroup/getsockopt", "cgroup/setsockopt", "cgroup/dev",
    "struct_ops", "struct_ops/dummy", "struct_ops.s/dummy", "sk_lookup", "netfilter",
]
