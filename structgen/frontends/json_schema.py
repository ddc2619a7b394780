"""JSON Schema (drafts 4, 6, 7, 2019-09, 2020-12) and Pydantic models to grammar IR.

:func:`json_schema_to_grammar` validates the schema against its draft's
metaschema, reduces every subschema to a disjunction of :class:`Branch`
constraint sets (:mod:`json_constraints`), and emits IR: one rule per
subschema that needs one (recursive ``$ref`` targets, containers), JSON text
with the chosen whitespace policy.

What the output guarantees
--------------------------
Every document the grammar accepts validates with ``jsonschema`` (with format
checking for the formats we enforce) -- *soundness*. Most valid documents are
accepted too; the exceptions are deliberate and listed here. A keyword we
cannot enforce exactly is never ignored silently: strict mode (default) raises
:class:`~structgen.errors.UnsupportedSchemaError` naming the keyword and its
JSON pointer; ``lenient=True`` enforces everything else and lists what it
skipped in ``Grammar.notes``.

Objects. Declared properties are ``properties``, then ``required`` names not
in ``properties``, across ``allOf`` parts in order of first appearance. An
object with at most ``ANY_ORDER_MAX_PROPERTIES`` (6) of them accepts them in
any order, each at most once (a rule per set of keys seen). Larger objects
take them in declaration order, each optional one may be left out, so a
declared key can never appear twice there either. (On the MaskBench dev
split, 1.2% of schemas have valid instances with keys of a larger object out
of declaration order; those instances are rejected.) Undeclared keys, where the schema allows them
(``additionalProperties`` absent, ``true`` or a schema, or matching
``patternProperties``), may appear anywhere between the declared ones. An
undeclared key is decoded-character-wise different from every declared name
(so ``"n\\u0061me"`` cannot sneak in a second ``name``), and its value schema
is the one its key selects: the schemas of the ``patternProperties`` patterns
it matches, or ``additionalProperties`` when it matches none (the key
languages are split into these regions exactly). ``minProperties`` counts
declared members plus at most one undeclared one (a grammar cannot stop an
undeclared key from repeating, and a JSON parser keeps only one of the
duplicates); ``maxProperties`` counts all members.

Arrays. ``prefixItems``/``items`` (and draft 4-2019 ``items`` arrays with
``additionalItems``), ``minItems``/``maxItems``, and one ``contains`` with
``minContains`` (and ``maxContains`` when the ``contains`` schema can be
negated). ``uniqueItems: true`` is unsupported unless ``maxItems <= 1``.

Strings. ``minLength``/``maxLength`` count decoded characters (an escape such
as ``\\n`` or ``\\u00e9`` is one character); ``pattern`` (ECMA-262 syntax,
search semantics; character classes where ECMA and Python's ``re`` disagree
are narrowed to the characters both accept, because ``jsonschema`` uses
``re``), ``format`` (see :mod:`json_formats`; unknown formats are
unsupported) all apply to the decoded text. Several constraints on one string
are intersected exactly (a product automaton, capped).

Numbers. See :mod:`json_numbers`: exact bounds (integers, decimals, huge
values), ``integer`` is written without fraction or exponent, ``multipleOf``
with an integral divisor (non-integral divisors are unsupported: validators
compare them in floating point).

Combinators. ``allOf`` is merged, ``anyOf`` is a union, ``oneOf`` is a union
when its branches are provably disjoint and otherwise ``(A and not B) or (B
and not A)...`` when the branches can be negated; ``not`` supports types,
enums/consts of scalars, bounds, lengths, patterns, ``required``,
``properties``, item/property counts; ``if``/``then``/``else`` likewise
(without ``then``, no negation is needed); ``dependentRequired``,
``dependentSchemas`` and draft-7 ``dependencies``;
``unevaluatedProperties``/``unevaluatedItems`` over the branch being built.
``$ref`` to anything in the document (JSON pointers, ``$id``-relative URIs,
``$anchor``, the draft metaschemas), recursion included; remote references,
``$dynamicRef`` and ``$recursiveRef`` are unsupported. A reference cycle that
consumes no input (``{"$ref": "#"}``) is unsupported.

Any value. ``{}``/``true`` (and undeclared properties with no schema) accept
any JSON value nested at most ``max_any_depth`` containers deep (default
16; ``None``: unbounded).

Other keywords. Annotations (``title``, ``description``, ``default``,
``examples``, ``$comment``, ``readOnly``, ``deprecated``, ``content*``...) and
unknown keywords (vendor extensions such as ``x-foo``) do not constrain and
are ignored. ``nullable: true`` (OpenAPI 3.0) adds ``null`` to ``type`` unless
``nullable=False`` is passed (plain JSON Schema validators ignore it).

Strings are spelled as JSON encoders write them (see :mod:`json_text`:
printable ASCII raw, other characters raw or ``\\u``-escaped). Const and enum
values accept those spellings of strings and common numeric spellings (``1``
and ``1.0``); objects keep the key order they have in the schema.
"""

from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
import warnings
from dataclasses import replace
from fractions import Fraction
from typing import Any

from structgen.errors import (
    GrammarTooLargeError,
    InvalidSchemaError,
    RegexError,
    UnsatisfiableSchemaError,
    UnsupportedSchemaError,
)
from structgen.frontends import charlang, json_numbers, json_text
from structgen.frontends.charlang import ANY_STRING
from structgen.frontends.json_constraints import (
    ALL_TYPES,
    NUMERIC,
    TOP,
    TYPE_ATOMS,
    ArrPart,
    Branch,
    ObjPart,
    Reasons,
    Sub,
    intersect,
    json_equal,
    json_key,
    json_type,
    trim_types,
)
from structgen.frontends.json_formats import SUPPORTED_FORMATS, format_language
from structgen.frontends.regex import regex_to_expr
from structgen.grammar import ir
from structgen.grammar.ir import EPS, NOTHING, Grammar, alt, literal, opt, ref, rep, seq

__all__ = ["json_schema_to_grammar", "load_schema"]

DEFAULT_MAX_ANY_DEPTH = 16
MAX_BRANCHES = 256  # disjunctive normal form size cap per subschema
MAX_RULES = 20000  # grammar size cap (rules); beyond it GrammarTooLargeError
MAX_STRING_STATES = 4000  # product automaton cap for several constraints on one string
MAX_LAYOUT_STATES = 20000  # object/array counting states
MAX_PATTERN_REGIONS = 6  # patternProperties patterns whose key regions are split exactly
ANY_ORDER_MAX_PROPERTIES = 6  # objects with at most this many declared properties accept any key order

#: formats the JSON Schema specification (2020-12 and earlier) defines
SPEC_FORMATS = frozenset(
    """date-time date time duration email idn-email hostname idn-hostname ipv4 ipv6 uri uri-reference iri
    iri-reference uuid uri-template json-pointer relative-json-pointer regex host-name ip-address color
    utc-millisec""".split()
)

_DRAFT_URIS = {
    4: "http://json-schema.org/draft-04/schema#",
    6: "http://json-schema.org/draft-06/schema#",
    7: "http://json-schema.org/draft-07/schema#",
    2019: "https://json-schema.org/draft/2019-09/schema",
    2020: "https://json-schema.org/draft/2020-12/schema",
}

