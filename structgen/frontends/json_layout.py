"""Arrays and objects as grammar IR (mixed into the JSON Schema compiler).

Arrays: the prefix positions, then the repeated item, within
``minItems``/``maxItems``; one ``contains`` (with ``minContains`` /
``maxContains``) becomes a counting automaton whose states are rules.

Objects: declared members (value schemas from ``properties``,
``patternProperties`` and ``additionalProperties`` of every schema object of
the branch) and one "undeclared member" alternative (key languages split by
pattern region). Small objects accept their members in any order, each at
most once (:meth:`object_any_order`), and so do objects of up to 10 members
while a per-grammar budget of subset states lasts; larger ones, and every
object of a canonical grammar, take them in declaration order with
undeclared members anywhere (:meth:`object_layout`). See the module docstring
of :mod:`json_schema` for the exact rules.
"""

from __future__ import annotations

from structgen.frontends import json_text
from structgen.frontends.json_combinators import _CannotNegate
from structgen.frontends.json_constraints import Branch
from structgen.grammar import ir
from structgen.grammar.families import RuleFamily
from structgen.grammar.ir import EPS, NOTHING, alt, literal, opt, ref, rep, seq

MAX_LAYOUT_STATES = 20000  # object/array counting states
MAX_PATTERN_REGIONS = 6  # patternProperties patterns whose key regions are split exactly
ANY_ORDER_MAX_PROPERTIES = 6  # objects with at most this many declared properties accept any key order
ANY_ORDER_BUDGET = 1024  # subset states per grammar for larger any-order objects (up to 10 properties)


