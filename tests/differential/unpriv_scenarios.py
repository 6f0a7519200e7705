"""bpf() as an unprivileged user, run by test_unprivileged.py: drops to uid/gid 65534 (no capabilities),
then runs ``scenario`` on the real kernel and on ``SimKernel(privileged=False)``; prints both as JSON."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from diffharness import RET0, Side, btf_load, elem, get_id, map_create, obj, prog_load  # noqa: E402

from tinyaya.uapi.bpf import BpfCmd as C  # noqa: E402


def scenario(s: Side) -> list[Any]:
    out = [s.bpf(C.BPF_MAP_CREATE, map_create(t, 4, 4, 1)).outcome for t in (1, 2, 9, 22, 27, 30)]
    # attribute checks of ops->map_alloc_check come before the privilege check, map_alloc's after it
    out += [s.bpf(C.BPF_MAP_CREATE, map_create(t, ks, 4, me)).outcome
            for t, ks, me in ((2, 0, 1), (1, 0, 1), (22, 4, 1), (27, 0, 3), (999, 4, 1))]
    for ptype in (1, 2, 8):
        a, _ = prog_load(s, ptype, RET0)
        out.append(s.bpf(C.BPF_PROG_LOAD, a).outcome)
    blob = bytes.fromhex("9feb010018000000000000001000000010000000050000000100000000000001"
                         "040000002000000100696e7400")
    out.append(s.bpf(C.BPF_BTF_LOAD, btf_load(s.buf(blob), len(blob))).outcome)
    for cmd in (C.BPF_MAP_GET_NEXT_ID, C.BPF_PROG_GET_NEXT_ID, C.BPF_BTF_GET_NEXT_ID, C.BPF_LINK_GET_NEXT_ID,
                C.BPF_MAP_GET_FD_BY_ID, C.BPF_PROG_GET_FD_BY_ID, C.BPF_BTF_GET_FD_BY_ID, C.BPF_LINK_GET_FD_BY_ID):
        out.append(s.bpf(cmd, get_id(1)).outcome)
    out.append(s.bpf(C.BPF_MAP_LOOKUP_ELEM, elem(s.bad_fd(), s.buf(4), s.buf(4))).outcome)
    out.append(s.bpf(C.BPF_OBJ_GET, obj(s.cstr("/nonexistent/pin"))).outcome)
    out.append(s.bpf(999, bytes(16)).outcome)
    return out


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
