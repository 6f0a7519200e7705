"""``tinyaya maps dump/lookup`` against ``bpftool`` on the same maps in the real kernel.

The same objects are loaded twice: into the real kernel (``Ebpf.load_file(…,
kernel=LinuxKernel())``) and into the simulated one by ``tinyaya load … --events 0``
(pinned in the simulated bpffs). Both get the same entries; then bpftool's
``-j map dump id N`` on the real map must equal tinyaya's ``maps dump NAME --json``
on the simulated one field for field (``key``, ``value``/``values``,
``formatted``), and the plain text must be the same too. Nothing is pinned in
/sys/fs/bpf; every real fd is closed.

bpftool's answers are also recorded under tests/cli/snapshots/bpftool/ (rewritten
by a run with ``TINYAYA_UPDATE_SNAPSHOTS=1`` where bpf() works), so that the same
comparison runs on machines without bpf() or bpftool.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tinyaya.cli.pins import open_map, value_size_for
from tinyaya.kernel import Kernel, possible_cpus
from tinyaya.sys import bpf as sysbpf

from .conftest_helpers import EXAMPLE_OBJ, ROOT, run_cli

linux_only = pytest.mark.linux
RECORDED = Path(__file__).parent / "snapshots" / "bpftool"
UPDATE = os.environ.get("TINYAYA_UPDATE_SNAPSHOTS") == "1"

BTF_OBJ = ROOT / "tests" / "fixtures" / "cli" / "maps_btf.o"
BPFTOOL = shutil.which("bpftool") or "/usr/sbin/bpftool"
SIM_NCPUS = 2  # SimKernel's default, which `tinyaya load` uses
N_RANDOM = int(os.environ.get("TINYAYA_FUZZ_EXAMPLES", "6"))


@pytest.fixture(scope="module")
def linux() -> Iterator[Kernel]:
    from tinyaya.linux import LinuxKernel, linux_bpf_available

    ok, reason = linux_bpf_available()
    if not ok:
        pytest.skip(reason)
    if not Path(BPFTOOL).exists():
        pytest.skip("bpftool is not installed")
    yield LinuxKernel()


def bpftool(*args: str, json_out: bool = True) -> Any:
    r = subprocess.run([BPFTOOL, *(["-j"] if json_out else []), "map", *args], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if json_out else r.stdout


# --- the entries both kernels get ------------------------------------------------------------------


def _put(buf: bytearray, off: int, data: bytes) -> None:
    buf[off:off + len(data)] = data


def _flow_value(rng: random.Random, i: int) -> bytes:
    """``struct flow_stats`` (112 bytes): random bytes with some fields made strings, enumerators, bools."""
    v = bytearray(rng.randbytes(112))
    if i % 2 == 0:
        _put(v, 16, b"bash\0".ljust(16, b"\0"))  # comm: a C string
        _put(v, 36, b"ok\0\xff")  # in.tag: a string with garbage after the NUL (still a string)
        _put(v, 68, b"ab\0\0")  # nick: name_t (typedef char) is not a string for bpftool
        _put(v, 12, (7).to_bytes(4, "little"))  # color BLUE
        _put(v, 88, (1 << 32).to_bytes(8, "little"))  # big BIG_HUGE
        _put(v, 44, b"\x01")  # seen
        _put(v, 48, bytes(8))  # ptr NULL
    else:
        _put(v, 12, (-2 & 0xFFFFFFFF).to_bytes(4, "little"))  # color NEG
        _put(v, 44, b"\x00")
        _put(v, 16, b"no NUL at all!!!")  # a char array without NUL: a list of chars
    return bytes(v)


def _cell(rng: random.Random, i: int) -> bytes:
    v = bytearray(rng.randbytes(20))
    if i != 1:
        _put(v, 0, b"cell%d\0\0\0" % i)
        _put(v, 8, (i * 7 % 9).to_bytes(4, "little"))
    return bytes(v)


@dataclass
class MapFill:
    name: str
    entries: list[tuple[bytes, list[bytes]]]  # key, one value or one per CPU


def btf_fills(ncpus: int) -> list[MapFill]:
    rng = random.Random(8)
    fills = [
        MapFill("counts", [((n * 37).to_bytes(4, "little"), [(n * n).to_bytes(4, "little")])
                           for n in range(1, N_RANDOM + 1)]),
        MapFill("flows", [(rng.randbytes(12) + bytes([6, 0, 0, 0]), [_flow_value(rng, i)]) for i in range(N_RANDOM)]),
        MapFill("pcpu", [(i.to_bytes(4, "little"), [rng.randbytes(12) + bytes(4) for _ in range(ncpus)])
                         for i in range(3)]),
        MapFill("pcpu_hash", [(rng.randbytes(8), [rng.randbytes(4) for _ in range(ncpus)]) for _ in range(N_RANDOM)]),
        MapFill("cells", [(i.to_bytes(4, "little"), [_cell(rng, i)]) for i in range(3)]),
        MapFill("names", [(b"openat".ljust(12, b"\0"), [(1).to_bytes(4, "little")]),
                          (b"read\0junk\0\0\0", [(-2 & 0xFFFFFFFF).to_bytes(4, "little")]),
                          (b"\x01\x02" + bytes(10), [(99).to_bytes(4, "little")]),
                          (rng.randbytes(12), [rng.randbytes(4)])]),
        MapFill(".bss", [(bytes(4), [(123456789).to_bytes(8, "little")])]),
        MapFill("lru", [(n.to_bytes(4, "little"), [rng.randbytes(12) + bytes(4)]) for n in range(N_RANDOM)]),
        MapFill("lru_pcpu", [(rng.randbytes(12) + bytes(4), [rng.randbytes(8) for _ in range(ncpus)])
                             for _ in range(N_RANDOM)]),
    ]
    return fills


def fill(kernel: Kernel, fd: int, value_size: int, percpu: bool, entries: list[tuple[bytes, list[bytes]]]) -> None:
    stride = (value_size + 7) // 8 * 8
    for key, values in entries:
        raw = b"".join(v.ljust(stride, b"\0") for v in values) if percpu else values[0]
        sysbpf.bpf_map_update_elem(kernel, fd, key, raw, 0)


# --- the two sides ----------------------------------------------------------------------------------


@dataclass
class RealMap:
    name: str
    id: int
    percpu: bool


@pytest.fixture(scope="module")
def real_btf_maps(linux: Kernel) -> Iterator[dict[str, RealMap]]:
    """``maps_btf.o``'s maps in the real kernel, filled; closed (and so freed) after the module."""
    from tinyaya.programs import Ebpf

    bpf = Ebpf.load_file(str(BTF_OBJ), kernel=linux)
    try:
        ncpus = len(possible_cpus(linux))
        out: dict[str, RealMap] = {}
        for name, m in bpf.maps():
            info = sysbpf.bpf_map_get_info_by_fd(linux, m.fd)
            out[name] = RealMap(name, int(info.id), info.type in (5, 6, 10))  # PERCPU_HASH, _ARRAY, LRU_PERCPU
        for f in btf_fills(ncpus):
            m = bpf.map(f.name) if hasattr(bpf, "map") else dict(bpf.maps())[f.name]
            info = sysbpf.bpf_map_get_info_by_fd(linux, m.fd)
            fill(linux, m.fd, int(info.value_size), out[f.name].percpu, f.entries)
        yield out
    finally:
        bpf.close()


