"""``Stack`` (aya/src/maps/stack.rs): a LIFO with key_size 0; push/pop/peek."""
from __future__ import annotations

from ..uapi.bpf import BpfMapType
from .queue import _KeylessMap

__all__ = ["Stack"]


class Stack(_KeylessMap):
    MAP_TYPES = (BpfMapType.BPF_MAP_TYPE_STACK,)
