"""The loader's pinning semantics, as one function both backends run (the real kernel in a private bpffs)."""
from __future__ import annotations

import os
from typing import Any

from tinyaya import EbpfLoader
from tinyaya.maps import Array, HashMap, u32, u64

PINNED = os.path.join(os.path.dirname(__file__), "..", "linux", "fixtures", "pinned.o")


def run(kernel: Any, pin_dir: str) -> None:
    """Load twice with map_pin_path: SHARED (pinning BY_NAME) is pinned on the first load and reused,
    with its contents, by the second; PRIVATE is created afresh each time."""
    first = EbpfLoader(kernel=kernel).map_pin_path(pin_dir).load_file(PINNED)
    assert first.map("SHARED").pinned_path == f"{pin_dir}/SHARED"
    assert first.map("PRIVATE").pinned_path is None
    HashMap(first.map("SHARED"), key=u32, value=u64).insert(0, 1234)
    Array(first.map("PRIVATE"), value=u64).set(0, 99)
    first.close()
    pins = os.listdir(pin_dir)  # a real bpffs also shows maps.debug and progs.debug
    assert "SHARED" in pins and "PRIVATE" not in pins
    second = EbpfLoader(kernel=kernel).map_pin_path(pin_dir).load_file(PINNED)
    assert HashMap(second.map("SHARED"), key=u32, value=u64).get(0) == 1234
    assert Array(second.map("PRIVATE"), value=u64).get(0) == 0
    prog = second.program("touch")
    prog.load()
    assert prog.test_run(data=bytes(64)).retval == 1234
    second.close()
    os.unlink(f"{pin_dir}/SHARED")
