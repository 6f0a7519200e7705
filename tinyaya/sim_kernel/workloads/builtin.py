"""The built-in workloads (``tinyaya workloads`` lists them).

Mixes are modelled on what ``strace -c`` shows for these programs on a Linux
desktop: a shell that mostly reads, writes and runs commands; nginx workers
in their epoll loop; a compiler that opens, maps and reads many files; a
Python service blocked in futex and epoll; journald and sshd in the
background. Arguments are real-looking (paths, flags, sizes), so programs
that read them (``bpf_probe_read_user_str`` of openat's path) see real data.
"""
from __future__ import annotations

from .spec import ProcessSpec, SyscallSpec, WorkloadSpec

__all__ = ["BUILTIN_WORKLOADS"]

AT_FDCWD = -100
O_RDONLY_CLOEXEC = 0o2000000
O_WRONLY_CREAT_TRUNC = 0o1101
PROT_READ = 1
MAP_PRIVATE = 2
MAP_PRIVATE_ANON = 0x22


def S(name: str, rate: float, *args: int | str | bytes | None, ret: int | None = None,  # noqa: N802
      dur: int = 1000) -> SyscallSpec:
    return SyscallSpec(name, rate, tuple(args), ret, dur)


BASH = ProcessSpec("bash", (
    S("read", 300, 0, None, 1, ret=1, dur=50_000),
    S("write", 200, 2, "$ ", 2, ret=2),
    S("rt_sigprocmask", 250, 0, None, None, 8),
    S("rt_sigaction", 80, 2, None, None, 8),
    S("ioctl", 60, 0, 0x5401, None, ret=0),
    S("newfstatat", 40, AT_FDCWD, "/usr/bin/ls", None, 0),
    S("openat", 20, AT_FDCWD, "/home/user/.bash_history", 0o2002101, 0o600, ret=3),
    S("close", 20, 3, ret=0),
    S("getpid", 5),
), uid=1000, cwd="/home/user", spawn=("ls -l", "cat /etc/passwd", "grep root /etc/group", "git status"),
    spawn_rate=4)

NGINX_WORKER = ProcessSpec("nginx", (
    S("epoll_wait", 400, 7, None, 512, 60000, ret=1, dur=200_000),
    S("accept4", 120, 6, None, None, 0o4000, ret=9),
    S("recvfrom", 200, 9, None, 1024, 0, None, None, ret=412),
    S("openat", 110, AT_FDCWD, "/var/www/html/index.html", 0o4000 | O_RDONLY_CLOEXEC, ret=10),
    S("newfstatat", 110, 10, "", None, 0x1000),
    S("sendfile", 100, 9, 10, None, 4096, ret=4096),
    S("writev", 100, 9, None, 2, ret=240),
    S("write", 100, 4, "192.168.1.7 - - \"GET / HTTP/1.1\" 200 4096", 44, ret=44),
    S("close", 220, 10, ret=0),
    S("setsockopt", 30, 9, 6, 3, None, 4),
), uid=33, threads=2)

CC1 = ProcessSpec("cc1", (
    S("openat", 150, AT_FDCWD, "/usr/include/stdio.h", O_RDONLY_CLOEXEC, ret=4, dur=3000),
    S("openat", 80, AT_FDCWD, "/usr/lib/gcc/x86_64-linux-gnu/13/include/stddef.h", O_RDONLY_CLOEXEC, ret=5),
    S("openat", 40, AT_FDCWD, "/usr/include/nonexistent.h", O_RDONLY_CLOEXEC, ret=-2),
    S("read", 400, 4, None, 8192, ret=8192, dur=4000),
    S("newfstatat", 150, 4, "", None, 0x1000),
    S("mmap", 80, None, 135168, PROT_READ | 2, MAP_PRIVATE_ANON, -1, 0),
    S("munmap", 40, None, 135168),
    S("brk", 60, None),
    S("write", 100, 5, "\t.file\t\"main.c\"\n", 4096, ret=4096),
    S("close", 230, 4, ret=0),
), uid=1000, cwd="/home/user/src")

PYTHON = ProcessSpec("python3", (
    S("futex", 300, None, 0x80, 0, None, None, 0, ret=0, dur=500_000),
    S("epoll_wait", 150, 3, None, 64, 1000, ret=0, dur=1_000_000),
    S("read", 80, 3, None, 65536, ret=512),
    S("write", 80, 1, "INFO request served\n", 20, ret=20),
    S("getpid", 30),
    S("clock_nanosleep", 20, 1, 0, None, None, dur=10_000_000),
    S("openat", 20, AT_FDCWD, "/usr/lib/python3.12/json/__init__.py", O_RDONLY_CLOEXEC, ret=6),
    S("close", 20, 6, ret=0),
), uid=1000, threads=3)

JOURNALD = ProcessSpec("systemd-journal", (
    S("epoll_wait", 100, 5, None, 32, -1, ret=1, dur=2_000_000),
    S("recvmsg", 100, 8, None, 0o2000000 | 0x40, ret=120),
    S("writev", 60, 20, None, 8, ret=256),
    S("ftruncate", 3, 20, 8388608),
    S("fstatfs", 5, 20, None),
), uid=0, cpu=0)

SSHD = ProcessSpec("sshd", (
    S("poll", 50, None, 2, -1, ret=1, dur=1_000_000),
    S("read", 40, 4, None, 16384, ret=36),
    S("write", 40, 5, "encrypted", 36, ret=36),
    S("getrandom", 5, None, 32, 0, ret=32),
    S("rt_sigprocmask", 30, 0, None, None, 8),
), uid=0)

GETPPID = ProcessSpec("getppid-loop", (S("getppid", 1000, dur=200),), uid=1000)

BUILTIN_WORKLOADS: dict[str, WorkloadSpec] = {w.name: w for w in (
    WorkloadSpec("default", "a desktop: bash running commands, nginx workers, a compiler, a Python service, "
                            "journald, sshd", (BASH, NGINX_WORKER, CC1, PYTHON, JOURNALD, SSHD)),
    WorkloadSpec("shell", "an interactive bash that reads input and runs ls, cat, grep and git",
                 (BASH,)),
    WorkloadSpec("webserver", "two nginx workers serving static files (epoll, accept4, sendfile)",
                 (NGINX_WORKER, NGINX_WORKER)),
    WorkloadSpec("compiler", "cc1 compiling: opens headers, reads, maps memory, writes assembly",
                 (CC1,)),
    WorkloadSpec("getppid", "one process calling getppid in a loop (the real-kernel check's loop)",
                 (GETPPID,)),
)}
