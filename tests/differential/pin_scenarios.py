"""OBJ_PIN/OBJ_GET scenarios, run by test_pins.py inside a private mount namespace.

``python pin_scenarios.py BPFFS SIMROOT`` runs ``scenario`` on the real kernel
with pins under ``BPFFS`` (a bpffs mounted in this process's own mount
namespace, so nothing is left on the host) and on a SimKernel whose bpffs root
is ``SIMROOT``, and prints both observations as JSON.
"""
from __future__ import annotations

import json
import os
import stat
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from diffharness import RET0, Side, elem, info, map_create, obj, prog_load, u32, u64  # noqa: E402

from tinyaya.uapi.bpf import BpfCmd as C  # noqa: E402

RDONLY, WRONLY, PATH_FD = 0x8, 0x10, 1 << 14


def scenario(s: Side, root: Path) -> list[Any]:
    out: list[Any] = []
    p = lambda *parts: s.cstr(str(root.joinpath(*parts)))  # noqa: E731
    m = s.fd(s.bpf(C.BPF_MAP_CREATE, map_create(2, 4, 8, 2, name=b"pinned")))
    s.bpf(C.BPF_MAP_UPDATE_ELEM, elem(m, s.buf(u32(1)), s.buf(u64(77))))
    out.append(s.bpf(C.BPF_OBJ_PIN, obj(p("m"), m)).outcome)
    out.append(s.bpf(C.BPF_OBJ_PIN, obj(p("m"), m)).outcome)
    out.append(s.bpf(C.BPF_OBJ_PIN, obj(p("nodir", "m"), m)).outcome)
    out.append(oct(stat.S_IMODE(os.stat(root / "m").st_mode)))
    s.close(m)
    r = s.bpf(C.BPF_OBJ_GET, obj(p("m")))
    out.append(r.outcome)
    v = s.buf(8)
    out.append([s.bpf(C.BPF_MAP_LOOKUP_ELEM, elem(r.ret, s.buf(u32(1)), v)).outcome, s.read(v, 8).hex()])
    ib = s.buf(104)
    s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(r.ret, 104, ib))
    out.append(s.read(ib + 24, 16).hex())
    ro = s.bpf(C.BPF_OBJ_GET, obj(p("m"), file_flags=RDONLY))
    wo = s.bpf(C.BPF_OBJ_GET, obj(p("m"), file_flags=WRONLY))
    out += [ro.outcome, wo.outcome,
            s.bpf(C.BPF_MAP_UPDATE_ELEM, elem(ro.ret, s.buf(u32(0)), s.buf(u64(1)))).outcome,
            s.bpf(C.BPF_MAP_LOOKUP_ELEM, elem(wo.ret, s.buf(u32(0)), s.buf(8))).outcome,
            s.bpf(C.BPF_OBJ_GET, obj(p("m"), file_flags=RDONLY | WRONLY)).outcome,
            s.bpf(C.BPF_OBJ_GET, obj(p("m"), file_flags=1)).outcome,
            s.bpf(C.BPF_OBJ_GET, obj(p("missing"))).outcome,
            s.bpf(C.BPF_OBJ_GET, obj(s.cstr(str(root)))).outcome]
    # programs
    a, _ = prog_load(s, 1, RET0, name=b"pinned_prog")
    pf = s.fd(s.bpf(C.BPF_PROG_LOAD, a))
    out.append(s.bpf(C.BPF_OBJ_PIN, obj(p("p"), pf)).outcome)
    s.close(pf)
    for flags in (0, RDONLY):
        r = s.bpf(C.BPF_OBJ_GET, obj(p("p"), file_flags=flags))
        out.append(r.outcome)
        if r.ok:
            ib = s.buf(232)
            s.bpf(C.BPF_OBJ_GET_INFO_BY_FD, info(r.ret, 232, ib))
            raw = s.read(ib, 232)
            out.append([struct.unpack_from("<I", raw, 0)[0], raw[8:16].hex(), raw[64:80].hex()])
    # directories and relative paths
    os.mkdir(root / "dir")
    m2 = s.fd(s.bpf(C.BPF_MAP_CREATE, map_create(1, 4, 4, 4)))
    out.append(s.bpf(C.BPF_OBJ_PIN, obj(p("dir", "h"), m2)).outcome)
    cwd = os.getcwd()
    os.chdir(root / "dir")
    try:
        out.append(s.bpf(C.BPF_OBJ_PIN, obj(s.cstr("rel"), m2)).outcome)
        out.append(s.bpf(C.BPF_OBJ_GET, obj(s.cstr("rel"))).outcome)
    finally:
        os.chdir(cwd)
    out.append(sorted(os.listdir(root / "dir")))
    os.unlink(root / "dir" / "rel")
    out.append(s.bpf(C.BPF_OBJ_GET, obj(p("dir", "rel"))).outcome)
    out.append(s.bpf(C.BPF_OBJ_GET, obj(p("dir"))).outcome)
    # BPF_F_PATH_FD: the path is relative to a directory fd
    dfd = os.open(root / "dir", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with_fd = bytearray(struct.pack("<QIIi", s.cstr("byfd"), m2, PATH_FD, dfd)).ljust(168, b"\0")
        out.append(s.bpf(C.BPF_OBJ_PIN, with_fd).outcome)
        get_fd = bytearray(struct.pack("<QIIi", s.cstr("byfd"), 0, PATH_FD, dfd)).ljust(168, b"\0")
        out.append(s.bpf(C.BPF_OBJ_GET, get_fd).outcome)
        no_flag = bytearray(struct.pack("<QIIi", s.cstr("byfd"), 0, 0, dfd)).ljust(168, b"\0")
        out.append(s.bpf(C.BPF_OBJ_GET, no_flag).outcome)
    finally:
        os.close(dfd)
    out.append(sorted(os.listdir(root / "dir")))
    return out


def main() -> None:
    from tinyaya.linux import LinuxKernel
    from tinyaya.sim_kernel import SimKernel

    bpffs, simroot = Path(sys.argv[1]), Path(sys.argv[2])
    results = []
    for kernel, root in ((SimKernel(bpffs_root=simroot), simroot), (LinuxKernel(), bpffs)):
        side = Side(kernel, kernel.backend)
        if side.is_sim:
            simroot.mkdir(parents=True, exist_ok=True)
        try:
            results.append(scenario(side, root))
        finally:
            side.cleanup()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
