"""tinyaya.uapi.perf_event against <linux/perf_event.h>: a C program compiled here prints the real layout."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import pytest

from tinyaya.uapi import perf_event as pe

ATTR_FIELDS = ["type", "size", "config", "sample_period", "sample_type", "read_format", "wakeup_events",
               "bp_type", "config1", "config2", "branch_sample_type", "sample_regs_user", "sample_stack_user",
               "clockid", "sample_regs_intr", "aux_watermark", "sample_max_stack", "aux_sample_size", "sig_data",
               ]
PAGE_FIELDS = ["version", "compat_version", "lock", "index", "offset", "time_enabled", "time_running",
               "capabilities", "pmc_width", "time_shift", "time_mult", "time_offset", "time_zero", "size",
               "time_cycles", "time_mask", "data_head", "data_tail", "data_offset", "data_size", "aux_head",
               "aux_tail", "aux_offset", "aux_size"]
IOCTLS = ["PERF_EVENT_IOC_ENABLE", "PERF_EVENT_IOC_DISABLE", "PERF_EVENT_IOC_RESET", "PERF_EVENT_IOC_ID",
          "PERF_EVENT_IOC_SET_BPF", "PERF_EVENT_IOC_PAUSE_OUTPUT", "PERF_EVENT_IOC_SET_OUTPUT",
          "PERF_EVENT_IOC_PERIOD", "PERF_EVENT_IOC_REFRESH", "PERF_EVENT_IOC_SET_FILTER"]


def _c_layout(tmp_path) -> dict[str, int]:
    cc = shutil.which("clang-19") or shutil.which("clang") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler to read <linux/perf_event.h> with")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include <linux/perf_event.h>', 'int main(void) {']
    lines.append('printf("sizeof_attr %zu\\n", sizeof(struct perf_event_attr));')
    # config3 (PERF_ATTR_SIZE_VER8) is newer than some installed headers
    lines.append('#ifdef PERF_ATTR_SIZE_VER8\nprintf("attr.config3 %zu\\n", offsetof(struct perf_event_attr, config3));'
                 '\n#endif')
    lines.append('printf("sizeof_page %zu\\n", sizeof(struct perf_event_mmap_page));')
    for f in ATTR_FIELDS:
        lines.append(f'printf("attr.{f} %zu\\n", offsetof(struct perf_event_attr, {f}));')
    for f in PAGE_FIELDS:
        lines.append(f'printf("page.{f} %zu\\n", offsetof(struct perf_event_mmap_page, {f}));')
    for name in IOCTLS:
        lines.append(f'printf("{name} %lu\\n", (unsigned long){name});')
    lines.append('printf("PERF_RECORD_LOST %d\\nPERF_RECORD_SAMPLE %d\\n", PERF_RECORD_LOST, PERF_RECORD_SAMPLE);')
    lines.append('printf("PERF_SAMPLE_RAW %d\\nPERF_COUNT_SW_BPF_OUTPUT %d\\n", PERF_SAMPLE_RAW, '
                 'PERF_COUNT_SW_BPF_OUTPUT);')
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    r = subprocess.run([cc, "-o", str(exe), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot compile against <linux/perf_event.h>: {r.stderr.strip()[:200]}")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (ln.split() for ln in out.splitlines())}


def test_layouts_and_constants_match_the_header(tmp_path) -> None:
    c = _c_layout(tmp_path)
    if "attr.config3" in c:
        assert c["sizeof_attr"] == ctypes.sizeof(pe.PerfEventAttr) == pe.PERF_ATTR_SIZE_VER8
        assert pe.PerfEventAttr.config3.offset == c["attr.config3"]
    else:  # an older header ends before config3 (PERF_ATTR_SIZE_VER7)
        assert c["sizeof_attr"] == pe.PerfEventAttr.config3.offset
    assert c["sizeof_page"] == ctypes.sizeof(pe.PerfEventMmapPage)
    for f in ATTR_FIELDS:
        assert getattr(pe.PerfEventAttr, f).offset == c[f"attr.{f}"], f
    for f in PAGE_FIELDS:
        assert getattr(pe.PerfEventMmapPage, f).offset == c[f"page.{f}"], f
    for name in IOCTLS:
        assert getattr(pe, name) == c[name], name
    assert pe.PerfEventType.PERF_RECORD_LOST == c["PERF_RECORD_LOST"]
    assert pe.PerfEventType.PERF_RECORD_SAMPLE == c["PERF_RECORD_SAMPLE"]
    assert pe.PerfSampleFormat.PERF_SAMPLE_RAW == c["PERF_SAMPLE_RAW"]
    assert pe.PerfSwIds.PERF_COUNT_SW_BPF_OUTPUT == c["PERF_COUNT_SW_BPF_OUTPUT"]
