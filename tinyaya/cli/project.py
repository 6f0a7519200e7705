"""``tinyaya.toml``: a project file that names the object, programs, attach target, workload and map display.

    object = "syscall_ebpf-ebpf/syscall_ebpf.o"   # relative to the file
    programs = ["syscall_ebpf"]                   # optional: default all
    workload = "mixed"                            # optional: built-in name or TOML file
    [attach]
    kind = "kprobe"                               # kprobe | kretprobe | tracepoint | default
    target = "sys_enter"
    offset = 0
    [maps.SYSCALL_LIST]
    key = "u32"
    value = "u32"
    syscall_keys = true                           # show syscall names
    sort = "value"                                # key | value
    top = 20
    hide = false

Every mistake is named with its key and line, and exits 2.
"""
from __future__ import annotations

import re
import tomllib  # Python >= 3.11 (tinyaya's floor); tomli is its backport for older ones
from pathlib import Path
from typing import Any

from .errors import bad_input

_TOP = {"object": str, "programs": list, "workload": str, "attach": dict, "maps": dict}
_ATTACH = {"kind": str, "target": str, "offset": int}
_KINDS = ("default", "kprobe", "kretprobe", "tracepoint")
_MAP = {"key": str, "value": str, "syscall_keys": bool, "sort": str, "top": int, "hide": bool}
_TYPES = ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bytes")


def _line_of(text: str, key: str) -> int | None:
    pat = re.compile(rf"^\s*(\[.*\b{re.escape(key)}\b.*\]|{re.escape(key)}\s*=)", re.M)
    m = pat.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _err(path: Path, text: str, key: str, msg: str) -> None:
    line = _line_of(text, key.split(".")[-1])
    where = f"{path}:{line}" if line else str(path)
    bad_input(f"{where}: {key}: {msg}")


def load_project(path: Path) -> dict[str, Any]:
    if not path.exists():
        bad_input(f"no OBJ given and no {path} in {Path.cwd()}")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        bad_input(f"{path}: {e}")
    for key, value in data.items():
        if key not in _TOP:
            _err(path, text, key, f"unknown key (known: {', '.join(_TOP)})")
        if not isinstance(value, _TOP[key]):
            _err(path, text, key, f"expected a {_TOP[key].__name__}, got {type(value).__name__}")
    if "object" not in data:
        bad_input(f"{path}: object: missing (the eBPF object file to load)")
    obj = Path(data["object"])
    data["object"] = str(obj if obj.is_absolute() else (path.parent / obj))
    for i, p in enumerate(data.get("programs", [])):
        if not isinstance(p, str):
            _err(path, text, "programs", f"entry {i} is not a string")
    if "workload" in data and data["workload"].endswith(".toml"):
        w = Path(data["workload"])
        data["workload"] = str(w if w.is_absolute() else (path.parent / w))
    attach = data.get("attach", {})
    for key, value in attach.items():
        if key not in _ATTACH:
            _err(path, text, f"attach.{key}", f"unknown key (known: {', '.join(_ATTACH)})")
        if not isinstance(value, _ATTACH[key]) or isinstance(value, bool):
            _err(path, text, f"attach.{key}", f"expected a {_ATTACH[key].__name__}")
    if attach and attach.get("kind", "default") not in _KINDS:
        _err(path, text, "attach.kind", f"{attach['kind']!r} is not one of {', '.join(_KINDS)}")
    for name, spec in data.get("maps", {}).items():
        if not isinstance(spec, dict):
            _err(path, text, f"maps.{name}", "expected a table")
        for key, value in spec.items():
            if key not in _MAP:
                _err(path, text, f"maps.{name}.{key}", f"unknown key (known: {', '.join(_MAP)})")
            if not isinstance(value, _MAP[key]) or (_MAP[key] is int and isinstance(value, bool)):
                _err(path, text, f"maps.{name}.{key}", f"expected a {_MAP[key].__name__}")
        for key in ("key", "value"):
            if key in spec and spec[key] not in _TYPES:
                _err(path, text, f"maps.{name}.{key}", f"{spec[key]!r} is not one of {', '.join(_TYPES)}")
        if spec.get("sort", "key") not in ("key", "value"):
            _err(path, text, f"maps.{name}.sort", "expected 'key' or 'value'")
    return data
