#!/usr/bin/env python3
"""syscall_ebpf user space, shaped like the Aya example's ``main.rs`` (DragonOS's syscall_ebpf).

It loads the eBPF object, starts the aya-log logger, loads the ``syscall_ebpf``
kprobe and attaches it to the kernel function ``sys_enter``, then prints
SYSCALL_LIST every interval until Ctrl-C (or ``--duration``). It runs on an
asyncio current-thread loop, like ``#[tokio::main(flavor = "current_thread")]``.

On the simulated kernel, the machine's processes (a deterministic built-in
workload) issue syscalls in a background task, the way a real machine's
processes would; with ``--backend linux`` the real machine does.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "syscall_ebpf-common"))

from common import SyscallCount, SyscallKey  # noqa: E402  (syscall_ebpf-common)

from tinyaya import Ebpf, EbpfLogger  # noqa: E402
from tinyaya.maps import HashMap  # noqa: E402
from tinyaya.programs import KProbe  # noqa: E402

OBJECT = HERE.parent / "syscall_ebpf-ebpf" / "syscall_ebpf.o"
log = logging.getLogger("syscall_ebpf")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: until Ctrl-C)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between prints of SYSCALL_LIST")
    p.add_argument("--backend", choices=["sim", "linux"], default="sim")
    p.add_argument("--workload", default="default", help="simulated workload (see `tinyaya workloads`)")
    p.add_argument("--object", type=Path, default=OBJECT, help="the eBPF object")
    p.add_argument("--log-level", default="info", choices=["error", "warn", "info", "debug"],
                   help="like RUST_LOG: 'info' shows every aya-log record the program emits")
    return p.parse_args(argv)


def make_kernel(backend: str):  # type: ignore[no-untyped-def]
    if backend == "linux":
        from tinyaya.kernel import LinuxKernel

        return LinuxKernel()
    from tinyaya.sim_kernel import SimKernel

    return SimKernel()


async def run_machine(kernel, workload: str) -> None:  # type: ignore[no-untyped-def]
    """The simulated machine's processes: a slice of syscalls, then let the other tasks run."""
    runner = kernel.machine.workload(workload)
    counts: dict[int, int] = {}
    while True:
        runner.step(200, counts)
        await asyncio.sleep(0.001)


async def print_syscall_list(syscall_list: HashMap, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        print_once(syscall_list)


def print_once(syscall_list: HashMap) -> None:
    print("------------SYSCALL_LIST----------------")
    for key, value in sorted(syscall_list.items()):
        print(f"syscall: {key}, count: {value}")
    print("----------------------------------------", flush=True)


async def main(opt: argparse.Namespace) -> int:
    level = {"warn": logging.WARNING}.get(opt.log_level, getattr(logging, opt.log_level.upper(), logging.INFO))
    logging.basicConfig(level=level, format="[%(levelname)s %(name)s] %(message)s")  # env_logger::init()

    kernel = make_kernel(opt.backend)
    bpf = Ebpf.load_file(opt.object, kernel=kernel)
    logger = None
    try:
        logger = EbpfLogger.init(bpf)
    except Exception as e:  # noqa: BLE001 - as in main.rs: warn and go on without logs
        log.warning("failed to initialize eBPF logger: %s", e)

    program = bpf.program_mut("syscall_ebpf")
    assert isinstance(program, KProbe)
    program.load()
    program.attach("sys_enter", 0)
    log.info("attach the kprobe to sys_enter")

    syscall_list = HashMap(bpf.map("SYSCALL_LIST"), key=SyscallKey, value=SyscallCount)
    tasks = [asyncio.create_task(print_syscall_list(syscall_list, opt.interval))]
    if logger is not None:
        tasks.append(logger.start())
    if opt.backend == "sim":
        tasks.append(asyncio.create_task(run_machine(kernel, opt.workload)))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    log.info("Waiting for Ctrl-C...")
    try:
        await asyncio.wait_for(stop.wait(), timeout=opt.duration)
    except TimeoutError:
        pass
    log.info("Exiting...")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if logger is not None:
        logger.close()
    print_once(syscall_list)
    bpf.close()
    return 0


if __name__ == "__main__":
    _ = ctypes  # the common layout's types are ctypes
    sys.exit(asyncio.run(main(parse_args(sys.argv[1:]))))
