"""The simulated kernel's virtual address space, as the VM sees it.

Every piece of memory a program may touch (its stack frames, its context,
map values, packet data, ``.rodata``, ring-buffer records, task structs, user
memory of simulated processes) is a ``Region``: a writable or read-only
``memoryview`` at a base address. Bases are 4 GiB apart, so the region of an
address is ``regions[addr >> 32]``: one dict lookup on the hot path. Kernel
regions live above ``KERNEL_BASE`` (like x86-64's direct map at
0xffff888000000000); user memory of simulated processes lives below
``USER_TOP`` so that probe_read_user and probe_read_kernel can tell them apart.

Regions are long-lived: a map's storage chunk, a per-CPU stack, a per-CPU
context buffer are registered once and reused for every event, so firing a
probe allocates nothing here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

KERNEL_BASE = 0xFFFF_8880_0000_0000
USER_BASE = 0x0000_5555_0000_0000
USER_TOP = 0x0000_7FFF_FFFF_FFFF
REGION_SHIFT = 32
REGION_SPAN = 1 << REGION_SHIFT
_KERNEL_SLOTS = (0xFFFF_FFFF_FFFF_FFFF - KERNEL_BASE) >> REGION_SHIFT
_USER_SLOTS = (USER_TOP - USER_BASE) >> REGION_SHIFT


class RegionKind(Enum):
    STACK = "stack"
    CTX = "ctx"
    MAP_VALUE = "map_value"
    MAP = "map"  # the struct bpf_map itself: what CONST_PTR_TO_MAP points at
    PACKET = "packet"
    RODATA = "rodata"
    RINGBUF = "ringbuf"
    KERNEL = "kernel"  # task_struct and other kernel objects
    USER = "user"  # memory of a simulated process


@dataclass(eq=False, slots=True)
class Region:
    base: int
    buf: memoryview
    size: int
    writable: bool
    kind: RegionKind
    name: str
    #: the object that owns it (a map, a process, ...), for error messages and helpers
    owner: object = None

    def contains(self, addr: int, size: int) -> bool:
        return self.base <= addr and addr + size <= self.base + self.size


class MemoryFault(Exception):
    """An access outside every region, or a write to a read-only one."""

    def __init__(self, addr: int, size: int, write: bool, reason: str) -> None:
        super().__init__(f"invalid {'write' if write else 'read'} of {size} bytes at {addr:#x}: {reason}")
        self.addr = addr
        self.size = size
        self.write = write
        self.reason = reason


@dataclass
class AddressSpace:
    """All regions of one simulated kernel (kernel half) and its processes (user half)."""

    regions: dict[int, Region] = field(default_factory=dict)
    _next_kernel: int = 0
    _next_user: int = 0
    _free_kernel: list[int] = field(default_factory=list)
    _free_user: list[int] = field(default_factory=list)

    def add(self, buf: memoryview | bytearray, kind: RegionKind, name: str, *, writable: bool = True,
            owner: object = None) -> Region:
        """Register ``buf`` (at most 4 GiB) and return its region."""
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
        mv = mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv
        if len(mv) > REGION_SPAN:
            raise ValueError("a region is at most 4 GiB")
        if kind is RegionKind.USER:
            slot = self._free_user.pop() if self._free_user else self._alloc_user()
            base = USER_BASE + (slot << REGION_SHIFT)
        else:
            slot = self._free_kernel.pop() if self._free_kernel else self._alloc_kernel()
            base = KERNEL_BASE + (slot << REGION_SHIFT)
        region = Region(base, mv, len(mv), writable, kind, name, owner)
        self.regions[base >> REGION_SHIFT] = region
        return region

    def _alloc_kernel(self) -> int:
        slot = self._next_kernel
        if slot >= _KERNEL_SLOTS:
            raise MemoryError("kernel address space exhausted")
        self._next_kernel += 1
        return slot

    def _alloc_user(self) -> int:
        slot = self._next_user
        if slot >= _USER_SLOTS:
            raise MemoryError("user address space exhausted")
        self._next_user += 1
        return slot

    def remove(self, region: Region) -> None:
        if self.regions.pop(region.base >> REGION_SHIFT, None) is None:
            return
        slot = (region.base - (USER_BASE if region.kind is RegionKind.USER else KERNEL_BASE)) >> REGION_SHIFT
        (self._free_user if region.kind is RegionKind.USER else self._free_kernel).append(slot)

    def find(self, addr: int, size: int, write: bool = False) -> tuple[Region, int]:
        """The region holding ``[addr, addr+size)`` and the offset in it, or MemoryFault."""
        region = self.regions.get(addr >> REGION_SHIFT)
        if region is None:
            raise MemoryFault(addr, size, write, "unmapped address")
        off = addr - region.base
        if off + size > region.size:
            raise MemoryFault(addr, size, write, f"past the end of {region.kind.value} region {region.name!r} "
                                                 f"(size {region.size}, offset {off})")
        if write and not region.writable:
            raise MemoryFault(addr, size, write, f"{region.kind.value} region {region.name!r} is read-only")
        return region, off

    def read(self, addr: int, size: int) -> bytes:
        region, off = self.find(addr, size)
        return bytes(region.buf[off:off + size])

    def write(self, addr: int, data: bytes) -> None:
        region, off = self.find(addr, len(data), write=True)
        region.buf[off:off + len(data)] = data

    def read_cstr(self, addr: int, max_len: int) -> bytes:
        """Bytes up to (not including) a NUL, at most ``max_len``; faults only if the first byte is unmapped."""
        region, off = self.find(addr, 1)
        end = min(region.size, off + max_len)
        chunk = bytes(region.buf[off:end])
        nul = chunk.find(b"\0")
        return chunk if nul < 0 else chunk[:nul]
