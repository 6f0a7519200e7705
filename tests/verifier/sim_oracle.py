"""Run a corpus program through tinyaya's verifier (directly, with map stand-ins keyed by fake fds)."""
from __future__ import annotations

import errno
from dataclasses import dataclass

from tinyaya.sim_kernel.verifier import VerifierReject, verify_insns

from .corpus import MAPS, CorpusProg, key_message, subprog_starts
from .linux_oracle import LoadResult

GPL = {"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL"}


@dataclass
class FakeMap:
    """The fields of ``struct bpf_map`` the verifier reads."""

    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    name: bytes


def load_on_sim(prog: CorpusProg, log_level: int = 1) -> LoadResult:
    asm = prog.assembled()
    fds: dict[str, int] = {}
    maps: dict[int, FakeMap] = {}
    for k, name in enumerate(prog.maps_used()):
        s = MAPS[name]
        fds[name] = 100 + k
        maps[100 + k] = FakeMap(s.map_type, s.key_size, s.value_size, s.max_entries, s.map_flags, name.encode())
    insns = list(asm.insns)
    for idx, name in asm.map_fds:
        insns[idx] = insns[idx].replace(imm=fds[name])
    for idx, name, _off in asm.map_values:
        insns[idx] = insns[idx].replace(imm=fds[name])
    func_info = [(s, 3 + k) for k, s in enumerate(subprog_starts(insns))] if prog.btf_funcs else None
    try:
        _, log = verify_insns(insns, prog.prog_type, maps=maps, gpl=prog.license in GPL, log_level=log_level,
                              expected_attach_type=prog.attach, func_info=func_info)
        return LoadResult("accept", "", log)
    except VerifierReject as e:
        return LoadResult("reject", errno.errorcode.get(e.errno or 0, str(e.errno)), e.log or e.message)


__all__ = ["load_on_sim", "key_message"]
