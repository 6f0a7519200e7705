"""XDP redirect maps: DEVMAP, DEVMAP_HASH (kernel/bpf/devmap.c), CPUMAP (cpumap.c), XSKMAP (net/xdp/xskmap.c).

The simulated machine has one network device per namespace, the loopback
(``lo``, ifindex 1, as in every Linux network namespace), no AF_XDP sockets
and no CPU map kthreads. So, as on Linux:

* a DEVMAP/DEVMAP_HASH entry can name ifindex 1; any other ifindex is EINVAL
  (``__dev_map_alloc_node``: ``dev_get_by_index`` fails), and so is a program
  fd that is not an XDP program attached as BPF_XDP_DEVMAP;
* a CPUMAP entry is a queue size (and optional program) per possible CPU;
* an XSKMAP update needs an AF_XDP socket: EBADF for a closed fd
  for anything else.

Lookups by programs return a pointer to a device map entry's ``struct
bpf_devmap_val`` (read-only: device maps get BPF_F_RDONLY_PROG at creation)
or NULL (programs only redirect into a CPUMAP); ``redirect`` answers ``bpf_redirect_map``
(``__bpf_xdp_redirect_map``): XDP_REDIRECT when the entry exists, else the
action in the low bits of ``flags``.
"""
from __future__ import annotations

import errno as _errno
import struct
from collections.abc import Iterator
from typing import Any

from ..errors import E2BIG, EBADF, EEXIST, EINVAL, ENODEV, ENOENT, ENOMEM, EOPNOTSUPP, EOVERFLOW, fail
from .base import MAP_STRUCT_SIZE, BpfMap, F, T, U, roundup_pow_of_two
from .btf_checks import check_no_btf
from .value_arena import ValueArena

ENOTSOCK = _errno.ENOTSOCK

__all__ = ["DevMap", "CpuMap", "XskMap", "LOOPBACK_IFINDEX", "XDP_REDIRECT", "redirect_map_action",
           "array_next_key"]

LOOPBACK_IFINDEX = 1
XDP_ABORTED, XDP_REDIRECT = 0, 4
BPF_F_ACTION_MASK = 3  # XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX
BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS = 1 << 3, 1 << 4
DEV_CREATE_FLAG_MASK = F.BPF_F_NUMA_NODE | F.BPF_F_RDONLY | F.BPF_F_WRONLY
BPF_PROG_TYPE_XDP = 6
BPF_XDP_DEVMAP, BPF_XDP_CPUMAP = 33, 35
CPUMAP_MAX_QSIZE = 16384
#: ``NR_CPUS`` of the reference kernel's config (Linux 6.18 here: CPUMAP max_entries 256 passes, 257 is E2BIG)
NR_CPUS = 256


def u32_at(b: bytes | None, off: int = 0) -> int:
    return int(struct.unpack_from("<I", bytes(b or b"").ljust(off + 4, b"\0"), off)[0])


def array_next_key(key: bytes | None, max_entries: int) -> bytes:
    """The ``get_next_key`` of the array-shaped maps: 0 after a missing/out-of-range key, ENOENT after the last."""
    i = u32_at(key) if key is not None else max_entries
    if i >= max_entries:
        return bytes(4)
    if i == max_entries - 1:
        raise fail(ENOENT, "last index")
    return struct.pack("<I", i + 1)


def redirect_map_action(present: bool, flags: int) -> int:
    """``__bpf_xdp_redirect_map``: XDP_REDIRECT for a present target, else the fallback action in ``flags``."""
    if flags & ~(BPF_F_ACTION_MASK | BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS):
        return XDP_ABORTED
    if present or flags & BPF_F_BROADCAST:
        return XDP_REDIRECT
    return flags & BPF_F_ACTION_MASK


def _prog_for(kernel: Any, fd: int, attach_type: int) -> Any:
    """The XDP program ``fd`` names if it was loaded for ``attach_type``, else None."""
    try:
        obj = kernel.fds.get(fd)
    except OSError:
        return None
    if int(getattr(obj, "prog_type", -1)) != BPF_PROG_TYPE_XDP:
        return None
    if int(getattr(obj, "expected_attach_type", -1)) != attach_type:
        return None
    return obj


