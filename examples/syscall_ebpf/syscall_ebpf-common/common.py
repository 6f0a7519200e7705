"""syscall_ebpf-common: the key and value layout shared with the eBPF program.

Mirrors syscall_ebpf_common.h: SYSCALL_LIST is a HASH of u32 syscall number -> u32 count.
"""
from __future__ import annotations

import ctypes

SyscallKey = ctypes.c_uint32
SyscallCount = ctypes.c_uint32
SYSCALL_LIST_MAX_ENTRIES = 1024
SYSCALL_WRITE = 1  # not counted, as in the DragonOS example
