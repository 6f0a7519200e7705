"""The native tier's helpers in machine code (vm/compiled/native/helpers_ir.py) against the interpreter:
map lookups (ARRAY, PERCPU_ARRAY, HASH, PERCPU_HASH), in-place hash updates, the clock, the CPU and
bpf_perf_event_output give the same r0, the same map contents (iteration order included), the same perf
records (PERF_RECORD_LOST counts, wrap-around) and the same shared-file counters; and the unusual cases
go to the Python helper (counted here by wrapping the helper table once the machine code is built)."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from engine_harness import prog

from tinyaya import sys as bpfsys
from tinyaya.isa import assemble
from tinyaya.sim_kernel.memory import RegionKind
from tinyaya.sim_kernel.vm import BpfFault
from tinyaya.sim_kernel.vm.compiled import install, native_available
from tinyaya.uapi.bpf import MapCreateAttr
from tinyaya.uapi.perf_event import PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_ENABLE, PerfEventMmapPage

pytestmark = pytest.mark.skipif(not native_available(), reason="llvmlite is not installed")

HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, PERF_ARRAY, LRU = 1, 2, 5, 6, 4, 9
ZERO_SEED = 64
PAGE = 4096
CURRENT_CPU = 0xFFFFFFFF


def u32(v: int) -> bytes:
    return (v & 0xFFFFFFFF).to_bytes(4, "little")


def mk(kernel: Any, map_type: int, key_size: int, value_size: int, max_entries: int, flags: int = 0) -> Any:
    from tinyaya.sim_kernel.maps import create_map

    return create_map(kernel, MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                                            max_entries=max_entries, map_flags=flags))


def lddw(reg: int, v: int) -> str:
    return f"lddw %r{reg}, {v:#x}"


def counter_prog(h: Any, arr: Any, perf: Any, flags: int = CURRENT_CPU) -> str:
    """syscall_ebpf's shape: count ctx[0] in ``h`` (lookup, then update in place or insert), put the
    clock, the CPU and the count in this CPU's ``arr`` element, emit ctx[4] bytes of it through
    ``perf``; r0 = the perf output's result."""
    return "\n".join([
        "mov %r9, %r1",
        "ldxw %r6, [%r1+0]",
        "stxw [%r10-4], %r6",
        lddw(1, h.region.base),
        "mov %r2, %r10",
        "add %r2, -4",
        "call 1",
        "mov %r8, 1",
        "jeq %r0, 0, +2",
        "ldxdw %r8, [%r0+0]",
        "add %r8, 1",
        "stxdw [%r10-16], %r8",
        lddw(1, h.region.base),
        "mov %r2, %r10",
        "add %r2, -4",
        "mov %r3, %r10",
        "add %r3, -16",
        "mov %r4, 0",
        "call 2",
        "mov %r7, %r0",        # the update's result
        "stw [%r10-8], 0",
        lddw(1, arr.region.base),
        "mov %r2, %r10",
        "add %r2, -8",
        "call 1",
        "jne %r0, 0, +2",
        "mov %r0, 99",
        "exit",
        "mov %r6, %r0",
        "call 5",
        "stxdw [%r6+0], %r0",
        "call 8",
        "stxdw [%r6+8], %r0",
        "stxdw [%r6+16], %r8",
        "stxdw [%r6+24], %r7",
        "mov %r1, %r9",
        lddw(2, perf.region.base),
        lddw(3, flags),
        "mov %r4, %r6",
        "ldxw %r5, [%r9+4]",
        "call 25",
        "exit",
    ])


def read_records(mem: memoryview) -> list[tuple[int, bytes]]:
    page = PerfEventMmapPage.from_buffer(mem)
    head, tail, off, size = page.data_head, page.data_tail, page.data_offset, page.data_size
    data = mem[off:off + size]
    out = []
    while tail < head:
        def take(pos: int, n: int) -> bytes:
            start = pos % size
            first = bytes(data[start:start + n])
            return first + bytes(data[0:n - len(first)])
        rtype, misc, rsize = struct.unpack("<IHH", take(tail, 8))
        out.append((rtype, misc, take(tail + 8, rsize - 8)))
        tail += rsize
    page.data_tail = tail
    del page
    return out


