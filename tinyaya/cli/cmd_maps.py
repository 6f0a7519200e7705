"""``tinyaya maps list|dump|show|lookup|update|delete|pin``: the last load's maps, from any shell."""
from __future__ import annotations

import errno
import json
import os
from typing import Any, NoReturn

import click

from ..sys import bpf as sysbpf
from ..uapi.bpf import BpfMapType, MapUpdateFlags
from .errors import failed
from .kernels import open_kernel
from .mapfmt import (
    Entry,
    MapCodec,
    entries_btf_text,
    entries_json,
    entry_btf_text,
    entry_json,
    entry_text,
    found_line,
    map_type_name,
)
from .pins import (
    MapBtfSource,
    close_maps,
    iter_entries,
    open_all_maps,
    open_map,
    parse_hex_bytes,
    require_load,
    split_percpu,
    value_size_for,
)


def _elem_error(name: str, m: Any, op: str, key: str, e: OSError, flags: str = "any") -> NoReturn:
    """One line for a failed element command, in the words of its errno (bpf(2) ``ERRORS``)."""
    i = m.info
    code = errno.errorcode.get(e.errno or 0, str(e.errno))
    is_array = i.type in (BpfMapType.BPF_MAP_TYPE_ARRAY, BpfMapType.BPF_MAP_TYPE_PERCPU_ARRAY)
    if e.errno == errno.ENOENT:
        what = f"map {name}: key {key!r} not found"
    elif e.errno == errno.EEXIST:
        what = f"map {name}: key {key!r} already exists (--flags {flags})"
    elif e.errno == errno.E2BIG and is_array:
        what = f"map {name}: key {key!r} is out of range (max_entries {i.max_entries})"
    elif e.errno == errno.E2BIG:
        what = f"map {name} is full (max_entries {i.max_entries}): delete a key first"
    elif e.errno == errno.EINVAL and is_array and op == "delete":
        what = f"map {name}: an array's elements can't be deleted (bpf_map_delete_elem is EINVAL)"
    elif e.errno == errno.EPERM:
        what = f"map {name}: {op} not permitted (the map is frozen or read-only)"
    else:
        what = f"map {name}: {op} {key!r}: {os.strerror(e.errno or 0)}"
    failed(f"{what} ({code})")


def _json(data: Any) -> str:
    """Compact JSON, as ``bpftool -j`` writes it."""
    return json.dumps(data, separators=(",", ":"))


def map_info_json(m: Any) -> dict[str, Any]:
    """``bpftool -j map show``'s fields (``show_map_close_json``), ``pinned`` as with ``-f``.

    ``name`` is the name tinyaya's commands take (the pin's, the object's full name);
    the kernel keeps at most 15 bytes of it. bpftool's ``bytes_memlock`` and
    ``frozen`` come from /proc/self/fdinfo, which the simulated kernel has not.
    """
    i = m.info
    out: dict[str, Any] = {
        "id": i.id, "type": map_type_name(i.type), "name": m.name, "flags": i.map_flags,
        "bytes_key": i.key_size, "bytes_value": i.value_size, "max_entries": i.max_entries,
    }
    if i.btf_id:
        out["btf_id"] = i.btf_id
    out["pinned"] = [str(m.path)]
    return out


def map_info_text(m: Any) -> str:
    """``bpftool map show``'s layout (``show_map_close_plain``), less ``memlock``."""
    i = m.info
    lines = [f"{i.id}: {map_type_name(i.type)}  name {m.name}  flags 0x{i.map_flags:x}",
             f"\tkey {i.key_size}B  value {i.value_size}B  max_entries {i.max_entries}"]
    if i.btf_id:
        lines.append(f"\tbtf_id {i.btf_id}")
    lines.append(f"\tpinned {m.path}")
    return "\n".join(lines)


@click.group("maps")
def maps_group() -> None:
    """Inspect and change the maps of the last `tinyaya load`, while it runs or after it finished.

    \b
    Example:
      tinyaya maps list
      tinyaya maps dump SYSCALL_LIST --json
    """


@maps_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON output, like bpftool -j.")
def maps_list(as_json: bool) -> None:
    """List the maps of the last load.

    \b
    Example:
      tinyaya maps list --json
    """
    require_load()
    kernel = open_kernel("sim")
    maps = open_all_maps(kernel)
    try:
        if as_json:
            click.echo(_json([map_info_json(m) for m in maps]))
            return
        for m in maps:
            click.echo(map_info_text(m))
    finally:
        close_maps(kernel, maps)


@maps_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def maps_show(name: str, as_json: bool) -> None:
    """Show one map's definition (bpf_map_info).

    \b
    Example:
      tinyaya maps show SYSCALL_LIST
    """
    require_load()
    kernel = open_kernel("sim")
    m = open_map(kernel, name)
    try:
        click.echo(_json(map_info_json(m)) if as_json else map_info_text(m))
    finally:
        close_maps(kernel, [m])


