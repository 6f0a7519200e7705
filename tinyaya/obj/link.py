"""Relocation and bpf-to-bpf linking of one program: object + map fds -> BPF_PROG_LOAD instructions.

Pure, like aya-obj ``relocation.rs`` (``relocate_maps``, ``relocate_calls``)
and libbpf ``bpf_object__relocate_data``/``bpf_object__reloc_code``:

* ``R_BPF_64_64`` on ``ld_imm64`` against a map symbol -> ``src_reg =
  BPF_PSEUDO_MAP_FD``, ``imm = fd``; against a data-section symbol or the
  section symbol -> ``BPF_PSEUDO_MAP_VALUE``, ``imm = fd``, next ``imm =
  sym.value + imm``; against code -> ``BPF_PSEUDO_FUNC`` (a callback).
* ``call`` with ``src_reg = BPF_PSEUDO_CALL``: through ``R_BPF_64_32`` the
  target is ``sym.value / 8 + imm + 1`` in the symbol's section; without a
  relocation it is pc-relative in the caller's section.
* Every reachable function is appended once (breadth first, after the main
  program), calls are re-pointed, and func_info/line_info are rebased.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from ..isa import Insn
from ..isa.opcodes import (
    BPF_PSEUDO_BTF_ID,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
)
from .errors import (
    CoreRelocationsUnsupported,
    InvalidRelocationOffset,
    MapNotFound,
    RelocationError,
    RelocationSectionNotFound,
    UnknownFunction,
    UnknownProgram,
    UnknownProgramSection,
    UnknownSymbol,
    UnsupportedRelocation,
)
from .externs import KCONFIG_SECTION
from .model import (
    CoreReloRef,
    FuncInfo,
    Function,
    LineInfo,
    LinkedProgram,
    MapDef,
    MapOrigin,
    MapReference,
    Relocation,
)
from .object import Object

BPF_CALL_INSN = 0x85  # BPF_JMP | BPF_CALL
KsymResolver = Callable[[str, bool], tuple[int, int]]


class _Linker:
    def __init__(self, obj: Object, name: str, map_fds: Mapping[str, int], lenient: bool = False,
                 resolve_ksym: KsymResolver | None = None) -> None:
        self.obj = obj
        self.resolve_ksym = resolve_ksym
        self.lenient = lenient
        self.problems: list[str] = []
        self.name = name
        self.map_fds = map_fds
        self.insns: list[Insn] = []
        self.placed: dict[tuple[int, int], int] = {}
        self.order: list[Function] = []
        self.map_refs: list[MapReference] = []
        self._rels: dict[int, dict[int, Relocation]] = {}

    def _err(self, cls: type, msg: str, fn: Function, index: int, symbol: str | None = None, **kw: object):
        where = f"{fn.name}+{index * 8:#x} (insn {index})"
        return cls(f"{msg} at {where}", path=self.obj.path, section=fn.section_name, symbol=symbol,
                   program=self.name, function=fn.name, insn_index=index, **kw)

    def rels(self, section_index: int) -> dict[int, Relocation]:
        if section_index not in self._rels:
            self._rels[section_index] = {r.offset: r for r in self.obj.relocations.get(section_index, ())}
        return self._rels[section_index]

    def place(self, fn: Function) -> int:
        key = (fn.section_index, fn.address)
        if key not in self.placed:
            self.placed[key] = len(self.insns)
            self.insns.extend(fn.insns)
            self.order.append(fn)
        return self.placed[key]

    def link(self, main: Function) -> None:
        self.place(main)
        i = 0
        while i < len(self.order):
            fn = self.order[i]
            self.relocate(fn, self.placed[(fn.section_index, fn.address)])
            i += 1

    def relocate(self, fn: Function, base: int) -> None:
        rels = self.rels(fn.section_index)
        n = len(fn.insns)
        j = 0
        while j < n:
            ins = self.insns[base + j]
            rel = rels.get(fn.address + 8 * j)
            try:
                if ins.is_ld_imm64:
                    if rel is not None:
                        if j + 1 >= n:
                            raise self._err(InvalidRelocationOffset, "ld_imm64 relocation on the last slot", fn, j,
                                            rel.symbol_name)
                        self.relocate_ld_imm64(fn, base, j, rel)
                elif ins.code == BPF_CALL_INSN and (ins.src == BPF_PSEUDO_CALL or rel is not None):
                    self.relocate_call(fn, base, j, rel)
                elif rel is not None:
                    raise self._err(InvalidRelocationOffset,
                                    f"relocation {rel.type_name} against '{rel.symbol_name}' is not on an ld_imm64 "
                                    f"or call instruction (code {ins.code:#04x})", fn, j, rel.symbol_name)
            except RelocationError as e:
                if not self.lenient:
                    raise
                self.problems.append(e.message)  # left as compiled, for inspection
            j += 2 if ins.is_ld_imm64 else 1

    def _symbol(self, fn: Function, j: int, rel: Relocation):
        sym = self.obj.symbols[rel.symbol_index] if 0 <= rel.symbol_index < len(self.obj.symbols) else None
        if sym is None:
            raise self._err(UnknownSymbol, f"relocation refers to symbol {rel.symbol_index}, out of range",
                            fn, j, rel.symbol_name, symbol_index=rel.symbol_index)
        return sym

    def relocate_call(self, fn: Function, base: int, j: int, rel: Relocation | None) -> None:
        ins = self.insns[base + j]
        if rel is not None:
            sym = self._symbol(fn, j, rel)
            if not sym.is_defined and sym.name in self.obj.ksyms:
                btf_id, fd_index = self._ksym(fn, j, sym.name, True)
                # libbpf RELO_EXTERN_CALL: src_reg BPF_PSEUDO_KFUNC_CALL, imm the kernel BTF id, off the
                # fd_array index of the BTF that has it (0: vmlinux)
                self.insns[base + j] = ins.replace(src=BPF_PSEUDO_KFUNC_CALL, imm=btf_id, off=fd_index)
                return
            if not sym.is_defined:
                raise self._err(UnknownSymbol, f"call to undefined symbol '{sym.name}'", fn, j, sym.name,
                                symbol_index=sym.index)
            if ins.src != BPF_PSEUDO_CALL:
                raise self._err(UnsupportedRelocation, f"call relocation against '{sym.name}' on a helper call",
                                fn, j, sym.name)
            target_sec = sym.section_index
            target = sym.value // 8 + ins.imm + 1
            if sym.value % 8:
                raise self._err(InvalidRelocationOffset, f"call target symbol '{sym.name}' is not aligned", fn, j,
                                sym.name)
        else:
            target_sec = fn.section_index
            target = fn.address // 8 + j + ins.imm + 1
        callee = self.obj.function_at(target_sec, target * 8)
        if callee is None:
            if target_sec == fn.section_index and fn.address <= target * 8 < fn.address + fn.size:
                return  # a call into the caller's own body: already relative
            sec = self.obj.section(target_sec)
            raise self._err(UnknownFunction, f"call to instruction {target} of section "
                            f"'{sec.name if sec else target_sec}', which starts no function", fn, j,
                            rel.symbol_name if rel else None, address=target * 8)
        pos = self.place(callee)
        self.insns[base + j] = ins.replace(imm=pos - (base + j) - 1)

    def relocate_ld_imm64(self, fn: Function, base: int, j: int, rel: Relocation) -> None:
        ins, nxt = self.insns[base + j], self.insns[base + j + 1]
        sym = self._symbol(fn, j, rel)
        if not sym.is_defined:
            var = self.obj.variables.get(sym.name)
            kconfig = self.obj.maps.get(KCONFIG_SECTION)
            if var is not None and var.section_name == KCONFIG_SECTION and kconfig is not None:
                fd = self._fd(kconfig, fn, j)  # libbpf: RELO_EXTERN_LD64 -> BPF_PSEUDO_MAP_VALUE into .kconfig
                self.insns[base + j] = ins.replace(src=BPF_PSEUDO_MAP_VALUE, imm=fd)
                self.insns[base + j + 1] = nxt.replace(imm=var.offset)
                self.map_refs.append(MapReference(base + j, kconfig.name, var.offset))
                return
            if sym.name in self.obj.ksyms:
                btf_id, btf_fd = self._ksym(fn, j, sym.name, False)
                # libbpf RELO_EXTERN_LD64 of a typed __ksym: BPF_PSEUDO_BTF_ID, imm id, next imm the BTF fd
                self.insns[base + j] = ins.replace(src=BPF_PSEUDO_BTF_ID, imm=btf_id)
                self.insns[base + j + 1] = nxt.replace(imm=btf_fd)
                return
            raise self._err(UnknownSymbol, f"ld_imm64 refers to undefined symbol '{sym.name}' (extern "
                            ".ksyms variables are not supported)", fn, j, sym.name, symbol_index=sym.index)
        sec = self.obj.section(sym.section_index)
        if sec is None:
            raise self._err(RelocationSectionNotFound, f"symbol '{sym.name}' is in section {sym.section_index}, "
                            "which does not exist", fn, j, sym.name, section_index=sym.section_index)
        addend = rel.addend or 0  # RELA: S + A; REL: the addend is the instruction's own imm
        if sec.is_executable:
            addr = sym.value + ins.imm + addend
            if addr % 8:
                raise self._err(InvalidRelocationOffset, f"function pointer to '{sym.name}'+{ins.imm} is not "
                                "aligned", fn, j, sym.name)
            callee = self.obj.function_at(sec.index, addr)
            if callee is None:
                raise self._err(UnknownFunction, f"function pointer to {sec.name}+{addr:#x} starts no function",
                                fn, j, sym.name, address=addr)
            pos = self.place(callee)
            self.insns[base + j] = ins.replace(src=BPF_PSEUDO_FUNC, imm=pos - (base + j) - 1)
            self.insns[base + j + 1] = nxt.replace(imm=0)
            return
        candidates = [m for m in self.obj.maps.values() if m.section_index == sec.index]
        if not candidates:
            raise self._err(UnsupportedRelocation, f"ld_imm64 refers to '{sym.name}' in section '{sec.name}', "
                            "which holds no map, data or code", fn, j, sym.name)
        if candidates[0].origin is MapOrigin.DATA:
            mdef = candidates[0]
            offset = sym.value + ins.imm + addend
            if not 0 <= offset <= mdef.value_size:
                raise self._err(InvalidRelocationOffset, f"offset {offset} is outside '{mdef.name}' "
                                f"({mdef.value_size} bytes)", fn, j, sym.name)
            fd = self._fd(mdef, fn, j)
            self.insns[base + j] = ins.replace(src=BPF_PSEUDO_MAP_VALUE, imm=fd)
            self.insns[base + j + 1] = nxt.replace(imm=offset)
            self.map_refs.append(MapReference(base + j, mdef.name, offset))
            return
        offset = sym.value + (ins.imm if sym.is_section else 0)
        found = next((m for m in candidates if m.offset == offset), None)
        if found is None:
            raise self._err(MapNotFound, f"no map at offset {offset} of section '{sec.name}'", fn, j, sym.name)
        fd = self._fd(found, fn, j)
        self.insns[base + j] = ins.replace(src=BPF_PSEUDO_MAP_FD, imm=fd)
        self.insns[base + j + 1] = nxt.replace(imm=0)
        self.map_refs.append(MapReference(base + j, found.name, None))

    def _ksym(self, fn: Function, j: int, name: str, is_func: bool) -> tuple[int, int]:
        what = "kfunc" if is_func else "__ksym variable"
        if self.resolve_ksym is None:
            raise self._err(UnknownSymbol, f"{what} '{name}' needs the kernel's BTF (no ksym resolver given)", fn, j,
                            name)
        try:
            return self.resolve_ksym(name, is_func)
        except LookupError:
            raise self._err(UnknownSymbol, f"{what} '{name}' is not in the kernel's BTF", fn, j, name) from None

    def _fd(self, mdef: MapDef, fn: Function, j: int) -> int:
        fd = self.map_fds.get(mdef.name)
        if fd is None:
            raise self._err(MapNotFound, f"no fd for map '{mdef.name}'", fn, j, mdef.name, map_name=mdef.name)
        return int(fd)


def link_program(obj: Object, name: str, *, map_fds: Mapping[str, int], allow_core: bool = False,
                 lenient: bool = False, resolve_ksym: KsymResolver | None = None) -> LinkedProgram:
    """Relocate program ``name`` and append the subprograms it reaches (see the module docstring).

    ``map_fds`` maps map names (as in ``obj.maps``) to fds. Raises a
    ``RelocationError`` subclass naming the file, section, symbol and call site.
    A program that needs CO-RE raises ``CoreRelocationsUnsupported`` unless
    ``allow_core`` (then the CO-RE sites are left as compiled). ``lenient`` (for
    ``inspect --disasm``) links whatever can be linked and lists the rest in
    ``LinkedProgram.problems`` instead of raising. ``resolve_ksym(name, is_func)``
    gives ``(btf_id, btf_fd_or_fd_array_index)`` for ``__ksym`` externs (kfunc calls
    and typed kernel variables), or raises ``LookupError``; without it they are errors.
    """
    prog = obj.programs.get(name)
    if prog is None:
        raise UnknownProgram(f"program '{name}' not found", path=obj.path, symbol=name)
    if not prog.section.known and not lenient:
        raise UnknownProgramSection(f"cannot load program '{name}': unknown program section '{prog.section_name}'",
                                    path=obj.path, section=prog.section_name, symbol=name)
    main = obj.function_at(prog.section_index, prog.address)
    if main is None:  # pragma: no cover - programs always have their function
        raise UnknownProgram(f"program '{name}' has no code", path=obj.path, symbol=name)
    linker = _Linker(obj, name, map_fds, lenient, resolve_ksym)
    linker.link(main)
    func_info: list[FuncInfo] = []
    line_info: list[LineInfo] = []
    core: list[tuple[Function, CoreReloRef]] = []
    for fn in linker.order:
        pos = linker.placed[(fn.section_index, fn.address)]
        func_info.extend(FuncInfo(f.insn_off + pos, f.type_id) for f in fn.func_info)
        line_info.extend(LineInfo(li.insn_off + pos, li.file_name_off, li.line_off, li.line_col, li.file_name,
                                  li.line) for li in fn.line_info)
        core.extend((fn, c) for c in fn.core_relos)
    if core and lenient and not allow_core:
        linker.problems.append(f"{len(core)} CO-RE relocation(s) left as compiled")
    elif core and not allow_core:
        fn, c = core[0]
        raise CoreRelocationsUnsupported(
            f"program needs {len(core)} CO-RE relocation(s) (first: {c.access_str!r} on BTF type "
            f"[{c.type_id}] in {fn.name}); applying CO-RE is not supported yet",
            path=obj.path, section=prog.section_name, symbol=name)
    return LinkedProgram(
        name=name, insns=linker.insns, func_info=func_info, line_info=line_info,
        subprograms=[f.name for f in linker.order[1:]], map_refs=linker.map_refs, big_endian=obj.big_endian,
        function_starts=[(f.name, linker.placed[(f.section_index, f.address)]) for f in linker.order],
        problems=linker.problems,
    )