class ContainersMixin:
    """Array and object expressions for ``_Compiler``."""

    def rule_family(self, options):
        """``key -> ref`` to the rule ``alt(*options(*key))``, each rule made
        once, on first request: the counting and subset states of arrays and
        objects, whose options request further states (cycles included).
        Requested states are defined from a work list, not recursively: an
        array with ``maxItems: 9000`` and ``contains`` is a chain of 9,000."""
        refs: dict = {}
        pending: list = []
        draining = False

        def get(*key) -> ir.Expr:
            nonlocal draining
            r = refs.get(key)
            if r is None:
                name = self.sink.reserve()
                r = refs[key] = ref(name)
                pending.append((name, key))
                if not draining:
                    draining = True
                    try:
                        while pending:
                            name, k = pending.pop()
                            self.sink.define(name, alt(*options(*k)))
                    finally:
                        draining = False
            return r

        return get

    def array(self, b: Branch) -> ir.Expr:
        parts = b.arr
        L = max((len(p.prefix) for p in parts), default=0)
        lo, hi = b.min_items, b.max_items
        elems = [self.value(self.item_conj(parts, i)) for i in range(L)]
        rest_conj = tuple(p.items for p in parts if p.items is not None)
        rest = self.value(rest_conj)
        for i, e in enumerate(elems):
            if e == NOTHING:
                hi = i if hi is None else min(hi, i)
                break
        if rest == NOTHING:
            hi = L if hi is None else min(hi, L)
        if hi is not None and lo > hi:
            self.reasons.add(b.ptr, "no array length satisfies the item constraints")
            return NOTHING
        contains = [c for c in b.contains if not (c[1] == 0 and c[2] is None)]
        if len(contains) > 1:
            for c in contains[1:]:
                self.unsupported("contains", c[3], "only one contains per array is supported")
            contains = contains[:1]
        open_, close = literal("["), literal("]")
        if contains:
            body, empty_ok = self.array_with_contains(b, parts, elems, rest_conj, rest, L, lo, hi, contains[0])
        else:
            empty_ok = lo == 0
            body = self.array_body(elems, rest, L, lo, hi)
        opts = []
        if empty_ok:
            opts.append(seq(open_, self.ws, close))
        if hi is None or hi > 0:
            opts.append(seq(open_, self.ws, body, self.ws, close))
        return alt(*opts)

    def array_body(self, elems, rest, L, lo, hi) -> ir.Expr:
        """Non-empty item lists (no contains)."""

        def tail(i: int) -> ir.Expr:
            if hi is not None and i >= hi:
                return EPS
            if i < L:
                inner = seq(self.sep, elems[i], tail(i + 1))
                return inner if i < lo else opt(inner)
            return rep(seq(self.sep, rest), max(lo - i, 0), None if hi is None else hi - i)

        first = elems[0] if L > 0 else rest
        return seq(first, tail(1))

    def array_with_contains(self, b, parts, elems, rest_conj, rest, L, lo, hi, contains):
        csub, cmin, cmax, cptr = contains
        if cmax is not None and cmin > cmax:
            return NOTHING, False
        top = hi if hi is not None else max(L, lo, 1)
        cap_m = cmin if cmax is None else cmax
        if (top + 1) * (cap_m + 1) > MAX_LAYOUT_STATES:
            self.unsupported("contains", cptr, "too many counting states")
            return self.array_body(elems, rest, L, lo, hi), lo == 0
        neg = None
        if cmax is not None:
            try:
                self.negation(csub)
            except _CannotNegate as e:
                self.unsupported("maxContains", cptr, f"cannot negate the contains schema ({e.keyword!r})")
                cmax = None
                cap_m = cmin
            else:
                neg = self.not_sub(csub)

        def elem(i: int, kind: str) -> ir.Expr:
            conj = self.item_conj(parts, i) if i < L else rest_conj
            if kind == "any":
                return elems[i] if i < L else rest
            return self.value(conj + ((csub,) if kind == "yes" else (neg,)))

        def state_options(i: int, m: int) -> list:
            opts = []
            if i >= lo and m >= cmin:
                opts.append(EPS)
            if hi is None or i < hi:
                opts.extend(edges(i, m, self.sep))
            return opts

        state = self.rule_family(state_options)

        def edges(i: int, m: int, sep) -> list:
            j = min(i + 1, top) if hi is None else i + 1
            out = []
            if cmax is None:
                if m < cmin:
                    out.append(seq(sep, elem(i, "yes"), state(j, m + 1)))
                out.append(seq(sep, elem(i, "any"), state(j, m)))
            else:
                if m + 1 <= cmax:
                    out.append(seq(sep, elem(i, "yes"), state(j, m + 1)))
                out.append(seq(sep, elem(i, "no"), state(j, m)))
            return out

        body = alt(*edges(0, 0, EPS))
        return body, lo == 0 and cmin == 0

    def object(self, b: Branch) -> ir.Expr:
        parts = b.obj
        names: list[str] = []
        for p in parts:
            for n in p.props:
                if n not in names:
                    names.append(n)
        for r in b.required:
            if r not in names:
                names.append(r)
        required = set(b.required)
        members = []
        for n in names:
            if b.prop_names and not self.accepts(b.prop_names, n):
                v = NOTHING
            else:
                v = self.value(self.prop_conj(parts, n))
            if v == NOTHING:
                if n in required:
                    self.reasons.add(b.ptr, f"required property {n!r} cannot have any value")
                    return NOTHING
                continue
            members.append((self.hoist(seq(json_text.string_literal(n), self.colon, v)), n in required))
        extra = NOTHING if self.closes(b, members) else self.extra_member(b, parts, names)
        e_states = (b.max_props + 1) if (b.max_props is not None and extra != NOTHING) else 2
        if not self.canonical and self.any_order_affordable(len(members), e_states):
            return self.object_any_order(b, members, extra)
        return self.object_layout(b, members, extra)

    def closes(self, b: Branch, members: list) -> bool:
        """Does ``closed_objects`` leave this object without undeclared keys?
        Only where its schema objects declare ``properties`` (parts made by
        negation do not count) and none speaks about other keys, and not where
        ``minProperties`` needs an undeclared key: closing must only narrow."""
        parts = b.obj
        return (
            self.closed_objects
            and any(p.evaluates for p in parts)
            and all(not p.patterns and p.additional is None for p in parts)
            and b.min_props <= len(members)
        )

    def any_order_affordable(self, n: int, e_states: int) -> bool:
        """Any key order costs a rule per subset of members seen: always paid
        for small objects, for up to 10 members while the grammar's budget
        lasts (declared order keeps big schemas with many such objects small)."""
        states = (1 << n) * e_states
        if n < 2 or states > 2048:
            return False
        if n <= ANY_ORDER_MAX_PROPERTIES:
            return True
        if self.any_order_spent + states > ANY_ORDER_BUDGET:
            return False
        self.any_order_spent += states
        return True

    def reachable_min_props(self, b: Branch, n: int, has_extra: bool) -> int | None:
        """``minProperties`` as a layout of ``n`` declared members can count
        it (undeclared keys count as one); None if no object is left."""
        if b.min_props <= n + (1 if has_extra else 0):
            return b.min_props
        if has_extra:
            self.unsupported("minProperties", b.ptr,
                             "would need several distinct undeclared keys, and a grammar cannot stop a key from repeating")
            return n + 1
        self.reasons.add(b.ptr, "minProperties exceeds the properties allowed")
        return None

    def object_any_order(self, b: Branch, members: list, extra: ir.Expr) -> ir.Expr:
        """Members in any order, each declared one at most once: a state per
        (set of declared members seen, undeclared members seen), as a rule
        family built only where a generation goes (:class:`AnyOrderMembers`)."""
        n = len(members)
        has_extra = extra != NOTHING
        min_props = self.reachable_min_props(b, n, has_extra)
        if min_props is None:
            return NOTHING
        family = AnyOrderMembers(f"m{len(self.families)}", members, extra, self.sep, min_props, b.max_props)
        self.families[family.prefix] = family
        open_, close = literal("{"), literal("}")
        opts = []
        if family.required == 0 and min_props == 0:
            opts.append(seq(open_, self.ws, close))
        opts.append(seq(open_, self.ws, family.ref(0), self.ws, close))
        return alt(*opts)

    def extra_member(self, b: Branch, parts, names: list) -> ir.Expr:
        pats = [(pat, s, pptr, idx) for idx, p in enumerate(parts) for pat, s, pptr in p.patterns]
        if len(pats) > MAX_PATTERN_REGIONS:
            self.unsupported("patternProperties", pats[0][2],
                             f"more than {MAX_PATTERN_REGIONS} patterns on one object")
            pats = pats[:MAX_PATTERN_REGIONS]
        groups: dict = {}
        order = []
        for mask in range(1 << len(pats)):
            inside = [i for i in range(len(pats)) if mask >> i & 1]
            outside = [i for i in range(len(pats)) if not mask >> i & 1]
            conj = [pats[i][1] for i in inside]
            hit_parts = {pats[i][3] for i in inside}
            for idx, p in enumerate(parts):
                if p.additional is not None and idx not in hit_parts:
                    conj.append(p.additional)
            v = self.value(tuple(conj))
            if v == NOTHING:
                continue
            gkey = id(v)
            if gkey not in groups:
                groups[gkey] = (v, [])
                order.append(gkey)
            groups[gkey][1].append((inside, outside))
        members = []
        for gkey in order:
            v, regions = groups[gkey]
            keys = [self.key_language(b, names, pats, inside, outside) for inside, outside in regions]
            if len(regions) == 1 << len(pats) and pats:
                keys = [self.key_language(b, names, pats, [], [])]
            key = alt(*keys)
            if key == NOTHING:
                continue
            key_ir = seq(json_text.QUOTE, self.spell_key(key), json_text.QUOTE)
            members.append(self.hoist(seq(key_ir, self.colon, v)))
        return self.hoist(alt(*members))

    def object_layout(self, b: Branch, members: list, extra: ir.Expr) -> ir.Expr:
        n = len(members)
        has_extra = extra != NOTHING
        max_props = b.max_props
        n_req = sum(1 for _, r in members if r)
        min_props = self.reachable_min_props(b, n, has_extra)
        if min_props is None:
            return NOTHING
        if max_props is not None and n_req > max_props:
            self.reasons.add(b.ptr, "more required properties than maxProperties")
            return NOTHING
        if n == 0 and has_extra:  # undeclared members only: count them with a repeat
            more = None if max_props is None else max_props - 1
            body = NOTHING if max_props == 0 else seq(extra, rep(seq(self.sep, extra), 0, more))
        else:
            body = self.counted_members(b, members, extra, min_props, max_props, n_req)
        open_, close = literal("{"), literal("}")
        opts = []
        if n_req == 0 and min_props == 0:
            opts.append(seq(open_, self.ws, close))
        if body != NOTHING:
            opts.append(seq(open_, self.ws, body, self.ws, close))
        if not opts:
            self.reasons.add(b.ptr, "no object satisfies the property constraints")
        return alt(*opts)

    def counted_members(self, b: Branch, members: list, extra: ir.Expr, min_props: int,
                        max_props: int | None, n_req: int) -> ir.Expr:
        """Non-empty member lists in declaration order (optional members may
        be left out, undeclared ones go anywhere), counting members where
        min/maxProperties need it: one rule per (next declared member, count,
        ...) state."""
        n = len(members)
        has_extra = extra != NOTHING
        track_min = min_props > n_req
        track_max = max_props is not None and (has_extra or max_props < n)
        cap_m = min_props if track_min else 0
        use_h = track_min and has_extra
        counted = (max_props if track_max else 1) + 1  # states of the member count (c)
        if (track_min or track_max) and (n + 1) * counted * (cap_m + 1) * 2 > MAX_LAYOUT_STATES:
            self.unsupported("maxProperties" if track_max else "minProperties", b.ptr, "too many counting states")
            track_max = False
            track_min, cap_m, use_h = False, 0, False
        cap_c = max_props if track_max else 1
        d_memo: dict = {}
        rules_for_d = n > 4

        def nxt_c(c: int) -> int | None:
            if track_max:
                return c + 1 if c + 1 <= cap_c else None
            return 1

        def D(k: int, c: int, m: int, h: bool) -> ir.Expr:
            key = (k, c, m, h)
            if key in d_memo:
                return d_memo[key]
            if k == n:
                r = EPS if (c > 0 and m >= cap_m) else NOTHING
                d_memo[key] = r
                return r
            name = None
            if rules_for_d:
                name = self.sink.reserve()
                d_memo[key] = ref(name)
            expr, req = members[k]
            opts = []
            c2 = nxt_c(c)
            if c2 is not None:
                opts.append(seq(self.sep if c else EPS, expr, E(k + 1, c2, min(m + 1, cap_m), h)))
            if not req:
                opts.append(D(k + 1, c, m, h))
            r = alt(*opts)
            if name is not None:
                self.sink.define(name, r)
                return ref(name)
            d_memo[key] = r
            return r

        def e_options(k: int, c: int, m: int, h: bool) -> list:
            opts = [D(k, c, m, h)]
            c2 = nxt_c(c)
            if c2 is not None:
                m2 = m if (use_h and h) or not track_min else min(m + 1, cap_m)
                opts.append(seq(self.sep if c else EPS, extra, E(k, c2, m2, h or use_h)))
            return opts

        E = self.rule_family(e_options) if has_extra else D
        return E(0, 0, 0, False)


