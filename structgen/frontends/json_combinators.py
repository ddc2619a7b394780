"""Combinators that need more than a union: ``oneOf``, ``not``,
``if``/``then``/``else`` (mixed into the JSON Schema compiler).

``not`` is computed on the normal form (:mod:`json_constraints`): the negation
of a branch is a union of branches, one per violated constraint, which exists
for types, scalar enums/consts, bounds, integral ``multipleOf``, lengths,
patterns, ``required``, ``properties``, ``items``/``prefixItems`` (as
``contains`` of the negated item schema) and item/property counts. A negation only has to be right on the
values its context allows, so it is built relative to each context branch:
``not not X`` is X; within a finite ``enum`` each value is checked by
``jsonschema`` itself; within a closed object (``additionalProperties:
false``, no patterns) "some key breaks ``additionalProperties`` /
``patternProperties`` / ``propertyNames``" is a union over the few keys
allowed. Schemas that are only ``{"not": X}`` are applied after their
siblings (``allOf`` members, the subschemas of one value) to get that
context. Anything else raises :class:`_CannotNegate` and the caller reports
the keyword as unsupported. ``oneOf`` is each alternative AND the negation of
the others, skipping, per JSON type, the alternatives it is provably disjoint
from (different types, enum values the other side rejects, disjoint numeric
ranges, a required property the other side forbids or constrains
disjointly).
"""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction

from structgen.errors import UnsupportedSchemaError
from structgen.frontends import charlang
from structgen.frontends.json_constraints import (
    ALL_TYPES,
    NUMERIC,
    TOP,
    ArrPart,
    Branch,
    ObjPart,
    Sub,
    json_key,
    json_type,
    tighter_lower,
    tighter_upper,
    trim_types,
    with_types,
)

MAX_BRANCHES = 256  # disjunctive normal form size cap per subschema


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _TooManyBranches(Exception):
    def __init__(self, keyword: str, ptr: str) -> None:
        self.keyword = keyword
        self.ptr = ptr
        self.detail = f"more than {MAX_BRANCHES} alternatives after combining subschemas"
        super().__init__(keyword)


class _CannotNegate(Exception):
    def __init__(self, keyword: str, detail: str = "") -> None:
        self.keyword = keyword
        self.detail = detail
        super().__init__(keyword)


def _no_annotations(b: Branch) -> Branch:
    """The branch with its object/array parts marked as not evaluating."""
    if not b.obj and not b.arr:
        return b
    return replace(b, obj=tuple(replace(p, evaluates=False) for p in b.obj),
                   arr=tuple(replace(p, evaluates=False) for p in b.arr))


