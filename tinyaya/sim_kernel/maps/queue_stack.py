"""BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK (kernel/bpf/queue_stack_maps.c).

Keyless (``key_size`` 0): push with ``map_update_elem``/``bpf_map_push_elem``,
peek with lookup, pop with ``lookup_and_delete``. A full map refuses a push
with E2BIG unless the flag is BPF_EXIST, which drops the oldest element
first (``queue_stack_map_push_elem``). Both kinds drop the *oldest* element:
the queue's head, the stack's bottom.

The elements live in a ring of ``max_entries + 1`` slots of the shared slot
storage (slot 0 holds the head and tail positions), so a pinned queue is
shared with other processes like a hash map: a push writes the free slot
first and then publishes the new positions, each an atomic update.
"""
from __future__ import annotations

import struct
from typing import Any

from ..errors import E2BIG, EINVAL, ENOENT, fail
from .base import BPF_F_ACCESS_MASK, KMALLOC_MAX_SIZE, MAP_STRUCT_SIZE, BpfMap, F, T, U, flags_access_ok, round_up
from .storage import SlotStorage

__all__ = ["QueueStackMap", "QUEUE_STACK_CREATE_FLAG_MASK"]

QUEUE_STACK_CREATE_FLAG_MASK = F.BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK


class QueueStackMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK)
    shareable = True

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``queue_stack_map_alloc_check``."""
        if (attr.max_entries == 0 or attr.key_size != 0 or attr.value_size == 0
                or attr.map_flags & ~QUEUE_STACK_CREATE_FLAG_MASK or not flags_access_ok(attr.map_flags)):
            raise fail(EINVAL, "queue/stack maps need key_size 0, value_size > 0 and max_entries > 0")
        if attr.value_size > KMALLOC_MAX_SIZE:
            raise fail(E2BIG, f"value_size {attr.value_size} > {KMALLOC_MAX_SIZE}")

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        super().__init__(kernel, attr)
        self.stack = self.map_type == T.BPF_MAP_TYPE_STACK
        #: the ring has one slot more than max_entries, as Linux's, so a push always writes a free slot
        self.ring = self.max_entries + 1
        try:
            # queue_stack_map_alloc: (max_entries + 1) * value_size, allocated (and charged) up front
            self.charge(MAP_STRUCT_SIZE + self.ring * self.value_size)
            # slot 0 holds the positions (u64 head: the oldest, u64 tail: one past the newest), then the ring
            self.storage = SlotStorage(self, max(16, round_up(self.value_size, 8)), self.ring + 1, charge=False)
        except BaseException:
            self.release()
            raise

    def free(self) -> None:
        if hasattr(self, "storage"):
            self.storage.close()

    def _pos(self) -> tuple[int, int]:
        head, tail = struct.unpack("<QQ", self.storage.read(0, 0, 16))
        return head, tail

    def _value(self, pos: int) -> bytes:
        return self.storage.read(1 + pos % self.ring, 0, self.value_size)

    def __len__(self) -> int:
        head, tail = self.storage.read_consistent(self._pos)
        return tail - head

    # -- the three ops, shared by both faces ---------------------------------------------------------
    def prog_push(self, value: bytes, flags: int) -> int:
        """``queue_stack_map_push_elem``."""
        if flags & U.BPF_NOEXIST or flags > U.BPF_EXIST:
            return -EINVAL
        st = self.storage
        with st.transaction():
            head, tail = self._pos()
            if tail - head >= self.max_entries:
                if not flags & U.BPF_EXIST:
                    return -E2BIG
                head += 1  # drop the oldest
            st.write(1 + tail % self.ring, 0, bytes(value[:self.value_size]).ljust(self.value_size, b"\0"))
            st.write(0, 0, struct.pack("<QQ", head, tail + 1))
        return 0

    def _pop_peek(self, delete: bool) -> bytes | int:
        st = self.storage
        if not delete:
            def peek() -> bytes | int:
                head, tail = self._pos()
                if head == tail:
                    return -ENOENT
                return self._value(tail - 1 if self.stack else head)
            return st.read_consistent(peek)
        with st.transaction():
            head, tail = self._pos()
            if head == tail:
                return -ENOENT
            if self.stack:
                out = self._value(tail - 1)
                st.write(0, 0, struct.pack("<QQ", head, tail - 1))
            else:
                out = self._value(head)
                st.write(0, 0, struct.pack("<QQ", head + 1, tail))
        return out

    def prog_pop(self, cpu: int = 0) -> bytes | int:
        return self._pop_peek(True)

    def prog_peek(self, cpu: int = 0, value: bytes | None = None) -> bytes | int:
        return self._pop_peek(False)

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        return -EINVAL

    def prog_delete(self, key: bytes) -> int:
        return -EINVAL

    # -- syscall side -------------------------------------------------------------------------------
    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        out = self.prog_peek()
        if isinstance(out, int):
            raise fail(-out, "empty")
        return out

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        err = self.prog_push(value, flags)
        if err:
            raise fail(-err, "push")

    def sys_delete(self, key: bytes | None) -> None:
        raise fail(EINVAL, "queue/stack elements are popped, not deleted")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        raise fail(EINVAL, "queues and stacks have no keys")

    def sys_lookup_and_delete(self, key: bytes | None, flags: int = 0) -> bytes:
        self.check_sys_write()
        if flags:
            raise fail(EINVAL, "pop flags")
        out = self.prog_pop()
        if isinstance(out, int):
            raise fail(-out, "empty")
        return out
