"""Loop unrolling of the copy of a budget-iterated loop that needs no wrap checks (translate.py's
loop versioning): blocks of ``K`` passes run without their tests while one check made before the
block proves that the interpreter would take none of the exits in those passes, that the budget
has ``K`` back-edges left, and that every load of the ``K`` passes falls inside the region already
looked up; otherwise (and for the tail) the loop runs pass by pass as it is.

The loop must be one straight block entered at its first instruction: ALU instructions, unsigned
loads through hoisted base registers with offsets >= 0, conditional jumps out of the loop, and its
back-edge last. Its induction variables are the wrap-free accumulators (translate.accumulators)
written only by ``add rX, k`` with ``k >= 0``: in pass ``j`` of a block, ``rX`` is its value at the
start of the block plus ``j * step`` plus the adds made so far in the pass, so their adds are not
written and each is advanced once at the end of the block. Every test (an unsigned comparison of
such a value, possibly through ``mov rT, rX; add rT, k``, with a register the loop does not write
or an immediate) is monotone in ``j``: it holds for all ``K`` passes when it holds at the first or at
the last one. With those tests known, each pass is written by ``insns.alu`` and plain buffer loads
(the same expressions the pass-by-pass copy runs), and a write that a later one in the block
overwrites unread is not written.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from ....isa.insn import Insn
from .cfg import jump_target, width
from .insns import _UFMT, M64, alu

#: passes per block
K = 8

_LOADS = {0x71: 1, 0x69: 2, 0x61: 4, 0x79: 8}
_UPWARD = {0x20: ">", 0x30: ">="}   # jgt, jge: once true, true for larger values
_DOWNWARD = {0xA0: "<", 0xB0: "<="}  # jlt, jle
_MIRROR = {0x20: 0xA0, 0x30: 0xB0, 0xA0: 0x20, 0xB0: 0x30}
_NEG = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}
_REG = re.compile(r"\br(\d)\b")
#: 64-bit ALU operations whose result mod 2**64 depends only on the operands mod 2**64
_RING = {0x00: "+", 0x10: "-", 0x20: "*", 0x40: "|", 0x50: "&", 0xA0: "^"}
_RING_LINE = re.compile(r"^r(\d) = r\1 ([-+*|&^]) (.+)$")
#: multiplications a register takes unmasked before it is masked again
MULS = 2

# a value in a pass: (register, constant): the register's value at the start of the block
# (an induction variable moves by j * step in pass j) plus the constant; (None, c): the constant
Val = tuple[int | None, int]


def _value(v: Val, j: int, step: dict[int, int]) -> str:
    base, c = v
    if base is None:
        return str(c)
    c += j * step.get(base, 0)
    return f"r{base} + {c}" if c else f"r{base}"


def unrolled(insns: list[Insn], lo: int, hi: int, targets: set[int], bad_targets: set[int],
             nowrap: set[int], hoist: set[int], use: Callable[[str], str], k: int = K) -> list[str] | None:
    """The lines (relative indentation) of the block loop written before the pass-by-pass copy of
    the loop ``[lo, hi]`` (its back-edge at ``hi``), or None when the loop is not of that shape."""
    if any(lo < t <= hi for t in targets) or k < 2:
        return None
    writes: dict[int, list[Insn]] = {}
    pcs: list[int] = []
    pc = lo
    while pc <= hi:
        ins = insns[pc]
        if pc in bad_targets or width(insns, pc) != 1:
            return None
        cls = ins.code & 0x07
        if cls in (0x04, 0x07) or ins.code in _LOADS:
            if ins.dst > 9:
                return None
            writes.setdefault(ins.dst, []).append(ins)
        elif cls != 0x05:
            return None
        pcs.append(pc)
        pc += 1
    step: dict[int, int] = {}
    for rx, ws in writes.items():
        if rx in nowrap and all(w.code == 0x07 and w.imm >= 0 for w in ws):
            step[rx] = sum(w.imm for w in ws)
    sym: dict[int, Val | None] = {x: (x, 0) for x in range(10)}
    for x in writes:
        if x not in step:
            sym[x] = None
    ivs = set(step)

    def fixed(v: Val) -> bool:  # a constant, or a register the loop does not write
        return v[0] is None or v[0] not in writes and v[1] == 0

    checks: list[str] = []
    loads: dict[int, int] = {}  # base -> largest end offset (past the access) within a pass
    passes: list[list[tuple[int, int, str, set[int]]]] = [[] for _ in range(k)]  # (pc, dst, text, reads)
    last = k - 1
    for pc in pcs:
        ins = insns[pc]
        code = ins.code
        cls = code & 0x07
        if cls == 0x05:
            t = jump_target(ins, pc)
            if t is None:
                return None
            if pc == hi:
                if t != lo:
                    return None
                if code == 0x05:  # ja: no test
                    continue
                want = True
            elif lo <= t <= hi:
                return None
            else:
                want = False
            op = code & 0xF0
            if op not in _MIRROR or ins.dst > 9:
                return None
            v = sym.get(ins.dst)
            if code & 0x08:
                if ins.src > 9:
                    return None
                y = sym.get(ins.src)
            else:
                y = (None, ins.imm & M64)
            if v is None or y is None:
                return None
            if not fixed(y) and fixed(v):  # compare the moving side with a fixed value
                v, y, op = y, v, _MIRROR[op]
            if not fixed(y):
                return None
            ys = _value(y, 0, step)
            rel = _UPWARD.get(op) or _DOWNWARD[op]
            upward = op in _UPWARD
            # the relation must be ``want`` in all passes 0..k-1; values grow with j
            if upward == want:  # true from the first pass on (or false up to it): check pass 0
                check = rel if want else _NEG[rel]
                checks.append(f"{_value(v, 0, step)} {check} {ys}")
                if v[0] is not None and (v[1] or v[0] in ivs):  # no wrap up to the last pass
                    checks.append(f"{_value(v, last, step)} <= {M64:#x}")
            else:  # check the last pass; its value is below y, so nothing wrapped
                check = rel if want else _NEG[rel]
                checks.append(f"{_value(v, last, step)} {check} {ys}")
            continue
        d, s = ins.dst, ins.src
        if code in _LOADS:
            size = _LOADS[code]
            base = sym.get(s)
            if s not in hoist or s not in ivs or base is None or ins.off < 0:
                return None
            rel_off = base[1] + ins.off
            loads[s] = max(loads.get(s, 0), rel_off + size)
            for j in range(k):
                o = j * step[s] + rel_off
                at = f"ku{s} + {o}" if o else f"ku{s}"
                text = f"b{s}[{at}]" if size == 1 else f"{use('U' + _UFMT[size])}(b{s}, {at})[0]"
                passes[j].append((pc, d, f"r{d} = {text}", set()))
            sym[d] = None
            continue
        if d in ivs:  # add rX, k: the block advances it once
            cur = sym[d]
            assert cur is not None
            sym[d] = (d, cur[1] + ins.imm)
            continue
        x = bool(code & 0x08)
        if x and s > 9:
            return None
        for j in range(k):
            # an induction variable is read as its value in pass j (exact: it does not wrap); a
            # copy of it is read from its own register (its adds may wrap: masked by _masks)
            sv = sym.get(s) if x and s in ivs else None
            sname = f"({_value(sv, j, step)})" if sv is not None and sv[1] + j * step[s] else None
            if cls == 0x07 and code & 0xF0 in _RING:
                # mod 2**64 arithmetic: the low 64 bits of the result depend on those of the
                # operands only, so the mask waits (_masks)
                src = sname or (f"r{s}" if x else str(ins.imm & M64))
                reads = ({s} if x and sname is None else set()) | {d}
                passes[j].append((pc, d, f"r{d} = r{d} {_RING[code & 0xF0]} {src}", reads - ivs))
                continue
            stmts = alu(ins, sname=sname)
            if stmts is None:
                return None
            text = "; ".join(stmts) if len(stmts) == 1 else "\n".join(stmts)
            reads = {int(m) for m in _REG.findall(text)}
            lhs = f"r{d} = "
            if len(stmts) == 1 and text.startswith(lhs) and f"r{d}" not in set(
                    f"r{m}" for m in _REG.findall(text[len(lhs):])):
                reads.discard(d)
            reads -= ivs  # induction variables keep their block-start values until the end
            passes[j].append((pc, d, text, reads))
        if code == 0xBF and ins.off == 0 and sym.get(s) is not None:  # mov rD, rS
            sym[d] = sym[s]
        elif code == 0xB7:  # mov rD, k
            sym[d] = (None, ins.imm & M64)
        elif code == 0x07 and ins.imm >= 0 and sym.get(d) is not None and sym[d][0] is not None:  # type: ignore[index]
            cur = sym[d]
            assert cur is not None
            sym[d] = (cur[0], cur[1] + ins.imm)
        else:
            sym[d] = None
    if not any(step.values()):
        return None
    # the loads' offsets inside their regions (the base stays in its 4 GiB slot: translate's conds)
    conds = [f"b >= {k}"] + checks
    for s_, end in sorted(loads.items()):
        conds.append(f"(ku{s_} := r{s_} & 0xFFFFFFFF) + {last * step[s_] + end} <= kn{s_}")
    body = _masks([item for p in passes for item in p])
    live = set(range(10))
    keep: list[tuple[int, int, str, set[int]]] = []
    for item in reversed(body):
        _pc, d, _text, reads = item
        if d not in live:
            continue
        live.discard(d)
        live |= reads
        keep.append(item)
    keep.reverse()
    keep = _fold(keep)
    out = [f"kn{s_} = len(b{s_})" for s_ in sorted(loads)]
    out.append("while " + " and ".join(conds) + ":")
    for _pc, _d, text, _reads in keep:
        out.extend(" " + line for line in text.split("\n"))
    out.extend(f" r{x} = r{x} + {k * st}" for x, st in sorted(step.items()) if st)
    out.append(f" b -= {k}")
    return out


def _fold(items: list[tuple[int, int, str, set[int]]]) -> list[tuple[int, int, str, set[int]]]:
    """``rT = E`` followed by a one-line statement that reads ``rT`` once: one statement with
    ``(E)`` in its place, when ``rT`` is the register it writes or is written again in the block
    before anything reads it (nothing can fault or have effects: the block's loads are in range)."""
    out = list(items)
    i = 0
    while i + 1 < len(out):
        pa, ta, a, ra = out[i]
        pb, tb, b_, rb = out[i + 1]
        lhs_a, lhs_b = f"r{ta} = ", f"r{tb} = "
        word = re.compile(rf"\br{ta}\b")
        ok = "\n" not in a and "\n" not in b_ and a.startswith(lhs_a) and b_.startswith(lhs_b) \
            and len(word.findall(b_[len(lhs_b):])) == 1
        if ok and tb != ta:
            ok = False
            for _p, d, _t, reads in out[i + 2:]:
                if ta in reads:
                    break
                if d == ta:
                    ok = True
                    break
        if not ok:
            i += 1
            continue
        inner = "(" + a[len(lhs_a):] + ")"
        rhs = word.sub(lambda _m, e=inner: e, b_[len(lhs_b):])  # type: ignore[misc]
        out[i:i + 2] = [(pb, tb, lhs_b + rhs, (rb - {ta}) | ra)]
    return out


def _masks(items: list[tuple[int, int, str, set[int]]]) -> list[tuple[int, int, str, set[int]]]:
    """The ring operations (``_RING``, written unmasked) get their ``& 0xffffffffffffffff`` where
    needed: after ``MULS`` multiplications of the register (its size stays small), before any
    other statement reads it, and at the end of the block for every register still unmasked."""
    mask = f" & {M64:#x}"
    out: list[tuple[int, int, str, set[int]]] = []
    muls: dict[int, int] = {}  # unmasked register -> multiplications since its last mask
    for pc, d, text, reads in items:
        m = _RING_LINE.match(text)
        if m is None or "\n" in text:
            for r in sorted(reads & set(muls)):
                out.append((pc, r, f"r{r} = r{r}{mask}", {r}))
                del muls[r]
            muls.pop(d, None)
            out.append((pc, d, text, reads))
            continue
        src = m.group(3)
        n = muls.get(d, 0) + (1 if m.group(2) == "*" else 0)
        sm = _REG.fullmatch(src)
        if sm is not None and int(sm.group(1)) in muls:
            n += muls[int(sm.group(1))] + 1
        if n >= MULS:
            text = f"r{d} = (r{d} {m.group(2)} {src}){mask}"
            muls.pop(d, None)
        else:
            muls[d] = n
        out.append((pc, d, text, reads))
    for r in sorted(muls):
        out.append((-1, r, f"r{r} = r{r}{mask}", {r}))
    return out
