"""The verifier corpus: hand-written programs in ``tests/verifier/corpus/*.toml`` and their Linux labels.

Each ``[[prog]]`` has ``name``, ``type`` (a prog type, e.g. ``kprobe``, ``xdp``), optional ``license``
(default ``GPL``), optional ``attach`` (expected_attach_type), ``asm`` (see ``corpus_asm``) and a ``why``
saying what it exercises. Maps are referred to by name from ``MAPS`` (created fresh for every load,
like the kernel's test_verifier fixups). ``labels.json`` holds what Linux said for each program:
``{"verdict": "accept"|"reject", "errno": "EACCES"|..., "msg": <the key log line>}``; it is written by
``label_corpus.py`` on a kernel where bpf() works.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tinyaya.uapi._enums import BpfAttachType, BpfMapType, BpfProgType

from .corpus_asm import Assembled, assemble

CORPUS_DIR = Path(__file__).parent / "corpus"
LABELS = CORPUS_DIR / "labels.json"


@dataclass(frozen=True)
class MapSpec:
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int = 0


T = BpfMapType
MAPS: dict[str, MapSpec] = {
    "hash_8b": MapSpec(T.BPF_MAP_TYPE_HASH, 8, 8, 16),
    "hash_48b": MapSpec(T.BPF_MAP_TYPE_HASH, 8, 48, 16),
    "array_8b": MapSpec(T.BPF_MAP_TYPE_ARRAY, 4, 8, 4),
    "array_48b": MapSpec(T.BPF_MAP_TYPE_ARRAY, 4, 48, 4),
    "array_ro": MapSpec(T.BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0x80),  # BPF_F_RDONLY_PROG
    "percpu_array": MapSpec(T.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 16, 4),
    "percpu_hash": MapSpec(T.BPF_MAP_TYPE_PERCPU_HASH, 4, 16, 4),
    "lru_hash": MapSpec(T.BPF_MAP_TYPE_LRU_HASH, 8, 8, 16),
    "ringbuf": MapSpec(T.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096),
    "queue": MapSpec(T.BPF_MAP_TYPE_QUEUE, 0, 8, 16),
    "stack": MapSpec(T.BPF_MAP_TYPE_STACK, 0, 8, 16),
    "prog_array": MapSpec(T.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4),
    "perf_array": MapSpec(T.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 4),
    "bloom": MapSpec(T.BPF_MAP_TYPE_BLOOM_FILTER, 0, 8, 16),
}

PROG_TYPES = {
    "socket_filter": BpfProgType.BPF_PROG_TYPE_SOCKET_FILTER,
    "kprobe": BpfProgType.BPF_PROG_TYPE_KPROBE,
    "sched_cls": BpfProgType.BPF_PROG_TYPE_SCHED_CLS,
    "sched_act": BpfProgType.BPF_PROG_TYPE_SCHED_ACT,
    "tracepoint": BpfProgType.BPF_PROG_TYPE_TRACEPOINT,
    "xdp": BpfProgType.BPF_PROG_TYPE_XDP,
    "perf_event": BpfProgType.BPF_PROG_TYPE_PERF_EVENT,
    "cgroup_skb": BpfProgType.BPF_PROG_TYPE_CGROUP_SKB,
    "raw_tracepoint": BpfProgType.BPF_PROG_TYPE_RAW_TRACEPOINT,
    "syscall": BpfProgType.BPF_PROG_TYPE_SYSCALL,
    "sock_ops": BpfProgType.BPF_PROG_TYPE_SOCK_OPS,
    "sk_msg": BpfProgType.BPF_PROG_TYPE_SK_MSG,
    "sk_skb": BpfProgType.BPF_PROG_TYPE_SK_SKB,
    "cgroup_sock": BpfProgType.BPF_PROG_TYPE_CGROUP_SOCK,
    "cgroup_device": BpfProgType.BPF_PROG_TYPE_CGROUP_DEVICE,
    "flow_dissector": BpfProgType.BPF_PROG_TYPE_FLOW_DISSECTOR,
    "sk_lookup": BpfProgType.BPF_PROG_TYPE_SK_LOOKUP,
    "lwt_in": BpfProgType.BPF_PROG_TYPE_LWT_IN,
}


@dataclass(frozen=True)
class CorpusProg:
    name: str
    prog_type: int
    license: str
    attach: int
    asm: str
    why: str
    file: str
    #: give the program BTF with one FUNC per subprogram and func_info (needed for callbacks)
    btf_funcs: bool = False

    def assembled(self) -> Assembled:
        return assemble(self.asm)

    def maps_used(self) -> list[str]:
        a = self.assembled()
        names = [n for _, n in a.map_fds] + [n for _, n, _ in a.map_values]
        return list(dict.fromkeys(names))


def load_corpus() -> list[CorpusProg]:
    progs: list[CorpusProg] = []
    seen: set[str] = set()
    for path in sorted(CORPUS_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        for entry in data.get("prog", []):
            name = entry["name"]
            if name in seen:
                raise ValueError(f"duplicate corpus program {name}")
            seen.add(name)
            attach = entry.get("attach", 0)
            if isinstance(attach, str):
                attach = int(BpfAttachType[f"BPF_{attach.upper()}"])
            progs.append(CorpusProg(name, int(PROG_TYPES[entry["type"]]), entry.get("license", "GPL"),
                                    attach, entry["asm"], entry.get("why", ""), path.name,
                                    bool(entry.get("btf_funcs", False))))
    return progs


def load_labels() -> dict[str, dict[str, str]]:
    if not LABELS.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(LABELS.read_text())
    return data


def key_message(log: str) -> str:
    """The line of a verifier log that says why: the last line before the ``processed`` summary."""
    lines = [ln for ln in log.splitlines() if ln.strip()]
    while lines and (lines[-1].startswith("processed ") or lines[-1].startswith("verification time")
                     or lines[-1].startswith("stack depth") or lines[-1].startswith("-- END PROG LOAD LOG --")):
        lines.pop()
    return lines[-1] if lines else ""


def subprog_starts(insns: list) -> list[int]:  # type: ignore[type-arg]
    """Starts of the subprograms: insn 0 and every bpf-to-bpf call or function pointer target."""
    starts = {0}
    for pc, i in enumerate(insns):
        if (i.code == 0x85 and i.src == 1) or (i.code == 0x18 and i.src == 4):
            starts.add(pc + i.imm + 1)
    return sorted(starts)


def func_btf(n: int) -> bytes:
    """A BTF blob with ``int`` (id 1), ``long (*)(void)`` (id 2) and static FUNCs ``f0``..``f{n-1}``
    (ids 3..): enough for func_info (include/uapi/linux/btf.h layouts)."""
    import struct
    strings = b"\0int\0" + b"".join(f"f{k}\0".encode() for k in range(n))
    types = struct.pack("<III", 1, 1 << 24, 8) + struct.pack("<I", (1 << 24) | 64)  # INT "int" 8 bytes signed
    types += struct.pack("<III", 0, 13 << 24, 1)  # FUNC_PROTO returning int, no params
    off = 5
    for k in range(n):
        types += struct.pack("<III", off, 12 << 24, 2)  # FUNC fK, static, proto 2
        off += len(f"f{k}") + 1
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings
