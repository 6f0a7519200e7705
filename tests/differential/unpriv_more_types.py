"""MAP_CREATE of the extra map types as an unprivileged user (uid/gid 65534, no capabilities), run by
test_maps_more_types.py: which attribute errors come before the privilege check (``map_alloc_check``)
and which after it. Prints the sim's and Linux's outcomes as JSON."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from diffharness import Side, map_create  # noqa: E402

TYPES = [7, 8, 11, 14, 15, 16, 17, 18, 19, 20, 21, 24, 25, 28, 29, 31, 32, 33]
ATTRS = [(4, 4, 4, 0), (8, 8, 4, 1), (0, 0, 4096, 0), (4, 8, 4, 0), (16, 8, 0, 0), (4, 8, 0, 1), (0, 0, 16, 0x400),
         (4, 0, 4, 0), (0, 4, 4, 0), (4, 4, 0, 0), (4, 4, (1 << 31) + 1, 0)]


def scenario(s: Side) -> list[Any]:
    return [(t, ks, vs, mx, fl, s.bpf(0, map_create(t, ks, vs, mx, fl)).outcome)
            for t in TYPES for ks, vs, mx, fl in ATTRS]


def main() -> None:
    from tinyaya.linux import LinuxKernel
    from tinyaya.sim_kernel import SimKernel

    warm = Side(SimKernel(bpffs_root=sys.argv[1]), "warm-up")  # import what runs lazily while we still can
    scenario(warm)
    warm.cleanup()
    sim = SimKernel(privileged=False, bpffs_root=sys.argv[1])
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    results = []
    for kernel in (sim, LinuxKernel()):
        side = Side(kernel, kernel.backend)
        try:
            results.append(scenario(side))
        finally:
            side.cleanup()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
