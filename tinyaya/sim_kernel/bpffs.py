"""bpffs: BPF_OBJ_PIN and BPF_OBJ_GET over a directory on disk.

A pin is a file under the bpffs root (default ``$XDG_RUNTIME_DIR/tinyaya/bpffs``,
else ``/tmp/tinyaya-$UID/bpffs``). Directories are created 0700 and pins 0600,
so another local user can neither read nor replace them; a root that exists
but is not ours, or that others may write, is refused (EACCES).

* Maps are pinned by the maps part (``maps.pin_map(map, path)``), which makes
  their storage file-backed and shared; ``maps.open_pinned(kernel, path)``
  opens one from any process.
* Programs and links are pinned here, in a small format: a 64-byte header
  (magic, version, and the live run statistics ``run_cnt``/``run_time_ns``/
  ``recursion_misses``, which the pinning process keeps updating through a
  shared mapping) followed by a JSON description (type, name, tag, license,
  instructions as loaded and as translated, func/line info). Another
  process's ``SimKernel`` opens them with OBJ_GET to read their info,
  instructions and statistics; such a program is a record of the original,
  not a runnable copy (its maps live in the other process).

Errors follow ``bpf_obj_pin_user``/``bpf_obj_get_user`` (kernel/bpf/inode.c):
the fd is checked first (EBADF, EINVAL), then the path (EFAULT, ENOENT,
EEXIST), then the directory must be on the bpffs (EPERM); OBJ_GET of a file
that is not a pin is EACCES.
"""
from __future__ import annotations

import json
import mmap
import os
import stat
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..isa.insn import decode, encode
from .errors import EACCES, EEXIST, EINVAL, ENOENT, ENOTDIR, EPERM, fail
from .fdtable import FMODE_RDWR
from .link import BpfLink
from .mapcmds import bpf_get_file_flag, is_map, register_map
from .prog import BpfProg
from .progcmds import xlated_dump
from .usermem import strncpy_from_user

if TYPE_CHECKING:
    from .kernel import SimKernel, UAttr

__all__ = ["BpfFs", "default_root", "obj_pin", "obj_get", "PROG_MAGIC", "LINK_MAGIC"]

OBJ_END = 20  # path_fd
BPF_F_PATH_FD = 1 << 14
PATH_MAX = 4096
PROG_MAGIC = b"TYAYPROG"
LINK_MAGIC = b"TYAYLINK"
_HDR = struct.Struct("<8sIIQQQ")  # magic, version, json length, run_cnt, run_time_ns, recursion_misses
_HDR_SIZE = 64
_STATS_OFF = 16
_STATS2 = struct.Struct("<QQ")  # run_cnt, run_time_ns
_M64 = (1 << 64) - 1


