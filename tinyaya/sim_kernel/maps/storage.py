"""Value storage for slot-based maps: lazily allocated chunks, private or shared through a pinned file.

A map's elements live in fixed-size *slots* (``slot_size`` bytes, a multiple
of 8). Slots are grouped in *chunks* of ``chunk_slots`` slots; each chunk is
allocated on first use, charged to ``kernel.memlock`` and registered once as
one ``RegionKind.MAP_VALUE`` region, so a value pointer handed to a program
stays valid and the VM reads and writes the value in place. Nothing is
allocated from a size the caller controls until an element needs it (big
chunks are anonymous ``MAP_NORESERVE`` mappings, so even an untouched array
chunk costs no memory).

The storage also keeps a small *header* (the same bytes in memory or in the
pinned file): the map's metadata, ``hwm`` (slots ever used, so a reader scans
only those), ``generation`` (bumped when the set of keys changes, so other
processes know to rebuild their key index) and a one-entry redo journal.

**Shared storage** (after ``pin``, or ``open``-ed by another process): the
file (mode 0600) is the header page(s) followed by the chunks at fixed
offsets, each mmap'd ``MAP_SHARED``. Writers serialise with ``flock`` and
publish through a seqlock (``seq`` odd while a write is in progress, writer
pid recorded); before touching a slot they write the new bytes to the journal
and set ``journal_valid``. Readers retry while ``seq`` changes. If ``seq``
stays odd and the ``flock`` can be taken, the writer died mid-update: the
reader (or the next writer) rolls the journal forward, so a dead writer never
blocks readers and a write is either wholly there or not at all. The
counters are aligned 8-byte fields written with single 8-byte stores
(ctypes), which x86-64 performs atomically and in program order.

Two kinds of write need no journal, because a single store commits them
(the hot paths of program-side updates): a write of 1, 2, 4 or 8 bytes at an
offset aligned to its size (a counter, a hash element's state word; done
through a typed view of the chunk, so it is one machine store), and a new
hash element (``publish``: its key and value are written while the slot is
still free, then the counters, then the state word that makes it live).
Their structural variant bumps ``generation`` before the store, inside the
seqlock. Killed before the store, such a writer leaves the map as it was;
after it, the change is complete.

Programs that store through a value pointer (VM writes) write the shared
file directly, outside the seqlock, exactly like a BPF program writing a
map value on Linux: an aligned store of up to 8 bytes is atomic, a larger
value may be observed half-written by a concurrent reader.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import mmap
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..errors import EINVAL, ENOMEM, fail
from ..memory import REGION_SPAN, Region, RegionKind
from .base import PAGE_SIZE, round_up

__all__ = ["SlotStorage", "MapHeader", "MAGIC", "JOURNAL_OFF", "read_header"]

R = TypeVar("R")
MAGIC = b"TYAYAMAP"
VERSION = 1
JOURNAL_OFF = 512
#: a chunk aims at this many bytes (a page multiple); one slot bigger than that is a chunk by itself
CHUNK_TARGET = 256 << 10
#: bigger maps get bigger chunks, so that no map needs more than this many regions
MAX_CHUNKS = 256
CHUNK_MAX = 1 << 30
#: chunks at least this big come from an anonymous mapping (untouched pages cost nothing)
_ANON_MIN = 1 << 20
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)
#: sizes a single aligned store writes atomically -> index of the matching view in ``SlotStorage._words``
_WORD = {1: 0, 2: 1, 4: 2, 8: 3}
_from_bytes = int.from_bytes
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


class MapHeader(ctypes.Structure):
    """The storage header: in a bytearray for a private map, at offset 0 of the pinned file for a shared one."""

    _fields_ = [
        ("magic", ctypes.c_char * 8), ("version", ctypes.c_uint32), ("header_size", ctypes.c_uint32),
        ("seq", ctypes.c_uint64), ("writer_pid", ctypes.c_uint64),
        ("hwm", ctypes.c_uint64), ("generation", ctypes.c_uint64),
        ("journal_valid", ctypes.c_uint64), ("journal_slot", ctypes.c_uint64),
        ("journal_off", ctypes.c_uint64), ("journal_len", ctypes.c_uint64),
        ("journal_hwm", ctypes.c_uint64), ("journal_generation", ctypes.c_uint64),
        ("map_type", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32), ("ncpus", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32), ("btf_value_type_id", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64), ("name", ctypes.c_char * 16),
        ("slot_size", ctypes.c_uint64), ("chunk_slots", ctypes.c_uint64), ("chunk_bytes", ctypes.c_uint64),
        ("nslots", ctypes.c_uint64), ("frozen", ctypes.c_uint32), ("shared", ctypes.c_uint32),
        # the hash seed (hash map ``hashrnd``, bloom filter ``hash_seed``): every process must hash alike
        ("hashrnd", ctypes.c_uint64),
        # the map's id in the kernel that pinned it: another process's kernel reopens it under the same id
        ("map_id", ctypes.c_uint32), ("_pad_id", ctypes.c_uint32),
    ]


assert ctypes.sizeof(MapHeader) <= JOURNAL_OFF
#: indexes of the seqlock's u64 fields in the header seen as u64 words (``SlotStorage.hq``)
SEQ = MapHeader.seq.offset // 8
WRITER_PID = MapHeader.writer_pid.offset // 8
HWM = MapHeader.hwm.offset // 8
GENERATION = MapHeader.generation.offset // 8


def read_header(path: str | os.PathLike[str]) -> MapHeader:
    """The header of a pinned map file (a copy), or EINVAL if it is not one."""
    with open(path, "rb") as f:
        raw = f.read(ctypes.sizeof(MapHeader))
    if len(raw) < ctypes.sizeof(MapHeader) or not raw.startswith(MAGIC):
        raise fail(EINVAL, f"{os.fspath(path)!r} is not a pinned map")
    hdr = MapHeader.from_buffer_copy(raw)
    if hdr.version != VERSION:
        raise fail(EINVAL, f"pinned map version {hdr.version}, expected {VERSION}")
    return hdr


def _native_remapped(kernel: Any) -> None:
    """Hook: the storage's buffers moved (``pin``); native tiers drop the host addresses they kept."""
    tiers = getattr(getattr(kernel, "aspace", None), "__dict__", {}).get("_native_tiers")
    for t in list(tiers or ()):
        t.invalidate()


