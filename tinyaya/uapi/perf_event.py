"""uapi ``<linux/perf_event.h>``: ``struct perf_event_attr``, the mmap'd ring's
``struct perf_event_mmap_page``, record headers, and the constants tinyaya uses.

Layouts follow ``/usr/include/linux/perf_event.h`` field for field (Linux 6.x,
``PERF_ATTR_SIZE_VER8`` = 136 bytes). Both sides of the syscall boundary use
them: user space packs a ``PerfEventAttr`` for perf_event_open(2), the
simulated kernel reads it back, and both read the ring header through
``PerfEventMmapPage`` offsets.
"""
from __future__ import annotations

import ctypes
from ctypes import c_uint16, c_uint32, c_uint64
from enum import IntEnum, IntFlag

__all__ = [
    "PerfTypeId", "PerfSwIds", "PerfSampleFormat", "PerfEventType", "PerfEventAttr", "PerfEventHeader",
    "PerfEventMmapPage", "PERF_ATTR_SIZE_VER0", "PERF_ATTR_SIZE_VER8", "PERF_FLAG_FD_NO_GROUP",
    "PERF_FLAG_FD_OUTPUT", "PERF_FLAG_PID_CGROUP", "PERF_FLAG_FD_CLOEXEC", "PERF_EVENT_IOC_ENABLE",
    "PERF_EVENT_IOC_DISABLE", "PERF_EVENT_IOC_SET_BPF", "PERF_EVENT_IOC_RESET", "PERF_EVENT_IOC_ID",
    "PERF_EVENT_IOC_PAUSE_OUTPUT", "PAGE_SIZE", "ATTR_FLAG_DISABLED", "ATTR_FLAG_INHERIT",
    "ATTR_FLAG_FREQ", "ATTR_FLAG_WATERMARK", "MMAP_PAGE_DATA_HEAD", "MMAP_PAGE_DATA_TAIL",
    "MMAP_PAGE_DATA_OFFSET", "MMAP_PAGE_DATA_SIZE", "PERF_RECORD_MISC_KERNEL", "PERF_RECORD_MISC_USER",
]

PAGE_SIZE = 4096


class PerfTypeId(IntEnum):
    """``enum perf_type_id``: attr.type. Dynamic PMUs (kprobe, uprobe) get a type read from sysfs."""

    PERF_TYPE_HARDWARE = 0
    PERF_TYPE_SOFTWARE = 1
    PERF_TYPE_TRACEPOINT = 2
    PERF_TYPE_HW_CACHE = 3
    PERF_TYPE_RAW = 4
    PERF_TYPE_BREAKPOINT = 5


class PerfSwIds(IntEnum):
    """``enum perf_sw_ids``: attr.config for PERF_TYPE_SOFTWARE."""

    PERF_COUNT_SW_CPU_CLOCK = 0
    PERF_COUNT_SW_TASK_CLOCK = 1
    PERF_COUNT_SW_PAGE_FAULTS = 2
    PERF_COUNT_SW_CONTEXT_SWITCHES = 3
    PERF_COUNT_SW_CPU_MIGRATIONS = 4
    PERF_COUNT_SW_PAGE_FAULTS_MIN = 5
    PERF_COUNT_SW_PAGE_FAULTS_MAJ = 6
    PERF_COUNT_SW_ALIGNMENT_FAULTS = 7
    PERF_COUNT_SW_EMULATION_FAULTS = 8
    PERF_COUNT_SW_DUMMY = 9
    PERF_COUNT_SW_BPF_OUTPUT = 10
    PERF_COUNT_SW_CGROUP_SWITCHES = 11


class PerfSampleFormat(IntFlag):
    """``enum perf_event_sample_format``: attr.sample_type bits."""

    PERF_SAMPLE_IP = 1 << 0
    PERF_SAMPLE_TID = 1 << 1
    PERF_SAMPLE_TIME = 1 << 2
    PERF_SAMPLE_ADDR = 1 << 3
    PERF_SAMPLE_READ = 1 << 4
    PERF_SAMPLE_CALLCHAIN = 1 << 5
    PERF_SAMPLE_ID = 1 << 6
    PERF_SAMPLE_CPU = 1 << 7
    PERF_SAMPLE_PERIOD = 1 << 8
    PERF_SAMPLE_STREAM_ID = 1 << 9
    PERF_SAMPLE_RAW = 1 << 10


class PerfEventType(IntEnum):
    """``enum perf_event_type``: perf_event_header.type of records in the ring."""

    PERF_RECORD_MMAP = 1
    PERF_RECORD_LOST = 2
    PERF_RECORD_COMM = 3
    PERF_RECORD_EXIT = 4
    PERF_RECORD_THROTTLE = 5
    PERF_RECORD_UNTHROTTLE = 6
    PERF_RECORD_FORK = 7
    PERF_RECORD_READ = 8
    PERF_RECORD_SAMPLE = 9


PERF_RECORD_MISC_KERNEL = 1
PERF_RECORD_MISC_USER = 2

#: perf_event_open(2) flags
PERF_FLAG_FD_NO_GROUP = 1 << 0
PERF_FLAG_FD_OUTPUT = 1 << 1
PERF_FLAG_PID_CGROUP = 1 << 2
PERF_FLAG_FD_CLOEXEC = 1 << 3

#: sizeof(struct perf_event_attr) for the first and the current ABI versions
PERF_ATTR_SIZE_VER0 = 64
PERF_ATTR_SIZE_VER8 = 136


def _io(nr: int) -> int:
    return (ord("$") << 8) | nr


def _iow(nr: int, size: int) -> int:
    return (1 << 30) | (size << 16) | (ord("$") << 8) | nr


