"""A hypothesis strategy of JSON Schemas of the kinds structgen supports, each
with a value valid against it, for ``structgen bench fuzz``.

Each schema is built around its value: the value is drawn first and the
constraints are drawn so that it meets them (a minimum at or below it, a
pattern it matches, a property list it has), so that the instance-seeded walk
has an instance to follow and every schema is satisfiable. Combinators whose
validity the construction cannot promise (``oneOf`` when two branches match)
are left to the validator: the campaign keeps an instance only where
``jsonschema`` agrees it is valid.

Needs hypothesis (the test extra); :func:`draw_schemas` imports it.
"""

from __future__ import annotations

from typing import Any

# Patterns with a value that matches them. ECMA and Python's re agree on these
# (no \s, no \w or \d in classes Python reads as Unicode).
_PATTERNS = [
    ("^[a-z0-9_]{1,8}$", "ab_1"),
    ("^[0-9]{3}-[0-9]{4}$", "555-0100"),
    ("^(foo|bar)+$", "foobar"),
    ("[A-Z]", "xYz"),
    ("^[^@ ]+@[a-z]+\\.(com|org)$", "me@example.org"),
    ("^[A-Z][a-z]*$", "Emile"),
]
_FORMATS = {
    "date": "2024-02-29",
    "date-time": "2024-02-29T12:30:00Z",
    "time": "23:59:59+01:00",
    "email": "someone@example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "uri": "https://example.com/a?b=c",
    "hostname": "www.example.com",
    "duration": "P3DT4H",
}
_NAMES = ["a", "id", "name", "value", "tags", "x y", "é", "count", "kind", "data"]