def _anon(nbytes: int) -> memoryview:
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE)
    return memoryview(m)


class SlotStorage:
    """``nslots`` slots of ``slot_size`` bytes for ``owner`` (a ``BpfMap``), in lazily allocated chunks.

    ``charge``: charge chunks to memlock as they are allocated (hash maps);
    arrays charge their full size at creation, as Linux allocates it then.
    ``contiguous``: one chunk for all slots, page aligned (BPF_F_MMAPABLE arrays).
    """

    def __init__(self, owner: Any, slot_size: int, nslots: int, *, charge: bool = True,
                 contiguous: bool = False, writable: bool = True) -> None:
        if slot_size <= 0 or slot_size % 8:
            raise ValueError("slot_size must be a positive multiple of 8")
        self.owner = owner
        self.kernel = owner.kernel
        self.slot_size = slot_size
        self.nslots = nslots
        self.charge_chunks = charge
        self.writable = writable
        if contiguous:
            self.chunk_slots = max(nslots, 1)
        else:
            # at most ~MAX_CHUNKS regions per map (the kernel half has about 30000 of them)
            target = min(max(CHUNK_TARGET, nslots * slot_size // MAX_CHUNKS), CHUNK_MAX)
            self.chunk_slots = max(1, min(nslots, target // slot_size))
        self.chunk_bytes = round_up(self.chunk_slots * slot_size, PAGE_SIZE)
        if self.chunk_bytes > REGION_SPAN:
            raise fail(ENOMEM, f"{self.chunk_bytes} bytes do not fit one region")
        self.header_size = round_up(JOURNAL_OFF + slot_size, PAGE_SIZE)
        self._hdr_buf: Any = bytearray(ctypes.sizeof(MapHeader))
        self.hdr = MapHeader.from_buffer(self._hdr_buf)
        #: the same header as u64 words: ``hq[SEQ]``, ``hq[GENERATION]`` are one load or store each
        self.hq = memoryview(self._hdr_buf).cast("Q")
        self._fill_header(owner)
        self._chunks: dict[int, Region] = {}
        # shared mode
        self.shared = False
        self.path: str | None = None
        self.paths: list[str] = []
        self._fd = -1
        self._maps: list[mmap.mmap] = []
        self._journal: memoryview | None = None
        self._writing = False
        self._nested = 0
        self._lock_depth = 0
        #: 1 while this process holds the writer lock outside a write section (the native tier's hook:
        #: only then may machine code store a word with ``store_held``'s protocol)
        self.native_held = (ctypes.c_uint64 * 1)()
        #: chunk -> (its buffer, and that buffer as u16, u32 and u64 words), for single aligned stores
        self._words: dict[int, tuple[memoryview, ...]] = {}

    def _fill_header(self, owner: Any) -> None:
        h = self.hdr
        h.magic = MAGIC
        h.version = VERSION
        h.header_size = self.header_size
        h.map_type = owner.map_type
        h.key_size = owner.key_size
        h.value_size = owner.value_size
        h.max_entries = owner.max_entries
        h.map_flags = owner.map_flags
        h.ncpus = owner.ncpus
        h.map_extra = owner.map_extra
        h.slot_size = self.slot_size
        h.chunk_slots = self.chunk_slots
        h.chunk_bytes = self.chunk_bytes
        h.nslots = self.nslots

    # -- header fields used by the maps -----------------------------------------------------------
    @property
    def hwm(self) -> int:
        return int(self.hdr.hwm)

    @property
    def generation(self) -> int:
        return int(self.hdr.generation)

    def chunks(self) -> Iterator[tuple[int, Region]]:
        return iter(sorted(self._chunks.items()))

    # -- chunks --------------------------------------------------------------------------------------
    def _chunk(self, k: int) -> Region:
        region = self._chunks.get(k)
        if region is None:
            region = self._alloc_chunk(k)
        return region

    def _alloc_chunk(self, k: int) -> Region:
        if self.charge_chunks:
            self.owner.charge(self.chunk_bytes)
        try:
            if self.shared:
                buf = self._map_file_chunk(k)
            elif self.chunk_bytes >= _ANON_MIN:
                buf = _anon(self.chunk_bytes)
            else:
                buf = memoryview(bytearray(self.chunk_bytes))
            region = self.kernel.aspace.add(buf, RegionKind.MAP_VALUE,
                                            f"{self.owner.name.decode(errors='replace')}#{k}",
                                            writable=self.writable, owner=self.owner)
        except BaseException as e:
            if self.charge_chunks:
                self.owner.uncharge(self.chunk_bytes)
            if isinstance(e, MemoryError):  # the address space (or the host) is out of room
                raise fail(ENOMEM, f"no room for a map chunk: {e}")
            raise
        self._chunks[k] = region
        return region

    def locate(self, i: int) -> tuple[Region, int]:
        """The region and offset of slot ``i``, allocating its chunk."""
        k, j = divmod(i, self.chunk_slots)
        region = self._chunks.get(k)
        if region is None:
            region = self._alloc_chunk(k)
        return region, j * self.slot_size

    def allocated(self, i: int) -> bool:
        return i // self.chunk_slots in self._chunks

    def slot(self, i: int) -> memoryview:
        region, off = self.locate(i)
        return region.buf[off:off + self.slot_size]

    def slot_addr(self, i: int, off: int = 0) -> int:
        region, base = self.locate(i)
        return region.base + base + off

    def read(self, i: int, off: int = 0, n: int | None = None) -> bytes:
        """Bytes of slot ``i`` (zeros for a chunk never allocated, without allocating it)."""
        n = self.slot_size - off if n is None else n
        if not self.allocated(i):
            if not self.shared:
                return bytes(n)
        region, base = self.locate(i)
        return bytes(region.buf[base + off:base + off + n])

    # -- writes ----------------------------------------------------------------------------------
    def write(self, i: int, off: int, data: bytes, *, hwm: int | None = None, structural: bool = False) -> None:
        """Write ``data`` at ``off`` in slot ``i`` as one atomic update (journaled when shared).

        ``hwm``: the new high-water mark; ``structural``: the set of keys changes (bump ``generation``).
        A shared write of 1, 2, 4 or 8 bytes at an offset aligned to its size, with no header change, is
        a single aligned store (atomic on x86-64: a reader sees the old or the new value, a killed writer
        either stored it or not), so it needs the seqlock but no journal (``_store_word``).
        """
        k, j = divmod(i, self.chunk_slots)
        region = self._chunks.get(k)
        if region is None:
            region = self._alloc_chunk(k)
        p = j * self.slot_size + off
        n = len(data)
        if not self.shared:
            region.buf[p:p + n] = data
            if hwm is not None or structural:
                h = self.hdr
                if hwm is not None and hwm > h.hwm:
                    h.hwm = hwm
                if structural:
                    h.generation += 1
            return
        if hwm is None and n in _WORD and p % n == 0:
            self._store_word(k, region, p, data, structural)
            return
        new_hwm = max(self.hwm, hwm) if hwm is not None else self.hwm
        new_gen = self.generation + 1 if structural else self.generation
        self._begin_write()
        try:
            h = self.hdr
            assert self._journal is not None
            self._journal[:n] = data
            h.journal_slot = i
            h.journal_off = off
            h.journal_len = n
            h.journal_hwm = new_hwm
            h.journal_generation = new_gen
            h.journal_valid = 1
            region.buf[p:p + n] = data
            h.hwm = new_hwm
            h.generation = new_gen
            h.journal_valid = 0
        finally:
            self._end_write()

    def publish(self, i: int, head: bytes, body: bytes, *, hwm: int | None = None) -> None:
        """Fill slot ``i`` with a new element: ``body`` after its first word, then ``head``, the 8-byte
        word that makes the element live (a hash element's state); a structural update.

        Shared, this needs no journal: inside the seqlock the body is written while the slot is still
        free, then ``hwm`` and ``generation``, and the head last, with one aligned store. A writer
        killed before that store leaves a free slot (other processes re-index and see no new element),
        after it a complete one: either way nothing half-written is ever live.
        """
        k, j = divmod(i, self.chunk_slots)
        region = self._chunks.get(k)
        if region is None:
            region = self._alloc_chunk(k)
        p = j * self.slot_size
        if not self.shared:
            region.buf[p:p + 8 + len(body)] = head + body
            h = self.hdr
            if hwm is not None and hwm > h.hwm:
                h.hwm = hwm
            h.generation += 1
            return
        self._begin_write()
        try:
            if any(region.buf[p:p + 8]):  # a live slot, not a free one: replace it as one journaled write
                self.write(i, 0, head + body, hwm=hwm, structural=True)
                return
            region.buf[p + 8:p + 8 + len(body)] = body
            h = self.hdr
            if hwm is not None and hwm > h.hwm:
                h.hwm = hwm
            self._store_word(k, region, p, head, True)  # inside the section: bumps generation, then stores
        finally:
            self._end_write()

    def _store_word(self, k: int, region: Region, p: int, data: bytes, structural: bool = False) -> None:
        """One aligned store of ``len(data)`` (1, 2, 4 or 8) bytes at ``p`` in chunk ``k``, inside the seqlock
        (``_begin_write``/``_end_write`` inlined: this is every shared counter update).

        ``structural`` (a hash element's state word: the set of keys changes): ``generation`` is bumped
        *before* the store, inside the same write section. A writer killed between the two leaves the
        old element and a new generation: other processes re-index (after the seqlock is recovered)
        and find the map as it was, so the unfinished change is simply not there.
        """
        n = len(data)
        views = self._words.get(k)
        if views is None or views[0] is not region.buf:
            buf = region.buf
            views = self._words[k] = (buf, buf.cast("H"), buf.cast("I"), buf.cast("Q"))
        if self._writing:  # inside a write section: ``seq`` is already odd
            if structural:
                self.hq[GENERATION] += 1
            if n == 1:
                views[0][p] = data[0]
            else:
                views[_WORD[n]][p // n] = int.from_bytes(data, "little")
            return
        if self._lock_depth:
            self._lock_depth += 1
        else:
            self._lock()
        hq = self.hq
        try:
            hq[SEQ] += 1
            if structural:
                hq[GENERATION] += 1
            if n == 1:
                views[0][p] = data[0]
            else:
                views[_WORD[n]][p // n] = int.from_bytes(data, "little")
        finally:
            hq[SEQ] += 1
            self._unlock()

    def store_held(self, i: int, off: int, data: bytes) -> None:
        """``write`` for a caller that holds the writer lock (shared storage): an aligned word is stored
        here, inside its own seqlock section, without taking the lock again (``writer_pid`` was recorded
        when the lock was taken).

        ``_words[k]`` is used without looking at the chunk's region: it is only ever built from the
        chunk's current buffer, and dropped whenever a buffer changes (``pin``, ``close``)."""
        n = len(data)
        k, j = divmod(i, self.chunk_slots)
        p = j * self.slot_size + off
        views = self._words.get(k)
        if views is None or self._writing or not self._lock_depth or n not in _WORD or p % n:
            self.write(i, off, data)
            return
        hq = self.hq
        seq = hq[SEQ] + 1  # odd: a write in progress (only this process writes while it holds the lock)
        hq[SEQ] = seq
        try:
            if n == 8:
                views[3][p >> 3] = _from_bytes(data, "little")
            elif n == 1:
                views[0][p] = data[0]
            else:
                views[_WORD[n]][p // n] = _from_bytes(data, "little")
        finally:
            hq[SEQ] = seq + 1

    def store_u64_held(self, k: int, w: int, data: bytes) -> bool:
        """``store_held`` of 8 bytes at u64 word ``w`` of chunk ``k`` (a position the caller computed from a
        slot and offset before): True when done, False (nothing written) when it cannot be done this way."""
        views = self._words.get(k)
        if views is None or self._writing or not self._lock_depth:
            return False
        hq = self.hq
        seq = hq[SEQ] + 1
        hq[SEQ] = seq
        try:
            views[3][w] = _from_bytes(data, "little")
        finally:
            hq[SEQ] = seq + 1
        return True

    def _begin_write(self) -> None:
        """flock, recover a dead writer's update, then make ``seq`` odd (nested: nothing)."""
        if self._writing:  # nested (a map op that is several writes under one lock)
            self._nested += 1
            return
        self._lock()
        hq = self.hq
        hq[SEQ] += 1
        self._writing = True
        self.native_held[0] = 0

    def _end_write(self) -> None:
        if self._nested:
            self._nested -= 1
            return
        self._writing = False
        self.native_held[0] = 1
        self.hq[SEQ] += 1
        self._unlock()

    @contextlib.contextmanager
    def _write_locked(self) -> Iterator[None]:
        """flock, recover a dead writer's update, then hold ``seq`` odd for the duration."""
        self._begin_write()
        try:
            yield
        finally:
            self._end_write()

    def _lock(self) -> None:
        """Take the writer ``flock`` (re-entrant within this object) and recover a dead writer's update."""
        if self._lock_depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._lock_depth = 1
            self.native_held[0] = 0 if self._writing else 1
            # the writer pid, once per lock hold: every write section until ``_unlock`` is this process's
            self.hq[WRITER_PID] = _PID[0]
            if self.hq[SEQ] & 1:  # a writer died mid-update (``_recover``'s own first test, inlined)
                try:
                    self._recover()
                except BaseException:
                    self._unlock()
                    raise
        else:
            self._lock_depth += 1

    def _unlock(self) -> None:
        self._lock_depth -= 1
        if self._lock_depth == 0:
            self.native_held[0] = 0
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def lock(self) -> None:
        """Take the writer lock when shared (re-entrant); pair with ``unlock`` (a cheap ``transaction``)."""
        if self.shared:
            self._lock()

    def unlock(self) -> None:
        if self.shared:
            self._unlock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several ``write``s under one writer lock (each still journaled on its own)."""
        if not self.shared:
            yield
            return
        self._lock()
        try:
            yield
        finally:
            self._unlock()

    def _recover(self) -> None:
        """With the lock held: if a writer died mid-update, roll its journal forward and close the seqlock."""
        h = self.hdr
        if h.seq & 1 == 0:
            return
        if h.journal_valid:
            i, off, n = int(h.journal_slot), int(h.journal_off), int(h.journal_len)
            region, base = self.locate(i)
            assert self._journal is not None
            region.buf[base + off:base + off + n] = self._journal[:n]
            h.hwm = h.journal_hwm
            h.generation = h.journal_generation
            h.journal_valid = 0
        h.seq = h.seq + 1

    # -- consistent reads ----------------------------------------------------------------------------
    def read_consistent(self, fn: Callable[[], R]) -> R:
        """Run ``fn`` (which reads slots) so that it sees no update half-done, retrying as a seqlock reader."""
        if not self.shared or self._writing or self._lock_depth:
            return fn()
        h = self.hdr
        spins = 0
        while True:
            s1 = int(h.seq)
            if s1 & 1:
                spins += 1
                if spins % 64 == 0:
                    self._try_recover()
                    time.sleep(0)
                continue
            result = fn()
            if int(h.seq) == s1:
                return result
            spins += 1

    def _try_recover(self) -> None:
        """Take the writer lock without waiting: if it is free while ``seq`` is odd, the writer died."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a live writer holds it
        self._lock_depth = 1
        try:
            self._recover()
        finally:
            self._lock_depth = 0
            self.native_held[0] = 0
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    # -- pinning ------------------------------------------------------------------------------------
    def _map_file_chunk(self, k: int) -> memoryview:
        off = self.header_size + k * self.chunk_bytes
        self._ensure_size(off + self.chunk_bytes)
        m = mmap.mmap(self._fd, self.chunk_bytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=off)
        self._maps.append(m)
        return memoryview(m)

    def _ensure_size(self, size: int) -> None:
        """Grow (never shrink) the file under the writer lock, so no mapping reaches past its end."""
        if os.fstat(self._fd).st_size >= size:
            return
        self._lock()
        try:
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)
        finally:
            self._unlock()

    def _attach_file(self, fd: int, path: str) -> None:
        self._fd = fd
        self.path = path
        self.paths = [path]
        self._lock_depth = 0
        self.native_held[0] = 0
        hm = mmap.mmap(fd, self.header_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._maps.append(hm)
        self._hdr_buf = hm
        self.hdr = MapHeader.from_buffer(hm)
        self.hq = memoryview(hm)[:self.header_size].cast("Q")
        self._journal = memoryview(hm)[JOURNAL_OFF:JOURNAL_OFF + self.slot_size]
        self.shared = True

    def pin(self, path: str, meta: Callable[[MapHeader], None]) -> None:
        """Move the storage into ``path`` (created 0600) and map it shared; existing regions keep their addresses."""
        if self.shared:
            for earlier in list(self.paths):
                try:
                    os.link(earlier, path)  # another name for the same file: every opener shares it
                except FileNotFoundError:
                    self.paths.remove(earlier)
                    continue
                self.paths.append(path)
                return
            # every earlier pin was unlinked: move to a new file (openers of the old one keep that one)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        old_fd, old_maps, old_hq = self._fd, self._maps, self.hq
        try:
            with self.transaction():
                hdr_bytes = bytes(self._hdr_buf)
                top = max(self._chunks, default=-1) + 1
                os.ftruncate(fd, self.header_size + top * self.chunk_bytes)
                os.pwrite(fd, hdr_bytes, 0)
                for k, region in self._chunks.items():
                    os.pwrite(fd, region.buf, self.header_size + k * self.chunk_bytes)
            self._maps = []
            self._attach_file(fd, path)
            self.hdr.shared = 1
            meta(self.hdr)
            for k, region in self._chunks.items():
                region.buf = self._map_file_chunk(k)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        self._words.clear()  # views of the old buffers
        _native_remapped(self.kernel)
        old_hq.release()
        for m in old_maps:
            with contextlib.suppress(BufferError):
                m.close()
        if old_fd >= 0:
            os.close(old_fd)

    @classmethod
    def open(cls, owner: Any, path: str) -> SlotStorage:
        """The storage of a map pinned at ``path`` by another process (``owner`` is built from its header)."""
        hdr = read_header(path)
        self = cls.__new__(cls)
        self.owner = owner
        self.kernel = owner.kernel
        self.slot_size = int(hdr.slot_size)
        self.nslots = int(hdr.nslots)
        self.charge_chunks = False  # the map charged itself when it was built from the header
        self.writable = not owner.rdonly_prog
        self.chunk_slots = int(hdr.chunk_slots)
        self.chunk_bytes = int(hdr.chunk_bytes)
        self.header_size = int(hdr.header_size)
        self._chunks = {}
        self._maps = []
        self._writing = False
        self._nested = 0
        self._lock_depth = 0
        self.native_held = (ctypes.c_uint64 * 1)()
        self._words = {}
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self._attach_file(fd, path)
        return self

    def close(self) -> None:
        """Unregister every chunk region and unmap the file (the map is being freed)."""
        for region in self._chunks.values():
            self.kernel.aspace.remove(region)
            if self.charge_chunks:
                self.owner.uncharge(self.chunk_bytes)
        self._chunks.clear()
        self._words.clear()
        if self.shared:
            self._journal = None
            self.hq.release()
            self._hdr_buf = bytearray(ctypes.sizeof(MapHeader))  # drop the exports on the header mapping
            self.hdr = MapHeader.from_buffer(self._hdr_buf)
            self.hq = memoryview(self._hdr_buf).cast("Q")
            for m in self._maps:
                with contextlib.suppress(BufferError):
                    m.close()  # still exported (a program or user holds a view): the GC unmaps it
            self._maps.clear()
            os.close(self._fd)
            self._fd = -1
