"""Output snapshots of the CLI, plain and JSON, against files in tests/cli/snapshots/.

The simulated machine is deterministic (the workload is seeded, the clock is
simulated), so the same load prints the same thing every time; the only things
masked are the state directory, the repository path and wall-clock durations.
Regenerate after an intended change with::

    TINYAYA_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/cli/test_snapshots.py

and review the diff like code.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest_helpers import EXAMPLE_OBJ, ROOT, run_cli

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("TINYAYA_UPDATE_SNAPSHOTS") == "1"
BTF_OBJ = ROOT / "tests" / "fixtures" / "cli" / "maps_btf.o"


def mask(text: str, state: Path) -> str:
    text = text.replace(str(state), "<STATE>").replace(str(ROOT), "<ROOT>")
    # source paths that clang recorded in the committed objects (line_info): where they were built
    text = re.sub(r'(?<=")/[^"]*?/(?=(?:examples|tests)/)', "<ROOT>/", text)
    text = re.sub(r"\bin \d+\.\d+s\b", "in <T>s", text)
    # run_time_ns is host time spent running the program (bpf_stats): it varies run to run
    return re.sub(r'(run_time_ns"?[:\s]+)\d+', r"\g<1><NS>", text)


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path.name}: run with TINYAYA_UPDATE_SNAPSHOTS=1 to create it")
    assert text == path.read_text(), f"{path.name} differs (TINYAYA_UPDATE_SNAPSHOTS=1 regenerates it)"


@pytest.fixture(scope="module")
def example_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    state = tmp_path_factory.mktemp("snap") / "state"
    # a long --interval: the output must not depend on how many interval ticks fit in the run's time
    r = run_cli(["load", str(EXAMPLE_OBJ), "--kprobe", "sys_enter", "--events", "1000", "--interval", "600"], state)
    assert r.returncode == 0, r.stderr
    return state, mask(r.stdout, state)


@pytest.fixture(scope="module")
def btf_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("snapbtf") / "state"
    r = run_cli(["load", str(BTF_OBJ), "--events", "0", "-q"], state)
    assert r.returncode == 0, r.stderr
    for args in (["counts", "1", "10"], ["counts", "2", "20"],
                 ["cells", "1", "68 69 0 0 0 0 0 0  ff ff ff ff  fe ff 2b a5 41 42 43 00"],
                 ["pcpu", "2", "05 00 00 00 00 00 00 00 09 00 00 00 00 00 00 00"],
                 ["names", "6f 70 65 6e 61 74 00 00 00 00 00 00", "7"]):
        u = run_cli(["maps", "update", *args], state)
        assert u.returncode == 0, u.stderr
    return state


def test_load_output(example_state: tuple[Path, str]) -> None:
    check("load_example", example_state[1])


EXAMPLE_CASES = {
    "maps_list": ["maps", "list"],
    "maps_list_json": ["maps", "list", "--json"],
    "maps_show": ["maps", "show", "SYSCALL_LIST"],
    "maps_show_json": ["maps", "show", "SYSCALL_LIST", "--json"],
    "maps_dump": ["maps", "dump", "SYSCALL_LIST"],
    "maps_dump_json": ["maps", "dump", "SYSCALL_LIST", "--json"],
    "maps_lookup": ["maps", "lookup", "SYSCALL_LIST", "257"],
    "maps_lookup_json": ["maps", "lookup", "SYSCALL_LIST", "257", "--json"],
    "prog_list": ["prog", "list"],
    "prog_list_json": ["prog", "list", "--json"],
    "prog_show": ["prog", "show", "syscall_ebpf"],
    "prog_show_json": ["prog", "show", "syscall_ebpf", "--json"],
    "prog_dump": ["prog", "dump", "syscall_ebpf"],
    "prog_dump_json": ["prog", "dump", "syscall_ebpf", "--json"],
    "inspect": ["inspect", str(EXAMPLE_OBJ)],
    "inspect_json": ["inspect", str(EXAMPLE_OBJ), "--json"],
    "ksyms": ["ksyms"],
    "ksyms_json": ["ksyms", "--json"],
    "workloads": ["workloads"],
    "workloads_json": ["workloads", "--json"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_CASES))
def test_example_snapshot(name: str, example_state: tuple[Path, str]) -> None:
    state = example_state[0]
    r = run_cli(EXAMPLE_CASES[name], state)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    check(name, mask(r.stdout, state))


BTF_CASES = {
    "btf_dump_cells": ["maps", "dump", "cells"],
    "btf_dump_cells_json": ["maps", "dump", "cells", "--json"],
    "btf_dump_counts_json": ["maps", "dump", "counts", "--json"],
    "btf_dump_pcpu": ["maps", "dump", "pcpu"],
    "btf_dump_pcpu_json": ["maps", "dump", "pcpu", "--json"],
    "btf_dump_data": ["maps", "dump", ".data"],
    "btf_lookup_names": ["maps", "lookup", "names", "6f 70 65 6e 61 74 00 00 00 00 00 00"],
    "btf_lookup_names_json": ["maps", "lookup", "names", "6f 70 65 6e 61 74 00 00 00 00 00 00", "--json"],
}


@pytest.mark.parametrize("name", sorted(BTF_CASES))
def test_btf_snapshot(name: str, btf_state: Path) -> None:
    r = run_cli(BTF_CASES[name], btf_state)
    assert r.returncode == 0, r.stderr
    check(name, mask(r.stdout, btf_state))


def test_snapshots_have_no_unmasked_paths() -> None:
    """A snapshot must not depend on where the test ran."""
    for p in SNAPSHOTS.glob("*.txt"):
        text = p.read_text()
        assert "/tmp/" not in text and "pytest-of" not in text, p.name


def test_project_codec_formats_maps_without_btf(tmp_path: Path) -> None:
    """No BTF: ``formatted`` follows the types tinyaya.toml gives the map (``bytes`` leaves the key out)."""
    import json

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "tinyaya.toml").write_text(
        f'object = "{EXAMPLE_OBJ}"\nprograms = ["syscall_ebpf"]\n\n[attach]\nkind = "kprobe"\ntarget = "sys_enter"\n\n'
        '[maps.SYSCALL_LIST]\nkey = "bytes"\nvalue = "i32"\n')
    state = tmp_path / "state"
    assert run_cli(["load", "--events", "0", "-q"], state, cwd=proj).returncode == 0
    assert run_cli(["maps", "update", "SYSCALL_LIST", "5", "--", "-3"], state).returncode == 0
    r = run_cli(["maps", "dump", "SYSCALL_LIST", "--json"], state)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"key": ["0x05", "0x00", "0x00", "0x00"], "value": ["0xfd", "0xff", "0xff", "0xff"],
                                     "formatted": {"value": -3}}]
    r = run_cli(["maps", "lookup", "SYSCALL_LIST", "5", "--json"], state)
    assert json.loads(r.stdout)["formatted"] == {"value": -3}
