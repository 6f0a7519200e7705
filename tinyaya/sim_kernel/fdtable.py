"""The simulated kernel's file descriptors, object references and id allocators.

Linux gives every bpf object (map, prog, link, btf) and every perf event an
anonymous-inode file; an fd refers to a ``struct file`` whose ``f_mode``
carries the access mode (``bpf_get_file_flag``: BPF_F_RDONLY/WRONLY map fds).
Objects are refcounted (``bpf_map_inc``/``bpf_map_put``): an fd holds a
reference and a user reference ("uref"), a program holds plain references on
the maps it uses, a link on its program, a pin on its object. When the last
reference goes, the object is released (its id disappears from
``*_GET_NEXT_ID``, its memory is uncharged); when the last uref goes,
``map_release_uref`` runs (a PROG_ARRAY forgets its programs).

Here a kernel object is any Python object. Optional hooks it may define:
``release()`` (last reference dropped) and ``release_uref()`` (last user
reference dropped). ``FdTable.hold``/``put`` are the ``*_inc``/``*_put`` of
every object type; other parts of the simulated kernel (maps holding inner
maps or programs, perf events holding programs) use them too.
"""
from __future__ import annotations

import bisect
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import EBADF, EMFILE, ENOSPC, fail

__all__ = ["FMODE_READ", "FMODE_WRITE", "FMODE_RDWR", "File", "FdTable", "IdAllocator", "INT_MAX", "StdioFile"]

FMODE_READ = 1
FMODE_WRITE = 2
FMODE_RDWR = FMODE_READ | FMODE_WRITE
INT_MAX = 0x7FFFFFFF
#: ``BPF_MAX_REFCNT`` is gone in 6.x (refcounts are 64-bit); fds start at 3 as in a process with stdio open
_FIRST_FD = 3