class _ValueMap(BpfMap):
    """Entries are values in a ``ValueArena`` (what program lookups point at), by u32 key."""

    def __init__(self, kernel: Any, attr: Any) -> None:
        super().__init__(kernel, attr)
        self.entries: dict[int, int] = {}  # key -> arena slot
        self.progs: dict[int, Any] = {}
        self.values = ValueArena(self, self.value_size, writable=False)
        try:
            self.charge(MAP_STRUCT_SIZE + 8 * min(self.max_entries, 1 << 20))
        except BaseException:
            self.release()
            raise

    def free(self) -> None:
        for p in self.progs.values():
            self.kernel.fds.put(p)
        self.progs.clear()
        self.entries.clear()
        self.values.close()

    def _store(self, idx: int, val: bytes, prog: Any) -> None:
        slot = self.values.alloc()
        self.values.write(slot, val[:self.value_size])
        self._remove(idx)
        self.entries[idx] = slot
        if prog is not None:
            self.progs[idx] = prog

    def _remove(self, idx: int) -> bool:
        slot = self.entries.pop(idx, None)
        old = self.progs.pop(idx, None)
        if old is not None:
            self.kernel.fds.put(old)
        if slot is None:
            return False
        self.values.free(slot)
        return True

    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        slot = self.entries.get(u32_at(key))
        return 0 if slot is None else self.values.addr(slot)

    def redirect(self, key: int, flags: int) -> int:
        """``bpf_redirect_map(map, key, flags)``'s return value."""
        return redirect_map_action((key & 0xFFFFFFFF) in self.entries, flags)

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        slot = self.entries.get(u32_at(key))
        if slot is None:
            raise fail(ENOENT, "no entry")
        return self.values.read(slot, self.value_size)

    def for_each(self, cpu: int = 0) -> Iterator[tuple[int, int]]:
        return iter(())

    def __len__(self) -> int:
        return len(self.entries)


class DevMap(_ValueMap):
    """DEVMAP (an array of devices) and DEVMAP_HASH (devices by any u32 key)."""

    map_types = (T.BPF_MAP_TYPE_DEVMAP, T.BPF_MAP_TYPE_DEVMAP_HASH)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``dev_map_init_map``: key 4, value 4 (ifindex) or 8 (ifindex + prog fd)."""
        if (attr.max_entries == 0 or attr.key_size != 4 or attr.value_size not in (4, 8)
                or attr.map_flags & ~DEV_CREATE_FLAG_MASK):
            raise fail(EINVAL, "devmap: key_size 4, value_size 4 or 8, max_entries > 0")
        if attr.map_type == T.BPF_MAP_TYPE_DEVMAP_HASH and attr.max_entries > 1 << 31:
            raise fail(EINVAL, "devmap hash: max_entries > 2^31")  # before the privilege check too (measured)

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_no_btf(btf, key_type_id, value_type_id)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        # dev_map_init_map sets BPF_F_RDONLY_PROG: lookups return pointers into the entries
        self.map_flags |= F.BPF_F_RDONLY_PROG
        self.is_hash = self.map_type == T.BPF_MAP_TYPE_DEVMAP_HASH
        self.n_buckets = roundup_pow_of_two(self.max_entries) if self.is_hash else 0
        #: DEVMAP_HASH buckets' order: keys newest first in each bucket (``hlist_add_head_rcu``)
        self.order: list[int] = []

    def _alloc_node(self, val: bytes) -> tuple[bytes, Any]:
        """``__dev_map_alloc_node``: every failure is EINVAL. Returns the stored value and the held program."""
        ifindex = u32_at(val)
        fd = struct.unpack("<i", val[4:8])[0] if len(val) >= 8 else -1
        if ifindex != LOOPBACK_IFINDEX:
            raise fail(EINVAL, f"no network device with ifindex {ifindex}")
        prog = None
        if fd > 0:
            prog = _prog_for(self.kernel, fd, BPF_XDP_DEVMAP)
            if prog is None:
                raise fail(EINVAL, "not an XDP program for BPF_XDP_DEVMAP")
            self.kernel.fds.hold(prog)
        stored = struct.pack("<II", ifindex, int(getattr(prog, "id", 0)) if prog is not None else 0)
        return stored, prog

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        idx = u32_at(key)
        val = bytes(value[:self.value_size])
        fd = struct.unpack("<i", val[4:8])[0] if len(val) >= 8 else -1
        if not self.is_hash:  # __dev_map_update_elem
            if flags > U.BPF_EXIST:
                raise fail(EINVAL, "devmap flags")
            if idx >= self.max_entries:
                raise fail(E2BIG, "index out of range")
            if flags == U.BPF_NOEXIST:
                raise fail(EEXIST, "devmap entries always exist")
            if u32_at(val) == 0:
                if fd > 0:
                    raise fail(EINVAL, "a program fd without an ifindex")
                self._remove(idx)
                return
            stored, prog = self._alloc_node(val)
            self._store(idx, stored, prog)
            return
        # __dev_map_hash_update_elem
        if flags > U.BPF_EXIST or u32_at(val) == 0:
            raise fail(EINVAL, "devmap hash flags or ifindex 0")
        exists = idx in self.entries
        if exists and flags & U.BPF_NOEXIST:
            raise fail(EEXIST, "key exists")
        stored, prog = self._alloc_node(val)
        if not exists and len(self.entries) >= self.max_entries:
            if prog is not None:
                self.kernel.fds.put(prog)
            raise fail(E2BIG, "devmap hash is full")
        self._store(idx, stored, prog)
        if idx in self.order:
            self.order.remove(idx)
        self.order.insert(0, idx)

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        idx = u32_at(key)
        if not self.is_hash:  # dev_map_delete_elem: an empty slot is fine
            if idx >= self.max_entries:
                raise fail(EINVAL, "index out of range")
            self._remove(idx)
            return
        if not self._remove(idx):
            raise fail(ENOENT, "no such key")
        self.order.remove(idx)

    def _bucket_keys(self, b: int) -> list[int]:
        return [k for k in self.order if k & (self.n_buckets - 1) == b]

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        if not self.is_hash:
            return array_next_key(key, self.max_entries)
        start = 0
        if key is not None:  # dev_map_hash_get_next_key
            idx = u32_at(key)
            if idx in self.entries:
                b = idx & (self.n_buckets - 1)
                ks = self._bucket_keys(b)
                pos = ks.index(idx)
                if pos + 1 < len(ks):
                    return struct.pack("<I", ks[pos + 1])
                start = b + 1
        for b in sorted({k & (self.n_buckets - 1) for k in self.order}):
            if b >= start:
                return struct.pack("<I", self._bucket_keys(b)[0])
        raise fail(ENOENT, "no next key")


class CpuMap(_ValueMap):
    """CPUMAP: per possible CPU, a queue size (and an optional BPF_XDP_CPUMAP program)."""

    map_types = (T.BPF_MAP_TYPE_CPUMAP,)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``cpu_map_alloc``: key 4, value 4 (qsize) or 8 (qsize + prog fd), only BPF_F_NUMA_NODE."""
        if (attr.max_entries == 0 or attr.key_size != 4 or attr.value_size not in (4, 8)
                or attr.map_flags & ~F.BPF_F_NUMA_NODE):
            raise fail(EINVAL, "cpumap: key_size 4, value_size 4 or 8, max_entries > 0")
        if attr.max_entries > NR_CPUS:
            raise fail(E2BIG, f"cpumap: max_entries > NR_CPUS ({NR_CPUS})")

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_no_btf(btf, key_type_id, value_type_id)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        """``cpu_map_update_elem``."""
        self.check_sys_write()
        cpu = u32_at(key)
        val = bytes(value[:self.value_size]).ljust(8, b"\0")
        qsize, fd = struct.unpack("<Ii", val[:8])
        if flags > U.BPF_EXIST:
            raise fail(EINVAL, "cpumap flags")
        if cpu >= self.max_entries:
            raise fail(E2BIG, "cpu out of range")
        if flags == U.BPF_NOEXIST:
            raise fail(EEXIST, "cpumap entries always exist")
        if qsize > CPUMAP_MAX_QSIZE:
            raise fail(EOVERFLOW, "qsize > 16384")
        if cpu >= self.ncpus:
            raise fail(ENODEV, f"cpu {cpu} is not possible")
        if qsize == 0:
            self._remove(cpu)
            return
        prog = None
        if self.value_size >= 8 and fd > 0:
            prog = _prog_for(self.kernel, fd, BPF_XDP_CPUMAP)
            if prog is None:  # __cpu_map_entry_alloc fails as a whole
                raise fail(ENOMEM, "not an XDP program for BPF_XDP_CPUMAP")
            self.kernel.fds.hold(prog)
        self._store(cpu, struct.pack("<II", qsize, int(getattr(prog, "id", 0)) if prog is not None else 0), prog)

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        if u32_at(key) >= self.max_entries:
            raise fail(EINVAL, "cpu out of range")
        self._remove(u32_at(key))

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        return array_next_key(key, self.max_entries)

    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        return 0  # programs only redirect into a cpumap (the verifier allows no lookup)


