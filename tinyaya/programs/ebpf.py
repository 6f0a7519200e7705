"""``Ebpf`` and ``EbpfLoader``: load an object into a kernel (aya/src/bpf.rs).

``EbpfLoader().load(data)`` parses with ``tinyaya.obj``, applies
``override_global``, creates the maps (reusing or creating pins for maps with
``pinning = BY_NAME``, as aya does), fills and freezes ``.rodata``, fills
map-in-map initialisers, and relocates every program. Programs are loaded
into the kernel later, by ``program_mut(name).load()``, as in aya.

Errors: ``tinyaya.obj`` ParseError/RelocationError subclasses pass through
unchanged (they name the file, section and symbol); map creation failures are
``EbpfError.MapError``; a bad path is ``EbpfError.FileError``.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import obj as _obj
from .. import sys as bpfsys
from ..kernel import Kernel, possible_cpus
from ..maps.base import MapData, _default_kernel
from ..maps.errors import NotFound
from ..uapi.bpf import BpfMapType
from .btf_target import VmlinuxBtf
from .errors import (
    EbpfError,
    EndiannessMismatch,
    FileError,
    MapCreateError,
    ProgramNotFound,
    UnexpectedPinningType,
    UnsupportedMap,
)
from .kinds import program_class
from .program import Program

__all__ = ["Ebpf", "EbpfLoader", "DEFAULT_PIN_DIR", "SUPPORTED_MAP_TYPES", "default_pin_dir"]

_log = logging.getLogger("tinyaya.loader")

#: aya's default for ``map_pin_path``
DEFAULT_PIN_DIR = "/sys/fs/bpf"

EbpfError.ParseError = _obj.ParseError  # type: ignore[assignment,misc]
EbpfError.RelocationError = _obj.RelocationError  # type: ignore[assignment,misc]

T = BpfMapType
#: map types aya's ``Map`` enum knows; others need ``allow_unsupported_maps()``
SUPPORTED_MAP_TYPES = frozenset({
    T.BPF_MAP_TYPE_HASH, T.BPF_MAP_TYPE_ARRAY, T.BPF_MAP_TYPE_PROG_ARRAY, T.BPF_MAP_TYPE_PERF_EVENT_ARRAY,
    T.BPF_MAP_TYPE_PERCPU_HASH, T.BPF_MAP_TYPE_PERCPU_ARRAY, T.BPF_MAP_TYPE_STACK_TRACE, T.BPF_MAP_TYPE_LRU_HASH,
    T.BPF_MAP_TYPE_LRU_PERCPU_HASH, T.BPF_MAP_TYPE_LPM_TRIE, T.BPF_MAP_TYPE_ARRAY_OF_MAPS,
    T.BPF_MAP_TYPE_HASH_OF_MAPS, T.BPF_MAP_TYPE_DEVMAP, T.BPF_MAP_TYPE_SOCKMAP, T.BPF_MAP_TYPE_CPUMAP,
    T.BPF_MAP_TYPE_XSKMAP, T.BPF_MAP_TYPE_SOCKHASH, T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK,
    T.BPF_MAP_TYPE_DEVMAP_HASH, T.BPF_MAP_TYPE_RINGBUF, T.BPF_MAP_TYPE_BLOOM_FILTER, T.BPF_MAP_TYPE_SK_STORAGE,
})


def default_pin_dir(kernel: Kernel) -> str:
    """``/sys/fs/bpf`` on Linux (aya's default); the root of its private bpffs on a simulated kernel."""
    root = getattr(getattr(kernel, "bpffs", None), "root", None)
    return os.fspath(root) if root is not None else DEFAULT_PIN_DIR


class Ebpf:
    """A loaded object: its maps (created) and programs (relocated; load each with ``load()``)."""

    def __init__(self, kernel: Kernel, obj: _obj.Object, maps: dict[str, MapData], programs: dict[str, Program],
                 btf_fd: int | None = None) -> None:
        self.kernel = kernel
        self.obj = obj
        self._maps = maps
        self._programs = programs
        #: the object's BTF loaded into the kernel (BPF_BTF_LOAD), None when the kernel refused it
        self.btf_fd = btf_fd

    # -- construction -----------------------------------------------------------------------------------

    @classmethod
    def load_file(cls, path: str | os.PathLike[str], *, kernel: Kernel | None = None) -> Ebpf:
        """Load an object file with the default ``EbpfLoader`` (kernel: a fresh ``SimKernel``)."""
        return EbpfLoader(kernel=kernel).load_file(path)

    @classmethod
    def load(cls, data: bytes, *, kernel: Kernel | None = None) -> Ebpf:
        return EbpfLoader(kernel=kernel).load(data)

    # -- programs ---------------------------------------------------------------------------------------

    def programs(self) -> Iterator[tuple[str, Program]]:
        return iter(list(self._programs.items()))

    programs_mut = programs

    def program(self, name: str) -> Program:
        """The program named ``name`` (a typed class: KProbe, TracePoint…); ``ProgramNotFound`` if absent."""
        prog = self._programs.get(name)
        if prog is None:
            raise ProgramNotFound(name, sorted(self._programs))
        return prog

    program_mut = program

    # -- maps -------------------------------------------------------------------------------------------

    def maps(self) -> Iterator[tuple[str, MapData]]:
        return iter(list(self._maps.items()))

    maps_mut = maps

    def map(self, name: str) -> MapData:
        """The map named ``name`` (wrap it: ``HashMap(ebpf.map("X"), key=u32, value=u32)``)."""
        md = self._maps.get(name)
        if md is None:
            raise NotFound(name)
        return md

    map_mut = map

    def take_map(self, name: str) -> MapData:
        """Remove the map from this object and hand it over: the caller now closes it."""
        md = self._maps.pop(name, None)
        if md is None:
            raise NotFound(name)
        return md

    # -- teardown ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Unload every program (detaching its links) and close every map fd we still own."""
        for prog in self._programs.values():
            prog.close()
        for md in self._maps.values():
            md.close()
        if self.btf_fd is not None:
            fd, self.btf_fd = self.btf_fd, None
            self.kernel.close(fd)

    def __enter__(self) -> Ebpf:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ebpf({self.obj.path or '<bytes>'}, programs={sorted(self._programs)}, maps={sorted(self._maps)})"


class EbpfLoader:
    """Builder for ``Ebpf`` (aya's ``EbpfLoader``); every setter returns the loader."""

    def __init__(self, *, kernel: Kernel | None = None) -> None:
        self._kernel = kernel
        self._globals: dict[str, Any] = {}
        self._globals_must_exist: dict[str, bool] = {}
        self._max_entries: dict[str, int] = {}
        self._pin_dir: str | None = None
        self._btf: object | None = None
        self._verifier_log_level = 0
        self._allow_unsupported_maps = False

    def set_kernel(self, kernel: Kernel) -> EbpfLoader:
        self._kernel = kernel
        return self

    def override_global(self, name: str, value: Any, must_exist: bool = True) -> EbpfLoader:
        """Patch a global variable before load: ``value`` is bytes, an int (sized to the variable),
        or a ctypes value."""
        self._globals[name] = value
        self._globals_must_exist[name] = must_exist
        return self

    def set_global(self, name: str, value: Any, must_exist: bool = True) -> EbpfLoader:
        return self.override_global(name, value, must_exist)

    def set_max_entries(self, name: str, size: int) -> EbpfLoader:
        self._max_entries[name] = size
        return self

    def map_pin_path(self, path: str | os.PathLike[str]) -> EbpfLoader:
        """Where maps with ``pinning = BY_NAME`` are pinned (default: ``default_pin_dir(kernel)``)."""
        self._pin_dir = os.fspath(path)
        return self

    default_map_pin_directory = map_pin_path

    def btf(self, btf: object | None) -> EbpfLoader:
        """The target BTF for CO-RE (aya: ``Btf::from_sys_fs()``); kept for API shape, CO-RE is not applied."""
        self._btf = btf
        return self

    def verifier_log_level(self, level: int) -> EbpfLoader:
        self._verifier_log_level = int(level)
        return self

    def allow_unsupported_maps(self) -> EbpfLoader:
        self._allow_unsupported_maps = True
        return self

    # -- loading ----------------------------------------------------------------------------------------

    def load_file(self, path: str | os.PathLike[str]) -> Ebpf:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise FileError(os.fspath(path), e)
        return self._load(data, os.fspath(path))

    def load(self, data: bytes) -> Ebpf:
        return self._load(bytes(data), None)

    def _global_bytes(self, obj: _obj.Object, name: str, value: Any) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        if isinstance(value, ctypes._SimpleCData | ctypes.Structure | ctypes.Array | ctypes.Union):
            return bytes(value)  # type: ignore[call-overload]
        if isinstance(value, bool | int):
            var = obj.variables.get(name)
            size = var.size if var is not None else 8
            try:
                return int(value).to_bytes(size, "big" if obj.big_endian else "little", signed=int(value) < 0)
            except OverflowError:
                raise ValueError(f"{value} does not fit in the {size}-byte global {name}")
        raise TypeError(f"override_global({name!r}): expected bytes, int or a ctypes value, got {type(value).__name__}")

    def _load(self, data: bytes, path: str | None) -> Ebpf:
        kernel = self._kernel if self._kernel is not None else _default_kernel()
        obj = _obj.Object.parse(data, path)
        if obj.big_endian != (sys.byteorder == "big"):
            raise EndiannessMismatch(path or "<bytes>", "big" if obj.big_endian else "little", sys.byteorder)
        for name, value in self._globals.items():
            obj.override_global(name, self._global_bytes(obj, name, value), must_exist=self._globals_must_exist[name])
        ncpus = len(possible_cpus(kernel))
        maps: dict[str, MapData] = {}
        btf_fd = self._load_btf(kernel, obj)
        try:
            for name, mdef in obj.maps.items():
                maps[name] = self._create_map(kernel, mdef, ncpus, btf_fd)
            self._fill_map_in_map(obj, maps)
            programs = self._programs(kernel, obj, maps, btf_fd)
        except BaseException:
            for md in maps.values():
                md.close()
            if btf_fd is not None:
                kernel.close(btf_fd)
            raise
        return Ebpf(kernel, obj, maps, programs, btf_fd)

    def _load_btf(self, kernel: Kernel, obj: _obj.Object) -> int | None:
        """Load the object's (fixed-up) BTF, as aya does when the kernel supports it. A refusal is not
        fatal: maps and programs are then created without BTF, as libbpf and aya fall back."""
        if obj.btf is None or obj.big_endian or not obj.btf.raw:
            return None
        try:
            return bpfsys.bpf_btf_load(kernel, obj.btf.raw)
        except OSError as e:
            _log.info("BTF of %s not loaded (%s); continuing without BTF", obj.path or "<bytes>", e)
            return None

    def _create_map(self, kernel: Kernel, mdef: _obj.MapDef, ncpus: int, btf_fd: int | None = None) -> MapData:
        mdef = mdef.resolved(ncpus, mmap.PAGESIZE)
        max_entries = self._max_entries.get(mdef.name, mdef.max_entries)
        if int(mdef.map_type) not in SUPPORTED_MAP_TYPES and not mdef.is_data and not self._allow_unsupported_maps:
            raise UnsupportedMap(mdef.name, int(mdef.map_type))
        pin_path: str | None = None
        if mdef.pinning != _obj.PinningType.NONE:
            if mdef.pinning not in (_obj.PinningType.BY_NAME, _obj.PinningType.GLOBAL_NS):
                raise UnexpectedPinningType(mdef.name, int(mdef.pinning))
            pin_dir = self._pin_dir if self._pin_dir is not None else default_pin_dir(kernel)
            pin_path = f"{pin_dir.rstrip('/')}/{mdef.name}"
            try:
                fd = bpfsys.bpf_obj_get(kernel, pin_path)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise MapCreateError(mdef.name, e)
            else:
                md = MapData.from_fd(kernel, fd, mdef.name)
                md.pinned_path = pin_path
                return md
        inner_fd = 0
        if mdef.inner is not None:
            inner = mdef.inner
            try:
                inner_fd = bpfsys.bpf_map_create(kernel, inner.map_type, inner.key_size, inner.value_size,
                                                 inner.max_entries, name=inner.kernel_name,
                                                 map_flags=inner.map_flags)
            except OSError as e:
                raise MapCreateError(f"{mdef.name} (inner map)", e)
        def create(with_btf: bool) -> int:
            btf = {}
            if with_btf and btf_fd is not None and mdef.btf_value_type_id:
                btf = {"btf_fd": btf_fd, "btf_key_type_id": mdef.btf_key_type_id,
                       "btf_value_type_id": mdef.btf_value_type_id}
            return bpfsys.bpf_map_create(
                kernel, mdef.map_type, mdef.key_size, mdef.value_size, max_entries, name=mdef.kernel_name,
                map_flags=mdef.map_flags, inner_map_fd=inner_fd, numa_node=mdef.numa_node, map_extra=mdef.map_extra,
                **btf,
            )

        try:
            try:
                fd = create(True)
            except OSError:
                if btf_fd is None or not mdef.btf_value_type_id:
                    raise
                fd = create(False)  # libbpf: "failed to create map with BTF, retrying without BTF"
        except OSError as e:
            raise MapCreateError(mdef.name, e)
        finally:
            if inner_fd:
                kernel.close(inner_fd)
        md = MapData(kernel=kernel, fd=fd, map_type=int(mdef.map_type), key_size=mdef.key_size,
                     value_size=mdef.value_size, max_entries=max_entries, map_flags=mdef.map_flags, name=mdef.name)
        try:
            if mdef.is_data and mdef.data is not None:
                # global data: one entry at index 0, then .rodata is frozen (aya: MapData::finalize)
                bpfsys.bpf_map_update_elem(kernel, fd, (0).to_bytes(4, "little"), mdef.data.ljust(mdef.value_size,
                                                                                                   b"\0"))
                if mdef.is_rodata:
                    bpfsys.bpf_map_freeze(kernel, fd)
            if pin_path is not None:
                md.pin(pin_path)
        except OSError as e:
            md.close()
            raise MapCreateError(mdef.name, e)
        except BaseException:
            md.close()
            raise
        return md

    def _fill_map_in_map(self, obj: _obj.Object, maps: dict[str, MapData]) -> None:
        for name, mdef in obj.maps.items():
            if mdef.map_type not in (T.BPF_MAP_TYPE_ARRAY_OF_MAPS, T.BPF_MAP_TYPE_HASH_OF_MAPS) or not mdef.values:
                continue
            for index, inner_name in enumerate(mdef.values):
                if inner_name is None or inner_name not in maps:
                    continue
                try:
                    maps[name].update(index.to_bytes(4, "little"), maps[inner_name].fd.to_bytes(4, "little"))
                except OSError as e:
                    raise MapCreateError(f"{name}[{index}] = {inner_name}", e)

    def _programs(self, kernel: Kernel, obj: _obj.Object, maps: dict[str, MapData], btf_fd: int | None = None
                  ) -> dict[str, Program]:
        fds = {name: md.fd for name, md in maps.items()}
        programs: dict[str, Program] = {}
        vmlinux = VmlinuxBtf(kernel)
        for name, oprog in obj.programs.items():
            # a program that can't be linked (CO-RE, a call to memset, an unknown section) fails its own
            # load(), not the whole object's: the other programs stay usable, as with libbpf's autoload
            link_error: _obj.RelocationError | None = None
            linked: Any = None
            try:
                linked = _obj.link_program(obj, name, map_fds=fds)
            except _obj.RelocationError as e:
                link_error = e
            section = oprog.section
            cls = program_class(section)
            eat = section.expected_attach_type
            programs[name] = cls(
                name, kernel, linked=linked, section=section, prog_type=int(section.prog_type),
                license=oprog.license or obj.license, kern_version=oprog.kernel_version or obj.kernel_version or 0,
                expected_attach_type=int(eat) if eat is not None else 0,
                verifier_log_level=self._verifier_log_level, btf_fd=btf_fd, vmlinux=vmlinux,
            )
            programs[name].link_error = link_error
        # PROG_ARRAY initialisers (``.maps`` values): filled as each program gets loaded
        for name, mdef in obj.maps.items():
            if mdef.map_type != T.BPF_MAP_TYPE_PROG_ARRAY or not mdef.values:
                continue
            for index, prog_name in enumerate(mdef.values):
                if prog_name is not None and prog_name in programs:
                    programs[prog_name].on_load.append(_prog_array_filler(maps[name], index))
        return programs


def _prog_array_filler(md: MapData, index: int) -> Any:
    def fill(prog: Program) -> None:
        assert prog.fd is not None
        md.update(index.to_bytes(4, "little"), prog.fd.to_bytes(4, "little"))

    return fill