def _ior(nr: int, size: int) -> int:
    return (2 << 30) | (size << 16) | (ord("$") << 8) | nr


#: ioctl requests (``_IO('$', 0)`` …), as <linux/perf_event.h> defines them on x86-64
PERF_EVENT_IOC_ENABLE = _io(0)
PERF_EVENT_IOC_DISABLE = _io(1)
PERF_EVENT_IOC_REFRESH = _io(2)
PERF_EVENT_IOC_RESET = _io(3)
PERF_EVENT_IOC_PERIOD = _iow(4, 8)
PERF_EVENT_IOC_SET_OUTPUT = _io(5)
PERF_EVENT_IOC_SET_FILTER = _iow(6, 8)
PERF_EVENT_IOC_ID = _ior(7, 8)
PERF_EVENT_IOC_SET_BPF = _iow(8, 4)
PERF_EVENT_IOC_PAUSE_OUTPUT = _iow(9, 4)

#: bits of the attr's flag word (the bitfield after read_format), in declaration order
ATTR_FLAG_DISABLED = 1 << 0
ATTR_FLAG_INHERIT = 1 << 1
ATTR_FLAG_PINNED = 1 << 2
ATTR_FLAG_EXCLUSIVE = 1 << 3
ATTR_FLAG_EXCLUDE_USER = 1 << 4
ATTR_FLAG_EXCLUDE_KERNEL = 1 << 5
ATTR_FLAG_EXCLUDE_HV = 1 << 6
ATTR_FLAG_EXCLUDE_IDLE = 1 << 7
ATTR_FLAG_MMAP = 1 << 8
ATTR_FLAG_COMM = 1 << 9
ATTR_FLAG_FREQ = 1 << 10
ATTR_FLAG_INHERIT_STAT = 1 << 11
ATTR_FLAG_ENABLE_ON_EXEC = 1 << 12
ATTR_FLAG_TASK = 1 << 13
ATTR_FLAG_WATERMARK = 1 << 14
ATTR_FLAG_SAMPLE_ID_ALL = 1 << 18


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` (PERF_ATTR_SIZE_VER8, 136 bytes).

    The C bitfield word (disabled, inherit, … ) is ``flags`` here (ATTR_FLAG_*).
    Unions are named after their first member: ``sample_period`` (/ sample_freq),
    ``wakeup_events`` (/ wakeup_watermark), ``config1`` (/ bp_addr, kprobe_func,
    uprobe_path), ``config2`` (/ bp_len, kprobe_addr, probe_offset).
    """

    _fields_ = [
        ("type", c_uint32),
        ("size", c_uint32),
        ("config", c_uint64),
        ("sample_period", c_uint64),
        ("sample_type", c_uint64),
        ("read_format", c_uint64),
        ("flags", c_uint64),
        ("wakeup_events", c_uint32),
        ("bp_type", c_uint32),
        ("config1", c_uint64),
        ("config2", c_uint64),
        ("branch_sample_type", c_uint64),
        ("sample_regs_user", c_uint64),
        ("sample_stack_user", c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", c_uint64),
        ("aux_watermark", c_uint32),
        ("sample_max_stack", c_uint16),
        ("__reserved_2", c_uint16),
        ("aux_sample_size", c_uint32),
        ("__reserved_3", c_uint32),
        ("sig_data", c_uint64),
        ("config3", c_uint64),
    ]


class PerfEventHeader(ctypes.Structure):
    """``struct perf_event_header``: every record in the ring starts with one (8 bytes)."""

    _fields_ = [("type", c_uint32), ("misc", c_uint16), ("size", c_uint16)]


class PerfEventMmapPage(ctypes.Structure):
    """``struct perf_event_mmap_page``: the first page of a perf event mmap.

    The data pages follow at ``data_offset``; the kernel advances ``data_head``
    after writing records, the reader advances ``data_tail`` after consuming.
    """

    _fields_ = [
        ("version", c_uint32),
        ("compat_version", c_uint32),
        ("lock", c_uint32),
        ("index", c_uint32),
        ("offset", ctypes.c_int64),
        ("time_enabled", c_uint64),
        ("time_running", c_uint64),
        ("capabilities", c_uint64),
        ("pmc_width", c_uint16),
        ("time_shift", c_uint16),
        ("time_mult", c_uint32),
        ("time_offset", c_uint64),
        ("time_zero", c_uint64),
        ("size", c_uint32),
        ("__reserved_1", c_uint32),
        ("time_cycles", c_uint64),
        ("time_mask", c_uint64),
        ("__reserved", ctypes.c_uint8 * (116 * 8)),
        ("data_head", c_uint64),
        ("data_tail", c_uint64),
        ("data_offset", c_uint64),
        ("data_size", c_uint64),
        ("aux_head", c_uint64),
        ("aux_tail", c_uint64),
        ("aux_offset", c_uint64),
        ("aux_size", c_uint64),
    ]


MMAP_PAGE_DATA_HEAD: int = PerfEventMmapPage.data_head.offset  # type: ignore[attr-defined]
MMAP_PAGE_DATA_TAIL: int = PerfEventMmapPage.data_tail.offset  # type: ignore[attr-defined]
MMAP_PAGE_DATA_OFFSET: int = PerfEventMmapPage.data_offset.offset  # type: ignore[attr-defined]
MMAP_PAGE_DATA_SIZE: int = PerfEventMmapPage.data_size.offset  # type: ignore[attr-defined]

assert ctypes.sizeof(PerfEventAttr) == PERF_ATTR_SIZE_VER8
assert MMAP_PAGE_DATA_HEAD == 1024
