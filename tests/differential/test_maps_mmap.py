"""mmap of maps against the real kernel: BPF_F_MMAPABLE arrays and ring buffers, with freeze interplay."""
from __future__ import annotations

import errno
import mmap
import struct
from typing import Any

from diffharness import Side
from test_maps_types import ARRAY, HASH, MMAPABLE, RB, RDONLY_PROG, Ops, create

RW, RO, SHARED, PRIVATE = mmap.PROT_READ | mmap.PROT_WRITE, mmap.PROT_READ, mmap.MAP_SHARED, mmap.MAP_PRIVATE
PAGE = 4096


def try_mmap(s: Side, fd: int, length: int, prot: int, flags: int, offset: int = 0) -> Any:
    try:
        return s.k.mmap(fd, length, prot, flags, offset)
    except OSError as e:
        return errno.errorcode.get(e.errno or 0, f"E{e.errno}")


def test_mmapable_array(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        fd = s.fd(create(s, ARRAY, 4, 8, 4, MMAPABLE))
        o = Ops(s, fd, 4, 8)
        out: list[Any] = [try_mmap(s, fd, 8192, RO, SHARED), try_mmap(s, fd, PAGE, RW, PRIVATE)]
        view = try_mmap(s, fd, PAGE, RW, SHARED)
        view[8:16] = b"fromuser"
        o.update((2).to_bytes(4, "little"), b"fromkern")
        out += [o.lookup((1).to_bytes(4, "little")), bytes(view[16:24]), o.freeze()]
        s.k.munmap(view)
        del view
        out += [o.freeze(), try_mmap(s, fd, PAGE, RW, SHARED)]
        ro = try_mmap(s, fd, PAGE, RO, SHARED)
        out.append(bytes(ro[8:24]))
        s.k.munmap(ro)
        plain = s.fd(create(s, ARRAY, 4, 8, 4))
        rdonly = s.fd(create(s, ARRAY, 4, 8, 4, MMAPABLE | RDONLY_PROG))
        out += [try_mmap(s, plain, PAGE, RO, SHARED), try_mmap(s, rdonly, PAGE, RW, SHARED)]
        hfd = s.fd(create(s, HASH, 4, 8, 4))
        out.append(try_mmap(s, hfd, PAGE, RO, SHARED))
        return out
    kernels.compare(scenario)


def test_ringbuf_mmap_layout(kernels: Any) -> None:
    def scenario(s: Side) -> list[Any]:
        fd = s.fd(create(s, RB, 0, 0, PAGE))
        out: list[Any] = [try_mmap(s, fd, 2 * PAGE, RW, SHARED), try_mmap(s, fd, PAGE, RW, SHARED, PAGE),
                          try_mmap(s, fd, 4 * PAGE, RO, SHARED, PAGE)]
        cons = try_mmap(s, fd, PAGE, RW, SHARED)
        prod = try_mmap(s, fd, 3 * PAGE, RO, SHARED, PAGE)
        out += [struct.unpack_from("<QQ", prod, 0), struct.unpack_from("<Q", cons, 0), len(prod)]
        out.append(Ops(s, fd, 0, 0).freeze())  # a writable consumer page is mapped
        s.k.munmap(cons)
        s.k.munmap(prod)
        return out
    kernels.compare(scenario)