class XskMap(BpfMap):
    """XSKMAP: AF_XDP sockets by index; the simulated kernel has none, so it stays empty."""

    map_types = (T.BPF_MAP_TYPE_XSKMAP,)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """``xsk_map_alloc``."""
        if (attr.max_entries == 0 or attr.key_size != 4 or attr.value_size != 4
                or attr.map_flags & ~DEV_CREATE_FLAG_MASK):
            raise fail(EINVAL, "xskmap: key_size 4, value_size 4, max_entries > 0")

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_no_btf(btf, key_type_id, value_type_id)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        try:
            self.charge(MAP_STRUCT_SIZE + 8 * min(self.max_entries, 1 << 20))
        except BaseException:
            self.release()
            raise

    def redirect(self, key: int, flags: int) -> int:
        return redirect_map_action(False, flags)

    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        raise fail(EOPNOTSUPP, "xskmap lookups are for programs")  # xsk_map_lookup_elem_sys_only

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        """``xsk_map_update_elem``: the fd must be an AF_XDP socket."""
        self.check_sys_write()
        if flags > U.BPF_EXIST:
            raise fail(EINVAL, "xskmap flags")
        if u32_at(key) >= self.max_entries:
            raise fail(E2BIG, "index out of range")
        fd = struct.unpack("<i", bytes(value[:4]).ljust(4, b"\0"))[0]
        if fd < 0 or fd not in self.kernel.fds:
            raise fail(EBADF, f"fd {fd} is not open")
        raise fail(ENOTSOCK, f"fd {fd} is not a socket")

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        if u32_at(key) >= self.max_entries:
            raise fail(EINVAL, "index out of range")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        return array_next_key(key, self.max_entries)
