"""``python -m tests.verifier.compare [--linux]``: verdicts of the corpus on tinyaya vs labels (or live Linux)."""
from __future__ import annotations

import sys

from .corpus import key_message, load_corpus, load_labels
from .sim_oracle import load_on_sim


def main() -> None:
    live = "--linux" in sys.argv
    labels = load_labels()
    progs = load_corpus()
    agree = 0
    for p in progs:
        if live:
            from .linux_oracle import load_on_linux
            r = load_on_linux(p)
            lab = {"verdict": r.verdict, "errno": r.errno, "msg": key_message(r.log) if r.verdict == "reject" else ""}
        else:
            lab = labels.get(p.name)
            if lab is None:
                print(f"?? {p.name}: no label")
                continue
        s = load_on_sim(p)
        smsg = key_message(s.log) if s.verdict == "reject" else ""
        ok = s.verdict == lab["verdict"] and s.errno == lab["errno"]
        agree += ok
        mark = "ok" if ok else "XX"
        if not ok or (smsg != lab["msg"] and "-v" in sys.argv):
            print(f"{mark} {p.name}: linux={lab['verdict']} {lab['errno']} {lab['msg']!r}  sim={s.verdict} {s.errno} "
                  f"{smsg!r}")
    print(f"agreement {agree}/{len(progs)}")


if __name__ == "__main__":
    main()
