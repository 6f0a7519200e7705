"""Micro-benchmarks of the maps' program side: ns per ``prog_lookup``/``prog_update`` (and per helper call).

``map_benchmarks()`` returns one record per (map type, operation, private or pinned):
``{"name": "map:hash:update_existing:pinned", "ns_per_call": ..., "engine": "maps", ...}``, so
``tinyaya/bench.py`` can add them to ``bench-results.json``. ``python -m tinyaya.sim_kernel.maps.bench_maps``
prints them (``--events interp,compiled`` adds ``syscall_ebpf_rates``: the example's syscalls/s with its
maps private and pinned, as ``tinyaya load`` pins them). Each figure is the best of several rounds of process CPU time, as bench.py times engines.

The operations are what a kprobe counting program does per event (the syscall_ebpf example): a hash
lookup of a 4-byte key, an update of an existing key (BPF_ANY), an insert of a new key (after a
delete), an array and per-CPU array lookup and update; and the same through the helpers
(``bpf_map_lookup_elem``/``bpf_map_update_elem`` with key and value in memory), which is the VM's path.
Pinned maps live in a temporary bpffs directory that is removed afterwards.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = ["map_benchmarks", "syscall_ebpf_rates", "main"]

_HASH, _ARRAY, _PERCPU_ARRAY = 1, 2, 6


def _best_ns(fn: Callable[[int], None], calls: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time_ns()
        fn(calls)
        best = min(best, (time.process_time_ns() - t) / calls)
    return best


def _make(kernel: Any, map_type: int, value_size: int, max_entries: int, pin_dir: Path | None, name: str) -> Any:
    from ...uapi.bpf import MapCreateAttr
    from . import create_map, pin_map

    attr: Any = MapCreateAttr()
    attr.map_type, attr.key_size, attr.value_size, attr.max_entries = map_type, 4, value_size, max_entries
    m = create_map(kernel, attr)
    m.name = name.encode()
    if pin_dir is not None:
        pin_map(m, pin_dir / name)
    return m


def _cases(kernel: Any, pinned: bool, pin_dir: Path | None) -> list[tuple[str, Callable[[int], None]]]:
    from ..memory import RegionKind
    from ..vm import helpers_maps as hm

    d = pin_dir if pinned else None
    tag = "pinned" if pinned else "private"
    h = _make(kernel, _HASH, 4, 1024, d, f"h_{tag}")
    a = _make(kernel, _ARRAY, 4, 16, d, f"a_{tag}")
    pa = _make(kernel, _PERCPU_ARRAY, 4, 16, d, f"pa_{tag}")
    key, val = (7).to_bytes(4, "little"), (1).to_bytes(4, "little")
    for k in range(64):  # a table with some elements, as after a while of counting
        h.prog_update(k.to_bytes(4, "little"), val, 0, 0)
    scratch = kernel.aspace.add(bytearray(16), RegionKind.USER, "bench-maps")
    scratch.buf[0:4] = key
    scratch.buf[8:12] = val
    env: Any = SimpleNamespace(vm=SimpleNamespace(aspace=kernel.aspace, kernel=kernel), cpu=0)
    kaddr, vaddr = scratch.base, scratch.base + 8

    def loop(op: Callable[[], Any]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                op()
        return run

    def insert(n: int) -> None:
        new = (5000).to_bytes(4, "little")
        for _ in range(n):
            h.prog_delete(new)
            h.prog_update(new, val, 0, 0)

    def delete_only(n: int) -> None:
        new = (5000).to_bytes(4, "little")
        for _ in range(n):
            h.prog_delete(new)

    cases: list[tuple[str, Callable[[int], None]]] = [
        (f"hash:lookup:{tag}", loop(lambda: h.prog_lookup(key, 0))),
        (f"hash:lookup_miss:{tag}", loop(lambda: h.prog_lookup(b"\xff\xff\xff\xff", 0))),
        (f"hash:update_existing:{tag}", loop(lambda: h.prog_update(key, val, 0, 0))),
        (f"hash:delete+insert:{tag}", insert),
        (f"hash:delete_missing:{tag}", delete_only),
        (f"array:lookup:{tag}", loop(lambda: a.prog_lookup(key, 0))),
        (f"array:update:{tag}", loop(lambda: a.prog_update(key, val, 0, 0))),
        (f"percpu_array:lookup:{tag}", loop(lambda: pa.prog_lookup(key, 1))),
        (f"percpu_array:update:{tag}", loop(lambda: pa.prog_update(key, val, 0, 1))),
        (f"helper:hash_lookup:{tag}", loop(lambda: hm.bpf_map_lookup_elem(env, h.addr, kaddr))),
        (f"helper:hash_update:{tag}", loop(lambda: hm.bpf_map_update_elem(env, h.addr, kaddr, vaddr, 0))),
        (f"helper:percpu_array_lookup:{tag}", loop(lambda: hm.bpf_map_lookup_elem(env, pa.addr, kaddr))),
    ]
    return cases


def map_benchmarks(calls: int = 20000, rounds: int = 5) -> list[dict[str, Any]]:
    """Time the maps' program-side operations, private and pinned; one record per case."""
    from .. import SimKernel

    out: list[dict[str, Any]] = []
    root = Path(tempfile.mkdtemp(prefix="tinyaya-bench-maps-"))
    try:
        kernel = SimKernel(bpffs_root=root)
        for pinned in (False, True):
            for name, fn in _cases(kernel, pinned, root if pinned else None):
                fn(min(calls, 2000))  # warm up (chunks allocated, caches filled)
                ns = _best_ns(fn, calls, rounds)
                out.append({"name": f"map:{name}", "engine": "maps", "ns_per_call": round(ns, 1),
                            "ns_per_insn": None, "calls_per_sec": 1e9 / ns if ns else None,
                            "insns_per_call": None, "calls": calls})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def syscall_ebpf_rates(engines: tuple[str, ...] = ("interp", "compiled"), steps: int = 10000,
                       rounds: int = 5) -> list[dict[str, Any]]:
    """Simulated syscalls per second of the syscall_ebpf example on the default workload, with its maps
    private and pinned (as ``tinyaya load`` pins them), per engine; best of ``rounds`` in process CPU time."""
    from ...bench import SYSCALL_EBPF
    from ...programs import Ebpf
    from ...sys import bpf as sysbpf
    from .. import SimKernel

    out: list[dict[str, Any]] = []
    if not SYSCALL_EBPF.exists():
        return out
    for engine in engines:
        for pinned in (False, True):
            root = Path(tempfile.mkdtemp(prefix="tinyaya-bench-maps-"))
            try:
                kernel = SimKernel(bpffs_root=root)
                try:
                    from ..vm.compiled import install
                except ImportError:  # no compiled tier: the interpreter only
                    if engine != "interp":
                        continue
                else:
                    install(kernel.vm, engine)
                ebpf = Ebpf.load_file(str(SYSCALL_EBPF), kernel=kernel)
                prog: Any = ebpf.program_mut("syscall_ebpf")
                prog.load()
                prog.attach("sys_enter", 0)
                if pinned:
                    for name, m in ebpf.maps():
                        sysbpf.bpf_obj_pin(kernel, m.fd, str(root / name))  # type: ignore[arg-type]
                driver = kernel.machine.workload("default", seed=0)
                counts: dict[int, int] = {}
                driver.step(min(steps, 2000), counts)
                best = 0.0
                for _ in range(rounds):
                    t = time.process_time_ns()
                    n = driver.step(steps, counts)
                    dt = time.process_time_ns() - t
                    best = max(best, n * 1e9 / dt) if dt > 0 else best
                out.append({"name": f"syscall_ebpf_events:{'pinned' if pinned else 'private'}", "engine": engine,
                            "events_per_sec": round(best), "ns_per_call": 1e9 / best if best else None,
                            "ns_per_insn": None, "calls_per_sec": best, "insns_per_call": None})
                shutdown = getattr(kernel, "shutdown", None)
                if callable(shutdown):
                    shutdown()
            finally:
                shutil.rmtree(root, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--json", action="store_true", help="print the records as JSON")
    ap.add_argument("--events", default="", help="also syscall_ebpf events/s, private and pinned, for these "
                                                 "comma-separated engines (e.g. interp,compiled)")
    args = ap.parse_args(argv)
    recs = map_benchmarks(args.calls)
    engines = tuple(e.strip() for e in args.events.split(",") if e.strip())
    if engines:
        recs += syscall_ebpf_rates(engines)
    if args.json:
        json.dump(recs, sys.stdout, indent=1)
        print()
        return 0
    for r in recs:
        if "events_per_sec" in r:
            print(f"{r['name'] + ' ' + r['engine']:45} {r['events_per_sec']:>10,} syscalls/s")
        else:
            print(f"{r['name']:45} {r['ns_per_call']:>10,.0f} ns/call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
