"""BPF_MAP_TYPE_LRU_HASH and LRU_PERCPU_HASH (kernel/bpf/hashtab.c ``htab_lru_*``) on Linux's LRU lists.

The table is a hash map's (buckets, slots); its elements are the nodes of a
``BpfLru`` (``lru.py``). Every insert first takes a free node
(``prealloc_lru_pop``), which may evict elements, and only then checks the
flags: so, as on Linux, even a failed or replacing update can evict, and an
update of an existing key of a (non-per-CPU) LRU map links a new node with
its reference bit set and frees the old one. A program's lookup sets the
reference bit; a lookup from user space does not (``_sys_only``). User-space
calls act on CPU 0 (pin a real process to CPU 0 to compare).

A node gets a storage slot the first time it is used, so slots stay dense
(the lists hand out nodes from the top of the range down).
"""
from __future__ import annotations

from ..errors import EEXIST, EINVAL, ENOENT, ENOMEM
from .base import T, U
from .hash import HashMap
from .lru import BpfLru
from .storage import GENERATION

__all__ = ["LruHashMap"]


class LruHashMap(HashMap):
    map_types = (T.BPF_MAP_TYPE_LRU_HASH, T.BPF_MAP_TYPE_LRU_PERCPU_HASH)

    def _reset_index(self) -> None:
        super()._reset_index()
        self._new_lists([])

    def _new_lists(self, found: list[tuple[int, bytes]]) -> None:
        self.lru_lists = BpfLru(self.max_entries, self.ncpus, self.percpu_lru, self._del_from_htab)
        #: slot -> key linked there; node <-> slot
        self.slot_key: dict[int, bytes] = {}
        self.node_slot: dict[int, int] = {}
        self.slot_node: dict[int, int] = {}
        in_use = {i for i, _ in found}
        self.spare_slots = [i for i in range(self.storage.hwm - 1, -1, -1) if i not in in_use]
        self.next_slot = self.storage.hwm
        for i, key in sorted(found):  # elements found in a pinned file: fresh nodes on the inactive lists
            node = self.lru_lists.adopt()
            if node is None:
                break
            self.node_slot[node], self.slot_node[i], self.slot_key[i] = i, node, key

    def _synced(self, found: list[tuple[int, bytes]]) -> None:
        """Another process changed the keys: its LRU lists are not ours; start ours from the file's elements."""
        self._new_lists(found)

    def _slot_for(self, node: int) -> int:
        s = self.node_slot.get(node)
        if s is None:
            s = self.spare_slots.pop() if self.spare_slots else self.next_slot
            if s == self.next_slot:
                self.next_slot += 1
            self.node_slot[node], self.slot_node[s] = s, node
        return s

    # -- the table side of the LRU -----------------------------------------------------------------------
    def _del_from_htab(self, node: int) -> bool:
        """``htab_lru_map_delete_node``: evict the element of ``node`` (False if the node holds none)."""
        s = self.node_slot.get(node)
        key = self.slot_key.pop(s, None) if s is not None else None
        if key is None:
            return False
        self._unlink(key)
        return True

    def _remove(self, key: bytes) -> None:
        """Delete: unlink the element, then ``htab_lru_push_free`` its node."""
        s = self._unlink(key)
        self.slot_key.pop(s, None)
        self.lru_lists.push_free(self.slot_node[s])

    @staticmethod
    def _check_flags(old: int | None, flags: int) -> int:
        """``check_flags``."""
        mode = flags & ~U.BPF_F_LOCK
        if old is not None and mode == U.BPF_NOEXIST:
            return EEXIST
        if old is None and mode == U.BPF_EXIST:
            return ENOENT
        return 0

    def _link_node(self, key: bytes, node: int, values: bytes) -> None:
        s = self._slot_for(node)
        self._link_at(key, s, values)
        self.slot_key[s] = key

    def _update_locked(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        if flags > U.BPF_EXIST:  # neither LRU update takes BPF_F_LOCK
            return EINVAL
        if self.percpu:
            return self._percpu_update(key, value, flags, cpu)
        # htab_lru_map_update_elem: a node first (this may evict), then the flags
        lru = self.lru_lists
        node = lru.pop_free(cpu or 0)
        if node is None:
            return ENOMEM
        old = self.index.get(key)
        err = self._check_flags(old, flags)
        if err:
            lru.push_free(node)
            return err
        if old is not None:  # the new element replaces the old one, at the head of the bucket
            self._unlink(key)
            self.slot_key.pop(old, None)
        values = self.mask_special(bytes(value[:self.value_size])).ljust(self.elem_size, b"\0")
        try:
            self._link_node(key, node, values)
        except OSError as e:
            lru.push_free(node)
            return e.errno or ENOMEM
        if old is not None:
            lru.set_ref(node)
            lru.push_free(self.slot_node[old])
        return 0

    def _percpu_update(self, key: bytes, value: bytes, flags: int, cpu: int | None) -> int:
        """``__htab_lru_percpu_map_update_elem``: an existing element is updated in place."""
        lru = self.lru_lists
        node: int | None = None
        if flags != U.BPF_EXIST:
            node = lru.pop_free(cpu or 0)
            if node is None:
                return ENOMEM
        old = self.index.get(key)
        err = self._check_flags(old, flags)
        if not err:
            if old is not None:
                lru.set_ref(self.slot_node[old])
                st = self.storage
                if cpu is None:
                    st.write(old, self.value_off, self._percpu_image(value, None))
                else:
                    st.write(old, self.value_off + cpu * self.elem_size, bytes(value[:self.value_size]))
            elif node is not None:
                try:
                    self._link_node(key, node, self._percpu_image(value, cpu))
                    node = None
                except OSError as e:
                    err = e.errno or ENOMEM
        if node is not None:
            lru.push_free(node)
        return err

    # -- program side ---------------------------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        """``htab_lru_map_lookup_elem``: a hit sets the element's reference bit."""
        st = self.storage
        if st.shared and st.hq[GENERATION] != self._gen:
            self._sync()
        if type(key) is not bytes or len(key) != self.key_size:
            key = self._key(key)
        i = self.index.get(key)
        if i is None:
            return 0
        self.lru_lists.set_ref(self.slot_node[i])
        a = self.vaddr[key]
        return a + cpu * self.elem_size if self.percpu else a
