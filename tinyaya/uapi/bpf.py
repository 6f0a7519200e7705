"""uapi ``union bpf_attr`` and the info structs, as ctypes structures.

Layouts follow ``/usr/include/linux/bpf.h`` field for field; one structure per
command group, named after the anonymous struct it mirrors. Both sides of the
syscall boundary use these: user space (tinyaya.sys) packs them, the simulated
kernel unpacks them. ``BPF_ATTR_SIZE`` is ``sizeof(union bpf_attr)``.
"""
from __future__ import annotations

import ctypes
from ctypes import c_char, c_uint8, c_uint32, c_uint64
from enum import IntEnum, IntFlag

from ._enums import BpfAttachType, BpfCmd, BpfFuncId, BpfLinkType, BpfMapType, BpfProgType

__all__ = [
    "BpfAttachType", "BpfCmd", "BpfFuncId", "BpfLinkType", "BpfMapType", "BpfProgType",
    "BPF_OBJ_NAME_LEN", "BPF_TAG_SIZE", "BPF_ATTR_SIZE", "MapCreateAttr", "MapElemAttr",
    "MapBatchAttr", "ProgLoadAttr", "ObjAttr", "TestRunAttr", "GetIdAttr", "InfoAttr",
    "BtfLoadAttr", "LinkCreateAttr", "LinkDetachAttr", "EnableStatsAttr", "BPF_STATS_RUN_TIME", "RawTracepointAttr", "BpfMapInfo",
    "BpfProgInfo", "BpfBtfInfo", "BpfLinkInfo", "MapUpdateFlags", "MapFlags", "ProgLoadFlags",
    "PseudoSrc", "BPF_F_CURRENT_CPU", "BPF_F_INDEX_MASK", "BPF_F_CTXLEN_MASK", "attr_from",
    "BPF_MAP_TYPE_CGRP_STORAGE", "BPF_MAP_TYPE_ARENA",
]

BPF_OBJ_NAME_LEN = 16
BPF_TAG_SIZE = 8
BPF_ATTR_SIZE = 144  # sizeof(union bpf_attr) on Linux 6.x x86-64 (largest member: prog_load)

BPF_F_INDEX_MASK = 0xFFFFFFFF
BPF_F_CURRENT_CPU = BPF_F_INDEX_MASK
BPF_F_CTXLEN_MASK = 0xFFFFF << 32

#: ``enum bpf_map_type`` members newer than the header ``_enums.py`` was generated from (uapi linux/bpf.h, 6.2 / 6.9)
BPF_MAP_TYPE_CGRP_STORAGE = 32
BPF_MAP_TYPE_ARENA = 33


class MapUpdateFlags(IntFlag):
    """Flags of BPF_MAP_UPDATE_ELEM (``enum { BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK }``)."""

    BPF_ANY = 0
    BPF_NOEXIST = 1
    BPF_EXIST = 2
    BPF_F_LOCK = 4


class MapFlags(IntFlag):
    """map_flags of BPF_MAP_CREATE."""

    BPF_F_NO_PREALLOC = 1 << 0
    BPF_F_NO_COMMON_LRU = 1 << 1
    BPF_F_NUMA_NODE = 1 << 2
    BPF_F_RDONLY = 1 << 3
    BPF_F_WRONLY = 1 << 4
    BPF_F_STACK_BUILD_ID = 1 << 5
    BPF_F_ZERO_SEED = 1 << 6
    BPF_F_RDONLY_PROG = 1 << 7
    BPF_F_WRONLY_PROG = 1 << 8
    BPF_F_CLONE = 1 << 9
    BPF_F_MMAPABLE = 1 << 10
    BPF_F_PRESERVE_ELEMS = 1 << 11
    BPF_F_INNER_MAP = 1 << 12


class ProgLoadFlags(IntFlag):
    """prog_flags of BPF_PROG_LOAD."""

    BPF_F_STRICT_ALIGNMENT = 1 << 0
    BPF_F_ANY_ALIGNMENT = 1 << 1
    BPF_F_TEST_RND_HI32 = 1 << 2
    BPF_F_TEST_STATE_FREQ = 1 << 3
    BPF_F_SLEEPABLE = 1 << 4
    BPF_F_XDP_HAS_FRAGS = 1 << 5


