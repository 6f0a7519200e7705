"""uprobes on the simulated machine: a probe in a real shared library fires when a simulated
process makes the syscall that library function wraps.

A uprobe is (binary path, file offset), as the uprobe PMU receives it
(``config1`` = path, ``config2`` = offset; kernel/events/uprobes.c). The
simulated processes have no machine code, but they behave as if they called
glibc: ``getppid()`` in libc.so.6 runs just before the getppid syscall and
returns just after it. So the offset is turned into the function's names
(through the ELF program headers and symbol tables, with pyelftools), the
names into a syscall (``__libc_openat64`` → openat; ``open`` → openat, as
glibc ≥ 2.26 does it), and the probe fires around that syscall. A uprobe at an
offset that is no syscall wrapper is valid but never fires.

The uprobe's ``pt_regs`` are user registers: the wrapper's C arguments in
rdi, rsi, rdx, rcx, r8, r9, ip at the function in the process's libc
mapping; a uretprobe sees the C return value in rax (-1 when the syscall
failed, glibc's errno convention).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .syscalls import BY_NAME

__all__ = ["UprobeSite", "resolve_offset", "syscall_of", "LIBC_BASE"]

#: where the simulated processes map the probed library (a typical x86-64 libc base)
LIBC_BASE = 0x7F3A_2000_0000

#: glibc functions that issue a differently named syscall on x86-64
_GLIBC_ALIASES = {"open": "openat", "open64": "openat", "creat": "openat", "creat64": "openat",
                  "stat": "newfstatat", "stat64": "newfstatat", "lstat": "newfstatat", "lstat64": "newfstatat",
                  "fstat": "newfstatat", "fstat64": "newfstatat", "fstatat": "newfstatat", "fstatat64": "newfstatat",
                  "fork": "clone", "wait": "wait4", "waitpid": "wait4", "nanosleep": "clock_nanosleep",
                  "usleep": "clock_nanosleep", "sleep": "clock_nanosleep", "select": "pselect6",
                  "dup2": "dup2", "sigaction": "rt_sigaction", "sigprocmask": "rt_sigprocmask",
                  "pread": "pread64", "pwrite": "pwrite64", "lseek64": "lseek", "mmap64": "mmap",
                  "prlimit": "prlimit64", "getdents": "getdents64", "posix_fadvise": "fadvise64"}


def syscall_of(names: tuple[str, ...]) -> int | None:
    """The syscall a libc function with these names (aliases at one address) makes, if any."""
    for name in names:
        base = name.split("@", 1)[0]
        for cand in (base, base.lstrip("_"), base.lstrip("_").removeprefix("libc_")):
            if cand in _GLIBC_ALIASES:
                return BY_NAME[_GLIBC_ALIASES[cand]].nr
            if cand in BY_NAME:
                return BY_NAME[cand].nr
            if cand.endswith("64") and cand[:-2] in BY_NAME:
                return BY_NAME[cand[:-2]].nr
    return None


@lru_cache(maxsize=32)
def _elf_functions(path: str, mtime_ns: int) -> tuple[list[tuple[int, int, int, int]], dict[int, tuple[str, ...]],
                                                     list[tuple[int, int, int]]]:
    """(PT_LOAD (offset, filesz, vaddr, memsz)), {function address: names}, [(start, end, address)]."""
    from elftools.elf.elffile import ELFFile

    loads: list[tuple[int, int, int, int]] = []
    names: dict[int, list[str]] = {}
    ranges: list[tuple[int, int, int]] = []
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                loads.append((seg["p_offset"], seg["p_filesz"], seg["p_vaddr"], seg["p_memsz"]))
        for secname in (".symtab", ".dynsym"):
            sec = elf.get_section_by_name(secname)
            if sec is None or not hasattr(sec, "iter_symbols"):
                continue
            for sym in sec.iter_symbols():
                if sym["st_info"]["type"] not in ("STT_FUNC", "STT_GNU_IFUNC") or not sym["st_value"]:
                    continue
                addr = int(sym["st_value"])
                lst = names.setdefault(addr, [])
                if sym.name and sym.name not in lst:
                    lst.append(sym.name)
                ranges.append((addr, addr + max(1, int(sym["st_size"])), addr))
    return loads, {a: tuple(n) for a, n in names.items()}, sorted(set(ranges))


def resolve_offset(path: str, offset: int) -> tuple[int, tuple[str, ...]]:
    """(virtual address, names of the function containing it) of a file offset; names empty if none.

    Raises OSError(ENOENT) for a missing file and ValueError for an offset past its end.
    """
    st = os.stat(path)
    if offset < 0 or offset >= st.st_size:
        raise ValueError(f"offset {offset:#x} is past the end of {path} ({st.st_size} bytes)")
    try:
        loads, names, ranges = _elf_functions(path, st.st_mtime_ns)
    except Exception:
        return offset, ()  # not an ELF file: a valid probe that no simulated process reaches
    vaddr = offset
    for p_off, filesz, p_vaddr, _memsz in loads:
        if p_off <= offset < p_off + filesz:
            vaddr = offset - p_off + p_vaddr
            break
    if vaddr in names:
        return vaddr, names[vaddr]
    for start, end, addr in ranges:
        if start <= vaddr < end:
            return vaddr, names.get(addr, ())
    return vaddr, ()


@dataclass(eq=False)
class UprobeSite:
    """The uprobes at one (path, offset): their programs with the pid each perf event filters on."""

    path: str
    offset: int
    vaddr: int
    names: tuple[str, ...]
    nr: int | None
    #: (prog, cookie, ip, pid filter or -1), in attach order
    entry: list[tuple[Any, int, int, int]] = field(default_factory=list)
    ret: list[tuple[Any, int, int, int]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.path}:{self.names[0] if self.names else hex(self.offset)}"

    @property
    def ip(self) -> int:
        return LIBC_BASE + self.vaddr
