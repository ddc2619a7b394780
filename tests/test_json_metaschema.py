"""The static (flattened) metaschemas accept exactly what the real ones accept,
and the compiled quick check never calls valid what they reject.

Random schema-shaped documents mix well-typed and ill-typed keyword values,
nested through the applicator keywords, so both the accepting and the
rejecting paths of every vocabulary are exercised; the first error reported
must point at the same place too. The JSON Schema Test Suite's schemas are
checked as well (against both drafts) when ``../shared`` is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema.exceptions import best_match

from structgen.frontends.json_metaschema import quick_check, static_metaschema

DRAFTS = [jsonschema.Draft202012Validator, jsonschema.Draft201909Validator]
SUITE = (Path(__file__).resolve().parent / ".." / ".." / "shared" / "data" / "json-schema-test-suite" / "tests").resolve()

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(-2, 2, allow_nan=False),
                    st.sampled_from(["string", "integer", "object", "nope", "#/$defs/a", "^a+$", "date"]))
KEYWORDS = ["type", "enum", "const", "minimum", "exclusiveMaximum", "multipleOf", "minLength", "pattern",
            "format", "required", "minItems", "uniqueItems", "maxProperties", "dependentRequired",
            "$ref", "$id", "$anchor", "$defs", "$comment", "title", "deprecated", "examples",
            "contentEncoding", "definitions", "dependencies", "$dynamicRef", "$recursiveRef", "$vocabulary"]
APPLICATORS = ["properties", "patternProperties", "additionalProperties", "items", "prefixItems", "contains",
               "allOf", "anyOf", "oneOf", "not", "if", "then", "dependentSchemas", "propertyNames",
               "unevaluatedProperties", "additionalItems"]


def values(schemas):
    return st.one_of(
        SCALARS,
        st.lists(SCALARS, max_size=3),
        st.lists(schemas, max_size=2),
        st.dictionaries(st.sampled_from(["a", "b", "$x"]), schemas, max_size=2),
        schemas,
    )


def schemas():
    return st.recursive(
        st.one_of(st.booleans(), st.dictionaries(st.sampled_from(KEYWORDS), SCALARS | st.lists(SCALARS, max_size=3), max_size=3)),
        lambda sub: st.dictionaries(st.sampled_from(KEYWORDS + APPLICATORS), values(sub), max_size=4),
        max_leaves=10,
    )


def _verdict(validator, schema):
    error = best_match(validator.iter_errors(schema))
    return None if error is None else list(error.absolute_path)


@pytest.mark.parametrize("cls", DRAFTS, ids=["2020-12", "2019-09"])
def test_static_metaschema_has_no_dynamic_references(cls):
    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("$ref", "$dynamicRef", "$recursiveRef") and isinstance(v, str):
                    yield k, v
                yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    found = set(refs(static_metaschema(cls)))
    assert found and all(k == "$ref" and v.startswith("#") for k, v in found)


@pytest.mark.parametrize("cls", DRAFTS, ids=["2020-12", "2019-09"])
@settings(max_examples=400, deadline=None)
@given(schema=schemas())
def test_static_metaschema_agrees_with_the_real_one(cls, schema):
    real = cls(cls.META_SCHEMA)
    static = cls(static_metaschema(cls))
    assert real.is_valid(schema) == static.is_valid(schema)
    if not real.is_valid(schema):
        assert _verdict(static, schema) is not None


def _suite_schemas(folder: Path):
    """``((file, group description), schema)`` of every test group in the
    suite's files under ``folder`` (files that are not test groups skipped)."""
    for path in sorted(folder.rglob("*.json")):
        try:
            groups = json.loads(path.read_text())
        except ValueError:
            continue
        for group in groups if isinstance(groups, list) else []:
            if isinstance(group, dict) and "schema" in group:
                yield (path.name, group.get("description")), group["schema"]


@pytest.mark.skipif(not SUITE.is_dir(), reason=f"JSON Schema Test Suite not found at {SUITE}")
@pytest.mark.parametrize("cls", DRAFTS, ids=["2020-12", "2019-09"])
def test_static_metaschema_agrees_on_the_test_suite_schemas(cls):
    real = cls(cls.META_SCHEMA)
    static = cls(static_metaschema(cls))
    checked = 0
    for where, schema in _suite_schemas(SUITE / "draft2020-12"):
        assert real.is_valid(schema) == static.is_valid(schema), where
        checked += 1
    assert checked > 400


ALL_DRAFTS = [jsonschema.Draft4Validator, jsonschema.Draft6Validator, jsonschema.Draft7Validator,
              jsonschema.Draft201909Validator, jsonschema.Draft202012Validator]


@pytest.mark.parametrize("cls", ALL_DRAFTS, ids=["4", "6", "7", "2019-09", "2020-12"])
@settings(max_examples=400, deadline=None)
@given(schema=schemas())
def test_quick_check_never_passes_an_invalid_schema(cls, schema):
    if quick_check(cls, schema):
        assert cls(cls.META_SCHEMA).is_valid(schema)


@pytest.mark.parametrize("cls", ALL_DRAFTS, ids=["4", "6", "7", "2019-09", "2020-12"])
def test_quick_check_knows_every_metaschema(cls):
    """Every draft's metaschema compiles (no keyword left to jsonschema), and
    plain schemas pass while ill-typed keywords do not."""
    assert quick_check(cls, {"type": "object", "properties": {"a": {"type": ["string", "null"], "minLength": 2}},
                             "required": ["a"], "enum": [{"a": "xy"}]})
    for bad in ({"type": "text"}, {"minLength": -1}, {"required": ["a", "a"]}, {"properties": {"a": 3}},
                {"items": {"type": 5}}, {"minLength": 1.5}, {"enum": "x"}):
        assert not quick_check(cls, bad), bad
        assert not cls(cls.META_SCHEMA).is_valid(bad), bad
    assert not quick_check(cls, {"minLength": 2.0})  # valid from draft 6 on, but left to jsonschema


@pytest.mark.skipif(not SUITE.is_dir(), reason=f"JSON Schema Test Suite not found at {SUITE}")
def test_quick_check_agrees_on_the_test_suite_schemas():
    unsure = checked = 0
    for where, schema in _suite_schemas(SUITE):
        if not isinstance(schema, dict):
            continue
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        if cls not in ALL_DRAFTS:
            continue
        valid = cls(cls.META_SCHEMA).is_valid(schema)
        quick = quick_check(cls, schema)
        assert valid or not quick, where
        unsure += valid and not quick
        checked += 1
    assert checked > 400 and unsure < checked / 50
