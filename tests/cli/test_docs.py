"""docs/cli.md is generated from click and must match the commands as they are."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from gen_cli_docs import render
    finally:
        sys.path.pop(0)
    expected = render() + "\n"
    actual = (ROOT / "docs" / "cli.md").read_text()
    assert actual == expected, "docs/cli.md is stale: run `python tools/gen_cli_docs.py > docs/cli.md`"
