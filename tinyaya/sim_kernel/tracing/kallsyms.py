"""The simulated kernel's symbol table: every function a kprobe may attach to.

Like ``/proc/kallsyms`` (kernel/kallsyms.c), each symbol has an address in
the kernel text (from ``0xffffffff81000000``, like x86-64's ``_text``), a
size and a type letter; tinyaya adds the C prototype, which says which
register (``pt_regs``) carries which argument.

The set mirrors what a syscall walks through on Linux 6.x: the tracepoint
functions ``sys_enter``/``sys_exit`` (``trace_sys_enter(struct pt_regs *regs,
long id)`` in include/trace/events/syscalls.h), one ``__x64_sys_<name>``
wrapper per syscall (arch/x86/include/asm/syscall_wrapper.h: its only
argument is the user ``pt_regs``), the deeper functions of the common paths
(fs/open.c ``do_sys_openat2``, fs/read_write.c ``vfs_read``…), and DragonOS's
dispatcher ``dragonos_kernel::syscall::Syscall::handle``, with the syscall
number in rsi, so DragonOS's ``syscall_ebpf`` attach target works.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from .syscalls import SYSCALLS

__all__ = ["KernelFunction", "Kallsyms", "TEXT_BASE", "DRAGONOS_SYSCALL_HANDLE", "kernel_functions"]

TEXT_BASE = 0xFFFF_FFFF_8100_0000
_FUNC_SPAN = 0x100
DRAGONOS_SYSCALL_HANDLE = "dragonos_kernel::syscall::Syscall::handle"


@dataclass(frozen=True, slots=True)
class KernelFunction:
    """A function in the simulated kernel text."""

    name: str
    addr: int
    size: int
    ret_type: str
    #: (C type, name) of each parameter, in calling-convention order
    params: tuple[tuple[str, str], ...]

    @property
    def address(self) -> int:
        return self.addr

    @property
    def signature(self) -> str:
        params = ", ".join(f"{t}{'' if t.endswith('*') else ' '}{n}" for t, n in self.params) or "void"
        return f"{self.ret_type} {self.name}({params})"


_REGS = (("struct pt_regs *", "regs"),)

#: the deeper functions: (return type, name, parameters); sources: fs/open.c, fs/read_write.c, fs/exec.c,
#: kernel/exit.c, kernel/fork.c, net/ipv4/tcp_output.c, net/socket.c, kernel/futex/syscalls.c,
#: fs/eventpoll.c, mm/mmap.c, kernel/time/hrtimer.c, fs/file.c, fs/stat.c
_DEEP: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("long", "do_sys_openat2", (("int", "dfd"), ("const char *", "filename"), ("struct open_how *", "how"))),
    ("struct file *", "do_filp_open", (("int", "dfd"), ("struct filename *", "pathname"),
                                       ("const struct open_flags *", "op"))),
    ("int", "vfs_open", (("const struct path *", "path"), ("struct file *", "file"))),
    ("ssize_t", "ksys_read", (("unsigned int", "fd"), ("char *", "buf"), ("size_t", "count"))),
    ("ssize_t", "ksys_write", (("unsigned int", "fd"), ("const char *", "buf"), ("size_t", "count"))),
    ("ssize_t", "vfs_read", (("struct file *", "file"), ("char *", "buf"), ("size_t", "count"),
                             ("loff_t *", "pos"))),
    ("ssize_t", "vfs_write", (("struct file *", "file"), ("const char *", "buf"), ("size_t", "count"),
                              ("loff_t *", "pos"))),
    ("int", "close_fd", (("unsigned int", "fd"),)),
    ("int", "vfs_fstatat", (("int", "dfd"), ("const char *", "filename"), ("struct kstat *", "stat"),
                            ("int", "flags"))),
    ("int", "do_execveat_common", (("int", "fd"), ("struct filename *", "filename"),
                                   ("struct user_arg_ptr", "argv"), ("struct user_arg_ptr", "envp"),
                                   ("int", "flags"))),
    ("void", "do_exit", (("long", "code"),)),
    ("void", "do_group_exit", (("int", "exit_code"),)),
    ("pid_t", "kernel_clone", (("struct kernel_clone_args *", "args"),)),
    ("void", "wake_up_new_task", (("struct task_struct *", "p"),)),
    ("int", "__sys_connect", (("int", "fd"), ("struct sockaddr *", "uservaddr"), ("int", "addrlen"))),
    ("int", "tcp_connect", (("struct sock *", "sk"),)),
    ("int", "tcp_v4_connect", (("struct sock *", "sk"), ("struct sockaddr *", "uaddr"), ("int", "addr_len"))),
    ("int", "__sys_sendto", (("int", "fd"), ("void *", "buff"), ("size_t", "len"), ("unsigned int", "flags"),
                             ("struct sockaddr *", "addr"), ("int", "addr_len"))),
    ("int", "__sys_recvfrom", (("int", "fd"), ("void *", "ubuf"), ("size_t", "size"), ("unsigned int", "flags"),
                               ("struct sockaddr *", "addr"), ("int *", "addr_len"))),
    ("int", "__sys_socket", (("int", "family"), ("int", "type"), ("int", "protocol"))),
    ("int", "__sys_accept4", (("int", "fd"), ("struct sockaddr *", "upeer_sockaddr"),
                              ("int *", "upeer_addrlen"), ("int", "flags"))),
    ("long", "do_futex", (("u32 *", "uaddr"), ("int", "op"), ("u32", "val"), ("ktime_t *", "timeout"),
                          ("u32 *", "uaddr2"), ("u32", "val2"))),
    ("int", "do_epoll_wait", (("int", "epfd"), ("struct epoll_event *", "events"), ("int", "maxevents"),
                              ("struct timespec64 *", "to"))),
    ("unsigned long", "ksys_mmap_pgoff", (("unsigned long", "addr"), ("unsigned long", "len"),
                                          ("unsigned long", "prot"), ("unsigned long", "flags"),
                                          ("unsigned long", "fd"), ("unsigned long", "pgoff"))),
    ("long", "hrtimer_nanosleep", (("ktime_t", "rqtp"), ("const enum hrtimer_mode", "mode"),
                                   ("const clockid_t", "clockid"))),
)


class Kallsyms:
    """The symbol table of one simulated kernel (immutable after construction)."""

    def __init__(self) -> None:
        self.functions: list[KernelFunction] = []
        self.by_name: dict[str, KernelFunction] = {}
        self._add("void", "sys_enter", _REGS + (("long", "id"),))
        self._add("void", "sys_exit", _REGS + (("long", "ret"),))
        # arch/x86/entry/syscall_64.c (6.9+): the dispatcher do_syscall_64 calls for every syscall
        self._add("long", "x64_sys_call", (("const struct pt_regs *", "regs"), ("unsigned int", "nr")))
        for ret, name, params in _DEEP:
            self._add(ret, name, params)
        # DragonOS: Syscall::handle(&self?, syscall_num: usize, args: &[usize], frame: &mut TrapFrame);
        # DragonOS's syscall_ebpf example reads the number from rsi.
        self._add("usize", DRAGONOS_SYSCALL_HANDLE, (("struct TrapFrame *", "frame"), ("usize", "syscall_num"),
                                                     ("const usize *", "args"), ("usize", "args_len")))
        seen: set[str] = set()
        for sc in SYSCALLS:
            if sc.args is None or sc.kname in seen:
                continue
            seen.add(sc.kname)
            self._add("long", sc.entry_symbol, (("const struct pt_regs *", "regs"),))
        self._add("long", "__x64_sys_ni_syscall", (("const struct pt_regs *", "regs"),))

    def _add(self, ret: str, name: str, params: tuple[tuple[str, str], ...]) -> None:
        fn = KernelFunction(name, TEXT_BASE + _FUNC_SPAN * len(self.functions), _FUNC_SPAN, ret, params)
        self.functions.append(fn)
        self.by_name[name] = fn

    def get(self, name: str) -> KernelFunction | None:
        return self.by_name.get(name)

    def lookup_addr(self, addr: int) -> tuple[KernelFunction, int] | None:
        """The function containing ``addr`` and the offset in it (what ``%pS`` prints)."""
        i = (addr - TEXT_BASE) // _FUNC_SPAN
        if addr < TEXT_BASE or i >= len(self.functions):
            return None
        fn = self.functions[i]
        return fn, addr - fn.addr

    def match(self, pattern: str | None = None) -> list[KernelFunction]:
        """Functions whose name matches a glob (``vfs_*``) or contains ``pattern``; all if None."""
        if not pattern:
            return list(self.functions)
        glob = any(c in pattern for c in "*?[")
        return [f for f in self.functions if (fnmatch.fnmatchcase(f.name, pattern) if glob else pattern in f.name)]

    def proc_kallsyms(self) -> bytes:
        """``/proc/kallsyms``: ``<address> <type> <name>`` lines, by address."""
        lines = [f"{TEXT_BASE:016x} T _text", f"{TEXT_BASE:016x} T _stext"]
        lines += [f"{f.addr:016x} T {f.name}" for f in self.functions]
        end = TEXT_BASE + _FUNC_SPAN * len(self.functions)
        lines.append(f"{end:016x} T _etext")
        return ("\n".join(lines) + "\n").encode()


_DEFAULT: Kallsyms | None = None


def kernel_functions() -> list[KernelFunction]:
    """Every function of the simulated kernel (the table is the same for every ``SimKernel``)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Kallsyms()
    return list(_DEFAULT.functions)