def default_root() -> Path:
    """``$XDG_RUNTIME_DIR/tinyaya/bpffs``, else ``/tmp/tinyaya-$UID/bpffs``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "tinyaya" / "bpffs"
    return Path(f"/tmp/tinyaya-{os.getuid()}") / "bpffs"


def _private_dir(path: Path) -> None:
    """Create ``path`` and every missing parent 0700; refuse a directory that is not private to us.

    A root that is a symlink, or that another user owns (say, made in /tmp ahead of us), is refused,
    so nobody else can read or replace our pins.
    """
    missing = []
    p = path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        ds = d.lstat()
        if stat.S_ISDIR(ds.st_mode) and ds.st_uid == os.getuid():
            os.chmod(d, 0o700)  # mkdir's mode is masked by the umask
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise fail(ENOTDIR, f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise fail(EACCES, f"{path} belongs to uid {st.st_uid}")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


class _PinnedProg(BpfProg):
    """A pinned program: its run statistics live in the pin file, shared with other processes."""

    _stats: mmap.mmap

    @property  # type: ignore[override]
    def run_cnt(self) -> int:
        return int(struct.unpack_from("<Q", self._stats, _STATS_OFF)[0])

    @run_cnt.setter
    def run_cnt(self, v: int) -> None:
        struct.pack_into("<Q", self._stats, _STATS_OFF, v)

    def add_run_stats(self, count: int, ns: int) -> None:
        """Both counters in one read and one write of the shared header (the event path's accounting)."""
        cnt, total = _STATS2.unpack_from(self._stats, _STATS_OFF)
        _STATS2.pack_into(self._stats, _STATS_OFF, (cnt + count) & _M64, (total + ns) & _M64)

    @property  # type: ignore[override]
    def run_time_ns(self) -> int:
        return int(struct.unpack_from("<Q", self._stats, _STATS_OFF + 8)[0])

    @run_time_ns.setter
    def run_time_ns(self, v: int) -> None:
        struct.pack_into("<Q", self._stats, _STATS_OFF + 8, v)

    @property  # type: ignore[override]
    def recursion_misses(self) -> int:
        return int(struct.unpack_from("<Q", self._stats, _STATS_OFF + 16)[0])

    @recursion_misses.setter
    def recursion_misses(self, v: int) -> None:
        struct.pack_into("<Q", self._stats, _STATS_OFF + 16, v)


def _share_stats(prog: BpfProg, path: Path, *, init: bool) -> None:
    """Back ``prog``'s statistics by the pin file's header (a shared mapping).

    ``init``: the pinning kernel moves its counts into the file; an opener takes the file's.
    """
    if isinstance(prog, _PinnedProg):
        return
    cnt, ns, miss = prog.run_cnt, prog.run_time_ns, prog.recursion_misses
    fd = os.open(path, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, _HDR_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    for name in ("run_cnt", "run_time_ns", "recursion_misses"):
        prog.__dict__.pop(name, None)
    prog.__class__ = _PinnedProg
    assert isinstance(prog, _PinnedProg)
    prog._stats = mm
    if init:
        prog.run_cnt, prog.run_time_ns, prog.recursion_misses = cnt, ns, miss


def _record_map_id(path: Path, map_id: int) -> None:
    """Write the pinning kernel's map id into the pinned map's header (``MapHeader.map_id``)."""
    from .maps.storage import MapHeader

    off = MapHeader.map_id.offset
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(struct.pack("<I", map_id & 0xFFFFFFFF))


def _recorded_map_id(path: Path) -> int | None:
    from .maps.storage import MapHeader

    try:
        with open(path, "rb") as f:
            f.seek(MapHeader.map_id.offset)
            raw = f.read(4)
    except OSError:
        return None
    return struct.unpack("<I", raw)[0] or None if len(raw) == 4 else None


def _prog_record(prog: BpfProg) -> dict[str, Any]:
    return {
        "prog_type": prog.prog_type, "expected_attach_type": prog.expected_attach_type,
        "name": prog.name.hex(), "license": prog.license.hex(), "gpl_compatible": prog.gpl_compatible,
        "tag": prog.tag.hex(), "load_time": prog.load_time, "created_by_uid": prog.created_by_uid,
        "insns": encode(prog.orig_insns).hex(), "xlated": encode(prog.xlated or prog.insns).hex(),
        "func_info": prog.func_info.hex(), "func_info_rec_size": prog.func_info_rec_size,
        "line_info": prog.line_info.hex(), "line_info_rec_size": prog.line_info_rec_size,
        "verified_insns": prog.verified_insns, "prog_flags": prog.prog_flags,
        "map_names": [getattr(m, "name", b"").hex() for m in prog.used_maps],
        "id": int(prog.id),
        "map_ids": [int(m.id) for m in prog.used_maps],
        "xlated_dump": encode(xlated_dump(prog)).hex(),
    }


def _prog_from_record(k: SimKernel, rec: dict[str, Any]) -> BpfProg:
    insns = decode(bytes.fromhex(rec["insns"]))
    prog = BpfProg(prog_type=rec["prog_type"], insns=list(insns), orig_insns=insns,
                   expected_attach_type=rec["expected_attach_type"], name=bytes.fromhex(rec["name"]),
                   license=bytes.fromhex(rec["license"]), gpl_compatible=rec["gpl_compatible"],
                   tag=bytes.fromhex(rec["tag"]), load_time=rec["load_time"],
                   created_by_uid=rec["created_by_uid"], prog_flags=rec.get("prog_flags", 0),
                   func_info=bytes.fromhex(rec["func_info"]), func_info_rec_size=rec["func_info_rec_size"],
                   line_info=bytes.fromhex(rec["line_info"]), line_info_rec_size=rec["line_info_rec_size"],
                   verified_insns=rec["verified_insns"], xlated=decode(bytes.fromhex(rec["xlated"])), kernel=k)
    prog.foreign = True  # opened from another process's pin: inspectable, not runnable
    prog.foreign_map_ids = [int(i) for i in rec.get("map_ids", [])]
    if "xlated_dump" in rec:
        prog.foreign_dump = decode(bytes.fromhex(rec["xlated_dump"]))
    return prog


class BpfFs:
    """One bpffs: a root directory and the objects this kernel has pinned (each pin holds a reference)."""

    def __init__(self, kernel: SimKernel, root: str | os.PathLike[str] | None) -> None:
        self.kernel = kernel
        self.root = Path(root) if root is not None else default_root()
        self._ready = False
        #: path -> (object, (st_dev, st_ino)) for pins made or opened by this kernel
        self.pinned: dict[str, tuple[object, tuple[int, int]]] = {}

    # ``kernel.bpffs`` also stands for its root directory: os.fspath(kernel.bpffs), kernel.bpffs / "name"
    def __fspath__(self) -> str:
        return str(self.root)

    def __truediv__(self, other: str | os.PathLike[str]) -> Path:
        return self.root / other

    def __repr__(self) -> str:
        return f"BpfFs({str(self.root)!r})"

    def ensure(self) -> Path:
        if not self._ready:
            _private_dir(self.root)
            self._ready = True
        return self.root

    def resolve(self, path: str | bytes, path_fd: int | None = None) -> Path:
        """An absolute path for ``path`` (relative to the cwd, or to ``path_fd`` with BPF_F_PATH_FD)."""
        p = os.fsdecode(path)
        if not p:
            raise fail(ENOENT, "empty path")
        if not os.path.isabs(p):
            base = os.readlink(f"/proc/self/fd/{path_fd}") if path_fd is not None else os.getcwd()
            p = os.path.join(base, p)
        return Path(os.path.normpath(p))

    def inside(self, path: Path) -> bool:
        root = self.ensure().resolve()
        try:
            parent = path.parent.resolve(strict=True)
        except FileNotFoundError:
            return False
        return parent == root or root in parent.parents

    # -- pin ----------------------------------------------------------------------------------------
    def pin(self, obj: object, path: Path) -> None:
        self.ensure()
        if not path.parent.exists():
            raise fail(ENOENT, f"{path.parent} does not exist")
        if os.path.lexists(path):
            raise fail(EEXIST, f"{path} exists")
        if not self.inside(path):
            raise fail(EPERM, f"{path} is not on the bpffs at {self.root}")
        if is_map(obj):
            from . import maps as _maps

            maps: Any = _maps
            maps.pin_map(obj, str(path))
            os.chmod(path, 0o600)
            _record_map_id(path, int(getattr(obj, "id", 0)))
        elif isinstance(obj, BpfProg):
            self._write_pin(path, PROG_MAGIC, _prog_record(obj))
            _share_stats(obj, path, init=True)
        elif isinstance(obj, BpfLink):
            rec = {"link_type": obj.link_type, "attach_type": obj.attach_type, "target": str(obj.target),
                   "cookie": obj.cookie, "prog": _prog_record(obj.prog) if obj.prog is not None else None}
            self._write_pin(path, LINK_MAGIC, rec)
        else:
            raise fail(EINVAL, "only maps, programs and links can be pinned")
        st = path.stat()
        self.kernel.fds.hold(obj, uref=True)
        self.pinned[str(path)] = (obj, (st.st_dev, st.st_ino))

    @staticmethod
    def _write_pin(path: Path, magic: bytes, rec: dict[str, Any]) -> None:
        """Write the pin atomically: a private temp file, then link(2) to the name (EEXIST if taken)."""
        body = json.dumps(rec, separators=(",", ":")).encode()
        head = _HDR.pack(magic, 1, len(body), 0, 0, 0).ljust(_HDR_SIZE, b"\0")
        fd, tmp = tempfile.mkstemp(prefix=".pin-", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, head + body)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise fail(EEXIST, f"{path} exists")
        finally:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp)

    # -- get ----------------------------------------------------------------------------------------
    def get(self, path: Path) -> object:
        """The object pinned at ``path``: ours if this kernel pinned or opened it, else opened from disk."""
        try:
            st = path.stat()
        except FileNotFoundError:
            raise fail(ENOENT, f"{path} does not exist")
        except NotADirectoryError:
            raise fail(ENOTDIR, f"{path}")
        key = str(path)
        hit = self.pinned.get(key)
        if hit is not None and hit[1] == (st.st_dev, st.st_ino) and self.kernel.fds.alive(hit[0]):
            return hit[0]
        if hit is not None:
            self.pinned.pop(key, None)
            self.kernel.fds.put(hit[0], uref=True)
        if not self.inside(path) or not stat.S_ISREG(st.st_mode):
            raise fail(EACCES, f"{path} is not a bpf object")
        with open(path, "rb") as f:
            head = f.read(_HDR_SIZE)
        obj: object
        if head[:8] in (PROG_MAGIC, LINK_MAGIC):
            obj = self._open_record(path, head)
        else:
            from . import maps as _maps

            maps: Any = _maps
            try:
                obj = register_map(self.kernel, maps.open_pinned(self.kernel, str(path)), _recorded_map_id(path))
            except (ValueError, KeyError) as e:
                raise fail(EACCES, f"{path} is not a bpf object: {e}")
            except OSError as e:
                if e.errno == EINVAL:
                    raise fail(EACCES, f"{path} is not a bpf object: {e}")
                raise
        self.kernel.fds.hold(obj, uref=True)
        self.pinned[key] = (obj, (st.st_dev, st.st_ino))
        return obj

    def _open_record(self, path: Path, head: bytes) -> object:
        k = self.kernel
        magic, _ver, n = struct.unpack_from("<8sII", head)
        with open(path, "rb") as f:
            f.seek(_HDR_SIZE)
            rec = json.loads(f.read(n))
        if magic == PROG_MAGIC:
            prog = _prog_from_record(k, rec)
            prog.id = k.prog_ids.alloc(prog, rec.get("id"))
            _share_stats(prog, path, init=False)
            return prog
        link = BpfLink(rec["link_type"], None, rec["attach_type"], target=rec["target"], cookie=rec["cookie"],
                       kernel=k)
        if rec.get("prog") is not None:
            prog = _prog_from_record(k, rec["prog"])
            prog.id = k.prog_ids.alloc(prog)
            k.obj_get(prog)
            link.prog = prog
        link.id = k.link_ids.alloc(link)
        return link

    def unlink(self, path: str | os.PathLike[str]) -> None:
        """unlink(2) of a pin: the file goes, and with it this kernel's pin reference."""
        p = self.resolve(os.fspath(path))
        hit = self.pinned.pop(str(p), None)
        os.unlink(p)
        if hit is not None:
            self.kernel.fds.put(hit[0], uref=True)


# -- the commands -------------------------------------------------------------------------------------
def _path_args(ua: UAttr) -> tuple[int, int, int, int]:
    ua.check_unused(OBJ_END)
    pathname, bpf_fd, file_flags, path_fd = struct.unpack_from("<QIIi", ua.raw, 0)
    return pathname, bpf_fd, file_flags, path_fd


def obj_pin(k: SimKernel, ua: UAttr) -> int:
    pathname, bpf_fd, file_flags, path_fd = _path_args(ua)
    if file_flags & ~BPF_F_PATH_FD:
        raise fail(EINVAL, "file_flags")
    if not (file_flags & BPF_F_PATH_FD) and path_fd:
        raise fail(EINVAL, "path_fd without BPF_F_PATH_FD")
    f = k.fds._files.get(bpf_fd)  # bpf_fd_probe_obj: any failure to find a bpf object is EINVAL
    obj = f.obj if f is not None else None
    if obj is None or not (is_map(obj) or isinstance(obj, BpfProg | BpfLink)):
        raise fail(EINVAL, f"fd {bpf_fd} is not a map, program or link")
    raw = strncpy_from_user(pathname, PATH_MAX)
    path = k.bpffs.resolve(raw, path_fd if file_flags & BPF_F_PATH_FD else None)
    k.bpffs.pin(obj, path)
    return 0


def obj_get(k: SimKernel, ua: UAttr) -> int:
    pathname, bpf_fd, file_flags, path_fd = _path_args(ua)
    if bpf_fd != 0 or file_flags & ~(0x8 | 0x10 | BPF_F_PATH_FD):
        raise fail(EINVAL, "bpf_fd or file_flags")
    if not (file_flags & BPF_F_PATH_FD) and path_fd:
        raise fail(EINVAL, "path_fd without BPF_F_PATH_FD")
    mode = bpf_get_file_flag(file_flags)
    raw = strncpy_from_user(pathname, PATH_MAX)
    path = k.bpffs.resolve(raw, path_fd if file_flags & BPF_F_PATH_FD else None)
    obj = k.bpffs.get(path)
    if isinstance(obj, BpfProg):
        return k.fds.install(obj)
    if isinstance(obj, BpfLink):
        if mode != FMODE_RDWR:
            raise fail(EINVAL, "links open read-write only")
        return k.fds.install(obj)
    return k.fds.install(obj, mode)
