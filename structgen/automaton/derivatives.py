"""Compiled core of the lazy DFA (numba): hash-consed expression nodes, their
Brzozowski derivatives, and the transition table.

:class:`~structgen.automaton.lazy_dfa.LazyDFA` is the Python face of this
module; read its construction notes first. Here everything lives in flat
arrays gathered in one :class:`Store`, so that the token walk
(:mod:`structgen.index.kernels`) can derive the transitions it meets without
leaving compiled code.

*Nodes.* A node is a row of parallel arrays: ``kind``, two operands ``a`` and
``b``, repeat bounds ``lo``/``hi`` (``hi`` -1: unbounded), ``nullable``,
``has_and``, and the first set (``first``: the byte classes a string of the
node can start with, four 64-bit words; for a ``BYTES`` node it *is* the
node's class set). ``SEQ`` is ``a`` then ``b``; ``ALT``/``AND`` keep their
operands sorted in ``kids[a : a + b]``; ``REP`` repeats ``a``; ``REF`` names
rule ``a``. Smart constructors flatten and sort alternations, re-associate
sequences to the right, let ``NOTHING`` absorb and ``EPS`` vanish, and intern
every node by content (``intern``, open addressing), so equal expressions
are one node.

*Memo.* One open-addressing map (``memo_keys``/``memo_vals``) holds every
memoized function, told apart by a tag in the key's top bits: derivatives by
class, sequence re-associations, clamped copies, node to state, and the
productivity of nodes with intersections. ``alike`` has a map of its own
because its values are class sets.

*Failing softly.* Compiled code cannot call back into Python, grow an array
the caller holds, or raise a useful error. So when something is missing a
function records a *status* in ``meta`` and returns 0, and every caller
unwinds without memoizing anything: a rule body not interned yet
(``NEED_RULE``, the rule in ``meta[M_ARG]``), an array or map out of room
(``FULL``), an expression nested too deeply (``TOO_DEEP``), a cap reached
(``TOO_MANY_STATES``, ``TOO_MANY_NODES``, ``SEARCH_LIMIT``). The Python side
fixes the cause (interns the rule, grows the store) or raises, and calls
again; everything memoized before the failure is still valid, so the retry
picks up where the failure happened.

*Threads.* The entry points release the GIL (``nogil``), like the token
walk: each store belongs to one automaton, and every call into it holds
that automaton's lock (:meth:`LazyDFA.call`), so masks of different
grammars are computed in parallel (see :mod:`structgen.bitmask`).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit
from numba.experimental import structref

from structgen.grammar import utf8

# Node kinds.
NOTHING, EPS, BYTES, SEQ, ALT, REP, REF, AND = range(8)
DEAD = 0
UNKNOWN = -1

# meta[] slots.
M_NODES, M_KIDS, M_STATES, M_STATUS, M_ARG, M_MEMO, M_ALIKE, M_MAX_STATES, M_MAX_NODES, M_KIDS_NEEDED = range(10)
# Statuses.
OK, NEED_RULE, FULL, TOO_DEEP, TOO_MANY_STATES, TOO_MANY_NODES, SEARCH_LIMIT = range(7)

# Memo tags (top bits of a key).
_T_DERIV, _T_SEQ, _T_CLAMP, _T_STATE, _T_LIVE = 1, 2, 3, 4, 5
_TAG = 1 << 58
# Deepest recursion allowed in compiled code (the C stack, not Python's).
MAX_DEPTH = 3000
# Nodes one search for a way through an intersection may visit.
MAX_SEARCH = 50_000
_FIRST_SEARCH = 64  # the first queue size of a search (see _prod)

_FIELDS = (
    ("meta", "i8"),
    ("kind", "i1"), ("a", "i8"), ("b", "i8"), ("lo", "i8"), ("hi", "i8"), ("nullable", "b1"), ("has_and", "b1"),
    ("first", "u8", 4), ("first_known", "b1"),
    ("kids", "i8"), ("intern", "i4"),
    ("memo_keys", "i8"), ("memo_vals", "i8"), ("alike_keys", "i8"), ("alike_vals", "u8", 4),
    ("rule_body", "i8"),
    ("node_of_state", "i8"), ("table", "i4", 256), ("complete", "b1"), ("loop_out", "u8", 4), ("loop_kind", "i1"),
    ("byte_class", "i8"), ("class_first_byte", "i8"),
)  # fmt: skip


@structref.register
class StoreType(numba.types.StructRef):
    """The numba type of a :class:`Store`. A struct reference, not a tuple:
    compiled calls pass it as one pointer, where a tuple of two dozen arrays
    costs hundreds of nanoseconds per call in copies and reference counts."""

    def preprocess_fields(self, fields):
        return tuple((name, numba.types.unliteral(t)) for name, t in fields)


class Store(structref.StructRefProxy):
    """The flat arrays of one automaton. Python reads them through
    :func:`python_view` only."""


@njit(cache=True)
def python_view(st):
    """The arrays Python reads: ``meta``, ``rule_body``, ``table``,
    ``complete``, ``nullable``, ``node_of_state``. Reading a field through
    the store is a compiled call, so these are kept, and read again after
    :func:`grow` (which replaces arrays)."""
    return st.meta, st.rule_body, st.table, st.complete, st.nullable, st.node_of_state


_FIELD_NAMES = [f[0] for f in _FIELDS]
structref.define_proxy(Store, StoreType, _FIELD_NAMES)
STORE_TYPE = StoreType(
    [(f[0], numba.from_dtype(np.dtype(f[1]))[:, ::1] if len(f) == 3 else numba.from_dtype(np.dtype(f[1]))[::1]) for f in _FIELDS]
)
_I64, _BOOL = numba.types.int64, numba.types.boolean
_WORDS = numba.types.uint64[::1]


def new_store(num_rules: int, byte_class: np.ndarray, class_first_byte, max_states: int, max_nodes: int) -> Store:
    """An empty store with nodes 0 (``NOTHING``) and 1 (``EPS``) and the dead
    state 0; arrays start small and double when a compiled call runs out of
    room (:func:`grow`)."""
    nodes, kids, memo, alike, states = 4096, 8192, 1 << 14, 1 << 12, 256
    size = {"meta": 16, "kids": kids, "intern": 2 * nodes, "memo_keys": memo, "memo_vals": memo,
            "alike_keys": alike, "alike_vals": alike, "rule_body": max(num_rules, 1), "node_of_state": states,
            "table": states, "complete": states, "loop_out": states, "loop_kind": states}  # fmt: skip
    fill = {"intern": -1, "memo_keys": -1, "alike_keys": -1, "rule_body": -1, "table": UNKNOWN}
    arrays = {}
    for name, dtype, *width in _FIELDS:
        arrays[name] = np.full((size.get(name, nodes), *width), fill.get(name, 0), dtype=dtype)
    arrays["byte_class"] = np.asarray(byte_class, dtype=np.int64)
    arrays["class_first_byte"] = np.asarray(class_first_byte, dtype=np.int64)
    st = _store_of(*(arrays[name] for name in _FIELD_NAMES))
    _init_store(st, max_states, max_nodes)
    return st


@njit(cache=True)
def _store_of(meta, kind, a, b, lo, hi, nullable, has_and, first, first_known, kids, intern, memo_keys, memo_vals,
              alike_keys, alike_vals, rule_body, node_of_state, table, complete, loop_out, loop_kind, byte_class,
              class_first_byte):  # fmt: skip
    """A store of these arrays (in the order of ``_FIELDS``), made in cached
    compiled code: ``Store(...)`` compiles its constructor again in every
    process, half a second of a process's first compile."""
    st = structref.new(STORE_TYPE)
    st.meta = meta
    st.kind = kind
    st.a = a
    st.b = b
    st.lo = lo
    st.hi = hi
    st.nullable = nullable
    st.has_and = has_and
    st.first = first
    st.first_known = first_known
    st.kids = kids
    st.intern = intern
    st.memo_keys = memo_keys
    st.memo_vals = memo_vals
    st.alike_keys = alike_keys
    st.alike_vals = alike_vals
    st.rule_body = rule_body
    st.node_of_state = node_of_state
    st.table = table
    st.complete = complete
    st.loop_out = loop_out
    st.loop_kind = loop_kind
    st.byte_class = byte_class
    st.class_first_byte = class_first_byte
    return st


