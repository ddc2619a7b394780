"""Whole-grammar facts about rules: who references whom, which rules can match
the empty string, which can match anything at all.

Both the JSON Schema frontend (to report an unsatisfiable schema and drop
unreachable rules) and the automaton (to know rule nullability and never enter
an unproductive rule) need these facts. The frontend builds the
:class:`RuleGraph` once and it travels inside the
:class:`~structgen.grammar.ir.Grammar` it returns, so the automaton does not
walk the IR again. Two things keep it cheap: facts a node states about itself
are kept per process (hash-consing makes most nodes of a new grammar old
ones), and nullability and productivity are evaluated only for the rules
someone asks about.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from structgen.errors import GrammarError
from structgen.grammar.families import SEPARATOR, RuleFamily, family_state
from structgen.grammar.graph import strongly_connected_components
from structgen.grammar.ir import Expr

_NO_REFS: frozenset = frozenset()


class RuleGraph:
    """The reference graph of a set of rules, in dependency order, with each
    rule's nullability and productivity (``is_nullable(i)``,
    ``is_productive(i)``, evaluated on demand).

    ``names``/``bodies`` follow the rules' order; ``index`` maps a name to its
    position; ``edges[i]`` lists the rules rule ``i`` references;
    ``components`` are the strongly connected components, callees first
    (``component_of[i]``: rule ``i``'s);
    ``byte_sets`` are the distinct byte range tuples of all rules (for the
    automaton's byte classes); ``contains_and[i]`` says whether rule ``i``'s
    body holds an intersection, ``has_and`` whether any does.
    """

    def __init__(self, rules: dict[str, Expr], families: "dict[str, RuleFamily] | None" = None) -> None:
        self.names = list(rules)
        self.bodies = list(rules.values())
        self.index = {name: i for i, name in enumerate(self.names)}
        self.families = families or {}
        with _SUMMARY_LOCK:  # byte set numbers must not be reset in the middle of a walk
            if len(_summaries) >= _SUMMARY_LIMIT:
                _summaries.clear()
                _byte_set_bit.clear()
                _byte_sets.clear()
            tops = [_summary(b) for b in self.bodies]
            family_tops = {p: _summary(f.deps) for p, f in self.families.items()}
            bits = 0
            for t in tops + list(family_tops.values()):
                bits |= t[2]
            self.byte_sets = _byte_sets_of(bits)
        self.family_facts = self._family_facts(family_tops)
        refs = []
        self.contains_and = []
        for name, t in zip(self.names, tops):
            names, has_and = self._through_families(t[1], t[3])
            undefined = sorted(n for n in names if n not in self.index)
            if undefined:
                raise GrammarError(f"rule {name!r} refers to undefined rule {undefined[0]!r}")
            refs.append(names)
            self.contains_and.append(has_and)
        self.has_and = any(self.contains_and)
        self.edges = [sorted(self.index[n] for n in names) for names in refs]
        self.components = strongly_connected_components(self.edges)
        self.component_of = _component_of(self.components, len(self.names))
        self.is_nullable = _RuleFixpoint(self, nullable=True)
        self.is_productive = _RuleFixpoint(self, nullable=False)

    def _through_families(self, names: frozenset, has_and: bool) -> tuple[frozenset, bool]:
        """A body's references with each family state replaced by what the
        family references (see :mod:`structgen.grammar.families`)."""
        if not self.families or not any(SEPARATOR in n for n in names):
            return names, has_and
        out = set()
        for n in names:
            if SEPARATOR not in n:
                out.add(n)
                continue
            state = family_state(self.families, n)
            if state is None:
                out.add(n)  # reported as undefined
                continue
            fam_refs, fam_and = self.family_facts[state[0].prefix]
            out |= fam_refs
            has_and = has_and or fam_and
        return frozenset(out), has_and

    def _family_facts(self, family_tops: dict) -> dict[str, tuple[frozenset, bool]]:
        """Per family: the ordinary rules its bodies reference (through
        nested families too) and whether they hold an intersection."""
        facts: dict[str, tuple[frozenset, bool]] = {}
        for prefix in self.families:
            stack, seen = [prefix], {prefix}
            names: set = set()
            has_and = False
            while stack:
                top = family_tops[stack.pop()]
                has_and = has_and or top[3]
                for n in top[1]:
                    state = family_state(self.families, n) if SEPARATOR in n else None
                    if state is None:
                        names.add(n)
                    elif state[0].prefix not in seen:
                        seen.add(state[0].prefix)
                        stack.append(state[0].prefix)
            facts[prefix] = (frozenset(names), has_and)
        return facts

    def family_state(self, name: str) -> "tuple[RuleFamily, int] | None":
        """``(family, key)`` if ``name`` is a family's state."""
        return family_state(self.families, name) if self.families else None

    @property
    def nullable(self) -> list[bool]:
        """Every rule's nullability (all evaluated)."""
        return [self.is_nullable(i) for i in range(len(self.names))]

    @property
    def productive(self) -> list[bool]:
        """Every rule's productivity (all evaluated)."""
        return [self.is_productive(i) for i in range(len(self.names))]

    def describes(self, rules: dict[str, Expr]) -> bool:
        """Is this graph about exactly these rule bodies (same objects)?"""
        return len(rules) == len(self.bodies) and all(
            a is b and self.index.get(name) == i
            for i, (name, a, b) in enumerate(zip(rules, rules.values(), self.bodies))
        )

    def subset(self, rules: dict[str, Expr]) -> "RuleGraph":
        """The graph of ``rules``: some of these rules, closed under
        reference (every rule a kept rule references is kept), bodies
        unchanged. Components stay components; values found so far carry
        over."""
        if self.describes(rules):
            return self
        new = RuleGraph.__new__(RuleGraph)
        new.names = list(rules)
        new.bodies = list(rules.values())
        new.index = {name: i for i, name in enumerate(new.names)}
        old = [self.index[name] for name in new.names]
        if any(a is not self.bodies[o] for a, o in zip(new.bodies, old)):
            raise ValueError("subset() keeps rule bodies unchanged")
        new.edges = [[new.index[self.names[t]] for t in self.edges[o]] for o in old]
        new.components = [[new.index[self.names[r]] for r in c] for c in self.components if self.names[c[0]] in new.index]
        new.component_of = _component_of(new.components, len(new.names))
        new.byte_sets = self.byte_sets  # a superset: finer byte classes only
        new.families = self.families
        new.family_facts = self.family_facts
        new.contains_and = [self.contains_and[o] for o in old]
        new.has_and = any(new.contains_and)
        new.is_nullable = _RuleFixpoint(new, nullable=True)
        new.is_productive = _RuleFixpoint(new, nullable=False)
        for mine, theirs in ((new.is_nullable, self.is_nullable), (new.is_productive, self.is_productive)):
            mine.value = [theirs.value[o] for o in old]
            mine.memo = theirs.memo  # by node identity: the same nodes, the same values
        return new

    def reachable(self, start: str) -> set[str]:
        """Names of the rules reachable from ``start``."""
        root = self.index[start]
        seen = {root}
        stack = [root]
        while stack:
            for t in self.edges[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return {self.names[i] for i in seen}


# What a node says about itself, whatever grammar it is part of, kept per
# process: id(node) -> (node, referenced rule names, byte sets as bits of
# _byte_set_bit numbers, contains an intersection, and for nodes without
# references their nullability and productivity). Hash-consing makes a node
# built for one schema the same object in the next, so about three quarters of
# a MaskBench grammar is already summarised when it is analysed. The entry
# keeps its node alive, so the id stays its own. Emptied (with the byte set
# numbering) only between walks, when it grows large.
_SUMMARY_LIMIT = 1 << 18
_DEEP_LIMIT = 20000
_deep_lock = threading.Lock()
_deep_users = 0
_limit_before = 0


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Python's recursion limit raised to 20,000 while the block runs. The
    schema frontend and the rule analysis recurse along the nesting of a
    schema (a rule's value is solved when the automaton first reaches it);
    real schemas nest deeper than the default 1,000 frames allow. The old
    limit comes back when the last thread inside leaves."""
    global _deep_users, _limit_before
    with _deep_lock:
        if _deep_users == 0:
            _limit_before = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_limit_before, _DEEP_LIMIT))
        _deep_users += 1
    try:
        yield
    finally:
        with _deep_lock:
            _deep_users -= 1
            if _deep_users == 0:
                sys.setrecursionlimit(_limit_before)


_LAZY_DEPTH = 200  # components solved recursively, on demand, before an explicit stack takes over
_SUMMARY_LOCK = threading.Lock()
_summaries: dict[int, tuple] = {}
_byte_set_bit: dict[tuple, int] = {}
_byte_sets: list[tuple] = []


def _bit(ranges: tuple) -> int:
    i = _byte_set_bit.get(ranges)
    if i is None:
        i = _byte_set_bit[ranges] = len(_byte_sets)
        _byte_sets.append(ranges)
    return 1 << i


def _summary(e: Expr) -> tuple:
    """``(e, refs, byte set bits, has_and, nullable, productive)``, computed
    once per node; the last two hold only for nodes without references.
    Leaf children are handled inline: they are half of all nodes."""
    got = _summaries.get(id(e))
    if got is not None and got[0] is e:
        return got
    kind = e[0]
    if kind == "ref":
        return (e, frozenset((e[1],)), 0, False, False, False)
    if kind == "bytes":
        return (e, _NO_REFS, _bit(e[1]), False, False, True)
    if kind == "rep":
        children = (e[1],)
    elif kind in ("seq", "alt", "and"):
        children = e[1]
    else:  # eps, nothing
        return (e, _NO_REFS, 0, False, kind == "eps", kind == "eps")
    found: list[frozenset] = []
    bits = 0
    has_and = kind == "and"
    nullables: list[bool] = []
    productives: list[bool] = []
    for x in children:
        k = x[0]
        if k == "bytes":
            bits |= _bit(x[1])
            nullables.append(False)
            productives.append(True)
            continue
        if k == "eps" or k == "nothing":
            nullables.append(k == "eps")
            productives.append(k == "eps")
            continue
        if k == "ref":
            found.append(frozenset((x[1],)))
            continue
        sub = _summaries.get(id(x))
        if sub is None or sub[0] is not x:
            sub = _summary(x)
        if sub[1]:
            found.append(sub[1])
        bits |= sub[2]
        has_and = has_and or sub[3]
        nullables.append(sub[4])
        productives.append(sub[5])
    refs = _NO_REFS if not found else found[0] if len(found) == 1 else frozenset().union(*found)
    if refs:  # depends on the rules: the fixpoint works it out
        nullable = productive = False
    elif kind == "alt":
        nullable, productive = any(nullables), any(productives)
    elif kind == "rep":
        nullable, productive = e[2] == 0 or nullables[0], e[2] == 0 or productives[0]
    else:  # seq, and (an intersection's productivity is decided per state by the automaton)
        nullable, productive = all(nullables), all(productives)
    got = _summaries[id(e)] = (e, refs, bits, has_and, nullable, productive)
    return got


def _byte_sets_of(bits: int) -> list[tuple]:
    out = []
    while bits:
        low = bits & -bits
        out.append(_byte_sets[low.bit_length() - 1])
        bits ^= low
    return out


class _RuleFixpoint:
    """Per rule, on demand: can it match the empty string (``nullable=True``),
    or anything at all (``nullable=False``, productivity)?

    A rule's value needs the values of the rules it references, so asking
    for one rule evaluates its strongly connected component after the
    components it reaches (a rule's value is final once read, and one memo by
    node identity serves the whole grammar). Only a recursive component is
    iterated to its fixpoint, its own results kept apart until final.
    ``any``/``all`` stop early and other components are solved when first
    read, so the frontend asking whether the start rule is productive, and
    the automaton asking about the rules a generation reaches, evaluate a
    fraction of the grammar; deep chains of rules switch to an explicit
    stack."""

    def __init__(self, graph: "RuleGraph", nullable: bool) -> None:
        self.graph = graph
        self.nullable = nullable
        self.value: list[bool | None] = [None] * len(graph.names)  # final values only
        self.memo: dict[int, bool] = {}
        self.depth = 0  # nested lazy solves in progress
        self.lock = threading.RLock()  # automata built from one grammar share it

    def __call__(self, rule: int) -> bool:
        v = self.value[rule]
        if v is None:
            with self.lock:
                if self.value[rule] is None:
                    self._lazy(rule)
                v = self.value[rule]
        return v

    def of(self, e: Expr) -> bool:
        """The value of an expression over these rules (e.g. a part of a rule
        body), with the rules it reads solved as needed."""
        with self.lock:
            return self._ev(e, self.memo, {})

    def _lazy(self, rule: int) -> None:
        """Solve ``rule``'s component, reading (and solving, recursively) only
        the rules its evaluation gets to; past ``_LAZY_DEPTH`` nested
        components, everything below is solved with an explicit stack."""
        if self.depth >= _LAZY_DEPTH:
            self._solve(rule)
            return
        self.depth += 1
        try:
            self._solve_component(self.graph.components[self.graph.component_of[rule]])
        finally:
            self.depth -= 1

    def _solve(self, rule: int) -> None:
        """Solve ``rule``'s component and, first, every unsolved component it
        reaches, in post-order with an explicit stack: a chain of thousands of
        rules (array counting states) must not recurse."""
        g = self.graph
        comp_of = g.component_of
        root = comp_of[rule]
        seen = {root}
        stack = [(root, iter(_callees(g, g.components[root], comp_of)))]
        while stack:
            c, callees = stack[-1]
            nxt = next(callees, None)
            if nxt is None:
                stack.pop()
                self._solve_component(g.components[c])
            elif nxt not in seen and self.value[g.components[nxt][0]] is None:
                seen.add(nxt)
                stack.append((nxt, iter(_callees(g, g.components[nxt], comp_of))))

    def _solve_component(self, component: list[int]) -> None:
        g = self.graph
        if len(component) == 1 and component[0] not in g.edges[component[0]]:
            self.value[component[0]] = self._ev(g.bodies[component[0]], self.memo, {})
            return
        approx = dict.fromkeys(component, False)
        changed = True
        while changed:
            changed = False
            local: dict[int, bool] = {}
            for r in component:
                if not approx[r] and self._ev(g.bodies[r], local, approx):
                    approx[r] = changed = True
        self.memo.update(local)
        for r, v in approx.items():
            self.value[r] = v

    def _ev(self, e: Expr, local: dict[int, bool], approx: dict[int, bool]) -> bool:
        """Value of ``e``; rules of the component being iterated read their
        current approximation in ``approx``, others are solved first."""
        key = id(e)
        got = self.memo.get(key)
        if got is None:
            got = local.get(key)
        if got is not None:
            return got
        kind = e[0]
        if kind == "bytes":
            return not self.nullable
        if kind == "eps":
            return True
        if kind == "ref":
            i = self.graph.index.get(e[1])
            if i is None:
                state = self.graph.family_state(e[1])
                if state is None:
                    return False
                return state[0].value(state[1], lambda x: self._ev(x, local, approx))
            got = approx.get(i)
            if got is None:
                got = self.value[i]
                if got is None:  # another component, not solved yet
                    self._lazy(i)
                    got = self.value[i]
            return got
        known = _summaries.get(key)
        if known is not None and known[0] is e and not known[1]:  # no references: fixed already
            return known[4] if self.nullable else known[5]
        # Plain loops rather than any()/all() over generators: this runs for
        # most nodes of a big grammar, on the way to its first mask.
        if kind == "seq" or kind == "and":  # for "and" productivity is over-approximated: decided per state
            r = True
            for x in e[1]:
                if not self._ev(x, local, approx):
                    r = False
                    break
        elif kind == "alt":
            r = False
            for x in e[1]:
                if self._ev(x, local, approx):
                    r = True
                    break
        elif kind == "rep":
            r = e[2] == 0 or self._ev(e[1], local, approx)
        else:
            r = False
        local[key] = r
        return r


def _callees(g: RuleGraph, component: list[int], comp_of: list[int]) -> list[int]:
    """The other components that rules of ``component`` reference."""
    own = comp_of[component[0]]
    return sorted({comp_of[t] for r in component for t in g.edges[r]} - {own})


def _component_of(components: list[list[int]], n: int) -> list[int]:
    """Per rule, the index of its strongly connected component."""
    out = [0] * n
    for c, members in enumerate(components):
        for r in members:
            out[r] = c
    return out
