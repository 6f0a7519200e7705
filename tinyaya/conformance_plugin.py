"""The bpf_conformance plugin: ``tinyaya conformance-plugin [MEMORY_HEX] [--debug] [--elf]``.

Protocol (Alan-Jowett/bpf_conformance, ``src/bpf_conformance.cc``): the runner passes the
input memory as base16 bytes (``"00 01 ff "``) in the first argument (omitted when empty),
then its plugin options, then ``--elf`` when it sends an ELF object instead of raw
instructions; it writes the program as base16 bytes on one line of stdin. The plugin prints
r0 in hex and exits 0; on a load or runtime error it prints a message and exits non-zero.

How the program runs: the suite's programs are not programs of any Linux program type (r1
is a plain memory pointer, r2 its length, and nothing is verified), so the plugin runs them
on ``tinyaya.sim_kernel.SimKernel``'s interpreter directly (``kernel.vm.run``) with the memory
in a PACKET region, instead of through BPF_PROG_LOAD/BPF_PROG_TEST_RUN. Helper ids are the
kernel's (the suite only calls helper 5 with a value it ignores). A runtime fault (an access
outside the memory or the stack, an unknown helper, a non-terminating loop) is an error.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from .isa.insn import Insn, InsnDecodeError, decode

USAGE = "usage: tinyaya conformance-plugin [MEMORY_HEX] [--debug] [--elf]"


@dataclass
class _Prog:
    """The few fields the VM reads of a loaded program."""

    name: str
    insns: list[Insn]
    prog_type: int = 0
    compiled: Any = field(default=None)


class PluginError(Exception):
    pass


def _base16(text: str, what: str) -> bytes:
    """The runner's ``"b7 00 00 ..."`` (one byte per token); runs of hex digits are read two at a time."""
    out = bytearray()
    try:
        for tok in text.split():
            if len(tok) <= 2:
                out.append(int(tok, 16))
            else:
                out += bytes.fromhex(tok)
    except ValueError as e:
        raise PluginError(f"bad base16 {what}: {e}") from None
    return bytes(out)


def _elf_text(data: bytes) -> list[Insn]:
    """The first executable section of an eBPF ELF object (what the suite's bpf_writer emits)."""
    import io

    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        progbits = [sec for sec in elf.iter_sections() if sec["sh_type"] == "SHT_PROGBITS" and sec.data_size]
        # an executable section (SHF_EXECINSTR); else the first one that is not maps, license or BTF
        chosen = [sec for sec in progbits if sec["sh_flags"] & 0x4] or [
            sec for sec in progbits if sec.name not in ("maps", ".maps", "license") and not sec.name.startswith(
                (".BTF", ".debug", ".rodata", ".data", ".bss")) and sec.data_size % 8 == 0]
        if chosen:
            return decode(chosen[0].data(), big_endian=not elf.little_endian)
    except Exception as e:  # noqa: BLE001 - pyelftools raises many types on bad input
        raise PluginError(f"bad ELF object: {e}") from None
    raise PluginError("the ELF object has no program section")


def run_program(insns: list[Insn], mem: bytes, *, debug: bool = False) -> int:
    """Run ``insns`` with r1 = the memory, r2 = its length, on a fresh simulated kernel; return r0."""
    from .sim_kernel.vm import Vm
    from .sim_kernel.vm.contexts import mem_buffer

    kernel = _kernel()
    vm: Vm = kernel.vm
    if mem:
        region = mem_buffer(vm, 0, len(mem))
        region.buf[:] = mem
        ctx = region.base
    else:
        region, ctx = None, 0
    r0 = vm.run(_Prog("conformance", insns), ctx, 0, args=(len(mem),))
    if debug and region is not None:
        print(f"memory after: {bytes(region.buf).hex(' ')}", file=sys.stderr)
    return r0


def _kernel() -> Any:
    try:
        from .sim_kernel import SimKernel  # type: ignore[attr-defined]

        return SimKernel()
    except ImportError:
        from types import SimpleNamespace

        from .sim_kernel.clock import Clock
        from .sim_kernel.memory import AddressSpace

        k = SimpleNamespace(aspace=AddressSpace(), clock=Clock(), ncpus=1, seed=0)
        from .sim_kernel.vm import Vm

        k.vm = Vm(k)
        return k


def main(argv: list[str] | None = None, stdin: Any = None, stdout: Any = None) -> int:
    """Entry point (``argv`` without the program name). Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    debug = elf = False
    positional: list[str] = []
    for a in argv:
        if a == "--debug":
            debug = True
        elif a == "--elf":
            elf = True
        elif a in ("-h", "--help"):
            print(USAGE, file=stdout)
            return 0
        elif a.startswith("--"):
            continue  # options meant for other plugins are ignored, as the reference plugins do
        else:
            positional.append(a)
    try:
        mem = _base16(positional[0], "memory") if positional else b""
        line = stdin.readline()
        code = _base16(line, "program")
        if not code:
            raise PluginError("no program on stdin")
        if elf:
            insns = _elf_text(code)
        else:
            try:
                insns = decode(code)
            except InsnDecodeError as e:
                raise PluginError(str(e)) from None
        if debug:
            from .isa.disasm import disasm_lines

            for pc, text in disasm_lines(insns):
                print(f"{pc:4}: {text}", file=sys.stderr)
        from .sim_kernel.vm.checks import reserved_fields

        problem = reserved_fields(insns)
        if problem is not None:
            raise PluginError(problem)
        r0 = run_program(insns, mem, debug=debug)
    except PluginError as e:
        print(str(e), file=stdout)
        return 1
    except Exception as e:  # noqa: BLE001 - BpfFault and anything else: a message, a non-zero exit
        print(str(e), file=stdout)
        return 1
    print(f"{r0:x}", file=stdout)
    return 0


def entry_point() -> None:
    """The ``tinyaya-conformance-plugin`` console script (the path to give bpf_conformance_runner)."""
    sys.exit(main())


if __name__ == "__main__":
    raise SystemExit(main())
