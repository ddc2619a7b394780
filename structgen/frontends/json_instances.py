"""Checking concrete JSON values against the normal form (mixed into the
JSON Schema compiler): enum/const filtering, ``propertyNames`` of declared
keys, ``patternProperties`` selection and disjointness proofs all ask whether
a value satisfies a branch. The checks follow ``jsonschema``'s semantics
(Python ``int``/``float`` comparisons, its ``multipleOf`` arithmetic, its
format checkers) together with our own pattern and format languages, so a
value is kept only if both agree.
"""

from __future__ import annotations

from structgen.frontends import charlang
from structgen.frontends.json_constraints import NUMERIC, Branch, json_key, json_type
from structgen.frontends.json_formats import format_language


def _multiple_of(v, m) -> bool:
    """jsonschema's multipleOf check."""
    if isinstance(m, float):
        try:
            q = v / m
            return int(q) == q
        except (OverflowError, ValueError):
            return False
    if isinstance(v, float):
        try:
            return not (v % m)
        except (OverflowError, ValueError):
            return False
    return v % m == 0


class InstanceChecksMixin:
    """``accepts``/``branch_accepts`` and the per-key / per-position subschemas."""

    def accepts(self, conj, v) -> bool:
        """Does the JSON value v satisfy every subschema of conj?"""
        for s in conj:
            if s.schema is True:
                continue
            if s.schema is False:
                return False
            if not any(self.branch_accepts(b, v) for b in self.normalize(s)):
                return False
        return True

    def branch_accepts(self, b: Branch, v) -> bool:
        t = json_type(v, self.draft)
        if t not in b.types:
            return False
        if b.enum is not None:
            keys = self._enum_keys(b.enum)
            if json_key(v) not in keys:
                return False
        if b.not_values and json_key(v) in self._enum_keys(b.not_values):
            return False
        if t in NUMERIC:
            if b.minimum is not None and not (v > b.minimum[0] if b.minimum[1] else v >= b.minimum[0]):
                return False
            if b.maximum is not None and not (v < b.maximum[0] if b.maximum[1] else v <= b.maximum[0]):
                return False
            for m, _ in b.multiple_of:
                if not _multiple_of(v, m):
                    return False
            for m, _ in b.not_multiple_of:
                if _multiple_of(v, m):
                    return False
        elif t == "string":
            if len(v) < b.min_len or (b.max_len is not None and len(v) > b.max_len):
                return False
            for p, pptr in b.patterns:
                if not charlang.matches(self.pattern(p, pptr), v):
                    return False
            for p, pptr in b.not_patterns:
                if charlang.matches(self.pattern(p, pptr), v):
                    return False
            for f, _ in b.formats:
                if not (charlang.matches(format_language(f), v) and self.format_checker.conforms(v, f)):
                    return False
        elif t == "array":
            if len(v) < b.min_items or (b.max_items is not None and len(v) > b.max_items):
                return False
            for i, x in enumerate(v):
                if not self.accepts(self.item_conj(b.arr, i), x):
                    return False
            for c, cmin, cmax, _ in b.contains:
                n = sum(1 for x in v if self.accepts((c,), x))
                if n < cmin or (cmax is not None and n > cmax):
                    return False
        elif t == "object":
            if any(r not in v for r in b.required):
                return False
            if len(v) < b.min_props or (b.max_props is not None and len(v) > b.max_props):
                return False
            for k, x in v.items():
                if not self.accepts(self.prop_conj(b.obj, k), x):
                    return False
                if b.prop_names and not self.accepts(b.prop_names, k):
                    return False
        return True

    def _enum_keys(self, values: tuple) -> frozenset:
        hit = self.enum_keys.get(id(values))
        if hit is None or hit[0] is not values:
            hit = self.enum_keys[id(values)] = (values, frozenset(json_key(v) for v in values))
        return hit[1]

    def item_conj(self, parts, i: int) -> tuple:
        out = []
        for p in parts:
            if i < len(p.prefix):
                out.append(p.prefix[i])
            elif p.items is not None:
                out.append(p.items)
        return tuple(out)

    def prop_conj(self, parts, name: str) -> tuple:
        out = []
        for p in parts:
            matched = [s for pat, s, pptr in p.patterns if charlang.matches(self.pattern(pat, pptr), name)]
            if name in p.props:
                out.append(p.props[name])
            out.extend(matched)
            if name not in p.props and not matched and p.additional is not None:
                out.append(p.additional)
        return tuple(out)