class PseudoSrc(IntEnum):
    """src_reg values of ``ld_imm64`` (BPF_PSEUDO_*) and of BPF_CALL."""

    BPF_PSEUDO_MAP_FD = 1
    BPF_PSEUDO_MAP_VALUE = 2
    BPF_PSEUDO_BTF_ID = 3
    BPF_PSEUDO_FUNC = 4
    BPF_PSEUDO_MAP_IDX = 5
    BPF_PSEUDO_MAP_IDX_VALUE = 6


BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2


class _Attr(ctypes.Structure):
    """Base of the bpf_attr views: each is a prefix of the 8-aligned union."""

    _pack_ = 8


class MapCreateAttr(_Attr):
    _fields_ = [
        ("map_type", c_uint32), ("key_size", c_uint32), ("value_size", c_uint32),
        ("max_entries", c_uint32), ("map_flags", c_uint32), ("inner_map_fd", c_uint32),
        ("numa_node", c_uint32), ("map_name", c_char * BPF_OBJ_NAME_LEN),
        ("map_ifindex", c_uint32), ("btf_fd", c_uint32), ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32), ("btf_vmlinux_value_type_id", c_uint32),
        ("map_extra", c_uint64),
    ]


class MapElemAttr(_Attr):
    """BPF_MAP_*_ELEM; ``value`` doubles as ``next_key`` for GET_NEXT_KEY."""

    _fields_ = [("map_fd", c_uint32), ("key", c_uint64), ("value", c_uint64), ("flags", c_uint64)]

    @property
    def next_key(self) -> int:
        return int(self.value)


class MapBatchAttr(_Attr):
    _fields_ = [
        ("in_batch", c_uint64), ("out_batch", c_uint64), ("keys", c_uint64), ("values", c_uint64),
        ("count", c_uint32), ("map_fd", c_uint32), ("elem_flags", c_uint64), ("flags", c_uint64),
    ]


class ProgLoadAttr(_Attr):
    _fields_ = [
        ("prog_type", c_uint32), ("insn_cnt", c_uint32), ("insns", c_uint64), ("license", c_uint64),
        ("log_level", c_uint32), ("log_size", c_uint32), ("log_buf", c_uint64),
        ("kern_version", c_uint32), ("prog_flags", c_uint32), ("prog_name", c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", c_uint32), ("expected_attach_type", c_uint32), ("prog_btf_fd", c_uint32),
        ("func_info_rec_size", c_uint32), ("func_info", c_uint64), ("func_info_cnt", c_uint32),
        ("line_info_rec_size", c_uint32), ("line_info", c_uint64), ("line_info_cnt", c_uint32),
        ("attach_btf_id", c_uint32), ("attach_prog_fd", c_uint32), ("core_relo_cnt", c_uint32),
        ("fd_array", c_uint64), ("core_relos", c_uint64), ("core_relo_rec_size", c_uint32),
        ("log_true_size", c_uint32),
    ]


class ObjAttr(_Attr):
    """BPF_OBJ_PIN / BPF_OBJ_GET."""

    _fields_ = [("pathname", c_uint64), ("bpf_fd", c_uint32), ("file_flags", c_uint32), ("path_fd", c_uint32)]


class TestRunAttr(_Attr):
    """BPF_PROG_TEST_RUN (``attr.test``)."""

    _fields_ = [
        ("prog_fd", c_uint32), ("retval", c_uint32), ("data_size_in", c_uint32), ("data_size_out", c_uint32),
        ("data_in", c_uint64), ("data_out", c_uint64), ("repeat", c_uint32), ("duration", c_uint32),
        ("ctx_size_in", c_uint32), ("ctx_size_out", c_uint32), ("ctx_in", c_uint64), ("ctx_out", c_uint64),
        ("flags", c_uint32), ("cpu", c_uint32), ("batch_size", c_uint32),
    ]


class GetIdAttr(_Attr):
    """BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID: ``start_id`` is also prog_id/map_id/btf_id/link_id."""

    _fields_ = [("start_id", c_uint32), ("next_id", c_uint32), ("open_flags", c_uint32)]


class InfoAttr(_Attr):
    """BPF_OBJ_GET_INFO_BY_FD (``attr.info``)."""

    _fields_ = [("bpf_fd", c_uint32), ("info_len", c_uint32), ("info", c_uint64)]


class BtfLoadAttr(_Attr):
    _fields_ = [
        ("btf", c_uint64), ("btf_log_buf", c_uint64), ("btf_size", c_uint32),
        ("btf_log_size", c_uint32), ("btf_log_level", c_uint32), ("btf_log_true_size", c_uint32),
    ]


class RawTracepointAttr(_Attr):
    _fields_ = [("name", c_uint64), ("prog_fd", c_uint32)]


class LinkCreateAttr(_Attr):
    """BPF_LINK_CREATE; ``bpf_cookie`` is ``link_create.perf_event.bpf_cookie`` (offset 16)."""

    _fields_ = [
        ("prog_fd", c_uint32), ("target_fd", c_uint32), ("attach_type", c_uint32), ("flags", c_uint32),
        ("bpf_cookie", c_uint64),
    ]


class EnableStatsAttr(_Attr):
    """BPF_ENABLE_STATS (``attr.enable_stats``): type BPF_STATS_RUN_TIME (0)."""

    _fields_ = [("type", c_uint32)]


BPF_STATS_RUN_TIME = 0


class LinkDetachAttr(_Attr):
    _fields_ = [("link_fd", c_uint32)]


class BpfMapInfo(_Attr):
    _fields_ = [
        ("type", c_uint32), ("id", c_uint32), ("key_size", c_uint32), ("value_size", c_uint32),
        ("max_entries", c_uint32), ("map_flags", c_uint32), ("name", c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_uint32), ("btf_vmlinux_value_type_id", c_uint32), ("netns_dev", c_uint64),
        ("netns_ino", c_uint64), ("btf_id", c_uint32), ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32), ("_pad", c_uint32), ("map_extra", c_uint64),
    ]


