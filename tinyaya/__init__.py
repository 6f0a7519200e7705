"""tinyaya: the Aya eBPF workflow from Python, with a bundled simulated Linux kernel."""
__version__ = "0.1.0"

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .programs import Ebpf, EbpfLoader, EbpfLogger

__all__ = ["Ebpf", "EbpfLoader", "EbpfLogger", "__version__"]

# ``from tinyaya import Ebpf, EbpfLoader, EbpfLogger``: resolved lazily, so importing tinyaya stays cheap
_PROGRAMS_EXPORTS = ("Ebpf", "EbpfLoader", "EbpfLogger")


def __getattr__(name: str) -> object:
    if name in _PROGRAMS_EXPORTS:
        from . import programs

        return getattr(programs, name)
    raise AttributeError(f"module 'tinyaya' has no attribute {name!r}")
