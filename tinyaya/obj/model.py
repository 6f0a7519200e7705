"""The parsed object: frozen dataclasses for symbols, relocations, functions, programs and maps.

Shapes follow aya-obj (``obj.rs``: ``Program``, ``Function``; ``maps.rs``:
``bpf_map_def``, ``BtfMapDef``, ``PinningType``) and libbpf's ``struct
bpf_map_def``/``struct bpf_program``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from ..isa import Insn
from ..uapi.bpf import BpfMapType, MapFlags
from .sections import ProgramSection

BPF_OBJ_NAME_LEN = 16


class Endianness(StrEnum):
    LITTLE = "little"
    BIG = "big"


class PinningType(IntEnum):
    """Aya's ``PinningType`` (aya-obj maps.rs) / libbpf's ``LIBBPF_PIN_*``: 0 none, 1 by name.

    iproute2's ``PIN_GLOBAL_NS`` (2) is also pinned by name, in tc's globals directory.
    """

    NONE = 0
    BY_NAME = 1
    GLOBAL_NS = 2


class MapOrigin(StrEnum):
    LEGACY = "legacy"  # the ``maps`` section, struct bpf_map_def
    BTF = "btf"  # the ``.maps`` section, BTF-defined
    DATA = "data"  # a global data section (.data*, .rodata*, .bss*, .kconfig)


@dataclass(frozen=True, slots=True)
class Symbol:
    """One ``Elf64_Sym``. ``section_index`` is ``st_shndx`` (0 = undefined)."""

    index: int
    name: str
    value: int
    size: int
    type: int  # STT_*
    bind: int  # STB_*
    section_index: int
    other: int = 0

    STT_NOTYPE = 0
    STT_OBJECT = 1
    STT_FUNC = 2
    STT_SECTION = 3
    STT_FILE = 4
    STB_LOCAL = 0
    STB_GLOBAL = 1
    STB_WEAK = 2

    @property
    def is_defined(self) -> bool:
        return 0 < self.section_index < 0xFF00

    @property
    def is_function(self) -> bool:
        return self.type == 2

    @property
    def is_section(self) -> bool:
        return self.type == 3


@dataclass(frozen=True, slots=True)
class Relocation:
    """One ``Elf64_Rel``/``Elf64_Rela`` applied to section ``section_index``.

    ``type`` is ``R_BPF_*``: 1 ``R_BPF_64_64`` (ld_imm64), 2 ``R_BPF_64_ABS64``,
    3 ``R_BPF_64_ABS32``, 4 ``R_BPF_64_NODYLD32``, 10 ``R_BPF_64_32`` (call).
    """

    section_index: int
    section_name: str
    offset: int
    type: int
    symbol_index: int
    symbol_name: str
    addend: int | None = None

    @property
    def type_name(self) -> str:
        return R_BPF_NAMES.get(self.type, f"R_BPF_{self.type}")


R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10
R_BPF_NAMES = {0: "R_BPF_NONE", 1: "R_BPF_64_64", 2: "R_BPF_64_ABS64", 3: "R_BPF_64_ABS32",
               4: "R_BPF_64_NODYLD32", 10: "R_BPF_64_32"}


@dataclass(frozen=True, slots=True)
class FuncInfo:
    """``struct bpf_func_info``: ``insn_off`` in instructions (relative to the function or program)."""

    insn_off: int
    type_id: int


@dataclass(frozen=True, slots=True)
class LineInfo:
    """``struct bpf_line_info``; ``line_col`` packs line (<<10) and column. Strings resolved from .BTF."""

    insn_off: int
    file_name_off: int
    line_off: int
    line_col: int
    file_name: str = ""
    line: str = ""

    @property
    def line_num(self) -> int:
        return self.line_col >> 10

    @property
    def line_column(self) -> int:
        return self.line_col & 0x3FF


@dataclass(frozen=True, slots=True)
class CoreReloRef:
    """A ``struct bpf_core_relo`` attached to a function (``insn_off`` relative to the function, in insns)."""

    insn_off: int
    type_id: int
    access_str: str
    kind: int


@dataclass(frozen=True, slots=True)
class Function:
    """A function symbol's code (aya-obj ``Function``): a program or a ``.text`` subprogram."""

    name: str
    section_index: int
    section_name: str
    address: int  # byte offset in its section
    size: int  # bytes
    insns: tuple[Insn, ...]
    is_global: bool = True
    func_info: tuple[FuncInfo, ...] = ()
    line_info: tuple[LineInfo, ...] = ()
    core_relos: tuple[CoreReloRef, ...] = ()

    @property
    def insn_count(self) -> int:
        return len(self.insns)