class CombinatorsMixin:
    """oneOf / not / if-then-else and disjointness proofs for ``_Compiler``."""

    def one_of(self, sub: Sub, context: list) -> list:
        """``context`` (the branches of the keywords applied so far) AND exactly
        one alternative: each alternative AND the negation of every other one
        it is not provably disjoint from. Exclusivity only matters for values
        the context allows, so it is settled on each context branch."""
        ptr = sub.ptr + "/oneOf"
        subs = [self.child(sub, "oneOf", i) for i in range(len(sub.schema["oneOf"]))]
        alts = [self.normalize(s) for s in subs]
        if len(context) * sum(len(a) for a in alts) > MAX_BRANCHES:
            raise _TooManyBranches("oneOf", ptr)  # before the pairwise exclusion work, which is quadratic
        out = []
        for c in context:
            here = [self.and_([c], a, ptr, "oneOf") for a in alts]
            try:
                exact = []
                for i, part in enumerate(here):
                    for j in range(len(alts)):
                        if j != i and part:
                            part = self.exclude(part, subs[j], alts[j], ptr)
                            if len(part) > MAX_BRANCHES:  # each negation can multiply the branches
                                raise _TooManyBranches("oneOf", ptr)
                    exact.extend(part)
                out.extend(exact)
            except _CannotNegate as e:
                self.unsupported("oneOf", ptr, f"cannot prove the alternatives exclusive, nor negate them "
                                 f"({e.keyword!r}); it was treated as anyOf")
                out.extend(b for a in here for b in a)
            if len(out) > MAX_BRANCHES:
                raise _TooManyBranches("oneOf", ptr)
        return out

    def exclude(self, part: list, sub: Sub, alt: list, ptr: str) -> list:
        """``part and not sub`` (``alt`` is sub's normal form): branches
        provably disjoint from ``alt`` need no negation."""
        out = []
        for p in part:
            safe = p.types
            for y in alt:
                safe = safe & self.disjoint_types(p, y, 0)
            if safe:
                out.append(with_types(p, safe))
            if safe != p.types:
                rest = with_types(p, p.types - safe)
                out.extend(self.and_([rest], self.negation(sub, rest), ptr, "oneOf"))
        return out

    def restrict(self, branches: list, sub: Sub) -> list:
        """``branches and sub``. A schema that is only ``not X`` is negated
        relative to each branch, so sibling constraints (an enum, a closed
        object) can bound the negation; callers apply such schemas last."""
        inner = self.pure_not(sub)
        if inner is None:
            return self.and_(branches, self.normalize(sub), sub.ptr)
        return self.exclude_sub(branches, inner)

    def exclude_sub(self, branches: list, sub: Sub) -> list:
        """``branches and not sub``; a negation we cannot build is reported
        as unsupported (lenient: skipped)."""
        try:
            return self.and_not(branches, sub)
        except _CannotNegate as e:
            self.unsupported("not", sub.ptr, f"cannot negate {e.keyword!r}" + (f" ({e.detail})" if e.detail else ""))
            return branches

    def and_not(self, branches: list, sub: Sub) -> list:
        """``branches and not sub``, negating relative to each branch."""
        out = []
        for p in branches:
            out.extend(self.and_([p], self.negation(sub, p), sub.ptr, "not"))
            if len(out) > MAX_BRANCHES:
                raise _TooManyBranches("not", sub.ptr)
        return out

    def pure_not(self, sub: Sub) -> Sub | None:
        """X when sub is ``{"not": X}`` and nothing else that constrains."""
        s = sub.schema
        if isinstance(s, dict) and "not" in s and self._is_trivial({k: v for k, v in s.items() if k != "not"}):
            return self.child(sub, "not")
        return None

    def negations_last(self, subs) -> list:
        return sorted(subs, key=lambda s: self.pure_not(s) is not None)

    def negation(self, sub: Sub, ctx: Branch = TOP) -> list:
        """Branches equal to ``not sub`` on every value ``ctx`` allows. A
        double negation is its inner schema; a finite enum context is
        filtered value by value (by ``jsonschema`` itself); a closed object
        context bounds the keys that can break a property keyword."""
        c = self.canon((sub,))
        if c is None:
            return [TOP]
        if not c:
            return []
        s = c[0]
        closed = self.closed_keys(ctx)
        key = (s.key, None if ctx.enum is None else tuple(json_key(v) for v in ctx.enum), closed)
        hit = self.negation_memo.get(key)
        if hit is None:
            hit = self.negation_memo[key] = self._negation(s, ctx, closed)
        return hit

    def _negation(self, s: Sub, ctx: Branch, closed) -> list:
        if ctx.enum is not None:
            return [Branch(enum=tuple(v for v in ctx.enum if not self.validates(s, v)))]
        double = self.pure_not(s)
        inner = self.normalize_exact(double or s)
        if inner is None:
            raise _CannotNegate("not", "its subschema is not fully enforced")
        if double is not None:
            return [_no_annotations(b) for b in inner]
        return self.negate(inner, s.ptr, closed)

    def validates(self, sub: Sub, value) -> bool:
        """``jsonschema``'s verdict on value against sub; it must not depend
        on format assertion, which the caller cannot know to be on or off."""
        verdicts = {self.validator_cls(sub.schema, _resolver=sub.resolver, format_checker=fc).is_valid(value)
                    for fc in (None, self.format_checker)}
        if len(verdicts) > 1:
            raise _CannotNegate("format", "a value's validity depends on format assertion")
        return verdicts.pop()

    @staticmethod
    def closed_keys(b: Branch) -> tuple | None:
        """The keys an object of branch b may have at all, when finite: those
        of a schema object with ``additionalProperties: false`` and no
        ``patternProperties``."""
        keys = None
        for p in b.obj:
            if p.additional is not None and p.additional.schema is False and not p.patterns:
                names = set(p.props)
                keys = names if keys is None else keys & names
        return None if keys is None else tuple(sorted(keys))

    def if_then_else(self, sub: Sub) -> list:
        s = sub.schema
        cond = self.normalize_exact(self.child(sub, "if"))
        if cond is None:
            self.unsupported("if", sub.ptr + "/if", "the condition is not fully enforced")
            return [TOP]
        then = self.normalize(self.child(sub, "then")) if "then" in s else [TOP]
        other = self.normalize(self.child(sub, "else")) if "else" in s else [TOP]
        if "then" not in s and "else" not in s:
            # no constraint, but the condition's annotations count when it holds
            try:
                return cond + self.negate(cond, sub.ptr + "/if")
            except _CannotNegate:
                return [TOP]
        try:
            neg = self.negate(cond, sub.ptr + "/if")
        except _CannotNegate as e:
            if "then" not in s:
                # (if) or (not if and else) == if or else, for validation; the
                # else branches carry no annotations (else may not have applied)
                return cond + [_no_annotations(b) for b in other]
            self.unsupported("if", sub.ptr + "/if", f"cannot negate {e.keyword!r} in the condition")
            return [TOP]
        return self.and_(cond, then, sub.ptr, "then") + self.and_(neg, other, sub.ptr, "else")

    def negate(self, branches: list, ptr: str, closed: tuple | None = None) -> list:
        """The complement of a union of branches; ``closed``: the only keys
        objects can have, when the context bounds them (see closed_keys)."""
        result = [TOP]
        for b in branches:
            result = self.and_(result, self.negate_branch(b, closed), ptr, "not")
            if not result:
                break
        return result

    def negate_branch(self, b: Branch, closed: tuple | None = None) -> list:
        out: list[Branch] = []
        T = b.types
        if T != ALL_TYPES:
            out.append(Branch(types=ALL_TYPES - T))

        def add(types, **kw) -> None:
            ts = T & frozenset(types)
            if ts:
                x = trim_types(Branch(types=ts, **kw))
                if x is not None:
                    out.append(x)

        if b.enum is not None:
            out.extend(self.negate_enum(b.enum, T))
        if b.not_values:
            add(ALL_TYPES, enum=b.not_values)
        if b.minimum is not None:
            add(NUMERIC, maximum=(b.minimum[0], not b.minimum[1]))
        if b.maximum is not None:
            add(NUMERIC, minimum=(b.maximum[0], not b.maximum[1]))
        for m, mptr in b.multiple_of:
            if isinstance(m, float) and not m.is_integer():
                raise _CannotNegate("multipleOf", "a non-integral divisor")
            add(NUMERIC, not_multiple_of=((m, mptr),))
        for m in b.not_multiple_of:
            add(NUMERIC, multiple_of=(m,))
        if b.min_len:
            add({"string"}, max_len=b.min_len - 1)
        if b.max_len is not None:
            add({"string"}, min_len=b.max_len + 1)
        for p in b.patterns:
            add({"string"}, not_patterns=(p,))
        for p in b.not_patterns:
            add({"string"}, patterns=(p,))
        if b.formats:
            raise _CannotNegate("format")
        for part in b.arr:
            # some item breaks its schema: item i for a prefix schema (so at
            # least i+1 items), any later item for ``items`` (a ``contains``)
            for i, p in enumerate(part.prefix):
                if not self._is_trivial(p):
                    add({"array"}, min_items=i + 1, arr=(ArrPart((self.true_sub,) * i + (self.not_sub(p),),
                                                                 None, part.ptr, evaluates=False),))
            if part.items is not None and not self._is_trivial(part.items):
                if part.prefix:  # "some item after the prefix": contains counts every item
                    raise _CannotNegate("items", "items after prefixItems")
                add({"array"}, contains=((self.not_sub(part.items), 1, None, part.ptr),))
        if b.min_items:
            add({"array"}, max_items=b.min_items - 1)
        if b.max_items is not None:
            add({"array"}, min_items=b.max_items + 1)
        if b.contains:
            raise _CannotNegate("contains")
        def broken(name: str, s: Sub) -> None:
            add({"object"}, required=(name,), obj=(ObjPart({name: self.not_sub(s)}, evaluates=False),))

        for part in b.obj:
            for pat, s, pptr in part.patterns:
                if not self._is_trivial(s):
                    for k in self.witness_keys(closed, "patternProperties"):
                        if self.key_matches(pat, pptr, k):
                            broken(k, s)
            if part.additional is not None and not self._is_trivial(part.additional):
                for k in self.witness_keys(closed, "additionalProperties"):
                    if k not in part.props and not any(self.key_matches(pat, pptr, k) for pat, _, pptr in part.patterns):
                        broken(k, part.additional)
            for name, s in part.props.items():
                if not self._is_trivial(s):
                    broken(name, s)
        for r in b.required:
            add({"object"}, obj=(ObjPart({r: self.false_sub}, evaluates=False),))
        if b.min_props:
            add({"object"}, max_props=b.min_props - 1)
        if b.max_props is not None:
            add({"object"}, min_props=b.max_props + 1)
        for s in b.prop_names:
            for k in self.witness_keys(closed, "propertyNames"):
                if not self.validates(s, k):
                    add({"object"}, required=(k,))
        return out

    @staticmethod
    def witness_keys(closed: tuple | None, keyword: str) -> tuple:
        """The keys that may break a keyword about every key: only a closed
        context makes "some key breaks it" a finite union."""
        if closed is None:
            raise _CannotNegate(keyword, "no closed set of keys around it")
        return closed

    def key_matches(self, pattern: str, ptr: str, key: str) -> bool:
        """Does a property pattern match the key, for our pattern language and
        for Python's ``re`` (which ``jsonschema`` uses) alike?"""
        ours = charlang.matches(self.pattern(pattern, ptr), key)
        try:
            theirs = re.search(pattern, key) is not None
        except (re.error, OverflowError):  # OverflowError: a repeat count above re's limit
            theirs = None
        if ours != theirs:
            raise _CannotNegate("patternProperties", f"pattern {pattern!r} on key {key!r}")
        return ours

    def negate_enum(self, values, T) -> list:
        out = []
        rest = set(T)
        strings = tuple(v for v in values if isinstance(v, str))
        if strings and "string" in T:
            rest.discard("string")
            out.append(Branch(types=frozenset({"string"}), not_values=strings))
        if any(v is None for v in values):
            rest.discard("null")
        bools = {v for v in values if isinstance(v, bool)}
        if bools and "boolean" in T:
            rest.discard("boolean")
            if len(bools) < 2:
                out.append(Branch(types=frozenset({"boolean"}), not_values=tuple(bools)))
        nums = sorted({Fraction(v): v for v in values if _is_num(v)}.items())
        if nums and T & NUMERIC:
            rest -= NUMERIC
            vals = [v for _, v in nums]
            bounds = [None] + vals + [None]
            for lo, hi in zip(bounds, bounds[1:]):
                out.append(Branch(types=T & NUMERIC, minimum=None if lo is None else (lo, True),
                                  maximum=None if hi is None else (hi, True)))
        if any(isinstance(v, list) for v in values) and "array" in T:
            raise _CannotNegate("enum", "an array value")
        if any(isinstance(v, dict) for v in values) and "object" in T:
            raise _CannotNegate("enum", "an object value")
        if rest:
            out.append(Branch(types=frozenset(rest)))
        return [x for x in (trim_types(b) for b in out) if x is not None]

    def disjoint(self, a: Branch, b: Branch, depth: int) -> bool:
        return self.disjoint_types(a, b, depth) == a.types

    def disjoint_types(self, a: Branch, b: Branch, depth: int) -> frozenset:
        """The types of a on which no value satisfies both branches (proven
        per type, so a oneOf alternative only needs negating on the rest)."""
        out = set(a.types - b.types)
        common = a.types & b.types
        try:
            for x, y in ((a, b), (b, a)):
                if x.enum is not None:
                    out |= common - {json_type(v, self.draft) for v in x.enum if self.branch_accepts(y, v)}
        except UnsupportedSchemaError:
            pass
        if common & NUMERIC:
            lo = tighter_lower(a.minimum, b.minimum)
            hi = tighter_upper(a.maximum, b.maximum)
            if lo is not None and hi is not None:
                fl, fh = Fraction(lo[0]), Fraction(hi[0])
                if fl > fh or (fl == fh and (lo[1] or hi[1])):
                    out |= common & NUMERIC
        if "object" in common and "object" not in out and depth < 3 and self.objects_disjoint(a, b, depth):
            out.add("object")
        return frozenset(out)

    def objects_disjoint(self, a: Branch, b: Branch, depth: int) -> bool:
        """A property one side requires is impossible on the other side, or
        its values there are provably disjoint from the other side's values
        for it (the other side need not require it: it is present anyway)."""
        for x, y in ((a, b), (b, a)):
            for name in x.required:
                try:
                    nx = self._conj_branches(self.prop_conj(x.obj, name))
                    ny = self._conj_branches(self.prop_conj(y.obj, name))
                except UnsupportedSchemaError:
                    continue
                if not ny:  # required on one side, impossible on the other
                    return True
                if all(self.disjoint(p, q, depth + 1) for p in nx for q in ny):
                    return True
        return False

    def _conj_branches(self, conj) -> list:
        c = self.canon(conj)
        if c is None:
            return []
        branches = [TOP]
        for s in c:
            branches = self.and_(branches, self.normalize(s), s.ptr)
        return branches