@pytest.fixture(scope="module")
def sim_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tinyaya load maps_btf.o --events 0``, then the same entries, through the CLI's pins."""
    from tinyaya.sim_kernel import SimKernel

    state = tmp_path_factory.mktemp("parity") / "state"
    r = run_cli(["load", str(BTF_OBJ), "--events", "0", "-q"], state)
    assert r.returncode == 0, r.stderr
    # one update end to end through the CLI; the rest through the same pins, in-process
    u = run_cli(["maps", "update", "counts", "37", "01 00 00 00"], state)
    assert u.returncode == 0, u.stderr
    kernel = SimKernel(bpffs_root=str(state / "bpffs"))
    pin_dir = state / "bpffs" / "tinyaya" / "last"
    for f in btf_fills(SIM_NCPUS):
        m = open_map(kernel, f.name, pin_dir)
        try:
            fill(kernel, m.fd, int(m.info.value_size), m.percpu, f.entries)
            assert value_size_for(kernel, m) % SIM_NCPUS == 0
        finally:
            kernel.close(m.fd)
    return state


def tinyaya_json(state: Path, *args: str) -> Any:
    r = run_cli([*args, "--json"], state)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def by_key(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: e["key"])


def same_ncpus(linux: Kernel) -> None:
    if len(possible_cpus(linux)) != SIM_NCPUS:
        pytest.skip(f"per-CPU maps: this machine has {len(possible_cpus(linux))} possible CPUs, the sim {SIM_NCPUS}")


# --- the comparisons --------------------------------------------------------------------------------

