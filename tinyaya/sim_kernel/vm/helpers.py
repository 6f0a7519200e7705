"""BPF helper functions: ``helper_table()`` maps a helper id to ``fn(env, r1, r2, r3, r4, r5) -> int``.

Each function's docstring starts with the kernel prototype (include/uapi/linux/bpf.h).
Return values are the kernel's: negative errno values are returned as negative ints and
the VM stores them two's-complement in r0. Pointers are addresses in ``kernel.aspace``.
A pointer the verifier would have checked but that turns out bad (only possible for
unverified programs) raises MemoryFault, which the VM reports as a BpfFault.
The map, perf-event, ring-buffer and callback helpers live in ``helpers_maps.py``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import EFAULT, EINVAL, ENOENT, ERANGE
from ..memory import USER_TOP, MemoryFault
from .fault import TailCall
from .printf import MAX_BPRINTF_VARARGS, FormatError, bprintf, count_conversions

if TYPE_CHECKING:
    from .interp import RunEnv

Helper = Callable[..., int]
KERNEL_HALF = 0xFFFF_8000_0000_0000  # the lowest canonical kernel address on x86-64
MAX_TAIL_CALL_CNT = 33


def _read(env: RunEnv, addr: int, n: int) -> bytes:
    """``n`` bytes at ``addr`` (MemoryFault outside every region). Regions are 4 GiB aligned, so the
    fast path needs no ``AddressSpace.find``."""
    g = env.vm.aspace.regions.get(addr >> 32)
    o = addr & 0xFFFF_FFFF
    if g is None or o + n > g.size or addr < 0:
        return env.vm.aspace.read(addr, n) if n else b""
    return bytes(g.buf[o:o + n])


def _write(env: RunEnv, addr: int, data: bytes) -> None:
    """Store ``data`` at ``addr`` (MemoryFault outside a writable region)."""
    if not data:
        return
    g = env.vm.aspace.regions.get(addr >> 32)
    o = addr & 0xFFFF_FFFF
    if g is None or o + len(data) > g.size or not g.writable or addr < 0:
        env.vm.aspace.write(addr, data)
        return
    g.buf[o:o + len(data)] = data


def _try_read(env: RunEnv, addr: int, n: int) -> bytes | None:
    try:
        return env.vm.aspace.read(addr, n)
    except MemoryFault:
        return None


def _try_read_str(env: RunEnv, addr: int, limit: int) -> bytes | None:
    try:
        return env.vm.aspace.read_cstr(addr, limit)
    except MemoryFault:
        return None


def _task(env: RunEnv) -> Any:
    machine = getattr(env.vm.kernel, "machine", None)
    if machine is None:
        return None
    return machine.current_task(env.cpu)


def _signed(v: int, bits: int = 64) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


# -- time, CPU, randomness ----------------------------------------------------------------------------------
def bpf_ktime_get_ns(env: RunEnv, *_: int) -> int:
    """u64 bpf_ktime_get_ns(void): CLOCK_MONOTONIC."""
    t = env.vm.kernel.clock.now_ns()
    return t if type(t) is int else int(t)


def bpf_ktime_get_boot_ns(env: RunEnv, *_: int) -> int:
    """u64 bpf_ktime_get_boot_ns(void): CLOCK_BOOTTIME (includes suspend)."""
    return int(env.vm.kernel.clock.boot_ns())


def bpf_get_prandom_u32(env: RunEnv, *_: int) -> int:
    """u32 bpf_get_prandom_u32(void): from the kernel's seeded PRNG, so runs are reproducible."""
    return env.vm.prandom.getrandbits(32)


def bpf_get_smp_processor_id(env: RunEnv, *_: int) -> int:
    """u32 bpf_get_smp_processor_id(void)."""
    return env.cpu


# -- the current task -----------------------------------------------------------------------------------------
def bpf_get_current_pid_tgid(env: RunEnv, *_: int) -> int:
    """u64 bpf_get_current_pid_tgid(void): ``tgid << 32 | pid``; -EINVAL without a current task."""
    t = _task(env)
    if t is None:
        return -EINVAL
    return ((t.tgid & 0xFFFF_FFFF) << 32) | (t.pid & 0xFFFF_FFFF)


def bpf_get_current_uid_gid(env: RunEnv, *_: int) -> int:
    """u64 bpf_get_current_uid_gid(void): ``gid << 32 | uid``; -EINVAL without a current task."""
    t = _task(env)
    if t is None:
        return -EINVAL
    return ((t.gid & 0xFFFF_FFFF) << 32) | (t.uid & 0xFFFF_FFFF)


def bpf_get_current_comm(env: RunEnv, buf: int, size: int, *_: int) -> int:
    """long bpf_get_current_comm(void *buf, u32 size_of_buf): NUL-terminated and padded (strscpy_pad)."""
    size &= 0xFFFF_FFFF
    t = _task(env)
    if t is None:
        _write(env, buf, bytes(size))
        return -EINVAL
    comm = t.comm.encode() if isinstance(t.comm, str) else bytes(t.comm)
    comm = comm.split(b"\0", 1)[0][:15]
    if size:
        _write(env, buf, (comm[:size - 1] + bytes(size))[:size])
    return 0


