"""``python -m tests.verifier.label_corpus``: load every corpus program into the real kernel and write
``corpus/labels.json`` with Linux's verdict, errno and key log line (needs root and bpf())."""
from __future__ import annotations

import json

from .corpus import LABELS, key_message, load_corpus
from .linux_oracle import bpf_available, load_on_linux


def main() -> None:
    why = bpf_available()
    if why:
        raise SystemExit(why)
    out: dict[str, dict[str, str]] = {}
    for p in load_corpus():
        r = load_on_linux(p)
        out[p.name] = {"verdict": r.verdict, "errno": r.errno, "msg": key_message(r.log) if r.verdict == "reject"
                       else ""}
    LABELS.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"labelled {len(out)} programs")


if __name__ == "__main__":
    main()
