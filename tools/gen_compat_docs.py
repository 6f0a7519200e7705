"""Generate docs/compatibility.md from tinyaya's own registries, so the tables can't drift from the code.

    python tools/gen_compat_docs.py > docs/compatibility.md     (tests/docs/test_compat_docs.py checks it)

Where the code keeps a registry, the table reads it: the simulated kernel's map classes
(``tinyaya.sim_kernel.maps.MAP_TYPES``), the VM's helper table (``vm.helpers.helper_table()``), the
verifier's prototypes (``tinyaya.uapi.helpers.HELPERS``), the ``bpf()`` dispatch table
(``tinyaya.sim_kernel.kernel._DISPATCH``), the tracepoints, raw tracepoints and kallsyms of
``kernel.tracing``. Where the answer is a behaviour (does PROG_LOAD accept this program type? which
attach points take it? which perf event types and ioctls exist?), the generator asks a fresh
``SimKernel`` through ``tinyaya.sys``, the same way user space would, and writes down what happened.

The Linux column is Linux 6.18 (the kernel this project is checked against). The DragonOS column
comes from the static tables below, read from DragonOS's sources.
"""
from __future__ import annotations

import ctypes
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# -- DragonOS: facts read from its sources --------------------------------------------------------------
# Source: github.com/DragonOS-Community/DragonOS, kernel/src/bpf/ and kernel/src/perf/ (read in 2026).
#
# kernel/src/bpf/map/mod.rs, bpf_map_create(): ARRAY, PERCPU_ARRAY, PERF_EVENT_ARRAY, HASH, PERCPU_HASH,
# QUEUE, STACK, LRU_HASH, LRU_PERCPU_HASH; CPUMAP/DEVMAP/DEVMAP_HASH return EINVAL; every other type
# reaches `unimplemented!()`.
DRAGONOS_MAP_TYPES = frozenset({
    "BPF_MAP_TYPE_HASH", "BPF_MAP_TYPE_ARRAY", "BPF_MAP_TYPE_PERF_EVENT_ARRAY", "BPF_MAP_TYPE_PERCPU_HASH",
    "BPF_MAP_TYPE_PERCPU_ARRAY", "BPF_MAP_TYPE_LRU_HASH", "BPF_MAP_TYPE_LRU_PERCPU_HASH", "BPF_MAP_TYPE_QUEUE",
    "BPF_MAP_TYPE_STACK",
})
# kernel/src/bpf/helper/mod.rs, init_helper_functions() (and helper/consts.rs): the helper ids it registers.
# probe_read_user_str (114) appears in the newer versions of that file.
DRAGONOS_HELPERS = frozenset({1, 2, 3, 4, 5, 6, 25, 87, 88, 89, 114, 164, 195})
# kernel/src/bpf/mod.rs, bpf(): the commands it dispatches; everything else is ENOSYS.
# (PROG_ATTACH/PROG_DETACH are cgroup-device only: kernel/src/bpf/cgroup_device.rs.)
DRAGONOS_COMMANDS = frozenset({
    "BPF_MAP_CREATE", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_GET_NEXT_KEY", "BPF_MAP_DELETE_ELEM",
    "BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE", "BPF_PROG_LOAD", "BPF_PROG_ATTACH", "BPF_PROG_DETACH",
    "BPF_PROG_GET_FD_BY_ID", "BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY",
})
# kernel/src/bpf/prog/util.rs (BpfProgMeta::try_from) accepts any prog_type of its enum; prog/verifier.rs
# only rewrites map fds into map pointers (BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE); perf/mod.rs runs
# attached programs in rbpf (execute_program_jit on x86_64). Programs run through perf events (kernel/src/perf/: kprobe and
# uprobe PMUs, tracepoints) or, for CGROUP_DEVICE, PROG_ATTACH to a cgroup (kernel/src/bpf/cgroup_device.rs).
DRAGONOS_ATTACH = {
    "BPF_PROG_TYPE_KPROBE": "kprobe/uprobe perf events",
    "BPF_PROG_TYPE_TRACEPOINT": "tracepoint perf events",
    "BPF_PROG_TYPE_CGROUP_DEVICE": "PROG_ATTACH to a cgroup",
}
# kernel/src/perf/mod.rs, perf_event_open(): the kprobe and uprobe (x86_64) PMUs, PERF_TYPE_SOFTWARE only as
# BPF_OUTPUT with PERF_SAMPLE_RAW (asserted), PERF_TYPE_TRACEPOINT; anything else is ENOENT.
DRAGONOS_PERF_TYPES = frozenset({"kprobe PMU", "uprobe PMU", "PERF_TYPE_SOFTWARE", "PERF_TYPE_TRACEPOINT"})
# kernel/src/perf/mod.rs, PerfEventInode::ioctl(): Enable, Disable, Reset, SetBpf (others: EINVAL).
DRAGONOS_IOCTLS = frozenset({"PERF_EVENT_IOC_ENABLE", "PERF_EVENT_IOC_DISABLE", "PERF_EVENT_IOC_RESET",
                             "PERF_EVENT_IOC_SET_BPF"})