@njit(cache=True)
def _init_store(st, max_states, max_nodes):
    meta = st.meta
    meta[M_MAX_STATES] = max_states
    meta[M_MAX_NODES] = max_nodes
    st.kind[0] = NOTHING
    st.kind[1] = EPS
    st.nullable[1] = True
    st.first_known[:2] = True
    meta[M_NODES] = 2
    rehash_intern(st, st.intern)
    state_for(st, 0)  # the dead state: node NOTHING, every transition to itself
    st.table[DEAD] = DEAD
    st.complete[DEAD] = True


@njit(cache=True)
def _doubled(a, fill):
    out = np.full(2 * len(a), fill, a.dtype)
    out[: len(a)] = a
    return out


@njit(cache=True)
def _doubled_rows(a, fill):
    out = np.full((2 * len(a), a.shape[1]), fill, a.dtype)
    out[: len(a)] = a
    return out


@njit(cache=True, nogil=True)
def grow(st):
    """Double every array of ``st`` that is at least 40% used (the operand
    list also until it holds the list that did not fit); False if none was."""
    meta = st.meta
    grew = False
    nodes = meta[M_NODES]
    if 5 * nodes >= 2 * len(st.kind) or 5 * nodes >= len(st.intern):
        st.kind = _doubled(st.kind, 0)
        st.a = _doubled(st.a, 0)
        st.b = _doubled(st.b, 0)
        st.lo = _doubled(st.lo, 0)
        st.hi = _doubled(st.hi, 0)
        st.nullable = _doubled(st.nullable, False)
        st.has_and = _doubled(st.has_and, False)
        st.first = _doubled_rows(st.first, 0)
        st.first_known = _doubled(st.first_known, False)
        slots = np.full(2 * len(st.kind), -1, np.int32)
        rehash_intern(st, slots)
        st.intern = slots
        grew = True
    while 5 * meta[M_KIDS] >= 2 * len(st.kids) or meta[M_KIDS_NEEDED] > len(st.kids):
        st.kids = _doubled(st.kids, 0)
        grew = True
    if 5 * meta[M_MEMO] >= len(st.memo_keys):
        size = 2 * len(st.memo_keys)
        keys, vals = np.full(size, -1, np.int64), np.zeros(size, np.int64)
        rehash_memo(st.memo_keys, st.memo_vals, keys, vals)
        st.memo_keys = keys
        st.memo_vals = vals
        grew = True
    if 5 * meta[M_ALIKE] >= len(st.alike_keys):
        size = 2 * len(st.alike_keys)
        keys, rows = np.full(size, -1, np.int64), np.zeros((size, 4), np.uint64)
        rehash_memo(st.alike_keys, st.alike_vals, keys, rows)
        st.alike_keys = keys
        st.alike_vals = rows
        grew = True
    if 5 * meta[M_STATES] >= 2 * len(st.node_of_state):
        st.node_of_state = _doubled(st.node_of_state, 0)
        st.complete = _doubled(st.complete, False)
        st.loop_out = _doubled_rows(st.loop_out, 0)
        st.loop_kind = _doubled(st.loop_kind, 0)
        st.table = _doubled_rows(st.table, UNKNOWN)
        grew = True
    return grew


