"""Where BTF-typed programs attach: ``attach_btf_id`` from the kernel's vmlinux BTF.

fentry/fexit/fmod_ret, tp_btf, lsm and iter programs name their target in
the section; BPF_PROG_LOAD needs the BTF id of that target in
``/sys/kernel/btf/vmlinux`` (libbpf ``find_attach_btf_id``/``find_btf_by_prefix_kind``,
aya ``FEntry::load(fn_name, &btf)``). The names looked up, per kind:

* fentry, fexit, fmod_ret: the ``FUNC`` named after the target;
* tp_btf: the ``TYPEDEF`` ``btf_trace_<target>``;
* lsm: the ``FUNC`` ``bpf_lsm_<target>``;
* iter: the ``FUNC`` ``bpf_iter_<target>``.

vmlinux BTF is parsed once per ``VmlinuxBtf`` (a couple of seconds in Python),
only when a program needs it.
"""
from __future__ import annotations

import errno

from ..kernel import Kernel
from ..obj.btf.types import Btf, BtfKind
from .errors import AttachError

__all__ = ["VmlinuxBtf", "VMLINUX_BTF", "btf_target_name"]

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"

_PREFIX: dict[str, tuple[str, BtfKind]] = {
    "fentry": ("", BtfKind.FUNC), "fexit": ("", BtfKind.FUNC), "fmod_ret": ("", BtfKind.FUNC),
    "tp_btf": ("btf_trace_", BtfKind.TYPEDEF), "lsm": ("bpf_lsm_", BtfKind.FUNC), "iter": ("bpf_iter_", BtfKind.FUNC),
}


def btf_target_name(kind: str, target: str) -> tuple[str, BtfKind] | None:
    """The vmlinux BTF name and kind a section kind's target resolves to, or None for other kinds."""
    entry = _PREFIX.get(kind)
    if entry is None:
        return None
    prefix, btf_kind = entry
    return prefix + target, btf_kind


class VmlinuxBtf:
    """The kernel's BTF, read through ``kernel.read_file`` and parsed on first use."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._btf: Btf | None = None
        self._missing = False

    def btf(self) -> Btf | None:
        if self._btf is None and not self._missing:
            try:
                self._btf = Btf.parse(self.kernel.read_file(VMLINUX_BTF))
            except OSError:
                self._missing = True
        return self._btf

    def attach_btf_id(self, kind: str, target: str) -> int:
        """The id of the target; 0 when the kernel has no BTF (it then decides); ``AttachError``
        naming what was looked for when the BTF lacks it."""
        want = btf_target_name(kind, target)
        if want is None:
            return 0
        name, btf_kind = want
        btf = self.btf()
        if btf is None:
            return 0
        t = btf.find(name, btf_kind)
        if t is None:
            raise AttachError(errno.ESRCH, f"{kind}/{target}: no {btf_kind.name} {name!r} in the kernel's BTF")
        return int(t.id)
