"""Combinators that need more than a union: ``oneOf``, ``not``,
``if``/``then``/``else`` (mixed into the JSON Schema compiler).

``not`` is computed on the normal form (:mod:`json_constraints`): the negation
of a branch is a union of branches, one per violated constraint, which exists
for types, scalar enums/consts, bounds, lengths, patterns, ``required``,
``properties``, ``items``/``prefixItems`` (as ``contains`` of the negated item
schema) and item/property counts; anything else raises :class:`_CannotNegate`
and the caller reports the keyword as unsupported. ``oneOf`` is a union when
its alternatives are provably disjoint under the constraints already applied
(different types, enum values the other side rejects, disjoint numeric
ranges, a required property the other side forbids or constrains disjointly),
and ``A and not B ...`` otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from structgen.errors import UnsupportedSchemaError
from structgen.frontends.json_constraints import (
    ALL_TYPES,
    NUMERIC,
    TOP,
    ArrPart,
    Branch,
    ObjPart,
    Sub,
    tighter_lower,
    tighter_upper,
    trim_types,
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
        one alternative. Exclusivity only matters for values the context
        allows, so it is checked on each context branch separately."""
        ptr = sub.ptr + "/oneOf"
        before = self.lossy_events
        alts = [self.normalize(self.child(sub, "oneOf", i)) for i in range(len(sub.schema["oneOf"]))]
        lossy = self.lossy_events > before
        out = []
        negs = None
        for c in context:
            here = [a for a in (self.and_([c], alt_, ptr, "oneOf") for alt_ in alts) if a]
            if len(here) <= 1:
                out.extend(here[0] if here else [])
                continue
            if all(self.disjoint_alts(here[i], here[j]) for i in range(len(here)) for j in range(i + 1, len(here))):
                out.extend(b for a in here for b in a)
                continue
            try:
                if negs is None:
                    if lossy:
                        raise _CannotNegate("oneOf", "an alternative is not fully enforced")
                    negs = [self.negate(a, ptr) for a in alts]
                for i, alt_ in enumerate(alts):
                    part = self.and_([c], alt_, ptr, "oneOf")
                    for j in range(len(alts)):
                        if j != i and part:
                            part = self.and_(part, negs[j], ptr, "oneOf")
                    out.extend(part)
            except _CannotNegate as e:
                self.unsupported("oneOf", ptr, f"cannot prove the alternatives exclusive, nor negate them "
                                 f"({e.keyword!r}); it was treated as anyOf")
                out.extend(b for a in here for b in a)
            if len(out) > MAX_BRANCHES:
                raise _TooManyBranches("oneOf", ptr)
        return out

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

    def negate(self, branches: list, ptr: str) -> list:
        result = [TOP]
        for b in branches:
            result = self.and_(result, self.negate_branch(b), ptr, "not")
            if not result:
                break
        return result

    def negate_branch(self, b: Branch) -> list:
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
        if b.multiple_of:
            raise _CannotNegate("multipleOf")
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
        for part in b.obj:
            if any(not self._is_trivial(s) for _, s, _ in part.patterns):
                raise _CannotNegate("patternProperties")
            if part.additional is not None and not self._is_trivial(part.additional):
                raise _CannotNegate("additionalProperties")
            for name, s in part.props.items():
                if not self._is_trivial(s):
                    add({"object"}, required=(name,), obj=(ObjPart({name: self.not_sub(s)}, evaluates=False),))
        for r in b.required:
            add({"object"}, obj=(ObjPart({r: self.false_sub}, evaluates=False),))
        if b.min_props:
            add({"object"}, max_props=b.min_props - 1)
        if b.max_props is not None:
            add({"object"}, min_props=b.max_props + 1)
        if b.prop_names:
            raise _CannotNegate("propertyNames")
        return out

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

    def disjoint_alts(self, a: list, b: list) -> bool:
        return all(self.disjoint(x, y, 0) for x in a for y in b)

    def disjoint(self, a: Branch, b: Branch, depth: int) -> bool:
        types = a.types & b.types
        if not types:
            return True
        try:
            if a.enum is not None and all(not self.branch_accepts(b, v) for v in a.enum):
                return True
            if b.enum is not None and all(not self.branch_accepts(a, v) for v in b.enum):
                return True
        except UnsupportedSchemaError:
            pass
        if types <= NUMERIC:
            lo = tighter_lower(a.minimum, b.minimum)
            hi = tighter_upper(a.maximum, b.maximum)
            if lo is not None and hi is not None:
                fl, fh = Fraction(lo[0]), Fraction(hi[0])
                if fl > fh or (fl == fh and (lo[1] or hi[1])):
                    return True
        if types == frozenset({"object"}) and depth < 3:
            for x, y in ((a, b), (b, a)):
                for name in x.required:
                    try:
                        nx = self._conj_branches(self.prop_conj(x.obj, name))
                        ny = self._conj_branches(self.prop_conj(y.obj, name))
                    except UnsupportedSchemaError:
                        continue
                    if not ny:  # required on one side, impossible on the other
                        return True
                    if name in y.required and all(self.disjoint(p, q, depth + 1) for p in nx for q in ny):
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