# --------------------------------------------------------------------------- maps


@njit(cache=True, inline="always")
def _slot(key, mask):
    k = key * -49064778989728563  # 0xFF51AFD7ED558CCD
    k ^= k >> 29
    return k & mask


@njit(cache=True)
def memo_get(st, key):
    keys = st.memo_keys
    mask = len(keys) - 1
    i = _slot(key, mask)
    while True:
        k = keys[i]
        if k == key:
            return st.memo_vals[i]
        if k == -1:
            return -1
        i = (i + 1) & mask


@njit(cache=True)
def memo_put(st, key, value):
    """Remember ``key -> value`` unless a failure is being unwound (then the
    value may be wrong). A map past half full fails the call (``FULL``)."""
    if st.meta[M_STATUS] != OK:
        return
    keys = st.memo_keys
    if 2 * (st.meta[M_MEMO] + 1) > len(keys):
        st.meta[M_STATUS] = FULL
        return
    mask = len(keys) - 1
    i = _slot(key, mask)
    while keys[i] != -1 and keys[i] != key:
        i = (i + 1) & mask
    if keys[i] == -1:
        keys[i] = key
        st.meta[M_MEMO] += 1
    st.memo_vals[i] = value


@njit(cache=True)
def rehash_memo(keys, vals, new_keys, new_vals):
    mask = len(new_keys) - 1
    for j in range(len(keys)):
        k = keys[j]
        if k != -1:
            i = _slot(k, mask)
            while new_keys[i] != -1:
                i = (i + 1) & mask
            new_keys[i] = k
            new_vals[i] = vals[j]


@njit(cache=True)
def rehash_intern(st, slots):
    mask = len(slots) - 1
    for n in range(st.meta[M_NODES]):
        i = _node_hash(st, n) & mask
        while slots[i] != -1:
            i = (i + 1) & mask
        slots[i] = n


# --------------------------------------------------------------------------- nodes


@njit(cache=True)
def _content_hash(kind, a, b, lo, hi, w0, w1, w2, w3, kids, start, count):
    h = kind * 1000003 + a * 7919 + b * 104729 + lo * 15485863 + hi * 32452843
    h ^= w0 * 3 + w1 * 5 + w2 * 7 + w3 * 11
    for j in range(count):
        h = h * 31 + kids[start + j]
    return _slot(h, 0x7FFFFFFFFFFFFFFF)


@njit(cache=True)
def _node_hash(st, n):
    k = st.kind[n]
    if k == ALT or k == AND:
        return _content_hash(k, 0, 0, 0, 0, 0, 0, 0, 0, st.kids, st.a[n], st.b[n])
    if k == BYTES:
        f = st.first[n]
        return _content_hash(k, 0, 0, 0, 0, np.int64(f[0]), np.int64(f[1]), np.int64(f[2]), np.int64(f[3]), st.kids, 0, 0)
    return _content_hash(k, st.a[n], st.b[n], st.lo[n], st.hi[n], 0, 0, 0, 0, st.kids, 0, 0)


@njit(cache=True)
def _new_node(st, kind, a, b, lo, hi, nullable, has_and):
    n = st.meta[M_NODES]
    if n >= st.meta[M_MAX_NODES]:
        st.meta[M_STATUS] = TOO_MANY_NODES
        return -1
    if n >= len(st.kind) or 2 * (n + 1) > len(st.intern):
        st.meta[M_STATUS] = FULL
        return -1
    st.kind[n] = kind
    st.a[n] = a
    st.b[n] = b
    st.lo[n] = lo
    st.hi[n] = hi
    st.nullable[n] = nullable
    st.has_and[n] = has_and
    st.first_known[n] = False
    st.meta[M_NODES] = n + 1
    return n


@njit(cache=True)
def _mk(st, kind, a, b, lo, hi, nullable, has_and):
    """The node for a ``SEQ``, ``REP`` or ``REF`` (interned)."""
    if st.meta[M_STATUS] != OK:
        return 0
    slots = st.intern
    mask = len(slots) - 1
    i = _content_hash(kind, a, b, lo, hi, 0, 0, 0, 0, st.kids, 0, 0) & mask
    while slots[i] != -1:
        n = slots[i]
        if st.kind[n] == kind and st.a[n] == a and st.b[n] == b and st.lo[n] == lo and st.hi[n] == hi:
            return n
        i = (i + 1) & mask
    n = _new_node(st, kind, a, b, lo, hi, nullable, has_and)
    if n >= 0:
        slots[i] = n
    return max(n, 0)