BTF_MAPS = ["counts", "flows", "pcpu", "pcpu_hash", "cells", "names", ".bss", ".data", "lru", "lru_pcpu"]
ARRAYS = ["cells", "pcpu", ".bss", ".data"]


def record(name: str, text: str) -> None:
    if UPDATE:
        RECORDED.mkdir(parents=True, exist_ok=True)
        (RECORDED / name).write_text(text)


def recorded(name: str) -> str:
    path = RECORDED / name
    if not path.exists():
        pytest.fail(f"no recorded bpftool output {path.name}: run the linux tests with TINYAYA_UPDATE_SNAPSHOTS=1")
    return path.read_text()


@linux_only
@pytest.mark.parametrize("name", BTF_MAPS)
def test_json_dump_matches_bpftool(name: str, linux: Kernel, real_btf_maps: dict[str, RealMap],
                                   sim_state: Path) -> None:
    real = real_btf_maps[name]
    if real.percpu:
        same_ncpus(linux)
    want = bpftool("dump", "id", str(real.id))
    got = tinyaya_json(sim_state, "maps", "dump", name)
    assert want, "the real map was filled"
    assert all("formatted" in e for e in want), "maps_btf.o's maps have BTF"
    assert by_key(got) == by_key(want)
    record(f"dump_{name.lstrip('.')}.json", json.dumps(by_key(want), indent=1) + "\n")


@pytest.mark.parametrize("name", BTF_MAPS)
def test_json_dump_matches_recorded_bpftool(name: str, sim_state: Path) -> None:
    """The same comparison without the real kernel, against bpftool's recorded answer."""
    want = json.loads(recorded(f"dump_{name.lstrip('.')}.json"))
    assert by_key(tinyaya_json(sim_state, "maps", "dump", name)) == want


@linux_only
@pytest.mark.parametrize("name", ARRAYS)
def test_plain_dump_matches_bpftool(name: str, linux: Kernel, real_btf_maps: dict[str, RealMap],
                                    sim_state: Path) -> None:
    """Arrays dump in index order on both kernels, so the pretty BTF text must be identical."""
    real = real_btf_maps[name]
    if real.percpu:
        same_ncpus(linux)
    want = bpftool("dump", "id", str(real.id), json_out=False)
    r = run_cli(["maps", "dump", name], sim_state)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want
    record(f"dump_{name.lstrip('.')}.txt", want)


@pytest.mark.parametrize("name", ARRAYS)
def test_plain_dump_matches_recorded_bpftool(name: str, sim_state: Path) -> None:
    r = run_cli(["maps", "dump", name], sim_state)
    assert r.returncode == 0, r.stderr
    assert r.stdout == recorded(f"dump_{name.lstrip('.')}.txt")


@linux_only
@pytest.mark.parametrize("name,index", [("flows", 0), ("flows", 1), ("names", 1), ("pcpu_hash", 0),
                                        ("counts", 2)])
def test_lookup_matches_bpftool(name: str, index: int, linux: Kernel, real_btf_maps: dict[str, RealMap],
                                sim_state: Path) -> None:
    real = real_btf_maps[name]
    if real.percpu:
        same_ncpus(linux)
    key = {f.name: f for f in btf_fills(SIM_NCPUS)}[name].entries[index][0]
    hex_key = " ".join(f"{b:02x}" for b in key)
    want = bpftool("lookup", "id", str(real.id), "key", "hex", *hex_key.split())
    got = tinyaya_json(sim_state, "maps", "lookup", name, hex_key)
    assert got == want
    want_text = bpftool("lookup", "id", str(real.id), "key", "hex", *hex_key.split(), json_out=False)
    r = run_cli(["maps", "lookup", name, hex_key], sim_state)
    assert r.returncode == 0, r.stderr
    assert r.stdout == want_text


# --- the example object: legacy maps without BTF ------------------------------------------------------


