"""The LRU lists of LRU hash maps, as kernel/bpf/bpf_lru_list.c keeps them.

Linux does not keep an exact LRU order: nodes sit on an *active* and an
*inactive* list with a reference bit, each CPU has a local *free* and
*pending* list (the common LRU), free nodes move from the global list to a
CPU in batches of ``target_free``, and a CPU that finds no free node shrinks
the inactive list from its tail (``__bpf_lru_list_shrink``), rotates, and
at worst steals from other CPUs. Which element a full map evicts therefore
depends on the CPU of every operation. This module replays that algorithm
node for node, so a sequence of operations issued on known CPUs evicts the
same elements as Linux (BPF_F_NO_COMMON_LRU: one list per CPU,
``bpf_percpu_lru_*``).

Nodes are the map's element slots ``0 .. nr_elems - 1``; ``del_from_htab(node)``
is the map's ``htab_lru_map_delete_node`` (unlink the node's key, if it has one).
Nodes that were never used stay virtual: ``bpf_lru_populate`` lists them on
the free list in a known order (the last one at the head), and they are made
only when they leave it, so a map of 2^27 elements costs nothing up front.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

__all__ = ["BpfLru"]

LOCAL_FREE_TARGET = 128
LOCAL_NR_SCANS = LOCAL_FREE_TARGET
PERCPU_FREE_TARGET = 4
PERCPU_NR_SCANS = PERCPU_FREE_TARGET

# enum bpf_lru_list_type
ACTIVE, INACTIVE, FREE, LOCAL_FREE, LOCAL_PENDING = 0, 1, 2, 3, 4


class _Link:
    """A ``struct list_head``: list heads are bare links, nodes are links with a payload."""

    __slots__ = ("prev", "next")

    def __init__(self) -> None:
        self.prev: _Link = self
        self.next: _Link = self


class _Node(_Link):
    """``struct bpf_lru_node``."""

    __slots__ = ("id", "cpu", "type", "ref")

    def __init__(self, nid: int) -> None:
        super().__init__()
        self.id = nid
        self.cpu = 0
        self.type = FREE
        self.ref = 0


def _del(e: _Link) -> None:
    e.prev.next = e.next
    e.next.prev = e.prev
    e.prev = e.next = e


def _add(e: _Link, head: _Link) -> None:
    """``list_add``: right after ``head`` (at the front)."""
    e.next = head.next
    e.prev = head
    head.next.prev = e
    head.next = e


def _move(e: _Link, head: _Link) -> None:
    """``list_move``."""
    _del(e)
    _add(e, head)


def _forward(head: _Link) -> Iterator[_Node]:
    """``list_for_each_entry_safe``."""
    e = head.next
    while e is not head:
        nxt = e.next
        assert isinstance(e, _Node)
        yield e
        e = nxt


def _reverse(head: _Link) -> Iterator[_Node]:
    """``list_for_each_entry_safe_reverse``."""
    e = head.prev
    while e is not head:
        prv = e.prev
        assert isinstance(e, _Node)
        yield e
        e = prv


class _LruList:
    """``struct bpf_lru_list``: active, inactive and free lists, counts, the inactive rotation cursor."""

    def __init__(self) -> None:
        self.lists = [_Link(), _Link(), _Link()]
        self.counts = [0, 0]
        self.next_inactive_rotation: _Link = self.lists[INACTIVE]


class _LocalList:
    """``struct bpf_lru_locallist``: a CPU's free and pending lists."""

    def __init__(self, cpu: int) -> None:
        self.free = _Link()
        self.pending = _Link()
        self.next_steal = cpu