class BpfProgInfo(_Attr):
    _fields_ = [
        ("type", c_uint32), ("id", c_uint32), ("tag", c_uint8 * BPF_TAG_SIZE),
        ("jited_prog_len", c_uint32), ("xlated_prog_len", c_uint32),
        ("jited_prog_insns", c_uint64), ("xlated_prog_insns", c_uint64), ("load_time", c_uint64),
        ("created_by_uid", c_uint32), ("nr_map_ids", c_uint32), ("map_ids", c_uint64),
        ("name", c_char * BPF_OBJ_NAME_LEN), ("ifindex", c_uint32), ("gpl_compatible", c_uint32),
        ("netns_dev", c_uint64), ("netns_ino", c_uint64), ("nr_jited_ksyms", c_uint32),
        ("nr_jited_func_lens", c_uint32), ("jited_ksyms", c_uint64), ("jited_func_lens", c_uint64),
        ("btf_id", c_uint32), ("func_info_rec_size", c_uint32), ("func_info", c_uint64),
        ("nr_func_info", c_uint32), ("nr_line_info", c_uint32), ("line_info", c_uint64),
        ("jited_line_info", c_uint64), ("nr_jited_line_info", c_uint32), ("line_info_rec_size", c_uint32),
        ("jited_line_info_rec_size", c_uint32), ("nr_prog_tags", c_uint32), ("prog_tags", c_uint64),
        ("run_time_ns", c_uint64), ("run_cnt", c_uint64), ("recursion_misses", c_uint64),
        ("verified_insns", c_uint32), ("attach_btf_obj_id", c_uint32), ("attach_btf_id", c_uint32),
        ("_pad", c_uint32),
    ]


class BpfBtfInfo(_Attr):
    _fields_ = [
        ("btf", c_uint64), ("btf_size", c_uint32), ("id", c_uint32), ("name", c_uint64),
        ("name_len", c_uint32), ("kernel_btf", c_uint32),
    ]


class BpfLinkInfo(_Attr):
    """The fixed head of ``struct bpf_link_info`` (type, id, prog_id) plus the union's first 32 bytes."""

    _fields_ = [("type", c_uint32), ("id", c_uint32), ("prog_id", c_uint32), ("_pad", c_uint32),
                ("union", c_uint8 * 32)]


def attr_from(cls: type[_Attr], attr: bytes | bytearray | memoryview) -> _Attr:
    """Read a command's struct from the first bytes of ``attr``, zero-padding a short attr.

    Linux accepts an attr shorter than the union (it zero-fills the rest) and
    rejects a longer one whose tail is not zero (E2BIG); callers check the tail.
    """
    size = ctypes.sizeof(cls)
    raw = bytes(attr[:size])
    if len(raw) < size:
        raw += bytes(size - len(raw))
    return cls.from_buffer_copy(raw)
