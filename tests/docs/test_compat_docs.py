"""docs/compatibility.md is generated from the code's registries and must match them as they are."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python tools/gen_compat_docs.py > docs/compatibility.md"


def _render() -> str:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from gen_compat_docs import render
    finally:
        sys.path.pop(0)
    return render() + "\n"


def test_compatibility_tables_are_current() -> None:
    expected = _render()
    actual = (ROOT / "docs" / "compatibility.md").read_text()
    assert actual == expected, f"docs/compatibility.md is stale: run `{REGENERATE}`"


def test_tables_follow_the_registries() -> None:
    """The generator reads the registries, not a copy: each simulated map type and each helper both
    tables know shows up as supported."""
    from tinyaya.sim_kernel.maps import MAP_TYPES
    from tinyaya.sim_kernel.vm.helpers import helper_table
    from tinyaya.uapi.bpf import BpfMapType
    from tinyaya.uapi.helpers import HELPERS, helper_name

    text = _render()
    names = {int(t): t.name for t in BpfMapType} | {32: "BPF_MAP_TYPE_CGRP_STORAGE", 33: "BPF_MAP_TYPE_ARENA"}
    for t in MAP_TYPES:
        short = names[int(t)].removeprefix("BPF_MAP_TYPE_")
        assert f"| {int(t)} | `{short}` | yes |" in text
    for i in set(helper_table()) & set(HELPERS):
        assert f"| {i} | `{helper_name(i)}` | yes |" in text


def test_generation_leaves_nothing_behind(tmp_path, monkeypatch) -> None:
    """The probing kernels use private temporary bpffs directories."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    _render()
    assert list(tmp_path.iterdir()) == []