@njit(cache=True)
def make_bytes(st, w0, w1, w2, w3):
    """The node matching one byte of the classes in the set ``w0..w3``."""
    if st.meta[M_STATUS] != OK:
        return 0
    if w0 == 0 and w1 == 0 and w2 == 0 and w3 == 0:
        return 0
    slots = st.intern
    mask = len(slots) - 1
    i = _content_hash(BYTES, 0, 0, 0, 0, np.int64(w0), np.int64(w1), np.int64(w2), np.int64(w3), st.kids, 0, 0) & mask
    while slots[i] != -1:
        n = slots[i]
        f = st.first[n]
        if st.kind[n] == BYTES and f[0] == w0 and f[1] == w1 and f[2] == w2 and f[3] == w3:
            return n
        i = (i + 1) & mask
    n = _new_node(st, BYTES, 0, 0, 0, 0, False, False)
    if n < 0:
        return 0
    st.first[n, 0] = w0
    st.first[n, 1] = w1
    st.first[n, 2] = w2
    st.first[n, 3] = w3
    st.first_known[n] = True
    slots[i] = n
    return n


@njit(cache=True)
def _mk_list(st, kind, buf, count):
    """The ``ALT``/``AND`` node of the sorted, distinct nodes ``buf[:count]``."""
    if st.meta[M_STATUS] != OK:
        return 0
    slots = st.intern
    mask = len(slots) - 1
    i = _content_hash(kind, 0, 0, 0, 0, 0, 0, 0, 0, buf, 0, count) & mask
    while slots[i] != -1:
        n = slots[i]
        if st.kind[n] == kind and st.b[n] == count:
            start = st.a[n]
            same = True
            for j in range(count):
                if st.kids[start + j] != buf[j]:
                    same = False
                    break
            if same:
                return n
        i = (i + 1) & mask
    start = st.meta[M_KIDS]
    if start + count > len(st.kids):
        st.meta[M_STATUS] = FULL
        st.meta[M_KIDS_NEEDED] = start + count
        return 0
    nullable = kind == AND
    has_and = kind == AND
    for j in range(count):
        x = buf[j]
        st.kids[start + j] = x
        if kind == ALT:
            nullable = nullable or st.nullable[x]
            has_and = has_and or st.has_and[x]
        else:
            nullable = nullable and st.nullable[x]
    n = _new_node(st, kind, start, count, 0, 0, nullable, has_and)
    if n < 0:
        return 0
    st.meta[M_KIDS] = start + count
    slots[i] = n
    return n


@njit(cache=True)
def _sorted_unique(buf, count):
    """Sort ``buf[:count]`` in place and drop repeats; returns the new
    count. Most lists are short (insertion sort); a big enum is not."""
    if count > 32:
        buf[:count].sort()
    for i in range(1, count):
        x = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > x:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = x
    out = 0
    for i in range(count):
        if out == 0 or buf[out - 1] != buf[i]:
            buf[out] = buf[i]
            out += 1
    return out


@njit(cache=True)
def _operands(st, kind, items, count):
    """``items[:count]`` with nested ``kind`` nodes spliced in, ``NOTHING``
    dropped, sorted and distinct: ``(buffer, count)``."""
    total = 0
    for j in range(count):
        o = items[j]
        total += st.b[o] if st.kind[o] == kind else 1
    buf = np.empty(max(total, 1), np.int64)
    k = 0
    for j in range(count):
        o = items[j]
        if o == 0:
            continue
        if st.kind[o] == kind:
            for i in range(st.a[o], st.a[o] + st.b[o]):
                buf[k] = st.kids[i]
                k += 1
        else:
            buf[k] = o
            k += 1
    return buf, _sorted_unique(buf, k)


@njit(cache=True)
def make_alt(st, options, count):
    """Alternation of ``options[:count]``: nested alternations flattened,
    ``NOTHING`` dropped, operands sorted and distinct."""
    buf, k = _operands(st, ALT, options, count)
    if k == 0:
        return 0
    if k == 1:
        return buf[0]
    return _mk_list(st, ALT, buf, k)


@njit(cache=True)
def make_and(st, parts, count):
    """Intersection of ``parts[:count]`` (``NOTHING`` if any part is)."""
    for j in range(count):
        if parts[j] == 0:
            return 0
    buf, k = _operands(st, AND, parts, count)
    if k == 1:
        return buf[0]
    return _mk_list(st, AND, buf, k)


@njit(cache=True)
def _alt2(st, x, y):
    if x == 0:
        return y
    if y == 0 or x == y:
        return x
    pair = np.empty(2, np.int64)
    pair[0] = x
    pair[1] = y
    return make_alt(st, pair, 2)


@njit(_I64(STORE_TYPE, _I64, _I64), cache=True)
def make_seq(st, x, y):
    if x == 0 or y == 0:
        return 0
    if x == 1:
        return y
    if y == 1:
        return x
    if st.kind[x] == SEQ:  # re-associate to the right, remembered: chains recur in every derivative
        key = _T_SEQ * _TAG + (np.int64(x) << 29) + y
        r = memo_get(st, key)
        if r >= 0:
            return r
        r = make_seq(st, st.a[x], make_seq(st, st.b[x], np.int64(y)))
        memo_put(st, key, r)
        return r
    return _mk(st, SEQ, x, y, 0, 0, st.nullable[x] and st.nullable[y], st.has_and[x] or st.has_and[y])


