"""Aya-shaped user-space maps (aya/src/maps): one small module per map type.

Wrap a map of a loaded object or a pinned map::

    counts = HashMap(ebpf.map_mut("SYSCALL_LIST"), key=u32, value=u32)
    for syscall, count in counts.items(): ...
    arr = Array.from_pin("/sys/fs/bpf/x", kernel, value=u64)
"""
from .array import Array, PerCpuArray
from .base import MapData, TypedMap
from .bloom_filter import BloomFilter
from .codec import Codec, CtypesCodec, IntCodec, Raw, StructCodec, as_codec, i8, i16, i32, i64, u8, u16, u32, u64
from .errors import (
    ElementNotFound,
    InvalidKeySize,
    InvalidMapType,
    InvalidName,
    InvalidValueSize,
    KeyNotFound,
    MapError,
    NotFound,
    OutOfBounds,
    PinError,
    ProgramNotLoaded,
    SyscallError,
    Unsupported,
)
from .hash_map import HashMap, LruHashMap, PerCpuHashMap
from .lpm_trie import LpmKeyCodec, LpmTrie
from .of_maps import ArrayOfMaps, HashOfMaps
from .per_cpu import PerCpuValues
from .perf import AsyncPerfEventArray, Events, PerfBuffer, PerfBufferError, PerfEventArray
from .program_array import ProgramArray
from .queue import Queue
from .ring_buf import RingBuf
from .stack import Stack
from .stack_trace import StackTraceMap

Map = MapData

__all__ = [
    "Array", "PerCpuArray", "MapData", "Map", "TypedMap", "BloomFilter", "Codec", "CtypesCodec", "IntCodec",
    "Raw", "StructCodec", "as_codec", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "ElementNotFound",
    "InvalidKeySize", "InvalidMapType", "InvalidName", "InvalidValueSize", "KeyNotFound", "MapError", "NotFound",
    "OutOfBounds", "PinError", "ProgramNotLoaded", "SyscallError", "Unsupported", "HashMap", "LruHashMap",
    "PerCpuHashMap", "ArrayOfMaps", "HashOfMaps", "PerCpuValues", "AsyncPerfEventArray", "Events", "PerfBuffer",
    "PerfBufferError", "PerfEventArray", "ProgramArray", "Queue", "RingBuf", "Stack",
    "LpmTrie", "LpmKeyCodec", "StackTraceMap",
]