# -- Linux 6.18 names the installed uapi header predates ---------------------------------------------------
# Source: `enum bpf_map_type`, `enum bpf_prog_type`, `enum bpf_cmd`, `enum bpf_func_id` in the BTF of
# Linux 6.18 (/sys/kernel/btf/vmlinux, `bpftool btf dump file /sys/kernel/btf/vmlinux format c`).
LINUX_EXTRA_MAP_TYPES = {32: "BPF_MAP_TYPE_CGRP_STORAGE", 33: "BPF_MAP_TYPE_ARENA"}
LINUX_EXTRA_PROG_TYPES = {32: "BPF_PROG_TYPE_NETFILTER"}
LINUX_EXTRA_COMMANDS = {36: "BPF_TOKEN_CREATE", 37: "BPF_PROG_STREAM_READ_BY_FD"}
LINUX_LAST_HELPER = 211  # BPF_FUNC_cgrp_storage_delete; __BPF_FUNC_MAX_ID is 212
# What this machine's Linux 6.18 build leaves out (its /proc/config.gz: no CONFIG_KPROBES, no
# CONFIG_BPF_LIRC_MODE2), so the differential tests cannot compare these here.
LINUX_HERE_LACKS_PROG_TYPES = {"BPF_PROG_TYPE_LIRC_MODE2": "CONFIG_BPF_LIRC_MODE2 is off"}

YES, NO = "yes", "no"


def _errno_name(e: OSError) -> str:
    code = e.errno or 0
    return {524: "ENOTSUPP"}.get(code) or errno.errorcode.get(code, str(code))


