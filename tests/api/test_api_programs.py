"""The programs API on each backend: load, attach, count, read rings, log, pin, errors."""
from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tinyaya import Ebpf, EbpfLoader
from tinyaya.maps import AsyncPerfEventArray, HashMap, MapData, PerfEventArray, RingBuf, u32, u64
from tinyaya.obj import ParseError, SymbolNotFound
from tinyaya.programs import (
    AlreadyLoaded,
    AttachError,
    EbpfError,
    EbpfLogger,
    FileError,
    KProbe,
    NotLoaded,
    Program,
    ProgramError,
    ProgramNotFound,
    TracePoint,
    default_pin_dir,
)

ROOT = Path(__file__).parents[2]
COUNT = ROOT / "tests/linux/fixtures/count_syscalls.o"
AYA_LOG_TP = ROOT / "tests/linux/fixtures/aya_log_tp.o"
AYA_LOG_RB = ROOT / "tests/linux/fixtures/aya_log_rb.o"
EXAMPLE = ROOT / "examples/syscall_ebpf/syscall_ebpf-ebpf/syscall_ebpf.o"
GETPPID = 110


class Driver:
    """Issues syscalls in the kernel under test from one process whose tgid the programs filter on."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        if kernel.backend == "linux":
            self.tgid = os.getpid()
            self._getppid: Callable[[], object] = os.getppid
        else:
            machine = kernel.machine
            proc = machine.process(comm="api-test")
            self.tgid = proc.tgid
            self._getppid = lambda: proc.syscall("getppid")

    def getppid(self, n: int) -> None:
        for _ in range(n):
            self._getppid()


@pytest.fixture
def driver(kernel: Any) -> Driver:
    if kernel.backend == "linux" and not os.path.exists("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id"):
        pytest.skip("tracefs is not mounted at /sys/kernel/tracing (tests/linux mounts it)")
    return Driver(kernel)


def load_counter(kernel: Any, tgid: int, watch: int = 0xFFFFFFFF) -> Ebpf:
    return EbpfLoader(kernel=kernel).set_global("target_tgid", tgid).set_global("watch_id", watch).load_file(COUNT)


def test_tracepoint_counts_exactly(kernel: Any, driver: Driver) -> None:
    with load_counter(kernel, driver.tgid) as ebpf:
        tp = ebpf.program_mut("count_syscalls")
        assert isinstance(tp, TracePoint)
        tp.load()
        counts = HashMap(ebpf.map_mut("COUNTS"), key=u32, value=u64)
        link = tp.attach("raw_syscalls", "sys_enter")
        before = counts.get(GETPPID) if GETPPID in counts else 0
        driver.getppid(321)
        assert counts.get(GETPPID) - before == 321
        tp.detach(link)
        driver.getppid(5)
        assert counts.get(GETPPID) - before == 321


def test_rings_see_every_event(kernel: Any, driver: Driver) -> None:
    with load_counter(kernel, driver.tgid, watch=GETPPID) as ebpf:
        tp = ebpf.program_mut("count_syscalls")
        tp.load()
        ring = RingBuf(ebpf.map("EVENTS"))
        perf = PerfEventArray(ebpf.map("PERF_EVENTS"))
        perf.open_all()
        try:
            link = tp.attach("raw_syscalls", "sys_enter")
            driver.getppid(12)
            tp.detach(link)
            records = ring.drain()
            samples, events = perf.read_all()
        finally:
            ring.close()
            perf.close()
        assert [struct.unpack_from("<Q", r)[0] for r in records] == [GETPPID] * 12
        assert events.read == 12 and events.lost == 0
        assert all(struct.unpack_from("<Q", s)[0] == GETPPID for s in samples)


def test_logger_decodes_records(kernel: Any, driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    loader = EbpfLoader(kernel=kernel).override_global("target_tgid", driver.tgid)
    with loader.override_global("watch_id", GETPPID).load_file(AYA_LOG_TP) as ebpf:
        logger = EbpfLogger.init(ebpf)
        prog = ebpf.program_mut("log_syscall")
        prog.load()
        with caplog.at_level(logging.INFO, logger="aya_log_tp"):
            link = prog.attach("raw_syscalls", "sys_enter")
            driver.getppid(4)
            prog.detach(link)
            logger.poll()
        logger.close()
    got = [r for r in caplog.records if r.name == "aya_log_tp"]
    assert len(got) == 4 and logger.errors == 0
    assert got[0].levelno == logging.WARNING and got[0].module == "aya_log_tp::probe"
    assert got[0].getMessage().endswith("] invoke syscall 110")


def test_socket_filter_test_run(kernel: Any) -> None:
    with load_counter(kernel, 0) as ebpf:
        prog = ebpf.program("ret_len")
        prog.load()
        assert prog.test_run(data=bytes(60)).retval == 60 - 14  # skb->len after the Ethernet header is pulled


def test_program_lifecycle_errors(kernel: Any) -> None:
    with load_counter(kernel, 0) as ebpf:
        with pytest.raises(ProgramNotFound, match="count_syscalls"):
            ebpf.program("nope")
        tp = TracePoint.try_from(ebpf.program_mut("count_syscalls"))
        with pytest.raises(ProgramError.UnexpectedProgramType):
            KProbe.try_from(tp)
        with pytest.raises(NotLoaded):
            tp.attach("raw_syscalls", "sys_enter")
        tp.load()
        with pytest.raises(ProgramError.AlreadyLoaded):
            tp.load()
        with pytest.raises(AlreadyLoaded):
            tp.load()
        tp.unload()
        assert not tp.loaded
        with pytest.raises(NotLoaded):
            tp.unload()


def test_loader_errors(kernel: Any, tmp_path: Path) -> None:
    with pytest.raises(FileError):
        Ebpf.load_file(tmp_path / "missing.o", kernel=kernel)
    with pytest.raises(ParseError):
        Ebpf.load(b"not an ELF", kernel=kernel)
    with pytest.raises(SymbolNotFound):
        EbpfLoader(kernel=kernel).override_global("no_such_global", 1).load_file(COUNT)


def test_take_map_hands_over_ownership(kernel: Any) -> None:
    with load_counter(kernel, 0) as ebpf:
        md = ebpf.take_map("COUNTS")
        with pytest.raises(KeyError):
            ebpf.map("COUNTS")
    counts = HashMap(md, key=u32, value=u64)  # still open after ebpf.close()
    counts.insert(1, 2)
    assert counts.get(1) == 2
    md.close()


def test_verifier_log_level_keeps_the_log(kernel: Any) -> None:
    with EbpfLoader(kernel=kernel).verifier_log_level(2).load_file(COUNT) as ebpf:
        prog = ebpf.program("ret_len")
        prog.load()
        assert "processed" in prog.verifier_log


def test_set_max_entries(kernel: Any) -> None:
    with EbpfLoader(kernel=kernel).set_max_entries("COUNTS", 3).load_file(COUNT) as ebpf:
        assert MapData.from_fd(kernel, ebpf.map("COUNTS").fd).max_entries == 3


# -- the simulated kernel only: kprobes, pins in its private bpffs -------------------------------------

def test_example_kprobe_on_sim(kernel: Any, caplog: pytest.LogCaptureFixture) -> None:
    if kernel.backend != "sim":
        pytest.skip("kprobes: the real kernel here has none (tests/linux checks the error)")
    ebpf = Ebpf.load_file(EXAMPLE, kernel=kernel)
    logger = EbpfLogger.init(ebpf)
    prog = ebpf.program_mut("syscall_ebpf")
    assert isinstance(prog, KProbe)
    prog.load()
    prog.attach("sys_enter", 0)
    proc = kernel.machine.process(comm="example")
    for name in ("getppid", "getppid", "write", "getpid"):
        proc.syscall(name)
    counts = dict(HashMap(ebpf.map("SYSCALL_LIST"), key=u32, value=u32).items())
    assert counts.get(GETPPID) == 2 and counts.get(39) == 1 and 1 not in counts
    with caplog.at_level(logging.INFO, logger="syscall_ebpf"):
        records = logger.poll()
    assert [r.message.split("] ")[1] for r in records if r.target == "syscall_ebpf"][-3:] == [
        "invoke syscall 110", "invoke syscall 110", "invoke syscall 39"]
    logger.close()
    ebpf.close()


def test_pins_on_sim(kernel: Any) -> None:
    if kernel.backend != "sim":
        pytest.skip("real-kernel pins run in a private bpffs in tests/linux")
    root = default_pin_dir(kernel)
    with load_counter(kernel, 0) as ebpf:
        counts = HashMap(ebpf.map("COUNTS"), key=u32, value=u64)
        counts.insert(9, 81)
        counts.pin(f"{root}/COUNTS")
        prog = ebpf.program("ret_len")
        prog.load()
        prog.pin(f"{root}/ret_len")
    again = HashMap.from_pin(f"{root}/COUNTS", kernel, key=u32, value=u64)
    assert again.get(9) == 81
    again.close()
    p = Program.from_pin(f"{root}/ret_len", kernel)
    assert p.test_run(data=bytes(20)).retval == 6
    p.unload()


def test_logger_ring_buffer_flavour(kernel: Any, driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    loader = EbpfLoader(kernel=kernel).override_global("target_tgid", driver.tgid)
    with loader.override_global("watch_id", GETPPID).load_file(AYA_LOG_RB) as ebpf:
        logger = EbpfLogger.init(ebpf)
        prog = ebpf.program_mut("log_rb")
        prog.load()
        with caplog.at_level(logging.DEBUG, logger="aya_log_rb"):
            link = prog.attach("raw_syscalls", "sys_enter")
            driver.getppid(2)
            prog.detach(link)
            records = logger.poll()
        logger.close()
    assert [r.message for r in records] == ["flags=beef id 110"] * 2
    got = [r for r in caplog.records if r.name == "aya_log_rb"]
    assert [(r.levelno, r.lineno, r.module) for r in got] == [(logging.DEBUG, 42, "aya_log_rb")] * 2


def test_async_perf_event_array(kernel: Any, driver: Driver) -> None:
    async def main() -> list[bytes]:
        with load_counter(kernel, driver.tgid, watch=GETPPID) as ebpf:
            tp = ebpf.program_mut("count_syscalls")
            tp.load()
            perf = AsyncPerfEventArray(ebpf.map("PERF_EVENTS"))
            bufs = [perf.open(cpu) for cpu in perf.cpus()]
            link = tp.attach("raw_syscalls", "sys_enter")
            driver.getppid(3)
            tp.detach(link)
            got: list[bytes] = []
            while len(got) < 3:
                tasks = [asyncio.ensure_future(b.read_events()) for b in bufs]
                done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in pending:
                    t.cancel()
                for t in done:
                    got.extend(t.result()[0])
            perf.close()
            return got

    got = asyncio.run(asyncio.wait_for(main(), 30))
    assert [struct.unpack_from("<Q", s)[0] for s in got] == [GETPPID] * 3


OBJ_FIXTURES = ROOT / "tests/fixtures/obj"


def test_big_endian_object_is_a_clear_error(kernel: Any) -> None:
    with pytest.raises(EbpfError.EndiannessMismatch, match="big-endian"):
        Ebpf.load_file(OBJ_FIXTURES / "legacy_aya.bpfeb.o", kernel=kernel)


def test_sectionless_program_gets_a_valid_kernel_name(kernel: Any) -> None:
    with Ebpf.load_file(OBJ_FIXTURES / "nosym.o", kernel=kernel) as ebpf:
        (name, prog), = ebpf.programs()
        prog.load()
        assert name == "socket/raw" and prog.info().name == b"socket_raw"


def test_kprobe_unknown_function_is_one_line(kernel: Any) -> None:
    with Ebpf.load_file(EXAMPLE, kernel=kernel) as ebpf:
        prog = ebpf.program_mut("syscall_ebpf")
        prog.load()
        with pytest.raises(AttachError) as ei:
            prog.attach("no_such_kernel_function", 0)
        msg = str(ei.value)
        assert "\n" not in msg
        if kernel.backend == "sim":
            assert "no_such_kernel_function" in msg
        assert not prog.links


def test_perf_ring_overflow_reports_lost_exactly(kernel: Any, driver: Driver) -> None:
    """One data page holds ~128 samples; 300 events overflow it. Every event is either read intact
    or counted in a PERF_RECORD_LOST (written by the kernel once the reader has made room)."""
    with load_counter(kernel, driver.tgid, watch=GETPPID) as ebpf:
        tp = ebpf.program_mut("count_syscalls")
        tp.load()
        perf = PerfEventArray(ebpf.map("PERF_EVENTS"))
        perf.open_all(page_count=1)
        try:
            link = tp.attach("raw_syscalls", "sys_enter")
            driver.getppid(300)
            first, ev1 = perf.read_all()
            driver.getppid(1)  # the next event carries the LOST record in front of it
            tp.detach(link)
            second, ev2 = perf.read_all()
        finally:
            perf.close()
    samples = first + second
    lost = ev1.lost + ev2.lost
    assert lost > 0
    assert len(samples) + lost == 301
    assert all(len(s) == 20 and struct.unpack_from("<Q", s)[0] == GETPPID for s in samples)


def test_pinning_by_name_on_sim(kernel: Any) -> None:
    if kernel.backend != "sim":
        pytest.skip("real-kernel pinning runs in a private bpffs in tests/linux")
    from .pinning_scenario import run

    root = default_pin_dir(kernel)
    os.makedirs(root, exist_ok=True)
    run(kernel, root)


def test_unsupported_maps_need_allowing(kernel: Any) -> None:
    path = ROOT / "tests/linux/fixtures/unsupported.o"
    with pytest.raises(EbpfError.UnsupportedMap, match="SOCKS"):
        Ebpf.load_file(path, kernel=kernel)
    try:
        ebpf = EbpfLoader(kernel=kernel).allow_unsupported_maps().load_file(path)
    except EbpfError.MapError as e:  # the kernel may not have the type either: then it says so
        assert "SOCKS" in str(e)
        return
    with ebpf:
        assert ebpf.map("SOCKS").map_type == 20


def test_attach_without_perf_links_uses_set_bpf(kernel: Any, driver: Driver, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    """Kernels before 5.15 have no perf links: attach falls back to PERF_EVENT_IOC_SET_BPF + ENABLE."""
    import errno

    from tinyaya.programs import PerfLink
    from tinyaya.programs import links as links_mod

    def no_perf_links(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.EINVAL, "no perf links")

    monkeypatch.setattr(links_mod.bpfsys, "bpf_link_create", no_perf_links)
    with load_counter(kernel, driver.tgid) as ebpf:
        tp = ebpf.program_mut("count_syscalls")
        tp.load()
        counts = HashMap(ebpf.map("COUNTS"), key=u32, value=u64)
        link_id = tp.attach("raw_syscalls", "sys_enter")
        link = tp.links[link_id]
        assert isinstance(link, PerfLink) and link.link_fd is None
        before = counts.get(GETPPID) if GETPPID in counts else 0
        driver.getppid(17)
        tp.detach(link_id)
        driver.getppid(3)
        assert counts.get(GETPPID) - before == 17


def test_map_in_map_and_prog_array_initialisers(kernel: Any) -> None:
    """``.maps`` values: inner maps are stored at load; PROG_ARRAY slots are filled as their programs load."""
    from tinyaya.maps import ArrayOfMaps, ProgramArray

    with Ebpf.load_file(OBJ_FIXTURES / "btf_maps.o", kernel=kernel) as ebpf:
        # events_by_pid is pinned BY_NAME into the default pin directory (/sys/fs/bpf on Linux, as
        # aya does): take the pin away again, so the real kernel keeps nothing of this test
        events = ebpf.map("events_by_pid")
        if events.pinned_path and kernel.backend == "linux":
            os.unlink(events.pinned_path)
        outer = ArrayOfMaps(ebpf.map("outer"))
        assert outer.get(0) == ebpf.map("inner_a").id and outer.get(2) == ebpf.map("inner_b").id
        with pytest.raises(KeyError):
            outer.get(1)
        jump_table = ProgramArray(ebpf.map("jump_table"))
        assert list(jump_table.indices()) == []
        for name in ("tail_a", "tail_b"):
            ebpf.program(name).load()
        assert list(jump_table.indices()) == [1, 2]
        assert jump_table.get(2) == ebpf.program("tail_b").id