# Keywords whose presence means "this subschema constrains something" (used to
# recognise ``{}``-like schemas and pure ``$ref`` wrappers).
_CONSTRAINING = frozenset(
    """type enum const multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength
    pattern format items prefixItems additionalItems maxItems minItems uniqueItems contains minContains
    maxContains maxProperties minProperties required properties patternProperties additionalProperties
    propertyNames dependentRequired dependentSchemas dependencies allOf anyOf oneOf not if then else $ref
    $dynamicRef $recursiveRef unevaluatedItems unevaluatedProperties nullable""".split()
)


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


# --------------------------------------------------------------------------- entry points


def load_schema(schema) -> Any:
    """A dict/bool JSON Schema from a dict, bool, JSON text, or a Pydantic model
    class (``model_json_schema()``) or other type Pydantic can describe."""
    if isinstance(schema, (dict, bool)):
        return schema
    if isinstance(schema, (str, bytes, bytearray)):
        try:
            return json.loads(schema)
        except ValueError as e:
            raise InvalidSchemaError(f"schema is not valid JSON text: {e}") from None
    try:
        import pydantic
    except ImportError:  # pragma: no cover
        pydantic = None
    if pydantic is not None:
        if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
            return schema.model_json_schema()
        try:
            return pydantic.TypeAdapter(schema).json_schema()
        except Exception:
            pass
    raise InvalidSchemaError(
        f"expected a JSON Schema (dict, bool or JSON text) or a Pydantic model, not {type(schema).__name__}"
    )


def json_schema_to_grammar(schema, *, whitespace="flexible", lenient: bool = False,
                           max_any_depth: int | None = DEFAULT_MAX_ANY_DEPTH, nullable: bool = True,
                           unknown_formats: str = "error") -> Grammar:
    """Compile a JSON Schema (or Pydantic model) to a grammar of its JSON documents.

    ``whitespace``: ``"compact"`` (none), ``"flexible"`` (any JSON whitespace
    wherever JSON allows it) or an int N (at most N whitespace characters in
    each place). ``lenient``: skip unsupported keywords (listed in
    ``Grammar.notes``) instead of raising. ``max_any_depth``: nesting bound of
    free-form values (``None``: unbounded). ``nullable``: honour OpenAPI's
    ``nullable: true``. ``unknown_formats``: ``"error"`` (default: a format we
    do not enforce is unsupported) or ``"ignore"`` (formats the JSON Schema
    specification does not define, e.g. ``int32`` or ``path``, are treated as
    the annotations every validator treats them as, and listed in notes;
    specification formats we do not enforce stay unsupported).

    Raises InvalidSchemaError, UnsupportedSchemaError (strict mode),
    UnsatisfiableSchemaError.
    """
    schema = load_schema(schema)
    ws = json_text.whitespace(whitespace)
    if max_any_depth is not None and max_any_depth < 0:
        raise ValueError("max_any_depth must be >= 0 or None")
    if unknown_formats not in ("error", "ignore"):
        raise ValueError("unknown_formats must be 'error' or 'ignore'")
    old = sys.getrecursionlimit()
    if old < 20000:
        sys.setrecursionlimit(20000)
    try:
        return _Compiler(schema, ws, lenient, max_any_depth, nullable, unknown_formats).run()
    finally:
        sys.setrecursionlimit(old)


# --------------------------------------------------------------------------- helpers


