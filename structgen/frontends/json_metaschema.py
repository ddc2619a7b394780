"""Checking a schema against its draft's metaschema, quickly.

Every compilation validates the schema against its metaschema first, so a
malformed keyword gets a clear error instead of a confusing grammar. The
2019-09 and 2020-12 metaschemas are an ``allOf`` over one metaschema per
vocabulary, tied together by ``$dynamicRef``/``$recursiveRef``; ``jsonschema``
resolves those dynamically at every subschema, which made this check cost as
much as the rest of the frontend (6 ms per MaskBench schema on average, 1.1 ms
once flattened).

When a schema is checked against the standard metaschema itself, the dynamic
reference always lands on that metaschema's root. So the same check can use
one static schema: the vocabularies' ``properties`` and ``$defs`` merged
(they are disjoint) and each dynamic reference replaced by ``"$ref": "#"``.
:func:`static_metaschema` verifies that shape and returns the original
metaschema where it does not hold.
"""

from __future__ import annotations

from typing import Any

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
