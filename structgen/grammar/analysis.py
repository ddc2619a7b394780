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
        if len(_summaries) >= _SUMMARY_LIMIT:
            _summaries.clear()
            _byte_set_bit.clear()
            _byte_sets.clear()
        tops = [_summary(b) for b in self.bodies]
        refs = [t[1] for t in tops]
        bits = 0
        for t in tops:
            bits |= t[2]
        self.byte_sets = _byte_sets_of(bits)
        self.has_and = any(t[3] for t in tops)
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


# What a node says about itself, whatever grammar it is part of, kept per
# process: id(node) -> (node, referenced rule names, byte sets as bits of
# _byte_set_bit numbers, contains an intersection, and for nodes without
# references their nullability and productivity). Hash-consing makes a node
# built for one schema the same object in the next, so about three quarters of
# a MaskBench grammar is already summarised when it is analysed. The entry
# keeps its node alive, so the id stays its own. Emptied (with the byte set
# numbering) only between walks, when it grows large.
_SUMMARY_LIMIT = 1 << 18
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
        nullable = productive = e[2] == 0
        nullable, productive = nullable or nullables[0], productive or productives[0]
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
            return not nullable
        if kind == "eps":
            return True
        if kind != "ref":
            known = _summaries.get(id(e))
            if known is not None and known[0] is e and not known[1]:  # no references: fixed already
                return known[4] if nullable else known[5]
        if kind in ("seq", "and"):  # for "and" productivity is over-approximated: decided per state
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
