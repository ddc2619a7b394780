"""Checking a schema against its draft's metaschema, quickly.

Every compilation validates the schema against its metaschema first, so a
malformed keyword gets a clear error instead of a confusing grammar. The
2019-09 and 2020-12 metaschemas are an ``allOf`` over one metaschema per
vocabulary, tied together by ``$dynamicRef``/``$recursiveRef``; ``jsonschema``
resolves those dynamically at every subschema, which made this check cost as
much as the rest of the frontend (6 ms per MaskBench schema on average, 1.1 ms
once flattened).

On top of that, :func:`quick_check` compiles a static metaschema once into
plain Python closures, a fifth of ``jsonschema``'s time on MaskBench schemas
(its validators are built for every subschema they descend into). It only
says "valid" or "not sure": the frontend asks ``jsonschema`` for the error
whenever it is not sure, so a closure that is stricter than the metaschema
costs time, never a wrong verdict. Integers must be ``int`` (``1.0`` is not
sure), and a metaschema keyword it does not know makes the whole draft
always unsure.

When a schema is checked against the standard metaschema itself, the dynamic
reference always lands on that metaschema's root. So the same check can use
one static schema: the vocabularies' ``properties`` and ``$defs`` merged
(they are disjoint) and each dynamic reference replaced by ``"$ref": "#"``.
:func:`static_metaschema` verifies that shape and returns the original
metaschema where it does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from structgen.frontends.json_constraints import json_equal, json_key

# Keywords of a vocabulary metaschema that assert nothing about instances.
_NON_ASSERTIONS = frozenset(
    {"$schema", "$id", "$vocabulary", "$dynamicAnchor", "$recursiveAnchor", "title", "$comment", "description"}
)
_TYPE = ["object", "boolean"]


def static_metaschema(validator_cls: Any) -> dict:
    """A metaschema without dynamic references that accepts exactly what
    ``validator_cls.META_SCHEMA`` accepts (that metaschema itself for drafts
    4 to 7, whose metaschemas are static already)."""
    from jsonschema_specifications import REGISTRY

    meta = validator_cls.META_SCHEMA
    if "allOf" not in meta:
        return meta
    base = meta["$id"].rsplit("/", 1)[0] + "/"
    own = {k: v for k, v in meta.items() if k != "allOf"}
    parts = [REGISTRY.contents(base + r["$ref"]) for r in meta["allOf"]] + [own]
    properties: dict = {}
    defs: dict = {}
    for part in parts:
        if set(part) - _NON_ASSERTIONS - {"properties", "$defs", "type"} or part.get("type") != _TYPE:
            return meta
        if set(part.get("properties", {})) & set(properties) or set(part.get("$defs", {})) & set(defs):
            return meta
        properties.update(part.get("properties", {}))
        defs.update(part.get("$defs", {}))
    return _static({"type": _TYPE, "properties": properties, "$defs": defs})


def _static(node: Any) -> Any:
    """Dynamic references to the metaschema become ``#``; references into a
    vocabulary metaschema's ``$defs`` point at the merged ``$defs``."""
    if isinstance(node, list):
        return [_static(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _static(v) for k, v in node.items()}
    if out.get("$dynamicRef") == "#meta" or out.get("$recursiveRef") == "#":
        out.pop("$dynamicRef", None)
        out.pop("$recursiveRef", None)
        out["$ref"] = "#"
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("meta/") and "#" in ref:
        out["$ref"] = "#" + ref.split("#", 1)[1]
    return out


# --------------------------------------------------------------------------- compiled check

Check = Callable[[Any], bool]
_IGNORED = frozenset({"$schema", "$id", "id", "title", "description", "default", "$comment", "format",
                      "definitions", "$defs", "deprecated", "examples", "readOnly", "writeOnly",
                      "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$vocabulary"})
_PYTHON_TYPES = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int,
                 "boolean": bool, "null": type(None)}
_checks: dict[Any, Check | None] = {}


class _Unknown(Exception):
    """A metaschema construct the compiled check does not handle."""


def quick_check(validator_cls: Any, schema: Any) -> bool:
    """True if ``schema`` certainly satisfies the draft's metaschema; False
    if it may not (then ask ``jsonschema``, which also explains why)."""
    check = _checks.get(validator_cls, False)
    if check is False:
        try:
            check = _Compiler(static_metaschema(validator_cls), validator_cls).root
        except _Unknown:
            check = None
        _checks[validator_cls] = check
    if check is None:
        return False
    try:
        return check(schema)
    except RecursionError:
        return False


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _all_distinct(items: list) -> bool:
    return len({json_key(x) for x in items}) == len(items)


