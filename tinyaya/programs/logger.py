"""``EbpfLogger``: aya-log records from a program into Python ``logging`` (aya-log/src/lib.rs).

``EbpfLogger.init(ebpf)`` takes the ``AYA_LOGS`` map (a PERF_EVENT_ARRAY in the
perf-array flavour, a RINGBUF in the ring-buffer flavour), opens it, and on
each ``poll()`` decodes every pending record (``tinyaya.programs.aya_log``) and
emits it through ``logging`` with aya's metadata: the logger is named after
the record's target; ``module``, ``pathname``/``filename`` and ``lineno`` come
from the record; ``record.target`` is set too. In asyncio code, ``start()``
runs the polling as a task on the current loop (aya spawns tokio tasks).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING

from ..maps.base import MapData
from ..maps.errors import NotFound
from ..maps.perf import PerfEventArray
from ..maps.ring_buf import RingBuf
from ..uapi.bpf import BpfMapType
from .aya_log import AyaLogError, AyaLogRecord, decode_record, python_level

if TYPE_CHECKING:
    from .ebpf import Ebpf

__all__ = ["EbpfLogger", "AYA_LOGS"]

AYA_LOGS = "AYA_LOGS"
_self_log = logging.getLogger("tinyaya.aya_log")


class EbpfLogger:
    def __init__(self, map: MapData, logger: logging.Logger | None = None, page_count: int = 2) -> None:
        self.map = map
        self.logger = logger
        self.records = 0
        self.lost = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None
        self._perf: PerfEventArray | None = None
        self._ring: RingBuf | None = None
        if map.map_type == BpfMapType.BPF_MAP_TYPE_PERF_EVENT_ARRAY:
            self._perf = PerfEventArray(map)
            self._perf.open_all(page_count)
        elif map.map_type == BpfMapType.BPF_MAP_TYPE_RINGBUF:
            self._ring = RingBuf(map)
        else:
            raise ValueError(f"{map.name} is neither a PERF_EVENT_ARRAY nor a RINGBUF (type {map.map_type})")

    @classmethod
    def init(cls, ebpf: Ebpf, logger: logging.Logger | None = None, *, map_name: str = AYA_LOGS,
             page_count: int = 2) -> EbpfLogger:
        """Take ``AYA_LOGS`` from a loaded object and start reading it (aya's ``EbpfLogger::init``)."""
        try:
            md = ebpf.take_map(map_name)
        except NotFound:
            raise NotFound(f"{map_name} (the object does not log with aya-log)")
        return cls(md, logger, page_count)

    def _raw_records(self) -> list[bytes]:
        if self._perf is not None:
            samples, events = self._perf.read_all()
            self.lost += events.lost
            return samples
        assert self._ring is not None
        return self._ring.drain()

    def poll(self) -> list[AyaLogRecord]:
        """Decode and emit every pending record; returns them. Bad records are counted, never raised."""
        out: list[AyaLogRecord] = []
        for raw in self._raw_records():
            try:
                rec = decode_record(raw)
            except AyaLogError as e:
                self.errors += 1
                _self_log.warning("malformed aya-log record (%d bytes): %s", len(raw), e)
                continue
            self.records += 1
            out.append(rec)
            self.emit(rec)
        return out

    def emit(self, rec: AyaLogRecord) -> None:
        logger = self.logger if self.logger is not None else logging.getLogger(rec.target or "aya")
        level = python_level(rec.level)
        if not logger.isEnabledFor(level):
            return
        lr = logger.makeRecord(logger.name, level, rec.file, rec.line, rec.message, (), None)
        lr.module = rec.module
        lr.filename = os.path.basename(rec.file)
        lr.target = rec.target  # type: ignore[attr-defined]
        logger.handle(lr)

    async def run(self, interval: float = 0.05) -> None:
        """Poll forever (until cancelled)."""
        while True:
            self.poll()
            await asyncio.sleep(interval)

    def start(self, interval: float = 0.05) -> asyncio.Task[None]:
        """Run ``run()`` as a task of the running asyncio loop."""
        self._task = asyncio.get_running_loop().create_task(self.run(interval))
        return self._task

    def close(self) -> None:
        """Stop the task (if any), drain what is left, and close the rings and the map."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        with contextlib.suppress(Exception):
            self.poll()
        if self._perf is not None:
            self._perf.close()
        if self._ring is not None:
            self._ring.close()
        self.map.close()
