"""Programs: ``BpfProg``, BPF_PROG_LOAD, PROG_TEST_RUN, the prog ids and ``bpf_prog_info``.

PROG_LOAD follows ``bpf_prog_load`` (kernel/bpf/syscall.c, Linux 6.18) in its
order of checks, then ``bpf_check`` (kernel/bpf/verifier.c): the log
attributes (``bpf_vlog_init``), func_info/line_info, ``resolve_pseudo_ldimm64``
(map fds and fd_array indexes become map addresses), the verifier proper
(``tinyaya.sim_kernel.verifier.verify``), and the log written back with the
kernel's truncation rules (``bpf_vlog_finalize``).
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from errno import EPROTO
from typing import TYPE_CHECKING, Any

from ..isa.insn import Insn, decode, encode
from ..isa.opcodes import LD_IMM64
from ..uapi.bpf import BpfMapType, BpfProgType, ProgLoadAttr, PseudoSrc
from .errors import E2BIG, EACCES, EBADF, EINVAL, ENOTSUPP, EPERM, fail
from .mapcmds import bpf_obj_name_cpy, is_map
from .usermem import check_zeroed_user, copy_from_user, strncpy_from_user
from .vlog import VerifierLog, finalize_log

if TYPE_CHECKING:
    from .kernel import SimKernel, UAttr

__all__ = ["BpfProg", "VerifierLog", "prog_load", "prog_from_fd", "bpf_prog_calc_tag", "resolve_pseudo_ldimm64",
           "subprog_starts"]

PT = BpfProgType
PROG_LOAD_END = 168  # keyring_id (6.18)
BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000
BPF_MAXINSNS = 4096
MAX_USED_MAPS = 64
BPF_MAX_VAR_OFF = 1 << 29
#: prog_flags this kernel knows (``bpf_prog_load``)
_PROG_FLAGS = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | (1 << 16)
_NR_PROG_TYPES = 33  # BPF_PROG_TYPE_NETFILTER is 32
_NET_ADMIN_TYPES = {PT.BPF_PROG_TYPE_SCHED_CLS, PT.BPF_PROG_TYPE_SCHED_ACT, PT.BPF_PROG_TYPE_XDP,
                    PT.BPF_PROG_TYPE_LWT_IN, PT.BPF_PROG_TYPE_LWT_OUT, PT.BPF_PROG_TYPE_LWT_XMIT,
                    PT.BPF_PROG_TYPE_LWT_SEG6LOCAL, PT.BPF_PROG_TYPE_SK_SKB, PT.BPF_PROG_TYPE_SK_MSG,
                    PT.BPF_PROG_TYPE_FLOW_DISSECTOR, PT.BPF_PROG_TYPE_CGROUP_DEVICE,
                    PT.BPF_PROG_TYPE_CGROUP_SOCK, PT.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                    PT.BPF_PROG_TYPE_CGROUP_SOCKOPT, PT.BPF_PROG_TYPE_CGROUP_SYSCTL,
                    PT.BPF_PROG_TYPE_SOCK_OPS, PT.BPF_PROG_TYPE_SK_LOOKUP}
#: ``license_is_gpl_compatible`` (include/linux/license.h)
_GPL_LICENSES = {b"GPL", b"GPL v2", b"GPL and additional rights", b"Dual BSD/GPL", b"Dual MIT/GPL",
                 b"Dual MPL/GPL"}
BPF_FUNCINFO_SIZE = 8  # sizeof(struct bpf_func_info)
BPF_LINEINFO_SIZE = 16  # sizeof(struct bpf_line_info)


@dataclass(eq=False)
class BpfProg:
    """A loaded program (``struct bpf_prog`` + ``bpf_prog_aux``).

    ``insns`` is what runs: the program after ``resolve_pseudo_ldimm64`` and
    the verifier's rewrites (map pointers are kernel addresses).
    ``orig_insns`` is what user space passed. ``compiled`` is a cache slot the
    execution tiers own.
    """

    prog_type: int
    insns: list[Insn]
    orig_insns: list[Insn]
    expected_attach_type: int = 0
    name: bytes = b""
    license: bytes = b""
    gpl_compatible: bool = False
    tag: bytes = bytes(8)
    id: int = 0
    prog_flags: int = 0
    kern_version: int = 0
    used_maps: list[Any] = field(default_factory=list)
    btf: Any = None
    func_info: bytes = b""
    func_info_rec_size: int = 0
    line_info: bytes = b""
    line_info_rec_size: int = 0
    attach_btf_id: int = 0
    load_time: int = 0
    created_by_uid: int = 0
    run_cnt: int = 0
    run_time_ns: int = 0
    recursion_misses: int = 0
    verified_insns: int = 0
    #: the program after the verifier (what BPF_OBJ_GET_INFO_BY_FD dumps); the verifier may replace it
    xlated: list[Insn] = field(default_factory=list)
    compiled: dict[str, Any] = field(default_factory=dict)
    #: bytes charged to the kernel's memlock accounting, given back on release
    charged: int = 0
    #: set once the last reference is gone
    released: bool = False
    #: opened from another process's pin: a record of that program (info, insns, stats), not runnable here
    foreign: bool = False
    #: for a program opened from another process's pin: the pinning kernel's map ids and xlated dump
    foreign_map_ids: list[int] = field(default_factory=list)
    foreign_dump: list[Insn] | None = None
    kernel: Any = None

    @property
    def sleepable(self) -> bool:
        return bool(self.prog_flags & 0x10)

    def add_run_stats(self, count: int, ns: int) -> None:
        """``bpf_prog_stats`` after a run while statistics are on (``__bpf_prog_run``: ``cnt``, ``nsecs``)."""
        self.run_cnt += count
        self.run_time_ns += ns

    def release(self) -> None:
        """The last reference went (``__bpf_prog_put``): free the id, drop maps and BTF, uncharge."""
        if self.released:
            return
        self.released = True
        k = self.kernel
        if k is None:
            return
        if self.id:
            k.prog_ids.remove(self.id)
        for m in self.used_maps:
            k.obj_put(m)
        self.used_maps = []
        if self.btf is not None:
            k.obj_put(self.btf)
            self.btf = None
        k.memlock.uncharge(self.charged)
        self.compiled.clear()


def bpf_prog_calc_tag(insns: list[Insn]) -> bytes:
    """``bpf_prog_calc_tag``: the instructions with map fd immediates zeroed, hashed; the first 8 bytes.

    Linux 6.18 hashes with SHA-256 (it was SHA-1 before the signed-programs work).
    """
    dst = []
    was_ld_map = False
    for ins in insns:
        if not was_ld_map and ins.code == LD_IMM64 and ins.src in (PseudoSrc.BPF_PSEUDO_MAP_FD,
                                                                    PseudoSrc.BPF_PSEUDO_MAP_VALUE):
            was_ld_map = True
            ins = ins.replace(imm=0)
        elif was_ld_map and ins.code == 0 and ins.dst == 0 and ins.src == 0 and ins.off == 0:
            was_ld_map = False
            ins = ins.replace(imm=0)
        else:
            was_ld_map = False
        dst.append(ins)
    return hashlib.sha256(encode(dst)).digest()[:8]


def subprog_starts(insns: list[Insn]) -> list[int]:
    """The first instruction of each function: 0 and every target of a bpf-to-bpf call or BPF_PSEUDO_FUNC."""
    starts = {0}
    for pc, ins in enumerate(insns):
        if ins.code == 0x85 and ins.src == 1:  # call with BPF_PSEUDO_CALL
            starts.add(pc + ins.imm + 1)
        elif ins.code == LD_IMM64 and ins.src == PseudoSrc.BPF_PSEUDO_FUNC:
            starts.add(pc + ins.imm + 1)
    return sorted(s for s in starts if 0 <= s < len(insns))


def prog_from_fd(k: SimKernel, fd: int) -> BpfProg:
    """``bpf_prog_get(fd)``: EBADF if not open, EINVAL if not a program."""
    obj = k.fds.get(fd)
    if not isinstance(obj, BpfProg):
        raise fail(EINVAL, f"fd {fd} is not a program")
    return obj


# -- PROG_LOAD ----------------------------------------------------------------------------------------
#: ``bpf_prog_load_check_attach``: the expected_attach_types each program type accepts (where it cares)
_EXPECTED_ATTACH = {
    PT.BPF_PROG_TYPE_CGROUP_SOCK: {2, 12, 13, 34},
    PT.BPF_PROG_TYPE_CGROUP_SOCK_ADDR: {8, 9, 10, 11, 14, 15, 19, 20, 29, 30, 31, 32, 48, 49, 50, 51, 52},
    PT.BPF_PROG_TYPE_CGROUP_SKB: {0, 1},
    PT.BPF_PROG_TYPE_CGROUP_SOCKOPT: {21, 22},
    PT.BPF_PROG_TYPE_SK_LOOKUP: {36},
    PT.BPF_PROG_TYPE_SK_REUSEPORT: {39, 40},
    32: {45},  # BPF_PROG_TYPE_NETFILTER: BPF_NETFILTER
    PT.BPF_PROG_TYPE_SYSCALL: {0},
    PT.BPF_PROG_TYPE_EXT: {0},
}


def _check_attach(prog_type: int, expected: int, attach_btf_id: int) -> None:
    """``bpf_prog_load_check_attach`` for the program types the simulated kernel knows."""
    if attach_btf_id:
        if prog_type not in (PT.BPF_PROG_TYPE_TRACING, PT.BPF_PROG_TYPE_LSM, PT.BPF_PROG_TYPE_STRUCT_OPS,
                             PT.BPF_PROG_TYPE_EXT):
            raise fail(EINVAL, "attach_btf_id for a program type that does not take one")
    allowed = _EXPECTED_ATTACH.get(prog_type)
    if allowed is not None and expected not in allowed:
        raise fail(EINVAL, f"expected_attach_type {expected} for program type {prog_type}")


#: program types that need a BTF attach target the simulated kernel cannot give (no vmlinux BTF functions)
_NEED_TARGET = {PT.BPF_PROG_TYPE_LSM, PT.BPF_PROG_TYPE_EXT}
#: program types that can be BPF_F_SLEEPABLE (``can_be_sleepable``)
_SLEEPABLE_OK = {PT.BPF_PROG_TYPE_TRACING, PT.BPF_PROG_TYPE_LSM, PT.BPF_PROG_TYPE_KPROBE,
                 PT.BPF_PROG_TYPE_STRUCT_OPS, PT.BPF_PROG_TYPE_SYSCALL}


def check_attach_btf_id(prog: BpfProg, log: VerifierLog) -> None:
    """``check_attach_btf_id`` (kernel/bpf/verifier.c), for programs without a BTF attach target."""
    if prog.prog_type == PT.BPF_PROG_TYPE_SYSCALL:
        if prog.sleepable:
            return
        log.write("Syscall programs can only be sleepable\n")
        raise fail(EINVAL, "syscall program not sleepable")
    tracing_sleepable = prog.prog_type != PT.BPF_PROG_TYPE_TRACING or prog.expected_attach_type in (24, 25, 26, 28)
    if prog.sleepable and (prog.prog_type not in _SLEEPABLE_OK or not tracing_sleepable):
        log.write("Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable\n")
        raise fail(EINVAL, "program type cannot be sleepable")
    if prog.prog_type == PT.BPF_PROG_TYPE_STRUCT_OPS:
        if not prog.gpl_compatible:
            log.write("struct ops programs must have a GPL compatible license\n")
            raise fail(EINVAL, "struct_ops license")
        raise fail(ENOTSUPP, "struct_ops programs need attach_btf_id")
    if prog.prog_type == PT.BPF_PROG_TYPE_TRACING:
        log.write("Tracing programs must provide btf_id\n")
        raise fail(EINVAL, "tracing program without btf_id")


def prog_load(k: SimKernel, ua: UAttr) -> int:
    ua.check_unused(PROG_LOAD_END)
    a: Any = ua.view(ProgLoadAttr)
    prog_token_fd, fd_array_cnt, signature, _sig_size, _keyring = struct.unpack_from("<iIQIi", ua.raw, 144)
    if a.prog_flags & ~_PROG_FLAGS:
        raise fail(EINVAL, f"unknown prog_flags {a.prog_flags:#x}")
    expected = a.expected_attach_type
    if a.prog_type == PT.BPF_PROG_TYPE_CGROUP_SOCK and not expected:
        expected = 2  # bpf_prog_load_fixup_attach_type: BPF_CGROUP_INET_SOCK_CREATE
    elif a.prog_type == PT.BPF_PROG_TYPE_SK_REUSEPORT and not expected:
        expected = 39  # ... and BPF_SK_REUSEPORT_SELECT
    if a.prog_flags & (1 << 16):
        raise fail(EINVAL, "bpf tokens are not supported by the simulated kernel")
    cap = k.bpf_capable
    if k.unprivileged_bpf_disabled and not cap:
        raise fail(EPERM, "unprivileged bpf is disabled")
    if a.insn_cnt == 0 or a.insn_cnt > (BPF_COMPLEXITY_LIMIT_INSNS if cap else BPF_MAXINSNS):
        raise fail(E2BIG, f"insn_cnt {a.insn_cnt}")
    if a.prog_type not in (PT.BPF_PROG_TYPE_SOCKET_FILTER, PT.BPF_PROG_TYPE_CGROUP_SKB) and not cap:
        raise fail(EPERM, "program type needs CAP_BPF")
    if a.attach_prog_fd:
        raise fail(EINVAL, "attach_prog_fd is not supported by the simulated kernel")
    _check_attach(a.prog_type, expected, a.attach_btf_id)
    if a.prog_type in _NEED_TARGET:
        raise fail(EPERM, "LSM and extension programs need a BTF attach target")
    if a.prog_type == 20:  # BPF_PROG_TYPE_LIRC_MODE2: not built into this kernel
        raise fail(EINVAL, "BPF_PROG_TYPE_LIRC_MODE2 is not supported")
    if a.attach_btf_id:
        raise fail(EINVAL, "BTF-attached program types are not supported by the simulated kernel")
    charge = 4096 + a.insn_cnt * 8
    k.memlock.charge(charge)
    try:
        return _prog_load_charged(k, ua, a, expected, fd_array_cnt, signature, charge)
    except BaseException:
        k.memlock.uncharge(charge)
        raise


def _prog_load_charged(k: SimKernel, ua: UAttr, a: Any, expected: int, fd_array_cnt: int, signature: int,
                       charge: int) -> int:
    raw = copy_from_user(a.insns, a.insn_cnt * 8)
    license_ = strncpy_from_user(a.license, 127)
    if signature:
        raise fail(EINVAL, "signed programs are not supported by the simulated kernel")
    if a.prog_type >= _NR_PROG_TYPES or a.prog_type == 0:
        raise fail(EINVAL, f"unknown program type {a.prog_type}")
    load_time = k.clock.boot_ns()
    name = bpf_obj_name_cpy(bytes(ua.raw[48:64]))
    orig = decode(raw)
    prog = BpfProg(prog_type=a.prog_type, insns=list(orig), orig_insns=orig, expected_attach_type=expected,
                   name=name, license=license_, gpl_compatible=license_ in _GPL_LICENSES,
                   prog_flags=a.prog_flags, kern_version=a.kern_version, load_time=load_time,
                   created_by_uid=k.uid, attach_btf_id=a.attach_btf_id, charged=charge, kernel=k)
    log = VerifierLog.from_attr(a.log_level, a.log_buf, a.log_size)
    try:
        check_err: OSError | None = None
        try:
            _bpf_check(k, ua, a, prog, log, fd_array_cnt)
        except OSError as e:
            check_err = e
        # bpf_check: "preserve original error even if log finalization is successful", but a log
        # that did not fit (ENOSPC) or could not be written (EFAULT) is what the caller sees
        err = finalize_log(log)
        if ua.size >= ProgLoadAttr.log_true_size.offset + 4:
            ua.put_u32(ProgLoadAttr.log_true_size.offset, log.true_size)
        if err:
            raise fail(err, "verifier log")
        if check_err is not None:
            raise check_err
    except BaseException:
        for m in prog.used_maps:
            k.obj_put(m)
        prog.used_maps = []
        if prog.btf is not None:
            k.obj_put(prog.btf)
            prog.btf = None
        raise
    if not prog.xlated:
        prog.xlated = prog.insns
    prog.id = k.prog_ids.alloc(prog)
    return k.fds.install(prog)


def _bpf_check(k: SimKernel, ua: UAttr, a: Any, prog: BpfProg, log: VerifierLog, fd_array_cnt: int) -> None:
    """``bpf_check`` up to and around the verifier proper.

    A failure before the verifier proper still ends the log with the
    statistics line, as ``bpf_check``'s ``skip_full_check`` path does.
    """
    try:
        _before_verifier(k, ua, a, prog, log, fd_array_cnt)
    except OSError:
        log.write(STATS_LINE_ZERO)
        raise
    try:
        import importlib

        verify = importlib.import_module(".verifier", __package__).verify
    except (ImportError, AttributeError):
        return  # no verifier yet: programs load unverified
    verify(k, prog, log)


#: ``print_verification_stats`` when nothing was processed
STATS_LINE_ZERO = ("processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 "
                   "mark_read 0\n")


def _before_verifier(k: SimKernel, ua: UAttr, a: Any, prog: BpfProg, log: VerifierLog, fd_array_cnt: int) -> None:
    if fd_array_cnt:
        fds = copy_from_user(a.fd_array, 4 * fd_array_cnt)
        for (fd,) in struct.iter_unpack("<i", fds):  # process_fd_array / add_fd_from_fd_array
            try:
                obj = k.fds.get(fd)
            except OSError:
                obj = None
            if is_map(obj):
                _add_used_map(k, prog, log, obj)
            elif type(obj).__name__ != "BtfObject":
                log.write(f"fd {fd} is not pointing to valid bpf_map or btf\n")
                raise fail(EINVAL if obj is not None else EBADF, f"fd_array[] fd {fd} is neither a map nor BTF")
    _check_btf_info(k, ua, a, prog, log)
    prog.tag = bpf_prog_calc_tag(prog.orig_insns)
    resolve_pseudo_ldimm64(k, prog, log, a.fd_array)
    check_attach_btf_id(prog, log)


def _check_btf_info(k: SimKernel, ua: UAttr, a: Any, prog: BpfProg, log: VerifierLog) -> None:
    """``check_btf_info_early``/``check_btf_func_early``/``check_btf_line`` (kernel/bpf/verifier.c).

    The records are kept in the kernel's record sizes (``struct bpf_func_info``,
    ``struct bpf_line_info``); a longer user record must have a zero tail
    (E2BIG, and the kernel's size is written back to the attr).
    Messages without a newline are printed so by the kernel too.
    """
    if not a.func_info_cnt and not a.line_info_cnt:
        return
    from .btf import KIND_FUNC, KIND_FUNC_PROTO, btf_from_fd

    btf_obj = btf_from_fd(k, a.prog_btf_fd)
    if btf_obj.kernel_btf:
        raise fail(EACCES, "kernel BTF for a program")
    k.obj_get(btf_obj)
    prog.btf = btf_obj
    if a.func_info_cnt:
        rs = a.func_info_rec_size
        if rs < BPF_FUNCINFO_SIZE or rs > 252 or rs % 4:
            log.write(f"invalid func info rec size {rs}\n")
            raise fail(EINVAL, "func_info_rec_size")
        recs = []
        prev = 0
        for i in range(a.func_info_cnt):
            urec = a.func_info + i * rs
            if rs > BPF_FUNCINFO_SIZE and not check_zeroed_user(urec + BPF_FUNCINFO_SIZE, rs - BPF_FUNCINFO_SIZE):
                log.write("nonzero tailing record in func info")
                ua.put_u32(ProgLoadAttr.func_info_rec_size.offset, BPF_FUNCINFO_SIZE)
                raise fail(E2BIG, "func_info record tail")
            insn_off, type_id = struct.unpack("<II", copy_from_user(urec, BPF_FUNCINFO_SIZE))
            if i == 0 and insn_off:
                log.write(f"nonzero insn_off {insn_off} for the first func info record")
                raise fail(EINVAL, "func_info")
            if i and insn_off <= prev:
                log.write(f"same or smaller insn offset ({insn_off}) than previous func info record ({prev})")
                raise fail(EINVAL, "func_info")
            t = btf_obj.types[type_id] if 0 < type_id < len(btf_obj.types) else None
            if t is None or t.kind != KIND_FUNC:
                log.write(f"invalid type id {type_id if type_id < 1 << 31 else type_id - (1 << 32)} in func info")
                raise fail(EINVAL, "func_info type")
            proto = btf_obj.types[t.size_or_type] if t.size_or_type < len(btf_obj.types) else None
            if proto is None or proto.kind != KIND_FUNC_PROTO:
                raise fail(EINVAL, "func_info type is not a function")
            recs.append(struct.pack("<II", insn_off, type_id))
            prev = insn_off
        prog.func_info = b"".join(recs)
        prog.func_info_rec_size = BPF_FUNCINFO_SIZE
    if a.line_info_cnt:
        _check_btf_line(ua, a, prog, log, btf_obj)


def _check_btf_line(ua: UAttr, a: Any, prog: BpfProg, log: VerifierLog, btf_obj: Any) -> None:
    rs = a.line_info_rec_size
    if rs < BPF_LINEINFO_SIZE or rs > 252 or rs % 4:
        raise fail(EINVAL, "line_info_rec_size")
    starts = subprog_starts(prog.orig_insns)
    n = len(prog.orig_insns)
    recs = []
    prev = 0
    s = 0
    strs_len = len(btf_obj.data)  # any offset inside the blob's strings is a name; checked loosely
    for i in range(a.line_info_cnt):
        urec = a.line_info + i * rs
        if rs > BPF_LINEINFO_SIZE and not check_zeroed_user(urec + BPF_LINEINFO_SIZE, rs - BPF_LINEINFO_SIZE):
            log.write("nonzero tailing record in line_info")
            ua.put_u32(ProgLoadAttr.line_info_rec_size.offset, BPF_LINEINFO_SIZE)
            raise fail(E2BIG, "line_info record tail")
        rec = copy_from_user(urec, BPF_LINEINFO_SIZE)
        insn_off, file_name_off, line_off, _col = struct.unpack("<IIII", rec)
        if (i and insn_off <= prev) or insn_off >= n:
            log.write(f"Invalid line_info[{i}].insn_off:{insn_off} (prev_offset:{prev} prog->len:{n})\n")
            raise fail(EINVAL, "line_info insn_off")
        if not prog.orig_insns[insn_off].code:
            log.write(f"Invalid insn code at line_info[{i}].insn_off\n")
            raise fail(EINVAL, "line_info insn")
        if line_off >= strs_len or file_name_off >= strs_len:
            log.write(f"Invalid line_info[{i}].line_off or .file_name_off\n")
            raise fail(EINVAL, "line_info names")
        if s != len(starts):
            if insn_off == starts[s]:
                s += 1
            elif starts[s] < insn_off:
                log.write(f"missing bpf_line_info for func#{s}\n")
                raise fail(EINVAL, "line_info")
        recs.append(rec)
        prev = insn_off
    if s != len(starts):
        log.write(f"missing bpf_line_info for {len(starts) - s} funcs starting from func#{s}\n")
        raise fail(EINVAL, "line_info")
    prog.line_info = b"".join(recs)
    prog.line_info_rec_size = BPF_LINEINFO_SIZE


def _add_used_map(k: SimKernel, prog: BpfProg, log: VerifierLog, m: Any) -> None:
    if any(u is m for u in prog.used_maps):
        return
    if len(prog.used_maps) >= MAX_USED_MAPS:
        log.write(f"The total number of maps per program has reached the limit of {MAX_USED_MAPS}\n")
        raise fail(E2BIG, "too many maps")
    k.obj_get(m)
    prog.used_maps.append(m)


def resolve_pseudo_ldimm64(k: SimKernel, prog: BpfProg, log: VerifierLog, fd_array: int) -> None:
    """``resolve_pseudo_ldimm64``: map references in ``ld_imm64`` become kernel addresses, as Linux does.

    MAP_FD/MAP_IDX load the map's address (the base of its ``RegionKind.MAP``
    region); MAP_VALUE/MAP_IDX_VALUE the address of its value at ``off``.
    """
    insns = prog.insns
    n = len(insns)
    i = 0
    while i < n:
        ins = insns[i]
        if ins.code != LD_IMM64:
            i += 1
            continue
        nxt = insns[i + 1] if i + 1 < n else None
        if nxt is None or nxt.code or nxt.dst or nxt.src or nxt.off:
            log.write("invalid bpf_ld_imm64 insn\n")
            raise fail(EINVAL, "invalid bpf_ld_imm64 insn")
        src = ins.src
        if src == 0 or src in (PseudoSrc.BPF_PSEUDO_BTF_ID, PseudoSrc.BPF_PSEUDO_FUNC):
            i += 2  # plain 64-bit immediates; BTF ids and function pointers are the verifier's business
            continue
        if src in (PseudoSrc.BPF_PSEUDO_MAP_FD, PseudoSrc.BPF_PSEUDO_MAP_IDX) and nxt.imm != 0:
            src = -1
        if src not in (PseudoSrc.BPF_PSEUDO_MAP_FD, PseudoSrc.BPF_PSEUDO_MAP_IDX,
                       PseudoSrc.BPF_PSEUDO_MAP_VALUE, PseudoSrc.BPF_PSEUDO_MAP_IDX_VALUE):
            log.write("unrecognized bpf_ld_imm64 insn\n")
            raise fail(EINVAL, "unrecognized bpf_ld_imm64 insn")
        if src in (PseudoSrc.BPF_PSEUDO_MAP_IDX, PseudoSrc.BPF_PSEUDO_MAP_IDX_VALUE):
            if not fd_array:
                log.write("fd_idx without fd_array is invalid\n")
                raise fail(EPROTO, "fd_idx without fd_array")
            fd = struct.unpack("<i", copy_from_user(fd_array + (ins.imm & 0xFFFFFFFF) * 4, 4))[0]
        else:
            fd = ins.imm
        m: Any
        try:
            m = k.fds.get(fd)
            if not is_map(m):
                raise fail(EINVAL, "not a map")
        except OSError as e:
            log.write(f"fd {fd} is not pointing to valid bpf_map\n")
            raise fail(e.errno or EINVAL, f"fd {fd} is not pointing to valid bpf_map")
        _add_used_map(k, prog, log, m)
        if src in (PseudoSrc.BPF_PSEUDO_MAP_FD, PseudoSrc.BPF_PSEUDO_MAP_IDX):
            addr = int(m.region.base)
        else:
            off = nxt.imm & 0xFFFFFFFF
            if off >= BPF_MAX_VAR_OFF:
                log.write(f"direct value offset of {off} is not allowed\n")
                raise fail(EINVAL, "direct value offset")
            value_addr = getattr(m, "value_addr", None)
            if value_addr is None or m.map_type != BpfMapType.BPF_MAP_TYPE_ARRAY:
                log.write("no direct value access support for this map type\n")
                raise fail(EINVAL, "no direct value access")
            try:
                addr = int(value_addr(off))
            except OSError as e:
                log.write(f"invalid access to map value pointer, value_size={m.value_size} off={off}\n")
                raise fail(e.errno or EINVAL, "invalid access to map value pointer")
        lo = addr & 0xFFFFFFFF
        hi = (addr >> 32) & 0xFFFFFFFF
        insns[i] = ins.replace(imm=lo - (1 << 32) if lo >= 1 << 31 else lo)
        insns[i + 1] = nxt.replace(imm=hi - (1 << 32) if hi >= 1 << 31 else hi)
        i += 2
