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
from typing import NamedTuple

import numpy as np

from structgen.automaton.lazy_dfa import DEAD, UNKNOWN, LazyDFA
from structgen.grammar import utf8

_ARRAYS_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CONTINUATION = (0x80, 0xBF)
# Below this many tokens a looping trie node is settled token by token.
_SMALL_SUBTREE = 64
# A state reached by this many nodes of one trie level gets its full
# transition row computed, so the whole-subtree shortcut can settle them.
_SHARED_STATE = 8
# Levels with fewer nodes are not searched for shared states: small levels
# settle quickly anyway, and the search costs more than it saves there.
_SHARED_LEVEL = 64
# Above this many breakers the inverted route costs more than the trie walk.
_MAX_BREAKERS = 30_000
# Distinct loop signatures whose breaker plans are kept per vocabulary.
_MAX_PLANS = 256


class BreakerPlan(NamedTuple):
    """Precomputed breaker route for one loop signature: ``allowed`` marks the
    token ids allowed whatever the state (tokens that never leave the loop);
    breaker ``tokens`` must still be walked from flat byte ``start`` (their
    first non-looping byte) up to ``end``."""

    allowed: np.ndarray
    tokens: np.ndarray
    start: np.ndarray
    end: np.ndarray


class TokenArrays:
    """The vocabulary in numpy form, built once per vocabulary.

    Only *regular* tokens (non-special, at least one byte) are included, sorted
    lexicographically by their bytes; a token's *position* is its index in that
    order and ``ids[position]`` its token id. The tokens form a byte trie whose
    nodes are numbered breadth-first, so the children of a node are contiguous
    ids and the tokens below a node are a contiguous range of positions. Each
    node also knows the set of bytes used anywhere below it, which lets a walk
    accept a whole subtree at once (see :meth:`TokenIndex.allowed_ids`).
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
        # id -> position; special tokens point one past the end (never allowed).
        self.position_of_id = np.full(self.size, len(regular), dtype=np.int64)
        self.position_of_id[self.ids] = np.arange(len(regular))
        # No token walk can move a repeat counter by this much (see LazyDFA.mask_equivalent).
        self.horizon = int(self.lengths.max(initial=0)) + 1
        # Length tiers (see TokenIndex._tiered): tier i holds the tokens shorter
        # than tiers[i] and at least tiers[i-1] bytes long, as a packed id mask.
        self.tiers = [h for h in _LENGTH_TIERS if h < self.horizon] + [self.horizon]
        self.tier_masks = []
        self.tier_positions = []
        shorter = 0
        for h in self.tiers:
            positions = np.flatnonzero((self.lengths >= shorter) & (self.lengths < h))
            in_tier = np.zeros(self.size, dtype=bool)
            in_tier[self.ids[positions]] = True
            self.tier_masks.append(np.packbits(in_tier, bitorder="little"))
            self.tier_positions.append(positions)
            shorter = h
        self.whole_utf8 = np.fromiter((_is_utf8(b) for b in blobs), dtype=bool, count=len(blobs))
        self._not_utf8_before = np.concatenate([[0], np.cumsum(~self.whole_utf8)])
        owner = np.repeat(np.arange(len(blobs)), self.lengths)
        bits = np.zeros((len(blobs), 256), dtype=bool)
        bits[owner, self.flat] = True
        self._token_byte_sets = np.packbits(bits, axis=1, bitorder="little").view(np.uint64)
        # Inverted index: positions of the tokens containing byte b are
        # with_byte[with_byte_start[b]:with_byte_start[b+1]].
        byte_of, self.with_byte = np.nonzero(bits.T)
        self.with_byte_start = np.searchsorted(byte_of, np.arange(257))
        self.not_utf8 = np.flatnonzero(~self.whole_utf8)
        self._plans: dict[tuple, BreakerPlan | None] = {}
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
        self.node_aligned = np.concatenate(aligned_parts)
        self.subtree_utf8 = no_bad & self.node_aligned

    def breaker_plan(self, outside: np.ndarray, utf8_loops: bool, loop_bytes: np.ndarray) -> "BreakerPlan | None":
        """What the breaker route needs for a loop signature (see
        :meth:`TokenIndex.allowed_ids`): it depends only on which bytes
        loop, so every state with the same signature (string contents followed
        by different continuations) shares one plan. ``None`` when there are
        too many breakers for the route to pay off."""
        key = (outside.tobytes(), utf8_loops, loop_bytes.tobytes())
        if key in self._plans:
            return self._plans[key]
        plan = self._make_plan(outside, utf8_loops, loop_bytes)
        if len(self._plans) < _MAX_PLANS:
            self._plans[key] = plan
        return plan

    def _make_plan(self, outside: np.ndarray, utf8_loops: bool, loop_bytes: np.ndarray) -> "BreakerPlan | None":
        out_bytes = np.flatnonzero(np.unpackbits(outside.view(np.uint8), bitorder="little"))
        counts = self.with_byte_start[out_bytes + 1] - self.with_byte_start[out_bytes]
        if int(counts.sum()) + (len(self.not_utf8) if utf8_loops else 0) > _MAX_BREAKERS:
            return None
        breaker = np.zeros(len(self.ids), dtype=bool)
        breaker[self.with_byte[_ranges(self.with_byte_start[out_bytes], self.with_byte_start[out_bytes + 1])]] = True
        if utf8_loops:
            breaker[self.not_utf8] = True
        tokens = np.flatnonzero(breaker)
        # First non-looping byte of each breaker, over their concatenated bytes;
        # high bytes loop inside tokens of whole UTF-8 characters when utf8_loops.
        lengths, starts = self.lengths[tokens], self.offsets[tokens]
        where = _ranges(starts, starts + lengths)
        byts = self.flat[where]
        breaks = ~loop_bytes[byts]
        if utf8_loops:
            breaks &= ~((byts >= 0x80) & np.repeat(self.whole_utf8[tokens], lengths))
        big = len(where)
        first = np.minimum.reduceat(np.where(breaks, np.arange(big), big), np.cumsum(lengths) - lengths) if big else np.zeros(0, np.int64)
        never_breaks = first == big
        breaker[tokens[never_breaks]] = False
        allowed = np.append(~breaker, False)[self.position_of_id]
        walk = ~never_breaks
        return BreakerPlan(allowed, tokens[walk], where[first[walk]], (starts + lengths)[walk])

    @classmethod
    def of(cls, vocab) -> "TokenArrays":
        arrays = _ARRAYS_CACHE.get(vocab)
        if arrays is None:
            arrays = _ARRAYS_CACHE[vocab] = cls(vocab)
        return arrays


_LENGTH_TIERS = (8, 16, 32, 64)
_TIER_WALK_LIMIT = 4096  # most tokens a tiered mask walks one by one
_SORTED_WALKS = 256  # token walks left when _walk_to stops dropping finished ones each step
_SCALAR_WALKS = 8  # token walks finished one at a time instead of as arrays


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
        self._loops: dict[int, tuple[np.ndarray, bool, np.ndarray]] = {}
        self._clamped_seen: dict[int, int] = {}  # see _tiered
        self._lock = threading.RLock()  # _tiered asks for the masks of clamped states

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
                        mask = self._masks[same] = self._tiered(same)
                    self._masks[state] = mask
        return mask

    def _tiered(self, state: int) -> np.ndarray:
        """The mask of ``state``, from the masks of its clamped states where
        counters matter (:meth:`LazyDFA.mask_equivalent`).

        A token shorter than ``h`` bytes moves a counter by less than ``h``, so
        it is allowed in ``state`` exactly when it is allowed in the state
        clamped to ``h``. Inside a string with ``maxLength: 255``, 200
        characters in, every position is a new state and a full mask costs a
        trie walk with fresh derivatives (20 ms and more); by length tier, the
        short tokens (nearly all) share the masks of clamped states, and only
        the tokens too long for any tier that differs from ``state`` are
        walked, directly from ``state``.

        That pays only when the clamped masks are used again, as at successive
        positions of one string. A counter further on (a later property's
        ``maxLength``) also makes clamped states differ, but each of them once:
        tiers are used from the second state that clamps to the same state."""
        a = self.arrays
        smallest = self.dfa.mask_equivalent(state, a.tiers[0])
        if smallest == state:  # no counter matters to a token of any length
            return self._compute(state)
        seen = self._clamped_seen[smallest] = self._clamped_seen.get(smallest, 0) + 1
        if seen < 2:
            return self._compute(state)
        clamped = [smallest]
        for h in a.tiers[1:-1]:
            same = self.dfa.mask_equivalent(state, h)
            if same == state:
                break
            clamped.append(same)
        differ = len(clamped)
        rest = np.concatenate(a.tier_positions[differ:])
        if len(rest) > _TIER_WALK_LIMIT:  # near the bound: walking them all costs more than a mask
            return self._compute(state)
        mask = np.zeros_like(a.tier_masks[0])
        for tier in range(differ):
            mask |= self.packed_mask(clamped[tier]) & a.tier_masks[tier]
        alive = self._walk_rest(np.full(len(rest), state, dtype=np.int64), a.offsets[rest], a.offsets[rest] + a.lengths[rest])
        allowed = np.zeros(a.size, dtype=bool)
        allowed[a.ids[rest[alive]]] = True
        mask |= self._pack(state, allowed)
        return mask

    @property
    def cached_states(self) -> int:
        return len(self._masks)

    def allowed_ids(self, state: int) -> np.ndarray:
        """Boolean array over token ids: which regular tokens are allowed in
        ``state`` (EOS not included). Two routes:

        - *breakers*, for states that loop on almost every byte (string
          contents): every token is allowed except those containing a byte that
          does not loop, and those are walked from their first such byte (see
          :meth:`TokenArrays.breaker_plan`);
        - the *trie walk* (:meth:`allowed_positions`) otherwise.
        """
        a = self.arrays
        if state == DEAD:
            return np.zeros(a.size, dtype=bool)
        plan = self._plan(state)
        if plan is not None:
            return self._breaker_allowed(state, plan)
        return np.append(self.allowed_positions(state), False)[a.position_of_id]

    def _plan(self, state: int) -> "BreakerPlan | None":
        outside, utf8_loops, loop_bytes = self._loop_bytes(state)
        return self.arrays.breaker_plan(outside, utf8_loops, loop_bytes)

    def _breaker_allowed(self, state: int, plan: BreakerPlan) -> np.ndarray:
        """Boolean array over token ids, by the breaker route."""
        a = self.arrays
        allowed = plan.allowed.copy()
        alive = self._walk_rest(np.full(len(plan.tokens), state, dtype=np.int64), plan.start, plan.end)
        allowed[a.ids[plan.tokens[alive]]] = True
        return allowed

    def allowed_positions(self, state: int) -> np.ndarray:
        """Boolean array over :class:`TokenArrays` positions: which regular
        tokens are allowed in ``state``, by walking the trie.

        Walks the token trie breadth-first, all nodes of a level in one array
        step; a dead prefix prunes everything below it. Nodes whose state ``t``
        probably loops (the node's byte led back to its parent's state, or to
        ``state``, or many nodes of the level reached ``t``: the first byte of
        a string's contents) are settled without descending where possible:

        - *whole-subtree shortcut*: ``t`` loops on every byte used below the
          node, so every token below stays in ``t`` and is allowed. That settles
          string contents and digit runs for the bulk of the vocabulary in a
          few steps.
        - *small subtree*: if few tokens lie below, they are walked directly,
          all together. This ends long chains such as runs of ``=`` that end in
          a newline, which would cost one trie level per byte, and needs no
          full transition row of ``t``.
        """
        a = self.arrays
        dfa = self.dfa
        allowed = _RangeMarks(len(a.ids))
        row = dfa.complete_row(state)
        nodes = np.arange(a.child_start[0], a.child_start[1])
        cur = row[a.node_byte[nodes]].astype(np.int64)
        parent_state = np.full(len(nodes), state, dtype=np.int64)
        breakers: dict[int, np.ndarray | None] = {}
        depth = 1
        while len(nodes):
            keep = cur != DEAD
            nodes, cur, parent_state = nodes[keep], cur[keep], parent_state[keep]
            shared = _shared_states(cur)
            left = self._enter_strings(nodes, cur, shared, depth, allowed, breakers)
            if not left.all():
                nodes, cur, parent_state = nodes[left], cur[left], parent_state[left]
            looping = (cur == parent_state) | (cur == state)
            if len(shared):
                looping |= np.isin(cur, shared)
            if looping.any():
                settled = self._settle_looping(nodes, cur, looping, depth, allowed)
                nodes, cur = nodes[~settled], cur[~settled]
            terms = a.node_term[nodes]
            allowed.tokens(terms[terms >= 0])
            starts = a.child_start[nodes]
            counts = a.child_start[nodes + 1] - starts
            total = int(counts.sum())
            if total == 0:
                break
            children = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total)
            parent_state = np.repeat(cur, counts)
            cur = _lookup(dfa, parent_state, a.node_byte[children].astype(np.int64))
            nodes = children
            depth += 1
        return allowed.result()

    def _enter_strings(self, nodes, cur, shared, depth: int, allowed: "_RangeMarks", breakers: dict) -> np.ndarray:
        """Settle the nodes of a trie level that lie inside string contents;
        returns which nodes are left to walk.

        ``t`` is one of the ``shared`` states (many nodes of the level reached
        it) that has a breaker plan (the contents of a free-form key or
        value). Where the node's prefix also leads from ``t`` to the node's
        state (the prefix loops on ``t``, or starts a UTF-8 character the same
        way), walking a token from the mask's state equals walking it whole
        from ``t``: the breaker route of ``t`` (cached as ``t``'s mask)
        answers for all those nodes at once."""
        a = self.arrays
        left = np.ones(len(nodes), dtype=bool)
        for t in shared.tolist():
            if t not in breakers:
                allowed_from_t = self._string_mask(t)
                breakers[t] = None if allowed_from_t is None else allowed_from_t[a.ids]
            by_position = breakers[t]
            if by_position is None:
                continue
            idx = np.flatnonzero(cur == t)
            starts = a.offsets[a.node_lo[nodes[idx]]]
            same = self._walk_to(np.full(len(idx), t, dtype=np.int64), starts, starts + depth) == t
            sel = nodes[idx[same]]
            allowed.copy_ranges(a.node_lo[sel], a.node_hi[sel], by_position)
            left[idx[same]] = False
        return left

    def _settle_looping(self, nodes, cur, looping, depth: int, allowed: "_RangeMarks") -> np.ndarray:
        """Settle what the looping shortcuts can (see :meth:`allowed_positions`);
        mark the allowed tokens in ``allowed`` and return which nodes need no
        further walking.

        A state shared by many nodes is worth its full transition row: the
        whole-subtree test then settles them in one step. A node that test
        leaves open is walked token by token if its subtree is small."""
        a = self.arrays
        settled = np.zeros(len(nodes), dtype=bool)
        idx = np.flatnonzero(looping)
        shared, counts = np.unique(cur[idx], return_counts=True)
        self._settle_whole(nodes, cur, idx, shared[counts >= _SHARED_STATE], settled, allowed)
        idx = idx[~settled[idx]]
        lo, hi = a.node_lo[nodes[idx]], a.node_hi[nodes[idx]]
        small = hi - lo <= _SMALL_SUBTREE
        if small.any():
            # Walk the few tokens below directly. That needs no loop information,
            # so no full transition row is derived for these states.
            tokens = _ranges(lo[small], hi[small])
            starts = a.offsets[tokens] + depth
            alive = self._walk_rest(np.repeat(cur[idx[small]], (hi - lo)[small]), starts, a.offsets[tokens] + a.lengths[tokens])
            allowed.tokens(tokens[alive])
            settled[idx[small]] = True
            idx = idx[~small]
        self._settle_whole(nodes, cur, idx, np.unique(cur[idx]), settled, allowed)
        return settled

    def _settle_whole(self, nodes, cur, idx, states, settled, allowed: "_RangeMarks") -> None:
        """Whole-subtree shortcut for the nodes ``idx`` whose state is one of
        ``states``: allowed (and settled) when the state loops on every byte
        used below the node."""
        a = self.arrays
        for t in states.tolist():
            outside, utf8_loops, _ = self._loop_bytes(t)
            sel = idx[cur[idx] == t]
            below = nodes[sel]
            whole = ~(a.subtree_bytes[below] & outside).any(axis=1)
            if utf8_loops:
                whole &= a.subtree_utf8[below]
            allowed.ranges(a.node_lo[below[whole]], a.node_hi[below[whole]])
            settled[sel[whole]] = True

    def _walk_rest(self, cur: np.ndarray, pos: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Walk the flat bytes ``[pos[i], end[i])`` from state ``cur[i]`` for
        all ``i`` together; which stay alive?"""
        return self._walk_to(cur, pos, end) != DEAD

    def _walk_to(self, cur: np.ndarray, pos: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The states after walking the flat bytes ``[pos[i], end[i])`` from
        ``cur[i]``, all together, one byte position per step (``DEAD`` where
        a walk dies).

        While many walks are going, each step drops the finished and dead
        ones. Once few are left, they are sorted longest first, so the ones
        still going after ``k`` bytes are a prefix of the arrays and a step is
        a few slice operations (a dead walk just stays ``DEAD``: the dead row
        of the table is complete); the last few long ones are finished with
        scalar lookups."""
        flat = self.arrays.flat
        out = cur.copy()
        idx = np.flatnonzero(pos < end)
        cur, pos, end = cur[idx], pos[idx], end[idx]
        while len(idx) > _SORTED_WALKS:
            cur = _lookup(self.dfa, cur, flat[pos].astype(np.int64))
            pos = pos + 1
            done = (cur == DEAD) | (pos == end)
            out[idx[done]] = cur[done]
            go = ~done
            idx, cur, pos, end = idx[go], cur[go], pos[go], end[go]
        order = np.argsort(pos - end, kind="stable")  # longest first
        idx, cur, pos, neg_len = idx[order], cur[order], pos[order], (pos - end)[order]
        k = 0
        while True:
            n = int(np.searchsorted(neg_len, -k, side="left"))  # walks with more than k bytes to go
            if n <= _SCALAR_WALKS:
                break
            cur[:n] = _lookup(self.dfa, cur[:n], flat[pos[:n] + k].astype(np.int64))
            k += 1
        out[idx[n:]] = cur[n:]
        walk = self.dfa.walk
        for i, s, start, nl in zip(idx[:n].tolist(), cur[:n].tolist(), pos[:n].tolist(), neg_len[:n].tolist()):
            out[i] = walk(s, flat[start + k : start - nl].tobytes())
        return out

    def _loop_bytes(self, state: int) -> tuple[np.ndarray, bool, np.ndarray]:
        """What loops on ``state``: the bytes that do NOT loop, as 4 words
        (high bytes counted as looping when every well-formed multi-byte UTF-8
        character leads back to ``state``), whether that UTF-8 rule applied,
        and the plain per-byte loop flags."""
        cached = self._loops.get(state)
        if cached is None:
            loop_bytes = self.dfa.complete_row(state) == state
            loops = loop_bytes
            utf8_loops = not loop_bytes[0x80:].any() and self._utf8_loops(state)
            if utf8_loops:
                loops = loop_bytes.copy()
                loops[0x80:] = True
            outside = ~np.packbits(loops, bitorder="little").view(np.uint64)
            cached = self._loops[state] = (outside, utf8_loops, loop_bytes)
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

    def _string_mask(self, t: int) -> np.ndarray | None:
        """Allowed token ids of ``t`` if they are cached or ``t`` has a
        breaker plan (``None`` otherwise). Computed masks are cached, so the
        next mask that enters the same string contents reuses them."""
        packed = self._masks.get(t)
        if packed is None:
            plan = self._plan(t)
            if plan is None:
                return None
            allowed = self._breaker_allowed(t, plan)
            self._masks[t] = self._pack(t, allowed)
            return allowed
        return np.unpackbits(packed, count=self.arrays.size, bitorder="little").view(bool)

    def _compute(self, state: int) -> np.ndarray:
        return self._pack(state, self.allowed_ids(state))

    def _pack(self, state: int, allowed: np.ndarray) -> np.ndarray:
        """The cached form of a mask: EOS added exactly in accepting states."""
        if self.dfa.is_accepting(state):
            allowed = allowed.copy()
            allowed[self.arrays.eos_ids] = True
        return np.packbits(allowed, bitorder="little")


class _RangeMarks:
    """Allowed positions collected as single tokens and disjoint ranges
    (subtrees of distinct trie nodes never overlap)."""

    def __init__(self, n: int) -> None:
        self._single = np.zeros(n, dtype=bool)
        self._lo: list[np.ndarray] = []
        self._hi: list[np.ndarray] = []

    def tokens(self, positions: np.ndarray) -> None:
        self._single[positions] = True

    def ranges(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self._lo.append(lo)
        self._hi.append(hi)

    def copy_ranges(self, lo: np.ndarray, hi: np.ndarray, source: np.ndarray) -> None:
        """Within the ranges, take the positions ``source`` allows."""
        self._single |= _cover(lo, hi, len(self._single)) & source

    def result(self) -> np.ndarray:
        if not self._lo:
            return self._single
        return _cover(np.concatenate(self._lo), np.concatenate(self._hi), len(self._single)) | self._single


def _cover(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """Boolean array of length ``n``, true inside the disjoint ranges
    ``[lo[i], hi[i])``: alternating false/true runs written by ``np.repeat``
    (a prefix sum over the whole vocabulary is many times slower)."""
    order = np.argsort(lo, kind="stable")
    bounds = np.empty(2 * len(lo) + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, n
    bounds[1:-1:2], bounds[2:-1:2] = lo[order], hi[order]
    runs = np.zeros(len(bounds) - 1, dtype=bool)
    runs[1::2] = True
    return np.repeat(runs, np.diff(bounds))


def _shared_states(cur: np.ndarray) -> np.ndarray:
    """The live states reached by at least ``_SHARED_STATE`` nodes of a trie
    level (none on levels under ``_SHARED_LEVEL`` nodes)."""
    if len(cur) < _SHARED_LEVEL:
        return cur[:0]
    states, counts = np.unique(cur, return_counts=True)
    return states[(counts >= _SHARED_STATE) & (states != DEAD)]


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
