"""The normal form the JSON Schema frontend reduces schemas to.

A schema becomes a *disjunction of branches* (``anyOf``/``oneOf``/``if``
alternatives multiplied out); a :class:`Branch` is a conjunction of
constraints, grouped by the JSON type they apply to. Subschemas that describe
*children* (property values, array items) are not expanded here: they stay
:class:`Sub` references and are compiled lazily, which is what lets recursive
schemas become recursive grammar rules.

Object and array keywords are kept per schema object (:class:`ObjPart`,
:class:`ArrPart`) rather than merged, because ``additionalProperties`` and
``items`` only know the ``properties``/``prefixItems`` of their own schema
object: ``allOf: [{properties: {a: ...}}, {additionalProperties: false}]``
forbids ``a``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

ATOMS = ("null", "boolean", "integer", "fraction", "string", "array", "object")
ALL_TYPES = frozenset(ATOMS)
NUMERIC = frozenset({"integer", "fraction"})
TYPE_ATOMS = {
    "null": frozenset({"null"}),
    "boolean": frozenset({"boolean"}),
    "integer": frozenset({"integer"}),
    "number": NUMERIC,
    "string": frozenset({"string"}),
    "array": frozenset({"array"}),
    "object": frozenset({"object"}),
}


@dataclass(frozen=True, eq=False)
class Sub:
    """A subschema (dict or bool) with the resolver that resolves its refs."""

    schema: object
    resolver: object
    ptr: str

    @property
    def key(self):
        if isinstance(self.schema, bool):
            return self.schema
        return (id(self.schema), getattr(self.resolver, "_base_uri", id(self.resolver)))


@dataclass(eq=False)
class ObjPart:
    props: dict  # name -> Sub, in declaration order
    patterns: tuple = ()  # ((pattern, Sub, ptr), ...)
    additional: Sub | None = None
    ptr: str = ""
    evaluates: bool = True  # counts for unevaluatedProperties (False: made by negation)


@dataclass(eq=False)
class ArrPart:
    prefix: tuple = ()  # Subs for the first positions
    items: Sub | None = None  # every later position; None: unconstrained
    ptr: str = ""
    evaluates: bool = True


@dataclass(eq=False)
class Branch:
    types: frozenset = ALL_TYPES
    enum: tuple | None = None  # allowed values; None: unconstrained
    not_values: tuple = ()  # excluded scalar values (strings, booleans, null)
    minimum: tuple | None = None  # (bound, exclusive)
    maximum: tuple | None = None
    multiple_of: tuple = ()  # ((value, ptr), ...)
    not_multiple_of: tuple = ()  # ((integral value, ptr), ...): from a negated multipleOf
    min_len: int = 0
    max_len: int | None = None
    patterns: tuple = ()  # ((pattern, ptr), ...)
    not_patterns: tuple = ()
    formats: tuple = ()  # ((name, ptr), ...)
    arr: tuple = ()  # ArrPart, ...
    min_items: int = 0
    max_items: int | None = None
    contains: tuple = ()  # ((Sub, min, max, ptr), ...)
    obj: tuple = ()  # ObjPart, ...
    required: tuple = ()
    min_props: int = 0
    max_props: int | None = None
    prop_names: tuple = ()  # Subs every key must satisfy
    ptr: str = ""

    def is_top(self) -> bool:
        return self.types == ALL_TYPES and not self.has_constraints()

    def has_constraints(self) -> bool:
        return bool(
            self.enum is not None or self.not_values or self.minimum or self.maximum or self.multiple_of
            or self.not_multiple_of
            or self.min_len or self.max_len is not None or self.patterns or self.not_patterns or self.formats
            or self.arr or self.min_items or self.max_items is not None or self.contains or self.obj
            or self.required or self.min_props or self.max_props is not None or self.prop_names
        )


TOP = Branch()


def json_type(v, draft: int) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        if draft >= 6 and math.isfinite(v) and v.is_integer():
            return "integer"
        return "fraction"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(v).__name__}")


def json_equal(a, b) -> bool:
    """JSON Schema equality: 1 == 1.0, but true != 1; containers by content."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return False


