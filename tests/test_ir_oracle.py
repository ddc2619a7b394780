"""Checks of the IR test oracle itself, against brute-force enumeration of
each expression's language (over the alphabet {a, b})."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from structgen.grammar import ir
from structgen.grammar.ir import Grammar
from tests.ir_oracle import can_extend, matches

ALPHABET = b"ab"


def lang(e, limit: int) -> set[bytes]:
    """Every string of L(e) of length <= limit (no rule references)."""
    kind = e[0]
    if kind == "eps":
        return {b""}
    if kind == "nothing":
        return set()
    if kind == "bytes":
        return {bytes([c]) for c in ALPHABET if any(lo <= c <= hi for lo, hi in e[1])}
    if kind == "alt":
        return set().union(*(lang(x, limit) for x in e[1]))
    if kind == "seq":
        cur = {b""}
        for part in e[1]:
            words = lang(part, limit)
            cur = {x + y for x in cur for y in words if len(x) + len(y) <= limit}
        return cur
    if kind == "rep":
        _, body, lo, hi = e
        words = lang(body, limit)
        out: set[bytes] = set()
        level = {b""}
        count = 0
        while level and (hi is None or count <= hi) and count <= limit + lo + 1:
            if count >= lo:
                out |= level
            level = {x + y for x in level for y in words if len(x) + len(y) <= limit}
            count += 1
        return out
    raise AssertionError(kind)


def completion_bound(e) -> int:
    """An upper bound on how many more bytes finish any viable prefix."""
    kind = e[0]
    if kind in ("eps", "nothing"):
        return 0
    if kind == "bytes":
        return 1
    if kind == "alt":
        return max(completion_bound(x) for x in e[1])
    if kind == "seq":
        return sum(completion_bound(x) for x in e[1])
    if kind == "rep":
        return max(e[2], 1) * completion_bound(e[1])
    raise AssertionError(kind)


leaves = st.sampled_from([
    ir.literal("a"), ir.literal("b"), ir.byte_ranges([(97, 98)]), ir.EPS, ir.NOTHING,
])


def _extend(children):
    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda xs: ir.seq(*xs)),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: ir.alt(*xs)),
        st.tuples(children, st.integers(0, 2), st.one_of(st.none(), st.integers(0, 3))).map(
            lambda t: ir.rep(t[0], t[1], None if t[2] is None else max(t[1], t[2]))
        ),
    )


exprs = st.recursive(leaves, _extend, max_leaves=6)
WORDS = [bytes(w) for n in range(6) for w in itertools.product(ALPHABET, repeat=n)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs)
def test_matches_and_prefixes_agree_with_enumeration(e):
    assume(completion_bound(e) <= 5)
    words = lang(e, 9)
    for w in WORDS:
        assert matches(e, w) == (w in words), (e, w)
        if len(w) <= 3:
            expected = any(x.startswith(w) for x in words if len(x) <= len(w) + completion_bound(e))
            assert can_extend(e, w) == expected, (e, w)


def test_recursive_grammar():
    # S = ("(" S ")")*  -- balanced parentheses
    g = Grammar({"start": ir.rep(ir.seq(ir.literal("("), ir.ref("start"), ir.literal(")")), 0, None)})
    for s, ok in [("", True), ("()", True), ("(()())()", True), ("(", False), ("())", False), (")(", False)]:
        assert matches(g, s.encode()) == ok, s
    assert can_extend(g, b"((()")
    assert not can_extend(g, b"())")


def test_rules_and_empty_languages():
    g = Grammar({
        "start": ir.seq(ir.ref("digits"), ir.opt(ir.seq(ir.literal("."), ir.ref("digits")))),
        "digits": ir.rep(ir.byte_ranges([(48, 57)]), 1, None),
        "dead": ir.seq(ir.literal("x"), ir.ref("dead")),  # no finite string
    })
    assert matches(g, b"12.5") and matches(g, b"7") and not matches(g, b"1.") and not matches(g, b".5")
    assert can_extend(g, b"1.") and not can_extend(g, b"1..")
    dead = Grammar({"start": ir.seq(ir.literal("x"), ir.ref("start"))})
    assert not matches(dead, b"xx") and not can_extend(dead, b"x") and not can_extend(dead, b"")
    assert not can_extend(ir.NOTHING, b"") and can_extend(ir.EPS, b"") and not can_extend(ir.EPS, b"a")


def test_big_bounded_repeat_is_fast():
    e = ir.rep(ir.byte_ranges([(97, 122)]), 1, 2000)
    assert matches(e, b"x" * 2000) and not matches(e, b"x" * 2001) and not matches(e, b"")
    assert can_extend(e, b"x" * 1999)
    nullable = ir.rep(ir.opt(ir.literal("ab")), 3, 5)
    assert matches(nullable, b"ab" * 5) and not matches(nullable, b"ab" * 6) and matches(nullable, b"")


def test_left_recursion_is_refused():
    g = Grammar({"start": ir.alt(ir.seq(ir.ref("start"), ir.literal("a")), ir.literal("a"))})
    with pytest.raises(ValueError, match="left recursion"):
        matches(g, b"aa")
