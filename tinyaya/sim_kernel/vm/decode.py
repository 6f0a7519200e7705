"""Pre-decoding: one Python closure per instruction slot, built once per program.

``decode(insns, vm, prog_type)`` returns a list ``code`` with ``code[pc](R) -> next_pc``.
``R`` is the run state: ``R[0..10]`` the registers, ``R[11]`` the ``RunEnv``,
``R[12]`` the call-frame stack, ``R[13]`` the back-edge budget, ``R[14]``/``R[15]`` the
buffer and base address of the run's stack region and ``R[16..18]`` its u64/u32/u16 views
(frame-pointer accesses skip the region lookup; r10 is read-only, so they stay inside it). Every region's base is 4 GiB aligned
(memory.py), so the offset of an address in its region is ``addr & 0xFFFFFFFF``. Program exit
returns None, which ends the dispatch loop (``while pc is not None``).

The statements come from ``semantics.py`` (the one definition of the ISA);
this module only binds operands. Closure factories are generated once per
process from the templates with ``exec``, then called per instruction.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...isa.insn import Insn
from ...isa.opcodes import (
    BPF_ABS,
    BPF_ALU,
    BPF_ALU64,
    BPF_ATOMIC,
    BPF_B,
    BPF_CALL,
    BPF_CMPXCHG,
    BPF_DW,
    BPF_END,
    BPF_EXIT,
    BPF_FETCH,
    BPF_H,
    BPF_IMM,
    BPF_IND,
    BPF_JA,
    BPF_JCOND,
    BPF_JMP,
    BPF_JMP32,
    BPF_LD,
    BPF_LDX,
    BPF_MEM,
    BPF_MEMSX,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_ST,
    BPF_STX,
    BPF_W,
    BPF_X,
    BPF_XCHG,
)
from ..memory import RegionKind
from . import semantics as sem
from .fault import LdAbsExit, SwitchCode, VmTrap

if TYPE_CHECKING:
    from .interp import Vm

Op = Callable[[list[Any]], Any]  # returns the next pc, or None at program exit

M64 = sem.M64
MAX_CALL_FRAMES = 8  # MAX_CALL_FRAMES in include/linux/bpf_verifier.h
STACK_FRAME = 512  # MAX_BPF_STACK
BPF_LOAD_ACQ = 0x100  # include/uapi/linux/bpf.h (Linux 6.15+)
BPF_STORE_REL = 0x110

_LOAD_FMT = {BPF_B: "<B", BPF_H: "<H", BPF_W: "<I", BPF_DW: "<Q"}
_LOADSX_FMT = {BPF_B: "<b", BPF_H: "<h", BPF_W: "<i"}
_SIZE = {BPF_B: 1, BPF_H: 2, BPF_W: 4, BPF_DW: 8}
_MASK = {BPF_B: 0xFF, BPF_H: 0xFFFF, BPF_W: 0xFFFF_FFFF, BPF_DW: M64}

_factories: dict[str, Callable[..., Op]] = {}


_bind = sem._bind


def _factory(src: str) -> Callable[..., Op]:
    """exec ``src`` (a ``def make(...)``) once and cache the factory."""
    fn = _factories.get(src)
    if fn is None:
        ns: dict[str, Any] = dict(sem.TEMPLATE_GLOBALS, MISS=MISS, Miss=_Miss)
        exec(compile(src, "<tinyaya.vm>", "exec"), ns)  # noqa: S102 - our own templates
        fn = ns["make"]
        _factories[src] = fn
    return fn


def _alu(stmt: str, reg_src: bool) -> Callable[..., Op]:
    body = _bind(stmt, "R[d]", "R[s]" if reg_src else "imm")
    return _factory(f"def make(d, s, imm, nxt):\n def op(R):\n  {body}\n  return nxt\n return op\n")


def _jmp(cond: str, reg_src: bool, back: bool) -> Callable[..., Op]:
    c = _bind(cond, "R[d]", "R[s]" if reg_src else "imm")
    if back:
        # a back-edge spends one unit of the run's budget, so that an unverified loop cannot hang
        taken = "R[13] -= 1\n   if R[13] < 0: budget()\n   return tgt"
    else:
        taken = "return tgt"
    return _factory(f"def make(d, s, imm, nxt, tgt, budget):\n def op(R):\n  if {c}:\n   {taken}\n"
                    f"  return nxt\n return op\n")


def _out_of_budget() -> None:
    raise VmTrap("runtime budget of back-edges exhausted (the program does not terminate)")


def _trap(message: str) -> Op:
    def op(R: list[Any]) -> int:
        raise VmTrap(message)
    return op


def _ja(tgt: int, back: bool) -> Op:
    if not back:
        def op(R: list[Any]) -> int:
            return tgt
        return op

    def op_back(R: list[Any]) -> int:
        R[13] -= 1
        if R[13] < 0:
            _out_of_budget()
        return tgt
    return op_back


def _const(d: int, value: int, nxt: int) -> Op:
    def op(R: list[Any]) -> int:
        R[d] = value
        return nxt
    return op


# -- memory ------------------------------------------------------------------------------------------------
# Address computation, as source: the region is the one the exact address ``a = base + off`` falls in
# (``regions[a >> 32]``), the offset ``a & 0xFFFFFFFF`` (bases are 4 GiB aligned). With a non-negative
# ``off`` the fast path looks the region up from the base pointer alone and adds ``off`` to the small
# offset, which saves big-int arithmetic; that is the exact address whenever the access stays inside the
# base's region. When it does not (no region: AttributeError; past its end: IndexError/struct.error; a
# read-only region for a write: _Miss), the access is redone with the exact address (_ADDR_NEG), so a
# pointer just below its region (``r9 = map_value - 1; *(u8 *)(r9 + 1)``) reads the region, as Linux
# does. An access that fails at the exact address too raises, and ``Vm._fault`` reports that address.
_ADDR_POS = "  a = {base}\n  g = rget(a >> 32)\n  o = (a & 0xFFFFFFFF) + off\n"
_ADDR_NEG = "  a = {base} + off\n  g = rget(a >> 32)\n  o = a & 0xFFFFFFFF\n"
# frame-pointer accesses: the run's stack (R[14] buffer, R[16..18] its u64/u32/u16 views)
_FP = "(R[10] + off) & 0xFFFFFFFF"
_VIEW = {8: (16, 3), 4: (17, 2), 2: (18, 1), 1: (14, 0)}
_RO = "  if not g.writable: readonly(g, a)\n"
_RO_FAST = "  if not g.writable: raise Miss\n"


class _Miss(Exception):
    """The fast path's region (the base pointer's) is read-only: redo the write at the exact address."""


#: what the fast path raises when ``base + off`` is not inside the base pointer's region
MISS = (AttributeError, IndexError, struct.error, _Miss)


def _readonly(g: Any, a: int) -> None:
    raise VmTrap(f"write to read-only {g.kind.value} region {g.name!r}", a & M64)


def _mem_factory(body: str, off: int, base: str, write: bool = False) -> Callable[..., Op]:
    if off < 0:
        addr = _ADDR_NEG.format(base=base) + (_RO if write else "") + body
    else:
        fast = (_RO_FAST if write else "") + body
        slow = _ADDR_NEG.format(base=base) + (_RO if write else "") + body
        addr = (_ADDR_POS.format(base=base) + "  try:\n" + _indent(fast) + "  except MISS:\n" + _indent(slow))
    return _factory("def make(d, s, off, nxt, value, rget, unpack, pack, mask, ctx_load, CTX, readonly):\n"
                    f" def op(R):\n{addr}  return nxt\n return op\n")


def _indent(lines: str) -> str:
    return "".join(" " + line + "\n" for line in lines.splitlines())


def _load(d: int, s: int, off: int, size: int, fmt: str, signed: bool, nxt: int, regions: dict[int, Any],
          ctx_load: Any) -> Op:
    """``dst = *(size *)(src + off)``, sign-extended for BPF_MEMSX. A context region's owner may
    rewrite the load (``Vm.ctx_load``)."""
    unpack = struct.Struct(fmt).unpack_from
    sx = " & M64" if signed else ""
    if s == 10 and -STACK_FRAME <= off <= -size:
        if not signed and off % size == 0:
            view, shift = _VIEW[size]
            body = f"  R[d] = R[{view}][({_FP}) >> {shift}]\n"
        else:
            body = f"  R[d] = unpack(R[14], {_FP})[0]{sx}\n"
        make = _factory("def make(d, off, nxt, unpack):\n def op(R):\n" + body + "  return nxt\n return op\n")
        return make(d, off, nxt, unpack)
    plain = "g.buf[o]" if size == 1 and not signed else "unpack(g.buf, o)[0]"
    if ctx_load is None:  # a program type whose context has no rewritten fields
        body = f"  R[d] = {plain}{sx}\n"
    else:
        body = (f"  if g.kind is CTX: R[d] = ctx_load(g, o, {size}, {signed}){sx}\n"
                f"  else: R[d] = {plain}{sx}\n")
    return _mem_factory(body, off, "R[s]")(d, s, off, nxt, 0, regions.get, unpack, None, 0, ctx_load,
                                            RegionKind.CTX, _readonly)


def _store(d: int, s: int | None, imm: int, off: int, fmt: str, mask: int, nxt: int, regions: dict[int, Any]) -> Op:
    """``*(size *)(dst + off) = src`` (STX) or ``= imm`` (ST)."""
    pack = struct.Struct(fmt).pack_into
    size = struct.calcsize(fmt)
    val = "value" if s is None else ("R[s]" if size == 8 else "(R[s] & mask)")
    if d == 10 and -STACK_FRAME <= off <= -size:
        if off % size == 0:
            view, shift = _VIEW[size]
            body = f"  R[{view}][({_FP}) >> {shift}] = {val}\n"
        else:
            body = f"  pack(R[14], {_FP}, {val})\n"
        make = _factory("def make(s, off, nxt, value, mask, pack):\n def op(R):\n" + body + "  return nxt\n"
                        " return op\n")
        return make(s, off, nxt, imm & mask, mask, pack)
    put = f"  g.buf[o] = {val}\n" if size == 1 else f"  pack(g.buf, o, {val})\n"
    return _mem_factory(put, off, "R[d]", True)(d, s, off, nxt, imm & mask, regions.get, None, pack, mask, None,
                                                RegionKind.CTX, _readonly)


def _atomic(d: int, s: int, off: int, size: int, imm: int, nxt: int, regions: dict[int, Any]) -> Op:
    """BPF_ATOMIC (RFC 9669 section 5.3): add/or/and/xor [| fetch], xchg, cmpxchg in 32 and 64 bits.
    The value is read and written in one step: one program runs at a time here."""
    st = struct.Struct("<Q" if size == 8 else "<I")
    mask = M64 if size == 8 else sem.M32
    if imm == BPF_CMPXCHG:
        body = ("  old = unpack(g.buf, o)[0]\n  if old == R[0] & mask: pack(g.buf, o, R[s] & mask)\n"
                "  R[0] = old\n")
    elif imm == BPF_XCHG:
        body = "  old = unpack(g.buf, o)[0]\n  pack(g.buf, o, R[s] & mask)\n  R[s] = old\n"
    else:
        rmw = sem.ATOMIC_RMW.get(imm & ~BPF_FETCH)
        if rmw is None:
            return _trap(f"invalid atomic operation {imm:#x}")
        body = (f"  old = unpack(g.buf, o)[0]\n  pack(g.buf, o, ({_bind(rmw, 'D', 'R[s]', 'old')}) & mask)\n"
                + ("  R[s] = old\n" if imm & BPF_FETCH else ""))
    return _mem_factory(body, off, "R[d]", True)(d, s, off, nxt, 0, regions.get, st.unpack_from, st.pack_into,
                                                 mask, None, RegionKind.CTX, _readonly)


def _ld_abs(size: int, imm: int, s: int | None, nxt: int, vm: Vm) -> Op:
    """Legacy BPF_LD | BPF_ABS/BPF_IND: r0 = ntoh(*(size *)(skb->data + imm [+ src])), r6 is the skb;
    negative offsets address the network (SKF_NET_OFF) or Ethernet (SKF_LL_OFF) header.

    Out of bounds the program exits with r0 = 0, as ``bpf_skb_load_helper_*`` makes it.
    """
    ld_abs_bytes = vm.ld_abs_bytes

    def op(R: list[Any]) -> int:
        k = imm + (R[s] & sem.M32 if s is not None else 0)
        k = ((k & sem.M32) ^ sem.SB32) - sem.SB32
        raw = ld_abs_bytes(R[6], k, size)
        if raw is None:
            raise LdAbsExit()
        R[0] = int.from_bytes(raw, "big")
        return nxt
    return op


def _helper(fn: Callable[..., int], nxt: int) -> Op:
    def op(R: list[Any]) -> int:
        R[0] = fn(R[11], R[1], R[2], R[3], R[4], R[5]) & M64
        return nxt
    return op


def _local_call(tgt: int, nxt: int, code: list[Op]) -> Op:
    """bpf-to-bpf call: a new 512-byte frame, r6-r9 and r10 saved for the return (at most 8 frames)."""
    def op(R: list[Any]) -> int:
        fr = R[12]
        if len(fr) >= MAX_CALL_FRAMES - 1:
            raise VmTrap(f"the call stack is too deep ({MAX_CALL_FRAMES} frames)")
        fr.append((nxt, R[6], R[7], R[8], R[9], R[10], code))
        R[10] += STACK_FRAME
        return tgt
    return op


def _callx(reg: int, nxt: int, code: list[Op], vm: Vm) -> Op:
    """callx: the register holds a BPF_PSEUDO_FUNC address (a local call) or, as in uBPF and the
    conformance suite, a helper id."""
    helpers = vm.helpers

    def op(R: list[Any]) -> int:
        v = R[reg]
        if v >= sem.FUNC_ADDR_BASE:
            tgt = v - sem.FUNC_ADDR_BASE
            if tgt >= len(code):
                raise VmTrap(f"callx to invalid function address {v:#x}", v)
            fr = R[12]
            if len(fr) >= MAX_CALL_FRAMES - 1:
                raise VmTrap(f"the call stack is too deep ({MAX_CALL_FRAMES} frames)")
            fr.append((nxt, R[6], R[7], R[8], R[9], R[10], code))
            R[10] += STACK_FRAME
            return tgt
        fn = helpers.get(v)
        if fn is None:
            raise VmTrap(f"callx to unknown helper or address {v:#x}", v)
        R[0] = fn(R[11], R[1], R[2], R[3], R[4], R[5]) & M64
        return nxt
    return op


def _exit(code: list[Op]) -> Op:
    """exit: return to the caller's frame (restoring r6-r10), or end the program (None)."""
    def op(R: list[Any]) -> int | None:
        fr = R[12]
        if fr:
            t = fr.pop()
            R[6], R[7], R[8], R[9], R[10] = t[1], t[2], t[3], t[4], t[5]
            if t[6] is not code:
                R[11].switch_code = t[6]
                raise SwitchCode(t[0])
            return t[0]
        return None
    return op


