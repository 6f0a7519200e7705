"""The map types added beyond the core set, gathered for ``MAP_TYPES`` (maps/__init__.py).

LPM_TRIE, STACK_TRACE, the device, socket and cgroup maps, local storages,
USER_RINGBUF and ARENA: one module each (or per family), listed here so that
the registry takes them with one line.
"""
from __future__ import annotations

from .arena_user_ringbuf import ArenaMap, UserRingBufMap
from .base import BpfMap
from .local_storage import CgroupStorageMap, LocalStorageMap
from .lpm_trie import LpmTrieMap
from .netdev_maps import CpuMap, DevMap, XskMap
from .sock_maps import CgroupArrayMap, ReuseportSockArray, SockMap
from .stack_trace import StackTraceMap

__all__ = ["MORE_MAP_CLASSES"]

MORE_MAP_CLASSES: tuple[type[BpfMap], ...] = (LpmTrieMap, StackTraceMap, CgroupArrayMap, DevMap, CpuMap, XskMap, SockMap,
                                                 ReuseportSockArray, LocalStorageMap, CgroupStorageMap,
                                                 UserRingBufMap, ArenaMap)