def walk(m: Any) -> list[tuple[bytes, bytes]]:
    out = []
    k = None
    while True:
        try:
            k = m.sys_get_next_key(k)
        except OSError:
            return out
        out.append((k, m.sys_lookup(k)))


class Setup:
    """One kernel with the maps, perf events and the program, on ``engine``."""

    def __init__(self, engine: str, *, hash_type: int = HASH, value_size: int = 8, pages: int = 1,
                 events: bool = True, flags: int = CURRENT_CPU, max_entries: int = 64, seed_flags: int = 0) -> None:
        from tinyaya.sim_kernel import SimKernel

        self.k = k = SimKernel()
        install(k.vm, engine)
        self.engine = engine
        self.h = mk(k, hash_type, 4, value_size, max_entries, seed_flags)
        self.arr = mk(k, PERCPU_ARRAY, 4, 40, 1)
        self.perf = mk(k, PERF_ARRAY, 4, 4, k.ncpus)
        self.mems: list[Any] = []
        self.events: list[Any] = []
        if events:
            for cpu in range(k.ncpus):
                fd = bpfsys.perf_event_open_bpf_output(k, cpu)
                self.events.append(k.fds.get(fd))
                self.mems.append(k.mmap(fd, PAGE * (1 + pages), 3, 1, 0))
                self.perf.sys_update(u32(cpu), u32(fd), 0)
        self.ctx = k.aspace.add(bytearray(16), RegionKind.MAP_VALUE, "ctx")
        self.p = prog(assemble(counter_prog(self.h, self.arr, self.perf, flags)))
        self.callbacks: dict[int, int] = {}

    def count_callbacks(self) -> None:
        """From now on count the calls of the Python helpers (the native code's fallbacks)."""
        helpers = self.k.vm.helpers
        for hid in (1, 2, 5, 8, 25):
            f = helpers[hid]

            def counted(*a: Any, _f: Any = f, _hid: int = hid) -> Any:
                self.callbacks[_hid] = self.callbacks.get(_hid, 0) + 1
                return _f(*a)
            helpers[hid] = counted

    def run(self, key: int, size: int, cpu: int = 0) -> Any:
        struct.pack_into("<II", self.ctx.buf, 0, key, size)
        self.k.clock.advance(1000 + key)
        try:
            return self.k.vm.run(self.p, self.ctx.base, cpu)
        except BpfFault as f:
            return ("fault", f.pc, f.message)

    def state(self) -> Any:
        rings = [(ev.ring.head, ev.ring.lost, ev.samples) if ev.ring else None for ev in self.events]
        return walk(self.h), self.arr.sys_lookup(u32(0)), rings, [read_records(m) for m in self.mems]


def scenario(engine: str, steps: list[tuple[int, int, int]], **kw: Any) -> tuple[Any, Setup]:
    s = Setup(engine, **kw)
    s.run(*steps[0])  # builds the machine code
    s.count_callbacks()
    out = [s.run(*a) for a in steps[1:]]
    return (out, s.state()), s


def test_counter_program_agrees_and_runs_without_callbacks() -> None:
    steps = [(k % 7, 8 + (k % 5) * 8, k % 2) for k in range(60)]
    want, _ = scenario("interp", steps)
    got, s = scenario("native", steps)
    assert got == want
    # only updates call back: inserts of new keys, and updates of a key behind another one in its bucket
    # (two of these seven keys share a bucket: each of their updates moves it to the head)
    assert set(s.callbacks) <= {2} and s.callbacks.get(2, 0) < len(steps) // 2
    assert s.p.compiled["native"].natives == frozenset({1, 2, 5, 8, 25})


@pytest.mark.parametrize("hash_type", [HASH, PERCPU_HASH], ids=["hash", "percpu_hash"])
@pytest.mark.parametrize("value_size", [4, 8, 12])
def test_hash_updates_keep_linux_order(hash_type: int, value_size: int) -> None:
    """Many keys in few buckets (max_entries 4: 4 buckets), so that updates of a key behind another one in
    its bucket must move it to the head (the Python helper's job) and walks must still agree."""
    steps = [((k * 7) % 11, 8, 0) for k in range(80)]
    kw = dict(hash_type=hash_type, value_size=value_size, max_entries=16, seed_flags=ZERO_SEED)
    want, _ = scenario("interp", steps, **kw)
    got, _ = scenario("native", steps, **kw)
    assert got == want


