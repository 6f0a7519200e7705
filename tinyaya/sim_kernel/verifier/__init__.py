"""The simulated kernel's eBPF verifier, in the style of Linux's kernel/bpf/verifier.c.

``verify(kernel, prog, log)`` is called by PROG_LOAD after ``resolve_pseudo_ldimm64``. It runs the
structural checks (cfg.py), then abstract interpretation over every path (check.py), and raises
``VerifierReject`` with Linux's errno and message when the program is unsafe. On success it sets
``prog.verified_insns`` (the ``processed`` count), ``prog.stack_depth`` (per subprogram) and
``prog.insn_seen`` (which instructions some path reached).

``verify_insns(insns, prog_type, ...)`` is the same on a bare instruction list with a map resolver,
for tests and the benchmark (``bench_verify``).
"""
from __future__ import annotations

from .api import bench_verify, verify, verify_insns
from .errors import VerifierReject
from .log import VerifierLog

__all__ = ["verify", "verify_insns", "bench_verify", "VerifierReject", "VerifierLog"]
