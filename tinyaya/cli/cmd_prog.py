"""``tinyaya prog list|show|dump``: the last load's programs, like ``bpftool prog``."""
from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import click

from ..kernel import Kernel
from ..sys import bpf as sysbpf
from ..uapi.bpf import BpfProgInfo, BpfProgType
from .errors import bad_input
from .kernels import open_kernel
from .state import load_pin_dir, require_load_record


def prog_type_name(t: int) -> str:
    try:
        return BpfProgType(t).name.removeprefix("BPF_PROG_TYPE_").lower()
    except ValueError:
        return f"type {t}"


def pinned_prog_paths() -> dict[str, Path]:
    d = load_pin_dir() / "progs"
    return {p.name: p for p in sorted(d.iterdir())} if d.is_dir() else {}


def _open(kernel: Kernel, name: str) -> int:
    paths = pinned_prog_paths()
    if name not in paths:
        bad_input(f"no program named {name!r} in the last load (programs: {', '.join(paths) or 'none'})")
    return sysbpf.bpf_obj_get(kernel, str(paths[name]))


def prog_info(kernel: Kernel, fd: int, *, with_insns: bool = False) -> tuple[BpfProgInfo, list[int], bytes]:
    info, map_ids = sysbpf.bpf_prog_get_info_by_fd(kernel, fd, map_ids=64)
    insns = b""
    if with_insns and info.xlated_prog_len:
        buf = (ctypes.c_char * info.xlated_prog_len)()
        again = BpfProgInfo()
        again.xlated_prog_len = info.xlated_prog_len
        again.xlated_prog_insns = ctypes.addressof(buf)
        sysbpf.bpf_obj_get_info_by_fd(kernel, fd, again)
        insns = bytes(buf)
    return info, map_ids, insns


def prog_json(name: str, info: BpfProgInfo, map_ids: list[int]) -> dict[str, Any]:
    return {
        "id": info.id, "type": prog_type_name(info.type), "name": name,
        "kernel_name": info.name.decode(errors="replace"), "tag": bytes(info.tag).hex(),
        "gpl_compatible": bool(info.gpl_compatible), "loaded_at": info.load_time,
        "uid": info.created_by_uid, "bytes_xlated": info.xlated_prog_len,
        "run_time_ns": info.run_time_ns, "run_cnt": info.run_cnt,
        "verified_insns": info.verified_insns, "map_ids": map_ids,
    }


@click.group("prog")
def prog_group() -> None:
    """Inspect the programs of the last `tinyaya load`, like `bpftool prog`.

    \b
    Example:
      tinyaya prog list
      tinyaya prog dump syscall_ebpf
    """


@prog_group.command("list")
@click.option("--json", "-j", "as_json", is_flag=True, help="JSON output, like bpftool -j.")
def prog_list(as_json: bool) -> None:
    """List the programs of the last load with their run statistics.

    \b
    Example:
      tinyaya prog list --json
    """
    require_load_record()
    kernel = open_kernel("sim")
    out = []
    for name in pinned_prog_paths():
        fd = _open(kernel, name)
        try:
            info, map_ids, _ = prog_info(kernel, fd)
        finally:
            kernel.close(fd)
        out.append(prog_json(name, info, map_ids))
    if as_json:
        click.echo(json.dumps(out))
        return
    for p in out:
        click.echo(f"{p['id']}: {p['type']}  name {p['name']}  tag {p['tag']}"
                   f"{'  gpl' if p['gpl_compatible'] else ''}  run_time_ns {p['run_time_ns']} run_cnt {p['run_cnt']}")
        click.echo(f"\txlated {p['bytes_xlated']}B  verified_insns {p['verified_insns']}"
                   f"  map_ids {','.join(str(i) for i in p['map_ids'])}")


@prog_group.command("show")
@click.argument("name")
@click.option("--json", "-j", "as_json", is_flag=True, help="JSON output.")
def prog_show(name: str, as_json: bool) -> None:
    """Show one program's bpf_prog_info.

    \b
    Example:
      tinyaya prog show syscall_ebpf
    """
    require_load_record()
    kernel = open_kernel("sim")
    fd = _open(kernel, name)
    try:
        info, map_ids, _ = prog_info(kernel, fd)
    finally:
        kernel.close(fd)
    data = prog_json(name, info, map_ids)
    if as_json:
        click.echo(json.dumps(data))
    else:
        for k, v in data.items():
            click.echo(f"{k}: {v}")


@prog_group.command("dump")
@click.argument("name")
@click.option("--json", "-j", "as_json", is_flag=True, help="JSON output: one object per instruction.")
def prog_dump(name: str, as_json: bool) -> None:
    """Print the translated instructions with map names, like `bpftool prog dump xlated`.

    \b
    Example:
      tinyaya prog dump syscall_ebpf
    """
    from ..isa import decode
    from ..isa.disasm import disasm_lines

    require_load_record()
    kernel = open_kernel("sim")
    fd = _open(kernel, name)
    try:
        info, map_ids, raw = prog_info(kernel, fd, with_insns=True)
        names = _map_names_by_id(kernel, map_ids)
    finally:
        kernel.close(fd)
    insns = decode(raw)
    lines = disasm_lines(insns, symbolize=_xlated_symbolizer(insns, names), style="kernel",
                         helper_name=_helper_name)
    if as_json:
        click.echo(json.dumps([{"pc": pc, "insn": text} for pc, text in lines]))
        return
    for pc, text in lines:
        click.echo(f"{pc:4d}: {text}")


def _map_names_by_id(kernel: Kernel, map_ids: list[int]) -> dict[int, str]:
    """Map ids to names: through the load's map pins (they keep their ids), else BPF_MAP_GET_FD_BY_ID."""
    from .pins import close_maps, open_all_maps

    names: dict[int, str] = {}
    maps = open_all_maps(kernel)
    try:
        for m in maps:
            names[int(m.info.id)] = m.name
    finally:
        close_maps(kernel, maps)
    for mid in map_ids:
        if mid in names:
            continue
        try:
            mfd = sysbpf.bpf_map_get_fd_by_id(kernel, mid)
        except OSError:
            continue
        try:
            names[mid] = sysbpf.bpf_map_get_info_by_fd(kernel, mfd).name.decode(errors="replace")
        finally:
            kernel.close(mfd)
    return names


def _helper_name(func_id: int) -> str | None:
    from ..uapi.bpf import BpfFuncId

    try:
        return "bpf_" + BpfFuncId(func_id).name.removeprefix("BPF_FUNC_")
    except ValueError:
        return None


def _xlated_symbolizer(insns: list[Any], names: dict[int, str]) -> Any:
    """bpftool prints a map's ld_imm64 as ``map[id:N]``; we add the name: ``map[id:N:SYSCALL_LIST]``.

    The kernel's xlated dump (bpf_insn_prepare_dump) puts the map id in imm and
    the value offset in the second slot's imm."""
    from ..isa.opcodes import BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE

    def sym(pc: int, insn: Any) -> str | None:
        if not insn.is_ld_imm64:
            return None
        label = f"map[id:{insn.imm}:{names[insn.imm]}]" if insn.imm in names else f"map[id:{insn.imm}]"
        if insn.src == BPF_PSEUDO_MAP_FD:
            return label
        if insn.src == BPF_PSEUDO_MAP_VALUE and pc + 1 < len(insns):
            return f"{label}[0]+{insns[pc + 1].imm}"
        return None

    return sym


COMMANDS = [prog_group]
