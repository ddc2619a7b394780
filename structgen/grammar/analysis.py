"""Whole-grammar facts about rules: who references whom, which rules can match
the empty string, which can match anything at all.

Both the JSON Schema frontend (to drop rules with an empty language and report
an unsatisfiable schema) and the automaton (to know rule nullability and never
enter an unproductive rule) need these facts. Each is a walk over every IR
node, so the frontend computes them once and the :class:`RuleGraph` travels
inside the :class:`~structgen.grammar.ir.Grammar` it returns; the automaton
reuses it instead of walking the IR again.
"""

from __future__ import annotations

from structgen.errors import GrammarError
from structgen.grammar.graph import strongly_connected_components
from structgen.grammar.ir import Expr

_NO_REFS: frozenset = frozenset()


class RuleGraph:
    """The reference graph of a set of rules, in dependency order, with each
    rule's nullability and productivity.

    ``names``/``bodies`` follow the rules' order; ``index`` maps a name to its
    position; ``edges[i]`` lists the rules rule ``i`` references (possibly a
    superset, see :meth:`subset`); ``components`` are the strongly connected
    components, callees first. The same walk collects ``byte_sets`` (every
    distinct byte range tuple, for the automaton's byte classes) and
    ``has_and`` (whether any intersection occurs).
    """

    def __init__(self, rules: dict[str, Expr]) -> None:
        self.names = list(rules)
        self.bodies = list(rules.values())
        self.index = {name: i for i, name in enumerate(self.names)}
        walk = _Walk()
        refs = [walk.refs_of(b) for b in self.bodies]
        self.byte_sets = walk.byte_sets
        self.has_and = walk.has_and
        for name, names in zip(self.names, refs):
            undefined = sorted(n for n in names if n not in self.index)
            if undefined:
                raise GrammarError(f"rule {name!r} refers to undefined rule {undefined[0]!r}")
        self.edges = [sorted(self.index[n] for n in names) for names in refs]
        self.components = strongly_connected_components(self.edges)
        self.nullable = _rule_fixpoint(self.bodies, self.index, self.edges, self.components, nullable=True)
        self.productive = _rule_fixpoint(self.bodies, self.index, self.edges, self.components, nullable=False)

    def describes(self, rules: dict[str, Expr]) -> bool:
        """Is this graph about exactly these rule bodies (same objects)?"""
        return len(rules) == len(self.bodies) and all(
            a is b and self.index.get(name) == i
            for i, (name, a, b) in enumerate(zip(rules, rules.values(), self.bodies))
        )

    def subset(self, rules: dict[str, Expr]) -> "RuleGraph":
        """The graph of ``rules``: some of these rules, each body either the
        same or rewritten without changing its language (references to
        unproductive rules replaced by nothing). Nullability and productivity
        carry over; edges keep the old references that remain, a superset of
        the new ones, which only coarsens the dependency order."""
        if self.describes(rules):  # nothing was dropped or rewritten
            return self
        new = RuleGraph.__new__(RuleGraph)
        new.names = list(rules)
        new.bodies = list(rules.values())
        new.index = {name: i for i, name in enumerate(new.names)}
        old = [self.index[name] for name in new.names]
        new.edges = [sorted(new.index[self.names[t]] for t in self.edges[o] if self.names[t] in new.index) for o in old]
        new.components = strongly_connected_components(new.edges)
        new.nullable = [self.nullable[o] for o in old]
        new.productive = [self.productive[o] for o in old]
        new.byte_sets = self.byte_sets  # supersets: finer byte classes, an extra check
        new.has_and = self.has_and
        return new

    def reachable(self, start: str, through: list[bool] | None = None) -> set[str]:
        """Names of the rules reachable from ``start`` (only via rules whose
        ``through`` flag is set, when given)."""
        root = self.index[start]
        seen = {root}
        stack = [root]
        while stack:
            for t in self.edges[stack.pop()]:
                if t not in seen and (through is None or through[t]):
                    seen.add(t)
                    stack.append(t)
        return {self.names[i] for i in seen}


class _Walk:
    """One walk over the IR: referenced rule names per node (memoized by
    identity across rules), distinct byte sets, intersections. Leaves are
    handled inline: they are half of all nodes, and a call each would double
    the cost of the walk."""

    def __init__(self) -> None:
        self.memo: dict[int, frozenset] = {}
        self.byte_sets: set[tuple] = set()
        self.has_and = False

    def refs_of(self, e: Expr) -> frozenset:
        kind = e[0]
        if kind == "ref":
            return frozenset((e[1],))
        if kind == "bytes":
            self.byte_sets.add(e[1])
            return _NO_REFS
        got = self.memo.get(id(e))
        if got is not None:
            return got
        if kind == "rep":
            children = (e[1],)
        elif kind in ("seq", "alt", "and"):
            children = e[1]
            self.has_and = self.has_and or kind == "and"
        else:
            return _NO_REFS
        memo = self.memo
        found: list[frozenset] = []
        for x in children:
            k = x[0]
            if k == "bytes":
                self.byte_sets.add(x[1])
                continue
            if k == "eps" or k == "nothing":
                continue
            if k == "ref":
                found.append(frozenset((x[1],)))
                continue
            r = memo.get(id(x))
            if r is None:
                r = self.refs_of(x)
            if r:
                found.append(r)
        r = _NO_REFS if not found else found[0] if len(found) == 1 else frozenset().union(*found)
        memo[id(e)] = r
        return r


def _rule_fixpoint(bodies: list[Expr], index: dict[str, int], edges: list[list[int]], components: list[list[int]], *, nullable: bool) -> list[bool]:
    """Per rule: can it match the empty string (``nullable=True``), or can it
    match anything at all (``nullable=False``, i.e. productivity).

    Rules are evaluated in dependency order (strongly connected components of
    the reference graph, callees first), so a rule's value is final when it is
    read and one memo by node identity serves the whole grammar. Only rules
    inside a recursive component are iterated to their fixpoint; what they
    compute joins the shared memo once the component is final."""
    value = [False] * len(index)
    memo: dict[int, bool] = {}

    def ev(e: Expr, local: dict[int, bool]) -> bool:
        got = memo.get(id(e))
        if got is None:
            got = local.get(id(e))
        if got is not None:
            return got
        kind = e[0]
        if kind == "bytes":
            r = not nullable
        elif kind == "eps":
            r = True
        elif kind in ("seq", "and"):  # for "and" productivity is over-approximated: decided per state
            r = all(ev(x, local) for x in e[1])
        elif kind == "alt":
            r = any(ev(x, local) for x in e[1])
        elif kind == "rep":
            r = e[2] == 0 or ev(e[1], local)
        elif kind == "ref":
            i = index.get(e[1])
            r = value[i] if i is not None else False
        else:
            r = False
        local[id(e)] = r
        return r

    for component in components:
        if len(component) == 1 and component[0] not in edges[component[0]]:
            value[component[0]] = ev(bodies[component[0]], memo)
            continue
        changed = True
        while changed:  # recursive component: iterate, its own results kept apart until final
            changed = False
            local: dict[int, bool] = {}
            for i in component:
                if not value[i] and ev(bodies[i], local):
                    value[i] = changed = True
        memo.update(local)
    return value
