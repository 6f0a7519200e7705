"""Random program generators for the verifier fuzzers (soundness against the VM, differential against Linux).

Kprobe programs are built from snippets that stress where verifiers go wrong: map value pointers with
variable offsets bounded (or not) by masks and comparisons, 32-bit and signed/unsigned mixes, spills and
fills, pointer arithmetic with constants, stack accesses at random offsets and ctx reads. XDP programs
add packet pointers, data_end checks in every spelling, variable packet offsets, helpers with sizes and
bounded loops.
"""
from __future__ import annotations

from hypothesis import strategies as st

from tinyaya.isa import Insn
from tinyaya.isa import opcodes as op

KPROBE = 2
A64, A32 = op.BPF_ALU64, op.BPF_ALU
SIZES = {1: op.BPF_B, 2: op.BPF_H, 4: op.BPF_W, 8: op.BPF_DW}
JMPS = [op.BPF_JEQ, op.BPF_JNE, op.BPF_JGT, op.BPF_JGE, op.BPF_JLT, op.BPF_JLE, op.BPF_JSGT, op.BPF_JSGE,
        op.BPF_JSLT, op.BPF_JSLE, op.BPF_JSET]


def alu(cls: int, o: int, dst: int, imm: int) -> Insn:
    return Insn(cls | o | op.BPF_K, dst, 0, 0, imm)


def alux(cls: int, o: int, dst: int, src: int) -> Insn:
    return Insn(cls | o | op.BPF_X, dst, src)


def ldx(size: int, dst: int, src: int, off: int) -> Insn:
    return Insn(op.BPF_LDX | op.BPF_MEM | SIZES[size], dst, src, off)


def stx(size: int, dst: int, src: int, off: int) -> Insn:
    return Insn(op.BPF_STX | op.BPF_MEM | SIZES[size], dst, src, off)


size = st.sampled_from([1, 2, 4, 8])
scal = st.sampled_from([2, 3, 4, 5])  # scratch scalar registers
snippet = st.one_of(
    # an unknown scalar from the ctx, maybe narrowed
    st.builds(lambda d, off, sz: [ldx(sz, d, 6, off)], scal, st.integers(0, 20).map(lambda x: x * 8), size),
    # mask / shift / add / mul / signed-extend a scalar
    st.builds(lambda d, o, imm, c: [alu(c, o, d, imm)], scal,
              st.sampled_from([op.BPF_AND, op.BPF_ADD, op.BPF_SUB, op.BPF_MUL, op.BPF_RSH, op.BPF_LSH, op.BPF_OR,
                               op.BPF_ARSH, op.BPF_XOR]),
              st.integers(-64, 64), st.sampled_from([A64, A32])),
    st.builds(lambda d, s, o: [alux(A64, o, d, s)], scal, scal,
              st.sampled_from([op.BPF_ADD, op.BPF_SUB, op.BPF_AND, op.BPF_MUL, op.BPF_MOV])),
    st.builds(lambda d, s, bits: [Insn(A64 | op.BPF_MOV | op.BPF_X, d, s, bits)], scal, scal,
              st.sampled_from([8, 16, 32])),
    # a bound check that skips the next snippet's first instruction(s)
    st.builds(lambda d, j, imm, skip, c: [Insn(c | j | op.BPF_K, d, 0, skip, imm)], scal, st.sampled_from(JMPS),
              st.integers(-80, 80), st.integers(1, 3), st.sampled_from([op.BPF_JMP, op.BPF_JMP32])),
    # map value pointer r7 plus a scalar, then an access
    st.builds(lambda s, off, sz: [alux(A64, op.BPF_MOV, 9, 7), alux(A64, op.BPF_ADD, 9, s), ldx(sz, 0, 9, off)],
              scal, st.integers(-8, 56), size),
    st.builds(lambda s, off, sz: [alux(A64, op.BPF_MOV, 9, 7), alux(A64, op.BPF_ADD, 9, s), stx(sz, 9, s, off)],
              scal, st.integers(-8, 56), size),
    st.builds(lambda off, sz: [ldx(sz, 0, 7, off)], st.integers(-4, 52), size),
    # stack: store, load, spill a pointer and fill it back, variable offsets
    st.builds(lambda off, sz, s: [stx(sz, 10, s, off)], st.integers(-520, 4), size, scal),
    st.builds(lambda off, sz, d: [ldx(sz, d, 10, off)], st.integers(-520, 4), size, scal),
    st.builds(lambda slot: [stx(8, 10, 7, -8 * slot), ldx(8, 9, 10, -8 * slot), ldx(8, 0, 9, 0)],
              st.integers(1, 8)),
    st.builds(lambda s, off, sz: [alux(A64, op.BPF_MOV, 9, 10), alu(A64, op.BPF_ADD, 9, -64),
                                  alux(A64, op.BPF_ADD, 9, s), ldx(sz, 0, 9, off)],
              scal, st.integers(-8, 8), size),
)

