"""The grammar IR every frontend produces and the automaton consumes.

A grammar is a set of named rules. A rule body is an expression over *bytes*:
sequences, alternations, bounded or unbounded repeats, single bytes drawn from a
set of byte ranges, and references to other rules. Characters never appear here:
frontends lower character classes to UTF-8 byte sequences with :func:`chars`
(see :mod:`structgen.grammar.utf8`), so the automaton only ever sees bytes.

Expressions are immutable tuples, so structurally equal sub-expressions compare
and hash equal and frontends may share them freely. Build them only through the
constructors below; they keep a few cheap normal forms (flattened sequences and
alternations, ``NOTHING`` absorbing a sequence) that make grammars smaller, and
they hash-cons: building an expression equal to one built before returns the
same object. Every pass over a grammar memoizes by node identity, so this is
what makes the 17 nested "any value" rules or a hundred ``"name":`` literals
cost one walk each (a median MaskBench grammar has 2.7 times fewer nodes).

Node shapes (first element is the kind):

- ``("bytes", ((lo, hi), ...))``   one byte in one of the inclusive ranges
- ``("seq", (e1, e2, ...))``       concatenation
- ``("alt", (e1, e2, ...))``       alternation
- ``("rep", e, lo, hi)``           ``e`` repeated lo..hi times (``hi is None``: unbounded)
- ``("ref", name)``                the body of rule ``name`` (recursion allowed,
                                   left recursion is rejected by the automaton)
- ``("and", (e1, e2, ...))``       intersection: strings every ``ei`` matches.
                                   The automaton builds it lazily, so a long
                                   ``maxLength`` times a complex ``pattern`` costs
                                   only the states a generation visits.
- ``EPS`` / ``NOTHING``            the empty string / the empty language
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from structgen.errors import GrammarTooLargeError
from structgen.grammar import utf8
from structgen.grammar.graph import merge_ranges

if TYPE_CHECKING:
    from structgen.grammar.analysis import RuleGraph
    from structgen.grammar.families import RuleFamily

Expr = tuple

EPS: Expr = ("eps",)
NOTHING: Expr = ("nothing",)

# Hash-consing table: key -> the one node built for it. Keys of inner nodes use
# the ids of their (already hash-consed) children, so a lookup never hashes a
# whole subtree; the stored node keeps those children alive, so the ids stay
# valid while the entry exists. The table is emptied when it grows large: that
# only loses sharing with older grammars, never correctness.
_HASHCONS_LIMIT = 1 << 18
_hashcons: dict[tuple, Expr] = {}


def _shared(key: tuple, node: Expr) -> Expr:
    got = _hashcons.get(key)
    if got is None:
        if len(_hashcons) >= _HASHCONS_LIMIT:
            _hashcons.clear()
        _hashcons[key] = got = node
    return got


def byte_ranges(ranges: Iterable[tuple[int, int]]) -> Expr:
    """One byte from the union of inclusive ``(lo, hi)`` ranges."""
    merged = merge_ranges(ranges)
    if not merged:
        return NOTHING
    node = ("bytes", tuple(merged))
    return _shared(node, node)


_BYTE: list[Expr] = [("bytes", ((b, b),)) for b in range(256)]
for _node in _BYTE:
    _shared(_node, _node)


def literal(text: str | bytes) -> Expr:
    """An exact string (UTF-8 encoded) or byte string."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return seq(*(_BYTE[b] for b in data))


def chars(ranges: Iterable[tuple[int, int]], *, negate: bool = False) -> Expr:
    """One Unicode scalar value from inclusive code point ranges, as UTF-8 bytes.

    ``negate=True`` takes the complement within all scalar values (surrogates
    are never produced: they are not valid UTF-8).
    """
    return _chars(tuple(merge_ranges(ranges)), negate)


@lru_cache(maxsize=4096)
def _chars(cps: tuple[tuple[int, int], ...], negate: bool) -> Expr:
    if negate:
        cps = utf8.complement(cps)
    cps = utf8.remove_surrogates(cps)
    return alt(*(seq(*(byte_ranges([r]) for r in byte_seq)) for byte_seq in utf8.encode_ranges(cps)))


def seq(*parts: Expr) -> Expr:
    """Concatenation; flattens nested sequences, drops ``EPS``, absorbs ``NOTHING``."""
    flat: list[Expr] = []
    for p in parts:
        if p == NOTHING:
            return NOTHING
        if p == EPS:
            continue
        if p[0] == "seq":
            flat.extend(p[1])
        else:
            flat.append(p)
    if not flat:
        return EPS
    if len(flat) == 1:
        return flat[0]
    return _shared(("seq", *map(id, flat)), ("seq", tuple(flat)))


def alt(*options: Expr) -> Expr:
    """Alternation; flattens nested alternations, drops ``NOTHING`` and duplicates.

    Single-byte options are merged into one byte set, which keeps character
    classes and enumerations of one-byte literals compact.
    """
    flat: list[Expr] = []
    seen: set[int] = set()  # by identity: equal options are the same object
    byte_opts: list[tuple[int, int]] = []
    for o in options:
        for x in (o[1] if o[0] == "alt" else (o,)):
            if x == NOTHING or id(x) in seen:
                continue
            if x[0] == "bytes":
                byte_opts.extend(x[1])
                continue
            seen.add(id(x))
            flat.append(x)
    if byte_opts:
        flat.insert(0, byte_ranges(byte_opts))
    if not flat:
        return NOTHING
    if len(flat) == 1:
        return flat[0]
    return _shared(("alt", *map(id, flat)), ("alt", tuple(flat)))


