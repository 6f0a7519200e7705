"""``tinyaya inspect`` and ``tinyaya asm``: the object layer and the ISA toolkit, no kernel involved."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .errors import bad_input
from .pins import ensure_file


@click.command("inspect")
@click.argument("obj")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--disasm", "disasm_prog", is_flag=False, flag_value="*", default=None, metavar="[PROG]",
              help="Disassemble the relocated programs (or only PROG), with map names and source lines.")
def inspect_cmd(obj: str, as_json: bool, disasm_prog: str | None) -> None:
    """Show an eBPF object's programs, maps, globals and relocations.

    \b
    Example:
      tinyaya inspect examples/syscall_ebpf/syscall_ebpf-ebpf/syscall_ebpf.o
      tinyaya inspect prog.o --disasm syscall_ebpf
    """
    from ..obj import Object, describe

    path = ensure_file(obj)
    o = Object.parse(path.read_bytes(), str(path))
    if disasm_prog is not None:
        _print_disasm(o, disasm_prog, as_json)
        return
    info = describe(o)
    if as_json:
        click.echo(json.dumps(info, indent=1, default=str))
        return
    _print_description(info)


def _print_description(info: dict[str, Any]) -> None:
    click.echo(f"{info.get('path') or 'object'}: license {info.get('license')!r}, "
               f"kernel_version {info.get('kernel_version')}, {info.get('endianness')}-endian")
    progs = info.get("programs", [])
    click.echo(f"programs ({len(progs)}):")
    for p in progs:
        target = p.get("attach_target") or "-"
        if p.get("attach_offset"):
            target += f"+{p['attach_offset']}"
        click.echo(f"  {p['name']:<24} section {p['section']:<24} type {p['type']:<14} target {target:<20} "
                   f"insns {p['insns']}{'  (needs CO-RE)' if p.get('needs_core') else ''}")
    maps = info.get("maps", [])
    click.echo(f"maps ({len(maps)}):")
    for m in maps:
        btf = (f"  btf {m.get('key_type') or '-'} -> {m.get('value_type') or '-'}"
               if m.get("key_type") or m.get("value_type") else "")
        flags = f" flags {'|'.join(m['flags'])}" if m.get("flags") else ""
        click.echo(f"  {m['name']:<24} {m['origin']:<7} {m['type']:<18} key {m['key_size']}B value "
                   f"{m['value_size']}B max_entries {m['max_entries']}{flags} pinning {m.get('pinning', 'none')}{btf}")
    globs = info.get("globals", [])
    if globs:
        click.echo(f"globals ({len(globs)}):")
        for g in globs:
            click.echo(f"  {g['name']:<24} {g['section']:<16} offset {g['offset']:<5} size {g['size']:<4} "
                       f"{g.get('type') or ''} = {g.get('formatted', g.get('value'))}")
    relocs = info.get("relocations", [])
    if relocs:
        click.echo(f"relocations ({len(relocs)}):")
        for r in relocs:
            click.echo(f"  {r['section']}+{r['offset']:#x}: {r['type']} {r.get('symbol') or ''} -> {r['target']}")
    for w in info.get("warnings", []):
        click.echo(f"warning: {w}")


def _print_disasm(o: Any, which: str, as_json: bool) -> None:
    from ..isa.disasm import disasm_lines
    from ..obj import link_program

    names = list(o.programs) if which == "*" else [which]
    if which != "*" and which not in o.programs:
        bad_input(f"{o.path or 'object'}: no program named {which!r} (programs: {', '.join(o.programs)})")
    map_names = list(o.maps)
    fds = {name: i + 1 for i, name in enumerate(map_names)}
    by_fd = {v: k for k, v in fds.items()}
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        linked = link_program(o, name, map_fds=fds, lenient=True)

        def sym(pc: int, insn: Any, linked: Any = linked) -> str | None:
            from ..isa.opcodes import BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE

            if insn.is_ld_imm64 and insn.src == BPF_PSEUDO_MAP_FD and insn.imm in by_fd:
                return f"r{insn.dst} = map[{by_fd[insn.imm]}] ll"
            if insn.is_ld_imm64 and insn.src == BPF_PSEUDO_MAP_VALUE and insn.imm in by_fd:
                off = linked.insns[pc + 1].imm if pc + 1 < len(linked.insns) else 0
                return f"r{insn.dst} = map_value[{by_fd[insn.imm]}]+{off} ll"
            return None

        lines = disasm_lines(linked.insns, symbolize=sym)
        src = _line_info_by_pc(linked)
        out[name] = [{"pc": pc, "insn": text, **({"source": src[pc]} if pc in src else {})} for pc, text in lines]
    if as_json:
        click.echo(json.dumps(out, indent=1))
        return
    for name, lines_ in out.items():
        click.echo(f"{name}:")
        for entry in lines_:
            if "source" in entry:
                click.echo(f"; {entry['source']}")
            click.echo(f"{entry['pc']:5d}: {entry['insn']}")


def _line_info_by_pc(linked: Any) -> dict[int, str]:
    out: dict[int, str] = {}
    for li in getattr(linked, "line_info", None) or []:
        pc = getattr(li, "insn_off", None)
        text = getattr(li, "line", None) or getattr(li, "source", None)
        if pc is not None and text:
            out[int(pc)] = str(text).strip()
    return out


@click.command("asm")
@click.argument("file")
@click.option("-o", "--output", "out", required=True, metavar="OUT", help="Where to write the instruction bytes.")
@click.option("--big-endian", is_flag=True, help="Encode for -target bpfeb.")
def asm_cmd(file: str, out: str, big_endian: bool) -> None:
    """Assemble FILE (bpf_conformance or llvm-objdump syntax) into raw instruction bytes.

    \b
    Example:
      tinyaya asm prog.s -o prog.bin
    """
    from ..isa import encode
    from ..isa.asm import AsmError, assemble

    path = ensure_file(file)
    try:
        insns = assemble(path.read_text())
    except AsmError as e:
        bad_input(f"{file}:{getattr(e, 'line_no', '?')}: {getattr(e, 'message', e)}")
    Path(out).write_bytes(encode(insns, big_endian))
    click.echo(f"{out}: {len(insns)} instruction slots")


COMMANDS = [inspect_cmd, asm_cmd]
