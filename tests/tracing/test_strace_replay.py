"""strace -f replay: line forms, and syscall-counting fixtures give exactly the counts of an independent parser."""
from __future__ import annotations

import re
import struct
from collections import Counter
from pathlib import Path

import pytest
from tracing_helpers import FIXTURES, STRACE_LOGS, sim_kernel

from tinyaya.sim_kernel.workloads.strace import StraceError, parse_line, split_args

NR = {"read": 0, "write": 1, "close": 3, "openat": 257, "getpid": 39}


def independent_counts(path: Path) -> Counter[str]:
    """Count syscall entries: every line `[pid] [timestamp] name(` that is not a `<... resumed>` line."""
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*(?:\[pid\s+\d+\]\s*|\d+\s+)?(?:[\d:.]+\s+)?(?:\[[0-9a-f?]+\]\s+)?(?:\[\s*\d+\]\s+)?"
                     r"([a-z_][a-z0-9_]*)\(", line)
        if m:
            counts[m.group(1)] += 1
    return counts


def test_line_forms() -> None:
    pl = parse_line('1234  openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3')
    assert (pl.kind, pl.pid, pl.name, pl.ret) == ("call", 1234, "openat", 3)
    assert pl.args == ["AT_FDCWD", '"/etc/passwd"', "O_RDONLY|O_CLOEXEC"]
    pl = parse_line('[pid  77] 12:00:01.500000 access("/x", R_OK) = -1 ENOENT (No such file or directory)')
    assert (pl.pid, pl.ts, pl.ret) == (77, 43201.5, -2)
    pl = parse_line("5 1700000000.000001 read(3,  <unfinished ...>")
    assert (pl.kind, pl.args, pl.ts) == ("unfinished", ["3"], 1700000000.000001)
    pl = parse_line('5 <... read resumed>"ab\\n", 832) = 3')
    assert (pl.kind, pl.name, pl.ret) == ("resumed", "read", 3)
    pl = parse_line("9      0.000042 exit_group(0)                     = ?")
    assert (pl.kind, pl.ret, pl.relative) == ("call", None, True)
    pl = parse_line('1 openat(AT_FDCWD</tmp>, "/a", O_RDONLY) = 3</a> <0.000004>')
    assert pl.ret == 3 and pl.args[0] == "AT_FDCWD</tmp>"
    pl = parse_line('1 write(1, "f() = 3", 7) = 7')
    assert pl.ret == 7 and pl.args == ["1", '"f() = 3"', "7"]
    pl = parse_line("     0.000123 getpid() = 5")  # -r without -f: padded
    assert (pl.kind, pl.pid, pl.relative, pl.ret) == ("call", None, True, 5)
    pl = parse_line("42 [00007f0b1c2d3e4f] close(3) = 0")  # -i
    assert (pl.pid, pl.name, pl.ret) == (42, "close", 0)
    assert parse_line("1 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, -1, 0) = 0x7f5025c3f000").ret == 0x7F5025C3F000
    pl = parse_line("42 [ 257] openat(0xffffff9c, 0x7f6e8c70a0b1, 0x80000, 0) = 0x3")  # -n, -e raw=all
    assert (pl.name, pl.ret, pl.args[0]) == ("openat", 3, "0xffffff9c")
    pl = parse_line("42 restart_syscall(<... resuming interrupted read ...>) = 0")
    assert (pl.name, pl.ret) == ("restart_syscall", 0)
    pl = parse_line('7 connect(3<TCP:[1]>, {sa_family=AF_INET}, 16) = 0<TCP:[10.0.0.1:5->10.0.0.2:80]>')
    assert pl.ret == 0
    for skip in ("1 --- SIGCHLD {si_signo=SIGCHLD} ---", "1 +++ exited with 0 +++", "strace: Process 1 attached"):
        assert parse_line(skip).kind == "skip"
    assert split_args('{a=1, b=[2, 3]}, "x,y", 4') == ["{a=1, b=[2, 3]}", '"x,y"', "4"]


def test_replay_arguments_and_pids() -> None:
    k = sim_kernel()
    log = ('300 openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3\n'
           '300 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 301\n'
           '301 execve("/usr/bin/ls", ["ls"], 0x7ffd /* 3 vars */) = 0\n'
           '301 write(1, "a\\tb\\n", 4) = 4\n'
           '301 exit_group(0) = ?\n'
           '301 +++ exited with 0 +++\n')
    r = k.machine.replay(log)
    res = r.run()
    assert res.events == 5 and res.skipped == []
    assert r.tasks[300].comm == "strace" and 301 not in k.machine.processes


