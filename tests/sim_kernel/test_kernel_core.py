"""SimKernel's syscall layer on its own: user memory, the fd table and ids, the verifier log buffer,
attr size rules, files, the other syscalls, memory charging and the unprivileged caller."""
from __future__ import annotations

import ctypes
import errno
import mmap
import struct

import pytest

from tinyaya.sim_kernel import SimKernel
from tinyaya.sim_kernel.fdtable import FdTable, IdAllocator
from tinyaya.sim_kernel.kernel import BPF_ATTR_UNION_SIZE, Memlock
from tinyaya.sim_kernel.usermem import check_zeroed_user, copy_from_user, copy_to_user, strncpy_from_user
from tinyaya.sim_kernel.vlog import VerifierLog, finalize_log
from tinyaya.uapi.bpf import BpfCmd, MapCreateAttr, ProgLoadAttr

RET0 = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)


def errno_of(fn, *args) -> int:
    with pytest.raises(OSError) as ei:
        fn(*args)
    return ei.value.errno


# -- usermem ------------------------------------------------------------------------------------------
def test_copy_from_and_to_user() -> None:
    buf = ctypes.create_string_buffer(b"abcdef", 8)
    addr = ctypes.addressof(buf)
    assert copy_from_user(addr, 6) == b"abcdef"
    copy_to_user(addr + 1, b"XY")
    assert buf.raw[:6] == b"aXYdef"
    assert copy_from_user(0, 0) == b""  # nothing to copy: any pointer
    copy_to_user(0, b"")


@pytest.mark.parametrize("addr", [0, 8, 0x1000, 1 << 47, (1 << 64) - 16])
def test_bad_user_pointers_are_efault(addr: int) -> None:
    assert errno_of(copy_from_user, addr, 4) == errno.EFAULT
    assert errno_of(copy_to_user, addr, b"1234") == errno.EFAULT
    assert errno_of(strncpy_from_user, addr, 10) == errno.EFAULT


def test_strncpy_stops_at_nul_before_an_unmapped_page() -> None:
    area = mmap.mmap(-1, 2 * mmap.PAGESIZE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(area))
    libc = ctypes.CDLL(None)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + mmap.PAGESIZE, mmap.PAGESIZE, 0) == 0
    end = base + mmap.PAGESIZE
    ctypes.memmove(end - 4, b"abc\0", 4)
    assert strncpy_from_user(end - 4, 100) == b"abc"
    ctypes.memmove(end - 3, b"xyz", 3)  # no NUL before the unmapped page
    assert errno_of(strncpy_from_user, end - 3, 100) == errno.EFAULT
    assert strncpy_from_user(end - 3, 3) == b"xyz"  # count reached first
    assert errno_of(copy_from_user, end - 2, 4) == errno.EFAULT
    assert check_zeroed_user(base, 16)
    libc.mprotect(base + mmap.PAGESIZE, mmap.PAGESIZE, 3)


# -- fd table and ids --------------------------------------------------------------------------------
class Obj:
    def __init__(self) -> None:
        self.released = 0
        self.urefs_gone = 0

    def release(self) -> None:
        self.released += 1

    def release_uref(self) -> None:
        self.urefs_gone += 1


def test_fds_lowest_free_and_refcounts() -> None:
    t = FdTable(max_fds=8)
    a, b = Obj(), Obj()
    fa, fb = t.install(a), t.install(b)
    assert (fa, fb) == (3, 4)
    fa2 = t.install(a)
    assert fa2 == 5
    t.close(fa)
    assert t.install(b) == 3  # lowest free first
    t.hold(a)  # e.g. a program using the map
    t.close(fa2)
    assert a.released == 0 and a.urefs_gone == 1
    t.put(a)
    assert a.released == 1
    assert errno_of(t.close, fa2) == errno.EBADF
    assert errno_of(t.get, 99) == errno.EBADF
    for _ in range(8 - 5):
        t.install(Obj())
    assert errno_of(t.install, Obj()) == errno.EMFILE