class _Compiler:
    """Closures for a static metaschema; each subschema compiled once, by
    identity (references and their cycles go through a table)."""

    def __init__(self, meta: dict, validator_cls: Any) -> None:
        self.meta = meta
        self.draft4 = validator_cls.META_SCHEMA.get("$schema", "").startswith("http://json-schema.org/draft-04")
        self.siblings_of_ref = "allOf" in validator_cls.META_SCHEMA  # 2019-09 on: $ref does not hide its siblings
        self.table: dict[int, Check] = {}
        self.root = self.compile(meta)

    def compile(self, node: Any) -> Check:
        if node is True:
            return lambda x: True
        if node is False:
            return lambda x: False
        if not isinstance(node, dict):
            raise _Unknown(node)
        got = self.table.get(id(node))
        if got is not None:
            return got
        cell: list[Check] = []
        self.table[id(node)] = lambda x: cell[0](x)  # for references back to a node being compiled
        parts = [self._keyword(k, v, node) for k, v in node.items()
                 if k not in _IGNORED and not ("$ref" in node and k != "$ref" and not self.siblings_of_ref)]
        parts = [p for p in parts if p is not None]
        if len(parts) == 1:
            check = parts[0]
        else:
            def check(x: Any) -> bool:
                for part in parts:
                    if not part(x):
                        return False
                return True

        cell.append(check)
        self.table[id(node)] = check
        return check

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise _Unknown(ref)
        node: Any = self.meta
        for token in filter(None, ref[1:].split("/")):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                raise _Unknown(ref)
            node = node[token]
        return node

    def _keyword(self, k: str, v: Any, node: dict) -> Check | None:
        if k == "$ref":
            return self.compile(self._resolve(v))
        if k == "type":
            names = v if isinstance(v, list) else [v]
            allowed = tuple(_PYTHON_TYPES[t] for t in names)  # an integral float is never "integer" here
            if "boolean" in names:
                return lambda x: isinstance(x, allowed)
            return lambda x: isinstance(x, allowed) and not isinstance(x, bool)
        if k == "properties":
            subs = {name: self.compile(sub) for name, sub in v.items()}
            none = lambda x: True  # noqa: E731

            def properties(x: Any) -> bool:
                if isinstance(x, dict):
                    for key, val in x.items():
                        if not subs.get(key, none)(val):
                            return False
                return True

            return properties
        if k == "additionalProperties":
            if "patternProperties" in node:
                raise _Unknown(k)
            known = frozenset(node.get("properties", {}))
            sub = self.compile(v)
            return lambda x: not isinstance(x, dict) or all(sub(val) for key, val in x.items() if key not in known)
        if k in ("allOf", "anyOf"):
            subs = [self.compile(sub) for sub in v]
            if k == "allOf":
                return lambda x: all(c(x) for c in subs)
            return lambda x: any(c(x) for c in subs)
        if k == "items":
            if not isinstance(v, (dict, bool)):
                raise _Unknown(k)
            sub = self.compile(v)
            return lambda x: not isinstance(x, list) or all(sub(i) for i in x)
        if k == "propertyNames":
            sub = self.compile(v)
            return lambda x: not isinstance(x, dict) or all(sub(key) for key in x)
        if k == "dependencies":
            deps = [(name, dep if isinstance(dep, list) else self.compile(dep)) for name, dep in v.items()]
            return lambda x: not isinstance(x, dict) or all(
                (all(r in x for r in dep) if isinstance(dep, list) else dep(x)) for name, dep in deps if name in x)
        if k == "enum":
            if all(isinstance(option, str) for option in v):
                strings = frozenset(v)
                return lambda x: isinstance(x, str) and x in strings
            return lambda x: any(json_equal(x, option) for option in v)
        if k == "minItems":
            return lambda x: not isinstance(x, list) or len(x) >= v
        if k == "minimum":
            exclusive = self.draft4 and node.get("exclusiveMinimum") is True
            return lambda x: not _is_number(x) or (x > v if exclusive else x >= v)
        if k == "exclusiveMinimum":
            if self.draft4:
                if isinstance(v, bool) and "minimum" in node:
                    return None  # a flag that "minimum" reads
                raise _Unknown(k)
            return lambda x: not _is_number(x) or x > v
        if k == "uniqueItems":
            if v is not True:
                return None
            return lambda x: not isinstance(x, list) or _all_distinct(x)
        if k == "pattern":
            compiled = re.compile(v)
            return lambda x: not isinstance(x, str) or compiled.search(x) is not None
        raise _Unknown(k)
