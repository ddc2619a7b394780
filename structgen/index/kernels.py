"""Compiled inner loops of the token index (numba, ``nopython``).

A mask is a walk of the vocabulary's byte trie through the DFA's transition
table. In numpy every trie level costs a handful of array operations of a few
microseconds each, however few nodes it holds; compiled, a node costs a few
nanoseconds, provided memory is read in order. So the trie is stored in
*preorder* (a node, then its subtrees, children by byte): a node's subtree is
the contiguous range ``[node, node_end[node])``, a walk is a forward scan that
jumps over pruned subtrees, and the only stack is the state at each depth.

The walk never derives anything: derivatives live in Python
(:class:`~structgen.automaton.lazy_dfa.LazyDFA`). Where the walk meets a
transition that is not in the table yet, or wants to know which bytes loop on
a state, it sets the node aside and writes a *request*; the caller serves the
requests and calls again with the set-aside nodes (see
:meth:`structgen.index.token_index.TokenIndex._walk`). A mask therefore takes
as many calls as the longest chain of new transitions along one token, and
each call resumes exactly where the last one stopped.

Compiled functions are cached on disk (``cache=True``), so only the first
import on a machine pays the compilation (a few seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit

UNKNOWN = -1
DEAD = 0
# Open-addressing set for de-duplicating requests within one call.
_SEEN_SLOTS = 1 << 13
_SEEN_LIMIT = _SEEN_SLOTS // 2


@njit(cache=True)
def preorder_trie(lengths, lcp, offsets, flat):
    """Trie of the lexicographically sorted tokens, nodes in preorder.

    Token ``i`` adds the nodes for its prefixes longer than ``lcp[i]`` (the
    bytes it shares with token ``i - 1``; identical tokens have ``lcp`` 0 and
    get chains of their own), so preorder is simply (token, depth) order.
    Returns per node its byte, depth, subtree end, parent (-1 at depth 1),
    first token position (``lo``; one extra entry holds the token count, so
    the positions below ``j`` are ``[lo[j], lo[end[j]])``) and the token
    ending there (-1 if none)."""
    n = len(lengths)
    total = 0
    for i in range(n):
        total += lengths[i] - lcp[i]
    node_byte = np.empty(total, np.uint8)
    depth = np.empty(total, np.int32)
    end = np.empty(total, np.int32)
    parent = np.empty(total, np.int32)
    lo = np.empty(total + 1, np.int32)
    term = np.empty(total, np.int32)
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
            term[j] = i if k == lengths[i] else -1
            path[k] = j
            j += 1
        cur = lengths[i]
    while cur > 0:
        end[path[cur]] = j
        cur -= 1
    lo[total] = n
    return node_byte, depth, end, parent, lo, term


@njit(cache=True)
def subtree_facts(parent, term, lengths, token_sets):
    """Per node, the bytes used by the tokens below it (four 64-bit words; a
    superset of what is left to read, since it includes the node's prefix)
    and the length of the longest token below, gathered bottom-up."""
    total = len(parent)
    sets = np.zeros((total, 4), np.uint64)
    maxlen = np.zeros(total, np.int32)
    for j in range(total - 1, -1, -1):
        t = term[j]
        if t >= 0:
            for w in range(4):
                sets[j, w] |= token_sets[t, w]
            maxlen[j] = max(maxlen[j], lengths[t])
        p = parent[j]
        if p >= 0:
            for w in range(4):
                sets[p, w] |= sets[j, w]
            maxlen[p] = max(maxlen[p], maxlen[j])
    return sets, maxlen


@njit(cache=True, nogil=True)
def walk_trie(
    table, loop_out, loop_kind,
    node_byte, node_depth, node_end, node_lo, node_term, subtree_bytes, subtree_utf8, subtree_maxlen,
    byte_class, num_classes, root, small, min_len,
    work_node, work_parent, n_work, depth_state,
    allowed, rejected, counts,
    deferred_node, deferred_parent, requests, seen,
):
    """Walk the subtrees of the work list (``work_node[i]``, entered from
    state ``work_parent[i]``).

    Every token position ends up in exactly one range of ``allowed`` or
    ``rejected`` (``[lo, hi)`` rows; ``counts`` holds the number of rows and
    of positions of each, accumulated over calls), or below a node that is
    set aside in ``deferred_*``. ``requests`` receives what the caller must
    compute before the set-aside nodes can go on: ``state * num_classes +
    class`` for a missing transition, ``-(state + 1)`` for the loop bytes of
    a state. Returns ``(set aside, requests)``.

    A node's subtree is allowed at once when its state loops on every byte
    used below it (``loop_out`` holds the bytes that do *not* loop, as four
    64-bit words; ``loop_kind`` 1: as listed, 2: high bytes loop as whole
    UTF-8 characters, so the subtree must be whole characters too). Loop
    bytes are asked for only where they are likely to pay: the state just
    looped (or came back to ``root``) and more than ``small`` tokens lie
    below. With ``min_len`` > 0 only tokens at least that long matter and
    subtrees without one are skipped (their positions appear nowhere).
    """
    seen[:] = -1
    n_seen = 0
    n_deferred = 0
    n_requests = 0
    for w in range(n_work):
        c = work_node[w]
        stop = node_end[c]
        depth_state[node_depth[c] - 1] = work_parent[w]
        while c < stop:
            skip = node_end[c]
            if subtree_maxlen[c] < min_len:
                c = skip
                continue
            ps = depth_state[node_depth[c] - 1]
            b = node_byte[c]
            t = table[ps, b]
            key = -1
            if t == UNKNOWN:
                key = ps * num_classes + byte_class[b]
            elif t == DEAD:
                r = counts[1]
                rejected[r, 0] = node_lo[c]
                rejected[r, 1] = node_lo[skip]
                counts[1] = r + 1
                counts[3] += node_lo[skip] - node_lo[c]
                c = skip
                continue
            else:
                kind = loop_kind[t]
                if kind == 0:
                    if (t == ps or t == root) and node_lo[skip] - node_lo[c] > small:
                        key = -(t + 1)
                elif kind == 1 or subtree_utf8[c]:
                    whole = True
                    for i in range(4):
                        if subtree_bytes[c, i] & loop_out[t, i]:
                            whole = False
                            break
                    if whole:
                        r = counts[0]
                        allowed[r, 0] = node_lo[c]
                        allowed[r, 1] = node_lo[skip]
                        counts[0] = r + 1
                        counts[2] += node_lo[skip] - node_lo[c]
                        c = skip
                        continue
            if key != -1:
                deferred_node[n_deferred] = c
                deferred_parent[n_deferred] = ps
                n_deferred += 1
                fresh = True
                if n_seen < _SEEN_LIMIT:
                    slot = (key * 0x9E3779B1) & (_SEEN_SLOTS - 1)
                    while seen[slot] != -1:
                        if seen[slot] == key:
                            fresh = False
                            break
                        slot = (slot + 1) & (_SEEN_SLOTS - 1)
                    if fresh:
                        seen[slot] = key
                        n_seen += 1
                if fresh:
                    requests[n_requests] = key
                    n_requests += 1
                c = skip
                continue
            term = node_term[c]
            if term >= 0:
                r = counts[0]
                allowed[r, 0] = term
                allowed[r, 1] = term + 1
                counts[0] = r + 1
                counts[2] += 1
            depth_state[node_depth[c]] = t
            c += 1
    return n_deferred, n_requests


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
