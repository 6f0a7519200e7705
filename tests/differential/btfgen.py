"""A small BTF builder for the BTF_LOAD differential tests (kinds and layouts: include/uapi/linux/btf.h)."""
from __future__ import annotations

import struct


class BtfBuilder:
    def __init__(self) -> None:
        self.strs = bytearray(b"\0")
        self.types = bytearray()
        self.n = 0

    def s(self, name: str) -> int:
        if not name:
            return 0
        off = len(self.strs)
        self.strs += name.encode() + b"\0"
        return off

    def t(self, name: str | int, kind: int, vlen: int = 0, kflag: int = 0, st: int = 0, extra: bytes = b"") -> int:
        name_off = self.s(name) if isinstance(name, str) else name
        self.types += struct.pack("<III", name_off, (kflag << 31) | (kind << 24) | vlen, st) + extra
        self.n += 1
        return self.n

    def blob(self, hdr_extra: bytes = b"") -> bytes:
        hl = 24 + len(hdr_extra)
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, hl, 0, len(self.types), len(self.types), len(self.strs))
        return hdr + hdr_extra + bytes(self.types) + bytes(self.strs)


def int_t(b: BtfBuilder, name: str = "int", size: int = 4, bits: int = 32, enc: int = 1, off: int = 0) -> int:
    return b.t(name, 1, st=size, extra=struct.pack("<I", (enc << 24) | (off << 16) | bits))


def sample(mutate: str = "") -> bytes:
    """Every kind once; ``mutate`` names one defect to put in."""
    b = BtfBuilder()
    i = int_t(b, size=2 if mutate == "int_size_2_bits_32" else 4, enc=8 if mutate == "int_encoding" else 1,
              bits=200 if mutate == "int_bits" else 32)
    b.t("p" if mutate == "ptr_named" else "", 2, st=99 if mutate == "ptr_dangling" else i,
        vlen=1 if mutate == "ptr_vlen" else 0)
    m1, m2 = b.s("a"), b.s("1bad" if mutate == "member_name" else "b")
    b.t("pair", 5 if mutate == "union_offset" else 4, vlen=2, st=2 if mutate == "struct_small" else 8,
        extra=struct.pack("<III", m1, 0 if mutate == "member_void" else i, 0) + struct.pack("<III", m2, i, 32))
    b.t("", 3, extra=struct.pack("<III", i, 0 if mutate == "array_index0" else i, 4),
        st=4 if mutate == "array_size" else 0)
    b.t("" if mutate == "typedef_anon" else "myint", 8, st=i)
    fp = b.t("", 13, vlen=1, st=i, extra=struct.pack("<II", b.s("x"), i))
    b.t("f", 12, vlen=2 if mutate == "func_extern" else 1, st=i if mutate == "func_not_proto" else fp)
    v = b.t("g", 14, st=i, extra=struct.pack("<I", 2 if mutate == "var_extern" else 1))
    ds_size = 0 if mutate == "datasec_size0" else 4
    b.t(".data", 15, vlen=1, st=ds_size,
        extra=struct.pack("<III", i if mutate == "datasec_not_var" else v, 2 if mutate == "datasec_offset" else 0,
                          4))
    b.t("e", 6, vlen=1, st=3 if mutate == "enum_size" else 4, extra=struct.pack("<Ii", b.s("E1"), 5))
    b.t("fw", 7, st=1 if mutate == "fwd_type" else 0)
    b.t("double", 16, st=6 if mutate == "float_size" else 8)
    b.t("", 10, st=i, kflag=1 if mutate == "const_kflag" else 0)
    if mutate == "bad_kind":
        b.t("", 25)
    if mutate == "loop":
        b.t("", 10, st=b.n + 2)
        b.t("", 9, st=b.n)
    return b.blob()


MUTATIONS = ["", "int_size_2_bits_32", "int_encoding", "int_bits", "ptr_named", "ptr_dangling", "ptr_vlen",
             "member_name", "union_offset", "struct_small", "member_void", "array_index0", "array_size",
             "typedef_anon", "func_extern", "func_not_proto", "var_extern", "datasec_size0", "datasec_not_var",
             "datasec_offset", "enum_size", "fwd_type", "float_size", "const_kflag", "bad_kind", "loop"]