PROLOGUE = [
    alux(A64, op.BPF_MOV, 6, 1),                       # r6 = ctx
    Insn(op.BPF_ST | op.BPF_MEM | op.BPF_W, 10, 0, -4, 0),
    alux(A64, op.BPF_MOV, 2, 10), alu(A64, op.BPF_ADD, 2, -4),
    Insn(op.LD_IMM64, 1, op.BPF_PSEUDO_MAP_FD, 0, 0), Insn(0),   # r1 = map (fd patched)
    Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 1),         # map_lookup_elem
    Insn(op.BPF_JMP | op.BPF_JNE | op.BPF_K, 0, 0, 2, 0),
    alu(A64, op.BPF_MOV, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT),
    alux(A64, op.BPF_MOV, 7, 0),                       # r7 = map value (48 bytes)
    alu(A64, op.BPF_MOV, 2, 0), alu(A64, op.BPF_MOV, 3, 0), alu(A64, op.BPF_MOV, 4, 0), alu(A64, op.BPF_MOV, 5, 0),
]
EPILOGUE = [alu(A64, op.BPF_MOV, 0, 0), Insn(op.BPF_JMP | op.BPF_EXIT)]


def build(snippets: list[list[Insn]]) -> list[Insn]:
    body = [i for s in snippets for i in s]
    out = PROLOGUE + body + EPILOGUE
    n = len(out)
    # forward jumps must land inside the program, before the epilogue's exit (back-edges are the snippets' own)
    return [i.replace(off=min(i.off, n - 2 - k)) if op.BPF_CLASS(i.code) in (op.BPF_JMP, op.BPF_JMP32)
            and op.BPF_OP(i.code) not in (op.BPF_CALL, op.BPF_EXIT) and k >= len(PROLOGUE) and i.off > 0 else i
            for k, i in enumerate(out)]




XDP = 6
scal = st.sampled_from([2, 3, 4, 5])
size = st.sampled_from([1, 2, 4, 8])