def test_strict_mode_names_the_line(tmp_path) -> None:
    from tinyaya.sim_kernel.workloads.strace import StraceReplay

    k = sim_kernel()
    with pytest.raises(StraceError) as e:
        StraceReplay(k.machine, "1 getpid() = 5\n1 frobnicate() = 0\n", strict=True).run()
    assert e.value.line == 2 and "frobnicate" in str(e.value)
    lenient = k.machine.replay("1 getpid() = 5\n1 frobnicate() = 0\n").run()
    assert lenient.events == 1 and lenient.skipped == [(2, "unknown syscall 'frobnicate'")]
    with pytest.raises(StraceError, match="no such strace log"):
        k.machine.replay(tmp_path / "missing.log")


@pytest.mark.parametrize("log", STRACE_LOGS, ids=lambda p: p.name)
def test_replay_counts_match_an_independent_parser(log: Path) -> None:
    k = sim_kernel()
    res = k.machine.replay(log).run()
    assert res.skipped == []
    assert Counter(res.by_name()) == independent_counts(log)


def _map_counts(kernel, map_fd: int, key_fmt: str = "<I") -> dict[int, int]:
    from tinyaya import sys as bpfsys

    out = {}
    key = None
    ks = struct.calcsize(key_fmt)
    while (key := bpfsys.bpf_map_get_next_key(kernel, map_fd, key, ks)) is not None:
        out[struct.unpack(key_fmt, key)[0]] = struct.unpack("<Q", bpfsys.bpf_map_lookup_elem(kernel, map_fd, key, 8))[0]
    return out


def _load(kernel, obj: str):
    programs = pytest.importorskip("tinyaya.programs", reason="the programs API is not there yet")
    return programs.Ebpf.load_file(FIXTURES / obj, kernel=kernel)


STYLES = [("count_kprobe.bpf.o", "count_kprobe", ("sys_enter", 0)),
          ("count_tracepoint.bpf.o", "count_tracepoint", ("raw_syscalls", "sys_enter")),
          ("count_raw_tp.bpf.o", "count_raw_tp", ("sys_enter",))]


@pytest.mark.parametrize("log", STRACE_LOGS, ids=lambda p: p.name)
@pytest.mark.parametrize(("obj", "prog", "target"), STYLES, ids=[s[1] for s in STYLES])
def test_counting_programs_on_replayed_logs(log: Path, obj: str, prog: str, target: tuple) -> None:
    from tinyaya.sim_kernel.tracing.syscalls import BY_NAME

    k = sim_kernel()
    bpf = _load(k, obj)
    p = bpf.program_mut(prog)
    p.load()
    p.attach(*target)
    k.machine.replay(log).run()
    expected = {BY_NAME[name].nr: n for name, n in independent_counts(log).items()}
    assert _map_counts(k, bpf.map("SYSCALL_COUNTS").fd) == expected


def test_kretprobe_sees_openat_results() -> None:
    k = sim_kernel()
    bpf = _load(k, "openat_ret.bpf.o")
    p = bpf.program_mut("openat_ret")
    p.load()
    p.attach("__x64_sys_openat", 0)
    proc = k.machine.process(comm="cat")
    for ret in (3, 4, -2, -2, -13):
        proc.syscall("openat", -100, "/x", 0, ret=ret)
    assert _map_counts(k, bpf.map("OPENAT_RET").fd, "<q") == {3: 1, 4: 1, -2: 2, -13: 1}


def test_openat_path_reads_user_memory_and_perf_outputs(kernel) -> None:
    from test_perf_ring import raw_of, read_records

    from tinyaya import sys as bpfsys

    bpf = _load(kernel, "openat_path.bpf.o")
    p = bpf.program_mut("openat_path")
    p.load()
    p.attach("syscalls", "sys_enter_openat")
    events = bpf.map("OPEN_EVENTS").fd
    rings = []
    for cpu in range(kernel.ncpus):
        fd = bpfsys.perf_event_open_bpf_output(kernel, cpu)
        bpfsys.bpf_map_update_elem(kernel, events, struct.pack("<I", cpu), struct.pack("<I", fd))
        rings.append(kernel.mmap(fd, 4096 * 2, 3, 1, 0))
    a = kernel.machine.process(comm="cat", cpu=0)
    b = kernel.machine.process(comm="vim", cpu=1)
    a.syscall("openat", -100, "/etc/passwd", 0)
    b.syscall("openat", -100, "/home/user/notes.txt", 0)
    a.syscall("openat", -100, "/etc/passwd", 0)
    paths = {}
    key = None
    while (key := bpfsys.bpf_map_get_next_key(kernel, bpf.map("OPEN_PATHS").fd, key, 64)) is not None:
        paths[key.rstrip(b"\0")] = struct.unpack("<Q", bpfsys.bpf_map_lookup_elem(kernel, bpf.map("OPEN_PATHS").fd,
                                                                                   key, 8))[0]
    assert paths == {b"/etc/passwd": 2, b"/home/user/notes.txt": 1}
    got = []
    for cpu, mem in enumerate(rings):
        for _t, payload in read_records(mem):
            pid, n = struct.unpack_from("<II", raw_of(payload))
            got.append((cpu, pid, raw_of(payload)[8:8 + n - 1]))
    assert sorted(got) == sorted([(0, a.pid, b"/etc/passwd"), (1, b.pid, b"/home/user/notes.txt"),
                                  (0, a.pid, b"/etc/passwd")])