def bpf_get_current_task(env: RunEnv, *_: int) -> int:
    """u64 bpf_get_current_task(void): the address of the current task_struct (0 if none)."""
    t = _task(env)
    return int(getattr(t, "task_addr", 0) or 0) if t is not None else 0


# -- probe_read family -----------------------------------------------------------------------------------------
def _space_error(src: int, where: str) -> int:
    """The error for reading ``src`` from the wrong address space, or 0 if the space is right.

    x86's ``copy_from_kernel_nofault_allowed`` refuses user (and non-canonical) addresses: -ERANGE;
    ``copy_from_user_nofault`` refuses kernel addresses (``access_ok``): -EFAULT. The legacy
    bpf_probe_read picks the side by the address (``bpf_probe_read_compat``)."""
    user = src <= USER_TOP
    if where == "kernel" and (user or src < KERNEL_HALF):
        return -ERANGE
    if where == "user" and not user:
        return -EFAULT
    return 0


def _probe_read(env: RunEnv, dst: int, size: int, src: int, where: str) -> int:
    size &= 0xFFFF_FFFF
    err = _space_error(src, where)
    data = None if err else _try_read(env, src, size)
    if data is None:
        _write(env, dst, bytes(size))
        return err or -EFAULT
    _write(env, dst, data)
    return 0


def _probe_read_str(env: RunEnv, dst: int, size: int, src: int, where: str) -> int:
    size &= 0xFFFF_FFFF
    if size == 0:
        return 0
    err = _space_error(src, where)
    s = None if err else _try_read_str(env, src, size - 1)
    if s is None:
        _write(env, dst, bytes(size))
        return err or -EFAULT
    _write(env, dst, s + b"\0")
    return len(s) + 1


def bpf_probe_read(env: RunEnv, dst: int, size: int, src: int, *_: int) -> int:
    """long bpf_probe_read(void *dst, u32 size, const void *unsafe_ptr): 0, or -EFAULT with dst zeroed."""
    return _probe_read(env, dst, size, src, "any")


def bpf_probe_read_str(env: RunEnv, dst: int, size: int, src: int, *_: int) -> int:
    """long bpf_probe_read_str(void *dst, u32 size, const void *unsafe_ptr): length including the NUL."""
    return _probe_read_str(env, dst, size, src, "any")


def bpf_probe_read_user(env: RunEnv, dst: int, size: int, src: int, *_: int) -> int:
    """long bpf_probe_read_user(void *dst, u32 size, const void *unsafe_ptr): user addresses only."""
    return _probe_read(env, dst, size, src, "user")


def bpf_probe_read_kernel(env: RunEnv, dst: int, size: int, src: int, *_: int) -> int:
    """long bpf_probe_read_kernel(void *dst, u32 size, const void *unsafe_ptr): kernel addresses only."""
    return _probe_read(env, dst, size, src, "kernel")


def bpf_probe_read_user_str(env: RunEnv, dst: int, size: int, src: int, *_: int) -> int:
    """long bpf_probe_read_user_str(void *dst, u32 size, const void *unsafe_ptr)."""
    return _probe_read_str(env, dst, size, src, "user")


def bpf_probe_read_kernel_str(env: RunEnv, dst: int, size: int, src: int, *_: int) -> int:
    """long bpf_probe_read_kernel_str(void *dst, u32 size, const void *unsafe_ptr)."""
    return _probe_read_str(env, dst, size, src, "kernel")


# -- printing ---------------------------------------------------------------------------------------------------
def _format(env: RunEnv, fmt_addr: int, fmt_size: int, args: list[int]) -> bytes | None:
    fmt_size &= 0xFFFF_FFFF
    raw = _read(env, fmt_addr, fmt_size)
    nul = raw.find(b"\0")
    if fmt_size == 0 or nul < 0:
        return None  # the format must be NUL-terminated within fmt_size
    try:
        return bprintf(raw[:nul], args,
                       lambda a, user: _try_read_str(env, a, 1023),
                       lambda a, k: _try_read(env, a, k))
    except FormatError:
        return None


def _emit(env: RunEnv, msg: bytes) -> None:
    tracing = getattr(env.vm.kernel, "tracing", None)
    if tracing is not None:
        tracing.trace_printk(env.cpu, _task(env), msg)


def bpf_trace_printk(env: RunEnv, fmt: int, fmt_size: int, a1: int, a2: int, a3: int) -> int:
    """long bpf_trace_printk(const char *fmt, u32 fmt_size, ...): at most 3 arguments; bytes written or -EINVAL."""
    raw = _try_read(env, fmt, fmt_size & 0xFFFF_FFFF) or b""
    if count_conversions(raw.split(b"\0", 1)[0]) > 3:
        return -EINVAL
    msg = _format(env, fmt, fmt_size, [a1, a2, a3])
    if msg is None:
        return -EINVAL
    _emit(env, msg)
    return len(msg)