def test_full_ring_lost_records_and_wrap_around() -> None:
    """A one-page ring never read: samples are lost and counted; after reading, the next sample follows a
    PERF_RECORD_LOST with the count; sizes that do not divide the ring make records wrap (calls back)."""
    steps = [(k % 3, 1 + (k * 13) % 40, 0) for k in range(400)]

    def run(engine: str) -> Any:
        s = Setup(engine)
        out = [s.run(*a) for a in steps[:200]]
        mid = s.state()
        out += [s.run(*a) for a in steps[200:]]
        for _ in range(3):
            out += [s.run(*a) for a in steps[:50]]
            out.append(s.state())
        return out, mid, s.state()
    assert run("native") == run("interp")


def test_perf_output_cases_that_call_back() -> None:
    """No event in the slot (-ENOENT), past the array (-E2BIG), a disabled event, an event of another CPU
    (explicit index), a bad data pointer (the fault): same results as the interpreter."""
    def run(engine: str) -> Any:
        out = []
        s = Setup(engine, events=False)
        out.append([s.run(1, 8) for _ in range(3)])  # empty slots: -ENOENT
        s2 = Setup(engine, flags=5)  # index 5 >= ncpus: -E2BIG
        out.append([s2.run(1, 8) for _ in range(2)])
        s3 = Setup(engine, flags=1)  # the event of CPU 1, from CPU 0: -EOPNOTSUPP
        out.append([s3.run(1, 8, 0), s3.run(2, 8, 1), s3.state()])
        s4 = Setup(engine)
        s4.events[0].enabled = False
        out.append([s4.run(1, 8), s4.state()])
        s4.events[0].enabled = True
        out.append([s4.run(1, 8), s4.run(1, 100000), s4.state()])  # too big to read: the helper faults
        return out
    assert run("native") == run("interp")


def test_array_lookup_bounds_and_lazy_chunks() -> None:
    """ARRAY lookups past max_entries (NULL), in a chunk not yet allocated (the helper allocates it), and a
    key pointer outside every region (the helper's fault)."""
    def run(engine: str) -> Any:
        from tinyaya.sim_kernel import SimKernel

        k = SimKernel()
        install(k.vm, engine)
        a = mk(k, ARRAY, 4, 4096, 200)  # 64 slots a chunk: lazily allocated chunks
        src = "\n".join([
            "ldxw %r6, [%r1+0]",
            "stxw [%r10-4], %r6",
            lddw(1, a.region.base),
            "mov %r2, %r10",
            "add %r2, -4",
            "call 1",
            "jeq %r0, 0, +3",
            "ldxdw %r7, [%r0+0]",
            "add %r7, 1",
            "stxdw [%r0+0], %r7",
            "exit",
        ])
        p = prog(assemble(src))
        bad = prog(assemble("\n".join([lddw(1, a.region.base), lddw(2, 0x1234), "call 1", "exit"])))
        ctx = k.aspace.add(bytearray(8), RegionKind.MAP_VALUE, "ctx")
        out: list[Any] = []
        for key in [0, 5, 199, 200, 70, 70, 1 << 31, 130, 5]:
            struct.pack_into("<I", ctx.buf, 0, key)
            r = k.vm.run(p, ctx.base, 0)
            out.append(((r >> 32) - (a.region.base >> 32), r & 0xFFFFFFFF) if r else 0)  # region and offset
        out.append([a.sys_lookup(u32(i))[:8] for i in (0, 5, 70, 130, 199)])
        out.append(sorted(a.storage._chunks))
        try:
            k.vm.run(bad, ctx.base, 0)
        except BpfFault as f:
            out.append((f.pc, f.message))
        return out
    assert run("native") == run("interp")


@pytest.mark.parametrize(("hash_type", "value_size"), [(HASH, 8), (HASH, 4), (PERCPU_HASH, 4), (PERCPU_HASH, 12)],
                         ids=["hash8", "hash4", "percpu4", "percpu12"])