def intersect(*parts: Expr) -> Expr:
    """Strings matched by every part; flattens, drops duplicates, and lets
    ``NOTHING`` absorb. The intersection may still be empty: the automaton
    finds that out (lazily) and never lets a generation walk into it."""
    flat: list[Expr] = []
    for p in parts:
        if p == NOTHING:
            return NOTHING
        for x in (p[1] if p[0] == "and" else (p,)):
            if x not in flat:
                flat.append(x)
    if not flat:
        raise ValueError("an intersection needs at least one part")
    if len(flat) == 1:
        return flat[0]
    return _shared(("and", *map(id, flat)), ("and", tuple(flat)))


#: the largest repeat count (the automaton counts in 64-bit integers); frontends
#: check their counts against it to say where a bigger one came from
MAX_REPEAT = 1 << 62


def rep(e: Expr, lo: int = 0, hi: int | None = None) -> Expr:
    """``e`` repeated between ``lo`` and ``hi`` times (``hi=None``: no upper bound)."""
    if lo < 0 or (hi is not None and hi < lo):
        raise ValueError(f"bad repeat bounds {{{lo},{hi}}}")
    if max(lo, hi or 0) > MAX_REPEAT:
        raise GrammarTooLargeError(f"a repeat count above {MAX_REPEAT} (2**62) cannot be counted")
    if hi == 0 or e == EPS:
        return EPS
    if e == NOTHING:
        return EPS if lo == 0 else NOTHING
    if lo == 1 and hi == 1:
        return e
    return _shared(("rep", id(e), lo, hi), ("rep", e, lo, hi))


def opt(e: Expr) -> Expr:
    """``e`` or nothing."""
    return rep(e, 0, 1)


def ref(name: str) -> Expr:
    """The body of rule ``name``."""
    node = ("ref", name)
    return _shared(node, node)


@dataclass
class Grammar:
    """Named rules plus the start rule. ``notes`` lists what was not enforced
    (lenient compilation), so callers can validate final outputs themselves.
    ``families`` (by prefix) define further rules on demand
    (:mod:`structgen.grammar.families`)."""

    rules: dict[str, Expr]
    start: str = "start"
    notes: list[str] = field(default_factory=list)
    graph: "RuleGraph | None" = field(default=None, repr=False, compare=False)
    families: "dict[str, RuleFamily]" = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.start not in self.rules:
            raise ValueError(f"start rule {self.start!r} is not defined")

    def rule_graph(self) -> "RuleGraph":
        """The rules' :class:`~structgen.grammar.analysis.RuleGraph`: the one
        the frontend passed in while it still describes ``rules``, else built
        (and kept) now."""
        from structgen.grammar.analysis import RuleGraph

        if self.graph is None or not self.graph.describes(self.rules):
            self.graph = RuleGraph(self.rules, self.families)
        return self.graph

    def body(self, name: str) -> Expr:
        """The body of a rule or of a family's state (built now if needed)."""
        got = self.rules.get(name)
        if got is not None:
            return got
        from structgen.grammar.families import family_state

        state = family_state(self.families, name)
        if state is None:
            raise KeyError(name)
        return state[0].body(state[1])

    def materialized(self) -> "Grammar":
        """The same language with every reachable family state an ordinary
        rule (for tests and for printing a whole grammar)."""
        if not self.families:
            return self
        rules = dict(self.rules)
        stack = [name for body in rules.values() for name in iter_refs(body)]
        while stack:
            name = stack.pop()
            if name not in rules:
                rules[name] = self.body(name)
                stack.extend(iter_refs(rules[name]))
        return Grammar(rules, self.start, list(self.notes))

    @classmethod
    def from_expr(cls, expr: Expr, **kwargs) -> "Grammar":
        """A grammar of a single rule, as regex frontends produce."""
        return cls({"start": expr}, "start", **kwargs)

    def size(self) -> int:
        """Number of distinct IR nodes over all rules (shared nodes count once)."""
        return sum(1 for _ in nodes(*self.rules.values()))


def nodes(*roots: Expr, seen: set[int] | None = None) -> Iterator[Expr]:
    """Every distinct node reachable from ``roots``, each once (grammars are
    DAGs: frontends share sub-expressions). Pass ``seen`` to skip nodes already
    visited by an earlier walk. Rule references are not followed."""
    seen = set() if seen is None else seen
    stack = list(roots)
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        kind = x[0]
        if kind in ("seq", "alt", "and"):
            stack.extend(x[1])
        elif kind == "rep":
            stack.append(x[1])


def tree_size(e: Expr, limit: int) -> int:
    """Node count of ``e`` expanded as a tree (shared nodes count each time,
    rule references count as one), counting at most ``limit + 1``."""
    count = 0
    stack = [e]
    while stack and count <= limit:
        x = stack.pop()
        count += 1
        if x[0] in ("seq", "alt", "and"):
            stack.extend(x[1])
        elif x[0] == "rep":
            stack.append(x[1])
    return count


def iter_refs(e: Expr, seen: set[int] | None = None) -> Sequence[str]:
    """Names of all rules referenced in ``e`` (see :func:`nodes` for ``seen``)."""
    return [x[1] for x in nodes(e, seen=seen) if x[0] == "ref"]
