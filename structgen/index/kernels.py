"""Compiled inner loops of the token index (numba, ``nopython``).

A mask is a walk of the vocabulary's byte trie (:mod:`structgen.index.trie`)
through the DFA's transition table. In numpy every trie level costs a handful
of array operations of a few microseconds each, however few nodes it holds;
compiled, a node costs a few nanoseconds, provided memory is read in order.
The trie is built here in *preorder* (a node, then its subtrees, children by
byte: tokens in sorted order make it one pass) and renumbered breadth-first
for walking.

Transitions missing from the lazily built table are derived on the spot by
the compiled DFA core (:mod:`structgen.automaton.derivatives`), so a cold
mask is one call. When a derivative cannot go on without Python (a rule body
to intern, an array to grow) the walk sets aside what it has not settled and
returns; the caller fixes the cause and calls again with the set-aside
subtrees (see :meth:`structgen.index.token_index.TokenIndex._walk`).

Compiled functions are cached on disk (``cache=True``), so only the first
import on a machine pays the compilation (a few seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from structgen.automaton.derivatives import DEAD, UNKNOWN, ensure_loops, fill_class
from structgen.grammar import utf8


@njit(cache=True)
def preorder_trie(lengths, lcp, offsets, flat):
    """Trie of the lexicographically sorted strings, nodes in preorder.

    String ``i`` adds the nodes for its prefixes longer than ``lcp[i]`` (the
    bytes it shares with string ``i - 1``; all of them if the two are equal),
    so preorder is simply (string, depth) order. Returns per node its byte,
    depth, subtree end, parent (-1 at depth 1), first string position
    (``lo``; one extra entry holds the string count, so the positions below
    ``j`` are ``[lo[j], lo[end[j]])``) and how many strings end there (they
    are the first positions below it)."""
    n = len(lengths)
    total = 0
    for i in range(n):
        total += lengths[i] - lcp[i]
    node_byte = np.empty(total, np.uint8)
    depth = np.empty(total, np.int32)
    end = np.empty(total, np.int32)
    parent = np.empty(total, np.int32)
    lo = np.empty(total + 1, np.int32)
    ending = np.zeros(total, np.int32)
    path = np.empty(int(lengths.max()) + 1 if n else 1, np.int32)
    j = 0
    cur = 0
    for i in range(n):
        while cur > lcp[i]:
            end[path[cur]] = j
            cur -= 1
        for k in range(lcp[i] + 1, lengths[i] + 1):
            node_byte[j] = flat[offsets[i] + k - 1]
            depth[j] = k
            parent[j] = path[k - 1] if k > 1 else -1
            lo[j] = i
            path[k] = j
            j += 1
        ending[path[lengths[i]]] += 1
        cur = lengths[i]
    while cur > 0:
        end[path[cur]] = j
        cur -= 1
    lo[total] = n
    return node_byte, depth, end, parent, lo, ending


@njit(cache=True)
def subtree_facts(parent, lo, ending, lengths, token_sets):
    """Per node, the bytes used by the strings below it (four 64-bit words; a
    superset of what is left to read, since it includes the node's prefix)
    and the length of the longest string below, gathered bottom-up (children
    after their parents)."""
    total = len(parent)
    sets = np.zeros((total, 4), np.uint64)
    maxlen = np.zeros(total, np.int32)
    for j in range(total - 1, -1, -1):
        if ending[j]:
            t = lo[j]
            for w in range(4):
                sets[j, w] |= token_sets[t, w]
            maxlen[j] = max(maxlen[j], lengths[t])
        p = parent[j]
        if p >= 0:
            for w in range(4):
                sets[p, w] |= sets[j, w]
            maxlen[p] = max(maxlen[p], maxlen[j])
    return sets, maxlen


def _utf8_lead_bytes():
    """Per byte as the first of a character: how many continuation bytes
    follow (-1: none can start one) and the range of the first of them (the
    others are 0x80-0xBF), from the well-formed sequences of all scalar
    values."""
    need = np.full(256, -1, np.int64)
    need[:0x80] = 0
    lo, hi = np.zeros(256, np.int64), np.zeros(256, np.int64)
    for seq in utf8.multibyte_sequences():
        for b in range(seq[0][0], seq[0][1] + 1):
            assert need[b] == -1 or (lo[b], hi[b]) == seq[1], "one range after each lead byte"
            need[b] = len(seq) - 1
            lo[b], hi[b] = seq[1]
    return need, lo, hi


# Read by compiled code as constants.
_LEAD_NEED, _SECOND_LO, _SECOND_HI = _utf8_lead_bytes()


@njit(cache=True)
def utf8_prefixes(flat, offsets, lengths):
    """Per string, the length of its longest prefix of whole, well-formed
    UTF-8 characters (as Python's strict decoder sees them: no overlong
    forms, surrogates or code points past U+10FFFF), and whether the rest
    is the start of such a character cut off by the string's end."""
    lead_need, second_lo, second_hi = _LEAD_NEED, _SECOND_LO, _SECOND_HI
    n = len(lengths)
    whole = np.empty(n, np.int64)
    cut_off = np.zeros(n, np.bool_)
    for i in range(n):
        s, m = offsets[i], lengths[i]
        j = 0
        while j < m:
            b = flat[s + j]
            need = lead_need[b]
            if need < 0:
                break
            lo, hi = second_lo[b], second_hi[b]
            k = 1
            while k <= need and j + k < m:
                c = flat[s + j + k]
                if not lo <= c <= hi:
                    break
                lo, hi = 0x80, 0xBF
                k += 1
            if k <= need:
                cut_off[i] = j + k == m
                break
            j += need + 1
        whole[i] = j
    return whole, cut_off


@njit(cache=True)
def first_in(flat, offsets, lengths, member):
    """Per string, the index of its first byte ``b`` with ``member[b]`` (the
    string's length if none)."""
    n = len(lengths)
    out = np.empty(n, np.int64)
    for i in range(n):
        s, m = offsets[i], lengths[i]
        j = 0
        while j < m and not member[flat[s + j]]:
            j += 1
        out[i] = j
    return out


@njit(cache=True, nogil=True)
def walk_trie(
    st,
    node_byte, node_lo, node_hi, node_ending, first_child, n_children, subtree_bytes, subtree_utf8, subtree_maxlen,
    root, small, min_len,
    work_node, work_parent, n_work, level_next, level_end, level_state,
    allowed, rejected, counts,
    deferred_node, deferred_parent,
):
    """Walk the subtrees of the work list (``work_node[i]``, entered from
    state ``work_parent[i]``) of a :class:`~structgen.index.trie.ByteTrie`
    through the DFA of store ``st``, deriving missing transitions on the way.

    Every string position ends up in exactly one range of ``allowed`` or
    ``rejected`` (``[lo, hi)`` rows; ``counts`` holds the number of rows and
    of positions of each, accumulated over calls). If a derivative fails
    (see :mod:`structgen.automaton.derivatives`) the walk stops and sets
    aside, in ``deferred_*``, every subtree it has not settled; it returns
    how many, for a call after the failure is fixed.

    The walk is depth first; level ``d`` of its stack holds the next and
    end sibling ids still to decide at depth ``d`` and the state they are
    entered from. A node's subtree is allowed at once when its state loops
    on every byte used below it (the store's ``loop_out``/``loop_kind``,
    computed on first use). Loop bytes are computed only where they are
    likely to pay: the state just looped (or came back to ``root``) and more
    than ``small`` strings lie below. With ``min_len`` > 0 only strings at
    least that long matter and subtrees without one are skipped (their
    positions appear nowhere).
    """
    # Fields read once: each read through the struct reference costs a
    # reference count. A walk never replaces the arrays (growing them is
    # done in Python, between calls).
    table, loop_kind, loop_out, byte_class = st.table, st.loop_kind, st.loop_out, st.byte_class
    for w in range(n_work):
        d = 0
        level_next[0] = work_node[w]
        level_end[0] = work_node[w] + 1
        level_state[0] = work_parent[w]
        while d >= 0:
            c = level_next[d]
            if c == level_end[d]:
                d -= 1
                continue
            if subtree_maxlen[c] < min_len:
                level_next[d] = c + 1
                continue
            ps = level_state[d]
            b = node_byte[c]
            t = table[ps, b]
            if t == UNKNOWN:
                t = fill_class(st, ps, byte_class[b])
                if t < 0:
                    return _set_aside(d, w, level_next, level_end, level_state, work_node, work_parent, n_work, deferred_node, deferred_parent)
            lo, hi = node_lo[c], node_hi[c]
            if t == DEAD:
                level_next[d] = c + 1
                _add_range(rejected, counts, 1, lo, hi)
                continue
            kind = loop_kind[t]
            if kind == 0 and (t == ps or t == root) and hi - lo > small:
                if not ensure_loops(st, t):
                    return _set_aside(d, w, level_next, level_end, level_state, work_node, work_parent, n_work, deferred_node, deferred_parent)
                kind = loop_kind[t]
            level_next[d] = c + 1
            if kind != 0 and (kind == 1 or subtree_utf8[c]):
                whole = True
                for i in range(4):
                    if subtree_bytes[c, i] & loop_out[t, i]:
                        whole = False
                        break
                if whole:
                    _add_range(allowed, counts, 0, lo, hi)
                    continue
            if node_ending[c]:
                _add_range(allowed, counts, 0, lo, lo + node_ending[c])
            if n_children[c]:
                d += 1
                level_next[d] = first_child[c]
                level_end[d] = first_child[c] + n_children[c]
                level_state[d] = t
    return 0


@njit(cache=True, nogil=True, inline="always")
def _add_range(ranges, counts, which, lo, hi):
    """Append positions ``lo..hi`` to ``ranges`` (``which`` 0: allowed, 1:
    rejected; ``counts[which]`` ranges, ``counts[2 + which]`` positions)."""
    r = counts[which]
    ranges[r, 0] = lo
    ranges[r, 1] = hi
    counts[which] = r + 1
    counts[2 + which] += hi - lo


@njit(cache=True, nogil=True)
def _set_aside(d, w, level_next, level_end, level_state, work_node, work_parent, n_work, deferred_node, deferred_parent):
    """After a failure in work item ``w`` with the stack ``d`` levels deep:
    the subtrees left are the undecided siblings of every level, then the
    remaining work items."""
    n = 0
    for k in range(d, -1, -1):
        for c in range(level_next[k], level_end[k]):
            deferred_node[n] = c
            deferred_parent[n] = level_state[k]
            n += 1
    for v in range(w + 1, n_work):
        deferred_node[n] = work_node[v]
        deferred_parent[n] = work_parent[v]
        n += 1
    return n


@njit(cache=True, nogil=True)
def write_bits(ranges, n, ids, lengths, min_len, bits, value):
    """Set (``value`` true) or clear the bit of the token id of every position
    in the first ``n`` ranges whose token is at least ``min_len`` bytes long."""
    for r in range(n):
        for p in range(ranges[r, 0], ranges[r, 1]):
            if lengths[p] >= min_len:
                i = ids[p]
                bit = np.uint8(1 << (i & 7))
                if value:
                    bits[i >> 3] |= bit
                else:
                    bits[i >> 3] &= ~bit
