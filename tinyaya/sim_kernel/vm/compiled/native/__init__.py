"""The optional native tier (``tinyaya[jit]``): eBPF -> LLVM IR -> machine code through llvmlite.
Importing this package needs llvmlite; ``engine.native_available()`` says whether it is there."""