def strategy(max_leaves: int = 8) -> Any:
    """``(schema, value)`` pairs, ``value`` valid against ``schema`` by construction
    (except where a ``oneOf``'s branches overlap)."""
    from hypothesis import strategies as st

    integers = st.integers(-10**6, 10**6)
    floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(lambda f: round(f, 3))
    text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
    scalars = st.none() | st.booleans() | integers | floats | text

    @st.composite
    def integer(draw) -> tuple[dict, Any]:
        step = draw(st.sampled_from([None, 1, 2, 3, 5, 10]))
        value = draw(st.integers(-10**4, 10**4)) * (step or 1)
        schema: dict = {"type": "integer"}
        if step:
            schema["multipleOf"] = step
        if draw(st.booleans()):
            below = draw(st.integers(0, 100))
            if draw(st.booleans()):
                schema["minimum"] = value - below
            else:
                schema["exclusiveMinimum"] = value - below - 1
        if draw(st.booleans()):
            schema["maximum"] = value + draw(st.integers(0, 10**5))
        return schema, value

    @st.composite
    def number(draw) -> tuple[dict, Any]:
        value = draw(floats | integers)
        schema: dict = {"type": "number"}
        if draw(st.booleans()):
            schema["minimum"] = value - draw(st.sampled_from([0, 0.5, 1, 1000]))
        if draw(st.booleans()):
            schema["exclusiveMaximum"] = value + draw(st.sampled_from([0.25, 1, 1e6]))
        return schema, value

    @st.composite
    def string(draw) -> tuple[dict, Any]:
        kind = draw(st.sampled_from(["free", "length", "pattern", "format", "enum"]))
        if kind == "pattern":
            pattern, value = draw(st.sampled_from(_PATTERNS))
            return {"type": "string", "pattern": pattern}, value
        if kind == "format":
            fmt = draw(st.sampled_from(sorted(_FORMATS)))
            return {"type": "string", "format": fmt}, _FORMATS[fmt]
        value = draw(text)
        if kind == "enum":
            others = draw(st.lists(text, max_size=4))
            return {"enum": sorted({value, *others})}, value
        schema = {"type": "string"}
        if kind == "length":
            schema["minLength"] = draw(st.integers(0, len(value)))
            schema["maxLength"] = len(value) + draw(st.integers(0, 20))
        return schema, value

    @st.composite
    def literal(draw) -> tuple[dict, Any]:
        value = draw(scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.sampled_from(_NAMES), scalars, max_size=3))
        if draw(st.booleans()):
            return {"const": value}, value
        return {"enum": [value] + draw(st.lists(scalars, max_size=3))}, value

    leaves = (
        integer() | number() | string() | literal()
        | st.sampled_from([({"type": "boolean"}, True), ({"type": "null"}, None), ({}, {"any": [1, "x"]}),
                           ({"type": ["string", "null"]}, None), (True, 0.5)])
    )

    @st.composite
    def array(draw, children) -> tuple[dict, Any]:
        item, value = draw(children)
        n = draw(st.integers(0, 3))
        schema: dict = {"type": "array"}
        if draw(st.booleans()):
            head, head_value = draw(children)
            schema["prefixItems"] = [head]
            values = [head_value] + [value] * n
            schema["items"] = item if draw(st.booleans()) or n else False
        else:
            schema["items"] = item
            values = [value] * n
        if draw(st.booleans()):
            schema["minItems"] = draw(st.integers(0, len(values)))
        if draw(st.booleans()):
            schema["maxItems"] = len(values) + draw(st.integers(0, 3))
        return schema, values

    @st.composite
    def obj(draw, children) -> tuple[dict, Any]:
        names = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=4, unique=True))
        members = [draw(children) for _ in names]
        present = [draw(st.booleans()) for _ in names]
        required = [n for n, p in zip(names, present) if p and draw(st.booleans())]
        value = {n: v for n, (_, v), p in zip(names, members, present) if p}
        schema: dict = {"type": "object", "properties": {n: s for n, (s, _) in zip(names, members)}}
        if required:
            schema["required"] = required
        extra = draw(st.sampled_from(["absent", "false", "true", "schema"]))
        if extra == "false":
            schema["additionalProperties"] = False
        elif extra == "true":
            schema["additionalProperties"] = True
        elif extra == "schema":
            schema["additionalProperties"], extra_value = draw(children)
            if draw(st.booleans()):
                value["other"] = extra_value
        if draw(st.booleans()):
            schema["maxProperties"] = len(value) + draw(st.integers(0, 2))
        return schema, value

    @st.composite
    def combined(draw, children) -> tuple[dict, Any]:
        (first, value), (second, _) = draw(children), draw(children)
        branches = [first, second] if draw(st.booleans()) else [second, first]
        keyword = draw(st.sampled_from(["anyOf", "oneOf", "allOf"]))
        if keyword == "allOf":  # the second part restates what the value is
            return {"allOf": [first, {"type": _json_type(value)} if value is not None else {"const": None}]}, value
        return {keyword: branches}, value

    @st.composite
    def referenced(draw, children) -> tuple[dict, Any]:
        """A recursive tree of the child schema, through ``$defs`` and ``$ref``
        (only at the root: ``#/$defs/...`` names the root)."""
        schema, value = draw(children)
        node = {"type": "object", "properties": {"value": schema, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
                "required": ["value"], "additionalProperties": False}
        return {"$defs": {"node": node}, "$ref": "#/$defs/node"}, {"value": value, "children": [{"value": value, "children": []}]}

    def extend(children):
        return array(children) | obj(children) | combined(children)

    tree = st.recursive(leaves, extend, max_leaves=max_leaves)
    return tree | referenced(tree)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def draw_schemas(n: int, seed: int) -> list[tuple[Any, Any]]:
    """``n`` distinct ``(schema, value)`` pairs (fewer if hypothesis finds
    fewer), the same for the same ``seed``."""
    import json

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded

    found: dict[str, tuple[Any, Any]] = {}

    @seeded(seed)
    @settings(max_examples=n * 2, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy())
    def collect(pair: tuple[Any, Any]) -> None:
        if len(found) < n:
            found.setdefault(json.dumps(pair[0], sort_keys=True), pair)

    collect()
    return list(found.values())
