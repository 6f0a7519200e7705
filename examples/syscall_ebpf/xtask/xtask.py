#!/usr/bin/env python3
"""xtask for the syscall_ebpf example, as in Aya's template: build the eBPF object, run the example.

    python xtask/xtask.py build-ebpf     # clang-19 -> syscall_ebpf-ebpf/syscall_ebpf.o (committed)
    python xtask/xtask.py run [-- ARGS]  # run the user-space program (syscall_ebpf/main.py)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_ebpf() -> int:
    if shutil.which(os.environ.get("CLANG", "clang-19")) is None:
        print("xtask: clang-19 not found (apt-get install clang-19 llvm-19 libbpf-dev); "
              "the committed object is still usable", file=sys.stderr)
        return 2
    return subprocess.call(["make", "-B", "-C", str(ROOT / "syscall_ebpf-ebpf")])


def run(args: list[str]) -> int:
    return subprocess.call([sys.executable, str(ROOT / "syscall_ebpf" / "main.py"), *args])


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if cmd == "build-ebpf":
        return build_ebpf()
    if cmd == "run":
        return run(rest)
    print(f"xtask: unknown command {cmd!r} (build-ebpf, run)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
