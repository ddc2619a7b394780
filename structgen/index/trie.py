"""The byte trie a mask walks, in flat numpy arrays.

The strings (tokens, or the token suffixes of :mod:`structgen.index.loop_skip`)
are sorted lexicographically; a string's *position* is its index in that
order, so the strings below any node are the contiguous positions
``[lo, hi)``, and the ``ending`` strings that end at the node (equal strings
share their nodes) are the first of them. Nodes are numbered breadth-first: the children of a node are
the consecutive ids ``first_child .. first_child + n_children``, in byte
order, and the top nodes are ``0 .. n_top``.

Why breadth-first: a walk spends its time deciding the children of the nodes
it enters (dead, allowed whole, or entered), and with siblings adjacent those
decisions read memory in order, so the processor fetches ahead. In preorder
(a node, then its subtrees) siblings lie a subtree apart and each decision
waits for the last one's memory read; the same walks took twice as long.

Per node the trie also keeps what lets a walk settle a whole subtree at once:
the bytes used below it, the longest string below it, and whether every
string below is whole UTF-8 and the node ends on a character boundary. Per
string it keeps its bytes (``flat`` from ``offsets``) and how much of it is
whole UTF-8.
"""

from __future__ import annotations

import threading

import numpy as np

from structgen.index.kernels import preorder_trie, subtree_facts, utf8_prefixes

_CONTINUATION = (0x80, 0xBF)


class ByteTrie:
    """The trie of ``strings`` (sorted, non-empty byte strings)."""

    def __init__(self, strings: list[bytes]) -> None:
        n = len(strings)
        self.size = n
        self.lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=n)
        self.offsets = np.zeros(n, dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=self.offsets[1:])
        self.flat = np.frombuffer(b"".join(strings), dtype=np.uint8)
        self.max_len = int(self.lengths.max(initial=0))
        # Per string: its longest prefix of whole UTF-8 characters, and whether
        # the rest is a character cut off by the end of the string.
        self.utf8_prefix, self.utf8_cut_off = utf8_prefixes(self.flat, self.offsets, self.lengths)
        parent, depth = self._build_nodes()
        self._gather_facts(parent, depth)
        self._buffers = threading.local()

    def _build_nodes(self):
        """The node arrays, numbered breadth first; returns each node's
        parent and depth, which only the facts need."""
        n, lengths, flat = self.size, self.lengths, self.flat
        lcp = np.zeros(n, dtype=np.int64)
        if n > 1:
            padded = np.full((n, self.max_len + 1), -1, dtype=np.int16)
            padded[np.arange(self.max_len + 1)[None, :] < lengths[:, None]] = flat
            differ = padded[1:] != padded[:-1]
            lcp[1:] = np.where(differ.any(axis=1), np.argmax(differ, axis=1), lengths[1:])
        byte, depth, end, parent, lo, ending = preorder_trie(lengths, lcp, self.offsets, flat)
        # Breadth-first ids: by depth, and within a depth in preorder, which
        # keeps siblings together (no node of another parent lies between them).
        order = np.argsort(depth, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        self.num_nodes = len(order)
        self.node_byte = byte[order]
        self.node_lo = lo[order]
        self.node_hi = lo[end[order]]
        self.node_ending = ending[order]
        pre_parent = parent[order]
        parent = np.where(pre_parent >= 0, rank[np.maximum(pre_parent, 0)], -1).astype(np.int32)
        self.n_children = np.bincount(parent[parent >= 0], minlength=self.num_nodes).astype(np.int32)
        # In preorder a node's first child directly follows it.
        after = rank[np.minimum(order + 1, max(self.num_nodes - 1, 0))]
        self.first_child = np.where(self.n_children > 0, after, 0).astype(np.int32)
        depth = depth[order]
        self.n_top = int((depth == 1).sum())
        return parent, depth

    def _gather_facts(self, parent: np.ndarray, depth: np.ndarray) -> None:
        """Per string the bytes it uses (and how many strings use each byte);
        per node what a walk needs to settle its subtree at once."""
        n, flat, offsets = self.size, self.flat, self.offsets
        owner = np.repeat(np.arange(n), self.lengths)
        bits = np.zeros((n, 256), dtype=bool)
        bits[owner, flat] = True
        self.strings_with_byte = bits.sum(axis=0)
        string_bytes = np.packbits(bits, axis=1, bitorder="little").view(np.uint64)
        self.subtree_bytes, self.subtree_maxlen = subtree_facts(parent, self.node_lo, self.node_ending, self.lengths, string_bytes)
        # The string the node was made for is its first; the byte after the
        # node's prefix in it must not be a continuation byte.
        first = self.node_lo
        longer = self.lengths[first] > depth
        next_byte = flat[np.minimum(offsets[first] + depth, len(flat) - 1)] if n else np.zeros(0, np.uint8)
        aligned = ~longer | (next_byte < _CONTINUATION[0]) | (next_byte > _CONTINUATION[1])
        not_utf8_before = np.concatenate([[0], np.cumsum(self.utf8_prefix != self.lengths)])
        self.subtree_utf8 = aligned & (not_utf8_before[self.node_hi] == not_utf8_before[first])

    def buffers(self) -> "WalkBuffers":
        """This thread's work arrays for walks of this trie."""
        buf = getattr(self._buffers, "walk", None)
        if buf is None:
            buf = self._buffers.walk = WalkBuffers(self.num_nodes, self.max_len)
        return buf


class WalkBuffers:
    """Room for one trie walk: every node is on the work list, set aside or
    in a result range at most once per call, so ``num_nodes`` entries are
    always enough; the walk's stack has a level per string byte."""

    def __init__(self, num_nodes: int, max_len: int) -> None:
        self.levels = tuple(np.empty(max_len + 1, np.int64) for _ in range(3))
        self.work = (np.empty(max(num_nodes, 1), np.int32), np.empty(max(num_nodes, 1), np.int64))
        self.deferred = (np.empty(max(num_nodes, 1), np.int32), np.empty(max(num_nodes, 1), np.int64))
        self.allowed = np.empty((max(num_nodes, 1), 2), np.int32)
        self.rejected = np.empty((max(num_nodes, 1), 2), np.int32)