@njit(cache=True)
def make_rep(st, e, lo, hi):
    """``e`` repeated ``lo`` to ``hi`` times (``hi`` -1: unbounded)."""
    if hi == 0 or e == 1:
        return 1
    if e == 0:
        return 1 if lo == 0 else 0
    if lo == 1 and hi == 1:
        return e
    return _mk(st, REP, e, 0, lo, hi, lo == 0 or st.nullable[e], st.has_and[e])


@njit(cache=True)
def make_ref(st, rule, nullable, has_and):
    return _mk(st, REF, rule, 0, 0, 0, nullable, has_and)


# --------------------------------------------------------------------------- first sets


@njit(cache=True)
def _body(st, n):
    """The body of the rule ``REF`` node ``n`` refers to; -1 (and
    ``NEED_RULE``) if it is not interned yet."""
    body = st.rule_body[st.a[n]]
    if body < 0:
        st.meta[M_STATUS] = NEED_RULE
        st.meta[M_ARG] = st.a[n]
    return body


@njit(_BOOL(STORE_TYPE, _I64, _I64), cache=True)
def ensure_first(st, n, depth):
    """Compute the first set of ``n`` (``first[n]``); False on failure.
    Only leading positions are visited, which cannot cycle because left
    recursion is rejected when the grammar is loaded."""
    if st.first_known[n]:
        return True
    if depth > MAX_DEPTH:
        st.meta[M_STATUS] = TOO_DEEP
        return False
    k = st.kind[n]
    f = st.first[n]
    f[:] = 0
    if k == SEQ:
        h = st.a[n]
        if not ensure_first(st, h, depth + 1):
            return False
        f |= st.first[h]
        if st.nullable[h]:
            t = st.b[n]
            if not ensure_first(st, t, depth + 1):
                return False
            f |= st.first[t]
    elif k == ALT:
        for i in range(st.a[n], st.a[n] + st.b[n]):
            x = st.kids[i]
            if not ensure_first(st, x, depth + 1):
                return False
            f |= st.first[x]
    elif k == AND:
        f[:] = np.uint64(0xFFFFFFFFFFFFFFFF)
        for i in range(st.a[n], st.a[n] + st.b[n]):
            x = st.kids[i]
            if not ensure_first(st, x, depth + 1):
                return False
            f &= st.first[x]
    elif k == REP:
        e = st.a[n]
        if not ensure_first(st, e, depth + 1):
            return False
        f |= st.first[e]
    elif k == REF:
        body = _body(st, n)
        if body < 0 or not ensure_first(st, body, depth + 1):
            return False
        f |= st.first[body]
    st.first_known[n] = True
    return True


@njit(cache=True, inline="always")
def _has(words, c):
    return (words[c >> 6] >> np.uint64(c & 63)) & np.uint64(1)


@njit(_BOOL(STORE_TYPE, _I64, _I64, _WORDS, _I64), cache=True)
def _alike(st, n, c, out, depth):
    """Intersect ``out`` with the classes that every leading byte set of
    ``n`` treats like ``c``: their derivatives of ``n`` equal the one by
    ``c``, because a derivative reads the class only there. Memoized per
    (node, class); False on failure."""
    if depth > MAX_DEPTH:
        st.meta[M_STATUS] = TOO_DEEP
        return False
    k = st.kind[n]
    if k == NOTHING or k == EPS:
        return True
    if k == BYTES:
        f = st.first[n]
        if _has(f, c):
            out &= f
        else:
            out &= ~f
        return True
    key = np.int64(n) * 256 + c
    keys = st.alike_keys
    mask = len(keys) - 1
    i = _slot(key, mask)
    while keys[i] != -1:
        if keys[i] == key:
            out &= st.alike_vals[i]
            return True
        i = (i + 1) & mask
    acc = np.full(4, np.uint64(0xFFFFFFFFFFFFFFFF))
    if k == SEQ:
        h = st.a[n]
        if not _alike(st, h, c, acc, depth + 1):
            return False
        if st.nullable[h] and not _alike(st, st.b[n], c, acc, depth + 1):
            return False
    elif k == ALT or k == AND:
        for j in range(st.a[n], st.a[n] + st.b[n]):
            if not _alike(st, st.kids[j], c, acc, depth + 1):
                return False
    elif k == REP:
        if not _alike(st, st.a[n], c, acc, depth + 1):
            return False
    elif k == REF:
        body = _body(st, n)
        if body < 0 or not _alike(st, body, c, acc, depth + 1):
            return False
    out &= acc
    if 2 * (st.meta[M_ALIKE] + 1) > len(keys):
        st.meta[M_STATUS] = FULL
        return False
    keys[i] = key
    st.alike_vals[i] = acc
    st.meta[M_ALIKE] += 1
    return True


# --------------------------------------------------------------------------- derivatives


