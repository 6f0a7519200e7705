"""Helpers in machine code: the hot ones run without a call back into Python.

Each native helper is an internal LLVM function ``i64 (i64* state, i64 r1..r5, i64* ok)``: it either does
the whole job with exactly the Python helper's effects and result (``*ok = 1``), or changes nothing and
leaves ``*ok = 0``, and the call site then calls the Python helper (``NativeTier._helper``) as before. So
every unusual case (a fault to raise, a key to insert, a shared map without the writer lock, a ring that
wraps, an error return) is the Python helper's, with its exact result and fault.

* ``bpf_map_lookup_elem`` on ARRAY / PERCPU_ARRAY (bounds check, ``chunk base + j * slot (+ cpu * elem)``)
  and on HASH / PERCPU_HASH (the key's FNV-1a hash probes the ``HashMirror``; keys are compared byte by
  byte with the element's stored key).
* ``bpf_map_update_elem`` on HASH / PERCPU_HASH with flags 0 on an existing key (at the head of its bucket
  for HASH, so the iteration order does not change): the value is written in place (HASH: zero-padded to
  8 bytes, as ``prog_update``); shared storage only while this process holds the writer lock, as one
  aligned store inside a seqlock section (``SlotStorage.store_held``).
* ``bpf_ktime_get_ns`` and ``bpf_get_smp_processor_id``: the simulated clock and the CPU, which
  ``try_run`` stores in ``state`` before the run.
* ``bpf_perf_event_output`` with BPF_F_CURRENT_CPU or an index, no ctxlen: -E2BIG past the array,
  -ENOENT for an empty slot (after the data was found readable), and into an event that takes a RAW-only
  sample on this CPU (``PerfEvent.nctl``) the pending PERF_RECORD_LOST, the sample record, the padding,
  ``data_head``, ``lost`` and ``samples`` exactly as ``PerfRing.output_raw``; a full ring counts a lost
  sample and returns -ENOSPC; a record that would wrap around the end, or any other event, calls back.

The map table (``maptab``): ``TABLE_SIZE`` entries ``{slot + 1, descriptor}``, filled by the ``map_resolve``
callback (descriptor 0: no native helper for this map).
"""
from __future__ import annotations

from typing import Any

from llvmlite import ir  # type: ignore[import-untyped]

from .....uapi.perf_event import MMAP_PAGE_DATA_HEAD, MMAP_PAGE_DATA_TAIL
from . import maps as D

I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
M32 = 0xFFFF_FFFF
M64 = (1 << 64) - 1
MAP_RESOLVE_T = ir.FunctionType(I64, [I64])
HELPER_FN_T = ir.FunctionType(I64, [I64.as_pointer()] + [I64] * 5 + [I64.as_pointer()])
#: helper ids done natively (call site kinds)
H_LOOKUP, H_UPDATE, H_KTIME, H_CPU, H_PERF = 1, 2, 5, 8, 25
# offsets in the storage header (MapHeader) and in perf_event_mmap_page
_SEQ_OFF, _PID_OFF, _GEN_OFF = 16, 24, 40
_DATA_HEAD, _DATA_TAIL = MMAP_PAGE_DATA_HEAD, MMAP_PAGE_DATA_TAIL
_PERF_RECORD_SAMPLE, _PERF_RECORD_LOST, _MISC_KERNEL = 9, 2, 1
_ENOSPC, _ENOENT, _E2BIG = 28, 2, 7


def _c(v: int) -> ir.Constant:
    return ir.Constant(I64, v & M64)