def _esc(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _validate(schema) -> tuple[int, Any]:
    """Check the schema against its metaschema; return (draft, validator class)."""
    import jsonschema
    from jsonschema import validators
    from jsonschema.exceptions import best_match

    if isinstance(schema, bool):
        return 2020, jsonschema.Draft202012Validator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    drafts = {
        jsonschema.Draft4Validator: 4,
        jsonschema.Draft6Validator: 6,
        jsonschema.Draft7Validator: 7,
        jsonschema.Draft201909Validator: 2019,
        jsonschema.Draft202012Validator: 2020,
    }
    draft = drafts.get(cls)
    if draft is None:
        raise UnsupportedSchemaError("$schema", "#", f"dialect {schema.get('$schema')!r} (drafts 4, 6, 7, 2019-09 and 2020-12 are)")
    error = best_match(cls(cls.META_SCHEMA).iter_errors(schema))
    if error is not None:
        ptr = "#" + "".join("/" + _esc(p) for p in error.absolute_path)
        raise InvalidSchemaError(f"invalid JSON Schema: {error.message}", ptr)
    return draft, cls


def _pointer_map(schema) -> dict[int, str]:
    out: dict[int, str] = {}
    stack = [(schema, "#")]
    while stack:
        node, ptr = stack.pop()
        if isinstance(node, dict):
            out.setdefault(id(node), ptr)
            for k, v in node.items():
                if isinstance(v, (dict, list)):
                    stack.append((v, f"{ptr}/{_esc(k)}"))
        elif isinstance(node, list):
            out.setdefault(id(node), ptr)
            for i, v in enumerate(node):
                if isinstance(v, (dict, list)):
                    stack.append((v, f"{ptr}/{i}"))
    return out


_PY_CLASSES: dict[str, tuple] = {}


def _python_disagreement(kind: str) -> tuple:
    """Code points where an ECMA shorthand class and Python's ``re`` class differ
    in a way that would make us accept something ``re`` rejects."""
    r = _PY_CLASSES.get(kind)
    if r is None:
        pts = []
        for cp in range(0x80, charlang.MAX_CP + 1):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            c = chr(cp)
            if kind == "d" and unicodedata.category(c) == "Nd":
                pts.append(cp)
            elif kind == "w" and (c.isalnum() or c == "_"):
                pts.append(cp)
        r = charlang.merge_ranges((p, p) for p in pts)
        _PY_CLASSES[kind] = r
    return r


# --------------------------------------------------------------------------- compiler


class _Compiler:
    def __init__(self, schema, ws, lenient, max_any_depth, nullable, unknown_formats="error") -> None:
        import referencing.jsonschema
        from jsonschema_specifications import REGISTRY
        from referencing import Registry

        self.schema = schema
        self.draft, self.validator_cls = _validate(schema)
        self.format_checker = self.validator_cls.FORMAT_CHECKER
        self.spec = referencing.jsonschema.specification_with(_DRAFT_URIS[self.draft])
        resource = self.spec.create_resource(schema)
        self.registry = REGISTRY.combine(Registry())
        self.root = Sub(schema, self.registry.resolver_with_root(resource), "#")
        self.pointers = _pointer_map(schema)
        self.ws = ws
        self.sep = seq(ws, literal(","), ws)
        self.colon = seq(ws, literal(":"), ws)
        self.lenient = lenient
        self.max_any_depth = max_any_depth
        self.nullable = nullable
        self.unknown_formats = unknown_formats
        self.notes: list[str] = []
        self.reasons = Reasons()
        self.rules: dict[str, ir.Expr] = {}
        self.sink = charlang.RuleSink(self.rules, prefix="r")
        self.jenc = json_text.JsonCharEncoder(self.sink)
        self.norm_memo: dict = {}
        self.norm_stack: set = set()
        self.values: dict = {}
        self.in_progress: dict = {}
        self.recursive: set[str] = set()
        self.value_count = 0
        self.pattern_memo: dict = {}
        self.string_memo: dict = {}
        self.encode_memo: dict = {}
        self.synthetic: dict = {}
        self.enum_keys: dict = {}
        self.shrink_memo: dict = {}
        self.lossy: set = set()  # keys of subschemas where lenient mode skipped something
        self.lossy_events = 0
        self.not_in_memo: dict = {}
        self.keep: list = []
        text = json.dumps(schema) if not isinstance(schema, bool) else ""
        # annotation bookkeeping (more branches) only when something reads it
        self.annotations_matter = '"unevaluatedProperties"' in text or '"unevaluatedItems"' in text
        self.false_sub = Sub(False, self.root.resolver, "#")
        self.true_sub = Sub(True, self.root.resolver, "#")

    # ------------------------------------------------------------------ driver
    def run(self) -> Grammar:
        try:
            body = self.value((self.root,))
        except _TooManyBranches as e:
            raise UnsupportedSchemaError(e.keyword, e.ptr, e.detail) from None
        self.rules["start"] = seq(self.ws, body, self.ws)
        self._trim()
        return Grammar(self.rules, "start", list(dict.fromkeys(self.notes)))

    def _trim(self) -> None:
        """Drop rules with an empty language (replacing references to them by
        NOTHING) and unreachable rules; fail if nothing is left."""
        rules = self.rules
        good: set[str] = set()
        known: set[int] = set()  # ids of sub-expressions found productive (stays true)
        changed = True
        while changed:
            changed = False
            for name, body in reversed(rules.items()):
                if name not in good and _productive(body, good, known, {}):
                    good.add(name)
                    changed = True
        if "start" not in good:
            where = "; ".join(f"{p}: {w}" for p, w in self.reasons.items[:5])
            raise UnsatisfiableSchemaError(
                "the schema accepts no JSON value" + (f" ({where})" if where else "")
                + "; check for contradictory constraints"
            )
        bad = set(rules) - good
        memo2: dict[int, ir.Expr] = {}
        for name in list(rules):
            if name in bad:
                continue
            rules[name] = _prune(rules[name], bad, memo2) if bad else rules[name]
        # reachable from start
        seen = {"start"}
        stack = ["start"]
        visited: set[int] = set()
        while stack:
            name = stack.pop()
            for r in _refs(rules[name], visited):
                if r not in seen and r in good:
                    seen.add(r)
                    stack.append(r)
        for name in list(rules):
            if name not in seen:
                del rules[name]

    def hoist(self, e: ir.Expr, limit: int = 40) -> ir.Expr:
        """A reference to a new rule for a big expression (the expression itself
        if small): keeps every expression we build, hash and compare small."""
        if e == NOTHING or _small(e, limit):
            return e
        name = self.sink.reserve()
        self.sink.define(name, e)
        return ref(name)

    # ------------------------------------------------------------------ errors
    def unsupported(self, keyword: str, ptr: str, detail: str = "") -> None:
        if not self.lenient:
            raise UnsupportedSchemaError(keyword, ptr, detail)
        self.notes.append(f"{keyword!r} at {ptr or '#'} not enforced" + (f": {detail}" if detail else ""))
        self.lossy_events += 1

    def normalize_exact(self, sub: Sub) -> list | None:
        """normalize(sub), or None when (lenient mode) something in it was not
        enforced: its branches then describe a superset, whose negation would
        wrongly narrow the language."""
        before = self.lossy_events
        result = self.normalize(sub)
        return None if self.lossy_events > before else result

    # ------------------------------------------------------------------ subschemas
    def child(self, sub: Sub, *path) -> Sub:
        node = sub.schema
        ptr = sub.ptr
        for p in path:
            node = node[p]
            ptr = f"{ptr}/{_esc(p)}"
        resolver = sub.resolver
        if isinstance(node, dict) and self.spec.id_of(node) is not None:
            resolver = resolver.in_subresource(self.spec.create_resource(node))
        return Sub(node, resolver, ptr)

    def resolve(self, sub: Sub, keyword: str = "$ref") -> Sub:
        from referencing.exceptions import PointerToNowhere, Unresolvable

        target = sub.schema[keyword]
        ptr = f"{sub.ptr}/{_esc(keyword)}"
        try:
            resolved = sub.resolver.lookup(target)
        except PointerToNowhere:
            raise InvalidSchemaError(f"$ref {target!r} points to nothing", ptr) from None
        except Unresolvable:
            self.unsupported(keyword, ptr, f"cannot resolve {target!r} (remote references are not fetched)")
            return self.true_sub
        contents = resolved.contents
        tptr = self.pointers.get(id(contents), target) if isinstance(contents, (dict, list)) else target
        resolver = resolved.resolver
        if isinstance(contents, dict) and self.spec.id_of(contents) is not None:
            resolver = resolver.in_subresource(self.spec.create_resource(contents))
        return Sub(contents, resolver, tptr)

    def not_sub(self, s: Sub) -> Sub:
        """A synthetic ``{"not": s}`` subschema (stable identity per s)."""
        key = s.key
        node = self.synthetic.get(key)
        if node is None:
            node = self.synthetic[key] = {"not": s.schema}
            self.keep.append(s.schema)
        return Sub(node, s.resolver, s.ptr)

    def _is_trivial(self, s) -> bool:
        schema = s.schema if isinstance(s, Sub) else s
        if schema is True:
            return True
        return isinstance(schema, dict) and not (schema.keys() & _CONSTRAINING)

    def canon(self, conj) -> tuple | None:
        """Drop trivially-true parts, follow pure ``$ref`` wrappers, sort, dedupe.
        None if some part is ``false``."""
        out = {}
        for s in conj:
            seen = set()
            while True:
                if s.schema is False:
                    return None
                if self._is_trivial(s):
                    s = None
                    break
                sc = s.schema
                if isinstance(sc, dict) and "$ref" in sc and (
                    self.draft <= 7 or not ((sc.keys() & _CONSTRAINING) - {"$ref"})
                ):
                    if s.key in seen:
                        break
                    seen.add(s.key)
                    s = self.resolve(s)
                    continue
                break
            if s is not None:
                out.setdefault(s.key, s)
        return tuple(out[k] for k in sorted(out, key=repr))

    # ------------------------------------------------------------------ normal form
    def and_(self, a: list, b: list, ptr: str, keyword: str = "allOf") -> list:
        out = []
        for x in a:
            for y in b:
                z = intersect(x, y)
                if z is not None:
                    z = trim_types(z)
                    if z is not None:
                        out.append(z)
        if len(out) > MAX_BRANCHES:
            raise _TooManyBranches(keyword, ptr)
        return out

    def normalize(self, sub: Sub) -> list:
        s = sub.schema
        if s is True:
            return [TOP]
        if s is False:
            return []
        key = sub.key
        hit = self.norm_memo.get(key)
        if hit is not None:
            if key in self.lossy:
                self.lossy_events += 1
            return hit
        if key in self.norm_stack:
            self.unsupported("$ref", sub.ptr, "reference cycle that consumes no input (the schema contains itself in place)")
            return [TOP]
        self.norm_stack.add(key)
        before = self.lossy_events
        try:
            result = self._normalize(sub)
        finally:
            self.norm_stack.discard(key)
        if self.lossy_events > before:
            self.lossy.add(key)
        self.norm_memo[key] = result
        return result

    def _normalize(self, sub: Sub) -> list:
        s = sub.schema
        d = self.draft
        ptr = sub.ptr
        if "$ref" in s and d <= 7:
            return self.normalize(self.resolve(sub))
        local = self.local_branch(sub)
        branches = [local] if local is not None else []
        if not branches:
            self.reasons.add(ptr, "its type constraints exclude every value")

        def conj(other: list, keyword: str) -> None:
            nonlocal branches
            if branches:
                try:
                    branches = self.and_(branches, other, ptr, keyword)
                except _TooManyBranches as e:
                    self.unsupported(e.keyword, e.ptr, e.detail)  # lenient: skip this keyword

        if "$ref" in s:
            conj(self.normalize(self.resolve(sub)), "$ref")
        if "$dynamicRef" in s and d >= 2020:
            self.unsupported("$dynamicRef", ptr + "/$dynamicRef", "dynamic references are not supported")
        if "$recursiveRef" in s and d == 2019:
            self.unsupported("$recursiveRef", ptr + "/$recursiveRef", "recursive references are not supported")
        for i in range(len(s.get("allOf", ()))):
            conj(self.normalize(self.child(sub, "allOf", i)), "allOf")
        def guarded(keyword: str, fn) -> None:
            """Run one keyword's step; too many alternatives is unsupported
            (in lenient mode the keyword is skipped)."""
            try:
                fn()
            except _TooManyBranches as e:
                self.unsupported(e.keyword or keyword, e.ptr, e.detail)

        if "anyOf" in s:
            guarded("anyOf", lambda: self._any_of(sub, conj))
        if "oneOf" in s and branches:
            def one() -> None:
                nonlocal branches
                branches = self.one_of(sub, branches)
            guarded("oneOf", one)
        if "not" in s:
            def neg() -> None:
                inner = self.normalize_exact(self.child(sub, "not"))
                if inner is None:
                    self.unsupported("not", ptr + "/not", "its subschema is not fully enforced")
                    return
                try:
                    conj(self.negate(inner, ptr + "/not"), "not")
                except _CannotNegate as e:
                    self.unsupported("not", ptr + "/not",
                                     f"cannot negate {e.keyword!r}" + (f" ({e.detail})" if e.detail else ""))
            guarded("not", neg)
        if d >= 7 and "if" in s and ("then" in s or "else" in s or self.annotations_matter):
            guarded("if", lambda: conj(self.if_then_else(sub), "if"))
        guarded("dependentSchemas", lambda: self._dependencies(sub, conj))
        if d >= 2019 and "unevaluatedProperties" in s:
            branches = self.unevaluated_props(branches, self.child(sub, "unevaluatedProperties"))
        if d >= 2019 and "unevaluatedItems" in s:
            branches = self.unevaluated_items(branches, self.child(sub, "unevaluatedItems"))
        return branches

    def _any_of(self, sub: Sub, conj) -> None:
        s = sub.schema
        ptr = sub.ptr
        groups = [self.normalize(self.child(sub, "anyOf", i)) for i in range(len(s["anyOf"]))]
        alts = [b for g in groups for b in g]
        if self.annotations_matter and 1 < len(groups) <= 4:
            # every alternative that holds contributes annotations: add the
            # conjunctions of several alternatives as branches of their own
            for mask in range(1, 1 << len(groups)):
                chosen = [g for i, g in enumerate(groups) if mask >> i & 1]
                if len(chosen) > 1:
                    both = chosen[0]
                    for g in chosen[1:]:
                        both = self.and_(both, g, ptr, "anyOf")
                    alts.extend(both)
        conj(alts, "anyOf")

    def _dependencies(self, sub: Sub, conj) -> None:
        s = sub.schema
        d = self.draft
        ptr = sub.ptr
        deps_req = {}
        deps_schema = {}
        if d >= 2019:
            deps_req = s.get("dependentRequired", {})
            deps_schema = {k: ("dependentSchemas", k) for k in s.get("dependentSchemas", {})}
        else:
            for k, v in s.get("dependencies", {}).items():
                if isinstance(v, list):
                    deps_req[k] = v
                else:
                    deps_schema[k] = ("dependencies", k)
        for name, needed in deps_req.items():
            if needed:
                absent = Branch(obj=(ObjPart({name: self.false_sub}, evaluates=False),))
                conj([absent, Branch(required=tuple(needed))], "dependentRequired")
        for name, path in deps_schema.items():
            # (absent) or (present and the schema): an exact split, so the
            # schema's annotations only count when it was applied
            absent = Branch(obj=(ObjPart({name: self.false_sub}, evaluates=False),))
            present = self.and_([Branch(required=(name,))], self.normalize(self.child(sub, *path)), ptr, path[0])
            conj([absent] + present, path[0])

    def local_branch(self, sub: Sub) -> Branch | None:
        """The constraints of one schema object's own (non-applicator) keywords."""
        s = sub.schema
        d = self.draft
        ptr = sub.ptr
        kw: dict[str, Any] = {"ptr": ptr}
        types = ALL_TYPES
        if "type" in s:
            names = s["type"] if isinstance(s["type"], list) else [s["type"]]
            if self.nullable and s.get("nullable") is True:
                names = list(names) + ["null"]
            types = frozenset().union(*(TYPE_ATOMS[n] for n in names)) if names else frozenset()
            if not types:
                return None
        kw["types"] = types
        if "enum" in s:
            kw["enum"] = tuple(s["enum"])
        if "const" in s and d >= 6:
            kw["enum"] = tuple(v for v in kw.get("enum", (s["const"],)) if json_equal(v, s["const"]))
        if "enum" in kw and not kw["enum"]:
            self.reasons.add(ptr, "empty enum/const")
            return None
        # numbers
        lo = hi = None
        if _is_num(s.get("minimum")):
            lo = (s["minimum"], d == 4 and s.get("exclusiveMinimum") is True)
        if _is_num(s.get("maximum")):
            hi = (s["maximum"], d == 4 and s.get("exclusiveMaximum") is True)
        if d >= 6:
            if _is_num(s.get("exclusiveMinimum")):
                lo = _tighter_lo(lo, (s["exclusiveMinimum"], True))
            if _is_num(s.get("exclusiveMaximum")):
                hi = _tighter_hi(hi, (s["exclusiveMaximum"], True))
        kw["minimum"], kw["maximum"] = lo, hi
        if "multipleOf" in s:
            kw["multiple_of"] = ((s["multipleOf"], ptr + "/multipleOf"),)
        # strings
        if "minLength" in s:
            kw["min_len"] = int(s["minLength"])
        if "maxLength" in s:
            kw["max_len"] = int(s["maxLength"])
        if "pattern" in s:
            kw["patterns"] = ((s["pattern"], ptr + "/pattern"),)
        if "format" in s and "string" in types:
            fmt = s["format"]
            if fmt in SUPPORTED_FORMATS:
                kw["formats"] = ((fmt, ptr + "/format"),)
            elif self.unknown_formats == "ignore" and fmt not in SPEC_FORMATS:
                self.notes.append(f"'format' at {ptr}/format: {fmt!r} is not a JSON Schema format; ignored")
            else:
                self.unsupported("format", ptr + "/format", f"format {fmt!r} is not supported (supported: {', '.join(sorted(SUPPORTED_FORMATS))})")
        # arrays
        arr = self.arr_part(sub)
        if arr is not None:
            kw["arr"] = (arr,)
        if "minItems" in s:
            kw["min_items"] = int(s["minItems"])
        if "maxItems" in s:
            kw["max_items"] = int(s["maxItems"])
        if s.get("uniqueItems") is True and "array" in types:
            if not (kw.get("max_items") is not None and kw["max_items"] <= 1):
                self.unsupported("uniqueItems", ptr + "/uniqueItems", "uniqueness of array items cannot be expressed by a grammar")
        if "contains" in s and d >= 6:
            cmin = int(s.get("minContains", 1)) if d >= 2019 else 1
            cmax = int(s["maxContains"]) if d >= 2019 and "maxContains" in s else None
            kw["contains"] = ((self.child(sub, "contains"), cmin, cmax, ptr + "/contains"),)
        # objects
        obj = self.obj_part(sub)
        if obj is not None:
            kw["obj"] = (obj,)
        if "required" in s and isinstance(s["required"], list):
            kw["required"] = tuple(dict.fromkeys(s["required"]))
        if "minProperties" in s:
            kw["min_props"] = int(s["minProperties"])
        if "maxProperties" in s:
            kw["max_props"] = int(s["maxProperties"])
        if "propertyNames" in s and d >= 6 and not self._is_trivial(s["propertyNames"]):
            kw["prop_names"] = (self.child(sub, "propertyNames"),)
        return trim_types(Branch(**kw))

    def arr_part(self, sub: Sub) -> ArrPart | None:
        s = sub.schema
        d = self.draft
        if d >= 2020:
            prefix = tuple(self.child(sub, "prefixItems", i) for i in range(len(s.get("prefixItems", ()))))
            items = self.child(sub, "items") if "items" in s else None
        else:
            it = s.get("items")
            if isinstance(it, list):
                prefix = tuple(self.child(sub, "items", i) for i in range(len(it)))
                items = self.child(sub, "additionalItems") if "additionalItems" in s else None
            else:
                prefix = ()
                items = self.child(sub, "items") if "items" in s else None
        if items is not None and self._is_trivial(items):
            items = self.true_sub if items.schema is True or isinstance(items.schema, dict) else items
        if not prefix and items is None:
            return None
        return ArrPart(prefix, items, sub.ptr)

    def obj_part(self, sub: Sub) -> ObjPart | None:
        s = sub.schema
        props = {}
        for name in s.get("properties", {}):
            props[name] = self.child(sub, "properties", name)
        patterns = tuple(
            (p, self.child(sub, "patternProperties", p), f"{sub.ptr}/patternProperties/{_esc(p)}")
            for p in s.get("patternProperties", {})
        )
        additional = self.child(sub, "additionalProperties") if "additionalProperties" in s else None
        if not props and not patterns and additional is None:
            return None
        return ObjPart(props, patterns, additional, sub.ptr)

    def unevaluated_props(self, branches: list, u: Sub) -> list:
        out = []
        for b in branches:
            parts = [p for p in b.obj if p.evaluates]
            if any(p.additional is not None for p in parts):
                out.append(b)
                continue
            if self._is_trivial(u):  # evaluates every remaining property
                out.append(replace(b, obj=b.obj + (ObjPart({}, (), self.true_sub, u.ptr),)))
                continue
            names = {}
            pats = []
            for p in parts:
                for n in p.props:
                    names[n] = self.true_sub
                for pat, _, pptr in p.patterns:
                    pats.append((pat, self.true_sub, pptr))
            part = ObjPart(names, tuple(pats), u, u.ptr, evaluates=True)
            out.append(replace(b, obj=b.obj + (part,)))
        return out

    def unevaluated_items(self, branches: list, u: Sub) -> list:
        out = []
        for b in branches:
            parts = [p for p in b.arr if p.evaluates]
            if any(p.items is not None for p in parts):
                out.append(b)
                continue
            if self._is_trivial(u):
                out.append(replace(b, arr=b.arr + (ArrPart((), self.true_sub, u.ptr),)))
                continue
            if b.contains:
                self.unsupported("unevaluatedItems", u.ptr, "together with contains")
                out.append(b)
                continue
            n = max((len(p.prefix) for p in parts), default=0)
            out.append(replace(b, arr=b.arr + (ArrPart((self.true_sub,) * n, u, u.ptr),)))
        return out

    # ------------------------------------------------------------------ oneOf / not / if
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

    # ------------------------------------------------------------------ disjointness
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
            lo = _tighter_lo(a.minimum, b.minimum)
            hi = _tighter_hi(a.maximum, b.maximum)
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

    # ------------------------------------------------------------------ instance checks
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

    # ------------------------------------------------------------------ patterns
    def pattern(self, p: str, ptr: str) -> ir.Expr:
        """The character-level language of a ``pattern`` (search semantics)."""
        hit = self.pattern_memo.get(p)
        if hit is not None:
            return hit
        narrow: tuple = ()
        if re.search(r"(?<!\\)(?:\\\\)*\\[DW]", p):
            narrow = charlang.merge_ranges(_python_disagreement("d") + _python_disagreement("w"))
        if re.search(r"(?<!\\)(?:\\\\)*\\[sS]", p):
            narrow = charlang.merge_ranges(narrow + ((0x1C, 0x1F), (0x85, 0x85), (0xFEFF, 0xFEFF)))

        def enc(ranges):
            if narrow:
                ranges = charlang.subtract_ranges(charlang.merge_ranges(ranges), narrow)
            return charlang.cset(ranges)

        try:
            e = regex_to_expr(p, search=True, encode_chars=enc)
        except RegexError as err:
            # ECMA syntax we do not parse (e.g. \p{...}) or a malformed pattern:
            # either way we cannot enforce it
            self.unsupported("pattern", ptr, str(err))
            e = ANY_STRING
        self.pattern_memo[p] = e
        return e

    # ------------------------------------------------------------------ compile
    def value(self, conj) -> ir.Expr:
        """The expression of a JSON value satisfying every subschema in conj."""
        c = self.canon(conj)
        if c is None:
            return NOTHING
        if not c:
            return self.any_value()
        key = tuple(s.key for s in c)
        hit = self.values.get(key)
        if hit is not None:
            return hit
        name = self.in_progress.get(key)
        if name is not None:
            self.recursive.add(name)
            return ref(name)
        name = f"v{self.value_count}"
        self.value_count += 1
        self.rules[name] = NOTHING  # placeholder
        self.in_progress[key] = name
        try:
            branches = [TOP]
            for s in c:
                try:
                    branches = self.and_(branches, self.normalize(s), s.ptr)
                except _TooManyBranches as e:
                    self.unsupported(e.keyword, e.ptr, e.detail)  # lenient: drop this part
                self.reasons.add(c[0].ptr, "no value satisfies all its subschemas")
            expr = alt(*(self.compile_branch(b) for b in branches))
        finally:
            del self.in_progress[key]
        if len(self.rules) > MAX_RULES:
            raise GrammarTooLargeError(
                f"the grammar for this schema grew past {MAX_RULES} rules (around {c[0].ptr}); "
                "simplify the schema (large oneOf/anyOf combinations multiply)")
        if name in self.recursive or not _small(expr, 60):
            self.rules[name] = expr
            result = ref(name)
        else:
            del self.rules[name]
            result = expr
        self.values[key] = result
        return result

    def any_value(self) -> ir.Expr:
        return ref(self._any_rule(self.max_any_depth))

    def _any_rule(self, depth) -> str:
        name = "any" if depth is None else f"any{depth}"
        if name in self.rules:
            return name
        self.rules[name] = NOTHING
        scalars = alt(literal("null"), literal("true"), literal("false"), self._plain_number(), self._plain_string())
        if depth == 0:
            body = scalars
        else:
            inner = ref(self._any_rule(None if depth is None else depth - 1))
            arr = alt(seq(literal("["), self.ws, literal("]")),
                      seq(literal("["), self.ws, inner, rep(seq(self.sep, inner), 0, None), self.ws, literal("]")))
            member = seq(self._plain_string(), self.colon, inner)
            obj = alt(seq(literal("{"), self.ws, literal("}")),
                      seq(literal("{"), self.ws, member, rep(seq(self.sep, member), 0, None), self.ws, literal("}")))
            body = alt(scalars, arr, obj)
        self.rules[name] = body
        return name

    def _plain_number(self) -> ir.Expr:
        return json_numbers.lower(json_numbers.NUMBER)

    def _plain_string(self) -> ir.Expr:
        return seq(json_text.QUOTE, charlang.encode(ANY_STRING, self.jenc, self.encode_memo, self.sink), json_text.QUOTE)

    def compile_branch(self, b: Branch) -> ir.Expr:
        b = trim_types(b)
        if b is None:
            return NOTHING
        if b.enum is not None:
            plain = replace(b, enum=None)
            vals = []
            seen = set()
            for v in b.enum:
                k = json_key(v)
                if k in seen:
                    continue
                seen.add(k)
                if self.branch_accepts(plain, v):
                    vals.append(v)
            if not vals:
                self.reasons.add(b.ptr, "no enum/const value satisfies the other constraints")
            return alt(*(json_text.value_literal(v, self.ws) for v in vals))
        parts = []
        T = b.types
        if "null" in T:
            parts.append(literal("null"))
        if "boolean" in T:
            for v, text in ((True, "true"), (False, "false")):
                if not any(x is v for x in b.not_values):
                    parts.append(literal(text))
        if T & NUMERIC:
            parts.append(self.number(b))
        if "string" in T:
            parts.append(self.string(b))
        if "array" in T:
            parts.append(self.array(b))
        if "object" in T:
            parts.append(self.object(b))
        return alt(*parts)

    # ------------------------------------------------------------------ numbers
    def number(self, b: Branch) -> ir.Expr:
        ints = "integer" in b.types
        fracs = "fraction" in b.types
        k = None
        float_divisor = False
        for m, mptr in b.multiple_of:
            if isinstance(m, float) and not m.is_integer():
                self.unsupported("multipleOf", mptr, f"non-integral divisor {m!r} (validators compare it in floating point)")
                continue
            if isinstance(m, float):
                float_divisor = True
            m = abs(int(m))
            k = m if k is None else k * m // math.gcd(k, m)
        lo, hi = b.minimum, b.maximum
        if k is not None and float_divisor:
            # int / float division is exact only below 2**53
            lo = _tighter_lo(lo, (-(2 ** 53), False))
            hi = _tighter_hi(hi, (2 ** 53, False))
        bounds = dict(minimum=None if lo is None else lo[0], exclusive_minimum=bool(lo and lo[1]),
                      maximum=None if hi is None else hi[0], exclusive_maximum=bool(hi and hi[1]))
        if fracs and not ints:
            # numbers that are not integers (see json_numbers.NON_INTEGER)
            if k is not None:
                self.reasons.add(b.ptr, "non-integer multiples of an integer do not exist")
                return NOTHING
            e = json_numbers.number_expr(integers=False, fractions=True, **bounds)
            dfa = charlang.combine([e, *json_numbers.NON_INTEGER])
            return NOTHING if dfa.empty else json_numbers.lower((charlang.DFA_LEAF, dfa, 0), self.sink)
        e = json_numbers.number_expr(integers=True, fractions=fracs, multiple_of=k,
                                     zero_fractions=self.draft >= 6, **bounds)
        if e is None:
            self.unsupported("multipleOf", b.multiple_of[0][1], f"divisor {k} is too large for a remainder automaton")
            e = json_numbers.number_expr(integers=True, fractions=fracs, zero_fractions=self.draft >= 6, **bounds)
        out = json_numbers.lower(e, self.sink)
        if out == NOTHING:
            self.reasons.add(b.ptr, "no number within the bounds")
        return self.hoist(out)

    # ------------------------------------------------------------------ strings
    def string_formula(self, b: Branch, comps: list):
        """Add b's string constraints to comps; return the formula over them
        (True: unconstrained)."""
        parts = []

        def var(e) -> tuple:
            comps.append(e)
            return ("var", len(comps) - 1)

        if b.enum is not None:
            strings = [v for v in b.enum if isinstance(v, str)]
            parts.append(var(alt(*(charlang.text(v) for v in strings))))
        if b.min_len or b.max_len is not None:
            parts.append(var(charlang.length(b.min_len, b.max_len)))
        for p, ptr in b.patterns:
            parts.append(var(self.pattern(p, ptr)))
        for p, ptr in b.not_patterns:
            parts.append(("not", var(self.pattern(p, ptr))))
        for f, _ in b.formats:
            parts.append(var(format_language(f)))
        strings = [v for v in b.not_values if isinstance(v, str)]
        if strings:
            parts.append(("not", var(alt(*(charlang.text(v) for v in strings)))))
        if not parts:
            return True
        return parts[0] if len(parts) == 1 else ("and",) + tuple(parts)

    def string(self, b: Branch) -> ir.Expr:
        comps: list = []
        f = self.string_formula(b, comps)
        content = self.string_content(comps, f, b)
        if content == NOTHING:
            self.reasons.add(b.ptr, "no string satisfies the string constraints")
            return NOTHING
        return self.hoist(seq(json_text.QUOTE, charlang.encode(content, self.jenc, self.encode_memo,
                                                               self.sink), json_text.QUOTE))

    def string_content(self, comps: list, f, b: Branch | None) -> ir.Expr:
        """A character-level expression for ``f`` over ``comps``."""
        if f is True:
            return ANY_STRING
        if f[0] == "var":
            return comps[f[1]]
        key = (tuple(comps), f)
        hit = self.string_memo.get(key)
        if hit is not None:
            return hit
        # a length constraint the other constraints already imply is dropped
        if f[0] == "and" and b is not None and (b.min_len or b.max_len is not None) and len(f) == 3 and all(
            x[0] == "var" for x in f[1:]
        ):
            others = [comps[x[1]] for x in f[1:] if comps[x[1]] != charlang.length(b.min_len, b.max_len)]
            if len(others) == 1:
                lb = charlang.length_bounds(others[0])
                if lb is None:
                    return NOTHING
                if lb[0] >= b.min_len and (b.max_len is None or (lb[1] is not None and lb[1] <= b.max_len)):
                    self.string_memo[key] = others[0]
                    return others[0]
        try:
            comps2, f2 = self._shrink_components(comps, f)
            if f2 is True:
                self.string_memo[key] = ANY_STRING
                return ANY_STRING
            if f2 is False:
                self.string_memo[key] = NOTHING
                return NOTHING
            if f2[0] == "var":
                self.string_memo[key] = comps2[f2[1]]
                return comps2[f2[1]]
            dfa = charlang.combine(comps2, f2, max_states=MAX_STRING_STATES)
        except charlang.TooLarge:
            ptr = b.ptr if b is not None else ""
            kw = "maxLength" if b is not None and (b.min_len or b.max_len is not None) else "pattern"
            self.unsupported(kw, ptr, f"the combined string constraints need more than {MAX_STRING_STATES} automaton states")
            if b is not None and kw == "maxLength":
                b2 = replace(b, min_len=0, max_len=None)
                comps2: list = []
                return self.string_content(comps2, self.string_formula(b2, comps2), b2)
            return ANY_STRING
        result = NOTHING if dfa.empty else (charlang.DFA_LEAF, dfa, 0)
        self.string_memo[key] = result
        self.keep.append(dfa)
        return result

    def _shrink_components(self, comps: list, f):
        """Minimise each component that is not a plain length counter, and
        replace components accepting everything / nothing by constants."""
        out = []
        consts: dict[int, bool] = {}
        for i, c in enumerate(comps):
            if c[0] == "rep" and c[1] == charlang.ANY_CHAR:
                out.append(c)
                continue
            hit = self.shrink_memo.get(id(c))
            if hit is None or hit[0] is not c:
                dfa = charlang.minimize(charlang.dfa_of(c, max_states=MAX_STRING_STATES))
                if dfa.empty:
                    r = False
                elif charlang.is_universal(dfa):
                    r = True
                else:
                    r = (charlang.DFA_LEAF, dfa, 0)
                hit = self.shrink_memo[id(c)] = (c, r)
            r = hit[1]
            if isinstance(r, bool):
                consts[i] = r
                out.append(c)
            else:
                out.append(r)
        return out, _subst(f, consts)

    def key_language(self, b: Branch, names: list, pats: list, inside: list, outside: list) -> ir.Expr:
        """Keys that are not declared names, satisfy propertyNames, match the
        patterns ``inside`` and none of ``outside`` (indices into pats)."""
        nk = tuple(names)
        not_in = self.not_in_memo.get(nk)
        if not_in is None:
            not_in = self.not_in_memo[nk] = _not_in(names)
        comps: list = [not_in]
        parts: list = [("var", 0)]
        for i in inside:
            comps.append(self.pattern(pats[i][0], pats[i][2]))
            parts.append(("var", len(comps) - 1))
        for i in outside:
            comps.append(self.pattern(pats[i][0], pats[i][2]))
            parts.append(("not", ("var", len(comps) - 1)))
        pn = self.names_formula(b, comps)
        if pn is False:
            return NOTHING
        if pn is not True:
            parts.append(pn)
        f = parts[0] if len(parts) == 1 else ("and",) + tuple(parts)
        return self.string_content(comps, f, None)

    def names_formula(self, b: Branch, comps: list):
        """propertyNames as a formula over comps (True: unconstrained)."""
        result = []
        for s in b.prop_names:
            options = []
            for nb in self.normalize(s):
                if "string" not in nb.types:
                    continue
                f = self.string_formula(nb, comps)
                if f is True:
                    options = None
                    break
                options.append(f)
            if options is None:
                continue
            if not options:
                return False
            result.append(options[0] if len(options) == 1 else ("or",) + tuple(options))
        if not result:
            return True
        return result[0] if len(result) == 1 else ("and",) + tuple(result)

    # ------------------------------------------------------------------ arrays
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
                inner = self.normalize_exact(csub)
                if inner is None:
                    raise _CannotNegate("contains", "its subschema is not fully enforced")
                self.negate(inner, cptr)
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

        names: dict = {}

        def state(i: int, m: int) -> ir.Expr:
            key = (i, m)
            if key in names:
                return names[key]
            name = self.sink.reserve()
            names[key] = ref(name)
            opts = []
            if i >= lo and m >= cmin:
                opts.append(EPS)
            if hi is None or i < hi:
                opts.extend(edges(i, m, self.sep))
            self.sink.define(name, alt(*opts))
            return names[key]

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

    # ------------------------------------------------------------------ objects
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
        extra = self.extra_member(b, parts, names)
        e_states = (b.max_props + 1) if (b.max_props is not None and extra != NOTHING) else 2
        if 2 <= len(members) <= ANY_ORDER_MAX_PROPERTIES and (1 << len(members)) * e_states <= 2048:
            return self.object_any_order(b, members, extra)
        return self.object_layout(b, members, extra)

    def object_any_order(self, b: Branch, members: list, extra: ir.Expr) -> ir.Expr:
        """Members in any order, each declared one at most once: one rule per
        (set of declared members seen, undeclared members seen) state."""
        n = len(members)
        has_extra = extra != NOTHING
        min_props, max_props = b.min_props, b.max_props
        req_mask = sum(1 << k for k, (_, r) in enumerate(members) if r)
        if min_props > n + (1 if has_extra else 0):
            if has_extra:
                self.unsupported("minProperties", b.ptr,
                                 "would need several distinct undeclared keys, and a grammar cannot stop a key from repeating")
                min_props = n + 1
            else:
                self.reasons.add(b.ptr, "minProperties exceeds the properties allowed")
                return NOTHING
        # undeclared members are counted exactly for maxProperties, and as at
        # most one distinct key for minProperties
        e_cap = max_props if (max_props is not None and has_extra) else 1
        memo: dict = {}

        def state(seen: int, e: int) -> ir.Expr:
            key = (seen, e)
            if key in memo:
                return memo[key]
            name = self.sink.reserve()
            memo[key] = ref(name)
            count = bin(seen).count("1")
            sep = self.sep if (seen or e) else EPS
            opts = []
            if (seen or e) and seen & req_mask == req_mask and count + min(e, 1) >= min_props:
                opts.append(EPS)
            room = max_props is None or count + e < max_props
            if room:
                for k, (expr, _) in enumerate(members):
                    if not seen >> k & 1:
                        opts.append(seq(sep, expr, state(seen | 1 << k, e)))
                if has_extra:
                    opts.append(seq(sep, extra, state(seen, min(e + 1, e_cap))))
            self.sink.define(name, alt(*opts))
            return memo[key]

        body = state(0, 0)
        open_, close = literal("{"), literal("}")
        opts = []
        if req_mask == 0 and min_props == 0:
            opts.append(seq(open_, self.ws, close))
        opts.append(seq(open_, self.ws, body, self.ws, close))
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
            key_ir = seq(json_text.QUOTE, charlang.encode(key, self.jenc, self.encode_memo, self.sink),
                         json_text.QUOTE)
            members.append(self.hoist(seq(key_ir, self.colon, v)))
        return self.hoist(alt(*members))

    def object_layout(self, b: Branch, members: list, extra: ir.Expr) -> ir.Expr:
        n = len(members)
        has_extra = extra != NOTHING
        min_props, max_props = b.min_props, b.max_props
        n_req = sum(1 for _, r in members if r)
        if min_props > n + (1 if has_extra else 0):
            if has_extra:
                self.unsupported("minProperties", b.ptr,
                                 "would need several distinct undeclared keys, and a grammar cannot stop a key from repeating")
                min_props = n + 1
            else:
                self.reasons.add(b.ptr, "minProperties exceeds the properties allowed")
                return NOTHING
        if max_props is not None and n_req > max_props:
            self.reasons.add(b.ptr, "more required properties than maxProperties")
            return NOTHING
        track_min = min_props > n_req
        track_max = max_props is not None and (has_extra or max_props < n)
        cap_m = min_props if track_min else 0
        use_h = track_min and has_extra
        if n * ((max_props or 1) + 1) * (cap_m + 1) * 2 > MAX_LAYOUT_STATES:
            self.unsupported("maxProperties" if track_max else "minProperties", b.ptr, "too many counting states")
            track_max = False
            track_min, cap_m, use_h = False, 0, False
        cap_c = max_props if track_max else 1
        e_memo: dict = {}
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

        def E(k: int, c: int, m: int, h: bool) -> ir.Expr:
            if not has_extra:
                return D(k, c, m, h)
            key = (k, c, m, h)
            if key in e_memo:
                return e_memo[key]
            name = self.sink.reserve()
            e_memo[key] = ref(name)
            opts = [D(k, c, m, h)]
            c2 = nxt_c(c)
            if c2 is not None:
                m2 = m if (use_h and h) or not track_min else min(m + 1, cap_m)
                opts.append(seq(self.sep if c else EPS, extra, E(k, c2, m2, h or use_h)))
            self.sink.define(name, alt(*opts))
            return e_memo[key]

        body = E(0, 0, 0, False)
        open_, close = literal("{"), literal("}")
        opts = []
        if n_req == 0 and min_props == 0:
            opts.append(seq(open_, self.ws, close))
        if body != NOTHING:
            opts.append(seq(open_, self.ws, body, self.ws, close))
        if not opts:
            self.reasons.add(b.ptr, "no object satisfies the property constraints")
        return alt(*opts)


# --------------------------------------------------------------------------- module helpers


def _subst(f, consts: dict):
    """Formula f with the variables in consts replaced by constants, simplified."""
    if f is True or f is False:
        return f
    op = f[0]
    if op == "var":
        return consts.get(f[1], f)
    if op == "not":
        x = _subst(f[1], consts)
        return (not x) if isinstance(x, bool) else ("not", x)
    parts = [_subst(g, consts) for g in f[1:]]
    absorbing = op == "or"  # True absorbs an "or", False an "and"
    if any(p is absorbing for p in parts):
        return absorbing
    parts = [p for p in parts if not isinstance(p, bool)]
    if not parts:
        return not absorbing
    return parts[0] if len(parts) == 1 else (op,) + tuple(parts)


def _no_annotations(b: Branch) -> Branch:
    """The branch with its object/array parts marked as not evaluating."""
    if not b.obj and not b.arr:
        return b
    return replace(b, obj=tuple(replace(p, evaluates=False) for p in b.obj),
                   arr=tuple(replace(p, evaluates=False) for p in b.arr))


def _tighter_lo(a, b):
    if a is None:
        return b
    if b is None:
        return a
    fa, fb = Fraction(a[0]), Fraction(b[0])
    if fa != fb:
        return a if fa > fb else b
    return a if a[1] else b


def _tighter_hi(a, b):
    if a is None:
        return b
    if b is None:
        return a
    fa, fb = Fraction(a[0]), Fraction(b[0])
    if fa != fb:
        return a if fa < fb else b
    return a if a[1] else b


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


def _not_in(names: list) -> ir.Expr:
    """Strings (character level) that are none of ``names``, as a trie complement."""
    trie: dict = {}
    END = ""
    for n in names:
        node = trie
        for ch in n:
            node = node.setdefault(ch, {})
        node[END] = True

    def go(node: dict) -> ir.Expr:
        opts = []
        if END not in node:
            opts.append(EPS)
        kids = [ch for ch in node if ch != END]
        used = charlang.merge_ranges((ord(ch), ord(ch)) for ch in kids)
        other = charlang.subtract_ranges(charlang.ANY_RANGES, used)
        if other:
            opts.append(seq(charlang.cset(other), ANY_STRING))
        for ch in kids:
            opts.append(seq(charlang.char(ch), go(node[ch])))
        return alt(*opts)

    return go(trie)


def _productive(e: ir.Expr, good: set, known: set, memo: dict) -> bool:
    """Can e derive some string, given the rules in ``good`` are productive?
    ``known`` holds ids of nodes already found productive (monotone);
    ``memo`` caches this pass's results."""
    i = id(e)
    if i in known:
        return True
    r = memo.get(i)
    if r is not None:
        return r
    k = e[0]
    if k in ("eps", "bytes"):
        r = True
    elif k == "nothing":
        r = False
    elif k == "seq":
        r = all(_productive(x, good, known, memo) for x in e[1])
    elif k == "alt":
        r = any(_productive(x, good, known, memo) for x in e[1])
    elif k == "rep":
        r = e[2] == 0 or _productive(e[1], good, known, memo)
    elif k == "ref":
        r = e[1] in good
    else:
        raise ValueError(k)
    if r:
        known.add(i)
    else:
        memo[i] = False
    return r


def _prune(e: ir.Expr, bad: set, memo: dict) -> ir.Expr:
    r = memo.get(id(e))
    if r is not None:
        return r
    k = e[0]
    if k == "ref":
        r = NOTHING if e[1] in bad else e
    elif k == "seq":
        r = seq(*(_prune(x, bad, memo) for x in e[1]))
    elif k == "alt":
        r = alt(*(_prune(x, bad, memo) for x in e[1]))
    elif k == "rep":
        r = rep(_prune(e[1], bad, memo), e[2], e[3])
    else:
        r = e
    memo[id(e)] = r
    return r


def _refs(e: ir.Expr, visited: set) -> list:
    out = []
    stack = [e]
    while stack:
        x = stack.pop()
        if id(x) in visited:
            continue
        visited.add(id(x))
        k = x[0]
        if k == "ref":
            out.append(x[1])
        elif k in ("seq", "alt"):
            stack.extend(x[1])
        elif k == "rep":
            stack.append(x[1])
    return out


def _small(e: ir.Expr, limit: int) -> bool:
    """Is the expression tree at most ``limit`` nodes (refs count as one)?"""
    count = 0
    stack = [e]
    while stack:
        x = stack.pop()
        count += 1
        if count > limit:
            return False
        k = x[0]
        if k in ("seq", "alt"):
            stack.extend(x[1])
        elif k == "rep":
            stack.append(x[1])
    return True