xdp_snippet = st.one_of(
    # check data + n against data_end, in one of four spellings
    st.builds(lambda n, form, skip: [alux(A64, op.BPF_MOV, 9, 7), alu(A64, op.BPF_ADD, 9, n),
                                     [Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_X, 9, 8, skip),
                                      Insn(op.BPF_JMP | op.BPF_JLT | op.BPF_X, 8, 9, skip),
                                      Insn(op.BPF_JMP | op.BPF_JGE | op.BPF_X, 9, 8, skip),
                                      Insn(op.BPF_JMP | op.BPF_JLE | op.BPF_X, 8, 9, skip)][form]],
              st.integers(0, 40), st.integers(0, 3), st.integers(1, 4)),
    # read or write packet bytes at a constant offset
    st.builds(lambda off, sz, d: [ldx(sz, d, 7, off)], st.integers(-2, 40), size, scal),
    st.builds(lambda off, sz, s: [stx(sz, 7, s, off)], st.integers(-2, 40), size, scal),
    # a variable offset into the packet, maybe masked
    st.builds(lambda s, m, off: [alu(A64, op.BPF_AND, s, m), alux(A64, op.BPF_MOV, 9, 7),
                                 alux(A64, op.BPF_ADD, 9, s), ldx(1, 0, 9, off)],
              scal, st.sampled_from([0, 3, 7, 15, 63, -1]), st.integers(0, 16)),
    # scalars: from the packet, from the ctx, arithmetic, bounds
    st.builds(lambda d, off: [ldx(4, d, 6, off)], scal, st.sampled_from([12, 16])),
    st.builds(lambda d, o, imm: [alu(A64, o, d, imm)], scal,
              st.sampled_from([op.BPF_AND, op.BPF_ADD, op.BPF_RSH, op.BPF_MOV]), st.integers(-8, 64)),
    st.builds(lambda d, j, imm, skip: [Insn(op.BPF_JMP | j | op.BPF_K, d, 0, skip, imm)], scal,
              st.sampled_from(JMPS), st.integers(-8, 64), st.integers(1, 3)),
    # a helper with a size: copy from the packet start into the stack
    st.builds(lambda s, m: [alu(A64, op.BPF_AND, s, m), alux(A64, op.BPF_MOV, 1, 10), alu(A64, op.BPF_ADD, 1, -32),
                            alux(A64, op.BPF_MOV, 2, s), alux(A64, op.BPF_MOV, 3, 7),
                            Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 113), alu(A64, op.BPF_MOV, 1, 0)],
              scal, st.sampled_from([7, 31, 32, 63])),
    # a helper that moves the packet (xdp_adjust_head/tail), then maybe reload data/data_end
    st.builds(lambda fid, delta, reload: [alux(A64, op.BPF_MOV, 1, 6), alu(A64, op.BPF_MOV, 2, delta),
                                         Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, fid)]
              + ([ldx(4, 7, 6, 0), ldx(4, 8, 6, 4)] if reload else []),
              st.sampled_from([44, 65]), st.integers(-8, 8), st.booleans()),
    # a bounded loop over packet bytes with a re-check each step
    st.builds(lambda n: [alu(A64, op.BPF_MOV, 5, 0),
                         alux(A64, op.BPF_MOV, 9, 7), alux(A64, op.BPF_ADD, 9, 5),
                         alu(A64, op.BPF_ADD, 9, 1),
                         Insn(op.BPF_JMP | op.BPF_JGT | op.BPF_X, 9, 8, 3),
                         ldx(1, 0, 9, -1),
                         alu(A64, op.BPF_ADD, 5, 1),
                         Insn(op.BPF_JMP | op.BPF_JLT | op.BPF_K, 5, 0, -7, n)],
              st.integers(1, 12)),
)

XDP_PROLOGUE = [
    alux(A64, op.BPF_MOV, 6, 1),
    ldx(4, 7, 6, 0),   # data
    ldx(4, 8, 6, 4),   # data_end
    alu(A64, op.BPF_MOV, 2, 0), alu(A64, op.BPF_MOV, 3, 0), alu(A64, op.BPF_MOV, 4, 0), alu(A64, op.BPF_MOV, 5, 0),
]
XDP_EPILOGUE = [alu(A64, op.BPF_MOV, 0, 2), Insn(op.BPF_JMP | op.BPF_EXIT)]


def build_xdp(snippets: list[list[Insn]]) -> list[Insn]:
    body = [i for s in snippets for i in s]
    out = XDP_PROLOGUE + body + XDP_EPILOGUE
    n = len(out)
    fixed = []
    for k, i in enumerate(out):
        if op.BPF_CLASS(i.code) in (op.BPF_JMP, op.BPF_JMP32) and op.BPF_OP(i.code) not in (op.BPF_CALL, op.BPF_EXIT) \
                and i.off > 0:
            i = i.replace(off=min(i.off, n - 2 - k))
        fixed.append(i)
    return fixed




# -- more kprobe features: ringbuf references, helpers with sizes, atomics, sign extension, calls ----------
RINGBUF_FD = -7  # patched to a ringbuf map's fd by the loaders (ld_imm64 src=BPF_PSEUDO_MAP_FD, imm -7)


def _rb_reserve(sz: int) -> list[Insn]:
    return [Insn(op.LD_IMM64, 1, op.BPF_PSEUDO_MAP_FD, 0, RINGBUF_FD), Insn(0), alu(A64, op.BPF_MOV, 2, sz),
            alu(A64, op.BPF_MOV, 3, 0), Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 131)]