@contextmanager
def _kernel() -> Iterator[Any]:
    """A fresh simulated kernel whose bpffs is a private temporary directory (nothing left behind)."""
    from tinyaya.sim_kernel import SimKernel

    with tempfile.TemporaryDirectory(prefix="tinyaya-gen-compat-") as d:
        k = SimKernel(ncpus=2, bpffs_root=os.path.join(d, "bpffs"))
        try:
            yield k
        finally:
            k.shutdown()


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def _short(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


# -- map types --------------------------------------------------------------------------------------------
def map_types() -> list[str]:
    from tinyaya import maps as user_maps
    from tinyaya.maps.base import TypedMap
    from tinyaya.sim_kernel.maps import MAP_TYPES
    from tinyaya.uapi.bpf import BpfMapType

    aya: dict[int, list[str]] = {}
    for name in user_maps.__all__:
        cls = getattr(user_maps, name)
        if isinstance(cls, type) and issubclass(cls, TypedMap):
            for t in getattr(cls, "MAP_TYPES", ()):
                aya.setdefault(int(t), []).append(name)
    names = {int(t): t.name for t in BpfMapType if t.value}
    names.update(LINUX_EXTRA_MAP_TYPES)
    rows = []
    for value, name in sorted(names.items()):
        cls = MAP_TYPES.get(value)
        sim = YES if cls is not None else NO
        shared = (YES if cls.shareable else NO) if cls is not None else ""
        rows.append([str(value), f"`{_short(name, 'BPF_MAP_TYPE_')}`", sim, shared,
                     ", ".join(f"`{c}`" for c in sorted(aya.get(value, []))), YES,
                     YES if name in DRAGONOS_MAP_TYPES else NO])
    n_sim = sum(1 for v in names if v in MAP_TYPES)
    return [
        "## Map types", "",
        f"{n_sim} of Linux 6.18's {len(names)} map types are implemented by the simulated kernel "
        "(`tinyaya.sim_kernel.maps.MAP_TYPES`); MAP_CREATE of any other type fails with EINVAL. "
        "*Pinned, shared* says whether a pinned map's storage is a shared file that another process's "
        "`SimKernel` opens with OBJ_GET and sees updates in (the others pin their metadata only). "
        "*tinyaya.maps* lists the Aya-shaped user-space classes that accept the type.", "",
        *_table(["id", "map type", "tinyaya sim", "pinned, shared", "tinyaya.maps", "Linux 6.18", "DragonOS"], rows),
        "",
    ]


# -- helpers ----------------------------------------------------------------------------------------------
def helpers() -> list[str]:
    from tinyaya.sim_kernel.vm.helpers import helper_table
    from tinyaya.uapi._enums import BpfFuncId, BpfProgType
    from tinyaya.uapi.helpers import HELPERS, helper_allowed, helper_name

    vm = helper_table()
    ids = sorted(set(vm) | set(HELPERS) | DRAGONOS_HELPERS)
    kprobe = int(BpfProgType.BPF_PROG_TYPE_KPROBE)
    xdp = int(BpfProgType.BPF_PROG_TYPE_XDP)
    rows = []
    for i in ids:
        in_vm, proto = i in vm, HELPERS.get(i)
        if in_vm and proto is not None:
            verdict = YES
        elif proto is not None:
            verdict = "verifier only (the call traps at run time)"
        else:
            verdict = "VM only (PROG_LOAD rejects the call)"
        rows.append([str(i), f"`{helper_name(i)}`", verdict, YES if in_vm else NO,
                     YES if proto is not None else NO, YES if (proto and proto.gpl_only) else "",
                     YES if helper_allowed(kprobe, i) else NO, YES if helper_allowed(xdp, i) else NO,
                     YES if i in DRAGONOS_HELPERS else NO])
    last = max(int(f) for f in BpfFuncId)
    both = sum(1 for i in ids if i in vm and i in HELPERS)
    return [
        "## Helpers", "",
        f"Linux 6.18 defines helper ids 1 to {LINUX_LAST_HELPER} (the uapi header installed here stops at {last}). "
        f"The simulated kernel runs a helper when its VM implements it (`vm.helpers.helper_table()`) and its "
        f"verifier has the prototype to check the call against (`tinyaya.uapi.helpers.HELPERS`); {both} helpers "
        "have both. Helpers in neither table are not listed: a program that calls one is rejected at PROG_LOAD "
        "(`helper ... is not supported by the simulated kernel`). The *kprobe* and *xdp* columns say whether "
        "Linux 6.18 lets a program of that type call the helper (measured as root; "
        "`tinyaya.uapi.helpers.HELPER_AVAILABILITY`); the simulated verifier applies the same table.", "",
        *_table(["id", "helper", "tinyaya sim", "VM", "verifier", "GPL only", "Linux 6.18: kprobe",
                 "Linux 6.18: xdp", "DragonOS"], rows),
        "",
    ]


# -- program types ----------------------------------------------------------------------------------------
#: an expected_attach_type each program type accepts at PROG_LOAD (enum bpf_attach_type), where it needs one
_PROBE_ATTACH_TYPE = {"BPF_PROG_TYPE_CGROUP_SOCK_ADDR": 8, "BPF_PROG_TYPE_CGROUP_SOCKOPT": 21,
                      "BPF_PROG_TYPE_SK_LOOKUP": 36, "BPF_PROG_TYPE_NETFILTER": 45}
_BPF_F_SLEEPABLE = 1 << 4


def _probe_load(k: Any, value: int, name: str) -> tuple[int | None, str]:
    from tinyaya import sys as bpfsys
    from tinyaya.isa.insn import Insn, encode

    code = encode([Insn(0xB7, 0, 0, 0, 0), Insn(0x95)])  # r0 = 0; exit
    flags = _BPF_F_SLEEPABLE if name == "BPF_PROG_TYPE_SYSCALL" else 0
    try:
        fd = bpfsys.bpf_prog_load(k, value, code, "GPL", expected_attach_type=_PROBE_ATTACH_TYPE.get(name, 0),
                                  prog_flags=flags)
    except OSError as e:
        return None, f"no ({_errno_name(e)})"
    return fd, YES


def _probe_test_run(k: Any, fd: int) -> str:
    from tinyaya import sys as bpfsys

    last: OSError | None = None
    for kw in ({"data": bytes(64)}, {"ctx": bytes(16), "ctx_size_out": 0}):
        try:
            bpfsys.bpf_prog_test_run(k, fd, **kw)  # type: ignore[arg-type]
            return YES
        except OSError as e:
            last = e
    assert last is not None
    return f"no ({_errno_name(last)})"


def _attach_points(k: Any) -> list[tuple[str, Callable[[int], Callable[[], None]]]]:
    """(name, attach(prog_fd) -> undo) for each attach point of the simulated machine."""
    from tinyaya import sys as bpfsys

    def perf(open_fd: Callable[[], int]) -> Callable[[int], Callable[[], None]]:
        def attach(prog_fd: int) -> Callable[[], None]:
            ev = open_fd()
            try:
                bpfsys.perf_event_ioc_set_bpf(k, ev, prog_fd)
            except OSError:
                k.close(ev)
                raise
            return lambda: k.close(ev)
        return attach

    def raw_tp(prog_fd: int) -> Callable[[], None]:
        fd = bpfsys.bpf_raw_tracepoint_open(k, "sys_enter", prog_fd)
        return lambda: k.close(fd)

    tp_id = bpfsys.tracepoint_id(k, "raw_syscalls", "sys_enter")
    return [
        ("kprobe", perf(lambda: bpfsys.perf_event_open_probe(k, "sys_enter"))),
        ("kretprobe", perf(lambda: bpfsys.perf_event_open_probe(k, "do_sys_openat2", retprobe=True))),
        ("tracepoint", perf(lambda: bpfsys.perf_event_open_trace_point(k, tp_id))),
        ("raw tracepoint", raw_tp),
        ("software perf event", perf(lambda: bpfsys.perf_event_open_generic(k, 1, 0))),
    ]


def _linux_prog_type(name: str) -> str:
    lacks = LINUX_HERE_LACKS_PROG_TYPES.get(name)
    return f"yes (not on this machine's kernel: {lacks})" if lacks else YES


def prog_types() -> list[str]:
    from tinyaya.programs import program_class
    from tinyaya.uapi.bpf import BpfProgType

    names = {int(t): t.name for t in BpfProgType if t.value}
    names.update(LINUX_EXTRA_PROG_TYPES)
    rows = []
    with _kernel() as k:
        points = _attach_points(k)
        for value, name in sorted(names.items()):
            fd, loads = _probe_load(k, value, name)
            test_run, attach = "", ""
            if fd is not None:
                test_run = _probe_test_run(k, fd)
                ok = []
                for point, fn in points:
                    try:
                        undo = fn(fd)
                    except OSError:
                        continue
                    undo()
                    ok.append(point)
                attach = ", ".join(ok)
                k.close(fd)
            cls = program_class(None, value)
            rows.append([str(value), f"`{_short(name, 'BPF_PROG_TYPE_')}`", loads, test_run, attach,
                         f"`{cls.__name__}`" if cls.__name__ != "Program" else "", _linux_prog_type(name),
                         DRAGONOS_ATTACH.get(name, "loads; nothing runs it")])
    return [
        "## Program types", "",
        "*PROG_LOAD* and *TEST_RUN* are what a fresh `SimKernel` answers for the program `r0 = 0; exit` "
        "(loaded with a valid `expected_attach_type` where the type needs one, sleepable for SYSCALL); "
        "*attaches to* lists the simulated attach points whose `perf_event_open` + `PERF_EVENT_IOC_SET_BPF` "
        "or `BPF_RAW_TRACEPOINT_OPEN` take it. A program on a software perf event is accepted but never runs "
        "(sampling is not simulated). *tinyaya.programs* is the Aya-shaped class `Ebpf` gives a program of that "
        "type (`tinyaya.programs.program_class`); the others are plain `Program`s. Linux 6.18 loads every type "
        "(TRACING, LSM, EXT and STRUCT_OPS with a BTF attach target); this machine's kernel has no kprobes, so "
        "KPROBE programs attach there only to uprobes. The DragonOS column says how a program of that type "
        "can run there.", "",
        *_table(["id", "program type", "PROG_LOAD", "TEST_RUN", "attaches to (sim)", "tinyaya.programs",
                 "Linux 6.18", "DragonOS"], rows),
        "",
    ]


# -- bpf() commands ---------------------------------------------------------------------------------------
def _first_sentence(fn: Any) -> str:
    doc = (fn.__doc__ or "").strip().split("\n\n", 1)[0]
    text = " ".join(line.strip() for line in doc.splitlines())
    if not text:
        return ""
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def commands() -> list[str]:
    from tinyaya.sim_kernel.kernel import _DISPATCH
    from tinyaya.uapi.bpf import BpfCmd

    names = {int(c): c.name for c in BpfCmd}
    names.update(LINUX_EXTRA_COMMANDS)
    rows = []
    for value, name in sorted(names.items()):
        h = _DISPATCH.get(value)
        sim = f"`{h.__module__.removeprefix('tinyaya.sim_kernel.')}.{h.__name__}`" if h is not None \
            else "no (EINVAL)"
        rows.append([str(value), f"`{name}`", sim, _first_sentence(h) if h is not None else "", YES,
                     YES if name in DRAGONOS_COMMANDS else "no (ENOSYS)"])
    return [
        "## bpf() commands", "",
        "The simulated kernel's column is its dispatch table (`tinyaya.sim_kernel.kernel._DISPATCH`): the "
        "handler of each command, with the first sentence of its docstring. A command without a handler "
        "fails with EINVAL, as an unknown command does on Linux.", "",
        *_table(["cmd", "command", "tinyaya sim", "notes", "Linux 6.18", "DragonOS"], rows),
        "",
    ]


# -- perf events ------------------------------------------------------------------------------------------
def perf_events() -> list[str]:
    from tinyaya import sys as bpfsys
    from tinyaya.uapi import perf_event as pe

    type_rows = []
    ioctl_rows = []
    with _kernel() as k:
        def try_open(fn: Callable[[], int]) -> tuple[int | None, str]:
            try:
                return fn(), YES
            except OSError as e:
                return None, f"no ({_errno_name(e)})"

        tp_id = bpfsys.tracepoint_id(k, "raw_syscalls", "sys_enter")
        opens: list[tuple[str, str, Callable[[], int]]] = [
            ("PERF_TYPE_HARDWARE", "", lambda: bpfsys.perf_event_open_generic(k, 0, 0)),
            ("PERF_TYPE_SOFTWARE", "config PERF_COUNT_SW_BPF_OUTPUT: the ring `bpf_perf_event_output` writes to",
             lambda: bpfsys.perf_event_open_bpf_output(k, 0)),
            ("PERF_TYPE_TRACEPOINT", "config = the id from tracefs `events/<cat>/<name>/id`",
             lambda: bpfsys.perf_event_open_trace_point(k, tp_id)),
            ("PERF_TYPE_HW_CACHE", "", lambda: bpfsys.perf_event_open_generic(k, 3, 0)),
            ("PERF_TYPE_RAW", "", lambda: bpfsys.perf_event_open_generic(k, 4, 0)),
            ("PERF_TYPE_BREAKPOINT", "", lambda: bpfsys.perf_event_open_generic(k, 5, 0)),
            ("kprobe PMU", "type from `/sys/bus/event_source/devices/kprobe/type`; `config:0` = retprobe",
             lambda: bpfsys.perf_event_open_probe(k, "sys_enter")),
            ("uprobe PMU", "type from `/sys/bus/event_source/devices/uprobe/type`; fires around the "
                           "syscall the probed libc function makes",
             lambda: bpfsys.perf_event_open_probe(k, "/proc/self/exe", 0, pmu="uprobe")),
        ]
        for name, note, fn in opens:
            fd, ok = try_open(fn)
            if fd is not None:
                k.close(fd)
            linux = YES if name != "kprobe PMU" else "yes (not on this machine's kernel: no kprobes)"
            type_rows.append([f"`{name}`", ok, note, linux, YES if name in DRAGONOS_PERF_TYPES else NO])

        prog_fd, _ = _probe_load(k, 5, "BPF_PROG_TYPE_TRACEPOINT")
        ident = ctypes.c_uint64(0)
        requests = ["PERF_EVENT_IOC_ENABLE", "PERF_EVENT_IOC_DISABLE", "PERF_EVENT_IOC_REFRESH",
                    "PERF_EVENT_IOC_RESET", "PERF_EVENT_IOC_PERIOD", "PERF_EVENT_IOC_SET_OUTPUT",
                    "PERF_EVENT_IOC_SET_FILTER", "PERF_EVENT_IOC_ID", "PERF_EVENT_IOC_SET_BPF",
                    "PERF_EVENT_IOC_PAUSE_OUTPUT"]
        for req in requests:
            ev = bpfsys.perf_event_open_trace_point(k, tp_id)
            arg = {"PERF_EVENT_IOC_ID": ctypes.addressof(ident), "PERF_EVENT_IOC_SET_BPF": prog_fd or 0}.get(req, 0)
            try:
                k.ioctl(ev, getattr(pe, req), arg)
                ok = YES
            except OSError as e:
                ok = "no (ENOTTY)" if e.errno == errno.ENOTTY else f"yes (this probe: {_errno_name(e)})"
            finally:
                k.close(ev)
            ioctl_rows.append([f"`{req}`", ok, YES, YES if req in DRAGONOS_IOCTLS else NO])
        if prog_fd is not None:
            k.close(prog_fd)
    return [
        "## perf_event_open and its ioctls", "",
        "What `perf_event_open` on a fresh `SimKernel` answers for each event type (through `tinyaya.sys`, "
        "as user space opens them), and which ioctls a tracepoint event answers other than ENOTTY.", "",
        *_table(["event type", "tinyaya sim", "notes", "Linux 6.18", "DragonOS"], type_rows),
        "",
        *_table(["ioctl", "tinyaya sim", "Linux 6.18", "DragonOS"], ioctl_rows),
        "",
    ]


# -- tracepoints and probes -------------------------------------------------------------------------------
def tracing() -> list[str]:
    from tinyaya.sim_kernel.tracing.tracepoints import RAW_TP_ARGS

    with _kernel() as k:
        t = k.tracing
        by_cat: dict[str, list[str]] = {}
        for tp in t.tracepoints:
            by_cat.setdefault(tp.category, []).append(tp.name)
        fns = t.kallsyms.functions
        n_syscall = sum(1 for f in fns if f.name.startswith("__x64_sys_"))
        other = [f.name for f in fns if not f.name.startswith("__x64_sys_")]
    rows = []
    for cat in sorted(by_cat):
        evs = by_cat[cat]
        shown = ", ".join(f"`{e}`" for e in evs) if len(evs) <= 6 else \
            f"{len(evs)} events: `sys_enter_<name>` and `sys_exit_<name>` per syscall"
        rows.append([f"tracepoint `{cat}`", shown])
    rows.append(["raw tracepoint", ", ".join(f"`{n}`" for n in RAW_TP_ARGS)])
    rows.append(["kprobe / kretprobe", f"{len(fns)} kernel functions: {n_syscall} `__x64_sys_<name>` wrappers "
                 "and " + ", ".join(f"`{n}`" for n in other)])
    rows.append(["uprobe / uretprobe", "a libc function (by file offset) that wraps a syscall"])
    return [
        "## Tracepoints and probes of the simulated machine", "",
        "From `kernel.tracing` (`tinyaya ksyms` lists the functions with their C prototypes). Linux 6.18 has "
        "thousands of each; on this machine's kernel the `raw_syscalls` tracepoints work once tracefs is "
        "mounted, and kprobes do not exist. DragonOS attaches kprobes to its own kernel symbols (its "
        "`syscall_ebpf` example probes `dragonos_kernel::syscall::Syscall::handle`, which the simulated "
        "machine also has).", "",
        *_table(["kind", "what the simulated machine has"], rows),
        "",
    ]


def render() -> str:
    out = [
        "# Compatibility",
        "",
        "Generated by `tools/gen_compat_docs.py` from tinyaya's own registries and from what a fresh "
        "`SimKernel` answers; do not edit by hand (`python tools/gen_compat_docs.py > docs/compatibility.md`).",
        "",
        "Three kernels are compared: tinyaya's simulated kernel; Linux 6.18, which has every upstream map "
        "type, helper, program type and command (where this machine's build lacks something, the table "
        "says so); and DragonOS, whose eBPF support was read from its sources "
        "(`kernel/src/bpf/` and `kernel/src/perf/` of DragonOS-Community/DragonOS). DragonOS has no "
        "verifier: PROG_LOAD only rewrites map fds into map pointers (`bpf/prog/verifier.rs`), and "
        "programs run in rbpf, JIT-compiled on x86_64 (`perf/mod.rs`).",
        "",
    ]
    for part in (map_types, helpers, prog_types, commands, perf_events, tracing):
        out += part()
    return "\n".join(out).rstrip("\n")


if __name__ == "__main__":
    print(render())
