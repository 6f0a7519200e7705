"""The order of a Linux hash table: jhash buckets, each a list with its newest element first.

``htab_map_get_next_key`` and ``bpf_for_each_hash_elem`` walk the buckets in
index order and each bucket from its head; ``hlist_nulls_add_head_rcu`` links
a new element at the head. ``BucketOrder`` keeps that order for a set of keys
(the values live elsewhere), so every hash-shaped map walks as Linux does.
"""
from __future__ import annotations

import bisect

from ..errors import ENOENT, fail
from .jhash import htab_map_hash

__all__ = ["BucketOrder"]

#: at most how many keys' buckets a table remembers (twice its buckets, at least 1024; then it starts over)
_HASH_CACHE = 1 << 16


class BucketOrder:
    """Keys in ``n_buckets`` buckets chosen by ``htab_map_hash(key, hashrnd)``."""

    def __init__(self, n_buckets: int, hashrnd: int) -> None:
        self.n_buckets = n_buckets
        self.hashrnd = hashrnd
        #: bucket number -> its keys, newest first; the sorted numbers of the non-empty buckets
        self.buckets: dict[int, list[bytes]] = {}
        self.nonempty: list[int] = []
        self.bucket_of: dict[bytes, int] = {}
        self._hashed: dict[bytes, int] = {}
        self._hashed_max = min(_HASH_CACHE, max(1024, 2 * n_buckets))

    def __contains__(self, key: object) -> bool:
        return key in self.bucket_of

    def __len__(self) -> int:
        return len(self.bucket_of)

    def bucket(self, key: bytes) -> int:
        """``htab_map_hash(key) & (n_buckets - 1)``, remembered per key (a deleted key that comes back,
        LRU churn): jhash in Python costs more than the rest of an insert."""
        b = self._hashed.get(key)
        if b is None:
            b = htab_map_hash(key, self.hashrnd) & (self.n_buckets - 1)
            if len(self._hashed) >= self._hashed_max:
                self._hashed.clear()
            self._hashed[key] = b
        return b

    def link(self, key: bytes) -> None:
        """``hlist_nulls_add_head_rcu``: the key goes to the head of its bucket."""
        b = self.bucket(key)
        self.bucket_of[key] = b
        lst = self.buckets.get(b)
        if lst is None:
            self.buckets[b] = [key]
            bisect.insort(self.nonempty, b)
        else:
            lst.insert(0, key)

    def unlink(self, key: bytes) -> None:
        b = self.bucket_of.pop(key)
        lst = self.buckets[b]
        lst.remove(key)
        if not lst:
            del self.buckets[b]
            del self.nonempty[bisect.bisect_left(self.nonempty, b)]

    def to_head(self, key: bytes) -> bool:
        """Move ``key`` to the head of its bucket (an update that replaced the element); whether it moved."""
        lst = self.buckets[self.bucket_of[key]]
        if lst[0] == key:
            return False
        lst.remove(key)
        lst.insert(0, key)
        return True

    def keys(self) -> list[bytes]:
        return [k for b in self.nonempty for k in self.buckets[b]]

    def next_key(self, key: bytes | None) -> bytes:
        """``htab_map_get_next_key``: after ``key`` in its bucket, else the next bucket's head; a missing or
        NULL key gives the first key; ENOENT after the last."""
        start = 0
        if key is not None and key in self.bucket_of:
            b = self.bucket_of[key]
            lst = self.buckets[b]
            pos = lst.index(key) + 1
            if pos < len(lst):
                return lst[pos]
            start = b + 1
        j = bisect.bisect_left(self.nonempty, start)
        if j >= len(self.nonempty):
            raise fail(ENOENT, "no next key")
        return self.buckets[self.nonempty[j]][0]
