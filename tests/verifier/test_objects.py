"""clang-built programs (libbpf-bootstrap style, tc/xdp parsers, loops, bpf_loop, spin locks) loaded through
``Ebpf.load_file`` on SimKernel: the verdicts Linux 6.18 gave them (``fixtures/labels.json``)."""
from __future__ import annotations

import json

import pytest

from .objects import LABELS, all_objects, object_verdicts

sk = pytest.importorskip("tinyaya.sim_kernel.kernel", reason="SimKernel not available")
pytest.importorskip("tinyaya.programs.ebpf", reason="the loader is not available")
LABELLED = json.loads(LABELS.read_text()) if LABELS.exists() else {}


@pytest.mark.parametrize("path", all_objects(), ids=lambda p: p.name)
def test_object_verdicts_match_linux(path) -> None:  # type: ignore[no-untyped-def]
    want = LABELLED.get(path.name)
    if want is None:
        pytest.skip("not labelled: run python -m tests.verifier.objects --label")
    if "<open>" in want:
        pytest.skip("labelled when the loader could not open it: relabel with python -m tests.verifier.objects --label")
    got = object_verdicts(path, sk.SimKernel())
    if "<open>" in got:
        pytest.skip(f"the loader cannot open it yet ({got['<open>']['msg']})")
    compared = 0
    for name, lab in want.items():
        assert name in got
        if "error" in (lab["verdict"], got[name]["verdict"]):
            continue  # the loader could not get this program to BPF_PROG_LOAD on one side
        compared += 1
        assert (got[name]["verdict"], got[name]["errno"]) == (lab["verdict"], lab["errno"]), \
            f"{name}: linux {lab} sim {got[name]}"
    if not compared:
        pytest.skip("no program of this object reached BPF_PROG_LOAD on both kernels")