class BpfLru:
    """``struct bpf_lru`` over ``nr_elems`` nodes (``bpf_lru_init`` + ``bpf_lru_populate``)."""

    def __init__(self, nr_elems: int, ncpus: int, percpu: bool, del_from_htab: Callable[[int], bool]) -> None:
        self.percpu = percpu
        self.ncpus = ncpus
        self.del_from_htab = del_from_htab
        self.nodes: dict[int, _Node] = {}
        if percpu:
            self.nr_scans = PERCPU_NR_SCANS
            self.percpu_lru = [_LruList() for _ in range(ncpus)]
            # bpf_percpu_lru_populate: CPU c gets nodes [c * pcpu, (c + 1) * pcpu), the last at the head
            pcpu = max(nr_elems // ncpus, 1)
            self._virtual = [(min((c + 1) * pcpu, nr_elems) - 1, c * pcpu) for c in range(ncpus)]
        else:
            self.nr_scans = LOCAL_NR_SCANS
            self.lru_list = _LruList()
            self.local = [_LocalList(cpu) for cpu in range(ncpus)]
            # bpf_common_lru_populate: every node on the global free list, the last at the head
            self._virtual = [(nr_elems - 1, 0)]
            self.target_free = min(max((nr_elems // ncpus) // 2, 1), LOCAL_FREE_TARGET)

    def _materialize(self, which: int) -> _Node | None:
        """The next never-used node of free list ``which`` (the global one, or a CPU's), or None."""
        top, bottom = self._virtual[which]
        if top < bottom:
            return None
        self._virtual[which] = (top - 1, bottom)
        node = self.nodes[top] = _Node(top)
        node.cpu = which if self.percpu else 0
        return node

    def adopt(self) -> int | None:
        """A never-used node put straight on an inactive list, for an element that already exists (a map
        opened from a pin: its lists start over); None when every node is in use."""
        for which in range(len(self._virtual)):
            node = self._materialize(which)
            if node is not None:
                lst = self.percpu_lru[which] if self.percpu else self.lru_list
                self._move_in(lst, node, INACTIVE)
                return node.id
        return None

    # -- reference bits ------------------------------------------------------------------------------
    def set_ref(self, nid: int) -> None:
        """``bpf_lru_node_set_ref``: a program looked the element up (or an update replaced it)."""
        self.nodes[nid].ref = 1

    # -- list moves (bpf_lru_list.c) ----------------------------------------------------------------
    @staticmethod
    def _count_dec(lst: _LruList, t: int) -> None:
        if t < FREE:
            lst.counts[t] -= 1

    @staticmethod
    def _count_inc(lst: _LruList, t: int) -> None:
        if t < FREE:
            lst.counts[t] += 1

    def _move_to_free(self, lst: _LruList, node: _Node, free_list: _Link, tgt_free_type: int) -> None:
        """``__bpf_lru_node_move_to_free``."""
        if node is lst.next_inactive_rotation:
            lst.next_inactive_rotation = node.prev
        self._count_dec(lst, node.type)
        node.type = tgt_free_type
        _move(node, free_list)

    def _move_in(self, lst: _LruList, node: _Node, tgt_type: int) -> None:
        """``__bpf_lru_node_move_in``: from a local list into the LRU list."""
        self._count_inc(lst, tgt_type)
        node.type = tgt_type
        node.ref = 0
        _move(node, lst.lists[tgt_type])

    def _node_move(self, lst: _LruList, node: _Node, tgt_type: int) -> None:
        """``__bpf_lru_node_move``: between or within the active and inactive lists (or to free)."""
        if node.type != tgt_type:
            self._count_dec(lst, node.type)
            self._count_inc(lst, tgt_type)
            node.type = tgt_type
        node.ref = 0
        if node is lst.next_inactive_rotation:
            lst.next_inactive_rotation = node.prev
        _move(node, lst.lists[tgt_type])

    def _rotate_active(self, lst: _LruList) -> None:
        active = lst.lists[ACTIVE]
        if active.next is active:
            return
        first = active.next
        i = 0
        for node in _reverse(active):
            self._node_move(lst, node, ACTIVE if node.ref else INACTIVE)
            i += 1
            if i == self.nr_scans or node is first:
                break

    def _rotate_inactive(self, lst: _LruList) -> None:
        inactive = lst.lists[INACTIVE]
        if inactive.next is inactive:
            return
        last = lst.next_inactive_rotation.next
        if last is inactive:
            last = last.next
        cur = lst.next_inactive_rotation
        nxt: _Link = inactive
        i = 0
        while i < self.nr_scans:
            if cur is inactive:
                cur = cur.prev
                continue
            assert isinstance(cur, _Node)
            nxt = cur.prev
            if cur.ref:
                self._node_move(lst, cur, ACTIVE)
            if cur is last:
                break
            cur = nxt
            i += 1
        lst.next_inactive_rotation = nxt

    def _shrink_inactive(self, lst: _LruList, tgt_nshrink: int, free_list: _Link, tgt_free_type: int) -> int:
        nshrinked = 0
        i = 0
        for node in _reverse(lst.lists[INACTIVE]):
            if node.ref:
                self._node_move(lst, node, ACTIVE)
            elif self.del_from_htab(node.id):
                self._move_to_free(lst, node, free_list, tgt_free_type)
                nshrinked += 1
                if nshrinked == tgt_nshrink:
                    break
            i += 1
            if i == self.nr_scans:
                break
        return nshrinked

    def _rotate(self, lst: _LruList) -> None:
        if lst.counts[INACTIVE] < lst.counts[ACTIVE]:
            self._rotate_active(lst)
        self._rotate_inactive(lst)

    def _shrink(self, lst: _LruList, tgt_nshrink: int, free_list: _Link, tgt_free_type: int) -> int:
        """``__bpf_lru_list_shrink``: shrink the inactive tail, else force one node out ignoring ref bits."""
        n = self._shrink_inactive(lst, tgt_nshrink, free_list, tgt_free_type)
        if n:
            return n
        inactive = lst.lists[INACTIVE]
        force = inactive if inactive.next is not inactive else lst.lists[ACTIVE]
        for node in _reverse(force):
            if self.del_from_htab(node.id):
                self._move_to_free(lst, node, free_list, tgt_free_type)
                return 1
        return 0

    # -- the common LRU ---------------------------------------------------------------------------------
    def _local_flush(self, loc: _LocalList) -> None:
        lst = self.lru_list
        for node in _reverse(loc.pending):
            self._move_in(lst, node, ACTIVE if node.ref else INACTIVE)

    def _pop_free_to_local(self, loc: _LocalList) -> None:
        lst = self.lru_list
        self._local_flush(loc)
        self._rotate(lst)
        nfree = 0
        for node in _forward(lst.lists[FREE]):
            self._move_to_free(lst, node, loc.free, LOCAL_FREE)
            nfree += 1
            if nfree == self.target_free:
                break
        while nfree < self.target_free:  # then the never-used nodes, which follow at the list's tail
            fresh = self._materialize(0)
            if fresh is None:
                break
            fresh.type = LOCAL_FREE
            _add(fresh, loc.free)
            nfree += 1
        if nfree < self.target_free:
            self._shrink(lst, self.target_free - nfree, loc.free, LOCAL_FREE)

    @staticmethod
    def _local_pop_free(loc: _LocalList) -> _Node | None:
        e = loc.free.next
        if e is loc.free:
            return None
        _del(e)
        assert isinstance(e, _Node)
        return e

    def _local_pop_pending(self, loc: _LocalList) -> _Node | None:
        for force in (False, True):
            for node in _reverse(loc.pending):
                if (not node.ref or force) and self.del_from_htab(node.id):
                    _del(node)
                    return node
        return None

    @staticmethod
    def _local_add_pending(loc: _LocalList, cpu: int, node: _Node) -> None:
        node.cpu = cpu
        node.type = LOCAL_PENDING
        node.ref = 0
        _add(node, loc.pending)

    def _common_pop_free(self, cpu: int) -> _Node | None:
        loc = self.local[cpu]
        node = self._local_pop_free(loc)
        if node is None:
            self._pop_free_to_local(loc)
            node = self._local_pop_free(loc)
        if node is not None:
            self._local_add_pending(loc, cpu, node)
            return node
        first_steal = steal = loc.next_steal
        while True:  # steal from the CPUs' local lists, round robin
            sl = self.local[steal]
            node = self._local_pop_free(sl)
            if node is None:
                node = self._local_pop_pending(sl)
            steal = (steal + 1) % self.ncpus
            if node is not None or steal == first_steal:
                break
        loc.next_steal = steal
        if node is not None:
            self._local_add_pending(loc, cpu, node)
        return node

    def _common_push_free(self, node: _Node) -> None:
        if node.type in (FREE, LOCAL_FREE):
            return
        if node.type == LOCAL_PENDING:
            node.type = LOCAL_FREE
            node.ref = 0
            _move(node, self.local[node.cpu].free)
            return
        self._node_move(self.lru_list, node, FREE)

    # -- the per-CPU LRU ----------------------------------------------------------------------------------
    def _percpu_pop_free(self, cpu: int) -> _Node | None:
        lst = self.percpu_lru[cpu]
        self._rotate(lst)
        free = lst.lists[FREE]
        if free.next is free:
            fresh = self._materialize(cpu)  # a never-used node is next on the free list
            if fresh is not None:
                _add(fresh, free)
        if free.next is free:
            self._shrink(lst, PERCPU_FREE_TARGET, free, FREE)
        if free.next is free:
            return None
        node = free.next
        assert isinstance(node, _Node)
        node.ref = 0
        self._node_move(lst, node, INACTIVE)
        return node

    # -- bpf_lru_pop_free / bpf_lru_push_free -------------------------------------------------------------
    def pop_free(self, cpu: int) -> int | None:
        """A free node for a new element on ``cpu`` (evicting elements if needed), or None (-ENOMEM)."""
        node = self._percpu_pop_free(cpu) if self.percpu else self._common_pop_free(cpu)
        return None if node is None else node.id

    def push_free(self, nid: int) -> None:
        """The element of node ``nid`` was deleted (or its insert failed): give the node back."""
        node = self.nodes[nid]
        if self.percpu:
            self._node_move(self.percpu_lru[node.cpu], node, FREE)
        else:
            self._common_push_free(node)