def test_shared_pinned_hash_with_and_without_the_writer_lock(tmp_path: Path, hash_type: int, value_size: int) -> None:
    """A pinned HASH written by the program while another SimKernel (another process) has it open: the
    values, the seqlock counter and the generation agree with the interpreter's; in place natively only
    while the writer lock is held; the other side's insert (a new generation) is seen."""
    from tinyaya.sim_kernel import SimKernel
    from tinyaya.sim_kernel.maps import open_pinned, pin_map

    def run(engine: str, sub: str) -> Any:
        s = Setup(engine, seed_flags=ZERO_SEED, hash_type=hash_type, value_size=value_size)
        path = tmp_path / f"{engine}-{sub}"
        pin_map(s.h, path)
        other = SimKernel(bpffs_root=tmp_path / f"bpffs-{engine}-{sub}")
        try:
            o = open_pinned(other, path)
            out: list[Any] = [s.run(k % 5, 8) for k in range(10)]
            s.count_callbacks()
            st = s.h.storage
            st.lock()
            try:
                out += [s.run(k % 5, 8) for k in range(20)]
            finally:
                st.unlock()
            held_callbacks = dict(s.callbacks)
            o.sys_update(u32(42), bytes(o.sys_lookup(u32(1))), 0)  # another process inserts: new generation
            out += [s.run(42, 8), s.run(3, 8)]
            st.lock()
            try:
                out += [s.run(42, 8) for _ in range(3)]
            finally:
                st.unlock()
            hdr = st.hdr
            out.append((walk(o), walk(s.h), int(hdr.seq), int(hdr.generation), int(hdr.hwm)))
            return out, held_callbacks
        finally:
            other.shutdown()

    want, _ = run("interp", "a")
    got, callbacks = run("native", "b")
    assert got == want
    if value_size != 12:  # a 12-byte per-CPU value is no single store: journaled by the Python helper
        assert callbacks.get(2, 0) == 0  # with the lock held, every update of an existing key was in place


def test_unheld_shared_update_calls_back(tmp_path: Path) -> None:
    from tinyaya.sim_kernel.maps import pin_map

    s = Setup("native")
    pin_map(s.h, tmp_path / "h")
    s.run(1, 8)
    s.count_callbacks()
    s.run(1, 8)
    assert s.callbacks == {2: 1}  # lookups native, the update not: this process does not hold the lock


def test_lru_and_replaced_helpers_call_back() -> None:
    """An LRU map has no native lookup (its reference bits are Python's); a helper replaced in the table
    is not done natively at all."""
    steps = [(k % 4, 8, 0) for k in range(12)]
    want, _ = scenario("interp", steps, hash_type=LRU)
    got, s = scenario("native", steps, hash_type=LRU)
    assert got == want and s.callbacks.get(1, 0) >= 11

    from tinyaya.sim_kernel import SimKernel

    k = SimKernel()
    install(k.vm, "native")
    k.vm.helpers[5] = lambda env, *a: 1234
    p = prog(assemble("call 5\nexit"))
    assert k.vm.run(p, 0, 0) == 1234
    assert 5 not in p.compiled["native"].natives


def churn_prog(h: Any) -> str:
    """ctx[0] = key, ctx[4] = op: 0 counts the key (lookup, then update or insert; the count goes to
    ctx[8]), 1 deletes it; r0 = the update's or the delete's result."""
    return "\n".join([
        "mov %r9, %r1",
        "ldxw %r6, [%r1+0]",
        "stxw [%r10-4], %r6",
        "ldxw %r7, [%r1+4]",
        "jeq %r7, 1, +20",
        lddw(1, h.region.base),
        "mov %r2, %r10",
        "add %r2, -4",
        "call 1",
        "mov %r8, 1",
        "jeq %r0, 0, +2",
        "ldxdw %r8, [%r0+0]",
        "add %r8, 1",
        "stxdw [%r10-16], %r8",
        "stxdw [%r9+8], %r8",
        lddw(1, h.region.base),
        "mov %r2, %r10",
        "add %r2, -4",
        "mov %r3, %r10",
        "add %r3, -16",
        "mov %r4, 0",
        "call 2",
        "exit",
        lddw(1, h.region.base),
        "mov %r2, %r10",
        "add %r2, -4",
        "call 3",
        "exit",
    ])