def test_id_allocator_is_cyclic_and_ordered() -> None:
    ids = IdAllocator()
    x, y, z = ids.alloc("x"), ids.alloc("y"), ids.alloc("z")
    assert (x, y, z) == (1, 2, 3)
    ids.remove(y)
    assert ids.alloc("w") == 4  # ids are not reused right away (idr_alloc_cyclic)
    assert ids.get_next(0) == 1 and ids.get_next(1) == 3 and ids.get_next(4) is None
    assert ids.find(3) == "z" and ids.find(2) is None


# -- verifier log buffer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("level,size,expect_err,expect_buf", [
    (1, 64, 0, b"line one\nline two\n\0"),
    (1, 8, errno.ENOSPC, b"ne two\n\0"),  # rotating: the end of the log
    (1 | 8, 8, errno.ENOSPC, b"line on\0"),  # BPF_LOG_FIXED: the start
    (1, 19, 0, b"line one\nline two\n\0"),
    (1, 18, errno.ENOSPC, b"ine one\nline two\n\0"),
])
def test_log_truncation(level: int, size: int, expect_err: int, expect_buf: bytes) -> None:
    buf = ctypes.create_string_buffer(size)
    log = VerifierLog.from_attr(level, ctypes.addressof(buf), size)
    log.write("line one\n")
    log.write("line two\n")
    assert finalize_log(log) == expect_err
    assert log.true_size == 19
    assert buf.raw[:len(expect_buf)] == expect_buf


@pytest.mark.parametrize("level,buf,size", [(0, 1, 64), (1, 0, 64), (1, 1, 0), (16, 1, 64), (1, 1, 1 << 30)])
def test_log_attr_rules(level: int, buf: int, size: int) -> None:
    assert errno_of(VerifierLog.from_attr, level, buf, size) == errno.EINVAL


def test_log_bad_buffer_is_efault() -> None:
    log = VerifierLog.from_attr(1, 0x10, 64)
    log.write("x\n")
    assert finalize_log(log) == errno.EFAULT


# -- bpf() entry ---------------------------------------------------------------------------------------
def test_attr_size_rules() -> None:
    k = SimKernel()
    assert errno_of(k.bpf, 999, bytearray(8)) == errno.EINVAL
    tail = bytearray(BPF_ATTR_UNION_SIZE + 1)
    tail[-1] = 1
    assert errno_of(k.bpf, 999, tail) == errno.E2BIG
    assert errno_of(k.bpf, 999, bytearray(4097)) == errno.E2BIG
    assert errno_of(k.bpf, -1, bytearray(8)) == errno.EINVAL


def test_attr_from_readonly_and_ctypes_buffers() -> None:
    k = SimKernel()
    attr = MapCreateAttr(map_type=2, key_size=4, value_size=4, max_entries=1)
    fd = k.bpf(BpfCmd.BPF_MAP_CREATE, attr)
    fd2 = k.bpf(BpfCmd.BPF_MAP_CREATE, bytes(attr))
    assert fd >= 3 and fd2 == fd + 1
    next_id = bytearray(12)
    k.bpf(BpfCmd.BPF_MAP_GET_NEXT_ID, next_id)
    assert struct.unpack_from("<I", next_id, 4)[0] == 1


def test_files_and_other_syscalls() -> None:
    k = SimKernel(ncpus=4)
    assert k.read_file("/sys/devices/system/cpu/possible") == b"0-3\n"
    assert SimKernel(ncpus=1).read_file("/sys/devices/system/cpu/online") == b"0\n"
    assert k.read_file("/proc/sys/kernel/unprivileged_bpf_disabled") == b"2\n"
    assert errno_of(k.read_file, "/no/such/file") == errno.ENOENT
    fd = k.bpf(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=1, key_size=4, value_size=4, max_entries=1))
    assert errno_of(k.ioctl, fd, 0x2400) == errno.ENOTTY
    assert errno_of(k.ioctl, 77, 0x2400) == errno.EBADF
    assert errno_of(k.mmap, fd, 4096, 3, 1) == 524  # bpf_map_mmap: ENOTSUPP for a map that cannot be mapped
    insns = ctypes.create_string_buffer(RET0, len(RET0))
    lic = ctypes.create_string_buffer(b"GPL")
    pfd = k.bpf(BpfCmd.BPF_PROG_LOAD, ProgLoadAttr(prog_type=1, insn_cnt=2, insns=ctypes.addressof(insns),
                                                   license=ctypes.addressof(lic)))
    assert errno_of(k.mmap, pfd, 4096, 3, 1) == errno.ENODEV  # a program's file has no mmap
    assert errno_of(k.munmap, memoryview(bytearray(4))) == errno.EINVAL
    k.close(fd)
    assert errno_of(k.close, fd) == errno.EBADF