@njit(_I64(STORE_TYPE, _I64, _I64, _I64), cache=True)
def deriv(st, n, c, depth):
    """The derivative of node ``n`` by byte class ``c`` (0 on failure)."""
    if st.meta[M_STATUS] != OK:
        return 0
    if depth > MAX_DEPTH:
        st.meta[M_STATUS] = TOO_DEEP
        return 0
    if not ensure_first(st, n, depth) or not _has(st.first[n], c):
        return 0
    key = _T_DERIV * _TAG + np.int64(n) * 256 + c
    r = memo_get(st, key)
    if r >= 0:
        return r
    k = st.kind[n]
    r = 0
    if k == BYTES:
        r = 1
    elif k == SEQ:
        h = st.a[n]
        r = make_seq(st, deriv(st, h, c, depth + 1), st.b[n])
        if st.nullable[h]:
            r = _alt2(st, r, deriv(st, st.b[n], c, depth + 1))
    elif k == ALT:
        count = st.b[n]
        buf = np.empty(count, np.int64)
        m = 0
        for j in range(st.a[n], st.a[n] + count):
            x = st.kids[j]
            if _has(st.first[x], c):  # first sets of operands are known: the ALT's was built from them
                buf[m] = deriv(st, x, c, depth + 1)
                m += 1
        r = make_alt(st, buf, m)
    elif k == REP:
        e = st.a[n]
        lo = st.lo[n]
        hi = st.hi[n]
        r = make_seq(st, deriv(st, e, c, depth + 1), make_rep(st, e, max(lo - 1, 0), -1 if hi < 0 else hi - 1))
    elif k == AND:
        count = st.b[n]
        buf = np.empty(count, np.int64)
        for j in range(count):
            buf[j] = deriv(st, st.kids[st.a[n] + j], c, depth + 1)
        r = make_and(st, buf, count)
    elif k == REF:
        body = _body(st, n)
        if body >= 0:
            r = deriv(st, body, c, depth + 1)
    if st.meta[M_STATUS] != OK:
        return 0
    memo_put(st, key, r)
    return r


# --------------------------------------------------------------------------- productivity


@njit(cache=True)
def _set_of(items, count, size):
    """An open-addressing set (``size`` slots, a power of two) of the first
    ``count`` distinct ``items``."""
    keys = np.full(size, -1, np.int64)
    mask = size - 1
    for j in range(count):
        i = _slot(items[j], mask)
        while keys[i] != -1:
            i = (i + 1) & mask
        keys[i] = items[j]
    return keys


@njit(_I64(STORE_TYPE, _I64, numba.types.int32[::1], _I64, _I64), cache=True)
def _prod(st, n, expanding, n_expanding, depth):
    """Can ``n`` reach acceptance, with the rules in ``expanding`` assumed
    unproductive (a rule only counts through a way out of its own
    recursion)? Only results that do not depend on that assumption are
    memoized as false. Returns 1, 0, or -1 on failure.

    Decided structurally; only an intersection needs a search: breadth first
    over its derivatives, for an accepting node or one that is productive by
    the structural rule (typically the string's product is finished and only
    the rest of the document is left)."""
    if not st.has_and[n]:
        return 1 if n != 0 else 0
    if depth > MAX_DEPTH:
        st.meta[M_STATUS] = TOO_DEEP
        return -1
    key = _T_LIVE * _TAG + n
    got = memo_get(st, key)
    if got >= 0:
        return got
    k = st.kind[n]
    live = 0
    if k == SEQ:
        live = _prod(st, st.a[n], expanding, n_expanding, depth + 1)
        if live == 1:
            live = _prod(st, st.b[n], expanding, n_expanding, depth + 1)
    elif k == ALT:
        for j in range(st.a[n], st.a[n] + st.b[n]):
            live = _prod(st, st.kids[j], expanding, n_expanding, depth + 1)
            if live != 0:
                break
    elif k == REP:
        live = 1 if st.lo[n] == 0 else _prod(st, st.a[n], expanding, n_expanding, depth + 1)
    elif k == REF:
        rule = st.a[n]
        seen = False
        for j in range(n_expanding):
            if expanding[j] == rule:
                seen = True
        if not seen:
            body = _body(st, n)
            if body < 0:
                return -1
            if n_expanding >= len(expanding):
                st.meta[M_STATUS] = TOO_DEEP
                return -1
            expanding[n_expanding] = rule
            live = _prod(st, body, expanding, n_expanding + 1, depth + 1)
    else:  # AND: search
        nc = len(st.class_first_byte)
        # Most searches end within a few nodes: the buffers start small
        # (a fixed 50,000-node queue and its set cost a megabyte of writes
        # per search, more than the search itself) and double as needed.
        queue = np.empty(_FIRST_SEARCH, np.int64)
        seen_keys = np.full(2 * _FIRST_SEARCH, -1, np.int64)
        mask = len(seen_keys) - 1
        queue[0] = n
        seen_keys[_slot(np.int64(n), mask)] = n
        head = 0
        tail = 1
        fresh = np.empty(256, np.int32)
        while head < tail and live == 0:
            x = queue[head]
            head += 1
            if st.nullable[x]:
                live = 1
                break
            if st.kind[x] != AND:
                live = _prod(st, x, fresh, np.int64(0), depth + 1)
                if live != 0:
                    break
            if not ensure_first(st, x, 0):
                return -1
            for c in range(nc):
                if not _has(st.first[x], c):
                    continue
                d = deriv(st, x, c, 0)
                if st.meta[M_STATUS] != OK:
                    return -1
                if d == 0:
                    continue
                if st.nullable[d] or not st.has_and[d]:  # decided now: no need to queue it
                    live = 1
                    break
                i = _slot(np.int64(d), mask)
                while seen_keys[i] != -1 and seen_keys[i] != d:
                    i = (i + 1) & mask
                if seen_keys[i] == d:
                    continue
                if tail >= MAX_SEARCH:
                    st.meta[M_STATUS] = SEARCH_LIMIT
                    return -1
                if tail == len(queue):
                    queue = _doubled(queue, 0)
                queue[tail] = d
                tail += 1
                if 2 * tail > len(seen_keys):
                    seen_keys = _set_of(queue, tail, 2 * len(seen_keys))
                    mask = len(seen_keys) - 1
                else:
                    seen_keys[i] = d
    if live < 0 or st.meta[M_STATUS] != OK:
        return -1
    if live == 1 or n_expanding == 0:
        memo_put(st, key, live)
    return live


