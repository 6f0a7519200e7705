"""Fast execution tiers with the interpreter's exact semantics (issue 9).

* ``compiled``: each verified program is translated once into Python source (basic blocks as a
  state machine of guarded blocks and ``while`` loops, registers as locals, frame-pointer stack
  slots resolved at translation time, map pointers and helpers folded in as constants) and cached
  in ``prog.compiled['compiled']``.
* ``native`` (optional, ``tinyaya[jit]``): eBPF -> LLVM IR -> machine code through llvmlite, for
  programs it can take; everything else falls back to ``compiled``.

``install(vm, "interp" | "compiled" | "native")`` routes ``vm.run``/``vm.run_repeat`` through an
engine; ``Engine`` is the engine itself. Faults are the interpreter's ``BpfFault``, same pc, same
message.
"""
from .cfg import NotCompilable
from .engine import DEFAULT_ENGINE, ENGINES, Engine, default_engine, install, native_available
from .translate import CompiledProgram, build

__all__ = ["CompiledProgram", "DEFAULT_ENGINE", "ENGINES", "Engine", "NotCompilable", "build",
           "default_engine", "install", "native_available"]
