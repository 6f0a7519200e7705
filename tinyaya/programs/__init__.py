"""Aya-shaped programs API: ``Ebpf``/``EbpfLoader``, typed program classes, links, ``EbpfLogger``.

    ebpf = Ebpf.load_file("syscall_ebpf.o")            # a fresh SimKernel by default
    logger = EbpfLogger.init(ebpf)
    program = ebpf.program_mut("syscall_ebpf")         # a KProbe
    program.load()
    link_id = program.attach("sys_enter", 0)
"""
from .aya_log import AyaLogError, AyaLogLevel, AyaLogRecord, decode_record
from .ebpf import DEFAULT_PIN_DIR, Ebpf, EbpfLoader, default_pin_dir
from .errors import (
    AlreadyAttached,
    AlreadyLoaded,
    AttachError,
    EbpfError,
    EndiannessMismatch,
    FileError,
    LoadError,
    MapCreateError,
    NotAttached,
    NotLoaded,
    ProgramError,
    ProgramNotFound,
    ProgramSyscallError,
    UnexpectedProgramType,
    Unsupported,
    UnsupportedMap,
)
from .kinds import (
    PerfEvent,
    RawTracePoint,
    SchedClassifier,
    SocketFilter,
    TcAttachType,
    TracePoint,
    Xdp,
    XdpFlags,
    program_class,
)
from .links import FdLink, Link, LinkId, PerfLink
from .logger import EbpfLogger
from .probe import KProbe, ProbeKind, UProbe
from .program import Program, TestRunResult

__all__ = [
    "AyaLogError", "AyaLogLevel", "AyaLogRecord", "decode_record", "DEFAULT_PIN_DIR", "default_pin_dir", "Ebpf", "EbpfLoader",
    "AlreadyAttached", "AlreadyLoaded", "AttachError", "EbpfError", "EndiannessMismatch", "FileError", "LoadError", "MapCreateError",
    "NotAttached", "NotLoaded", "ProgramError", "ProgramNotFound", "ProgramSyscallError", "UnexpectedProgramType",
    "Unsupported", "UnsupportedMap", "PerfEvent", "RawTracePoint", "SchedClassifier", "SocketFilter",
    "TcAttachType", "TracePoint", "Xdp", "XdpFlags", "program_class", "FdLink", "Link", "LinkId", "PerfLink",
    "EbpfLogger", "KProbe", "ProbeKind", "UProbe", "Program", "TestRunResult",
]
