"""Exit values of counted loops without running them (LLVM's IndVarSimplify, for eBPF in Python).

A loop qualifies when it is one basic block ``[lo, hi]`` that only control entering at ``lo``
reaches, whose body ``lo .. hi-1`` is nothing but 64-bit ``add``/``sub`` of immediates or registers,
and whose last instruction ``hi`` is its only back-edge: a 64-bit ``jeq``/``jne``/``jlt``/``jle``/
``jgt``/``jge`` of a register the body changes by a loop-invariant step (an affine induction
variable) against an immediate or a register the body does not write. Every written register is
then a polynomial in the number of passes (a register adding an affine one is quadratic, and so
on), provided no register depends on itself through adds of written registers (that would be
exponential: such loops do not qualify).

At run time ``ClosedForm(...)(r0, ..., r9, b)`` finds the exact number of passes ``n`` the
interpreter would run, in arithmetic mod 2**64: the first pass whose exit test fails, solved for
the induction variable (``jne``/``jeq`` as a linear congruence, the ordered tests while the
variable moves towards the bound without wrapping). Then:

* a loop that never ends, or whose ``n - 1`` back-edges exceed the budget ``b``, raises the
  interpreter's budget trap (the caller maps it to pc ``hi``); nothing else is observable then,
  since the loop touches no memory;
* otherwise every written register is evaluated at ``n`` from its first values by Newton's
  forward differences (exact for integer polynomials, and mod 2**64 since it is a Z-linear
  combination), and ``b - (n - 1)`` is the budget left, exactly as the interpreter spends it;
* when ``n`` is small, or the ordered test's variable would wrap before reaching the bound
  (not solved here), it returns None and the loop runs as written.
"""
from __future__ import annotations

from math import comb

from ....isa.insn import Insn

M64 = (1 << 64) - 1
W64 = 1 << 64
#: below this many passes the loop itself is cheaper than the closed form
MIN_PASSES = 24
_BUDGET = "runtime budget of back-edges exhausted (the program does not terminate)"
_CONDS = {0x10: "eq", 0x50: "ne", 0xA0: "lt", 0xB0: "le", 0x20: "gt", 0x30: "ge"}


class _Infinite(Exception):  # noqa: N818 - the loop never leaves
    pass


def analyse(insns: list[Insn], lo: int, hi: int) -> ClosedForm | None:
    """The closed form of the loop ``[lo, hi]`` (callers check the control-flow conditions), or None."""
    body: list[tuple[int, bool, int | None, int]] = []  # (dst, sub, src register or None, imm u64)
    for pc in range(lo, hi):
        ins = insns[pc]
        if ins.code not in (0x07, 0x17, 0x0F, 0x1F) or ins.dst > 9 or ins.off:
            return None
        sub = ins.code in (0x17, 0x1F)
        if ins.code & 0x08:
            if ins.src > 9:
                return None
            body.append((ins.dst, sub, ins.src, 0))
        else:
            body.append((ins.dst, sub, None, ins.imm & M64))
    j = insns[hi]
    if j.code & 0x07 != 0x05 or (j.code & 0xF0) not in _CONDS or j.dst > 9 or hi + j.off + 1 != lo:
        return None
    written = {d for d, _s, _r, _k in body}
    if j.dst not in written:
        return None
    bound_reg: int | None = None
    if j.code & 0x08:
        if j.src > 9 or j.src in written:
            return None
        bound_reg = j.src
    deg: dict[int, int] = {}
    deps = {x: {r for d, _s, r, _k in body if d == x and r is not None and r in written} for x in written}
    while len(deg) < len(written):
        ready = [x for x in written if x not in deg and all(y in deg for y in deps[x])]
        if not ready:
            return None  # a register depends on itself: not a polynomial
        for x in ready:
            deg[x] = 1 + max((deg[y] for y in deps[x]), default=0)
    if deg[j.dst] != 1:
        return None
    return ClosedForm(body, _CONDS[j.code & 0xF0], j.dst, bound_reg, j.imm & M64, deg)