class HelperGen:
    """Builds the native helpers into ``module`` on demand."""

    def __init__(self, module: ir.Module, table_addr: int, maptab_addr: int, cbs: dict[str, int],
                 state_cpu: int, state_ktime: int) -> None:
        self.module = module
        self.table = table_addr
        self.maptab = maptab_addr
        self.cbs = cbs
        self.state_cpu = state_cpu
        self.state_ktime = state_ktime
        self.fns: dict[str, ir.Function] = {}
        self._n = 0

    # -- small tools ---------------------------------------------------------------------------------------
    def _bb(self, fn: ir.Function, name: str) -> ir.Block:
        self._n += 1
        return fn.append_basic_block(f"{name}{self._n}")

    @staticmethod
    def ld(b: ir.IRBuilder, addr: Any, ty: ir.IntType = I64) -> Any:
        return b.load(b.inttoptr(addr, ty.as_pointer()), align=1)

    @staticmethod
    def st(b: ir.IRBuilder, v: Any, addr: Any) -> None:
        b.store(v, b.inttoptr(addr, v.type.as_pointer()), align=1)

    def word(self, b: ir.IRBuilder, base: Any, i: Any) -> Any:
        """``base[i]`` of a u64 array at host address ``base`` (``i`` an int or an i64)."""
        off = b.mul(i, _c(8)) if not isinstance(i, int) else _c(8 * i)
        return self.ld(b, b.add(base, off))

    def memmove(self, b: ir.IRBuilder, dst: Any, src: Any, n: Any) -> None:
        fn = self.module.declare_intrinsic("llvm.memmove", [I8.as_pointer(), I8.as_pointer(), I64])
        b.call(fn, [b.inttoptr(dst, I8.as_pointer()), b.inttoptr(src, I8.as_pointer()), n, ir.Constant(I1, 0)])

    def memset0(self, b: ir.IRBuilder, dst: Any, n: Any) -> None:
        fn = self.module.declare_intrinsic("llvm.memset", [I8.as_pointer(), I64])
        b.call(fn, [b.inttoptr(dst, I8.as_pointer()), ir.Constant(I8, 0), n, ir.Constant(I1, 0)])

    # -- address translation -----------------------------------------------------------------------------
    def xlate(self) -> ir.Function:
        """``i64 xlate(i64 addr, i64 n)``: the host address of ``n`` bytes at guest ``addr`` in one region, or 0."""
        if "xlate" in self.fns:
            return self.fns["xlate"]
        fn = ir.Function(self.module, ir.FunctionType(I64, [I64, I64]), name="xlate")
        fn.linkage = "internal"
        self.fns["xlate"] = fn
        addr, n = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        slot = b.lshr(addr, _c(32))
        o = b.and_(addr, _c(M32))
        e = b.add(_c(self.table), b.mul(b.and_(slot, _c(1023)), _c(32)))
        miss = b.icmp_unsigned("!=", self.ld(b, e), b.add(slot, _c(1)))
        res_bb, have_bb, fail_bb = self._bb(fn, "res"), self._bb(fn, "have"), self._bb(fn, "fail")
        b.cbranch(miss, res_bb, have_bb)
        rb = ir.IRBuilder(res_bb)
        found = rb.call(rb.inttoptr(_c(self.cbs["resolve"]), ir.FunctionType(I64, [I64]).as_pointer()), [slot])
        rb.cbranch(rb.icmp_unsigned("==", found, _c(0)), fail_bb, have_bb)
        hb = ir.IRBuilder(have_bb)
        size = self.ld(hb, hb.add(e, _c(16)))
        host = self.ld(hb, hb.add(e, _c(8)))
        bad = hb.or_(hb.icmp_unsigned(">", n, size), hb.icmp_unsigned(">", o, hb.sub(size, n)))
        ok_bb = self._bb(fn, "ok")
        hb.cbranch(bad, fail_bb, ok_bb)
        ob = ir.IRBuilder(ok_bb)
        ob.ret(ob.add(host, o))
        ir.IRBuilder(fail_bb).ret(_c(0))
        return fn

    def mapdesc(self) -> ir.Function:
        """``i64 mapdesc(i64 map_addr)``: the descriptor of the map owning that region, or 0."""
        if "mapdesc" in self.fns:
            return self.fns["mapdesc"]
        fn = ir.Function(self.module, ir.FunctionType(I64, [I64]), name="mapdesc")
        fn.linkage = "internal"
        self.fns["mapdesc"] = fn
        (addr,) = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        slot = b.lshr(addr, _c(32))
        e = b.add(_c(self.maptab), b.mul(b.and_(slot, _c(1023)), _c(16)))
        miss = b.icmp_unsigned("!=", self.ld(b, e), b.add(slot, _c(1)))
        res_bb, have_bb, fail_bb = self._bb(fn, "res"), self._bb(fn, "have"), self._bb(fn, "fail")
        b.cbranch(miss, res_bb, have_bb)
        rb = ir.IRBuilder(res_bb)
        found = rb.call(rb.inttoptr(_c(self.cbs["map_resolve"]), MAP_RESOLVE_T.as_pointer()), [slot])
        rb.cbranch(rb.icmp_unsigned("==", found, _c(0)), fail_bb, have_bb)
        hb = ir.IRBuilder(have_bb)
        hb.ret(self.ld(hb, hb.add(e, _c(8))))
        ir.IRBuilder(fail_bb).ret(_c(0))
        return fn

    def hash_find(self) -> ir.Function:
        """``i64 hash_find(i64 desc, i64 key_host)``: the mirror's entry address for the key, or 0."""
        if "hash_find" in self.fns:
            return self.fns["hash_find"]
        fn = ir.Function(self.module, ir.FunctionType(I64, [I64, I64]), name="hash_find")
        fn.linkage = "internal"
        self.fns["hash_find"] = fn
        d, kp = fn.args
        entry = fn.append_basic_block("entry")
        b = ir.IRBuilder(entry)
        ks = self.word(b, d, D.H_KEY_SIZE)
        # FNV-1a over the key's bytes
        hl = self._bb(fn, "fnv")
        hdone = self._bb(fn, "fnvdone")
        b.branch(hl)
        lb = ir.IRBuilder(hl)
        i = lb.phi(I64)
        h = lb.phi(I64)
        i.add_incoming(_c(0), entry)
        h.add_incoming(_c(D.FNV_OFFSET), entry)
        more = lb.icmp_unsigned("<", i, ks)
        body = self._bb(fn, "fnvbody")
        lb.cbranch(more, body, hdone)
        bb = ir.IRBuilder(body)
        byte = bb.zext(self.ld(bb, bb.add(kp, i), I8), I64)
        h2 = bb.mul(bb.xor(h, byte), _c(D.FNV_PRIME))
        i2 = bb.add(i, _c(1))
        bb.branch(hl)
        i.add_incoming(i2, body)
        h.add_incoming(h2, body)
        b = ir.IRBuilder(hdone)
        tag = b.shl(h, _c(2))
        tab = self.word(b, d, D.H_TAB)
        mask = self.word(b, d, D.H_MASK)
        start = b.and_(b.xor(h, b.lshr(h, _c(32))), mask)
        cs = self.word(b, d, D.H_CHUNK_SLOTS)
        slot_size = self.word(b, d, D.H_SLOT)
        nch = self.word(b, d, D.H_NCHUNKS)
        probe = self._bb(fn, "probe")
        b.branch(probe)
        pb = ir.IRBuilder(probe)
        idx = pb.phi(I64)
        idx.add_incoming(start, hdone)
        e = pb.add(tab, pb.mul(idx, _c(16)))
        w = self.ld(pb, e)
        empty = pb.icmp_unsigned("==", w, _c(0))
        notfound = self._bb(fn, "notfound")
        cand = self._bb(fn, "cand")
        nxt = self._bb(fn, "next")
        pb.cbranch(empty, notfound, cand)
        ir.IRBuilder(notfound).ret(_c(0))
        cb = ir.IRBuilder(cand)
        same = cb.icmp_unsigned("==", cb.and_(w, _c(M64 ^ 3)), tag)
        cmp_bb = self._bb(fn, "cmp")
        cb.cbranch(same, cmp_bb, nxt)
        mb = ir.IRBuilder(cmp_bb)
        si = self.ld(mb, mb.add(e, _c(8)))
        k = mb.udiv(si, cs)
        j = mb.urem(si, cs)
        host = self.word(mb, d, mb.add(mb.add(k, nch), _c(D.H_CHUNKS)))
        sk = mb.add(mb.add(host, mb.mul(j, slot_size)), _c(8))
        nohost = mb.icmp_unsigned("==", host, _c(0))
        kloop = self._bb(fn, "kloop")
        mb.cbranch(nohost, nxt, kloop)
        kb = ir.IRBuilder(kloop)
        ki = kb.phi(I64)
        ki.add_incoming(_c(0), cmp_bb)
        kdone = self._bb(fn, "kdone")
        kbody = self._bb(fn, "kbody")
        kb.cbranch(kb.icmp_unsigned("<", ki, ks), kbody, kdone)
        kbb = ir.IRBuilder(kbody)
        eq = kbb.icmp_unsigned("==", self.ld(kbb, kbb.add(kp, ki), I8), self.ld(kbb, kbb.add(sk, ki), I8))
        ki.add_incoming(kbb.add(ki, _c(1)), kbody)
        kbb.cbranch(eq, kloop, nxt)
        ir.IRBuilder(kdone).ret(e)
        nb = ir.IRBuilder(nxt)
        idx.add_incoming(nb.and_(nb.add(idx, _c(1)), mask), nxt)
        nb.branch(probe)
        return fn

    # -- the helpers -------------------------------------------------------------------------------------
    def _new(self, name: str) -> tuple[ir.Function, ir.IRBuilder, Any, list[Any], Any]:
        fn = ir.Function(self.module, HELPER_FN_T, name=name)
        fn.linkage = "internal"
        self.fns[name] = fn
        state, r1, r2, r3, r4, r5, okp = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        return fn, b, state, [r1, r2, r3, r4, r5], okp

    def _fail(self, fn: ir.Function, okp: Any) -> ir.Block:
        bb = self._bb(fn, "fallback")
        fb = ir.IRBuilder(bb)
        fb.store(_c(0), okp)
        fb.ret(_c(0))
        return bb

    @staticmethod
    def _done(b: ir.IRBuilder, okp: Any, v: Any) -> None:
        b.store(_c(1), okp)
        b.ret(v)

    def cpu(self, b: ir.IRBuilder, state: Any) -> Any:
        return b.load(b.gep(state, [ir.Constant(I32, self.state_cpu)]))

    def lookup(self) -> ir.Function:
        if "h_lookup" in self.fns:
            return self.fns["h_lookup"]
        fn, b, state, (m, key, _r3, _r4, _r5), okp = self._new("h_lookup")
        fail = self._fail(fn, okp)
        d = b.call(self.mapdesc(), [m])
        have = self._bb(fn, "desc")
        b.cbranch(b.icmp_unsigned("==", d, _c(0)), fail, have)
        b = ir.IRBuilder(have)
        kind = self.word(b, d, 0)
        arr_bb, hash_bb = self._bb(fn, "array"), self._bb(fn, "hash")
        sw = b.switch(kind, fail)
        sw.add_case(_c(D.KIND_ARRAY), arr_bb)
        sw.add_case(_c(D.KIND_HASH), hash_bb)
        # array: key is a u32 index
        ab = ir.IRBuilder(arr_bb)
        kp = ab.call(self.xlate(), [key, _c(4)])
        kok = self._bb(fn, "akey")
        ab.cbranch(ab.icmp_unsigned("==", kp, _c(0)), fail, kok)
        ab = ir.IRBuilder(kok)
        i = ab.zext(self.ld(ab, kp, I32), I64)
        inb = self._bb(fn, "ain")
        out = self._bb(fn, "aout")
        ab.cbranch(ab.icmp_unsigned(">=", i, self.word(ab, d, D.A_MAX)), out, inb)
        self._done(ir.IRBuilder(out), okp, _c(0))
        ab = ir.IRBuilder(inb)
        cs = self.word(ab, d, D.A_CHUNK_SLOTS)
        k = ab.udiv(i, cs)
        j = ab.urem(i, cs)
        base = self.word(ab, d, ab.add(k, _c(D.A_CHUNKS)))
        got = self._bb(fn, "abase")
        ab.cbranch(ab.icmp_unsigned("==", base, _c(0)), fail, got)
        ab = ir.IRBuilder(got)
        v = ab.add(ab.add(base, ab.mul(j, self.word(ab, d, D.A_SLOT))),
                   ab.mul(self.cpu(ab, state), self.word(ab, d, D.A_CPU_STRIDE)))
        self._done(ab, okp, v)
        # hash
        hb = ir.IRBuilder(hash_bb)
        hb = self._gen_ok(fn, hb, d, fail)
        kp = hb.call(self.xlate(), [key, self.word(hb, d, D.H_KEY_SIZE)])
        kok = self._bb(fn, "hkey")
        hb.cbranch(hb.icmp_unsigned("==", kp, _c(0)), fail, kok)
        hb = ir.IRBuilder(kok)
        e = hb.call(self.hash_find(), [d, kp])
        found = self._bb(fn, "hfound")
        missing = self._bb(fn, "hmissing")
        hb.cbranch(hb.icmp_unsigned("==", e, _c(0)), missing, found)
        self._done(ir.IRBuilder(missing), okp, _c(0))
        hb = ir.IRBuilder(found)
        si = self.ld(hb, hb.add(e, _c(8)))
        cs = self.word(hb, d, D.H_CHUNK_SLOTS)
        k = hb.udiv(si, cs)
        j = hb.urem(si, cs)
        base = self.word(hb, d, hb.add(k, _c(D.H_CHUNKS)))
        got = self._bb(fn, "hbase")
        hb.cbranch(hb.icmp_unsigned("==", base, _c(0)), fail, got)
        hb = ir.IRBuilder(got)
        v = hb.add(hb.add(base, hb.mul(j, self.word(hb, d, D.H_SLOT))), self.word(hb, d, D.H_VALUE_OFF))
        v = hb.add(v, hb.mul(self.cpu(hb, state), self.word(hb, d, D.H_CPU_STRIDE)))
        self._done(hb, okp, v)
        return fn

    def _gen_ok(self, fn: ir.Function, b: ir.IRBuilder, d: Any, fail: ir.Block) -> ir.IRBuilder:
        """Shared storage: go on only if no other process changed the keys since the mirror was built."""
        shared = self.word(b, d, D.H_SHARED)
        chk = self._bb(fn, "genchk")
        go = self._bb(fn, "gen_ok")
        b.cbranch(b.icmp_unsigned("!=", shared, _c(0)), chk, go)
        cb = ir.IRBuilder(chk)
        gen = self.ld(cb, cb.add(self.word(cb, d, D.H_HDR), _c(_GEN_OFF)))
        cb.cbranch(cb.icmp_unsigned("!=", gen, self.word(cb, d, D.H_GEN)), fail, go)
        return ir.IRBuilder(go)

    def update(self) -> ir.Function:
        if "h_update" in self.fns:
            return self.fns["h_update"]
        fn, b, state, (m, key, value, flags, _r5), okp = self._new("h_update")
        fail = self._fail(fn, okp)
        d = b.call(self.mapdesc(), [m])
        have = self._bb(fn, "desc")
        b.cbranch(b.or_(b.icmp_unsigned("==", d, _c(0)), b.icmp_unsigned("!=", flags, _c(0))), fail, have)
        b = ir.IRBuilder(have)
        is_hash = b.icmp_unsigned("==", self.word(b, d, 0), _c(D.KIND_HASH))
        hok = self._bb(fn, "hash")
        b.cbranch(is_hash, hok, fail)
        b = ir.IRBuilder(hok)
        upd = self._bb(fn, "upd")
        b.cbranch(b.icmp_unsigned("!=", self.word(b, d, D.H_UPDATE), _c(0)), upd, fail)
        b = ir.IRBuilder(upd)
        shared = b.icmp_unsigned("!=", self.word(b, d, D.H_SHARED), _c(0))
        # shared: only while this process holds the writer lock (outside a write section)
        held = self._bb(fn, "held")
        held_chk = self._bb(fn, "heldchk")
        b.cbranch(shared, held_chk, held)
        hb = ir.IRBuilder(held_chk)
        hb.cbranch(hb.icmp_unsigned("!=", self.ld(hb, self.word(hb, d, D.H_HELD)), _c(0)), held, fail)
        b = self._gen_ok(fn, ir.IRBuilder(held), d, fail)
        kp = b.call(self.xlate(), [key, self.word(b, d, D.H_KEY_SIZE)])
        vsize = self.word(b, d, D.H_VALUE_SIZE)
        vp = b.call(self.xlate(), [value, vsize])
        both = self._bb(fn, "ptrs")
        b.cbranch(b.or_(b.icmp_unsigned("==", kp, _c(0)), b.icmp_unsigned("==", vp, _c(0))), fail, both)
        b = ir.IRBuilder(both)
        e = b.call(self.hash_find(), [d, kp])
        found = self._bb(fn, "found")
        b.cbranch(b.icmp_unsigned("==", e, _c(0)), fail, found)  # a new key: Python inserts it
        b = ir.IRBuilder(found)
        percpu = b.icmp_unsigned("!=", self.word(b, d, D.H_PERCPU), _c(0))
        at_head = b.icmp_unsigned("!=", b.and_(self.ld(b, e), _c(2)), _c(0))
        inplace = self._bb(fn, "inplace")
        b.cbranch(b.or_(percpu, at_head), inplace, fail)  # HASH not at its bucket's head: Python moves it
        b = ir.IRBuilder(inplace)
        si = self.ld(b, b.add(e, _c(8)))
        cs = self.word(b, d, D.H_CHUNK_SLOTS)
        nch = self.word(b, d, D.H_NCHUNKS)
        k = b.udiv(si, cs)
        j = b.urem(si, cs)
        host = self.word(b, d, b.add(b.add(k, nch), _c(D.H_CHUNKS)))
        gh = self._bb(fn, "host")
        b.cbranch(b.icmp_unsigned("==", host, _c(0)), fail, gh)
        b = ir.IRBuilder(gh)
        p = b.add(b.add(b.mul(j, self.word(b, d, D.H_SLOT)), self.word(b, d, D.H_VALUE_OFF)),
                  b.mul(self.cpu(b, state), self.word(b, d, D.H_CPU_STRIDE)))
        dst = b.add(host, p)
        # bytes written: the value (PERCPU_HASH), or the value zero-padded to elem_size (HASH)
        n = b.select(percpu, vsize, self.word(b, d, D.H_ELEM))
        priv = self._bb(fn, "private")
        shw = self._bb(fn, "sharedw")
        b.cbranch(shared, shw, priv)
        pb = ir.IRBuilder(priv)
        self.memmove(pb, dst, vp, vsize)
        pad = pb.sub(n, vsize)
        padb = self._bb(fn, "pad")
        fin = self._bb(fn, "fin")
        pb.cbranch(pb.icmp_unsigned("!=", pad, _c(0)), padb, fin)
        pdb = ir.IRBuilder(padb)
        self.memset0(pdb, pdb.add(dst, vsize), pad)
        pdb.branch(fin)
        self._done(ir.IRBuilder(fin), okp, _c(0))
        # shared: one aligned store of 1, 2, 4 or 8 bytes inside a seqlock section, as store_held
        sb = ir.IRBuilder(shw)
        tmp = sb.alloca(I64)
        sb.store(_c(0), tmp)
        tmp_addr = sb.ptrtoint(tmp, I64)
        hdr = self.word(sb, d, D.H_HDR)
        cases = {1: I8, 2: I16, 4: I32, 8: I64}
        sw = sb.switch(n, fail)
        for size, ty in cases.items():
            cb_bb = self._bb(fn, f"w{size}")
            sw.add_case(_c(size), cb_bb)
            cb = ir.IRBuilder(cb_bb)
            aligned = self._bb(fn, f"al{size}")
            cb.cbranch(cb.icmp_unsigned("!=", cb.urem(p, _c(size)), _c(0)), fail, aligned)
            wb = ir.IRBuilder(aligned)
            self.memmove(wb, tmp_addr, vp, vsize)  # vsize <= n
            v = self.ld(wb, tmp_addr, ty)
            self.st(wb, self.ld(wb, self.word(wb, d, D.H_PID)), wb.add(hdr, _c(_PID_OFF)))
            seqa = wb.add(hdr, _c(_SEQ_OFF))
            self.st(wb, wb.add(self.ld(wb, seqa), _c(1)), seqa)
            st = wb.store(v, wb.inttoptr(dst, ty.as_pointer()), align=size)
            st.volatile = True
            self.st(wb, wb.add(self.ld(wb, seqa), _c(1)), seqa)
            self._done(wb, okp, _c(0))
        return fn

    def perf_output(self) -> ir.Function:
        if "h_perf" in self.fns:
            return self.fns["h_perf"]
        fn, b, state, (_ctx, m, flags, data, size), okp = self._new("h_perf")
        fail = self._fail(fn, okp)
        d = b.call(self.mapdesc(), [m])
        have = self._bb(fn, "desc")
        # flags: an index or BPF_F_CURRENT_CPU, nothing else (no ctxlen, no bad bits)
        b.cbranch(b.or_(b.icmp_unsigned("==", d, _c(0)), b.icmp_unsigned("!=", b.lshr(flags, _c(32)), _c(0))),
                  fail, have)
        b = ir.IRBuilder(have)
        isperf = self._bb(fn, "perf")
        b.cbranch(b.icmp_unsigned("==", self.word(b, d, 0), _c(D.KIND_PERF)), isperf, fail)
        b = ir.IRBuilder(isperf)
        cpu = self.cpu(b, state)
        index = b.select(b.icmp_unsigned("==", flags, _c(M32)), cpu, flags)
        inr = self._bb(fn, "inrange")
        e2big = self._bb(fn, "e2big")
        b.cbranch(b.icmp_unsigned(">=", index, self.word(b, d, D.P_MAX)), e2big, inr)
        self._done(ir.IRBuilder(e2big), okp, _c(-_E2BIG))
        b = ir.IRBuilder(inr)
        # the data is read before the slot is looked at (a bad pointer faults first: the callback's)
        src = b.call(self.xlate(), [data, size])
        srcok = self._bb(fn, "src")
        b.cbranch(b.icmp_unsigned("==", src, _c(0)), fail, srcok)
        b = ir.IRBuilder(srcok)
        ev = self.word(b, d, b.add(index, _c(D.P_SLOTS)))
        evok = self._bb(fn, "event")
        enoent = self._bb(fn, "enoent")
        b.cbranch(b.icmp_unsigned("==", ev, _c(0)), enoent, evok)
        self._done(ir.IRBuilder(enoent), okp, _c(-_ENOENT))
        b = ir.IRBuilder(evok)
        ok = b.and_(b.icmp_unsigned("!=", self.word(b, ev, D.E_OK), _c(0)),
                    b.icmp_unsigned("==", self.word(b, ev, D.E_CPU), cpu))
        go = self._bb(fn, "go")
        b.cbranch(ok, go, fail)
        b = ir.IRBuilder(go)
        ring = self.word(b, ev, D.E_RING)
        raw_size = b.sub(b.and_(b.add(size, _c(11)), _c(M64 ^ 7)), _c(4))
        rsize = b.add(raw_size, _c(12))
        small = self._bb(fn, "small")
        b.cbranch(b.icmp_unsigned(">", rsize, _c(0xFFFF)), fail, small)
        b = ir.IRBuilder(small)
        head = self.word(b, ring, D.R_HEAD)
        lost = self.word(b, ring, D.R_LOST)
        hdr = self.word(b, ring, D.R_HDR)
        dsize = self.word(b, ring, D.R_SIZE)
        mask = b.sub(dsize, _c(1))
        has_lost = b.icmp_unsigned("!=", lost, _c(0))
        need = b.select(has_lost, b.add(rsize, _c(24)), rsize)
        tail = self.ld(b, b.add(hdr, _c(_DATA_TAIL)))
        space = b.and_(b.sub(b.sub(tail, head), _c(1)), mask)
        full = self._bb(fn, "full")
        room = self._bb(fn, "room")
        b.cbranch(b.icmp_unsigned(">", need, space), full, room)
        fb = ir.IRBuilder(full)
        self.st(fb, fb.add(lost, _c(1)), fb.add(ring, _c(8 * D.R_LOST)))
        self._done(fb, okp, _c(-_ENOSPC))
        b = ir.IRBuilder(room)
        # a record that would wrap around the end: the Python path splits it
        loff = b.and_(head, mask)
        soff = b.and_(b.select(has_lost, b.add(head, _c(24)), head), mask)
        wraps = b.or_(b.and_(has_lost, b.icmp_unsigned(">", b.add(loff, _c(24)), dsize)),
                      b.icmp_unsigned(">", b.add(soff, rsize), dsize))
        write = self._bb(fn, "write")
        b.cbranch(wraps, fail, write)
        b = ir.IRBuilder(write)
        dbase = self.word(b, ring, D.R_DATA)
        lrec = self._bb(fn, "lostrec")
        sample = self._bb(fn, "sample")
        b.cbranch(has_lost, lrec, sample)
        lb = ir.IRBuilder(lrec)
        la = lb.add(dbase, loff)
        self.st(lb, ir.Constant(I32, _PERF_RECORD_LOST), la)
        self.st(lb, ir.Constant(I16, 0), lb.add(la, _c(4)))
        self.st(lb, ir.Constant(I16, 24), lb.add(la, _c(6)))
        self.st(lb, self.word(lb, ring, D.R_ID), lb.add(la, _c(8)))
        self.st(lb, lost, lb.add(la, _c(16)))
        self.st(lb, _c(0), lb.add(ring, _c(8 * D.R_LOST)))
        lb.branch(sample)
        sb = ir.IRBuilder(sample)
        sa = sb.add(dbase, soff)
        self.st(sb, ir.Constant(I32, _PERF_RECORD_SAMPLE), sa)
        self.st(sb, ir.Constant(I16, _MISC_KERNEL), sb.add(sa, _c(4)))
        self.st(sb, sb.trunc(rsize, I16), sb.add(sa, _c(6)))
        self.st(sb, sb.trunc(raw_size, I32), sb.add(sa, _c(8)))
        self.memmove(sb, sb.add(sa, _c(12)), src, size)
        self.memset0(sb, sb.add(sb.add(sa, _c(12)), size), sb.sub(raw_size, size))
        new_head = sb.add(sb.select(has_lost, sb.add(head, _c(24)), head), rsize)
        self.st(sb, new_head, sb.add(ring, _c(8 * D.R_HEAD)))
        self.st(sb, new_head, sb.add(hdr, _c(_DATA_HEAD)))
        sc = sb.add(ring, _c(8 * D.R_SAMPLES))
        self.st(sb, sb.add(self.ld(sb, sc), _c(1)), sc)
        self._done(sb, okp, _c(0))
        return fn