@maps_group.command("dump")
@click.argument("name", required=False)
@click.option("--json", "-j", "as_json", is_flag=True, help="JSON like `bpftool -j map dump`.")
def maps_dump(name: str | None, as_json: bool) -> None:
    """Dump the entries of one map (or of all maps) of the last load.

    JSON follows `bpftool -j map dump`: `key`/`value` as lists of hex byte
    strings, per-CPU maps as `values` per CPU, and `formatted` with the key
    and value as bpftool's BTF dumper prints them when the map has BTF, else
    integers when key and value are 1, 2, 4 or 8 bytes. Plain text is
    bpftool's too.

    \b
    Example:
      tinyaya maps dump SYSCALL_LIST --json
    """
    record = require_load()
    kernel = open_kernel("sim")
    maps = [open_map(kernel, name)] if name else open_all_maps(kernel)
    btfs = MapBtfSource(kernel, record)
    try:
        result: dict[str, Any] = {}
        for m in maps:
            entries = list(iter_entries(kernel, m))
            mb = btfs.for_map(m)
            if as_json:
                result[m.name] = entries_json(entries, m.percpu, mb, map_of_maps=m.map_of_maps,
                                              codec=MapCodec.from_display(record.map_display.get(m.name)))
                continue
            if not name:
                click.echo(f"{m.name} ({map_type_name(m.info.type)}):")
            if mb is not None:
                click.echo(entries_btf_text(entries, m.percpu, mb), nl=False)
                continue
            for e in entries:
                click.echo(entry_text(e, m.percpu, m.info.key_size, m.info.value_size, map_of_maps=m.map_of_maps))
            click.echo(found_line(len(entries)))
        if as_json:
            click.echo(_json(result[maps[0].name] if name else result))
    finally:
        close_maps(kernel, maps)


@maps_group.command("lookup")
@click.argument("name")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def maps_lookup(name: str, key: str, as_json: bool) -> None:
    """Look up KEY (hex bytes like `01 00 00 00`, or an integer) in map NAME.

    \b
    Example:
      tinyaya maps lookup SYSCALL_LIST 0
    """
    record = require_load()
    kernel = open_kernel("sim")
    m = open_map(kernel, name)
    try:
        k = parse_hex_bytes(key, m.info.key_size, "key")
        try:
            raw = sysbpf.bpf_map_lookup_elem(kernel, m.fd, k, value_size_for(kernel, m))
        except OSError as e:
            _elem_error(name, m, "lookup", key, e)
        entry = Entry(k, split_percpu(kernel, m, raw))
        mb = MapBtfSource(kernel, record).for_map(m)
        if as_json:
            codec = MapCodec.from_display(record.map_display.get(m.name))
            click.echo(_json(entry_json(entry, m.percpu, mb, map_of_maps=m.map_of_maps, codec=codec)))
        elif mb is not None:
            click.echo(entry_btf_text(entry, m.percpu, mb), nl=False)
        else:
            click.echo(entry_text(entry, m.percpu, m.info.key_size, m.info.value_size, map_of_maps=m.map_of_maps))
    finally:
        close_maps(kernel, [m])


_UPDATE_FLAGS = {"any": MapUpdateFlags.BPF_ANY, "noexist": MapUpdateFlags.BPF_NOEXIST,
                 "exist": MapUpdateFlags.BPF_EXIST}


@maps_group.command("update")
@click.argument("name")
@click.argument("key")
@click.argument("value")
@click.option("--flags", type=click.Choice(list(_UPDATE_FLAGS)), default="any", show_default=True,
              help="BPF_ANY, BPF_NOEXIST or BPF_EXIST.")
def maps_update(name: str, key: str, value: str, flags: str) -> None:
    """Set KEY to VALUE (hex bytes or integers) in map NAME.

    \b
    Example:
      tinyaya maps update SYSCALL_LIST 0 100 --flags exist
    """
    require_load()
    kernel = open_kernel("sim")
    m = open_map(kernel, name)
    try:
        k = parse_hex_bytes(key, m.info.key_size, "key")
        v = parse_hex_bytes(value, m.info.value_size, "value")
        if m.percpu:
            stride = (m.info.value_size + 7) // 8 * 8
            ncpu = value_size_for(kernel, m) // stride
            v = (v + bytes(stride - len(v))) * ncpu
        try:
            sysbpf.bpf_map_update_elem(kernel, m.fd, k, v, int(_UPDATE_FLAGS[flags]))
        except OSError as e:
            _elem_error(name, m, "update", key, e, flags)
    finally:
        close_maps(kernel, [m])


@maps_group.command("delete")
@click.argument("name")
@click.argument("key")
def maps_delete(name: str, key: str) -> None:
    """Delete KEY from map NAME.

    \b
    Example:
      tinyaya maps delete SYSCALL_LIST 0
    """
    require_load()
    kernel = open_kernel("sim")
    m = open_map(kernel, name)
    try:
        k = parse_hex_bytes(key, m.info.key_size, "key")
        try:
            sysbpf.bpf_map_delete_elem(kernel, m.fd, k)
        except OSError as e:
            _elem_error(name, m, "delete", key, e)
    finally:
        close_maps(kernel, [m])


@maps_group.command("pin")
@click.argument("name")
@click.argument("path")
def maps_pin(name: str, path: str) -> None:
    """Pin map NAME at PATH inside the simulated bpffs (relative paths are under its root).

    \b
    Example:
      tinyaya maps pin SYSCALL_LIST my/syscalls
    """
    from .state import bpffs_root

    require_load()
    kernel = open_kernel("sim")
    m = open_map(kernel, name)
    try:
        target = path if path.startswith("/") else str(bpffs_root() / path)
        sysbpf.bpf_obj_pin(kernel, m.fd, target)
        click.echo(target)
    finally:
        close_maps(kernel, [m])


COMMANDS = [maps_group]
