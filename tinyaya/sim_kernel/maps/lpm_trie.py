"""BPF_MAP_TYPE_LPM_TRIE (kernel/bpf/lpm_trie.c, Linux 6.18): longest-prefix match.

The key is ``struct bpf_lpm_trie_key_u8 { __u32 prefixlen; __u8 data[]; }``
(uapi linux/bpf.h): a host-order prefix length in bits, then ``key_size - 4``
bytes of data compared most significant bit first.

The trie is Linux's, node for node, because user space sees its shape:
``GET_NEXT_KEY`` walks it in postorder (``trie_get_next_key``: the more
specific prefixes before the less specific ones, a key not in the trie
restarting from the leftmost node). Nodes carry ``prefixlen``, the full
``data`` of the key that made them (bits past the prefix included, as
``trie_update_elem`` copies them), two children and the intermediate flag
(``LPM_TREE_NODE_FLAG_IM``: a branching node that holds no element). An
update replaces a node by a new one (its value in a new slot, as the kernel
allocates a new node), a delete turns a node with two children into an
intermediate one and removes a childless node's intermediate parent.
"""
from __future__ import annotations

import struct
from typing import Any

from ..errors import EEXIST, EINVAL, ENOENT, ENOSPC, fail
from .base import BPF_F_ACCESS_MASK, KMALLOC_MAX_SIZE, MAP_STRUCT_SIZE, BpfMap, F, T, U, flags_access_ok
from .btf_checks import check_struct_key
from .value_arena import ValueArena

__all__ = ["LpmTrieMap", "LPM_CREATE_FLAG_MASK"]

LPM_DATA_SIZE_MAX = 256
LPM_DATA_SIZE_MIN = 1
#: ``sizeof(struct lpm_trie_node)`` in 6.18 (two children, flags, prefixlen; measured: value_size max = 4 MiB - 280)
LPM_NODE_SIZE = 24
LPM_VAL_SIZE_MAX = KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX - LPM_NODE_SIZE
LPM_KEY_SIZE_MIN = 4 + LPM_DATA_SIZE_MIN
LPM_KEY_SIZE_MAX = 4 + LPM_DATA_SIZE_MAX
LPM_CREATE_FLAG_MASK = F.BPF_F_NO_PREALLOC | F.BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK


class _Node:
    __slots__ = ("prefixlen", "data", "im", "child", "slot")

    def __init__(self, prefixlen: int, data: bytes, im: bool = False, slot: int = -1) -> None:
        self.prefixlen = prefixlen
        self.data = data
        self.im = im
        self.child: list[_Node | None] = [None, None]
        self.slot = slot


def extract_bit(data: bytes, index: int) -> int:
    """``extract_bit``: bit ``index`` of ``data``, most significant bit of byte 0 first."""
    return (data[index >> 3] >> (7 - (index & 7))) & 1


def _match(node: _Node, prefixlen: int, data: bytes) -> int:
    """``longest_prefix_match``: the leading bits ``node`` and the key share, up to the shorter prefix."""
    limit = min(node.prefixlen, prefixlen)
    nbytes = (limit + 7) >> 3
    a = int.from_bytes(node.data[:nbytes], "big")
    b = int.from_bytes(data[:nbytes], "big")
    diff = a ^ b
    same = nbytes * 8 - diff.bit_length()
    return min(same, limit)