def _u64_array(env: RunEnv, data: int, data_len: int) -> list[int] | None:
    data_len &= 0xFFFF_FFFF
    if data_len % 8 or data_len > MAX_BPRINTF_VARARGS * 8 or (data_len and not data):
        return None
    raw = _read(env, data, data_len)
    return [int.from_bytes(raw[i:i + 8], "little") for i in range(0, data_len, 8)]


def bpf_trace_vprintk(env: RunEnv, fmt: int, fmt_size: int, data: int, data_len: int, *_: int) -> int:
    """long bpf_trace_vprintk(const char *fmt, u32 fmt_size, const void *data, u32 data_len)."""
    args = _u64_array(env, data, data_len)
    if args is None:
        return -EINVAL
    msg = _format(env, fmt, fmt_size, args)
    if msg is None:
        return -EINVAL
    _emit(env, msg)
    return len(msg)


def bpf_snprintf(env: RunEnv, out: int, out_size: int, fmt: int, data: int, data_len: int) -> int:
    """long bpf_snprintf(char *str, u32 str_size, const char *fmt, u64 *data, u32 data_len):
    the length of the whole formatted string including the NUL; writes at most str_size bytes."""
    args = _u64_array(env, data, data_len)
    if args is None:
        return -EINVAL
    raw = _try_read_str(env, fmt, 1 << 16)
    if raw is None:
        return -EINVAL
    try:
        msg = bprintf(raw, args, lambda a, user: _try_read_str(env, a, 1023), lambda a, k: _try_read(env, a, k))
    except FormatError:
        return -EINVAL
    out_size &= 0xFFFF_FFFF
    if out_size:
        _write(env, out, msg[:out_size - 1] + b"\0")
    return len(msg) + 1


# -- control flow ----------------------------------------------------------------------------------------------
def bpf_tail_call(env: RunEnv, ctx: int, prog_array: int, index: int, *_: int) -> int:
    """long bpf_tail_call(void *ctx, struct bpf_map *prog_array_map, u32 index): on success it does not
    return (the loop continues in the target); on failure execution falls through."""
    index &= 0xFFFF_FFFF
    region = env.vm.aspace.regions.get(prog_array >> 32)
    m = region.owner if region is not None else None
    if m is None or index >= getattr(m, "max_entries", 0):
        return -ENOENT  # falls through; the verifier leaves r0 unreadable after a tail call
    if env.tail_calls >= MAX_TAIL_CALL_CNT:
        return -ENOENT
    target = m.prog_at(index)
    if target is None:
        return -ENOENT
    env.tail_calls += 1
    env.tail_target = target
    env.regs[1] = ctx
    raise TailCall()


def bpf_spin_lock(env: RunEnv, lock: int, *_: int) -> int:
    """long bpf_spin_lock(struct bpf_spin_lock *lock): one program runs at a time here, so the lock
    word is only marked (the verifier pairs every lock with an unlock)."""
    _write(env, lock, (1).to_bytes(4, "little"))
    return 0


def bpf_spin_unlock(env: RunEnv, lock: int, *_: int) -> int:
    """long bpf_spin_unlock(struct bpf_spin_lock *lock)."""
    _write(env, lock, bytes(4))
    return 0


def helper_table() -> dict[int, Helper]:
    """Helper id (``enum bpf_func_id``) -> implementation."""
    from . import helpers_maps as hm
    from .helpers_more_maps import MORE_MAP_HELPERS
    from .helpers_pkt import PACKET_HELPERS

    return PACKET_HELPERS | MORE_MAP_HELPERS | {
        1: hm.bpf_map_lookup_elem, 2: hm.bpf_map_update_elem, 3: hm.bpf_map_delete_elem,
        4: bpf_probe_read, 5: bpf_ktime_get_ns, 6: bpf_trace_printk, 7: bpf_get_prandom_u32,
        8: bpf_get_smp_processor_id, 12: bpf_tail_call, 14: bpf_get_current_pid_tgid,
        15: bpf_get_current_uid_gid, 16: bpf_get_current_comm, 25: hm.bpf_perf_event_output,
        35: bpf_get_current_task, 45: bpf_probe_read_str, 87: hm.bpf_map_push_elem, 88: hm.bpf_map_pop_elem,
        89: hm.bpf_map_peek_elem, 93: bpf_spin_lock, 94: bpf_spin_unlock, 112: bpf_probe_read_user,
        113: bpf_probe_read_kernel, 114: bpf_probe_read_user_str, 115: bpf_probe_read_kernel_str,
        125: bpf_ktime_get_boot_ns, 130: hm.bpf_ringbuf_output, 131: hm.bpf_ringbuf_reserve,
        132: hm.bpf_ringbuf_submit, 133: hm.bpf_ringbuf_discard, 134: hm.bpf_ringbuf_query,
        164: hm.bpf_for_each_map_elem, 165: bpf_snprintf, 177: bpf_trace_vprintk, 181: hm.bpf_loop,
        195: hm.bpf_map_lookup_percpu_elem,
    }


__all__ = ["helper_table", "_signed"]
