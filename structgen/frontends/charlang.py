"""Character-level regular languages: the algebra behind JSON Schema string keywords.

A JSON Schema can put several constraints on one string at once (``pattern``,
``minLength``/``maxLength``, ``format``, ``propertyNames``, "not one of the
declared property names", "matches this ``patternProperties`` pattern but not
that one"). The grammar IR has no intersection or complement, so this module
combines such constraints *before* they become IR.

Constraints are written at the level of decoded characters, as IR expressions
whose leaves are ``("cset", ranges)`` (one character from the code point
ranges) instead of byte sets; :func:`cset`, :func:`text` and the IR
constructors build them, and :func:`structgen.frontends.regex.regex_to_expr`
produces them when given ``encode_chars=cset``. Working on characters keeps
automata small (a JSON escape such as ``\\u00e9`` is one character here, six
bytes later) and makes length counting exact.

:func:`combine` takes component languages (expressions, or :class:`Component`
objects such as divisibility checkers) and a boolean formula over them, and
builds the product DFA eagerly by Brzozowski derivatives, trims every state
that cannot reach acceptance, and turns the result back into an IR expression
with a caller-supplied character encoder (JSON string escapes, or plain UTF-8).
Acyclic parts become nested expressions, self-loops become ``rep``, and other
cycles become right-linear rules (every reference follows a consumed character,
so there is no left recursion). The construction is capped
(:class:`TooLarge`); callers turn that into a schema error.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable, Sequence

from structgen.grammar import ir, utf8
from structgen.grammar.graph import merge_ranges, strongly_connected_components

Expr = tuple
Ranges = tuple  # ((lo, hi), ...) sorted, merged, inclusive

MAX_CP = utf8.MAX_CODE_POINT
#: Every Unicode scalar value (surrogates cannot occur in decoded text we produce).
ANY_RANGES: Ranges = ((0, 0xD7FF), (0xE000, MAX_CP))

CSET = "cset"
#: ``("dfa", DFA, state)``: the language of a trimmed :class:`DFA` from ``state``.
DFA_LEAF = "dfa"


class TooLarge(Exception):
    """The product automaton exceeded its state cap."""


# --------------------------------------------------------------------------- building


def intersect_ranges(a: Ranges, b: Ranges) -> Ranges:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def subtract_ranges(a: Ranges, b: Ranges) -> Ranges:
    return intersect_ranges(a, merge_ranges(utf8.complement(list(b))))


def cset(ranges) -> Expr:
    """One character from the code point ranges (surrogates removed)."""
    r = merge_ranges(utf8.remove_surrogates(list(merge_ranges(ranges))))
    if not r:
        return ir.NOTHING
    return (CSET, r)


ANY_CHAR: Expr = cset(ANY_RANGES)
ANY_STRING: Expr = ir.rep(ANY_CHAR, 0, None)


def char(c: str) -> Expr:
    return cset([(ord(c), ord(c))])


def text(s: str) -> Expr:
    """The exact string ``s``."""
    return ir.seq(*(char(c) for c in s))


def length(lo: int = 0, hi: int | None = None) -> Expr:
    """Any string of ``lo`` to ``hi`` characters."""
    return ir.rep(ANY_CHAR, lo, hi)


# --------------------------------------------------------------------------- analysis


def nullable(e: Expr) -> bool:
    k = e[0]
    if k == "eps":
        return True
    if k in ("nothing", CSET):
        return False
    if k == DFA_LEAF:
        return e[1].accept[e[2]]
    if k == "seq":
        return all(nullable(x) for x in e[1])
    if k == "alt":
        return any(nullable(x) for x in e[1])
    if k == "rep":
        return e[2] == 0 or nullable(e[1])
    raise ValueError(f"not a character-level expression: {k!r}")


def length_bounds(e: Expr) -> tuple[int, int | None] | None:
    """(shortest, longest) string length of ``e``; longest None: unbounded.
    None when the language is empty."""
    k = e[0]
    if k == "eps":
        return (0, 0)
    if k == "nothing":
        return None
    if k == CSET:
        return (1, 1)
    if k == DFA_LEAF:
        return dfa_length_bounds(e[1], e[2])
    if k == "seq":
        lo, hi = 0, 0
        for x in e[1]:
            b = length_bounds(x)
            if b is None:
                return None
            lo += b[0]
            hi = None if hi is None or b[1] is None else hi + b[1]
        return (lo, hi)
    if k == "alt":
        bs = [b for b in (length_bounds(x) for x in e[1]) if b is not None]
        if not bs:
            return None
        return (min(b[0] for b in bs), None if any(b[1] is None for b in bs) else max(b[1] for b in bs))
    if k == "rep":
        b = length_bounds(e[1])
        if b is None:
            return (0, 0) if e[2] == 0 else None
        if b == (0, 0):
            return (0, 0)
        lo = b[0] * e[2]
        hi = None if e[3] is None or b[1] is None else b[1] * e[3]
        return (lo, hi)
    raise ValueError(k)


def finite_strings(e: Expr, limit: int = 64) -> list[str] | None:
    """All strings of ``e`` if there are at most ``limit`` of them, else None."""
    k = e[0]
    if k == "eps":
        return [""]
    if k == "nothing":
        return []
    if k == DFA_LEAF:
        return None
    if k == CSET:
        n = sum(hi - lo + 1 for lo, hi in e[1])
        if n > limit:
            return None
        return [chr(c) for lo, hi in e[1] for c in range(lo, hi + 1)]
    if k == "seq":
        acc = [""]
        for x in e[1]:
            part = finite_strings(x, limit)
            if part is None:
                return None
            acc = [a + b for a in acc for b in part]
            if len(acc) > limit:
                return None
        return acc
    if k == "alt":
        out: list[str] = []
        for x in e[1]:
            part = finite_strings(x, limit)
            if part is None:
                return None
            out.extend(part)
        out = list(dict.fromkeys(out))
        return out if len(out) <= limit else None
    if k == "rep":
        if e[3] is None:
            inner = finite_strings(e[1], limit)
            if inner == [""] or inner == []:
                return [""] if inner == [""] or e[2] == 0 else []
            return None
        acc = {""}
        result = set()
        part = finite_strings(e[1], limit)
        if part is None:
            return None
        for i in range(e[3] + 1):
            if i >= e[2]:
                result |= acc
            if i == e[3]:
                break
            acc = {a + b for a in acc for b in part}
            if len(acc) > limit or len(result) > limit:
                return None
        out = sorted(result)
        return out if len(out) <= limit else None
    raise ValueError(k)


# --------------------------------------------------------------------------- derivatives


def _alt(options) -> Expr:
    """Alternation with a canonical (sorted, deduplicated) order, so that
    derivatives reach finitely many distinct states."""
    flat = set()
    for o in options:
        if o[0] == "alt":
            flat.update(o[1])
        elif o[0] != "nothing":
            flat.add(o)
    if not flat:
        return ir.NOTHING
    if len(flat) == 1:
        return next(iter(flat))
    return ("alt", tuple(sorted(flat, key=hash)))


class _Deriv:
    """Derivatives, nullability and first-character cuts of character
    expressions, memoised by node identity: a key by value hashes the whole
    subtree at every lookup, and derivatives share their nodes, so identity
    finds them. Each entry holds its node, so that its id stays its own."""

    def __init__(self) -> None:
        self.memo: dict[tuple[int, int], tuple[Expr, Expr]] = {}
        self.null: dict[int, tuple[Expr, bool]] = {}
        self.cut_memo: dict[int, tuple[Expr, frozenset]] = {}

    def nullable(self, e: Expr) -> bool:
        hit = self.null.get(id(e))
        if hit is None:
            hit = self.null[id(e)] = (e, nullable(e))
        return hit[1]

    def __call__(self, e: Expr, c: int) -> Expr:
        key = (id(e), c)
        hit = self.memo.get(key)
        if hit is None:
            hit = self.memo[key] = (e, self._d(e, c))
        return hit[1]

    def cuts(self, e: Expr) -> frozenset:
        """Range boundaries of the characters that can start ``e``."""
        hit = self.cut_memo.get(id(e))
        if hit is None:
            k = e[0]
            out: set = set()
            if k == CSET:
                for lo, hi in e[1]:
                    out.add(lo)
                    out.add(hi + 1)
            elif k == DFA_LEAF:
                for ranges, _ in e[1].trans[e[2]]:
                    for lo, hi in ranges:
                        out.add(lo)
                        out.add(hi + 1)
            elif k == "seq":
                for x in e[1]:
                    out |= self.cuts(x)
                    if not self.nullable(x):
                        break
            elif k == "alt":
                for x in e[1]:
                    out |= self.cuts(x)
            elif k == "rep":
                out = self.cuts(e[1])
            hit = self.cut_memo[id(e)] = (e, frozenset(out))
        return hit[1]

    def _d(self, e: Expr, c: int) -> Expr:
        k = e[0]
        if k in ("eps", "nothing"):
            return ir.NOTHING
        if k == CSET:
            r = e[1]
            i = bisect.bisect_right(r, (c, MAX_CP + 1)) - 1
            return ir.EPS if i >= 0 and r[i][0] <= c <= r[i][1] else ir.NOTHING
        if k == DFA_LEAF:
            dfa, st = e[1], e[2]
            for ranges, t in dfa.trans[st]:
                i = bisect.bisect_right(ranges, (c, MAX_CP + 1)) - 1
                if i >= 0 and ranges[i][0] <= c <= ranges[i][1]:
                    return (DFA_LEAF, dfa, t)
            return ir.NOTHING
        if k == "seq":
            parts = e[1]
            options = []
            for i, x in enumerate(parts):
                dx = self(x, c)
                if dx != ir.NOTHING:
                    options.append(ir.seq(dx, *parts[i + 1:]))
                if not self.nullable(x):
                    break
            return _alt(options)
        if k == "alt":
            return _alt([self(x, c) for x in e[1]])
        if k == "rep":
            inner, lo, hi = e[1], e[2], e[3]
            dx = self(inner, c)
            if dx == ir.NOTHING:
                return ir.NOTHING
            return ir.seq(dx, ir.rep(inner, max(lo - 1, 0), None if hi is None else hi - 1))
        raise ValueError(f"not a character-level expression: {k!r}")


def matches(e: Expr, s: str) -> bool:
    """Is the string ``s`` in the language of the character expression ``e``?"""
    d = _Deriv()
    for ch in s:
        e = d(e, ord(ch))
        if e == ir.NOTHING:
            return False
    return d.nullable(e)


# --------------------------------------------------------------------------- components


class Component:
    """A language given as an explicit deterministic automaton. States must be
    hashable; ``step`` returns ``None`` for the dead state."""

    start: object

    def step(self, state, c: int):  # pragma: no cover - interface
        raise NotImplementedError

    def accepting(self, state) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def cuts(self, state) -> Sequence[int]:  # pragma: no cover - interface
        raise NotImplementedError


class DivisibleBy(Component):
    """Decimal digit strings whose value is ``residue`` modulo ``k`` (a
    multiple of k by default; syntax is left to the other components)."""

    def __init__(self, k: int, residue: int = 0) -> None:
        self.k = k
        self.residue = residue
        self.start = 0

    def step(self, state, c: int):
        if 0x30 <= c <= 0x39:
            return (state * 10 + c - 0x30) % self.k
        return None

    def accepting(self, state) -> bool:
        return state == self.residue

    def cuts(self, state):
        return range(0x30, 0x3B)


# --------------------------------------------------------------------------- product DFA

# Formulas: ("var", i) | ("not", f) | ("and", f, ...) | ("or", f, ...) | True | False


def _eval(f, vals) -> bool | None:
    """Three-valued evaluation: vals[i] is True / False / None (unknown)."""
    if f is True or f is False:
        return f
    op = f[0]
    if op == "var":
        return vals[f[1]]
    if op == "not":
        v = _eval(f[1], vals)
        return None if v is None else not v
    if op == "and":
        res: bool | None = True
        for g in f[1:]:
            v = _eval(g, vals)
            if v is False:
                return False
            if v is None:
                res = None
        return res
    if op == "or":
        res = False
        for g in f[1:]:
            v = _eval(g, vals)
            if v is True:
                return True
            if v is None:
                res = None
        return res
    raise ValueError(f"bad formula {f!r}")


@dataclass(eq=False)
class DFA:
    """A trimmed DFA over characters: every state can reach an accepting one.
    ``trans[s]`` lists ``(ranges, target)``. Empty language: no states."""

    trans: list[list[tuple[Ranges, int]]] = field(default_factory=list)
    accept: list[bool] = field(default_factory=list)
    minimal: bool = False  # made by minimize(): minimising it again changes nothing

    @property
    def empty(self) -> bool:
        return not self.accept


def combine(components: Sequence, formula=None, *, max_states: int = 4000) -> DFA:
    """The DFA of ``formula`` over the component languages (default: all of
    them, intersected). A component is a character expression or a
    :class:`Component`.

    Each component state gets a small number and, once, its moves: its
    transitions grouped by target, as range sets (the dead target included,
    since a formula with ``not`` lives on where a component dies). A product
    state's moves are then the non-empty intersections of its components'
    groups. Deriving per character interval of every product state instead
    (a ``\\w`` class cuts the alphabet into 1,400 intervals) cost about 35 ms
    for a pattern with a ``maxLength``."""
    n = len(components)
    if formula is None:
        formula = ("and",) + tuple(("var", i) for i in range(n))
    sides = [_Side(c) for c in components]
    start = tuple(side.number(side.start) for side in sides)
    index = {start: 0}
    states = [start]
    raw_trans: list[list[tuple[Ranges, int]]] = []
    acc: list[bool] = []
    i = 0
    while i < len(states):
        st = states[i]
        i += 1
        acc.append(bool(_eval(formula, [side.accepting[x] for side, x in zip(sides, st)])))
        if _eval(formula, [side.known[x] for side, x in zip(sides, st)]) is not None:
            # Decided forever (every component is dead or universal): a
            # universal state loops on everything, a dead one has no moves.
            raw_trans.append([(ANY_RANGES, i - 1)] if acc[-1] else [])
            continue
        groups: list[tuple[Ranges, tuple]] = [(ANY_RANGES, ())]
        for side, x in zip(sides, st):
            groups = [(r if r2 == ANY_RANGES else r2 if r == ANY_RANGES else intersect_ranges(r, r2), targets + (t,))
                      for r, targets in groups for r2, t in side.moves(x)]
            groups = [g for g in groups if g[0]]
        row = []
        for ranges, nxt in groups:
            if _eval(formula, [side.known[x] for side, x in zip(sides, nxt)]) is False:
                continue
            t = index.get(nxt)
            if t is None:
                if len(states) >= max_states:
                    raise TooLarge(f"more than {max_states} automaton states")
                t = index[nxt] = len(states)
                states.append(nxt)
            row.append((ranges, t))
        raw_trans.append(row)
    return _trim(raw_trans, acc)


class _Side:
    """One component of :func:`combine`: its states by number (0 is dead),
    what is known of each and their moves, each worked out once."""

    def __init__(self, component) -> None:
        self.component = component
        self.is_expr = isinstance(component, tuple)
        self.start = component if self.is_expr else component.start
        self.deriv = _Deriv()
        self.states: list = [None]
        self.by_id: dict[int, int] = {}  # id(expression state) -> number; the states list keeps them alive
        self.by_value: dict = {}
        self.accepting: list[bool] = [False]
        self.known: list[bool | None] = [False]  # False: dead, True: accepts every string, None: neither
        self._moves: list = [[(ANY_RANGES, 0)]]

    def number(self, state) -> int:
        if state is None or state == ir.NOTHING:
            return 0
        if self.is_expr:
            got = self.by_id.get(id(state))
            if got is not None:
                return got
        got = self.by_value.get(state)
        if got is None:
            got = self.by_value[state] = len(self.states)
            self.states.append(state)
            if self.is_expr:
                self.accepting.append(self.deriv.nullable(state))
                universal = state == ANY_STRING or (state[0] == "alt" and ANY_STRING in state[1])
                self.known.append(True if universal else None)
            else:
                self.accepting.append(self.component.accepting(state))
                self.known.append(None)
            self._moves.append(None)
        if self.is_expr:
            self.by_id[id(state)] = got
        return got

    def moves(self, x: int) -> list[tuple[Ranges, int]]:
        """State ``x``'s transitions as ``(ranges, target)``, one per target,
        covering every character."""
        got = self._moves[x]
        if got is None:
            state = self.states[x]
            cuts = {0, 0xD800, 0xE000, MAX_CP + 1}
            if self.is_expr:
                cuts |= self.deriv.cuts(state)
            else:
                cuts.update(self.component.cuts(state))
            points = sorted(p for p in cuts if 0 <= p <= MAX_CP + 1)
            by_target: dict[int, list[tuple[int, int]]] = {}
            for a, b in zip(points, points[1:]):
                if a >= 0xD800 and b <= 0xE000:
                    continue
                nxt = self.deriv(state, a) if self.is_expr else self.component.step(state, a)
                by_target.setdefault(self.number(nxt), []).append((a, b - 1))
            got = self._moves[x] = [(merge_ranges(r), t) for t, r in by_target.items()]
        return got


def _trim(trans, acc) -> DFA:
    n = len(acc)
    rev: list[list[int]] = [[] for _ in range(n)]
    for s, ts in enumerate(trans):
        for _, t in ts:
            rev[t].append(s)
    live = [False] * n
    stack = [s for s in range(n) if acc[s]]
    for s in stack:
        live[s] = True
    while stack:
        t = stack.pop()
        for s in rev[t]:
            if not live[s]:
                live[s] = True
                stack.append(s)
    if not n or not live[0]:
        return DFA()
    # renumber reachable live states from 0
    new = {0: 0}
    order = [0]
    k = 0
    while k < len(order):
        s = order[k]
        k += 1
        for _, t in trans[s]:
            if live[t] and t not in new:
                new[t] = len(order)
                order.append(t)
    out = DFA()
    for s in order:
        out.trans.append([(r, new[t]) for r, t in trans[s] if live[t]])
        out.accept.append(acc[s])
    return out


def dfa_of(e: Expr, max_states: int = 4000) -> DFA:
    return combine([e], max_states=max_states)


def _equivalence_classes(dfa: DFA) -> list[int]:
    """Per state, the number of its class of equivalent states. The alphabet
    is cut into the intervals no transition range splits; a missing
    transition goes to an added dead state ``n``."""
    n = len(dfa.accept)
    points = {0, MAX_CP + 1}
    for ts in dfa.trans:
        for ranges, _ in ts:
            for lo, hi in ranges:
                points.add(lo)
                points.add(hi + 1)
    cuts = sorted(points)
    where = {c: i for i, c in enumerate(cuts)}
    k = len(cuts) - 1
    dead = n
    # pre[symbol][target]: the states reaching target on symbol
    pre: list[dict[int, list[int]]] = [{} for _ in range(k)]
    for s, ts in enumerate(dfa.trans):
        covered = [False] * k
        for ranges, t in ts:
            for lo, hi in ranges:
                for a in range(where[lo], where[hi + 1]):
                    covered[a] = True
                    pre[a].setdefault(t, []).append(s)
        for a in range(k):
            if not covered[a]:
                pre[a].setdefault(dead, []).append(s)
    for a in range(k):
        pre[a].setdefault(dead, []).append(dead)
    accepting = [s for s in range(n) if dfa.accept[s]]
    rejecting = [s for s in range(n) if not dfa.accept[s]] + [dead]
    blocks = [set(b) for b in (accepting, rejecting) if b]
    block_of = [0] * (n + 1)
    for i, b in enumerate(blocks):
        for s in b:
            block_of[s] = i
    work = {min(range(len(blocks)), key=lambda i: len(blocks[i]))} if len(blocks) == 2 else set()
    while work:
        splitter = list(blocks[work.pop()])
        for a in range(k):
            into = pre[a]
            touched: dict[int, list[int]] = {}
            for t in splitter:
                for s in into.get(t, ()):
                    touched.setdefault(block_of[s], []).append(s)
            for b, members in touched.items():
                if len(members) == len(blocks[b]):
                    continue
                part = set(members)
                blocks[b] -= part
                nb = len(blocks)
                blocks.append(part)
                for s in part:
                    block_of[s] = nb
                if b in work or len(part) <= len(blocks[b]):
                    work.add(nb)
                else:
                    work.add(b)
    return block_of[:n]


def minimize(dfa: DFA) -> DFA:
    """The minimal DFA of the same language (Hopcroft's partition
    refinement). Moore's simpler refinement needs a round per distinguishing
    length, quadratic on the counting chains of ``.{1,255}``: 0.8 s there."""
    n = len(dfa.accept)
    if dfa.minimal:
        return dfa
    if n <= 1:
        return DFA(dfa.trans, dfa.accept, minimal=True)
    cls = _equivalence_classes(dfa)
    k = len(set(cls))
    if k == n:
        return DFA(dfa.trans, dfa.accept, minimal=True)
    # renumber with the start state's class first
    order = {cls[0]: 0}
    for c in cls:
        order.setdefault(c, len(order))
    trans: list = [None] * k
    accept = [False] * k
    for s in range(n):
        c = order[cls[s]]
        if trans[c] is None:
            by_target: dict = {}
            for ranges, t in dfa.trans[s]:
                by_target.setdefault(order[cls[t]], []).extend(ranges)
            trans[c] = [(merge_ranges(r), t) for t, r in by_target.items()]
            accept[c] = dfa.accept[s]
    return DFA(trans, accept, minimal=True)


def class_loop(dfa: DFA, start: int = 0) -> tuple[Ranges, int] | None:
    """``(C, 0)`` if the language of ``dfa`` from ``start`` is ``C*`` for one
    character class ``C``, ``(C, 1)`` if it is ``C+``, else None (a pattern
    such as ``^[\\w.-]+$``)."""

    def only_move(s: int) -> tuple[Ranges, int] | None:
        targets = {t for _, t in dfa.trans[s]}
        if len(targets) != 1:
            return None
        return merge_ranges(r for ranges, _ in dfa.trans[s] for r in ranges), targets.pop()

    if dfa.empty or not dfa.accept[start]:
        first = None if dfa.empty else only_move(start)
        if first is None or first[1] == start:
            return None
        loop = only_move(first[1])
        if dfa.accept[first[1]] and loop == (first[0], first[1]):
            return first[0], 1
        return None
    move = only_move(start)
    return (move[0], 0) if move is not None and move[1] == start else None


def is_universal(dfa: DFA) -> bool:
    """Does the DFA accept every string (of scalar values)?"""
    if dfa.empty:
        return False
    for s, ts in enumerate(dfa.trans):
        if not dfa.accept[s]:
            return False
        covered = merge_ranges(r for ranges, _ in ts for r in ranges)
        if subtract_ranges(ANY_RANGES, covered):
            return False
    return True


def dfa_length_bounds(dfa: DFA, start: int = 0) -> tuple[int, int | None] | None:
    """(shortest, longest) accepted length from ``start``; None if empty."""
    if dfa.empty:
        return None
    n = len(dfa.accept)
    # shortest by BFS
    dist = [-1] * n
    dist[start] = 0
    queue = [start]
    shortest = None
    for s in queue:
        if dfa.accept[s] and shortest is None:
            shortest = dist[s]
        for _, t in dfa.trans[s]:
            if dist[t] < 0:
                dist[t] = dist[s] + 1
                queue.append(t)
    # longest: infinite if any cycle (all states are live), else DP on the DAG
    sccs = _sccs(dfa)
    reach = set(queue)
    if any((len(c) > 1 or any(t == c[0] for _, t in dfa.trans[c[0]])) and c[0] in reach for c in sccs):
        return (shortest, None)
    memo: dict[int, int] = {}
    for comp in sccs:  # reverse topological order: successors first
        s = comp[0]
        best = 0 if dfa.accept[s] else -1
        for _, t in dfa.trans[s]:
            if memo.get(t, -1) >= 0:
                best = max(best, memo[t] + 1)
        memo[s] = best
    return (shortest, memo[start])


def _sccs(dfa: DFA) -> list[list[int]]:
    """Strongly connected components of the DFA, successors before predecessors."""
    return strongly_connected_components([[t for _, t in succ] for succ in dfa.trans])


# --------------------------------------------------------------------------- back to IR


def encode(e: Expr, enc: Callable[[Ranges], Expr], memo: dict | None = None, sink: "RuleSink | None" = None) -> Expr:
    """Replace every character set of ``e`` by ``enc(ranges)`` (structurally);
    DFA leaves become IR through :func:`dfa_to_ir` (rules go to ``sink``)."""
    if memo is None:
        memo = {}
    hit = memo.get(id(e))  # by identity: a structural key would hash the whole subtree at every level
    if hit is not None and hit[0] is e:
        return hit[1]
    k = e[0]
    if k == CSET:
        r = enc(e[1])
    elif k == DFA_LEAF:
        r = dfa_to_ir(e[1], enc, sink, start=e[2])
    elif k == "seq":
        r = ir.seq(*(encode(x, enc, memo, sink) for x in e[1]))
    elif k == "alt":
        r = ir.alt(*(encode(x, enc, memo, sink) for x in e[1]))
    elif k == "rep":
        r = ir.rep(encode(e[1], enc, memo, sink), e[2], e[3])
    elif k == "and":  # a product too big to build eagerly: the automaton intersects lazily
        r = ir.intersect(*(encode(x, enc, memo, sink) for x in e[1]))
    elif k in ("eps", "nothing"):
        r = e
    else:
        raise ValueError(f"not a character-level expression: {k!r}")
    memo[id(e)] = (e, r)  # keeps e alive, so its id stays its own
    return r


_INLINE_LIMIT = 40  # a shared state whose expression is bigger than this becomes a rule
_HOIST_LIMIT = 400  # any state whose expression is bigger than this becomes a rule


def dfa_to_ir(dfa: DFA, enc: Callable[[Ranges], Expr], sink: "RuleSink | None" = None, start: int = 0) -> Expr:
    """The IR expression of a trimmed DFA (from ``start``), characters spelled
    by ``enc``.

    Self-loops become ``rep``. States on longer cycles, and states reached from
    several places whose expression is not tiny, become rules in ``sink``
    (shared sub-expressions would otherwise make the IR a DAG whose tree size,
    and so every hash of it, grows exponentially). Every rule reference follows
    a consumed character. The DFA's rules are made once per ``sink`` and reused
    by later calls (other start states, same encoder).
    """
    if dfa.empty:
        return ir.NOTHING
    cache_key = (id(dfa), id(enc))
    cached = sink.dfa_cache.get(cache_key) if sink is not None else None
    if cached is None:
        cached = _DfaIR(dfa, enc, sink)
        if sink is not None:
            sink.dfa_cache[cache_key] = cached
            sink.keep.append(dfa)
    return cached.expr(start)


class _DfaIR:
    def __init__(self, dfa: DFA, enc, sink) -> None:
        self.dfa = dfa
        self.enc = enc
        self.sink = sink
        n = len(dfa.accept)
        indeg = [0] * n
        for ts in dfa.trans:
            for _, t in ts:
                indeg[t] += 1
        self.sccs = _sccs(dfa)
        self.cyclic = set()
        for comp in self.sccs:
            if len(comp) > 1:
                self.cyclic.update(comp)
        self.indeg = indeg
        self.names: dict[int, str] = {}
        self.memo: dict[int, Expr] = {}
        self.size: dict[int, int] = {}
        self.enc_memo: dict[Ranges, Expr] = {}
        self.enc_size: dict[Ranges, int] = {}
        # successors first: every target is ready when a state is built
        for comp in self.sccs:
            for s in comp:
                if s in self.cyclic:
                    self._name(s)
            for s in comp:
                if s not in self.cyclic:
                    self._build(s)
                    size = self.size[s]
                    if sink is not None and (
                        (self.indeg[s] > 1 and size > _INLINE_LIMIT) or size > _HOIST_LIMIT
                    ):
                        # a shared or big expression becomes a rule: nested
                        # expressions stay small (hashing them is not quadratic)
                        self._name(s)
                        self.sink.define(self.names[s], self.memo[s])
        for s in self.cyclic:
            self._build(s)
            self.sink.define(self.names[s], self.memo[s])

    def _name(self, s: int) -> None:
        if self.sink is None:
            raise ValueError("this automaton needs rules: pass a RuleSink")
        self.names[s] = self.sink.reserve()

    def _e(self, r: Ranges) -> Expr:
        x = self.enc_memo.get(r)
        if x is None:
            x = self.enc_memo[r] = self.enc(r)
            self.enc_size[r] = min(ir.tree_size(x, 1000), 1000)
        return x

    def _target(self, t: int) -> tuple[Expr, int]:
        if t in self.names:
            return ir.ref(self.names[t]), 1
        return self.memo[t], self.size[t]

    def _build(self, s: int) -> None:
        loops = []
        exits = []
        size = 1
        for r, t in self.dfa.trans[s]:
            if t == s and s not in self.cyclic:
                loops.append(self._e(r))
                size += self.enc_size[r]
            else:
                x, n = self._target(t)
                exits.append(ir.seq(self._e(r), x))
                size += n + self.enc_size[r] + 1
        if self.dfa.accept[s]:
            exits.append(ir.EPS)
        rest = ir.alt(*exits)
        self.memo[s] = ir.seq(ir.rep(ir.alt(*loops), 0, None), rest) if loops else rest
        self.size[s] = size

    def expr(self, start: int) -> Expr:
        if start in self.names:
            return ir.ref(self.names[start])
        return self.memo[start]


class RuleSink:
    """Collects the rules that cyclic automata need; names are ``prefix<n>``."""

    def __init__(self, rules: dict | None = None, prefix: str = "q") -> None:
        self.rules = rules if rules is not None else {}
        self.prefix = prefix
        self.count = 0
        self.dfa_cache: dict = {}
        self.keep: list = []  # keeps cached DFAs alive (cache keys are ids)

    def reserve(self) -> str:
        while True:
            name = f"{self.prefix}{self.count}"
            self.count += 1
            if name not in self.rules:
                self.rules[name] = ir.NOTHING  # placeholder until defined
                return name

    def define(self, name: str, body: Expr) -> None:
        self.rules[name] = body