extra_snippet = st.one_of(
    snippet,
    # reserve, maybe null-check, write, submit or discard (or leak)
    st.builds(lambda sz, check, woff, fin: _rb_reserve(sz)
              + ([Insn(op.BPF_JMP | op.BPF_JEQ | op.BPF_K, 0, 0, 3 + (fin < 2) * 3, 0)] if check else [])
              + [alu(A64, op.BPF_MOV, 1, 7), stx(8, 0, 1, woff), alux(A64, op.BPF_MOV, 9, 0)]
              + ([alux(A64, op.BPF_MOV, 1, 0), alu(A64, op.BPF_MOV, 2, 0),
                  Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 132 + fin)] if fin < 2 else []),
              st.sampled_from([8, 16, 24]), st.booleans(), st.sampled_from([0, 8, 16]), st.integers(0, 2)),
    # a helper with a size argument into the stack
    st.builds(lambda s, m, off: [alu(A64, op.BPF_AND, s, m), alux(A64, op.BPF_MOV, 1, 10),
                                 alu(A64, op.BPF_ADD, 1, off), alux(A64, op.BPF_MOV, 2, s), alu(A64, op.BPF_MOV, 3, 0),
                                 Insn(op.BPF_JMP | op.BPF_CALL, 0, 0, 0, 113)],
              scal, st.sampled_from([7, 15, 16, 31, 63, -1]), st.sampled_from([-64, -32, -16, -8])),
    # atomics on the stack and the map value
    st.builds(lambda base, off, s, fetch: [stx(8, 10, s, -24), Insn(op.BPF_STX | op.BPF_ATOMIC | op.BPF_DW, base, s,
                                                                    off, op.BPF_ADD | (op.BPF_FETCH if fetch else 0))],
              st.sampled_from([7, 10]), st.sampled_from([-24, 0, 8, 44, 4]), scal, st.booleans()),
    # sign-extending loads and moves, byte swaps, division
    st.builds(lambda d, sz, off: [Insn(op.BPF_LDX | op.BPF_MEMSX | SIZES[sz], d, 7, off)], scal,
              st.sampled_from([1, 2, 4]), st.integers(0, 44)),
    st.builds(lambda d, bits, be: [Insn(op.BPF_ALU | op.BPF_END | (op.BPF_TO_BE if be else 0), d, 0, 0, bits)], scal,
              st.sampled_from([16, 32, 64]), st.booleans()),
    st.builds(lambda d, s, o, sg: [Insn(A64 | o | op.BPF_X, d, s, int(sg))], scal, scal,
              st.sampled_from([op.BPF_DIV, op.BPF_MOD]), st.booleans()),
    # 32-bit moves of pointers, pointer comparisons
    st.builds(lambda d: [Insn(op.BPF_ALU | op.BPF_MOV | op.BPF_X, d, 7)], scal),
    st.builds(lambda j, skip: [Insn(op.BPF_JMP | j | op.BPF_X, 7, 10, skip)], st.sampled_from(JMPS),
              st.integers(1, 3)),
)


def build_extra(snippets: list[list[Insn]]) -> list[Insn]:
    return build(snippets)


# -- programs with a bpf-to-bpf subprogram: values cross frames as arguments, return values and stack pointers --
callee_snippet = st.one_of(
    st.builds(lambda d, imm: [alu(A64, op.BPF_MOV, d, imm)], st.sampled_from([0, 2, 3]), st.integers(-8, 64)),
    st.builds(lambda d, s: [alux(A64, op.BPF_MOV, d, s)], st.sampled_from([0, 2, 3]), st.sampled_from([1, 2, 3])),
    st.builds(lambda d, j, imm, skip: [Insn(op.BPF_JMP | j | op.BPF_K, d, 0, skip, imm)], st.sampled_from([1, 2, 3]),
              st.sampled_from(JMPS), st.integers(-8, 64), st.integers(1, 2)),
    # read or write through the caller's stack pointer in r1 (when it is one)
    st.builds(lambda off, sz: [ldx(sz, 0, 4, off)], st.integers(-16, 8), st.sampled_from([1, 4, 8])),
    st.builds(lambda off, sz, s: [stx(sz, 4, s, off)], st.integers(-16, 8), st.sampled_from([1, 4, 8]),
              st.sampled_from([2, 3])),
)


