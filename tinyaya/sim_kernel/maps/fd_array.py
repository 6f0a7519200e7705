"""Arrays of kernel objects by fd: BPF_MAP_TYPE_PROG_ARRAY and BPF_MAP_TYPE_PERF_EVENT_ARRAY (arraymap.c).

User space stores an fd (a u32 value); the map keeps the object behind it
(``map_fd_get_ptr``) and a reference on it. A program uses a PROG_ARRAY for
tail calls (``prog_at``) and a PERF_EVENT_ARRAY for ``bpf_perf_event_output``
(``perf_event_at``). Objects come from ``kernel.fds``; the program and perf
event classes are recognised lazily so that this module imports neither.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import E2BIG, EBADF, EINVAL, ENOENT, ENOTSUPP, EOPNOTSUPP, fail
from .array import array_map_alloc_check
from .base import MAP_STRUCT_SIZE, BpfMap, F, T, U

__all__ = ["FdArrayMap", "fd_array_map_alloc_check", "array_index", "fd_object"]

BPF_PROG_TYPE_EXT = 28


def fd_array_map_alloc_check(attr: Any) -> None:
    """``fd_array_map_alloc_check``: u32 values (fds), no program access flags, then the array checks."""
    if attr.value_size != 4:
        raise fail(EINVAL, "fd maps need value_size 4")
    if attr.map_flags & (F.BPF_F_RDONLY_PROG | F.BPF_F_WRONLY_PROG):
        raise fail(EINVAL, "fd maps cannot be read-only or write-only for programs")
    array_map_alloc_check(attr)


def array_index(key: bytes | None) -> int:
    return int.from_bytes((key or b"")[:4].ljust(4, b"\0"), "little")


def fd_object(kernel: Any, value: bytes) -> Any:
    """The object behind the u32 fd in ``value`` (EBADF if the fd is not open)."""
    fd = int.from_bytes(bytes(value[:4]).ljust(4, b"\0"), "little", signed=True)
    return kernel.fds.file(fd).obj


def _is_prog(obj: object) -> bool:
    try:
        from ..prog import BpfProg
    except ImportError:
        return hasattr(obj, "prog_type") and hasattr(obj, "insns")
    return isinstance(obj, BpfProg)


def _is_perf_event(obj: object) -> bool:
    try:
        from ..tracing.perf_event import PerfEvent
    except ImportError:
        return type(obj).__name__ == "PerfEvent"
    return isinstance(obj, PerfEvent)


class FdArrayMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_PROG_ARRAY, T.BPF_MAP_TYPE_PERF_EVENT_ARRAY)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        fd_array_map_alloc_check(attr)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        super().__init__(kernel, attr)
        self.is_prog_array = self.map_type == T.BPF_MAP_TYPE_PROG_ARRAY
        self.slots: dict[int, Any] = {}
        try:
            self.charge(MAP_STRUCT_SIZE + 8 * self.max_entries)
        except BaseException:
            self.release()
            raise
        #: the program type every program in a PROG_ARRAY must share (``bpf_prog_map_compatible``)
        self.owner_prog_type: int | None = None

    # -- references -------------------------------------------------------------------------------
    def _hold(self, obj: Any) -> None:
        self.kernel.fds.hold(obj)

    def _put(self, obj: Any) -> None:
        self.kernel.fds.put(obj)

    def clear(self) -> None:
        old, self.slots = self.slots, {}
        for obj in old.values():
            self._put(obj)

    def free(self) -> None:
        self.clear()

    def release_uref(self) -> None:
        """Last user reference gone: a PROG_ARRAY forgets its programs (``prog_array_map_clear``), a
        PERF_EVENT_ARRAY its events unless BPF_F_PRESERVE_ELEMS (``perf_event_fd_array_release``)."""
        if self.is_prog_array or not self.map_flags & F.BPF_F_PRESERVE_ELEMS:
            self.clear()

    def _get_ptr(self, value: bytes) -> Any:
        """``prog_fd_array_get_ptr`` / ``perf_event_fd_array_get_ptr``."""
        obj = fd_object(self.kernel, value)
        if self.is_prog_array:
            if not _is_prog(obj):
                raise fail(EINVAL, "fd is not a program")
            ptype = int(getattr(obj, "prog_type", 0))
            if ptype == BPF_PROG_TYPE_EXT or (self.owner_prog_type is not None and ptype != self.owner_prog_type):
                raise fail(EINVAL, "program type differs from the prog array's owner")
            if self.owner_prog_type is None:
                self.owner_prog_type = ptype
        elif not _is_perf_event(obj):
            raise fail(EBADF, "fd is not a perf event")
        return obj

    # -- lookups for helpers -------------------------------------------------------------------------
    def prog_at(self, index: int) -> Any:
        """The program a tail call to ``index`` runs, or None."""
        return self.slots.get(index) if self.is_prog_array else None

    def perf_event_at(self, index: int) -> Any:
        """The perf event stored at ``index`` (``bpf_perf_event_output``), or None."""
        return None if self.is_prog_array else self.slots.get(index)

    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        return 0  # fd_array_map_lookup_elem: -EOPNOTSUPP, programs never get a pointer

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        return -EOPNOTSUPP

    def prog_delete(self, key: bytes) -> int:
        return -EOPNOTSUPP

    def for_each(self, cpu: int = 0) -> Iterator[tuple[int, int]]:
        return iter(())

    # -- syscall side -------------------------------------------------------------------------------
    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        """``bpf_fd_array_map_lookup_elem``: a prog array gives the program's id; perf event arrays ENOTSUPP."""
        if not self.is_prog_array:
            raise fail(ENOTSUPP, "perf event arrays cannot be looked up")
        obj = self.slots.get(array_index(key))
        if obj is None:
            raise fail(ENOENT, "empty slot")
        return int(getattr(obj, "id", 0)).to_bytes(4, "little")

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        """``bpf_fd_array_map_update_elem``: BPF_ANY only, index in range, then the fd."""
        self.check_sys_write()
        if flags != U.BPF_ANY:
            raise fail(EINVAL, "fd array updates take BPF_ANY only")
        i = array_index(key)
        if i >= self.max_entries:
            raise fail(E2BIG, f"index {i} >= max_entries {self.max_entries}")
        obj = self._get_ptr(value)
        self._hold(obj)
        old = self.slots.get(i)
        self.slots[i] = obj
        if old is not None:
            self._put(old)

    def sys_delete(self, key: bytes | None) -> None:
        """``fd_array_map_delete_elem``."""
        self.check_sys_write()
        i = array_index(key)
        if i >= self.max_entries:
            raise fail(E2BIG, f"index {i} >= max_entries {self.max_entries}")
        old = self.slots.pop(i, None)
        if old is None:
            raise fail(ENOENT, "empty slot")
        self._put(old)

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        i = array_index(key) if key is not None else self.max_entries
        if i >= self.max_entries:
            return bytes(4)
        if i == self.max_entries - 1:
            raise fail(ENOENT, "last index")
        return (i + 1).to_bytes(4, "little")
