"""Token masks: which vocabulary entries may come next in a DFA state.

A token is allowed in state ``s`` when walking its bytes from ``s`` never hits
the dead state. Python never loops over tokens: the vocabulary is kept as flat
numpy arrays (:class:`TokenArrays`, built once per vocabulary) and all
candidate tokens advance together, one byte position per step, through the
DFA's transition table. Unknown transitions met on the way are derived in a
batch and the step is re-read.

Two filters decide most tokens without a walk:

- *first-byte filter*: tokens are sorted by first byte, so only the slices
  whose first byte is live in ``s`` are considered. In structural states
  (after ``{`` or ``,``) that leaves a few hundred tokens.
- *self-loop fast path*: each token carries the 256-bit set of bytes it
  contains. If every one of them loops on ``s`` (string contents, digits), the
  token ends in ``s`` and is allowed with no walk.

Each state's mask is cached as a packed bitmask (one bit per token id); a
state seen before costs a dictionary lookup.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from structgen.automaton.lazy_dfa import DEAD, UNKNOWN, LazyDFA
from structgen.grammar import utf8

_ARRAYS_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CONTINUATION = (0x80, 0xBF)


class TokenArrays:
    """The vocabulary in numpy form, built once per vocabulary.

    Only *regular* tokens (non-special, at least one byte) are included, sorted
    lexicographically by their bytes; a token's *position* is its index in that
    order and ``ids[position]`` its token id. The tokens form a byte trie whose
    nodes are numbered breadth-first, so the children of a node are contiguous
    ids and the tokens below a node are a contiguous range of positions. Each
    node also knows the set of bytes used anywhere below it, which lets a walk
    accept a whole subtree at once (see :meth:`TokenIndex.allowed_positions`).
    """

    def __init__(self, vocab) -> None:
        token_bytes = vocab.token_bytes
        special = vocab.special_ids
        regular = sorted((b, i) for i, b in enumerate(token_bytes) if b and i not in special)
        blobs = [b for b, _ in regular]
        self.size = len(token_bytes)
        self.ids = np.fromiter((i for _, i in regular), dtype=np.int64, count=len(regular))
        self.lengths = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
        self.offsets = np.zeros(len(blobs), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=self.offsets[1:])
        self.flat = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        self.eos_ids = np.asarray(sorted(vocab.eos_ids), dtype=np.int64)
        # No token walk can move a repeat counter by this much (see LazyDFA.mask_equivalent).
        self.horizon = int(self.lengths.max(initial=0)) + 1
        whole_utf8 = np.fromiter((_is_utf8(b) for b in blobs), dtype=bool, count=len(blobs))
        self._not_utf8_before = np.concatenate([[0], np.cumsum(~whole_utf8)])
        owner = np.repeat(np.arange(len(blobs)), self.lengths)
        bits = np.zeros((len(blobs), 256), dtype=bool)
        bits[owner, self.flat] = True
        self._token_byte_sets = np.packbits(bits, axis=1, bitorder="little").view(np.uint64)
        self._build_trie()
        del self._token_byte_sets

    def _build_trie(self) -> None:
        """Trie nodes are the distinct token prefixes, numbered by (depth,
        lexicographic order). In lexicographic order the prefix of length ``k``
        of token ``i`` is a new node exactly when ``i`` shares fewer than ``k``
        bytes with token ``i-1`` (identical tokens simply get separate chains)."""
        n = len(self.lengths)
        lcp = np.zeros(n, dtype=np.int64)
        if n > 1:
            max_len = int(self.lengths.max())
            padded = np.full((n, max_len + 1), -1, dtype=np.int16)
            padded[np.arange(max_len + 1)[None, :] < self.lengths[:, None]] = self.flat
            lcp[1:] = np.argmax(padded[1:] != padded[:-1], axis=1)
        byte_parts, parent_parts, lo_parts, hi_parts = [np.zeros(1, np.uint8)], [np.full(1, -1, np.int64)], [np.zeros(1, np.int64)], [np.full(1, n, np.int64)]
        aligned_parts = [np.ones(1, bool)]
        prefix_node = np.zeros(n, dtype=np.int64)  # each token's node at the previous depth
        node_term = [np.full(1, -1, np.int64)]
        count, depth, members = 1, 1, np.arange(n)
        while len(members):
            new = lcp[members] < depth
            new[0] = True
            ids = count + np.cumsum(new) - 1
            first_members = members[new]
            starts = np.flatnonzero(new)
            last_members = members[np.append(starts[1:], len(members)) - 1]
            byte_parts.append(self.flat[self.offsets[first_members] + depth - 1])
            parent_parts.append(prefix_node[first_members])
            lo_parts.append(first_members)
            hi_parts.append(last_members + 1)
            # Is the node's prefix a whole number of UTF-8 characters? (the next
            # byte of its first token, if any, must not be a continuation byte)
            longer = self.lengths[first_members] > depth
            next_byte = self.flat[np.minimum(self.offsets[first_members] + depth, len(self.flat) - 1)]
            aligned_parts.append(~longer | (next_byte < _CONTINUATION[0]) | (next_byte > _CONTINUATION[1]))
            term = np.full(len(first_members), -1, dtype=np.int64)
            ends = self.lengths[members] == depth
            term[ids[ends] - count] = members[ends]
            node_term.append(term)
            prefix_node[members] = ids
            count += len(first_members)
            members = members[self.lengths[members] > depth]
            depth += 1
        self.num_nodes = count
        self.node_byte = np.concatenate(byte_parts)
        self.node_term = np.concatenate(node_term)
        self.node_lo = np.concatenate(lo_parts)
        self.node_hi = np.concatenate(hi_parts)
        parent = np.concatenate(parent_parts)
        # Children of node p are the contiguous ids [child_start[p], child_start[p+1]).
        self.child_start = np.searchsorted(parent[1:], np.arange(count + 1)) + 1
        # Bytes used by any token below each node (a superset of the suffix bytes).
        sets = np.vstack([self._token_byte_sets, np.zeros((1, 4), np.uint64)])
        bounds = np.empty(2 * count, dtype=np.int64)
        bounds[0::2], bounds[1::2] = self.node_lo, self.node_hi
        self.subtree_bytes = np.empty((count, 4), dtype=np.uint64)
        # reduceat needs increasing boundaries: do it per depth, where node ranges are disjoint.
        for d_lo, d_hi in _depth_spans(parent):
            b = bounds[2 * d_lo : 2 * d_hi]
            self.subtree_bytes[d_lo:d_hi] = np.bitwise_or.reduceat(sets, b, axis=0)[0::2]
        # Whole-UTF-8 subtree: every token below is valid UTF-8 and the node ends on a character boundary.
        no_bad = self._not_utf8_before[self.node_hi] == self._not_utf8_before[self.node_lo]
        self.subtree_utf8 = no_bad & np.concatenate(aligned_parts)

    @classmethod
    def of(cls, vocab) -> "TokenArrays":
        arrays = _ARRAYS_CACHE.get(vocab)
        if arrays is None:
            arrays = _ARRAYS_CACHE[vocab] = cls(vocab)
        return arrays


def _depth_spans(parent: np.ndarray):
    """(first, end) node ids of each depth level (root is its own level).
    Parents of a level all lie in the level before, so the next level starts at
    the first node whose parent is at or past this level's first node."""
    spans = [(0, 1)]
    lo = 1
    while lo < len(parent):
        hi = max(int(np.searchsorted(parent, lo, side="left")), lo + 1)
        spans.append((lo, hi))
        lo = hi
    return spans


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class TokenIndex:
    """Computes and caches the packed allowed-token mask of each DFA state."""

    def __init__(self, dfa: LazyDFA, vocab) -> None:
        self.dfa = dfa
        self.vocab = vocab
        self.arrays = TokenArrays.of(vocab)
        self._masks: dict[int, np.ndarray] = {}
        self._loops: dict[int, tuple[np.ndarray, bool]] = {}
        self._lock = threading.Lock()

    def packed_mask(self, state: int) -> np.ndarray:
        """The mask of ``state``: ``np.uint8`` bits, little bit order, bit ``i``
        set when token id ``i`` is allowed (EOS ids exactly when accepting)."""
        mask = self._masks.get(state)
        if mask is None:
            with self._lock:
                mask = self._masks.get(state)
                if mask is None:
                    same = self.dfa.mask_equivalent(state, self.arrays.horizon)
                    mask = self._masks.get(same)
                    if mask is None:
                        mask = self._masks[same] = self._compute(same)
                    self._masks[state] = mask
        return mask

    @property
    def cached_states(self) -> int:
        return len(self._masks)

    def allowed_positions(self, state: int) -> np.ndarray:
        """Positions (in :class:`TokenArrays` order) of the regular tokens allowed in ``state``.

        Walks the token trie breadth-first, all nodes of a level in one array
        step; a dead prefix prunes everything below it. The *self-loop
        shortcut*: when a node is in a state ``t`` that loops on every byte used
        below the node, every token below it stays in ``t`` and is allowed
        without descending. That decides string contents and digit runs for
        the bulk of the vocabulary in a few steps.
        """
        a = self.arrays
        dfa = self.dfa
        row = dfa.complete_row(state)
        nodes = np.arange(a.child_start[0], a.child_start[1])
        cur = row[a.node_byte[nodes]].astype(np.int64)
        parent_state = np.full(len(nodes), state, dtype=np.int64)
        walked: list[np.ndarray] = []
        accepted: list[np.ndarray] = []
        while len(nodes):
            keep = cur != DEAD
            nodes, cur, parent_state = nodes[keep], cur[keep], parent_state[keep]
            looping = (cur == parent_state) | (cur == state)
            if looping.any():
                whole = self._subtree_loops(nodes, cur, looping)
                if whole.any():
                    accepted.append(nodes[whole])
                    nodes, cur = nodes[~whole], cur[~whole]
            walked.append(nodes)
            starts = a.child_start[nodes]
            counts = a.child_start[nodes + 1] - starts
            total = int(counts.sum())
            if total == 0:
                break
            children = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
            parent_state = np.repeat(cur, counts)
            cur = _lookup(dfa, parent_state, a.node_byte[children].astype(np.int64))
            nodes = children
        terms = a.node_term[np.concatenate(walked)] if walked else np.zeros(0, np.int64)
        parts = [terms[terms >= 0]]
        if accepted:
            acc = np.concatenate(accepted)
            parts.append(_ranges(a.node_lo[acc], a.node_hi[acc]))
        return np.concatenate(parts)

    def _subtree_loops(self, nodes: np.ndarray, cur: np.ndarray, looping: np.ndarray) -> np.ndarray:
        """For each node: does its state loop on every byte below it?"""
        a = self.arrays
        result = np.zeros(len(nodes), dtype=bool)
        idx = np.flatnonzero(looping)
        states = cur[idx]
        for t in np.unique(states).tolist():
            outside, utf8_loops = self._loop_bytes(t)
            sel = idx[states == t]
            ok = ~(a.subtree_bytes[nodes[sel]] & outside).any(axis=1)
            if utf8_loops:
                ok &= a.subtree_utf8[nodes[sel]]
            result[sel] = ok
        return result

    def _loop_bytes(self, state: int) -> tuple[np.ndarray, bool]:
        """The bytes that do NOT loop on ``state`` (as 4 words), and whether the
        high bytes count as looping because every well-formed multi-byte UTF-8
        character leads from ``state`` back to it."""
        cached = self._loops.get(state)
        if cached is None:
            loops = self.dfa.complete_row(state) == state
            utf8_loops = not loops[0x80:].any() and self._utf8_loops(state)
            if utf8_loops:
                loops = loops.copy()
                loops[0x80:] = True
            outside = ~np.packbits(loops, bitorder="little").view(np.uint64)
            cached = self._loops[state] = (outside, utf8_loops)
        return cached

    def _utf8_loops(self, state: int) -> bool:
        dfa = self.dfa
        for byte_seq in _UTF8_MULTIBYTE:
            frontier = {state}
            for lo, hi in byte_seq:
                nxt: set[int] = set()
                for s in frontier:
                    reached = dfa.complete_row(s)[lo : hi + 1]
                    if (reached == DEAD).any():
                        return False
                    nxt.update(np.unique(reached).tolist())
                frontier = nxt
                if len(frontier) > 8:
                    return False
            if frontier != {state}:
                return False
        return True

    def _compute(self, state: int) -> np.ndarray:
        allowed = np.zeros(self.arrays.size, dtype=bool)
        allowed[self.arrays.ids[self.allowed_positions(state)]] = True
        if self.dfa.is_accepting(state):
            allowed[self.arrays.eos_ids] = True
        return np.packbits(allowed, bitorder="little")


