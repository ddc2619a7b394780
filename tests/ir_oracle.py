"""A plain reference matcher for grammar IR, used as a test oracle.

It shares no code with the automaton: it is a memoised recursion on
(expression, position) that returns the set of positions where a match of the
expression starting at that position can end. Slow, but easy to check by eye.

- :func:`matches` -- is ``data`` in the language?
- :func:`can_extend` -- is ``data`` a prefix of some string in the language?
  (what a constrained decoder must keep allowing); not for grammars with
  intersections, whose emptiness this oracle cannot decide

Left recursion is not supported (the automaton rejects it too): the oracle
raises ``ValueError`` if it meets a rule at the same position it is already
expanding.
"""

from __future__ import annotations

import sys

from structgen.grammar.ir import Expr, Grammar


class _Oracle:
    def __init__(self, grammar: Grammar, data: bytes) -> None:
        self.rules = grammar.materialized().rules  # family states as ordinary rules
        self.data = bytes(data)
        self.n = len(self.data)
        self.ends_memo: dict[tuple[int, int], frozenset[int]] = {}
        self.partial_memo: dict[tuple[int, int], bool] = {}
        self.in_progress: set[tuple[int, int]] = set()
        self.keep: list[Expr] = []  # memo keys are ids: keep every keyed object alive
        self._productive: set[str] | None = None  # computed on first need (not for intersections)

    # ------------------------------------------------------------ productivity

    def _productive_rules(self) -> set[str]:
        """Rules whose language is non-empty (least fixed point)."""
        good: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, body in self.rules.items():
                if name not in good and self._prod(body, good):
                    good.add(name)
                    changed = True
        return good

    def _prod(self, e: Expr, good: set[str]) -> bool:
        kind = e[0]
        if kind in ("eps", "bytes"):
            return True
        if kind == "nothing":
            return False
        if kind == "seq":
            return all(self._prod(x, good) for x in e[1])
        if kind == "alt":
            return any(self._prod(x, good) for x in e[1])
        if kind == "and":
            raise ValueError("the oracle cannot decide emptiness of an intersection; use matches() only")
        if kind == "rep":
            return e[2] == 0 or self._prod(e[1], good)
        if kind == "ref":
            return e[1] in good
        raise ValueError(f"unknown IR node {kind!r}")

    def nonempty(self, e: Expr) -> bool:
        if self._productive is None:
            self._productive = self._productive_rules()
        return self._prod(e, self._productive)

    # ------------------------------------------------------------ ends

    def ends(self, e: Expr, pos: int) -> frozenset[int]:
        """Positions p such that data[pos:p] is in L(e)."""
        key = (id(e), pos)
        got = self.ends_memo.get(key)
        if got is not None:
            return got
        if key in self.in_progress:
            raise ValueError(f"left recursion at position {pos} in {e!r}")
        self.in_progress.add(key)
        self.keep.append(e)
        try:
            result = frozenset(self._ends(e, pos))
        finally:
            self.in_progress.discard(key)
        self.ends_memo[key] = result
        return result

    def _ends(self, e: Expr, pos: int) -> set[int]:
        kind = e[0]
        if kind == "eps":
            return {pos}
        if kind == "nothing":
            return set()
        if kind == "bytes":
            if pos < self.n and any(lo <= self.data[pos] <= hi for lo, hi in e[1]):
                return {pos + 1}
            return set()
        if kind == "seq":
            cur = {pos}
            for part in e[1]:
                cur = {q for p in cur for q in self.ends(part, p)}
                if not cur:
                    break
            return cur
        if kind == "alt":
            return {q for x in e[1] for q in self.ends(x, pos)}
        if kind == "and":
            return set.intersection(*(set(self.ends(x, pos)) for x in e[1]))
        if kind == "rep":
            out: set[int] = set()
            for count, level in self._rep_levels(e, pos):
                if count >= e[2]:
                    out |= level
            return out
        if kind == "ref":
            return set(self.ends(self.rules[e[1]], pos))
        raise ValueError(f"unknown IR node {kind!r}")

    def _rep_levels(self, e: Expr, pos: int):
        """(count, positions after exactly ``count`` copies), for every count
        0..hi that can differ; once a level repeats, all later ones equal it,
        so the last level yielded stands for every higher count."""
        _, body, lo, hi = e
        level = frozenset({pos})
        count = 0
        while True:
            yield count, level
            if not level or (hi is not None and count >= hi):
                return
            nxt = frozenset(q for p in level for q in self.ends(body, p))
            count += 1
            if nxt == level:
                # every count from here up to hi has these positions
                yield max(count, lo), level
                return
            level = nxt

    # ------------------------------------------------------------ prefixes

    def partial(self, e: Expr, pos: int) -> bool:
        """Is data[pos:] a prefix of some string in L(e)?"""
        if pos == self.n:
            return self.nonempty(e)
        key = (id(e), pos)
        got = self.partial_memo.get(key)
        if got is not None:
            return got
        self.keep.append(e)
        self.partial_memo[key] = False  # guards (left) recursion; fixed below
        result = self._partial(e, pos)
        self.partial_memo[key] = result
        return result

    def _partial(self, e: Expr, pos: int) -> bool:
        kind = e[0]
        if kind in ("eps", "nothing"):
            return False  # pos < n here: the rest of data cannot fit
        if kind == "bytes":
            return self.n in self.ends(e, pos)
        if kind == "seq":
            parts = e[1]
            cur = {pos}
            for i, part in enumerate(parts):
                rest_ok = all(self.nonempty(x) for x in parts[i + 1:])
                if rest_ok and any(self.partial(part, p) for p in cur):
                    return True
                cur = {q for p in cur for q in self.ends(part, p)}
                if not cur:
                    return False
            return self.n in cur
        if kind == "alt":
            return any(self.partial(x, pos) for x in e[1])
        if kind == "rep":
            _, body, lo, hi = e
            body_ok = self.nonempty(body)
            for count, level in self._rep_levels(e, pos):
                if count >= lo and self.n in level:
                    return True
                if (hi is None or count < hi) and body_ok and any(self.partial(body, p) for p in level):
                    return True
            return False
        if kind == "ref":
            return self.partial(self.rules[e[1]], pos)
        raise ValueError(f"unknown IR node {kind!r}")


def _grammar(g) -> Grammar:
    return g if isinstance(g, Grammar) else Grammar.from_expr(g)


def matches(grammar_or_expr, data: bytes) -> bool:
    """Is ``data`` a string of the grammar (or single expression)?"""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        o = _Oracle(_grammar(grammar_or_expr), data)
        return o.n in o.ends(o.rules[_grammar(grammar_or_expr).start], 0)
    finally:
        sys.setrecursionlimit(old)


def can_extend(grammar_or_expr, data: bytes) -> bool:
    """Is ``data`` a prefix of (or equal to) some string of the grammar?"""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    try:
        g = _grammar(grammar_or_expr)
        o = _Oracle(g, data)
        return o.partial(g.rules[g.start], 0)
    finally:
        sys.setrecursionlimit(old)
