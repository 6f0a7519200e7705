"""``Program``: what every program type shares (aya/src/programs/mod.rs ``ProgramData`` and ``load_program``).

A program comes from the loader already relocated (a ``LinkedProgram``) and
is loaded into the kernel on ``load()``, as in aya. Attaching is per type
(``KProbe.attach(fn_name, offset)``, ``TracePoint.attach(category, name)``…);
every attach returns a link id, which ``detach`` and ``take_link`` take.
``unload`` detaches every link and closes the program fd.
"""
from __future__ import annotations

import errno
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from .. import sys as bpfsys
from ..kernel import Kernel
from ..uapi.bpf import BpfProgInfo, BpfProgType, ProgLoadFlags
from .btf_target import VmlinuxBtf, btf_target_name
from .errors import (
    AlreadyLoaded,
    LoadError,
    NotAttached,
    NotLoaded,
    ProgramSyscallError,
    RelocationFailed,
    UnexpectedProgramType,
    Unsupported,
)
from .links import Link, LinkId

if TYPE_CHECKING:
    from ..obj import LinkedProgram, ProgramSection

__all__ = ["Program", "TestRunResult"]

TestRunResult = bpfsys.TestRunResult


_NAME_OK = re.compile(r"[^A-Za-z0-9_.]")


def kernel_prog_name(name: str) -> str:
    """The name BPF_PROG_LOAD gets: characters the kernel rejects (``bpf_obj_name_cpy`` allows
    alphanumerics, ``_`` and ``.``) become ``_``, and it is cut to BPF_OBJ_NAME_LEN - 1 bytes."""
    return _NAME_OK.sub("_", name)[:15]


def _section_flags(section: ProgramSection | None, prog_type: int) -> int:
    flags = 0
    if (section is not None and section.sleepable) or prog_type == BpfProgType.BPF_PROG_TYPE_SYSCALL:
        flags |= ProgLoadFlags.BPF_F_SLEEPABLE
    if section is not None and section.frags:
        flags |= ProgLoadFlags.BPF_F_XDP_HAS_FRAGS
    return int(flags)