class ClosedForm:
    """The loop's exit values as a function of its entry registers and budget (see the module)."""

    def __init__(self, body: list[tuple[int, bool, int | None, int]], cond: str, var: int, bound_reg: int | None,
                 bound_imm: int, deg: dict[int, int]) -> None:
        self.body = body
        self.cond = cond
        self.var = var
        self.bound_reg = bound_reg
        self.bound_imm = bound_imm
        self.deg = deg
        self.maxdeg = max(deg.values())

    def prefilter(self) -> str | None:
        """A cheap test, in terms of the entry registers, that fails when the loop surely runs fewer
        than MIN_PASSES passes (an immediate step and bound, an ordered test): the closed form is
        not even tried then. None: no such test (the closed form is always tried)."""
        step = 0
        for d, sub, r, k in self.body:
            if d != self.var:
                continue
            if r is not None:
                return None
            k = k - W64 if k >> 63 else k
            step += -k if sub else k
        if self.bound_reg is not None:
            return None
        n = self.bound_imm
        v = f"r{self.var}"
        far = (MIN_PASSES - 1) * abs(step)
        if self.cond in ("lt", "le") and step > 0:
            return f"{v} + {far} <= {n}"
        if self.cond in ("gt", "ge") and step < 0:
            return f"{v} - {far} >= {n}"
        return None

    def _pass(self, regs: list[int]) -> None:
        for d, sub, r, k in self.body:
            v = regs[r] if r is not None else k
            regs[d] = (regs[d] - v) & M64 if sub else (regs[d] + v) & M64

    def passes(self, d1: int, c: int, n: int) -> int | None:
        """The passes the loop runs: the first k >= 1 whose exit test fails, where the variable is
        ``d1 + (k - 1) * c`` (mod 2**64) after pass k. None: not solved here."""
        cond = self.cond
        if cond == "eq":  # taken while equal
            if d1 != n:
                return 1
            if c == 0:
                raise _Infinite
            return 2
        if cond == "ne":  # taken while different: m * c = n - d1 (mod 2**64)
            diff = (n - d1) & M64
            if diff == 0:
                return 1
            if c == 0:
                raise _Infinite
            g = c & -c  # 2**t, the power of two in gcd(c, 2**64)
            if diff % g:
                raise _Infinite
            mod = W64 // g
            m = (diff // g) * pow(c // g, -1, mod) % mod if mod > 1 else 0
            return m + 1
        if cond in ("lt", "le"):  # taken while below: moving up towards the bound
            top = n if cond == "lt" else n + 1
            if top > M64:
                raise _Infinite  # d <= 2**64 - 1 always holds
            if d1 >= top:
                return 1
            if c == 0:
                raise _Infinite
            m = -(-(top - d1) // c)
            return m + 1 if d1 + m * c <= M64 else None
        # gt / ge: taken while above: moving down towards the bound
        if cond == "ge":
            if n == 0:
                raise _Infinite  # d >= 0 always holds
            n -= 1
        if d1 <= n:
            return 1
        down = (W64 - c) & M64
        if down == 0:
            raise _Infinite
        m = -(-(d1 - n) // down)
        return m + 1 if d1 - m * down >= 0 else None

    def __call__(self, *args: int) -> tuple[int, ...] | None:
        from ..fault import VmTrap

        regs = list(args[:10])
        b = args[10]
        n_bound = regs[self.bound_reg] if self.bound_reg is not None else self.bound_imm
        d0 = regs[self.var]
        first = list(regs)
        self._pass(first)
        d1 = first[self.var]
        c = (d1 - d0) & M64
        try:
            n = self.passes(d1, c, n_bound)
        except _Infinite:
            raise VmTrap(_BUDGET) from None
        if n is None or n < MIN_PASSES:
            return None
        if n - 1 > b:
            raise VmTrap(_BUDGET)
        # values after 0 .. maxdeg passes, then Newton's forward differences evaluated at n
        seq = [regs, first]
        cur = first
        for _ in range(self.maxdeg - 1):
            cur = list(cur)
            self._pass(cur)
            seq.append(cur)
        out = list(regs)
        for x, dx in self.deg.items():
            col = [s[x] for s in seq[:dx + 1]]
            total = 0
            for j in range(dx + 1):
                total += comb(n, j) * col[0]
                col = [col[i + 1] - col[i] for i in range(len(col) - 1)]
            out[x] = total & M64
        return (*out, b - (n - 1))
