"""Masks of states that loop: most tokens are kept whole, the rest are walked
from where they leave the loop.

Inside a JSON string the state loops on every byte but ``"``, ``\\`` and the
control bytes, and on every whole UTF-8 character. A token that avoids those
*leaving* bytes is allowed in any such state; any other token is allowed
exactly when its *suffix* from the first leaving byte is, since every byte
before that leads back to the same state. So for one set of leaving bytes the
vocabulary is split once into the tokens kept whole (a packed mask) and a
small trie of the others' suffixes, and the mask of every state that loops
that way is a copy of the one plus a walk of the other. For JSON strings and
Llama-3 that leaves 5,107 of 128,000 tokens, most of them cut at a newline or
tab, where the walk stops at once; the full trie walk visits 15,000 nodes.

In a loop of whole UTF-8 characters (``loop_kind`` 2, see
:func:`structgen.automaton.derivatives.ensure_loops`) the bytes before the
suffix must be whole characters. A token that ends inside a character, with
no leaving byte, is kept whole: the loop test walked every well-formed
character back to the state, so each start of one leads to a live state.

A split pays where few tokens are left; where many are (a digit loop leaves
nearly every token) there is none and the state's mask is a full walk.
"""

from __future__ import annotations

import numpy as np

from structgen.index.kernels import first_in
from structgen.index.trie import ByteTrie

# Most tokens, as a fraction of the vocabulary, a split may leave to walk.
_MOST_LEFT = 1 / 8
_WHOLE_UTF8_LOOP = 2  # loop_kind of a loop over whole UTF-8 characters


class LoopSplit:
    """The tokens a loop keeps whole (``kept``, a packed mask) and the trie
    of the other tokens' suffixes, from their first leaving byte (``ids``:
    the token id of each suffix position)."""

    def __init__(self, kept: np.ndarray, trie: ByteTrie, ids: np.ndarray) -> None:
        self.kept = kept
        self.trie = trie
        self.ids = ids


def split_tokens(arrays, leaving: np.ndarray, kind: int, live: np.ndarray) -> LoopSplit | None:
    """The split of the vocabulary of ``arrays``
    (:class:`~structgen.index.token_index.TokenArrays`) for a loop that
    ``leaving`` bytes (four 64-bit words) leave, ``live`` of them to a state
    that is not dead, or None if it would leave too many tokens to walk.
    A token whose first leaving byte leads to the dead state is rejected
    outright: inside a string with a narrow ``pattern`` class nearly every
    byte leaves, but only the closing quote leads on, so few tokens are left
    to walk however many leave."""
    trie = arrays.trie
    member = _bytes_of(leaving)
    on = _bytes_of(live)
    limit = _MOST_LEFT * trie.size
    if trie.strings_with_byte[on].max(initial=0) > limit:
        return None
    cut = first_in(trie.flat, trie.offsets, trie.lengths, member)
    leaves = cut < trie.lengths
    at_cut = trie.flat[np.minimum(trie.offsets + cut, len(trie.flat) - 1)]
    dies = leaves & ~on[at_cut]  # cut at a leaving byte that leads nowhere
    if kind == _WHOLE_UTF8_LOOP:
        ends_cut_off = (cut == trie.lengths) & trie.utf8_cut_off
        broken = trie.utf8_prefix < cut  # a character cut off or ill-formed before the leaving byte
        cut = np.minimum(cut, trie.utf8_prefix)
        left = (cut < trie.lengths) & ~ends_cut_off
        dies &= ~broken
    else:
        left = leaves
    walked = left & ~dies
    positions = np.flatnonzero(walked)
    if len(positions) > limit:
        return None
    strings = arrays.strings
    suffixes = [strings[p][c:] for p, c in zip(positions.tolist(), cut[positions].tolist())]
    order = sorted(range(len(suffixes)), key=suffixes.__getitem__)
    kept = arrays.bits_of(arrays.ids[~left])
    return LoopSplit(kept, ByteTrie([suffixes[i] for i in order]), arrays.ids[positions[order]])


def _bytes_of(words: np.ndarray) -> np.ndarray:
    """The 256 flags of a byte set given as four 64-bit words."""
    return np.unpackbits(words.view(np.uint8), bitorder="little").astype(bool)
