"""Token masks: which vocabulary entries may come next in a DFA state.

A token is allowed in state ``s`` when walking its bytes from ``s`` never hits
the dead state. The vocabulary is kept as a byte trie in flat numpy arrays
(:class:`TokenArrays`, built once per vocabulary), and a mask is one walk of
that trie through the DFA's transition table, in compiled code
(:mod:`structgen.index.kernels`):

- a dead prefix prunes its whole subtree, so in structural states (after
  ``{`` or ``,``) only a few hundred nodes are visited;
- a subtree is allowed at once when its node's state loops on every byte used
  below it (string contents, digit runs), so inside a string only the
  subtrees holding ``"``, ``\\``, control bytes or partial UTF-8 characters are
  walked.

Transitions missing from the lazily built table, and the loop bytes of a
state, are derived during the walk by the DFA's compiled core.

Each state's mask is cached as a packed bitmask (one bit per token id); a
state seen before costs a dictionary lookup.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from structgen.automaton.lazy_dfa import DEAD, LazyDFA
from structgen.index.kernels import preorder_trie, subtree_facts, walk_trie, write_bits

_ARRAYS_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CONTINUATION = (0x80, 0xBF)
# A state that loops is asked for its loop bytes only above this many tokens
# below the node: smaller subtrees are cheaper to walk than a full row.
_SMALL_SUBTREE = 64
_LENGTH_TIERS = (8, 16, 32, 64)
_TIER_WALK_LIMIT = 4096  # most tokens a tiered mask walks from the state itself


class TokenArrays:
    """The vocabulary in numpy form, built once per vocabulary.

    Only *regular* tokens (non-special, at least one byte) are included, sorted
    lexicographically by their bytes; a token's *position* is its index in that
    order and ``ids[position]`` its token id. The tokens form a byte trie whose
    nodes are numbered breadth-first, so the children of a node are contiguous
    ids and the tokens below a node are a contiguous range of positions. Each
    node also knows the set of bytes used anywhere below it, which lets a walk
    accept a whole subtree at once.
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
        self.regular_bits = self.bits_of(self.ids)
        self.eos_bits = self.bits_of(self.eos_ids)
        # No token walk can move a repeat counter by this much (see LazyDFA.mask_equivalent).
        self.horizon = int(self.lengths.max(initial=0)) + 1
        # Length tiers (see TokenIndex._tiered): tier i holds the tokens shorter
        # than tiers[i] and at least tiers[i-1] bytes long, as a packed id mask;
        # longer_than[i] counts the tokens of the tiers above i.
        self.tiers = [h for h in _LENGTH_TIERS if h < self.horizon] + [self.horizon]
        bounds = [0] + self.tiers
        self.tier_masks = [self.bits_of(self.ids[(self.lengths >= lo) & (self.lengths < hi)]) for lo, hi in zip(bounds, bounds[1:])]
        self.longer_than = [int((self.lengths >= h).sum()) for h in self.tiers]
        whole_utf8 = np.fromiter((_is_utf8(b) for b in blobs), dtype=bool, count=len(blobs))
        owner = np.repeat(np.arange(len(blobs)), self.lengths)
        bits = np.zeros((len(blobs), 256), dtype=bool)
        bits[owner, self.flat] = True
        self._build_trie(np.packbits(bits, axis=1, bitorder="little").view(np.uint64), whole_utf8)
        self._buffers = threading.local()

    def bits_of(self, ids: np.ndarray) -> np.ndarray:
        """A packed mask (little bit order) with the bits of ``ids`` set."""
        flags = np.zeros(self.size, dtype=bool)
        flags[ids] = True
        return np.packbits(flags, bitorder="little")

    def buffers(self) -> "_WalkBuffers":
        """This thread's work arrays for trie walks over this vocabulary."""
        buf = getattr(self._buffers, "walk", None)
        if buf is None:
            buf = self._buffers.walk = _WalkBuffers(self.num_nodes, self.horizon)
        return buf

    def _build_trie(self, token_byte_sets: np.ndarray, whole_utf8: np.ndarray) -> None:
        """The byte trie in preorder (see :mod:`structgen.index.kernels`),
        with what a walk needs per node to settle a whole subtree at once:
        the bytes used below it, the longest token below it, and whether
        every token below is valid UTF-8 and the node ends on a character
        boundary."""
        n = len(self.lengths)
        lcp = np.zeros(n, dtype=np.int64)
        if n > 1:
            max_len = int(self.lengths.max())
            padded = np.full((n, max_len + 1), -1, dtype=np.int16)
            padded[np.arange(max_len + 1)[None, :] < self.lengths[:, None]] = self.flat
            lcp[1:] = np.argmax(padded[1:] != padded[:-1], axis=1)
        (self.node_byte, self.node_depth, self.node_end, parent, self.node_lo,
         self.node_term) = preorder_trie(self.lengths, lcp, self.offsets, self.flat)  # fmt: skip
        self.num_nodes = len(self.node_byte)
        self.subtree_bytes, self.subtree_maxlen = subtree_facts(parent, self.node_term, self.lengths, token_byte_sets)
        # The token the node was made for is its first; the byte after the
        # node's prefix in it must not be a continuation byte.
        first = self.node_lo[:-1]
        longer = self.lengths[first] > self.node_depth
        next_byte = self.flat[np.minimum(self.offsets[first] + self.node_depth, len(self.flat) - 1)]
        aligned = ~longer | (next_byte < _CONTINUATION[0]) | (next_byte > _CONTINUATION[1])
        not_utf8_before = np.concatenate([[0], np.cumsum(~whole_utf8)])
        hi = self.node_lo[self.node_end]
        self.subtree_utf8 = aligned & (not_utf8_before[hi] == not_utf8_before[first])
        self.top_nodes = np.flatnonzero(self.node_depth == 1).astype(np.int32)

    @classmethod
    def of(cls, vocab) -> "TokenArrays":
        arrays = _ARRAYS_CACHE.get(vocab)
        if arrays is None:
            arrays = _ARRAYS_CACHE[vocab] = cls(vocab)
        return arrays