def test_memlock_limit_is_enomem() -> None:
    m = Memlock(100)
    m.charge(60)
    assert errno_of(m.charge, 41) == errno.ENOMEM
    m.uncharge(60)
    m.charge(100)
    k = SimKernel(memlock_limit=4096)
    insns = ctypes.create_string_buffer(RET0 * 8, len(RET0) * 8)
    lic = ctypes.create_string_buffer(b"GPL")
    attr = ProgLoadAttr(prog_type=1, insn_cnt=16, insns=ctypes.addressof(insns), license=ctypes.addressof(lic))
    assert errno_of(k.bpf, BpfCmd.BPF_PROG_LOAD, attr) == errno.ENOMEM
    assert k.memlock.used == 0


def test_unprivileged_caller() -> None:
    k = SimKernel(privileged=False)
    assert errno_of(k.bpf, BpfCmd.BPF_MAP_CREATE,
                    MapCreateAttr(map_type=2, key_size=4, value_size=4, max_entries=1)) == errno.EPERM
    insns = ctypes.create_string_buffer(RET0, len(RET0))
    lic = ctypes.create_string_buffer(b"GPL")
    for ptype in (1, 2):
        attr = ProgLoadAttr(prog_type=ptype, insn_cnt=2, insns=ctypes.addressof(insns),
                            license=ctypes.addressof(lic))
        assert errno_of(k.bpf, BpfCmd.BPF_PROG_LOAD, attr) == errno.EPERM
    assert errno_of(k.bpf, BpfCmd.BPF_MAP_GET_NEXT_ID, bytearray(12)) == errno.EPERM
    k.unprivileged_bpf_disabled = 0  # the sysctl at 0: socket filters and plain maps are allowed
    fd = k.bpf(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=2, key_size=4, value_size=4, max_entries=1))
    assert fd >= 3
    assert errno_of(k.bpf, BpfCmd.BPF_MAP_CREATE,
                    MapCreateAttr(map_type=22, key_size=0, value_size=4, max_entries=1)) == errno.EPERM
    attr = ProgLoadAttr(prog_type=1, insn_cnt=2, insns=ctypes.addressof(insns), license=ctypes.addressof(lic))
    assert k.bpf(BpfCmd.BPF_PROG_LOAD, attr) >= 3
    attr.prog_type = 2
    assert errno_of(k.bpf, BpfCmd.BPF_PROG_LOAD, attr) == errno.EPERM


def test_simkernel_implements_the_kernel_protocol() -> None:
    from tinyaya.kernel import Kernel, possible_cpus

    k = SimKernel(ncpus=3)
    assert isinstance(k, Kernel) and k.backend == "sim"
    assert possible_cpus(k) == [0, 1, 2]


def test_bpffs_directories_are_private(tmp_path) -> None:
    import os
    import stat

    root = tmp_path / "state" / "tinyaya" / "bpffs"
    k = SimKernel(bpffs_root=root)
    old = os.umask(0o022)
    try:
        k.bpffs.ensure()
    finally:
        os.umask(old)
    for d in (root, root.parent, root.parent.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    link = tmp_path / "link"
    link.symlink_to(root)
    assert errno_of(SimKernel(bpffs_root=link).bpffs.ensure) == errno.ENOTDIR
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 12345, 12345)
    assert errno_of(SimKernel(bpffs_root=theirs).bpffs.ensure) == errno.EACCES


def test_bpffs_stands_for_its_root(tmp_path) -> None:
    import os

    k = SimKernel(bpffs_root=tmp_path / "fs")
    assert os.fspath(k.bpffs) == str(tmp_path / "fs") and k.bpffs / "x" == tmp_path / "fs" / "x"
    assert k.bpffs.root == tmp_path / "fs"