@dataclass(frozen=True, slots=True)
class Program:
    """A program: a function in an executable section other than ``.text``, before linking."""

    name: str
    section_name: str
    section: ProgramSection
    section_index: int
    address: int  # byte offset in its section
    size: int
    insns: tuple[Insn, ...]
    license: str = "GPL"
    kernel_version: int | None = None
    func_info: tuple[FuncInfo, ...] = ()
    line_info: tuple[LineInfo, ...] = ()
    core_relos: tuple[CoreReloRef, ...] = ()

    @property
    def insn_count(self) -> int:
        return len(self.insns)

    @property
    def needs_core(self) -> bool:
        """True if the program's own code carries CO-RE relocations (subprograms: see link_program)."""
        return bool(self.core_relos)

    @property
    def offset(self) -> int:
        return self.address


@dataclass(frozen=True, slots=True)
class MapDef:
    """A map as defined by the object (aya-obj ``Map``; libbpf ``struct bpf_map_def`` + BTF fields).

    ``values`` are the initial entries of a PROG_ARRAY or map-in-map (index ->
    program or map name, None for a hole). ``data`` is the initial contents of a
    global-data map (None for other maps). ``max_entries`` of a
    PERF_EVENT_ARRAY is left as written; the loader calls ``resolved``.
    """

    name: str
    origin: MapOrigin
    section_name: str
    section_index: int
    map_type: BpfMapType | int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int = 0
    map_extra: int = 0
    numa_node: int = 0
    pinning: PinningType = PinningType.NONE
    id: int = 0
    symbol_index: int | None = None
    offset: int = 0  # of the definition in its section
    inner: MapDef | None = None
    values: tuple[str | None, ...] = ()
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    data: bytes | None = None

    @property
    def kernel_name(self) -> str:
        """The name given to BPF_MAP_CREATE: cut to BPF_OBJ_NAME_LEN - 1 bytes."""
        raw = self.name.encode()[: BPF_OBJ_NAME_LEN - 1]
        return raw.decode(errors="ignore")

    @property
    def is_data(self) -> bool:
        return self.origin is MapOrigin.DATA

    @property
    def is_rodata(self) -> bool:
        return self.is_data and bool(self.map_flags & MapFlags.BPF_F_RDONLY_PROG)

    def resolved(self, ncpus: int, page_size: int = 4096) -> MapDef:
        """Apply the loader's adjustments (aya ``Ebpf::load``, libbpf ``bpf_object__create_maps``).

        PERF_EVENT_ARRAY with max_entries 0 gets the number of possible CPUs;
        RINGBUF/USER_RINGBUF sizes are rounded up to a power-of-two multiple of
        the page size (libbpf ``adjust_ringbuf_sz``).
        """
        max_entries = self.max_entries
        if self.map_type == BpfMapType.BPF_MAP_TYPE_PERF_EVENT_ARRAY and max_entries == 0:
            max_entries = ncpus
        elif self.map_type in (BpfMapType.BPF_MAP_TYPE_RINGBUF, BpfMapType.BPF_MAP_TYPE_USER_RINGBUF):
            max_entries = _adjust_ringbuf_size(max_entries, page_size)
        inner = self.inner.resolved(ncpus, page_size) if self.inner is not None else None
        return dataclasses.replace(self, max_entries=max_entries, inner=inner)


def _adjust_ringbuf_size(size: int, page_size: int) -> int:
    if size <= 0:
        return page_size
    mul = 1
    while mul * page_size < size:
        mul <<= 1
    return mul * page_size


@dataclass(frozen=True, slots=True)
class GlobalVariable:
    """A variable in a global-data section (an ``STT_OBJECT`` symbol), for inspect and override_global."""

    name: str
    section_name: str
    section_index: int
    offset: int
    size: int
    is_global: bool
    btf_type_id: int = 0


@dataclass(frozen=True, slots=True)
class MapReference:
    """Where a linked program refers to a map: instruction index, map name, value offset (or None)."""

    insn_index: int
    map_name: str
    value_offset: int | None = None


@dataclass(frozen=True)
class LinkedProgram:
    """A program after relocation and bpf-to-bpf linking: what BPF_PROG_LOAD gets."""

    name: str
    insns: list[Insn]
    func_info: list[FuncInfo] = field(default_factory=list)
    line_info: list[LineInfo] = field(default_factory=list)
    subprograms: list[str] = field(default_factory=list)  # appended functions, in order
    function_starts: list[tuple[str, int]] = field(default_factory=list)  # (name, insn index), main first
    problems: list[str] = field(default_factory=list)  # what a lenient link left unrelocated
    map_refs: list[MapReference] = field(default_factory=list)
    big_endian: bool = False

    func_info_rec_size = 8
    line_info_rec_size = 16

    def insn_bytes(self) -> bytes:
        from ..isa import encode

        return encode(self.insns, self.big_endian)

    def func_info_bytes(self) -> bytes:
        import struct

        fmt = ">II" if self.big_endian else "<II"
        return b"".join(struct.pack(fmt, f.insn_off, f.type_id) for f in self.func_info)

    def line_info_bytes(self) -> bytes:
        import struct

        fmt = ">IIII" if self.big_endian else "<IIII"
        return b"".join(struct.pack(fmt, li.insn_off, li.file_name_off, li.line_off, li.line_col)
                        for li in self.line_info)
