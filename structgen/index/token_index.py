"""Token masks: which vocabulary entries may come next in a DFA state.

A token is allowed in state ``s`` when walking its bytes from ``s`` never hits
the dead state. The vocabulary is kept as a byte trie in flat numpy arrays
(:class:`~structgen.index.trie.ByteTrie`, in :class:`TokenArrays`, built once
per vocabulary), and a mask is one walk of that trie through the DFA's
transition table, in compiled code (:mod:`structgen.index.kernels`):

- a dead prefix prunes its whole subtree, so in structural states (after
  ``{`` or ``,``) only a few hundred nodes are visited;
- a subtree is allowed at once when its node's state loops on every byte used
  below it (string contents, digit runs);
- inside a string, where the state itself loops on most bytes, only the few
  thousand tokens that leave the loop are walked, each from where it leaves
  (:mod:`structgen.index.loop_split`).

Transitions missing from the lazily built table, and the loop bytes of a
state, are derived during the walk by the DFA's compiled core.

Each state's mask is cached as a packed bitmask (one bit per token id); a
state seen before costs a dictionary lookup.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

import numpy as np

from structgen.automaton.lazy_dfa import DEAD, LazyDFA
from structgen.index.kernels import walk_trie, write_bits
from structgen.index.loop_split import LoopSplit, split_tokens
from structgen.index.trie import ByteTrie

_ARRAYS_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# A state that loops is asked for its loop bytes only above this many tokens
# below the node: smaller subtrees are cheaper to walk than a full row.
_SMALL_SUBTREE = 64
_LENGTH_TIERS = (8, 16, 32, 64)
_TIER_WALK_LIMIT = 4096  # most tokens a tiered mask walks from the state itself
_PROBE_BYTE = ord("e")
_KEPT_SPLITS = 16
_HANDED_OVER_MIN = 8  # fewest first bytes worth taking from a loop's mask (see TokenIndex._handed_over)
_HANDED_OVER_PROBES = b"qxz"  # first letters that rarely begin every declared name
_KEPT_TOP_MASKS = 64  # packed masks of top-node sets kept per vocabulary (16 KB each for Llama-3)


class TokenArrays:
    """The vocabulary in numpy form, built once per vocabulary.

    Only *regular* tokens (non-special, at least one byte) are included, in
    the :class:`~structgen.index.trie.ByteTrie` of their bytes; a token's
    *position* is its index in the trie's sorted order, ``ids[position]``
    its token id and ``strings[position]`` its bytes.
    """

    def __init__(self, vocab) -> None:
        token_bytes = vocab.token_bytes
        special = vocab.special_ids
        regular = sorted((b, i) for i, b in enumerate(token_bytes) if b and i not in special)
        self.strings = [b for b, _ in regular]
        self.trie = ByteTrie(self.strings)
        self.size = len(token_bytes)
        self.ids = np.fromiter((i for _, i in regular), dtype=np.int64, count=len(regular))
        self.lengths = self.trie.lengths
        self.eos_ids = np.asarray(sorted(vocab.eos_ids), dtype=np.int64)
        self.regular_bits = self.bits_of(self.ids)
        self.eos_bits = self.bits_of(self.eos_ids)
        # No token walk can move a repeat counter by this much (see LazyDFA.mask_equivalent).
        self.horizon = self.trie.max_len + 1
        # Length tiers (see TokenIndex._tiered): tier i holds the tokens shorter
        # than tiers[i] and at least tiers[i-1] bytes long, as a packed id mask;
        # longer_than[i] counts the tokens of the tiers above i.
        self.tiers = [h for h in _LENGTH_TIERS if h < self.horizon] + [self.horizon]
        bounds = [0] + self.tiers
        self.tier_masks = [self.bits_of(self.ids[(self.lengths >= lo) & (self.lengths < hi)]) for lo, hi in zip(bounds, bounds[1:])]
        self.longer_than = [int((self.lengths >= h).sum()) for h in self.tiers]
        self._loop_splits: OrderedDict[tuple[int, bytes, bytes], LoopSplit | None] = OrderedDict()
        self.top_bytes = self.trie.node_byte[: self.trie.n_top]
        self.top_of_byte = np.full(256, -1, dtype=np.int64)
        self.top_of_byte[self.top_bytes] = np.arange(self.trie.n_top)
        # per token id, the top node its bytes start with (n_top: special or empty)
        self._top_of_id = np.full(self.size, self.trie.n_top, dtype=np.int32)
        lo, hi = self.trie.node_lo[: self.trie.n_top], self.trie.node_hi[: self.trie.n_top]
        self._top_of_id[self.ids] = np.repeat(np.arange(self.trie.n_top, dtype=np.int32), hi - lo)
        self._top_masks: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def bits_of(self, ids: np.ndarray) -> np.ndarray:
        """A packed mask (little bit order) with the bits of ``ids`` set."""
        flags = np.zeros(self.size, dtype=bool)
        flags[ids] = True
        return np.packbits(flags, bitorder="little")

    def loop_split(self, kind: int, leaving: np.ndarray, live: np.ndarray) -> LoopSplit | None:
        """The vocabulary split for a loop (:mod:`structgen.index.loop_split`),
        made on first use; states of all grammars over this vocabulary share
        it. The most recently used splits are kept (a split of a pattern's
        loop can take a few MB, and a long-lived process meets many)."""
        key = (kind, leaving.tobytes(), live.tobytes())
        splits = self._loop_splits
        with self._lock:
            if key in splits:
                splits.move_to_end(key)
            else:
                splits[key] = split_tokens(self, leaving, kind, live)
                while len(splits) > _KEPT_SPLITS:
                    splits.popitem(last=False)
            return splits[key]

    def tops_bits(self, tops: np.ndarray) -> np.ndarray:
        """A packed mask of the tokens below the top trie nodes ``tops``; the
        most recently used ones are kept (key states of a schema share
        theirs)."""
        key = tops.tobytes()
        masks = self._top_masks
        with self._lock:
            bits = masks.get(key)
            if bits is not None:
                masks.move_to_end(key)
                return bits
        chosen = np.zeros(self.trie.n_top + 1, dtype=bool)  # the last entry: tokens outside the trie
        chosen[tops] = True
        bits = np.packbits(chosen[self._top_of_id], bitorder="little")
        with self._lock:
            masks[key] = bits
            while len(masks) > _KEPT_TOP_MASKS:
                masks.popitem(last=False)
        return bits

    @classmethod
    def of(cls, vocab) -> "TokenArrays":
        arrays = _ARRAYS_CACHE.get(vocab)
        if arrays is None:
            arrays = _ARRAYS_CACHE[vocab] = cls(vocab)
        return arrays


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
                        mask = self._keep(same, self._tiered(same))
                    self._masks[state] = mask
        return mask

    def _keep(self, state: int, mask: np.ndarray) -> np.ndarray:
        """Cache ``mask`` read-only: every matcher and thread of the grammar
        shares it, so a caller writing into it would corrupt them all."""
        mask.flags.writeable = False
        self._masks[state] = mask
        return mask

    def cached_mask(self, state: int) -> np.ndarray | None:
        """The mask of ``state`` if it costs no computation, else ``None``."""
        return self._masks.get(state)

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
        positions of one string, or are cheap, as a loop split's are (the
        clamped state of ``[a-z]{0,60}`` loops). A counter further on (a later
        property's ``maxLength``) also makes clamped states differ, but each
        of them once: otherwise tiers are used from the second state that
        clamps to the same state."""
        a = self.arrays
        smallest = self.dfa.mask_equivalent(state, a.tiers[0])
        if smallest == state:  # no counter matters to a token of any length
            return self._pack(state, self._walk(state))
        seen = self._clamped_seen[smallest] = self._clamped_seen.get(smallest, 0) + 1
        if seen < 2 and self._loop_split(smallest) is None:
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

    def _walk(self, state: int, min_len: int = 0, hand_over: bool = True) -> np.ndarray:
        """Packed mask of the regular tokens allowed in ``state`` (EOS not
        included); with ``min_len``, exact for the tokens of at least that
        many bytes and a subset of the truth for the others. A state that
        loops on most bytes walks only the tokens that leave the loop
        (:mod:`structgen.index.loop_split`); the first bytes that lead into
        a loop take their tokens from its mask (:meth:`_handed_over`), unless
        ``hand_over`` is off."""
        a = self.arrays
        if state == DEAD:
            return np.zeros_like(a.regular_bits)
        split = self._loop_split(state) if min_len == 0 else None
        if split is not None:
            buf, counts = self._walk_trie(split.trie, state, 0)
            bits = split.kept.copy()
            write_bits(buf.allowed, counts[0], split.ids, split.trie.lengths, 0, bits, True)
            return bits
        handed = self._handed_over(state) if min_len == 0 and hand_over else []
        if not handed:
            buf, counts = self._walk_trie(a.trie, state, min_len)
            return self._bits_of_walk(buf, counts, min_len, a.regular_bits)
        # The loops' masks first: one may be walked through the same trie, and
        # so the same walk buffers, as this state's own walk.
        handed_bits = [(self._loop_mask(loop), a.tops_bits(tops)) for loop, tops in handed]
        keep = np.ones(a.trie.n_top, dtype=bool)
        for _, tops in handed:
            keep[tops] = False
        buf, counts = self._walk_trie(a.trie, state, 0, np.flatnonzero(keep))
        walked_part = a.regular_bits.copy()
        for _, under in handed_bits:
            walked_part &= ~under
        bits = self._bits_of_walk(buf, counts, 0, walked_part)
        for mask, under in handed_bits:
            bits |= mask & under
        return bits

    def _loop_mask(self, loop: int) -> np.ndarray:
        """The mask of a loop that takes over subtrees, cached. Walked without
        hand-overs of its own rather than through :meth:`packed_mask`, whose
        clamped state could hand subtrees over again and come back here."""
        mask = self._masks.get(loop)
        if mask is None:
            mask = self._keep(loop, self._pack(loop, self._walk(loop, hand_over=False)))
        return mask

    def _bits_of_walk(self, buf, counts, min_len: int, walked: np.ndarray) -> np.ndarray:
        """The packed mask a walk found, written from the shorter of its
        allowed and rejected lists; ``walked`` is the regular tokens of the
        subtrees it walked (every one of them is in one of the lists)."""
        a = self.arrays
        n_allowed, n_rejected, allowed_total, rejected_total = counts.tolist()
        if min_len == 0 and rejected_total < allowed_total:
            bits = walked.copy()
            write_bits(buf.rejected, n_rejected, a.ids, a.lengths, 0, bits, False)
        else:
            bits = np.zeros_like(a.regular_bits)
            write_bits(buf.allowed, n_allowed, a.ids, a.lengths, min_len, bits, True)
        return bits

    def _handed_over(self, state: int) -> list[tuple[int, np.ndarray]]:
        """Loops whose masks answer for whole subtrees of the trie at
        ``state``: ``(loop state t, top node ids)``. If a first byte ``b``
        leads from ``state`` and from ``t`` to the same state, the tokens
        starting with ``b`` are allowed in ``state`` exactly when they are in
        ``t``. At an object key with undeclared names allowed, every first
        byte that no declared name continues with (letters, quote, the
        lead bytes of other characters) does that with the free-key loop,
        whose mask is a loop split shared by every key position; walking
        those subtrees from the key state visited about 15,000 trie nodes.
        Inside an unanchored pattern, every byte that breaks the partial
        match does it with the pattern's restart state, whose mask is one
        full walk; each position of ``[0-9a-f]{8}-...`` walked all 274,000
        nodes. The candidates are the states a few rare first letters lead
        to, when they loop there: asking every distinct target cost more,
        over all masks, than the walks it saved."""
        a = self.arrays
        targets = self.dfa.complete_row(state)[a.top_bytes]
        out: list[tuple[int, np.ndarray]] = []
        free = None
        for b in _HANDED_OVER_PROBES:
            top = a.top_of_byte[b]
            t = int(targets[top]) if top >= 0 else DEAD
            if t == DEAD or t == state or any(t == u for u, _ in out):
                continue
            if self.dfa.step(t, b) != t:
                continue
            if free is None:
                free = targets != DEAD
            same = free & (self.dfa.complete_row(t)[a.top_bytes] == targets)
            if same.sum() >= _HANDED_OVER_MIN:
                out.append((t, np.flatnonzero(same)))
                free &= ~same
        return out

    def _loop_split(self, state: int) -> LoopSplit | None:
        """The split for ``state``'s loop, if it loops on a probe byte (a
        letter: inside strings it does; between values, where a split would
        not pay, it does not, and the loop bytes are not worth deriving)."""
        if self.dfa.step(state, _PROBE_BYTE) != state:
            return None
        kind, leaving = self.dfa.loop_bytes(state)
        on = np.packbits(self.dfa.table[state] != DEAD, bitorder="little").view(np.uint64) & leaving
        return self.arrays.loop_split(kind, leaving, on)

    def _walk_trie(self, trie: ByteTrie, state: int, min_len: int, tops: np.ndarray | None = None):
        """The compiled walk (:func:`~structgen.index.kernels.walk_trie`) of
        ``trie`` from ``state`` (of the subtrees of ``tops`` only, if
        given): the walk buffers with the allowed and
        rejected position ranges, and their counts. The walk derives what it
        needs as it goes; if the DFA needs Python for that (a rule body, more
        room) it sets aside the subtrees it has not settled, the DFA fixes
        the cause, and the walk goes on with them."""
        buf = trie.buffers()
        (work_node, work_parent), (set_node, set_parent) = buf.work, buf.deferred
        if tops is None:
            n = trie.n_top
            work_node[:n] = np.arange(n)
        else:
            n = len(tops)
            work_node[:n] = tops
        work_parent[:n] = state
        counts = np.zeros(4, dtype=np.int64)
        while n:
            n, _ = self.dfa.call(
                walk_trie,
                trie.node_byte, trie.node_lo, trie.node_hi, trie.node_ending, trie.first_child, trie.n_children,
                trie.subtree_bytes, trie.subtree_utf8, trie.subtree_maxlen,
                state, _SMALL_SUBTREE, min_len,
                work_node, work_parent, n, *buf.levels,
                buf.allowed, buf.rejected, counts,
                set_node, set_parent,
            )  # fmt: skip
            work_node, work_parent, set_node, set_parent = set_node, set_parent, work_node, work_parent
        return buf, counts

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