@pytest.mark.parametrize("seed", [1, 2])
def test_hash_churn_inserts_deletes_and_user_space(seed: int) -> None:
    """Random program-side counts and deletes and user-space updates and deletes on a HASH of 200 entries
    and 260 keys (E2BIG when full; the native mirror grows, and loses keys by backward shifts): every
    result, every count and the final walk agree with the interpreter."""
    import random

    def run(engine: str) -> Any:
        from tinyaya.sim_kernel import SimKernel

        k = SimKernel()
        install(k.vm, engine)
        h = mk(k, HASH, 4, 8, 200)
        p = prog(assemble(churn_prog(h)))
        ctx = k.aspace.add(bytearray(16), RegionKind.MAP_VALUE, "ctx")
        rng = random.Random(seed)
        out: list[Any] = []
        for _ in range(1500):
            key = rng.randrange(260)
            r = rng.random()
            if r < 0.8:
                struct.pack_into("<II", ctx.buf, 0, key, 0)
                out.append((k.vm.run(p, ctx.base, rng.randrange(k.ncpus)), bytes(ctx.buf[8:16])))
            elif r < 0.9:
                struct.pack_into("<II", ctx.buf, 0, key, 1)
                out.append(k.vm.run(p, ctx.base, 0))
            elif r < 0.95:
                try:
                    h.sys_delete(u32(key))
                except OSError as e:
                    out.append(e.errno)
            else:
                try:
                    h.sys_update(u32(key), (key * 1000).to_bytes(8, "little"), 0)
                except OSError as e:
                    out.append(e.errno)
        out.append(walk(h))
        return out
    assert run("native") == run("interp")


def test_programs_alternating_on_each_cpu() -> None:
    """Two programs (each with its own maps) run in turn on both CPUs, as an entry and an exit probe do:
    each keeps its own state and results (the lean path is per program and CPU)."""
    def run(engine: str) -> Any:
        a = Setup(engine)
        h2 = mk(a.k, PERCPU_HASH, 4, 8, 64)
        p1, p2 = a.p, prog(assemble(counter_prog(h2, a.arr, a.perf)))
        out = []
        for i in range(40):
            cpu = (i // 3) % 2
            a.p = p1
            r1 = a.run(i % 5, 16, cpu)
            a.p = p2
            out.append((r1, a.run(i % 3, 24, cpu)))
        return out, a.state(), walk(h2)
    assert run("native") == run("interp")


def test_without_the_builtin_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the C API entry point cannot be made, every run goes through ctypes (``_enter``): same results."""
    from tinyaya.sim_kernel.vm.compiled.native import engine as native_engine

    monkeypatch.setattr(native_engine, "_capi", lambda: {})
    steps = [(k % 7, 8 + (k % 5) * 8, k % 2) for k in range(30)]
    want, _ = scenario("interp", steps)
    got, s = scenario("native", steps)
    assert got == want
    assert s.p.compiled["native"].pyrun is None


def test_perf_slots_and_rings_changing_between_runs() -> None:
    """Events put into the array, mapped, deleted and closed between runs (the native tier's tables follow)."""
    def run(engine: str) -> Any:
        s = Setup(engine, events=False)
        k = s.k
        out: list[Any] = [s.run(1, 8)]  # empty slot: -ENOENT
        fd = bpfsys.perf_event_open_bpf_output(k, 0)
        ev = k.fds.get(fd)
        s.perf.sys_update(u32(0), u32(fd), 0)
        out.append(s.run(2, 8))  # no ring mapped yet: -ENOSPC from the event
        mem = k.mmap(fd, PAGE * 2, 3, 1, 0)
        out += [s.run(3, 16), s.run(3, 24), read_records(mem), ev.samples]
        s.perf.sys_delete(u32(0))
        out.append(s.run(4, 8))  # deleted: -ENOENT
        s.perf.sys_update(u32(0), u32(fd), 0)
        out += [s.run(5, 8), read_records(mem), ev.samples]
        ev.ioctl(PERF_EVENT_IOC_DISABLE)
        out.append(s.run(6, 8))
        ev.ioctl(PERF_EVENT_IOC_ENABLE)
        out += [s.run(7, 8), read_records(mem), ev.samples]
        return out
    assert run("native") == run("interp")
