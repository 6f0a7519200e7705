"""The execution engine: the interpreter (``Vm``), helpers, contexts and BPF_PROG_TEST_RUN.

``Vm(kernel).run(prog, ctx_addr, cpu) -> r0`` raises ``BpfFault`` on a runtime fault;
``Vm.test_run(...)`` is BPF_PROG_TEST_RUN; ``Vm.run_with_ctx(prog, ctx_bytes, cpu)`` runs a
kprobe-style program on a copy of a context. The ISA's meaning lives in ``semantics.py``.
"""
from .fault import BpfFault
from .interp import Vm
from .test_run import TestRunResult

__all__ = ["BpfFault", "TestRunResult", "Vm"]