def test_trace_printk_lines(kernel) -> None:
    bpf = _load(kernel, "perf_output.bpf.o")
    p = bpf.program_mut("perf_output")
    p.load()
    p.attach("sys_enter", 0)
    proc = kernel.machine.process(comm="getpid-loop", cpu=1)
    proc.syscall("getpid")
    proc.syscall("getppid")
    lines = kernel.read_file("/sys/kernel/tracing/trace_pipe").decode().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(rf"\s+getpid-loop-{proc.pid}\s* \[001\] \S{{5}} +\d+\.\d{{6}}: bpf_trace_printk: "
                        rf"getpid from {proc.pid}", lines[0])
    assert kernel.read_file("/sys/kernel/tracing/trace_pipe") == b""  # consumed


EXAMPLE = FIXTURES.parent.parent.parent / "examples" / "syscall_ebpf" / "syscall_ebpf-ebpf" / "syscall_ebpf.o"


@pytest.mark.skipif(not EXAMPLE.exists(), reason="the syscall_ebpf example object is not built")
@pytest.mark.parametrize("target", ["sys_enter", "dragonos_kernel::syscall::Syscall::handle"])
def test_the_example_counts_every_non_write_syscall_of_a_log(target: str) -> None:
    from tinyaya.sim_kernel.tracing.syscalls import BY_NAME

    programs = pytest.importorskip("tinyaya.programs", reason="the programs API is not there yet")
    k = sim_kernel()
    bpf = programs.Ebpf.load_file(EXAMPLE, kernel=k)
    p = bpf.program_mut("syscall_ebpf")
    p.load()
    p.attach(target, 0)
    log = STRACE_LOGS[0]
    k.machine.replay(log).run()
    got = {}
    key = None
    fd = bpf.map("SYSCALL_LIST").fd
    from tinyaya import sys as bpfsys
    while (key := bpfsys.bpf_map_get_next_key(k, fd, key, 4)) is not None:
        got[struct.unpack("<I", key)[0]] = struct.unpack("<I", bpfsys.bpf_map_lookup_elem(k, fd, key, 4))[0]
    expected = {BY_NAME[n].nr: c for n, c in independent_counts(log).items() if n != "write"}
    assert got == expected


ERRNOS = {"ENOENT": 2, "EACCES": 13, "ENXIO": 6, "ENOTDIR": 20, "ELOOP": 40, "EEXIST": 17, "EISDIR": 21}


def independent_openat_returns(path: Path) -> Counter[int]:
    """openat results from the log: `= N` on the call (or on its `<... openat resumed>` line); -1 EXXX is -errno."""
    rets: Counter[int] = Counter()
    for line in path.read_text().splitlines():
        if "openat(" not in line and "<... openat resumed>" not in line:
            continue
        if line.rstrip().endswith("<unfinished ...>"):
            continue
        m = re.search(r"\) += (-?\d+)(?:<[^>]*>)?(?: (E[A-Z]+))?", line)
        if m:
            n = int(m.group(1))
            rets[-ERRNOS[m.group(2)] if n == -1 else n] += 1
    return rets


@pytest.mark.parametrize("log", STRACE_LOGS[:4], ids=lambda p: p.name)
def test_kretprobe_sees_the_logged_return_values(log: Path) -> None:
    k = sim_kernel()
    bpf = _load(k, "openat_ret.bpf.o")
    p = bpf.program_mut("openat_ret")
    p.load()
    p.attach("__x64_sys_openat", 0)
    k.machine.replay(log).run()
    assert Counter(_map_counts(k, bpf.map("OPENAT_RET").fd, "<q")) == independent_openat_returns(log)