class AnyOrderMembers(RuleFamily):
    """The non-empty member lists of an object whose members may come in any
    order, each declared one at most once. A state is (set of declared
    members seen, undeclared members seen); undeclared members are counted
    exactly for ``maxProperties`` and as at most one distinct key for
    ``minProperties``. Key ``seen * (cap + 1) + extras``; state 0 is the
    start."""

    def __init__(self, prefix: str, members: list, extra: ir.Expr, sep: ir.Expr,
                 min_props: int, max_props: int | None) -> None:
        self.exprs = [expr for expr, _ in members]
        self.required = sum(1 << k for k, (_, req) in enumerate(members) if req)
        self.has_extra = extra != NOTHING
        self.min_props, self.max_props = min_props, max_props
        self.cap = max_props if (max_props is not None and self.has_extra) else 1
        self.first_parts = self.exprs
        self.later_parts = [seq(sep, x) for x in self.exprs]
        self.extra_parts = (extra, seq(sep, extra))
        super().__init__(prefix, alt(sep, extra, *self.exprs), (1 << len(self.exprs)) * (self.cap + 1))

    def moves(self, key: int):
        seen, e = divmod(key, self.cap + 1)
        count = bin(seen).count("1")
        started = bool(seen or e)
        ends = started and seen & self.required == self.required and count + min(e, 1) >= self.min_props
        steps = []
        if self.max_props is None or count + e < self.max_props:
            parts = self.later_parts if started else self.first_parts
            for k, part in enumerate(parts):
                if not seen >> k & 1:
                    steps.append((part, (seen | 1 << k) * (self.cap + 1) + e))
            if self.has_extra:
                steps.append((self.extra_parts[started], seen * (self.cap + 1) + min(e + 1, self.cap)))
        return ends, steps
