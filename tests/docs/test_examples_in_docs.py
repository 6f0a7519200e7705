"""The code examples in the docs run, and what they assert holds.

Each document's ```python blocks run in order in one namespace, from the repository root (the
examples use paths such as ``examples/syscall_ebpf/...``). ```toml blocks in simulated-machine.md
are workload files and must parse.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["simulated-machine.md", "engines.md", "architecture.md"]
_FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def code_blocks(text: str, lang: str) -> list[tuple[int, str]]:
    """(first line number, source) of each fenced block in ``lang``."""
    return [(text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in _FENCE.finditer(text)
            if m.group(1) == lang]


def test_code_blocks_are_found() -> None:
    text = "x\n```python\na = 1\n```\n\n```toml\nb = 2\n```\n"
    assert code_blocks(text, "python") == [(3, "a = 1\n")]
    assert code_blocks(text, "toml") == [(7, "b = 2\n")]


@pytest.mark.parametrize("doc", DOCS)
def test_python_examples_run(doc: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = ROOT / "docs" / doc
    if not path.exists():
        pytest.skip(f"docs/{doc} is not written yet")
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # a default bpffs root, if an example pins
    blocks = code_blocks(path.read_text(), "python")
    namespace: dict[str, object] = {"__name__": f"docs_{doc}"}
    for line, src in blocks:
        code = compile("\n" * (line - 1) + src, str(path), "exec")
        try:
            exec(code, namespace)
        except Exception as e:  # noqa: BLE001 - name the block that failed
            raise AssertionError(f"docs/{doc}: the example at line {line} failed: {e!r}") from e


def test_workload_toml_examples_parse() -> None:
    from tinyaya.sim_kernel.workloads import parse_workload_toml

    path = ROOT / "docs" / "simulated-machine.md"
    blocks = code_blocks(path.read_text(), "toml")
    assert blocks, "simulated-machine.md shows a workload file"
    for line, src in blocks:
        spec = parse_workload_toml(src, source=f"{path}:{line}")
        assert spec.processes