class StdioFile:
    """What fds 0, 1 and 2 are in a process: open files that are no bpf object (so an attr that names
    fd 0 by being zero gets EINVAL, "not a map/program", as on Linux, rather than EBADF)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __repr__(self) -> str:
        return f"<stdio fd {self.fd}>"


@dataclass(eq=False)
class File:
    """An open file: the object it refers to and its ``f_mode``."""

    obj: object
    mode: int = FMODE_RDWR


class _Ref:
    __slots__ = ("obj", "refcnt", "usercnt")

    def __init__(self, obj: object) -> None:
        self.obj = obj
        self.refcnt = 0
        self.usercnt = 0


class FdTable:
    """Small-integer fds (lowest free first, from 3) over refcounted objects."""

    def __init__(self, max_fds: int | None = None) -> None:
        if max_fds is None:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            max_fds = soft if soft != resource.RLIM_INFINITY else 1 << 20
        self.max_fds = max_fds
        self._files: dict[int, File] = {fd: File(StdioFile(fd)) for fd in range(_FIRST_FD)}
        self._free: list[int] = []  # sorted fds below _next that are free
        self._next = _FIRST_FD
        self._refs: dict[int, _Ref] = {}

    # -- references ---------------------------------------------------------------------------
    def hold(self, obj: object, *, uref: bool = False) -> None:
        """Take a reference on ``obj`` (``bpf_map_inc``/``bpf_prog_inc``); ``uref`` also a user reference."""
        ref = self._refs.get(id(obj))
        if ref is None:
            ref = self._refs[id(obj)] = _Ref(obj)
        ref.refcnt += 1
        if uref:
            ref.usercnt += 1

    def put(self, obj: object, *, uref: bool = False) -> None:
        """Drop a reference; the last one releases the object (``bpf_map_put``)."""
        ref = self._refs.get(id(obj))
        if ref is None:
            return
        if uref and ref.usercnt > 0:
            ref.usercnt -= 1
            if ref.usercnt == 0:
                hook = getattr(obj, "release_uref", None)
                if callable(hook):
                    hook()
        ref.refcnt -= 1
        if ref.refcnt <= 0:
            del self._refs[id(obj)]
            hook = getattr(obj, "release", None)
            if callable(hook):
                hook()

    def refcount(self, obj: object) -> int:
        ref = self._refs.get(id(obj))
        return ref.refcnt if ref else 0

    def alive(self, obj: object) -> bool:
        return id(obj) in self._refs

    # -- descriptors --------------------------------------------------------------------------
    def install(self, obj: object, mode: int = FMODE_RDWR) -> int:
        """A new fd for ``obj`` (``anon_inode_getfd``), taking a reference and a user reference.

        EMFILE past RLIMIT_NOFILE, as ``get_unused_fd_flags``.
        """
        if self._free:
            fd = self._free.pop(0)
        else:
            if self._next >= self.max_fds:
                raise fail(EMFILE, "too many open files")
            fd = self._next
            self._next += 1
        self.hold(obj, uref=True)
        self._files[fd] = File(obj, mode)
        return fd

    def file(self, fd: int) -> File:
        """The file of ``fd`` (``fdget``); EBADF if none."""
        f = self._files.get(fd) if isinstance(fd, int) else None
        if f is None:
            raise fail(EBADF, f"fd {fd}")
        return f

    def get(self, fd: int) -> object:
        return self.file(fd).obj

    def close(self, fd: int) -> None:
        """close(2): EBADF for an fd that is not open."""
        f = self._files.pop(fd, None) if isinstance(fd, int) else None
        if f is None:
            raise fail(EBADF, f"fd {fd}")
        bisect.insort(self._free, fd)
        self.put(f.obj, uref=True)

    def close_all(self) -> None:
        """Close every fd this kernel handed out (the stdio placeholders stay)."""
        for fd in sorted(self._files):
            if not isinstance(self._files[fd].obj, StdioFile):
                self.close(fd)

    def __contains__(self, fd: object) -> bool:
        return fd in self._files

    def __len__(self) -> int:
        """How many bpf/perf fds are open (the stdio placeholders do not count)."""
        return sum(not isinstance(f.obj, StdioFile) for f in self._files.values())

    def items(self) -> Iterator[tuple[int, File]]:
        return iter(sorted(self._files.items()))


class IdAllocator:
    """``idr_alloc_cyclic(idr, obj, 1, INT_MAX)``: ids grow and wrap, never reused while live."""

    def __init__(self) -> None:
        self._objs: dict[int, object] = {}
        self._sorted: list[int] = []
        self._cursor = 1

    def alloc(self, obj: object, prefer: int | None = None) -> int:
        """A new id; ``prefer`` keeps an object's id when another process's kernel reopens its pin, so
        that every simulated kernel sharing a bpffs names the object alike (Linux has one id space)."""
        if len(self._objs) >= INT_MAX - 1:
            raise fail(ENOSPC, "id space exhausted")
        if prefer is not None and 0 < prefer < INT_MAX and prefer not in self._objs:
            self._objs[prefer] = obj
            bisect.insort(self._sorted, prefer)
            self._cursor = max(self._cursor, prefer + 1 if prefer + 1 < INT_MAX else 1)
            return prefer
        nid = self._cursor
        while nid in self._objs:
            nid = nid + 1 if nid + 1 < INT_MAX else 1
        self._objs[nid] = obj
        bisect.insort(self._sorted, nid)
        self._cursor = nid + 1 if nid + 1 < INT_MAX else 1
        return nid

    def remove(self, oid: int) -> None:
        if self._objs.pop(oid, None) is not None:
            i = bisect.bisect_left(self._sorted, oid)
            del self._sorted[i]

    def find(self, oid: int) -> object | None:
        return self._objs.get(oid)

    def get_next(self, start: int) -> int | None:
        """``idr_get_next`` from ``start + 1``: the smallest live id > start."""
        i = bisect.bisect_right(self._sorted, start)
        return self._sorted[i] if i < len(self._sorted) else None

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._sorted))

    def values(self, pred: Callable[[object], bool] | None = None) -> list[object]:
        return [o for o in self._objs.values() if pred is None or pred(o)]