class Program:
    """A program of any type: ``load``, ``unload``, ``pin``, ``from_pin``, ``test_run``, ``detach``, ``take_link``."""

    #: the BPF_PROG_TYPE_* this class loads as (None: whatever the section says)
    PROG_TYPE: ClassVar[int | None] = None

    def __init__(
        self,
        name: str,
        kernel: Kernel,
        *,
        linked: LinkedProgram | None = None,
        section: ProgramSection | None = None,
        prog_type: int | None = None,
        license: str = "GPL",
        kern_version: int = 0,
        expected_attach_type: int = 0,
        verifier_log_level: int = 0,
        fd: int | None = None,
        btf_fd: int | None = None,
        prog_flags: int | None = None,
        vmlinux: VmlinuxBtf | None = None,
    ) -> None:
        self.name = name
        self.kernel = kernel
        self.linked = linked
        self.section = section
        self.prog_type = int(prog_type if prog_type is not None else (
            self.PROG_TYPE if self.PROG_TYPE is not None else (section.prog_type if section else 0)))
        self.license = license
        self.kern_version = kern_version
        self.expected_attach_type = expected_attach_type
        self.verifier_log_level = verifier_log_level
        #: the object's BTF fd: func_info and line_info go with the program when it is set
        self.btf_fd = btf_fd
        #: the verifier's log of the last successful load when verifier_log_level > 0
        self.verifier_log = ""
        self.fd: int | None = fd
        self.pinned_path: str | None = None
        self._links: dict[LinkId, Link] = {}
        self._next_link_id = 1
        #: BPF_F_SLEEPABLE for ``.s`` sections and SYSCALL programs, BPF_F_XDP_HAS_FRAGS for ``.frags``
        self.prog_flags = prog_flags if prog_flags is not None else _section_flags(section, self.prog_type)
        #: the kernel's BTF, for the attach_btf_id of fentry/fexit/tp_btf/lsm/iter programs
        self.vmlinux = vmlinux
        #: called with the program after a successful load (the loader fills PROG_ARRAY slots with it)
        self.on_load: list[Callable[[Program], None]] = []
        #: why the loader could not link this program (raised by load(), as aya's ProgramError)
        self.link_error: Exception | None = None

    @classmethod
    def try_from(cls, program: Program) -> Any:
        """aya's ``let p: &mut KProbe = program.try_into()?``: the same object, checked to be a ``cls``."""
        if not isinstance(program, cls):
            raise UnexpectedProgramType(program.name, cls.__name__, type(program).__name__)
        return program

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.fd is not None

    def _require_fd(self) -> int:
        if self.fd is None:
            raise NotLoaded(self.name)
        return self.fd

    def load(self) -> None:
        """BPF_PROG_LOAD; on rejection raises ``LoadError`` with the verifier log."""
        if self.fd is not None:
            raise AlreadyLoaded(self.name)
        if self.link_error is not None:
            raise RelocationFailed(str(self.link_error)) from self.link_error
        if self.linked is None:
            raise Unsupported(f"program {self.name} has no instructions to load (opened from a pin?)")
        log: list[str] = []
        linked = self.linked
        common: dict[str, Any] = dict(
            name=kernel_prog_name(self.name), expected_attach_type=self.expected_attach_type,
            kern_version=self.kern_version, prog_flags=self.prog_flags, attach_btf_id=self._attach_btf_id(),
            log_level=self.verifier_log_level, log_out=log,
        )
        btf: dict[str, Any] = {}
        if self.btf_fd is not None and linked.func_info:
            btf = dict(prog_btf_fd=self.btf_fd, func_info=linked.func_info_bytes(),
                       func_info_rec_size=linked.func_info_rec_size, line_info=linked.line_info_bytes(),
                       line_info_rec_size=linked.line_info_rec_size)
        code = linked.insn_bytes()
        try:
            try:
                self.fd = bpfsys.bpf_prog_load(self.kernel, self.prog_type, code, self.license, **common, **btf)
            except bpfsys.ProgLoadError as first:
                if not btf:
                    raise
                try:  # the BTF info may be what the kernel refused: try once without it, as a fallback
                    self.fd = bpfsys.bpf_prog_load(self.kernel, self.prog_type, code, self.license, **common)
                except bpfsys.ProgLoadError:
                    raise first from None
        except bpfsys.ProgLoadError as e:
            raise LoadError(self.name, e.errno or errno.EINVAL, e.verifier_log)
        self.verifier_log = log[0] if log else ""
        for hook in self.on_load:
            hook(self)

    def _attach_btf_id(self) -> int:
        sec = self.section
        if sec is None or not sec.attach_btf or not sec.attach_target or self.vmlinux is None:
            return 0
        if btf_target_name(sec.kind, sec.attach_target) is None:
            return 0
        return self.vmlinux.attach_btf_id(sec.kind, sec.attach_target)

    def unload(self) -> None:
        """Detach every link this program still owns and close its fd."""
        fd = self._require_fd()
        for link_id in list(self._links):
            self.detach(link_id)
        self.fd = None
        self.kernel.close(fd)

    def close(self) -> None:
        """Unload if loaded; safe to call twice."""
        if self.fd is not None:
            self.unload()

    # -- links ------------------------------------------------------------------------------------------

    def _add_link(self, link: Link) -> LinkId:
        link_id = self._next_link_id
        self._next_link_id += 1
        self._links[link_id] = link
        return link_id

    def detach(self, link_id: LinkId) -> None:
        link = self._links.pop(link_id, None)
        if link is None:
            raise NotAttached(link_id)
        link.detach()

    def take_link(self, link_id: LinkId) -> Link:
        """Take ownership of a link: it outlives ``unload``; call ``link.detach()`` when done."""
        link = self._links.pop(link_id, None)
        if link is None:
            raise NotAttached(link_id)
        return link

    @property
    def links(self) -> dict[LinkId, Link]:
        return dict(self._links)

    # -- pins, info, test runs --------------------------------------------------------------------------

    def pin(self, path: str) -> None:
        fd = self._require_fd()
        try:
            bpfsys.bpf_obj_pin(self.kernel, fd, path)
        except OSError as e:
            raise ProgramSyscallError(f"BPF_OBJ_PIN {path}", e)
        self.pinned_path = path

    @classmethod
    def from_pin(cls, path: str, kernel: Kernel | None = None, **kwargs: Any) -> Program:
        """Open a pinned program (BPF_OBJ_GET); it can be attached and test-run, not reloaded."""
        if kernel is None:
            from ..maps.base import _default_kernel

            kernel = _default_kernel()
        try:
            fd = bpfsys.bpf_obj_get(kernel, path)
        except OSError as e:
            raise ProgramSyscallError(f"BPF_OBJ_GET {path}", e)
        try:
            info = bpfsys.bpf_prog_get_info_by_fd(kernel, fd)[0]
        except OSError as e:
            kernel.close(fd)
            raise ProgramSyscallError("BPF_OBJ_GET_INFO_BY_FD", e)
        name = bytes(info.name).split(b"\0")[0].decode(errors="replace")
        prog = cls(name, kernel, prog_type=int(info.type), fd=fd, **kwargs)
        prog.pinned_path = path
        return prog

    def info(self) -> BpfProgInfo:
        fd = self._require_fd()
        try:
            return bpfsys.bpf_prog_get_info_by_fd(self.kernel, fd)[0]
        except OSError as e:
            raise ProgramSyscallError("BPF_OBJ_GET_INFO_BY_FD", e)

    @property
    def id(self) -> int:
        return int(self.info().id)

    def test_run(self, data: bytes | None = None, ctx: bytes | None = None, repeat: int = 1, *,
                 data_size_out: int | None = None, ctx_size_out: int | None = None, flags: int = 0,
                 cpu: int = 0) -> bpfsys.TestRunResult:
        """BPF_PROG_TEST_RUN: ``retval``, ``duration``, ``data_out``, ``ctx_out``."""
        fd = self._require_fd()
        try:
            return bpfsys.bpf_prog_test_run(self.kernel, fd, data=data, ctx=ctx, repeat=repeat,
                                            data_size_out=data_size_out, ctx_size_out=ctx_size_out,
                                            flags=flags, cpu=cpu)
        except OSError as e:
            raise ProgramSyscallError("BPF_PROG_TEST_RUN", e)

    @property
    def prog_type_name(self) -> str:
        try:
            return BpfProgType(self.prog_type).name.removeprefix("BPF_PROG_TYPE_").lower()
        except ValueError:
            return str(self.prog_type)

    def __repr__(self) -> str:
        state = f"fd={self.fd}" if self.fd is not None else "not loaded"
        return f"{type(self).__name__}({self.name!r}, {self.prog_type_name}, {state}, links={len(self._links)})"
