"""tinyaya: the Aya eBPF workflow from Python, with a bundled simulated Linux kernel."""
__version__ = "0.1.0"
