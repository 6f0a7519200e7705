"""The verifier corpus against Linux's labels (and, where bpf() works, against the live kernel)."""
from __future__ import annotations

import pytest

from .corpus import key_message, load_corpus, load_labels
from .sim_oracle import load_on_sim

PROGS = load_corpus()
LABELS = load_labels()
#: rejections for reasons other than memory safety (structure, helper availability, licence, return codes);
#: a memory-safety rejection is everything else and must never be accepted by tinyaya
NON_SAFETY = ("unknown opcode", "uses reserved fields", "jump out of range", "unreachable insn", "last insn",
              "invalid bpf_ld_imm64", "unrecognized bpf_ld_imm64", "div by zero", "invalid shift",
              "invalid func", "cannot use helper", "GPL-restricted", "At program exit", "infinite loop",
              "call to invalid destination", "jump into the middle")


def test_corpus_size() -> None:
    assert len(PROGS) >= 150
    assert set(LABELS) >= {p.name for p in PROGS}, "run python -m tests.verifier.label_corpus"


def test_agreement_with_labels() -> None:
    agree = 0
    unsafe_accepted = []
    for p in PROGS:
        lab = LABELS[p.name]
        s = load_on_sim(p)
        if s.verdict == lab["verdict"] and s.errno == lab["errno"]:
            agree += 1
        if lab["verdict"] == "reject" and s.verdict == "accept" and not any(k in lab["msg"] for k in NON_SAFETY):
            unsafe_accepted.append(p.name)
    assert not unsafe_accepted, f"accepted programs Linux rejects for memory safety: {unsafe_accepted}"
    assert agree / len(PROGS) >= 0.97, f"agreement {agree}/{len(PROGS)}"


@pytest.mark.parametrize("prog", PROGS, ids=[p.name for p in PROGS])
def test_each_verdict(prog) -> None:  # type: ignore[no-untyped-def]
    lab = LABELS[prog.name]
    s = load_on_sim(prog)
    assert (s.verdict, s.errno) == (lab["verdict"], lab["errno"]), key_message(s.log)


@pytest.mark.linux
def test_live_kernel_agreement() -> None:
    from .linux_oracle import bpf_available, load_on_linux
    why = bpf_available()
    if why:
        pytest.skip(why)
    agree = 0
    for p in PROGS:
        r = load_on_linux(p)
        s = load_on_sim(p)
        agree += (r.verdict, r.errno) == (s.verdict, s.errno)
    assert agree / len(PROGS) >= 0.97


def test_through_sim_kernel_prog_load() -> None:
    """The same corpus through SimKernel's bpf(BPF_PROG_LOAD): maps, BTF and func_info made by the kernel."""
    sk = pytest.importorskip("tinyaya.sim_kernel.kernel", reason="SimKernel not available")
    from .linux_oracle import load_on_kernel
    kernel = sk.SimKernel()
    agree = 0
    for p in PROGS:
        r = load_on_kernel(kernel, p)
        lab = LABELS[p.name]
        agree += (r.verdict, r.errno) == (lab["verdict"], lab["errno"])
    assert agree / len(PROGS) >= 0.97, f"agreement {agree}/{len(PROGS)}"
    assert kernel.fds is not None


def test_rejection_messages_match_linux() -> None:
    """The log line that says why is Linux's own, word for word, for nearly every rejection."""
    same = total = 0
    misses = []
    for p in PROGS:
        lab = LABELS[p.name]
        if lab["verdict"] != "reject":
            continue
        total += 1
        got = key_message(load_on_sim(p).log)
        if got == lab["msg"]:
            same += 1
        else:
            misses.append((p.name, lab["msg"], got))
    assert same / total >= 0.95, misses
