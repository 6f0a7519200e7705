"""Run the ```console blocks of README.md as a new user would, and fill in (or check) their output.

    python tools/readme_console.py --update     # rewrite README.md with what the commands print now
    python tools/readme_console.py --check      # exit 1 if README.md shows something else

Each ``$ tinyaya …`` line runs in order, in one fresh state directory, with
stdout and stderr together as a terminal would show them. Expected output may
end a block's command with a line ``...``: the rest of that output is not
compared. Timings and rates are masked before comparing.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_BLOCK = re.compile(r"^```console\n(.*?)^```$", re.S | re.M)
#: how many lines of output the README keeps per command (the rest becomes "...")
KEEP = {"maps dump": 6, "inspect": 12, "prog list": 4}
_VOLATILE = [(re.compile(r"\b\d+\.\d+s\b"), "N.NNs"), (re.compile(r"run_time_ns \d+"), "run_time_ns N"),
             (re.compile(r"[\d,]+/s\b"), "N/s")]


def run(cmd: str, state: Path) -> str:
    argv = shlex.split(cmd)
    assert argv[0] == "tinyaya", cmd
    env = dict(os.environ, TINYAYA_STATE_DIR=str(state), COLUMNS="100", NO_COLOR="1")
    env.pop("XDG_RUNTIME_DIR", None)
    r = subprocess.run([sys.executable, "-m", "tinyaya.cli.main", *argv[1:]], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    return r.stdout.replace(str(state), "$TINYAYA_STATE_DIR")


def commands(block: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    return out


def trimmed(cmd: str, output: str) -> list[str]:
    lines = output.rstrip("\n").splitlines()
    for key, n in KEEP.items():
        if key in cmd and len(lines) > n:
            return lines[:n] + ["..."]
    return lines


def normalize(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        for pat, rep in _VOLATILE:
            line = pat.sub(rep, line)
        out.append(line.rstrip())
    return out


def check_or_update(update: bool) -> list[str]:
    text = README.read_text()
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"

        def fill(m: re.Match[str]) -> str:
            body = []
            for cmd, expected in commands(m.group(1)):
                got = trimmed(cmd, run(cmd, state))
                exp = expected
                if exp and exp[-1] == "...":
                    got_cmp = normalize(got[: len(exp) - 1])
                    exp_cmp = normalize(exp[:-1])
                else:
                    got_cmp, exp_cmp = normalize(got), normalize(exp)
                if got_cmp != exp_cmp:
                    problems.append(f"$ {cmd}\n  README shows: {exp_cmp}\n  it prints:    {got_cmp}")
                body.append(f"$ {cmd}")
                body.extend(got)
            return "```console\n" + "\n".join(body) + "\n```"

        new = _BLOCK.sub(fill, text)
    if update:
        README.write_text(new)
    return problems


def main() -> int:
    update = "--update" in sys.argv
    problems = check_or_update(update)
    if problems and not update:
        print("README.md is out of date (python tools/readme_console.py --update):\n" + "\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
