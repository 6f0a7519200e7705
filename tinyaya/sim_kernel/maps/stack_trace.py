"""BPF_MAP_TYPE_STACK_TRACE (kernel/bpf/stackmap.c): stack id -> ``u64 ips[value_size / 8]``.

``bpf_get_stackid`` hashes the instruction pointers of a stack (``jhash2``
over its u32 words, seed 0) and stores them in bucket ``hash & (n_buckets -
1)`` (``n_buckets = roundup_pow_of_two(max_entries)``), returning that bucket
as the stack id: the same stack gets the same id, a different stack hashing
to a taken bucket gets EEXIST unless BPF_F_REUSE_STACKID. With
BPF_F_STACK_BUILD_ID a frame is a ``struct bpf_stack_build_id`` (32 bytes;
the simulated kernel has no build ids, so each frame is
BPF_STACK_BUILD_ID_IP with its ip, as Linux reports frames it cannot
resolve).

The simulated kernel's stacks are the ip chain of the simulated kernel
function a program runs in (``kernel_stack``: the probed function's ip); user
stacks are empty (no user unwinder), so BPF_F_USER_STACK gets EFAULT.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from ..errors import E2BIG, EEXIST, EFAULT, EINVAL, ENOENT, fail
from .base import MAP_STRUCT_SIZE, BpfMap, F, T, roundup_pow_of_two
from .btf_checks import check_no_btf
from .jhash import jhash2

__all__ = ["StackTraceMap", "kernel_stack", "BPF_F_SKIP_FIELD_MASK", "BPF_F_USER_STACK", "BPF_F_FAST_STACK_CMP",
           "BPF_F_REUSE_STACKID", "PERF_EVENT_MAX_STACK"]

STACK_CREATE_FLAG_MASK = F.BPF_F_NUMA_NODE | F.BPF_F_RDONLY | F.BPF_F_WRONLY | F.BPF_F_STACK_BUILD_ID
#: ``sysctl_perf_event_max_stack`` (kernel.perf_event_max_stack, default 127)
PERF_EVENT_MAX_STACK = 127
BPF_F_SKIP_FIELD_MASK = 0xFF
BPF_F_USER_STACK = 1 << 8
BPF_F_FAST_STACK_CMP = 1 << 9
BPF_F_REUSE_STACKID = 1 << 10
BUILD_ID_SIZE = 32  # sizeof(struct bpf_stack_build_id)
BPF_STACK_BUILD_ID_IP = 2
#: ``sizeof(struct stack_map_bucket)`` (freelist node, hash, nr) before the ips
BUCKET_HDR = 16


def kernel_stack(kernel: Any, cpu: int) -> list[int]:
    """The simulated kernel stack on ``cpu``: the ip of the function being probed (empty if none)."""
    machine = getattr(kernel, "_machine", None) or getattr(kernel, "machine", None)
    ip = int(machine.current_ip(cpu)) if machine is not None else 0
    return [ip] if ip else []


class StackTraceMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_STACK_TRACE,)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``stack_map_alloc``'s checks."""
        vs = attr.value_size
        if attr.map_flags & ~STACK_CREATE_FLAG_MASK:
            raise fail(EINVAL, "stack map flags")
        if attr.max_entries == 0 or attr.key_size != 4 or vs < 8 or vs % 8:
            raise fail(EINVAL, "stack maps need key_size 4 and value_size a multiple of 8")
        if attr.map_flags & F.BPF_F_STACK_BUILD_ID:
            if vs % BUILD_ID_SIZE or vs // BUILD_ID_SIZE > PERF_EVENT_MAX_STACK:
                raise fail(EINVAL, "build id stack map value_size")
        elif vs // 8 > PERF_EVENT_MAX_STACK:
            raise fail(EINVAL, "value_size / 8 > perf_event_max_stack")
        if attr.max_entries > 1 << 31:
            raise fail(E2BIG, "max_entries > 2^31")

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_no_btf(btf, key_type_id, value_type_id)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        self.n_buckets = roundup_pow_of_two(self.max_entries)
        self.build_id = bool(self.map_flags & F.BPF_F_STACK_BUILD_ID)
        self.elem_size = BUILD_ID_SIZE if self.build_id else 8
        self.max_depth = self.value_size // self.elem_size
        #: bucket -> (hash, the stored frames as value bytes without the zero tail)
        self.buckets: dict[int, tuple[int, bytes]] = {}
        try:  # stack_map_alloc + prealloc_elems_and_freelist: charged up front, as Linux does
            self.charge(MAP_STRUCT_SIZE + 8 * self.n_buckets + self.max_entries * (BUCKET_HDR + self.value_size))
        except BaseException:
            self.release()
            raise

    def free(self) -> None:
        self.buckets.clear()

    # -- bpf_get_stackid ----------------------------------------------------------------------------
    def get_stackid(self, ips: Sequence[int], flags: int) -> int:
        """``bpf_get_stackid(ctx, map, flags)`` for a stack of ``ips`` (innermost first): the id or -errno."""
        if flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP | BPF_F_REUSE_STACKID):
            return -EINVAL
        skip = flags & BPF_F_SKIP_FIELD_MASK
        frames = [int(ip) & 0xFFFFFFFFFFFFFFFF for ip in ips][skip:skip + self.max_depth]
        if not frames:
            return -EFAULT
        raw = struct.pack(f"<{len(frames)}Q", *frames)
        h = jhash2(list(struct.unpack(f"<{2 * len(frames)}I", raw)), 0)
        sid = h & (self.n_buckets - 1)
        if self.build_id:
            raw = b"".join(struct.pack("<i20sQ", BPF_STACK_BUILD_ID_IP, bytes(20), ip) for ip in frames)
        old = self.buckets.get(sid)
        if old is not None:
            if old[0] == h and (flags & BPF_F_FAST_STACK_CMP or old[1] == raw):
                return sid
            if not flags & BPF_F_REUSE_STACKID:
                return -EEXIST
        self.buckets[sid] = (h, raw)
        return sid

    def stackid_here(self, cpu: int, flags: int) -> int:
        """``bpf_get_stackid`` from a program running on ``cpu`` of this map's kernel."""
        ips = [] if flags & BPF_F_USER_STACK else kernel_stack(self.kernel, cpu)
        return self.get_stackid(ips, flags)

    # -- program side -------------------------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        return 0  # stack_map_lookup_elem: -EOPNOTSUPP (the verifier allows only bpf_get_stackid)

    # -- syscall side -------------------------------------------------------------------------------
    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        """``bpf_stackmap_copy``: the frames, zero-filled to value_size."""
        sid = int.from_bytes(bytes(key or b"")[:4].ljust(4, b"\0"), "little")
        b = self.buckets.get(sid)
        if b is None:
            raise fail(ENOENT, f"no stack with id {sid}")
        return b[1].ljust(self.value_size, b"\0")

    def sys_lookup_and_delete(self, key: bytes | None, flags: int = 0) -> bytes:
        """``bpf_stackmap_extract(..., delete=true)``."""
        value = self.sys_lookup(key)
        self.buckets.pop(int.from_bytes(bytes(key or b"")[:4].ljust(4, b"\0"), "little"), None)
        return value

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        raise fail(EINVAL, "stack maps are filled by bpf_get_stackid")

    def sys_delete(self, key: bytes | None) -> None:
        """``stack_map_delete_elem``."""
        self.check_sys_write()
        sid = int.from_bytes(bytes(key or b"")[:4].ljust(4, b"\0"), "little")
        if sid >= self.n_buckets:
            raise fail(E2BIG, "id >= n_buckets")
        if self.buckets.pop(sid, None) is None:
            raise fail(ENOENT, f"no stack with id {sid}")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        """``stack_map_get_next_key``: the next used bucket; a missing key restarts from 0."""
        if key is None:
            sid = 0
        else:
            sid = int.from_bytes(bytes(key)[:4].ljust(4, b"\0"), "little")
            sid = 0 if sid >= self.n_buckets or sid not in self.buckets else sid + 1
        later = [i for i in self.buckets if i >= sid]
        if not later:
            raise fail(ENOENT, "no next stack id")
        return min(later).to_bytes(4, "little")

    def __len__(self) -> int:
        return len(self.buckets)
