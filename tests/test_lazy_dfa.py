"""The lazy derivative DFA against the independent IR oracle.

Random grammars (with rule references, recursion, bounded repeats) and random
byte strings: the DFA must accept exactly what the oracle accepts, and a
prefix must stay alive exactly when the oracle says it can be extended.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from structgen.automaton.lazy_dfa import DEAD, LazyDFA
from structgen.errors import GrammarError, GrammarTooLargeError
from structgen.grammar import ir
from tests.ir_oracle import can_extend, matches

ALPHABET = b"ab{}\xc3\xa9"


def run(dfa: LazyDFA, data: bytes) -> int:
    return dfa.walk(dfa.start, data)


def leaf():
    return st.one_of(
        st.sampled_from([ir.literal("a"), ir.literal("b"), ir.literal("ab"), ir.EPS, ir.chars([(0xE9, 0xE9)])]),
        st.sampled_from([ir.byte_ranges([(ord("a"), ord("b"))]), ir.ref("inner")]),
    )


def expressions(leaves=None):
    return st.recursive(
        leaf() if leaves is None else leaves,
        lambda sub: st.one_of(
            st.lists(sub, min_size=1, max_size=3).map(lambda xs: ir.seq(*xs)),
            st.lists(sub, min_size=1, max_size=3).map(lambda xs: ir.alt(*xs)),
            st.tuples(sub, st.integers(0, 3), st.one_of(st.none(), st.integers(0, 4))).map(
                lambda t: ir.rep(t[0], t[1], None if t[2] is None else max(t[1], t[2]))
            ),
        ),
        max_leaves=8,
    )


def grammar_of(start, inner) -> ir.Grammar:
    # "inner" is recursive but guarded by a leading "{", so never left-recursive.
    return ir.Grammar({"start": start, "inner": ir.alt(ir.literal("b"), ir.seq(ir.literal("{"), inner, ir.literal("}")))})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), expressions(), st.lists(st.binary(max_size=6).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)), max_size=12))
def test_dfa_agrees_with_oracle(start, inner, samples):
    inner = ir.seq(inner, ir.ref("inner")) if inner[0] == "ref" else inner
    try:
        g = grammar_of(start, ir.alt(inner, ir.EPS))
        dfa = LazyDFA(g)
    except GrammarError:
        return  # left recursion through the random inner body; covered below
    for data in samples:
        state = run(dfa, data)
        assert (state != DEAD) == can_extend(g, data), data
        assert (state != DEAD and dfa.is_accepting(state)) == matches(g, data), data


def completion(dfa: LazyDFA, state: int) -> bytes | None:
    """A shortest byte string leading from ``state`` to acceptance."""
    paths = {state: b""}
    frontier = [state]
    while frontier:
        nxt = []
        for s in frontier:
            if dfa.is_accepting(s):
                return paths[s]
            row = dfa.complete_row(s)
            for b in range(256):
                t = int(row[b])
                if t != DEAD and t not in paths:
                    paths[t] = paths[s] + bytes([b])
                    nxt.append(t)
        frontier = nxt
    return None


REGULAR_LEAVES = st.sampled_from([ir.literal("a"), ir.literal("b"), ir.literal("ab"), ir.EPS, ir.byte_ranges([(ord("a"), ord("b"))]), ir.chars([(0xE9, 0xE9)])])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(REGULAR_LEAVES), expressions(REGULAR_LEAVES), st.integers(0, 4), expressions(), st.lists(st.binary(max_size=6).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)), max_size=12))
def test_intersections_agree_with_oracle_and_never_dead_end(a, b, max_len, outer, samples):
    """Acceptance matches the oracle, and every live state really can still
    be completed (an empty product must become DEAD, not a trap). The length
    bound makes products that run out of room common."""
    short = ir.rep(ir.byte_ranges([(0, 255)]), 0, max_len)
    g = grammar_of(ir.alt(ir.seq(ir.intersect(a, b, short), ir.literal("}")), outer), ir.literal("b"))
    dfa = LazyDFA(g)
    short_prefixes = [bytes(p) for n in range(4) for p in itertools.product(ALPHABET, repeat=n)]
    for data in samples:
        state = run(dfa, data)
        assert (state != DEAD and dfa.is_accepting(state)) == matches(g, data), data
    for data in samples + short_prefixes:
        state = run(dfa, data)
        if state != DEAD:
            rest = completion(dfa, state)
            assert rest is not None and matches(g, data + rest), data


def test_empty_intersection_is_dead_at_once():
    g = ir.Grammar.from_expr(ir.alt(ir.literal("x"), ir.seq(ir.literal("y"), ir.intersect(ir.rep(ir.literal("a")), ir.rep(ir.literal("b"), 1)))))
    dfa = LazyDFA(g)
    assert run(dfa, b"y") == DEAD
    assert dfa.is_accepting(run(dfa, b"x"))


def test_intersections_decided_by_long_searches():
    """Productivity of an intersection can need a search over hundreds of
    derivatives (past the search's first buffers), and too long a search is a
    clear error rather than a hang."""
    a = ir.literal("a")

    def after_y(*parts):
        return LazyDFA(ir.Grammar.from_expr(ir.alt(ir.literal("x"), ir.seq(ir.literal("y"), ir.intersect(*parts)))))

    live = after_y(ir.rep(ir.alt(a, ir.literal("b"))), ir.seq(ir.rep(a, 300, 300), ir.literal("b")))
    assert live.is_accepting(run(live, b"y" + b"a" * 300 + b"b"))
    assert run(live, b"y" + b"a" * 299 + b"b") == DEAD
    empty = after_y(ir.rep(a, 300, 300), ir.rep(a, 0, 299))
    assert run(empty, b"y") == DEAD
    with pytest.raises(GrammarTooLargeError, match="intersection"):
        run(after_y(ir.rep(a, 60_000, 60_000), ir.rep(a, 0, 59_999)), b"y")


def test_recursion_is_unbounded():
    g = ir.Grammar({"start": ir.ref("v"), "v": ir.alt(ir.literal("x"), ir.seq(ir.literal("["), ir.ref("v"), ir.literal("]")))})
    dfa = LazyDFA(g)
    deep = b"[" * 300 + b"x" + b"]" * 300
    assert dfa.is_accepting(run(dfa, deep))
    assert run(dfa, b"[" * 300 + b"x" + b"]" * 301) == DEAD
    assert not dfa.is_accepting(run(dfa, b"[" * 300 + b"x" + b"]" * 299))


def test_deeply_nested_documents_and_expressions():
    # a document's nesting is a longer continuation, not deeper recursion
    g = ir.Grammar({"start": ir.ref("v"), "v": ir.alt(ir.literal("x"), ir.seq(ir.literal("["), ir.ref("v"), ir.literal("]")))})
    dfa = LazyDFA(g)
    assert dfa.is_accepting(run(dfa, b"[" * 20000 + b"x" + b"]" * 20000))
    # an IR expression nested deeper than a recursive loader could go (two Python frames per IR node)
    nested = ir.literal("z")
    for _ in range(300):
        nested = ir.alt(ir.literal("y"), ir.seq(ir.literal("a"), nested))
    dfa = LazyDFA(ir.Grammar.from_expr(nested))
    assert dfa.is_accepting(run(dfa, b"a" * 299 + b"y"))
    assert run(dfa, b"a" * 301 + b"y") == DEAD
    # one whose derivation would recurse past the compiled depth: a clear error
    nested = ir.literal("z")
    for _ in range(5000):
        nested = ir.seq(ir.rep(ir.literal("a"), 0, 1), nested)
    dfa = LazyDFA(ir.Grammar.from_expr(nested))
    with pytest.raises(GrammarTooLargeError, match="levels deep"):
        run(dfa, b"az")


def test_subexpressions_shared_by_rules_interned_at_different_times():
    # "word" is one IR object in two rules; "second" is interned only when a
    # derivative reaches it, and must reuse the nodes made for "first"
    word = ir.seq(ir.literal("ab"), ir.rep(ir.literal("c"), 0, None))
    g = ir.Grammar({
        "start": ir.alt(ir.seq(ir.literal("1"), ir.ref("first")), ir.seq(ir.literal("2"), ir.ref("second"))),
        "first": ir.seq(word, ir.literal(".")),
        "second": ir.seq(ir.literal("-"), word, ir.literal("+"), word),
    })  # fmt: skip
    dfa = LazyDFA(g)
    for doc in (b"1abcc.", b"2-ab+abc", b"2-abc+ab"):
        assert dfa.is_accepting(run(dfa, doc)), doc
    for doc in (b"1ab", b"2-ab.", b"2-ab+a", b"1abc+ab"):
        assert not dfa.is_accepting(run(dfa, doc)), doc


def test_left_recursion_is_rejected_with_the_cycle():
    g = ir.Grammar({"start": ir.ref("e"), "e": ir.alt(ir.seq(ir.ref("e"), ir.literal("+")), ir.literal("1"))})
    with pytest.raises(GrammarError, match="left recursion.*e -> e"):
        LazyDFA(g)


def test_unproductive_rules_never_leave_live_dead_ends():
    # "loop" can never finish; a branch through it must not be allowed to start.
    g = ir.Grammar({"start": ir.alt(ir.literal("ok"), ir.seq(ir.literal("n"), ir.ref("loop"))), "loop": ir.seq(ir.literal("x"), ir.ref("loop"))})
    dfa = LazyDFA(g)
    assert run(dfa, b"n") == DEAD
    assert dfa.is_accepting(run(dfa, b"ok"))


def test_bounded_repeat_is_lazy():
    dfa = LazyDFA(ir.Grammar.from_expr(ir.rep(ir.byte_ranges([(97, 122)]), 1, 2000)))
    assert dfa.num_states <= 2
    assert dfa.is_accepting(run(dfa, b"a" * 2000))
    assert run(dfa, b"a" * 2001) == DEAD
    assert not dfa.is_accepting(run(dfa, b""))


def test_state_cap_raises_clear_error():
    dfa = LazyDFA(ir.Grammar.from_expr(ir.rep(ir.byte_ranges([(97, 122)]), 0, 5000)), max_states=100)
    with pytest.raises(GrammarTooLargeError, match="100 states"):
        run(dfa, b"a" * 200)


def test_undefined_rule_is_named():
    with pytest.raises(GrammarError, match="undefined rule 'nope'"):
        LazyDFA(ir.Grammar({"start": ir.ref("nope")}))


def test_forced_bytes_stop_at_a_choice():
    g = ir.Grammar.from_expr(ir.seq(ir.literal('{"name":'), ir.alt(ir.literal('"a"'), ir.literal('"b"'))))
    dfa = LazyDFA(g)
    assert dfa.forced_bytes(dfa.start) == b'{"name":"'


@pytest.mark.parametrize("lo,hi,horizon", [(0, 50, 8), (3, None, 8), (20, 40, 8), (0, 5, 8)])
def test_mask_equivalent_state_keeps_acceptance(lo, hi, horizon):
    dfa = LazyDFA(ir.Grammar.from_expr(ir.seq(ir.rep(ir.literal("a"), lo, hi), ir.literal("!"))))
    state = dfa.start
    for _ in range(12):
        same = dfa.mask_equivalent(state, horizon)
        assert dfa.is_accepting(same) == dfa.is_accepting(state)
        for probe in (b"a" * (horizon - 1), b"!", b"a!", b"a" * (horizon - 1) + b"!"):
            assert (dfa.walk(state, probe) == DEAD) == (dfa.walk(same, probe) == DEAD), probe
        state = dfa.walk(state, b"a")
        if state == DEAD:
            break