class LpmTrieMap(BpfMap):
    map_types = (T.BPF_MAP_TYPE_LPM_TRIE,)

    @classmethod
    def alloc_check(cls, kernel: Any, attr: Any) -> None:
        """The attribute checks of ``trie_alloc`` (all EINVAL)."""
        if (attr.max_entries == 0 or not attr.map_flags & F.BPF_F_NO_PREALLOC
                or attr.map_flags & ~LPM_CREATE_FLAG_MASK or not flags_access_ok(attr.map_flags)
                or not LPM_KEY_SIZE_MIN <= attr.key_size <= LPM_KEY_SIZE_MAX
                or not 1 <= attr.value_size <= LPM_VAL_SIZE_MAX):
            raise fail(EINVAL, "LPM trie: BPF_F_NO_PREALLOC, key_size 5..260, value_size > 0, max_entries > 0")

    @staticmethod
    def check_btf(btf: Any, key_type_id: int, value_type_id: int) -> None:
        check_struct_key(btf, key_type_id, value_type_id)

    def __init__(self, kernel: Any, attr: Any, **_: Any) -> None:
        type(self).alloc_check(kernel, attr)
        super().__init__(kernel, attr)
        self.data_size = self.key_size - 4
        self.max_prefixlen = self.data_size * 8
        self.root: _Node | None = None
        self.n_entries = 0
        self.values = ValueArena(self, self.value_size)
        try:
            self.charge(MAP_STRUCT_SIZE)
        except BaseException:
            self.release()
            raise

    def free(self) -> None:
        self.root = None
        self.values.close()

    def _split(self, key: bytes) -> tuple[int, bytes]:
        key = bytes(key[:self.key_size]).ljust(self.key_size, b"\0")
        return struct.unpack_from("<I", key)[0], key[4:]

    # -- the trie ---------------------------------------------------------------------------------
    def _lookup(self, key: bytes) -> _Node | None:
        """``trie_lookup_elem``: the node of the longest prefix matching ``key`` (None if none)."""
        prefixlen, data = self._split(key)
        if prefixlen > self.max_prefixlen:
            return None
        found = None
        node = self.root
        while node is not None:
            matchlen = _match(node, prefixlen, data)
            if matchlen == self.max_prefixlen:
                return node
            if matchlen < node.prefixlen:
                break
            if not node.im:
                found = node
            node = node.child[extract_bit(data, node.prefixlen)]
        return found

    def _check_add_elem(self, flags: int) -> int:
        """``trie_check_add_elem``."""
        if flags == U.BPF_EXIST:
            return -ENOENT
        if self.n_entries == self.max_entries:
            return -ENOSPC
        self.n_entries += 1
        return 0

    def _new_node(self, prefixlen: int, data: bytes, value: bytes) -> _Node:
        slot = self.values.alloc()
        self.values.write(slot, bytes(value[:self.value_size]).ljust(self.value_size, b"\0"))
        return _Node(prefixlen, data, slot=slot)

    def _drop(self, node: _Node) -> None:
        if node.slot >= 0:
            self.values.free(node.slot)
            node.slot = -1

    def update(self, key: bytes, value: bytes, flags: int) -> int:
        """``trie_update_elem``: 0 or -errno."""
        if flags > U.BPF_EXIST:
            return -EINVAL
        prefixlen, data = self._split(key)
        if prefixlen > self.max_prefixlen:
            return -EINVAL
        try:
            new = self._new_node(prefixlen, data, value)
        except OSError as e:
            return -(e.errno or 12)
        parent: _Node | None = None
        side = 0
        node = self.root
        matchlen = 0
        while node is not None:
            matchlen = _match(node, prefixlen, data)
            if node.prefixlen != matchlen or node.prefixlen == prefixlen:
                break
            parent, side = node, extract_bit(data, node.prefixlen)
            node = node.child[side]

        def put(n: _Node) -> None:
            if parent is None:
                self.root = n
            else:
                parent.child[side] = n

        if node is None:
            err = self._check_add_elem(flags)
            if err:
                self._drop(new)
                return err
            put(new)
            return 0
        if node.prefixlen == matchlen:  # the same prefix: the new node takes the old one's place
            if not node.im:
                if flags == U.BPF_NOEXIST:
                    self._drop(new)
                    return -EEXIST
            else:
                err = self._check_add_elem(flags)
                if err:
                    self._drop(new)
                    return err
            new.child = node.child
            put(new)
            self._drop(node)
            return 0
        err = self._check_add_elem(flags)
        if err:
            self._drop(new)
            return err
        if matchlen == prefixlen:  # the new prefix covers the node's: insert it as an ancestor
            new.child[extract_bit(node.data, matchlen)] = node
            put(new)
            return 0
        im = _Node(matchlen, node.data, im=True)
        if extract_bit(data, matchlen):
            im.child = [node, new]
        else:
            im.child = [new, node]
        put(im)
        return 0

    def delete(self, key: bytes) -> int:
        """``trie_delete_elem``: 0 or -errno."""
        prefixlen, data = self._split(key)
        if prefixlen > self.max_prefixlen:
            return -EINVAL
        # (holder, side) of the node's slot, and of the parent's slot; holder None is the root
        trim: tuple[_Node | None, int] = (None, 0)
        trim2 = trim
        parent: _Node | None = None
        node = self.root
        matchlen = 0
        while node is not None:
            matchlen = _match(node, prefixlen, data)
            if node.prefixlen != matchlen or node.prefixlen == prefixlen:
                break
            parent, trim2 = node, trim
            side = extract_bit(data, node.prefixlen)
            trim = (node, side)
            node = node.child[side]
        if node is None or node.prefixlen != prefixlen or node.prefixlen != matchlen or node.im:
            return -ENOENT
        self.n_entries -= 1

        def assign(where: tuple[_Node | None, int], n: _Node | None) -> None:
            holder, s = where
            if holder is None:
                self.root = n
            else:
                holder.child[s] = n

        if node.child[0] is not None and node.child[1] is not None:
            node.im = True
            self._drop(node)
            return 0
        if parent is not None and parent.im and node.child[0] is None and node.child[1] is None:
            assign(trim2, parent.child[1] if node is parent.child[0] else parent.child[0])
            self._drop(node)
            return 0
        assign(trim, node.child[0] if node.child[0] is not None else node.child[1])
        self._drop(node)
        return 0

    def next_key(self, key: bytes | None) -> bytes | None:
        """``trie_get_next_key``: the key after ``key`` in postorder, the leftmost for a missing key, None at the end."""
        root = self.root
        if root is None:
            return None
        search_root: _Node | None = root
        found: _Node | None = None
        if key is not None:
            prefixlen, data = self._split(key)
            if prefixlen <= self.max_prefixlen:
                stack: list[_Node] = []
                node: _Node | None = root
                matchlen = 0
                while node is not None:
                    stack.append(node)
                    matchlen = _match(node, prefixlen, data)
                    if node.prefixlen != matchlen or node.prefixlen == prefixlen:
                        break
                    node = node.child[extract_bit(data, node.prefixlen)]
                if node is not None and node.prefixlen == matchlen and not node.im:
                    cur = stack[-1]
                    search_root = None
                    while len(stack) > 1:
                        par = stack[-2]
                        if par.child[0] is cur and par.child[1] is not None:
                            search_root = par.child[1]
                            break
                        if not par.im:
                            found = par
                            break
                        cur = stack.pop(-2)
                    if found is None and search_root is None:
                        return None
        if found is None:
            n: _Node | None = search_root
            while n is not None:
                if n.im:
                    n = n.child[0]
                else:
                    found = n
                    n = n.child[0] if n.child[0] is not None else n.child[1]
        assert found is not None  # an intermediate node always has two children
        return struct.pack("<I", found.prefixlen) + found.data

    # -- program side -------------------------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int = 0) -> int:
        node = self._lookup(key)
        return 0 if node is None else self.values.addr(node.slot)

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        return self.update(key, value, flags)

    def prog_delete(self, key: bytes) -> int:
        return self.delete(key)

    # -- syscall side -------------------------------------------------------------------------------
    def sys_lookup(self, key: bytes | None, flags: int = 0, value: bytes | None = None) -> bytes:
        node = self._lookup(key or b"")
        if node is None:
            raise fail(ENOENT, "no matching prefix")
        return self.values.read(node.slot, self.value_size)

    def sys_update(self, key: bytes | None, value: bytes, flags: int = 0) -> None:
        self.check_sys_write()
        err = self.update(key or b"", value, flags)
        if err:
            raise fail(-err, "LPM trie update")

    def sys_delete(self, key: bytes | None) -> None:
        self.check_sys_write()
        err = self.delete(key or b"")
        if err:
            raise fail(-err, "LPM trie delete")

    def sys_get_next_key(self, key: bytes | None) -> bytes:
        nxt = self.next_key(key)
        if nxt is None:
            raise fail(ENOENT, "no next key")
        return nxt

    def __len__(self) -> int:
        return self.n_entries

