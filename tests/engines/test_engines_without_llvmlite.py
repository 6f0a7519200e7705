"""Without llvmlite (the optional ``tinyaya[jit]`` extra) everything else works unchanged: a process in
which ``import llvmlite`` fails loads the example, runs a workload through the default engine, gets the
compiled tier when it asks for ``native``, and the CLI's ``load --engine native`` runs too."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "syscall_ebpf" / "syscall_ebpf-ebpf" / "syscall_ebpf.o"

SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["llvmlite"] = None  # `import llvmlite` raises ImportError from here on
    sys.modules["llvmlite.binding"] = None
    from collections import Counter
    from tinyaya.programs.ebpf import Ebpf
    from tinyaya.sim_kernel.kernel import SimKernel
    from tinyaya.sim_kernel.vm.compiled import install, native_available

    assert not native_available()
    k = SimKernel()
    assert k.vm.engine.name == "compiled" and not k.vm.engine.auto_native
    ebpf = Ebpf.load_file(sys.argv[1], kernel=k)
    prog = ebpf.program_mut("syscall_ebpf")
    prog.load()
    prog.attach("sys_enter", 0)
    counts = Counter()
    assert k.machine.workload("default", seed=0).step(3000, counts) == 3000
    from tinyaya.maps import HashMap
    got = {int(a): int(b) for a, b in HashMap(ebpf.map("SYSCALL_LIST"), key="I", value="I").items()}
    assert got == {nr: c for nr, c in counts.items() if nr != 1}, (got, counts)
    eng = install(k.vm, "native")
    assert eng.name == "compiled" and eng.native is None
    from tinyaya.cli import main
    sys.argv = ["tinyaya", "load", sys.argv[1], "--kprobe", "sys_enter", "--events", "500", "-q",
                "--engine", "native"]
    try:
        main()
    except SystemExit as e:
        assert not e.code, e.code
    print("ok")
""")


def test_everything_works_without_llvmlite(tmp_path: Path) -> None:
    env = dict(os.environ, TINYAYA_STATE_DIR=str(tmp_path / "state"))
    env.pop("TINYAYA_ENGINE", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(EXAMPLE)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.rstrip().endswith("ok")
    assert "issued 500 syscalls" in out.stdout, out.stdout