def _may_goto(tgt: int, nxt: int) -> Op:
    """may_goto: falls through while the loop counter lasts (BPF_MAX_LOOPS), then jumps (do_misc_fixups).

    One counter per run, not per frame. Linux 6.18 on x86-64 uses the timed variant instead (the
    loop ends after about 250 ms, ``bpf_check_timed_may_goto``): a count keeps runs deterministic,
    and programs whose result depends on when may_goto gives up differ from the kernel by nature."""
    def op(R: list[Any]) -> int:
        env = R[11]
        if env.may_goto_left > 0:
            env.may_goto_left -= 1
            return nxt
        return tgt
    return op


#: program types whose context has fields convert_ctx_access turns into pointers (__sk_buff, xdp_md...)
CTX_REWRITE_TYPES = frozenset({1, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15, 16, 19, 21, 22, 23})


def decode(insns: list[Insn], vm: Vm, prog_type: int | None = None) -> list[Op]:
    """Closures for every slot of ``insns`` (ld_imm64 already resolved by PROG_LOAD). Loads check for
    rewritten context fields only for the program types that have them (None: assume they may)."""
    code: list[Op] = []
    ctx_load = vm.ctx_load if prog_type is None or int(prog_type) in CTX_REWRITE_TYPES else None
    n = len(insns)
    regions = vm.aspace.regions
    pc = 0
    while pc < n:
        try:
            op, width = _decode_one(insns, pc, n, code, vm, regions, ctx_load)
        except VmTrap as e:
            op, width = _trap(e.message), 1
        code.append(op)
        if width == 2:
            code.append(_trap("jump into the middle of a ld_imm64"))
        pc += width
    return code