@njit(cache=True)
def live_or_nothing(st, n):
    """``n``, or ``NOTHING`` when an intersection in it leaves no way to
    reach acceptance (see the construction notes of ``LazyDFA``)."""
    if not st.has_and[n]:
        return n
    return n if _prod(st, n, np.empty(256, np.int32), 0, 0) == 1 else 0


# --------------------------------------------------------------------------- states


@njit(cache=True)
def state_for(st, node):
    """The DFA state of ``node``, made if new (-1 on failure)."""
    if st.meta[M_STATUS] != OK:
        return -1
    key = _T_STATE * _TAG + node
    s = memo_get(st, key)
    if s >= 0:
        return s
    s = st.meta[M_STATES]
    if s >= st.meta[M_MAX_STATES]:
        st.meta[M_STATUS] = TOO_MANY_STATES
        return -1
    if s >= len(st.node_of_state):
        st.meta[M_STATUS] = FULL
        return -1
    memo_put(st, key, s)
    if st.meta[M_STATUS] != OK:
        return -1
    st.node_of_state[s] = node
    st.meta[M_STATES] = s + 1
    return s


@njit(cache=True, nogil=True)
def fill_class(st, state, c):
    """Derive ``state`` by class ``c`` and write the target for every byte
    of the classes the state treats alike (the bytes outside its first set
    are written ``DEAD`` in one go). The target, or -1 on failure."""
    node = st.node_of_state[state]
    if not ensure_first(st, node, 0):
        return -1
    first = st.first[node]
    same = np.empty(4, np.uint64)
    if _has(first, c):
        same[:] = first
        if not _alike(st, node, c, same, 0):
            return -1
        rep = 0
        while not _has(same, rep):
            rep += 1
        d = live_or_nothing(st, deriv(st, node, rep, 0))
        target = state_for(st, d)
        if target < 0:
            return -1
    else:
        same[:] = ~first
        target = DEAD
    row = st.table[state]
    for byte in range(256):
        if _has(same, st.byte_class[byte]):
            row[byte] = target
    return target


@njit(cache=True, nogil=True)
def complete_row(st, state):
    """Fill every unknown transition of ``state``; False on failure."""
    if st.complete[state]:
        return True
    row = st.table[state]
    for c in range(len(st.class_first_byte)):
        if row[st.class_first_byte[c]] == UNKNOWN and fill_class(st, state, c) < 0:
            return False
    st.complete[state] = True
    return True


# --------------------------------------------------------------------------- clamping


@njit(_I64(STORE_TYPE, _I64, _I64, _I64), cache=True)
def _clamp(st, n, horizon, depth):
    """``n`` with every repeat bound beyond ``horizon`` clamped (see
    ``LazyDFA.mask_equivalent``); 0 on failure."""
    k = st.kind[n]
    if k != SEQ and k != ALT and k != REP:
        return n
    if depth > MAX_DEPTH:
        st.meta[M_STATUS] = TOO_DEEP
        return 0
    key = _T_CLAMP * _TAG + (np.int64(n) << 16) + horizon
    r = memo_get(st, key)
    if r >= 0:
        return r
    if k == SEQ:
        r = make_seq(st, _clamp(st, st.a[n], horizon, depth + 1), _clamp(st, st.b[n], horizon, depth + 1))
    elif k == ALT:
        count = st.b[n]
        buf = np.empty(count, np.int64)
        for j in range(count):
            buf[j] = _clamp(st, st.kids[st.a[n] + j], horizon, depth + 1)
        r = make_alt(st, buf, count)
    else:
        e = st.a[n]
        lo = 0 if st.nullable[e] else min(st.lo[n], horizon)
        hi = st.hi[n]
        r = make_rep(st, e, lo, -1 if hi < 0 or hi > horizon else hi)
    if st.meta[M_STATUS] != OK:
        return 0
    memo_put(st, key, r)
    return r


@njit(cache=True, nogil=True)
def mask_equivalent(st, state, horizon):
    node = _clamp(st, st.node_of_state[state], horizon, 0)
    if st.meta[M_STATUS] != OK:
        return -1
    return state_for(st, node)


# --------------------------------------------------------------------------- loops


