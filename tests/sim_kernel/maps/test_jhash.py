"""jhash/jhash2 (include/linux/jhash.h). The order and bloom differential tests check them against Linux;
these pin a few values so a regression shows without the real kernel."""
from __future__ import annotations

from tinyaya.sim_kernel.maps.jhash import htab_map_hash, jhash, jhash2


def test_known_values() -> None:
    assert jhash2([], 0) == 0xDEADBEEF
    assert jhash(b"", 0) == 0xDEADBEEF
    # the word and byte forms agree on whole words
    for data in (b"abcd", b"0123456789ab", b"0123456789abcdef"):
        words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
        assert jhash2(words, 7) == jhash(data, 7)
    assert htab_map_hash(b"abc", 0) == jhash(b"abc", 0)
    assert len({htab_map_hash(i.to_bytes(4, "little"), 0) & 63 for i in range(64)}) > 30
    assert all(0 <= htab_map_hash(bytes([i]) * 13, i) <= 0xFFFFFFFF for i in range(50))


def test_pinned_values() -> None:
    """Values of the implementation that passed the differential order/bloom tests against Linux 6.18."""
    assert htab_map_hash((1).to_bytes(4, "little"), 0) == 0x72A82A9B
    assert htab_map_hash(b"hello", 0) == 0x34CBBC6E
    assert htab_map_hash(b"0123456789abcdefXYZ", 42) == 0x8DDF1DDB