def build_with_subprog(snippets: list[list[Insn]], callee: list[list[Insn]], arg_kind: int) -> list[Insn]:
    """main: the kprobe prologue, then r1 = (scalar from ctx | stack pointer | map value), call f, use r0 as an
    offset into the map value and as a branch operand, then the snippets; f: r4 = r1 and the callee snippets."""
    args = [[ldx(8, 1, 6, 0), alu(A64, op.BPF_AND, 1, 63)],
            [alux(A64, op.BPF_MOV, 1, 10), alu(A64, op.BPF_ADD, 1, -16)],
            [alux(A64, op.BPF_MOV, 1, 7)]][arg_kind]
    use = [alux(A64, op.BPF_MOV, 9, 7), alux(A64, op.BPF_ADD, 9, 0), ldx(1, 0, 9, 0)]
    body = [i for s in snippets for i in s]
    main = PROLOGUE + [stx(8, 10, 7, -8)] + args + [Insn(op.BPF_JMP | op.BPF_CALL, 0, op.BPF_PSEUDO_CALL, 0, 0)] \
        + use + body + EPILOGUE
    cbody = [i for s in callee for i in s]
    f = [alux(A64, op.BPF_MOV, 4, 1), alu(A64, op.BPF_MOV, 0, 0), alu(A64, op.BPF_MOV, 2, 0),
         alu(A64, op.BPF_MOV, 3, 0)] + cbody + [Insn(op.BPF_JMP | op.BPF_EXIT)]
    call_pc = len(PROLOGUE) + 1 + len(args)
    n_main = len(main)
    main[call_pc] = main[call_pc].replace(imm=n_main - call_pc - 1)
    out = []
    for k, i in enumerate(main):
        if op.BPF_CLASS(i.code) in (op.BPF_JMP, op.BPF_JMP32) and op.BPF_OP(i.code) not in (op.BPF_CALL, op.BPF_EXIT) \
                and k >= len(PROLOGUE):
            i = i.replace(off=max(0, min(i.off, n_main - 2 - k)))
        out.append(i)
    for k, i in enumerate(f):
        if op.BPF_CLASS(i.code) in (op.BPF_JMP, op.BPF_JMP32) and op.BPF_OP(i.code) not in (op.BPF_CALL, op.BPF_EXIT):
            i = i.replace(off=max(0, min(i.off, len(f) - 2 - k)))
        out.append(i)
    return out


# -- bounded loops: a counter in a register or a stack slot, the body indexing the map value with it ----------
def _loop(n: int, step: int, mask: int, spill: bool, body_off: int, use_jmp32: bool) -> list[Insn]:
    cls = op.BPF_JMP32 if use_jmp32 else op.BPF_JMP
    body = [alux(A64, op.BPF_MOV, 9, 7), alux(A64, op.BPF_MOV, 8, 5), alu(A64, op.BPF_AND, 8, mask),
            alux(A64, op.BPF_ADD, 9, 8), ldx(1, 0, 9, body_off), alux(A64, op.BPF_ADD, 4, 0)]
    if spill:
        body = [ldx(8, 5, 10, -32)] + body + [alu(A64, op.BPF_ADD, 5, step), stx(8, 10, 5, -32)]
        head = [alu(A64, op.BPF_MOV, 5, 0), stx(8, 10, 5, -32)]
    else:
        body = body + [alu(A64, op.BPF_ADD, 5, step)]
        head = [alu(A64, op.BPF_MOV, 5, 0)]
    back = -(len(body) + 1)
    return head + body + [Insn(cls | op.BPF_JLT | op.BPF_K, 5, 0, back, n)]


loop_snippet = st.one_of(
    snippet,
    st.builds(_loop, st.integers(1, 40), st.sampled_from([1, 2, 3, 8]), st.sampled_from([7, 15, 31, 47, 63]),
              st.booleans(), st.integers(0, 20), st.booleans()),
    # may_goto around a body that touches a counter
    st.builds(lambda off: [alu(A64, op.BPF_MOV, 5, 0), Insn(op.BPF_JMP | op.BPF_JCOND, 0, 0, 3, 0),
                           alu(A64, op.BPF_ADD, 5, 1), ldx(1, 0, 7, off), Insn(op.BPF_JMP | op.BPF_JA, 0, 0, -4, 0)],
              st.integers(0, 50)),
)


bounded_loop_snippet = st.one_of(
    snippet,
    st.builds(_loop, st.integers(1, 40), st.sampled_from([1, 2, 3, 8]), st.sampled_from([7, 15, 31, 47, 63]),
              st.booleans(), st.integers(0, 20), st.booleans()),
)
