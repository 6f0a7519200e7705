"""The README as a new user follows it: its console commands print what it shows, and its Python runs."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def test_console_blocks_print_what_the_readme_shows() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import readme_console
    finally:
        sys.path.pop(0)
    problems = readme_console.check_or_update(update=False)
    assert not problems, "README.md is out of date (python tools/readme_console.py --update):\n" + "\n".join(problems)


def test_python_blocks_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    text = (ROOT / "README.md").read_text()
    blocks = [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _FENCE.finditer(text)]
    assert len(blocks) >= 3
    for line, src in blocks:
        ns: dict[str, object] = {"__name__": "readme"}
        exec(compile("\n" * (line - 1) + src, "README.md", "exec"), ns)
        # a block that defines a pytest test is a test: run it with the fixture it asks for
        for name, fn in list(ns.items()):
            if name.startswith("test_") and callable(fn):
                from tinyaya.sim_kernel import SimKernel

                fn(SimKernel(bpffs_root=str(tmp_path / "bpffs")))
