"""Hash-consed IR and the rule graph every grammar consumer shares.

The rule graph's nullability and productivity are checked against a plain
iterate-until-nothing-changes fixpoint over random grammars with several
mutually recursive rules, and the automaton must notice when a grammar's rules
changed after the frontend attached a graph.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structgen.automaton.lazy_dfa import DEAD, LazyDFA
from structgen.errors import GrammarError
from structgen.grammar import analysis, ir
from structgen.grammar.analysis import RuleGraph
from structgen.grammar.families import RuleFamily

RULES = ["r0", "r1", "r2", "r3"]


def test_equal_expressions_are_the_same_object():
    a = ir.seq(ir.literal("ab"), ir.rep(ir.alt(ir.literal("x"), ir.ref("r")), 0, None))
    b = ir.seq(ir.literal("ab"), ir.rep(ir.alt(ir.literal("x"), ir.ref("r")), 0, None))
    assert a is b
    assert ir.chars([(0x41, 0x5A)]) is ir.chars([(0x41, 0x4D), (0x4E, 0x5A)])
    assert ir.intersect(a, ir.literal("q")) is ir.intersect(a, ir.literal("q"))


def test_emptied_table_still_builds_equal_expressions():
    a = ir.alt(ir.literal("null"), ir.rep(ir.literal("7"), 1, 3))
    ir._hashcons.clear()
    b = ir.alt(ir.literal("null"), ir.rep(ir.literal("7"), 1, 3))
    assert a == b  # sharing with older grammars is lost, structure is not
    assert ir.Grammar.from_expr(a).size() == ir.Grammar.from_expr(b).size()


def _naive_value(e, value: dict, nullable: bool) -> bool:
    """Nullability (or productivity) of ``e``, given the rules' ``value``."""
    k = e[0]
    if k == "bytes":
        return not nullable
    if k == "eps":
        return True
    if k == "nothing":
        return False
    if k in ("seq", "and"):
        return all(_naive_value(x, value, nullable) for x in e[1])
    if k == "alt":
        return any(_naive_value(x, value, nullable) for x in e[1])
    if k == "rep":
        return e[2] == 0 or _naive_value(e[1], value, nullable)
    return value[e[1]]


def _naive(rules: dict, nullable: bool) -> dict:
    value = {name: False for name in rules}
    changed = True
    while changed:
        changed = False
        for name, body in rules.items():
            if not value[name] and _naive_value(body, value, nullable):
                value[name] = changed = True
    return value


def bodies():
    leaf = st.one_of(
        st.sampled_from([ir.literal("a"), ir.EPS, ir.NOTHING, ir.byte_ranges([(0x30, 0x39)])]),
        st.sampled_from(RULES).map(ir.ref),
    )
    return st.recursive(
        leaf,
        lambda sub: st.one_of(
            st.lists(sub, min_size=1, max_size=3).map(lambda xs: ir.seq(*xs)),
            st.lists(sub, min_size=1, max_size=3).map(lambda xs: ir.alt(*xs)),
            st.tuples(sub, st.integers(0, 2)).map(lambda t: ir.rep(t[0], t[1], None)),
        ),
        max_leaves=6,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(bodies(), min_size=len(RULES), max_size=len(RULES)))
def test_rule_graph_matches_a_naive_fixpoint(bs):
    rules = dict(zip(RULES, bs))
    graph = RuleGraph(rules)
    assert dict(zip(graph.names, graph.nullable)) == _naive(rules, nullable=True)
    assert dict(zip(graph.names, graph.productive)) == _naive(rules, nullable=False)
    for name, targets in zip(graph.names, graph.edges):
        assert {graph.names[t] for t in targets} == set(ir.iter_refs(rules[name]))
    # callees come first: a rule's component never follows a caller's
    position = {r: i for i, comp in enumerate(graph.components) for r in comp}
    for i, targets in enumerate(graph.edges):
        assert all(position[t] <= position[i] for t in targets)
    # the explicit-stack solver (used past _LAZY_DEPTH nested components) agrees
    lazy_depth = analysis._LAZY_DEPTH
    analysis._LAZY_DEPTH = 0
    try:
        stacked = RuleGraph(rules)
        assert stacked.nullable == graph.nullable and stacked.productive == graph.productive
    finally:
        analysis._LAZY_DEPTH = lazy_depth
    # the rules one rule reaches, on their own, have the same values
    reach = graph.reachable("r1")
    kept = {n: rules[n] for n in RULES if n in reach}
    sub = RuleGraph(rules).subset(kept)
    assert dict(zip(sub.names, sub.nullable)) == {n: v for n, v in zip(graph.names, graph.nullable) if n in reach}
    assert dict(zip(sub.names, sub.productive)) == {n: v for n, v in zip(graph.names, graph.productive) if n in reach}
    assert all(sub.names[t] in reach for targets in sub.edges for t in targets)