def _utf8_sequences():
    """Every well-formed multi-byte UTF-8 character, as byte-range sequences
    (``lo``/``hi`` per position, and the length), for the loop test."""
    seqs = utf8.multibyte_sequences()
    lo = np.zeros((len(seqs), 4), dtype=np.int64)
    hi = np.zeros((len(seqs), 4), dtype=np.int64)
    for i, seq in enumerate(seqs):
        for j, (a, b) in enumerate(seq):
            lo[i, j], hi[i, j] = a, b
    return lo, hi, np.array([len(seq) for seq in seqs], dtype=np.int64)


# Read by compiled code as constants.
_UTF8_LO, _UTF8_HI, _UTF8_LEN = _utf8_sequences()


@njit(cache=True)
def _utf8_loops(st, state):
    """Does every well-formed multi-byte UTF-8 character lead from ``state``
    back to ``state``? (-1 on failure.) Sequence ``i`` of ``_UTF8_*`` has
    ``_UTF8_LEN[i]`` positions, position ``j`` bytes ``_UTF8_LO[i, j]..
    _UTF8_HI[i, j]``; the frontier of states in between is kept to at most 8."""
    seq_lo, seq_hi, seq_len = _UTF8_LO, _UTF8_HI, _UTF8_LEN
    frontier = np.empty(8, np.int64)
    nxt = np.empty(8, np.int64)
    for i in range(len(seq_len)):
        frontier[0] = state
        size = 1
        for j in range(seq_len[i]):
            m = 0
            for f in range(size):
                s = frontier[f]
                if not complete_row(st, s):
                    return -1
                row = st.table[s]
                for byte in range(seq_lo[i, j], seq_hi[i, j] + 1):
                    t = row[byte]
                    if t == DEAD:
                        return 0
                    known = False
                    for x in range(m):
                        if nxt[x] == t:
                            known = True
                            break
                    if not known:
                        if m == 8:
                            return 0
                        nxt[m] = t
                        m += 1
            frontier[:m] = nxt[:m]
            size = m
        if size != 1 or frontier[0] != state:
            return 0
    return 1


@njit(cache=True)
def ensure_loops(st, state):
    """Record which bytes loop on ``state`` (``loop_out``: the bytes that do
    not, four words; ``loop_kind`` 1: as listed, 2: high bytes loop as whole
    UTF-8 characters). False on failure."""
    if st.loop_kind[state] != 0:
        return True
    if not complete_row(st, state):
        return False
    row = st.table[state]
    high_loops = False
    for byte in range(0x80, 256):
        if row[byte] == state:
            high_loops = True
    chars_loop = 0
    if not high_loops:
        chars_loop = _utf8_loops(st, state)
        if chars_loop < 0:
            return False
    out = st.loop_out[state]
    out[:] = 0
    for byte in range(256):
        if row[byte] != state and not (chars_loop == 1 and byte >= 0x80):
            out[byte >> 6] |= np.uint64(1) << np.uint64(byte & 63)
    st.loop_kind[state] = 2 if chars_loop == 1 else 1
    return True


@njit(cache=True, nogil=True)
def loop_facts(st, state):
    """``loop_kind`` and a copy of ``loop_out`` of ``state``, for Python,
    after :func:`ensure_loops` (kind 0 on failure)."""
    if not ensure_loops(st, state):
        return 0, np.zeros(4, np.uint64)
    return st.loop_kind[state], st.loop_out[state].copy()


# --------------------------------------------------------------------------- IR


EXISTING = -1  # an op of intern_ops standing for a node interned before


@njit(cache=True, nogil=True)
def intern_ops(st, code, words, out):
    """Intern a flattened IR expression (``LazyDFA._flatten``): ops in
    post-order, operands before their users, op ``i`` becoming node
    ``out[i]``. Each op is its kind and then its fields, all in ``code``:
    ``EXISTING node``, ``BYTES row`` (the class set ``words[row]``), ``SEQ``,
    ``ALT`` or ``AND`` ``count op...``, ``REP op lo hi`` (``hi`` -1:
    unbounded), ``REF rule nullable has_and``, ``EPS``, ``NOTHING``. One
    array instead of one per field: the per-rule cost was mostly in building
    and passing arrays. False on failure."""
    pos = 0
    i = 0
    while pos < len(code):
        k = code[pos]
        if k == EXISTING:
            n = code[pos + 1]
            pos += 2
        elif k == NOTHING:
            n = 0
            pos += 1
        elif k == EPS:
            n = 1
            pos += 1
        elif k == BYTES:
            w = code[pos + 1]
            n = make_bytes(st, words[w, 0], words[w, 1], words[w, 2], words[w, 3])
            pos += 2
        elif k == REP:
            n = make_rep(st, out[code[pos + 1]], code[pos + 2], code[pos + 3])
            pos += 4
        elif k == REF:
            n = make_ref(st, code[pos + 1], code[pos + 2] == 1, code[pos + 3] == 1)
            pos += 4
        else:
            count = code[pos + 1]
            first = pos + 2
            if k == SEQ:
                n = 1
                for j in range(first + count - 1, first - 1, -1):
                    n = make_seq(st, out[code[j]], n)
            else:
                buf = np.empty(count, np.int64)
                for j in range(count):
                    buf[j] = out[code[first + j]]
                n = make_alt(st, buf, count) if k == ALT else make_and(st, buf, count)
            pos = first + count
        if st.meta[M_STATUS] != OK:
            return False
        out[i] = n
        i += 1
    return True


@njit(cache=True, nogil=True)
def start_state(st, node):
    return state_for(st, live_or_nothing(st, node))
