"""A second process for the bpffs tests: ``python pin_worker.py ROOT MODE ...``.

Modes:
* ``create PIN N``: create a 1-entry ARRAY (value: 32 u64 words), fill it with N, pin it, exit;
* ``write PIN START COUNT``: open the pin and store START..START+COUNT-1 (every word the same), then exit;
* ``write-forever PIN``: as write, counting up until killed; prints ``ready`` after the first store;
* ``read PIN COUNT``: open the pin, read COUNT times; print ``torn`` and exit 1 on a torn or backwards value,
  else print the last value.
"""
from __future__ import annotations

import ctypes
import struct
import sys

from tinyaya.sim_kernel import SimKernel
from tinyaya.uapi.bpf import BpfCmd, MapCreateAttr, MapElemAttr, ObjAttr

WORDS = 32


def value(n: int) -> bytes:
    return struct.pack(f"<{WORDS}Q", *([n] * WORDS))


def obj_get(k: SimKernel, path: str) -> int:
    p = ctypes.create_string_buffer(path.encode())
    return k.bpf(BpfCmd.BPF_OBJ_GET, ObjAttr(pathname=ctypes.addressof(p)))


def store(k: SimKernel, fd: int, n: int, key: ctypes.Array[ctypes.c_char], val: ctypes.Array[ctypes.c_char]) -> None:
    ctypes.memmove(val, value(n), WORDS * 8)
    k.bpf(BpfCmd.BPF_MAP_UPDATE_ELEM, MapElemAttr(map_fd=fd, key=ctypes.addressof(key), value=ctypes.addressof(val)))


def load(k: SimKernel, fd: int, key: ctypes.Array[ctypes.c_char], val: ctypes.Array[ctypes.c_char]) -> int:
    k.bpf(BpfCmd.BPF_MAP_LOOKUP_ELEM, MapElemAttr(map_fd=fd, key=ctypes.addressof(key), value=ctypes.addressof(val)))
    words = struct.unpack(f"<{WORDS}Q", val.raw[:WORDS * 8])
    if len(set(words)) != 1:
        print("torn", words, flush=True)
        sys.exit(1)
    return words[0]


def main(argv: list[str]) -> int:
    root, mode, pin = argv[0], argv[1], argv[2]
    k = SimKernel(bpffs_root=root)
    key = ctypes.create_string_buffer(4)
    val = ctypes.create_string_buffer(WORDS * 8)
    if mode == "create":
        fd = k.bpf(BpfCmd.BPF_MAP_CREATE, MapCreateAttr(map_type=2, key_size=4, value_size=WORDS * 8, max_entries=1))
        store(k, fd, int(argv[3]), key, val)
        p = ctypes.create_string_buffer(pin.encode())
        k.bpf(BpfCmd.BPF_OBJ_PIN, ObjAttr(pathname=ctypes.addressof(p), bpf_fd=fd))
        return 0
    fd = obj_get(k, pin)
    if mode == "write":
        start, count = int(argv[3]), int(argv[4])
        for n in range(start, start + count):
            store(k, fd, n, key, val)
        return 0
    if mode == "write-forever":
        n = 1
        store(k, fd, n, key, val)
        print("ready", flush=True)
        while True:
            n += 1
            store(k, fd, n, key, val)
    if mode == "read":
        last = 0
        for _ in range(int(argv[3])):
            cur = load(k, fd, key, val)
            if cur < last:
                print("backwards", last, cur, flush=True)
                return 1
            last = cur
        print(last, flush=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
