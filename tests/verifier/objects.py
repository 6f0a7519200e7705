"""Verdicts for every program of clang-built objects, through the loader (``Ebpf.load_file`` + ``load()``),
on any kernel. ``python -m tests.verifier.objects --label`` writes ``fixtures/labels.json`` from Linux."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
LABELS = FIXTURES / "labels.json"


def object_verdicts(path: Path, kernel: Any) -> dict[str, dict[str, str]]:
    """name -> {"verdict", "errno", "msg"}; a file the loader cannot open gives one entry ``<open>``."""
    import errno as _errno

    from tinyaya.programs.ebpf import Ebpf

    out: dict[str, dict[str, str]] = {}
    try:
        ebpf = Ebpf.load_file(path, kernel=kernel)
    except Exception as e:  # the loader's typed errors (CO-RE, relocations) are outside the verifier
        return {"<open>": {"verdict": "error", "errno": "", "msg": type(e).__name__}}
    try:
        for name, prog in list(ebpf.programs()):
            try:
                prog.load()
                out[name] = {"verdict": "accept", "errno": "", "msg": ""}
            except OSError as e:
                if not hasattr(e, "verifier_log"):
                    out[name] = {"verdict": "error", "errno": "", "msg": type(e).__name__}
                    continue
                log = getattr(e, "verifier_log", "") or ""
                lines = [ln for ln in log.splitlines() if ln.strip() and not ln.startswith("processed ")]
                out[name] = {"verdict": "reject", "errno": _errno.errorcode.get(e.errno or 0, str(e.errno)),
                             "msg": lines[-1] if lines else ""}
            except Exception as e:  # noqa: BLE001 - the loader's own errors (CO-RE, maps) are not verdicts
                out[name] = {"verdict": "error", "errno": "", "msg": type(e).__name__}
    finally:
        close = getattr(ebpf, "close", None)
        if close is not None:
            close()
    return out


def all_objects() -> list[Path]:
    return sorted(FIXTURES.glob("*.bpf.o"))


def main() -> None:
    if "--label" in sys.argv:
        from tinyaya.kernel import LinuxKernel
        labels = {p.name: object_verdicts(p, LinuxKernel()) for p in all_objects()}
        LABELS.write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
        print(f"labelled {sum(len(v) for v in labels.values())} programs")


if __name__ == "__main__":
    main()