class _Counter(RuleFamily):
    """States 0..4: "a" steps up (4 loops on itself), "b" (an unproductive
    rule in state 1) jumps to 3; it may end in the states of ``ends``."""

    def __init__(self, ends):
        super().__init__("c", ir.alt(ir.literal("a"), ir.ref("never")), 5)
        self.ends = ends

    def moves(self, key):
        steps = [(ir.literal("a"), min(key + 1, 4))]
        if key == 1:
            steps.append((ir.ref("never"), 3))
        return key in self.ends, steps


@pytest.mark.parametrize("ends", [set(), {4}, {3}, {0, 2}])
def test_family_states_have_the_values_of_their_spelled_out_rules(ends):
    family = _Counter(ends)
    rules = {"start": ir.seq(ir.literal("<"), family.ref(0)), "never": ir.seq(ir.literal("x"), ir.ref("never"))}
    g = ir.Grammar(rules, families={"c": family})
    full = g.materialized()
    assert set(full.rules) == {"start", "never", "c/0", "c/1", "c/2", "c/3", "c/4"}
    graph, full_graph = g.rule_graph(), full.rule_graph()
    assert graph.edges[graph.index["start"]] == [graph.index["never"]]
    for key in range(5):
        i = full_graph.index[family.name(key)]
        assert graph.is_productive.of(family.ref(key)) == full_graph.is_productive(i)
        assert graph.is_nullable.of(family.ref(key)) == full_graph.is_nullable(i)
    dfa, full_dfa = LazyDFA(g), LazyDFA(full)
    for text in [b"<", b"<a", b"<aa", b"<aaa", b"<aaaaaa", b"<ab", b"<abx", b"<aab"]:
        s, t = dfa.walk(dfa.start, text), full_dfa.walk(full_dfa.start, text)
        assert (s == DEAD) == (t == DEAD), text
        assert s == DEAD or dfa.is_accepting(s) == full_dfa.is_accepting(t), text


def test_undefined_family_states_are_errors():
    family = _Counter({4})
    for name in ("c/5", "c/x", "d/0"):
        with pytest.raises(GrammarError, match="undefined rule"):
            RuleGraph({"start": ir.ref(name)}, {"c": family})


def test_automaton_rebuilds_a_graph_that_no_longer_describes_the_rules():
    g = ir.Grammar({"start": ir.seq(ir.ref("x"), ir.literal("b")), "x": ir.literal("a")})
    g.graph = RuleGraph(g.rules)
    g.rules["x"] = ir.EPS  # edited after the graph was attached: now nullable
    dfa = LazyDFA(g)
    assert dfa.is_accepting(dfa.walk(dfa.start, b"b"))
    assert dfa.walk(dfa.start, b"ab") == DEAD


def _naive_left_recursive(rules: dict) -> bool:
    nullable = _naive(rules, nullable=True)

    def leading(e):
        k = e[0]
        if k == "ref":
            return {e[1]}
        if k == "seq":
            out = set()
            for x in e[1]:
                out |= leading(x)
                if not _naive_value(x, nullable, nullable=True):
                    break
            return out
        if k in ("alt", "and"):
            return set().union(*(leading(x) for x in e[1]))
        if k == "rep":
            return leading(e[1])
        return set()

    first = {name: leading(body) for name, body in rules.items()}
    for root in rules:
        seen, stack = set(), list(first[root])
        while stack:
            r = stack.pop()
            if r == root:
                return True
            if r not in seen:
                seen.add(r)
                stack.extend(first[r])
    return False


@settings(max_examples=300, deadline=None)
@given(st.lists(bodies(), min_size=len(RULES), max_size=len(RULES)))
def test_left_recursion_is_found_exactly(bs):
    rules = dict(zip(RULES, bs))
    rules["start"] = ir.alt(*(ir.ref(r) for r in RULES))
    try:
        LazyDFA(ir.Grammar(rules))
        found = False
    except GrammarError as e:
        assert "left recursion" in str(e)
        found = True
    assert found == _naive_left_recursive(rules)


def test_long_rule_chains_do_not_recurse():
    """Rule values are solved with an explicit stack: a chain of 30,000 rules
    (deeper than the recursion limit) is fine."""
    n = 30_000
    rules = {f"r{i}": ir.seq(ir.literal("a"), ir.ref(f"r{i + 1}")) for i in range(n)}
    rules[f"r{n}"] = ir.alt(ir.EPS, ir.ref("r0"))
    rules["start"] = ir.ref("r0")
    graph = RuleGraph(rules)
    assert graph.is_productive(graph.index["start"])
    assert not graph.is_nullable(graph.index["r0"])
    assert graph.is_nullable(graph.index[f"r{n}"])