def _decode_one(insns: list[Insn], pc: int, n: int, code: list[Op], vm: Vm, regions: dict[int, Any],
                ctx_load: Any) -> tuple[Op, int]:
    ins = insns[pc]
    c, d, s, off, imm = ins.code, ins.dst, ins.src, ins.off, ins.imm
    cls = c & 0x07
    nxt = pc + 1
    if d > 10 or s > 10:
        raise VmTrap("invalid register")
    atomic = cls == BPF_STX and c & 0xE0 == BPF_ATOMIC
    if (d == 10 and (cls in (BPF_ALU, BPF_ALU64, BPF_LDX, BPF_LD) or atomic and imm == BPF_LOAD_ACQ)
            or s == 10 and atomic and imm != BPF_LOAD_ACQ and imm & BPF_FETCH):
        raise VmTrap("frame pointer is read only")  # as check_reg_arg says; r10 never changes
    if cls in (BPF_ALU, BPF_ALU64):
        op = c & 0xF0
        reg_src = bool(c & BPF_X)
        if op == BPF_END:
            key = (cls == BPF_ALU64, 1 if reg_src else 0, imm)
            stmt = sem.END.get(key)
            if stmt is None:
                raise VmTrap(f"invalid byte swap width {imm}")
            return _alu(stmt, False)(d, s, 0, nxt), 1
        table = sem.ALU64 if cls == BPF_ALU64 else sem.ALU32
        k = off if op in (0x30, 0x90, 0xB0) else 0  # DIV, MOD, MOV carry a variant in off
        stmt = table.get((op, k))
        if stmt is None:
            raise VmTrap(f"invalid ALU opcode {c:#04x} off {off}")
        if not reg_src:
            imm = imm & M64 if cls == BPF_ALU64 else imm & sem.M32
        return _alu(stmt, reg_src)(d, s, imm, nxt), 1
    if cls in (BPF_JMP, BPF_JMP32):
        op = c & 0xF0
        if op == BPF_JA:
            delta = imm if cls == BPF_JMP32 else off  # gotol carries its offset in imm
            tgt = pc + delta + 1
            _check_target(tgt, n)
            return _ja(tgt, tgt <= pc), 1
        if op == BPF_EXIT and cls == BPF_JMP:
            return _exit(code), 1
        if op == BPF_CALL and cls == BPF_JMP:
            if c & BPF_X:
                reg = d or s or (imm if 0 < imm <= 10 else 0)
                return _callx(reg, nxt, code, vm), 1
            if s == BPF_PSEUDO_CALL:
                tgt = pc + imm + 1
                _check_target(tgt, n)
                return _local_call(tgt, nxt, code), 1
            if s == 0:
                fn = vm.helpers.get(imm)
                if fn is None:
                    raise VmTrap(f"call to unknown helper {imm}")
                return _helper(fn, nxt), 1
            raise VmTrap("kfunc calls are not supported")
        if op == BPF_JCOND and cls == BPF_JMP:
            tgt = pc + off + 1
            _check_target(tgt, n)
            return _may_goto(tgt, nxt), 1
        cond = (sem.JMP64 if cls == BPF_JMP else sem.JMP32).get(op)
        if cond is None:
            raise VmTrap(f"invalid jump opcode {c:#04x}")
        tgt = pc + off + 1
        _check_target(tgt, n)
        reg_src = bool(c & BPF_X)
        if not reg_src:
            imm = imm & M64 if cls == BPF_JMP else imm & sem.M32
        return _jmp(cond, reg_src, tgt <= pc)(d, s, imm, nxt, tgt, _out_of_budget), 1
    size = c & 0x18
    mode = c & 0xE0
    if cls == BPF_LD:
        if mode == BPF_IMM and size == BPF_DW:
            if pc + 1 >= n:
                raise VmTrap("ld_imm64 without its second slot")
            hi = insns[pc + 1]
            if s == BPF_PSEUDO_FUNC:
                tgt = pc + imm + 1
                _check_target(tgt, n)
                return _const(d, sem.FUNC_ADDR_BASE + tgt, pc + 2), 2
            value = ((hi.imm & sem.M32) << 32) | (imm & sem.M32)
            return _const(d, value, pc + 2), 2
        if mode in (BPF_ABS, BPF_IND) and size != BPF_DW:
            return _ld_abs(_SIZE[size], imm, s if mode == BPF_IND else None, nxt, vm), 1
        raise VmTrap(f"invalid BPF_LD opcode {c:#04x}")
    if cls == BPF_LDX:
        if mode == BPF_MEM:
            return _load(d, s, off, _SIZE[size], _LOAD_FMT[size], False, nxt, regions, ctx_load), 1
        if mode == BPF_MEMSX and size != BPF_DW:
            return _load(d, s, off, _SIZE[size], _LOADSX_FMT[size], True, nxt, regions, ctx_load), 1
        raise VmTrap(f"invalid BPF_LDX opcode {c:#04x}")
    if cls == BPF_ST:
        if mode == BPF_MEM:
            return _store(d, None, imm, off, _LOAD_FMT[size], _MASK[size], nxt, regions), 1
        raise VmTrap(f"invalid BPF_ST opcode {c:#04x}")
    if cls == BPF_STX:
        if mode == BPF_MEM:
            return _store(d, s, 0, off, _LOAD_FMT[size], _MASK[size], nxt, regions), 1
        if mode == BPF_ATOMIC:
            if imm == BPF_LOAD_ACQ:
                return _load(d, s, off, _SIZE[size], _LOAD_FMT[size], False, nxt, regions, ctx_load), 1
            if imm == BPF_STORE_REL:
                return _store(d, s, 0, off, _LOAD_FMT[size], _MASK[size], nxt, regions), 1
            if size not in (BPF_W, BPF_DW):
                raise VmTrap(f"invalid atomic size in opcode {c:#04x}")
            return _atomic(d, s, off, _SIZE[size], imm, nxt, regions), 1
        raise VmTrap(f"invalid BPF_STX opcode {c:#04x}")
    raise VmTrap(f"invalid opcode {c:#04x}")


def _check_target(tgt: int, n: int) -> None:
    if not 0 <= tgt < n:
        raise VmTrap(f"jump out of range (to {tgt})")


def mem_access(ins: Insn) -> tuple[int, int, int, bool] | None:
    """(base register, offset, size, write) of a load/store/atomic instruction, for fault reports."""
    cls = ins.code & 0x07
    size = _SIZE.get(ins.code & 0x18, 8)
    mode = ins.code & 0xE0
    if cls == BPF_LDX:
        return ins.src, ins.off, size, False
    if cls == BPF_ST:
        return ins.dst, ins.off, size, True
    if cls == BPF_STX:
        if mode == BPF_ATOMIC and ins.imm == BPF_LOAD_ACQ:
            return ins.src, ins.off, size, False
        return ins.dst, ins.off, size, True
    return None