def json_key(v):
    """A hashable key with ``json_key(a) == json_key(b)`` iff ``json_equal(a, b)``."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return ("f", repr(v))
        return ("n", Fraction(v))
    if isinstance(v, str):
        return ("s", v)
    if v is None:
        return ("z",)
    if isinstance(v, list):
        return ("a", tuple(json_key(x) for x in v))
    if isinstance(v, dict):
        return ("o", frozenset((k, json_key(x)) for k, x in v.items()))
    raise TypeError(f"not a JSON value: {type(v).__name__}")


def tighter_lower(a, b):
    """The tighter of two lower bounds (bound, exclusive); None: no bound."""
    if a is None:
        return b
    if b is None:
        return a
    fa, fb = Fraction(a[0]), Fraction(b[0])
    if fa != fb:
        return a if fa > fb else b
    return a if a[1] else b


def tighter_upper(a, b):
    """The tighter of two upper bounds (bound, exclusive); None: no bound."""
    if a is None:
        return b
    if b is None:
        return a
    fa, fb = Fraction(a[0]), Fraction(b[0])
    if fa != fb:
        return a if fa < fb else b
    return a if a[1] else b


def _min_opt(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _merge_required(a: tuple, b: tuple) -> tuple:
    out = list(a)
    for x in b:
        if x not in out:
            out.append(x)
    return tuple(out)


def _union(a: tuple, b: tuple, key=id) -> tuple:
    """``a``, then the members of ``b`` not already in it (by ``key``). A
    conjunction is idempotent; concatenating instead doubled every list at
    each level of ``d_i = allOf[$ref d_i+1, $ref d_i+1]`` (2**24 patterns
    from a 1 KB schema)."""
    if not a:
        return b
    if not b or b is a:
        return a
    seen = {key(x) for x in a}
    return a + tuple(x for x in b if key(x) not in seen)


def _first(x: tuple):
    return x[0]


def _contains_key(x: tuple):
    return (x[0].key, x[1], x[2])


def _sub_key(x: Sub):
    return x.key


def intersect(a: Branch, b: Branch) -> Branch | None:
    """The conjunction of two branches; None when obviously empty."""
    if a is TOP:
        return b
    if b is TOP:
        return a
    types = a.types & b.types
    if not types:
        return None
    if a.enum is None:
        enum = b.enum
    elif b.enum is None:
        enum = a.enum
    else:
        keys = {json_key(y) for y in b.enum}
        enum = tuple(x for x in a.enum if json_key(x) in keys)
    if enum is not None and not enum:
        return None
    return Branch(
        types=types,
        enum=enum,
        not_values=_union(a.not_values, b.not_values, json_key),
        minimum=tighter_lower(a.minimum, b.minimum),
        maximum=tighter_upper(a.maximum, b.maximum),
        multiple_of=_union(a.multiple_of, b.multiple_of, _first),
        not_multiple_of=_union(a.not_multiple_of, b.not_multiple_of, _first),
        min_len=max(a.min_len, b.min_len),
        max_len=_min_opt(a.max_len, b.max_len),
        patterns=_union(a.patterns, b.patterns, _first),
        not_patterns=_union(a.not_patterns, b.not_patterns, _first),
        formats=_union(a.formats, b.formats, _first),
        arr=_union(a.arr, b.arr),
        min_items=max(a.min_items, b.min_items),
        max_items=_min_opt(a.max_items, b.max_items),
        contains=_union(a.contains, b.contains, _contains_key),
        obj=_union(a.obj, b.obj),
        required=_merge_required(a.required, b.required),
        min_props=max(a.min_props, b.min_props),
        max_props=_min_opt(a.max_props, b.max_props),
        prop_names=_union(a.prop_names, b.prop_names, _sub_key),
        ptr=a.ptr or b.ptr,
    )


def with_types(b: Branch, types) -> Branch:
    return replace(b, types=frozenset(types))


def number_bounds_empty(b: Branch) -> bool:
    if b.minimum is None or b.maximum is None:
        return False
    lo, hi = Fraction(b.minimum[0]), Fraction(b.maximum[0])
    return lo > hi or (lo == hi and (b.minimum[1] or b.maximum[1]))


def trim_types(b: Branch) -> Branch | None:
    """Drop the types a branch's own constraints make impossible (cheap checks)."""
    types = set(b.types)
    if types & NUMERIC and number_bounds_empty(b):
        types -= NUMERIC
    if "string" in types and b.max_len is not None and b.min_len > b.max_len:
        types.discard("string")
    if "array" in types and b.max_items is not None and b.min_items > b.max_items:
        types.discard("array")
    if "object" in types and b.max_props is not None and (b.min_props > b.max_props or len(b.required) > b.max_props):
        types.discard("object")
    if "null" in types and any(v is None for v in b.not_values):
        types.discard("null")
    if "boolean" in types and any(v is True for v in b.not_values) and any(v is False for v in b.not_values):
        types.discard("boolean")
    if not types:
        return None
    if len(types) != len(b.types):
        return replace(b, types=frozenset(types))
    return b


@dataclass
class Reasons:
    """Why parts of a schema turned out empty (for UnsatisfiableSchemaError)."""

    items: list = field(default_factory=list)

    def add(self, ptr: str, why: str) -> None:
        if len(self.items) < 20:
            self.items.append((ptr or "#", why))
