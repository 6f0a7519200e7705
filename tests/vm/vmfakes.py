"""Small fakes for the VM tests: a kernel with an address space, a clock, a machine and tracing; an array map."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from tinyaya.isa import Insn, assemble
from tinyaya.sim_kernel.clock import Clock
from tinyaya.sim_kernel.memory import AddressSpace, RegionKind
from tinyaya.sim_kernel.vm import Vm


@dataclass
class FakeTask:
    pid: int = 1234
    tgid: int = 1200
    uid: int = 1000
    gid: int = 100
    comm: bytes = b"bash"
    task_addr: int = 0xFFFF_8880_DEAD_0000


@dataclass
class FakeKernel:
    aspace: AddressSpace = field(default_factory=AddressSpace)
    clock: Clock = field(default_factory=Clock)
    ncpus: int = 2
    seed: int = 0
    printed: list[tuple[int, bytes]] = field(default_factory=list)
    task: FakeTask | None = field(default_factory=FakeTask)

    def __post_init__(self) -> None:
        self.vm = Vm(self)
        self.machine = SimpleNamespace(current_task=lambda cpu: self.task)
        self.tracing = SimpleNamespace(trace_printk=lambda cpu, task, msg: self.printed.append((cpu, msg)))


class FakeArrayMap:
    """The program side of a BPF_MAP_TYPE_ARRAY, as helpers call it."""

    def __init__(self, kernel: FakeKernel, value_size: int, max_entries: int) -> None:
        self.key_size, self.value_size, self.max_entries = 4, value_size, max_entries
        self.values = kernel.aspace.add(bytearray(value_size * max_entries), RegionKind.MAP_VALUE, "arr", owner=self)
        self.region = kernel.aspace.add(bytearray(64), RegionKind.MAP, "arr-map", owner=self)
        self.progs: dict[int, Any] = {}

    @property
    def addr(self) -> int:
        return self.region.base

    def prog_lookup(self, key: bytes, cpu: int) -> int:
        i = int.from_bytes(key, "little")
        return self.values.base + i * self.value_size if i < self.max_entries else 0

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        i = int.from_bytes(key, "little")
        if i >= self.max_entries:
            return -7
        self.values.buf[i * self.value_size:(i + 1) * self.value_size] = value
        return 0

    def prog_delete(self, key: bytes) -> int:
        return -22

    def for_each(self, cpu: int) -> Any:
        for i in range(self.max_entries):
            yield i.to_bytes(4, "little"), self.values.base + i * self.value_size

    def prog_at(self, i: int) -> Any:
        return self.progs.get(i)


def prog(src: str | list[Insn], name: str = "t", prog_type: int = 6) -> Any:
    insns = assemble(src) if isinstance(src, str) else src
    return SimpleNamespace(name=name, insns=insns, prog_type=prog_type, compiled=None)


@pytest.fixture(name="kernel")
def kernel_fixture() -> FakeKernel:
    """``kernel``: a fresh fake kernel (a test module imports ``kernel_fixture`` to use it)."""
    return FakeKernel()
