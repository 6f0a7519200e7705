"""Writes ``corpus/50_generated.toml``: parameterised families (ctx offsets per program type, map value
bounds, stack bounds). ``python -m tests.verifier.gen_corpus``; labels come from label_corpus.py."""
from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).parent / "corpus" / "50_generated.toml"
SZ = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}


def entry(name: str, typ: str, asm: str, why: str) -> str:
    return f'[[prog]]\nname = "{name}"\ntype = "{typ}"\nwhy = "{why}"\nasm = """\n{asm.strip()}\n"""\n\n'


def main() -> None:
    out: list[str] = []
    ctx_cases = [
        ("kprobe", [(0, 8), (160, 8), (164, 4), (168, 8), (4, 8), (2, 2)]),
        ("tracepoint", [(0, 8), (8, 8), (16, 4), (2040, 8), (2048, 4)]),
        ("raw_tracepoint", [(0, 8), (88, 8), (96, 8), (4, 4)]),
        ("perf_event", [(168, 8), (176, 8), (184, 8)]),
        ("xdp", [(0, 4), (0, 8), (12, 4), (20, 4), (24, 4), (2, 2)]),
        ("socket_filter", [(0, 4), (8, 4), (76, 4), (48, 4), (0, 2)]),
        ("sched_cls", [(76, 4), (80, 4), (140, 4), (72, 4), (192, 4)]),
    ]
    for typ, cases in ctx_cases:
        for off, size in cases:
            out.append(entry(f"ctx_read_{typ}_{off}_{size}", typ,
                             f"r0 = *({SZ[size]} *)(r1 + {off})\nr0 = 0\nexit", "ctx read bounds per prog type"))
    for typ, off in [("kprobe", 0), ("tracepoint", 8), ("xdp", 12), ("socket_filter", 48), ("socket_filter", 8),
                     ("sched_cls", 8), ("raw_tracepoint", 0)]:
        out.append(entry(f"ctx_write_{typ}_{off}", typ, f"r2 = 1\n*(u32 *)(r1 + {off}) = r2\nr0 = 0\nexit",
                         "ctx writes"))
    for off, size in [(0, 8), (40, 8), (44, 4), (44, 8), (48, 1), (-1, 1)]:
        out.append(entry(f"mapval_{off}_{size}".replace("-", "m"), "kprobe", f"""
*(u32 *)(r10 - 4) = 0
r2 = r10
r2 += -4
r1 = map[array_48b] ll
call bpf_map_lookup_elem
if r0 == 0 goto out
r1 = *({SZ[size]} *)(r0 {'+' if off >= 0 else '-'} {abs(off)})
out:
r0 = 0
exit""", "map value bounds"))
    for off, size in [(-8, 8), (-512, 8), (-516, 4), (-4, 8), (0, 1), (-3, 2)]:
        out.append(entry(f"stack_write_{-off}_{size}", "kprobe",
                         f"*({SZ[size]} *)(r10 {'-' if off < 0 else '+'} {abs(off)}) = 0\nr0 = 0\nexit",
                         "stack bounds"))
    OUT.write_text("".join(out))


if __name__ == "__main__":
    main()