@pytest.fixture(scope="module")
def example_pair(tmp_path_factory: pytest.TempPathFactory, linux: Kernel) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The example after 500 events in the sim; the real kernel's copy gets the sim's SYSCALL_LIST entries."""
    from tinyaya.programs import Ebpf

    state = tmp_path_factory.mktemp("example") / "state"
    r = run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--events", "500", "-q"], state)
    assert r.returncode == 0, r.stderr
    sim_entries = tinyaya_json(state, "maps", "dump", "SYSCALL_LIST")
    bpf = Ebpf.load_file(str(EXAMPLE_OBJ), kernel=linux)
    try:
        ids: dict[str, Any] = {}
        for name, m in bpf.maps():
            info = sysbpf.bpf_map_get_info_by_fd(linux, m.fd)
            ids[name] = int(info.id)
            if name == "SYSCALL_LIST":
                fill(linux, m.fd, 4, False, [(bytes(int(b, 16) for b in e["key"]),
                                              [bytes(int(b, 16) for b in e["value"])]) for e in sim_entries])
        yield state, ids
    finally:
        bpf.close()


@linux_only
def test_example_counts_match_bpftool_bytes(example_pair: tuple[Path, dict[str, Any]]) -> None:
    """No BTF: bpftool prints no ``formatted``; tinyaya's integer ``formatted`` is its documented extra."""
    state, ids = example_pair
    want = by_key(bpftool("dump", "id", str(ids["SYSCALL_LIST"])))
    got = by_key(tinyaya_json(state, "maps", "dump", "SYSCALL_LIST"))
    assert len(want) > 5
    assert all("formatted" not in e for e in want)
    assert [{k: e[k] for k in ("key", "value")} for e in got] == want
    for e in got:
        assert e["formatted"] == {"key": int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"),
                                  "value": int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")}


@linux_only
def test_example_plain_text_matches_bpftool(example_pair: tuple[Path, dict[str, Any]], linux: Kernel) -> None:
    """``print_entry_plain`` layouts: one-line hash entries, and a per-CPU array of 8 KiB values."""
    same_ncpus(linux)
    state, ids = example_pair
    want = bpftool("dump", "id", str(ids["SYSCALL_LIST"]), json_out=False).splitlines()
    r = run_cli(["maps", "dump", "SYSCALL_LIST"], state)
    assert r.returncode == 0, r.stderr
    got = r.stdout.splitlines()
    assert sorted(got[:-1]) == sorted(want[:-1]) and got[-1] == want[-1]
    want_buf = bpftool("dump", "id", str(ids["AYA_LOG_BUF"]), json_out=False)
    r = run_cli(["maps", "dump", "AYA_LOG_BUF"], state)
    # the sim's buffer holds the last log record; the real one is zeroed: compare the layout, not the bytes
    assert [len(line) for line in r.stdout.splitlines()] == [len(line) for line in want_buf.splitlines()]


# --- btf_dumper rules that clang's BTF does not reach (hand-made BTF; expectations from btf_dumper.c) ---


class _Btf:
    """A tiny BTF writer (uapi linux/btf.h): ``t()`` appends a type and returns its id."""

    def __init__(self) -> None:
        self.strs = bytearray(b"\0")
        self.types = bytearray()
        self.n = 0

    def s(self, name: str) -> int:
        if not name:
            return 0
        self.strs += name.encode() + b"\0"
        return len(self.strs) - len(name) - 1

    def t(self, name: str, kind: int, st: int = 0, vlen: int = 0, kflag: int = 0, extra: bytes = b"") -> int:
        import struct

        self.types += struct.pack("<III", self.s(name), (kflag << 31) | (kind << 24) | vlen, st) + extra
        self.n += 1
        return self.n

    def int_(self, name: str, size: int, bits: int, enc: int = 0, off: int = 0) -> int:
        return self.t(name, 1, size, extra=((enc << 24) | (off << 16) | bits).to_bytes(4, "little"))

    def build(self) -> Any:
        import struct

        from tinyaya.obj.btf import Btf

        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strs))
        return Btf.parse(hdr + bytes(self.types) + bytes(self.strs))


def _le(*words: tuple[int, int]) -> bytes:
    return b"".join(v.to_bytes(n, "little") for v, n in words)