class _WalkBuffers:
    """Room for one trie walk: every node is on the work list, set aside or
    in a result range at most once per call, so ``num_nodes`` entries are
    always enough."""

    def __init__(self, num_nodes: int, max_depth: int) -> None:
        self.depth_state = np.empty(max_depth + 1, np.int64)
        self.work = (np.empty(num_nodes, np.int32), np.empty(num_nodes, np.int32))
        self.deferred = (np.empty(num_nodes, np.int32), np.empty(num_nodes, np.int32))
        self.allowed = np.empty((num_nodes, 2), np.int32)
        self.rejected = np.empty((num_nodes, 2), np.int32)


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
        characters in, every position is a new state and no subtree loops, so
        a full mask walks most of the trie with fresh derivatives; by length
        tier, the short tokens (nearly all) share the masks of clamped states,
        and only the tokens too long for any tier that differs from ``state``
        are walked, directly from ``state``.

        That pays only when the clamped masks are used again, as at successive
        positions of one string. A counter further on (a later property's
        ``maxLength``) also makes clamped states differ, but each of them once:
        tiers are used from the second state that clamps to the same state."""
        a = self.arrays
        smallest = self.dfa.mask_equivalent(state, a.tiers[0])
        if smallest == state:  # no counter matters to a token of any length
            return self._pack(state, self._walk(state))
        seen = self._clamped_seen[smallest] = self._clamped_seen.get(smallest, 0) + 1
        if seen < 2:
            return self._pack(state, self._walk(state))
        clamped = [smallest]
        for h in a.tiers[1:-1]:
            same = self.dfa.mask_equivalent(state, h)
            if same == state:
                break
            clamped.append(same)
        differ = len(clamped)
        if a.longer_than[differ - 1] > _TIER_WALK_LIMIT:  # near the bound: walking them all costs more than a mask
            return self._pack(state, self._walk(state))
        mask = self._walk(state, min_len=a.tiers[differ - 1])
        for tier in range(differ):
            mask |= self.packed_mask(clamped[tier]) & a.tier_masks[tier]
        return self._pack(state, mask)

    @property
    def cached_states(self) -> int:
        return len(self._masks)

    def _walk(self, state: int, min_len: int = 0) -> np.ndarray:
        """Packed mask of the regular tokens allowed in ``state`` (EOS not
        included); with ``min_len``, exact for the tokens of at least that
        many bytes and a subset of the truth for the others.

        The compiled walk (:func:`~structgen.index.kernels.walk_trie`)
        derives what it needs as it goes; if the DFA needs Python for that
        (a rule body, more room) it sets aside the subtrees it has not
        settled, the DFA fixes the cause, and the walk goes on with them."""
        a = self.arrays
        if state == DEAD:
            return np.zeros_like(a.regular_bits)
        buf = a.buffers()
        (work_node, work_parent), (set_node, set_parent) = buf.work, buf.deferred
        n = len(a.top_nodes)
        work_node[:n] = a.top_nodes
        work_parent[:n] = state
        counts = np.zeros(4, dtype=np.int64)
        while n:
            n, _ = self.dfa.call(
                walk_trie,
                a.node_byte, a.node_depth, a.node_end, a.node_lo, a.node_term,
                a.subtree_bytes, a.subtree_utf8, a.subtree_maxlen,
                state, _SMALL_SUBTREE, min_len,
                work_node, work_parent, n, buf.depth_state,
                buf.allowed, buf.rejected, counts,
                set_node, set_parent,
            )  # fmt: skip
            work_node, work_parent, set_node, set_parent = set_node, set_parent, work_node, work_parent
        n_allowed, n_rejected, allowed_total, rejected_total = counts.tolist()
        if min_len == 0 and rejected_total < allowed_total:
            # Every position is in one of the two lists: clear the shorter one.
            bits = a.regular_bits.copy()
            write_bits(buf.rejected, n_rejected, a.ids, a.lengths, 0, bits, False)
        else:
            bits = np.zeros_like(a.regular_bits)
            write_bits(buf.allowed, n_allowed, a.ids, a.lengths, min_len, bits, True)
        return bits

    def _pack(self, state: int, bits: np.ndarray) -> np.ndarray:
        """The cached form of a mask: EOS added exactly in accepting states."""
        if self.dfa.is_accepting(state):
            bits |= self.arrays.eos_bits
        return bits


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