def _lookup(dfa: LazyDFA, states: np.ndarray, byts: np.ndarray) -> np.ndarray:
    """``table[states, byts]``, deriving unknown transitions first."""
    nxt = dfa.table[states, byts]
    unknown = nxt == UNKNOWN
    if unknown.any():
        dfa.fill_pairs(states[unknown], byts[unknown])
        nxt = dfa.table[states, byts]
    return nxt.astype(np.int64)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenate the integer ranges ``[lo[i], hi[i])``."""
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)


_UTF8_MULTIBYTE = utf8.encode_ranges(utf8.remove_surrogates([(0x80, utf8.MAX_CODE_POINT)]))


class TokenSpeller:
    """Spells a byte string with vocabulary tokens, greedily longest first.

    Used for jump-forward decoding. The result is a valid spelling of the
    bytes, not necessarily the tokenizer's canonical one; a final token that is
    a proper prefix of a longer token is dropped, since the model might prefer
    to continue past the forced bytes with that longer token.
    """

    _CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def __init__(self, vocab) -> None:
        self._id_of: dict[bytes, int] = {}
        for i, b in enumerate(vocab.token_bytes):
            if b and i not in vocab.special_ids:
                self._id_of.setdefault(b, i)
        self._max_len = max((len(b) for b in self._id_of), default=0)
        self._prefixes = {b[:k] for b in self._id_of for k in range(1, len(b))}

    @classmethod
    def of(cls, vocab) -> "TokenSpeller":
        speller = cls._CACHE.get(vocab)
        if speller is None:
            speller = cls._CACHE[vocab] = cls(vocab)
        return speller

    def greedy_tokens(self, data: bytes) -> list[int]:
        out: list[int] = []
        pos = 0
        while pos < len(data):
            for end in range(min(len(data), pos + self._max_len), pos, -1):
                tok = self._id_of.get(data[pos:end])
                if tok is not None:
                    out.append(tok)
                    last_piece = data[pos:end]
                    pos = end
                    break
            else:
                return out  # a byte no token spells: stop before it
        if out and last_piece in self._prefixes:
            out.pop()
        return out