def test_btf_dumper_rules_beyond_clang() -> None:
    from tinyaya.cli.btffmt import Raw, dump_value, format_json, write_pretty_one

    b = _Btf()
    ch = b.int_("ch", 1, 8, enc=2)  # BTF_INT_CHAR
    u8 = b.int_("unsigned char", 1, 8)
    char = b.int_("char", 1, 8, enc=1)
    u32 = b.int_("unsigned int", 4, 32)
    odd = b.int_("odd", 4, 12, off=4)  # an int with a bit offset: a bitfield for btf_dumper_int
    cchar = b.t("", 10, char)  # const char
    tdef = b.t("name_t", 8, char)  # typedef char
    idx = u32
    arr_const = b.t("", 3, extra=_le((cchar, 4), (idx, 4), (4, 4)))
    arr_tdef = b.t("", 3, extra=_le((tdef, 4), (idx, 4), (4, 4)))
    arr_u8 = b.t("", 3, extra=_le((u8, 4), (idx, 4), (4, 4)))
    e8 = b.t("e8", 6, 1, vlen=2, extra=_le((b.s("MINUS"), 4), (0xFFFFFFFF, 4), (b.s("ONE"), 4), (1, 4)))
    ptr = b.t("", 2, 0)
    # kind_flag 0: member offsets are plain bit offsets; the 3-bit int member is a bitfield by its type
    bits3 = b.int_("u3", 1, 3)
    s = b.t("s", 4, 24, vlen=10, extra=b"".join(_le((b.s(n), 4), (tid, 4), (off, 4)) for n, tid, off in [
        ("c", ch, 0), ("d", ch, 8), ("b3", bits3, 19), ("odd", odd, 32), ("k", arr_const, 64),
        ("t", arr_tdef, 96), ("u", arr_u8, 128), ("e", e8, 160), ("f", e8, 168), ("p", ptr, 0)]))
    btf = b.build()
    data = bytearray(24)
    data[0], data[1] = ord("A"), 1
    data[2] = 0b101 << 3
    data[4:8] = (0xABC << 4).to_bytes(4, "little")
    data[8:12], data[12:16], data[16:20] = b"hi\0x", b"hi\0\0", b"hi\0\0"
    data[20], data[21] = 0xFF, 0x80
    got = format_json(btf, s, bytes(data))
    assert got == {"c": "A", "d": "\x01", "b3": "0x5", "odd": "0xabc", "k": "hi", "t": [104, 105, 0, 0],
                   "u": [104, 105, 0, 0], "e": "MINUS", "f": -128, "p": int.from_bytes(data[:8], "little")}
    plain = dump_value(btf, s, bytes(data), plain=True)
    assert dict(plain.items)["d"] == Raw("0x1") and dict(plain.items)["b3"] == Raw("0x5")
    assert '"b3": 0x5,' in write_pretty_one(plain)
    assert dump_value(btf, ptr, bytes(8), plain=True) == "(nil)"


def test_btf_dumper_short_values_and_repeated_names() -> None:
    from tinyaya.cli.btffmt import BtfDumpError, dump_value, format_json
    from tinyaya.cli.mapfmt import Entry, MapBtf, entry_json

    b = _Btf()
    u32 = b.int_("unsigned int", 4, 32)
    anon1 = b.t("", 4, 4, vlen=1, extra=_le((b.s("a"), 4), (u32, 4), (0, 4)))
    anon2 = b.t("", 4, 4, vlen=1, extra=_le((b.s("b"), 4), (u32, 4), (0, 4)))
    outer = b.t("o", 4, 8, vlen=2, extra=_le((0, 4), (anon1, 4), (0, 4)) + _le((0, 4), (anon2, 4), (32, 4)))
    btf = b.build()
    # bpftool writes both anonymous members as "": json.loads keeps the first place and the last value
    assert format_json(btf, outer, _le((1, 4), (2, 4))) == {"": {"b": 2}}
    with pytest.raises(BtfDumpError):
        dump_value(btf, outer, bytes(6))
    e = entry_json(Entry(bytes(4), [bytes(6)]), False, MapBtf(btf, u32, outer))
    assert "formatted" not in e and e["value"] == ["0x00"] * 6



@linux_only
@pytest.mark.parametrize("name", BTF_MAPS)
def test_dump_code_on_the_real_map_matches_bpftool(name: str, linux: Kernel,
                                                   real_btf_maps: dict[str, RealMap]) -> None:
    """tinyaya's dump functions on the real map itself, with the BTF fetched from the kernel
    (BTF_GET_FD_BY_ID + bpf_btf_info.btf), as ``maps dump`` does for a map whose kernel has its BTF."""
    from tinyaya.cli.mapfmt import entries_json
    from tinyaya.cli.pins import MapBtfSource, OpenMap, iter_entries

    real = real_btf_maps[name]
    fd = sysbpf.bpf_map_get_fd_by_id(linux, real.id)
    try:
        m = OpenMap(name, fd, sysbpf.bpf_map_get_info_by_fd(linux, fd), Path("/nonexistent"))
        mb = MapBtfSource(linux, None).for_map(m)
        assert mb is not None and mb.value_type_id == m.info.btf_value_type_id
        got = entries_json(iter_entries(linux, m), m.percpu, mb)
    finally:
        linux.close(fd)
    assert got == bpftool("dump", "id", str(real.id))
