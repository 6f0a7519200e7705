"""``KProbe`` and ``UProbe`` (aya/src/programs/kprobe.rs, uprobe.rs, probe.rs).

Attaching opens a probe perf event through the ``kprobe``/``uprobe`` PMU
(type from ``/sys/bus/event_source/devices/<pmu>/type``, the retprobe bit from
``…/format/retprobe``), then attaches the program to it with a perf link or
PERF_EVENT_IOC_SET_BPF. A kernel without the PMU gets ``AttachError`` with a
one-line reason.
"""
from __future__ import annotations

import errno
from enum import Enum
from typing import Any

from .. import sys as bpfsys
from ..uapi.bpf import BpfProgType
from .errors import AttachError, ProgramSyscallError
from .links import LinkId, perf_attach
from .program import Program

__all__ = ["ProbeKind", "KProbe", "UProbe"]


class ProbeKind(Enum):
    """aya's ``ProbeKind``: an entry probe or a return probe."""

    KProbe = "kprobe"
    KRetProbe = "kretprobe"
    UProbe = "uprobe"
    URetProbe = "uretprobe"

    @property
    def is_retprobe(self) -> bool:
        return self in (ProbeKind.KRetProbe, ProbeKind.URetProbe)


def _open_probe(kernel: Any, pmu: str, name: str, offset: int, retprobe: bool, pid: int | None) -> int:
    try:
        return bpfsys.perf_event_open_probe(kernel, name, offset, retprobe=retprobe, pmu=pmu, pid=pid)
    except bpfsys.ProbeUnsupported as e:
        raise AttachError(e.errno or errno.ENOENT, str(e.strerror))
    except OSError as e:
        what = f"{'ret' if retprobe else ''}{pmu} {name}+{offset}"
        if e.errno == errno.ENOENT:
            raise AttachError(errno.ENOENT, f"cannot attach {what}: no such {'function' if pmu == 'kprobe' else 'target'}"
                                            f" {name!r}")
        raise ProgramSyscallError(f"perf_event_open({what})", e)


class KProbe(Program):
    """A kprobe or kretprobe program. ``attach(fn_name, offset)`` returns a link id."""

    PROG_TYPE = BpfProgType.BPF_PROG_TYPE_KPROBE

    def __init__(self, *args: Any, kind: ProbeKind | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kind is None:
            kind = ProbeKind.KRetProbe if self.section is not None and self.section.is_retprobe else ProbeKind.KProbe
        self.kind = kind

    def attach(self, fn_name: str, offset: int = 0) -> LinkId:
        prog_fd = self._require_fd()
        retprobe = self.kind.is_retprobe
        perf_fd = _open_probe(self.kernel, bpfsys.KPROBE_PMU, fn_name, offset, retprobe, None)
        target = f"{'kretprobe' if retprobe else 'kprobe'} {fn_name}+{offset}"
        return self._add_link(perf_attach(self.kernel, prog_fd, perf_fd, target))


class UProbe(Program):
    """A uprobe or uretprobe. ``attach(fn_name, offset, target, pid)``: ``fn_name`` is resolved in
    ``target``'s ELF symbol table (pyelftools) when given; the probe sits at symbol offset + ``offset``."""

    PROG_TYPE = BpfProgType.BPF_PROG_TYPE_KPROBE

    def __init__(self, *args: Any, kind: ProbeKind | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kind is None:
            kind = ProbeKind.URetProbe if self.section is not None and self.section.is_retprobe else ProbeKind.UProbe
        self.kind = kind

    def attach(self, fn_name: str | None, offset: int, target: str, pid: int | None = None) -> LinkId:
        prog_fd = self._require_fd()
        file_offset = offset + (_symbol_file_offset(target, fn_name) if fn_name else 0)
        retprobe = self.kind.is_retprobe
        perf_fd = _open_probe(self.kernel, bpfsys.UPROBE_PMU, target, file_offset, retprobe, pid)
        where = f"{'uretprobe' if retprobe else 'uprobe'} {target}:{fn_name or ''}+{offset}"
        return self._add_link(perf_attach(self.kernel, prog_fd, perf_fd, where))


def _symbol_file_offset(path: str, symbol: str) -> int:
    """The file offset of ``symbol`` in an ELF (st_value minus its segment's vaddr, plus the segment's offset)."""
    try:
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as f:
            elf = ELFFile(f)
            for secname in (".symtab", ".dynsym"):
                sec = elf.get_section_by_name(secname)
                if sec is None:
                    continue
                for sym in sec.iter_symbols():  # type: ignore[attr-defined]
                    if sym.name == symbol and sym["st_value"]:
                        addr = int(sym["st_value"])
                        for seg in elf.iter_segments():
                            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= addr < seg["p_vaddr"] + seg["p_memsz"]:
                                return addr - int(seg["p_vaddr"]) + int(seg["p_offset"])
                        return addr
    except OSError as e:
        raise AttachError(e.errno or errno.ENOENT, f"cannot read {path}: {e.strerror}")
    except Exception as e:  # a malformed ELF
        raise AttachError(errno.EINVAL, f"cannot read symbols of {path}: {e}")
    raise AttachError(errno.ENOENT, f"symbol {symbol!r} not found in {path}")
