"""JSON Schema (drafts 4, 6, 7, 2019-09, 2020-12) and Pydantic models to grammar IR.

:func:`json_schema_to_grammar` validates the schema against its draft's
metaschema, reduces every subschema to a disjunction of :class:`Branch`
constraint sets (:mod:`json_constraints`), and emits IR: one rule per
subschema that needs one (recursive ``$ref`` targets, containers, anything
big), JSON text with the chosen whitespace policy. The work is split over
mixins: :mod:`json_combinators` (``oneOf``/``not``/``if``),
:mod:`json_instances` (checking concrete values), :mod:`json_strings`
(string and key languages), :mod:`json_layout` (arrays and objects);
:mod:`json_numbers`, :mod:`json_formats`, :mod:`json_text` and
:mod:`charlang` build the pieces.

What the output guarantees
--------------------------
Every document the grammar accepts validates with ``jsonschema`` (with format
checking for the formats we enforce) -- *soundness*. Most valid documents are
accepted too; the exceptions are deliberate and listed here. A keyword we
cannot enforce exactly is never ignored silently: strict mode (default) raises
:class:`~structgen.errors.UnsupportedSchemaError` naming the keyword and its
JSON pointer; ``lenient=True`` enforces everything else and lists what it
skipped in ``Grammar.notes`` (inside a ``not``/``if`` condition nothing is
skipped: the whole negation is, so lenient grammars only ever widen).

Objects. Declared properties are ``properties``, then ``required`` names not
in ``properties``, across ``allOf`` parts in order of first appearance. An
object with at most ``ANY_ORDER_MAX_PROPERTIES`` (6) of them accepts them in
any order, each at most once (a rule per set of keys seen); so do objects of
up to 10 while a per-grammar budget of such rules lasts (``ANY_ORDER_BUDGET``
in :mod:`json_layout`, first come first served). Other objects take them in
declaration order, each optional one may be left out, so a declared key never
appears twice there either. (On the MaskBench dev split declaration order
rejects valid instances of about a dozen of 3387 schemas.) Undeclared keys, where
the schema allows them (``additionalProperties`` absent, ``true`` or a
schema, or matching ``patternProperties``), may appear anywhere. An
undeclared key is, character by decoded character, different from every
declared name, and its value schema is the one its key selects: the schemas
of the ``patternProperties`` patterns it matches, or ``additionalProperties``
when it matches none (the key languages are split into these regions
exactly). ``minProperties`` counts declared members plus at most one
undeclared one (a grammar cannot stop an undeclared key from repeating, and a
JSON parser keeps only one of the duplicates); ``maxProperties`` counts all
members.

Closed objects. With ``closed_objects=True`` (what generation uses) an
object whose schema says nothing about undeclared keys accepts its declared
members only: the names in ``properties`` and ``required``, across the
``allOf``/``$ref`` parts merged into it, so the object is closed as a whole
(``allOf: [{properties: {a}}, {properties: {b}}]`` takes ``a`` and ``b``).
An object stays open where any of its schema objects has
``additionalProperties``, ``patternProperties`` or ``unevaluatedProperties``,
where none has ``properties`` (``{"type": "object"}`` is any object), and
where ``minProperties`` would need an undeclared key. Closing only drops the
undeclared-member alternative, so every closed output still validates against
the schema as written.

Arrays. ``prefixItems``/``items`` (and draft 4-2019 ``items`` arrays with
``additionalItems``), ``minItems``/``maxItems``, and one ``contains`` with
``minContains`` (and ``maxContains`` when the ``contains`` schema can be
negated). ``uniqueItems: true`` is unsupported unless ``maxItems <= 1``.

Strings. ``minLength``/``maxLength`` count decoded characters (an escape such
as ``\\n`` or ``\\u00e9`` is one character); ``pattern`` (ECMA-262 syntax,
search semantics; character classes where ECMA and Python's ``re`` disagree
are narrowed to the characters both accept, because ``jsonschema`` uses
``re``), ``format`` (see :mod:`json_formats`; other formats are unsupported,
or ignored with ``unknown_formats="ignore"`` when the specification does not
define them) all apply to the decoded text. Several constraints on one string
are intersected exactly (a product automaton of minimised components, capped
at 4000 states: a long ``maxLength`` with a complex pattern or format is
unsupported).

Numbers. See :mod:`json_numbers`: exact bounds (integers, decimals, huge
values, float rounding at the bounds), ``integer`` is written without
exponent (``3.0`` allowed for draft 6+), ``multipleOf`` with an integral
divisor or one of the form p / 2**j (0.25, 2.5; other non-integral divisors
such as 0.01 are unsupported: validators divide in floating point, and which
decimals pass is not a regular language).

Combinators. ``allOf`` is merged, ``anyOf`` is a union, ``oneOf`` is
``(A and not B) or (B and not A)...``, where a negation is skipped for the
types on which the alternatives are provably disjoint under the constraints
around them; ``not`` supports types, enums/consts of scalars, bounds,
lengths, patterns, integral ``multipleOf``, ``required``, ``properties``,
``items``, item/property counts, double negation, anything within a finite ``enum`` (checked value by
value), and ``additionalProperties``/``patternProperties``/``propertyNames``
within a closed object (see :mod:`json_combinators`);
``if``/``then``/``else`` likewise (without ``then`` no negation is needed);
``dependentRequired``, ``dependentSchemas`` and draft-7 ``dependencies``;
``unevaluatedProperties``/``unevaluatedItems`` over the branch being built
(annotations of every ``anyOf`` alternative that holds are collected).
``$ref`` to anything in the document (JSON pointers, ``$id``-relative URIs,
``$anchor``, the draft metaschemas), recursion included (draft 4-7: ``$ref``
siblings ignored); remote references, ``$dynamicRef`` and ``$recursiveRef``
are unsupported, as is a reference cycle that consumes no input
(``{"$ref": "#"}``). At most 256 alternatives per subschema after
multiplying out, and 20000 rules per grammar (``GrammarTooLargeError``).

Any value. ``{}``/``true`` (and undeclared properties with no schema) accept
any JSON value nested at most ``max_any_depth`` containers deep (default
16; ``None``: unbounded).

Other keywords. Annotations (``title``, ``description``, ``default``,
``examples``, ``$comment``, ``readOnly``, ``deprecated``, ``content*``...) and
unknown keywords (vendor extensions such as ``x-foo``) do not constrain and
are ignored. ``nullable: true`` (OpenAPI 3.0) adds ``null`` to ``type`` unless
``nullable=False`` is passed (plain JSON Schema validators ignore it, so
``null`` output then fails their validation).

Strings are spelled as JSON encoders write them (see :mod:`json_text`:
printable ASCII raw, other characters raw or ``\\u``-escaped). Const and enum
values accept those spellings of strings and common numeric spellings (``1``
and ``1.0``); object values with at most 4 keys in any key order.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from referencing.exceptions import Unresolvable

from structgen.errors import (
    GrammarTooLargeError,
    InvalidSchemaError,
    UnresolvableReferenceError,
    UnsatisfiableSchemaError,
    UnsupportedSchemaError,
    clip,
)
from structgen.frontends import charlang, json_numbers, json_text
from structgen.frontends.charlang import ANY_STRING
from structgen.frontends.json_combinators import (
    MAX_BRANCHES,
    CombinatorsMixin,
    _TooManyBranches,
)
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
    tighter_lower,
    tighter_upper,
    trim_types,
)
from structgen.frontends.json_formats import SUPPORTED_FORMATS
from structgen.frontends.json_instances import InstanceChecksMixin
from structgen.frontends.json_layout import ANY_ORDER_MAX_PROPERTIES, ContainersMixin
from structgen.frontends.json_metaschema import quick_check, static_metaschema
from structgen.frontends.json_strings import StringsMixin
from structgen.grammar import ir
from structgen.grammar.analysis import RuleGraph, deep_recursion
from structgen.grammar.ir import NOTHING, Grammar, alt, literal, ref, rep, seq

__all__ = ["json_schema_to_grammar", "load_schema", "schema_registry", "schema_validator", "validation_errors",
           "ANY_ORDER_MAX_PROPERTIES", "MAX_BRANCHES"]

DEFAULT_MAX_ANY_DEPTH = 16
MAX_RULES = 20000  # grammar size cap (rules); beyond it GrammarTooLargeError
#: nesting cap of the schema document (objects and arrays, the root is 1) and
#: of the values it describes (through ``$ref`` chains too): the frontend
#: recurses along both, so deeper schemas are refused (GrammarTooLargeError)
#: before Python's recursion limit, and the document's depth up front
MAX_SCHEMA_DEPTH = 2000

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


# --------------------------------------------------------------------------- entry points


def parse_schema_text(text: str | bytes | bytearray) -> Any:
    """JSON text to a schema, read as JSON, not as Python's ``json`` reads it:
    ``Infinity`` and ``NaN`` are refused, and so are numbers too long to
    convert and nesting too deep to read (each an :class:`InvalidSchemaError`).
    Text that is not JSON at all raises ``json.JSONDecodeError``, for the
    caller to explain."""
    try:
        with deep_recursion():
            return json.loads(text, parse_constant=_not_a_json_number)
    except (json.JSONDecodeError, InvalidSchemaError):
        raise
    except RecursionError:
        raise GrammarTooLargeError(_TOO_DEEP) from None
    except ValueError as e:  # an integer of thousands of digits
        raise InvalidSchemaError(f"schema text cannot be read: {clip(str(e))}") from None


def _not_a_json_number(constant: str):
    raise InvalidSchemaError(f"{constant} is not a JSON number (JSON has no Infinity or NaN)")


def load_schema(schema) -> Any:
    """A dict/bool JSON Schema from a dict, bool, JSON text, a ``pathlib.Path``
    (or other ``os.PathLike``) of a JSON file, or a Pydantic model class
    (``model_json_schema()``) or other type Pydantic can describe. A ``str`` is
    always JSON text, never a file name: a schema that happens to be a valid
    path must not change meaning with the working directory."""
    if isinstance(schema, (dict, bool)):
        return schema
    if schema is None:  # pydantic would describe None as the schema {"type": "null"}
        raise InvalidSchemaError('expected a JSON Schema, not None (the schema of null is {"type": "null"})')
    if isinstance(schema, os.PathLike):
        try:
            text = Path(schema).read_bytes()
        except OSError as e:
            raise InvalidSchemaError(f"cannot read the schema file {os.fspath(schema)!r}: {e.strerror or e}") from None
        try:
            return parse_schema_text(text)
        except json.JSONDecodeError as e:
            raise InvalidSchemaError(f"the schema file {os.fspath(schema)!r} is not valid JSON: {e}") from None
    if isinstance(schema, (str, bytes, bytearray)):
        try:
            return parse_schema_text(schema)
        except json.JSONDecodeError as e:
            raise InvalidSchemaError(f"schema is not valid JSON text: {e}{_file_name_hint(schema)}") from None
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
                           unknown_formats: str = "error", closed_objects: bool = False,
                           registry: Any = None, canonical: bool = False) -> Grammar:
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
    ``closed_objects``: an object whose schema says nothing about undeclared
    keys takes only its declared members (see "Closed objects" in the module
    docstring); the default keeps the schema's meaning, extra keys allowed.
    ``registry``: a ``referencing.Registry`` holding the documents that
    ``$ref``s outside the schema name (see :func:`schema_registry`).
    ``canonical``: values spelled as encoders write them (no needless
    escapes, no ``12.0``, see :data:`json_text.CANONICAL_JSON`) and object
    members in declaration order, so that generation forces every key it can;
    the values accepted are the same.

    Raises InvalidSchemaError, UnsupportedSchemaError (strict mode),
    UnsatisfiableSchemaError.
    """
    schema = load_schema(schema)
    ws = json_text.whitespace(whitespace)
    if max_any_depth is not None and max_any_depth < 0:
        raise ValueError("max_any_depth must be >= 0 or None")
    if unknown_formats not in ("error", "ignore"):
        raise ValueError("unknown_formats must be 'error' or 'ignore'")
    with deep_recursion():
        try:
            return _Compiler(
                schema, ws, lenient, max_any_depth, nullable, unknown_formats, closed_objects, registry, canonical
            ).run()
        except Unresolvable as e:  # a validator the frontend asked met an unresolvable $ref
            raise UnresolvableReferenceError(str(e.ref)) from None
        except RecursionError:
            raise GrammarTooLargeError(_TOO_DEEP) from None


_TOO_DEEP = "the schema is nested too deeply"


def _refuse_retrieval(uri: str):
    raise UnresolvableReferenceError(uri)


def schema_registry(registry: Any = None) -> Any:
    """The only place a ``$ref`` is looked up, outside the schema itself: the
    draft metaschemas plus the caller's ``registry``. Without one, a URI in
    neither raises :class:`UnresolvableReferenceError`: jsonschema's default
    would fetch it, over the network or from a file (``file:///etc/passwd``)."""
    from jsonschema_specifications import REGISTRY
    from referencing import Registry

    if registry is None:
        return Registry(retrieve=_refuse_retrieval).combine(REGISTRY)
    return REGISTRY.combine(registry)


def schema_validator(schema: Any, registry: Any = None) -> Any:
    """A ``jsonschema`` validator of ``schema`` (its own draft, 2020-12 when
    it names none) with its format checker, resolving ``$ref`` only through
    :func:`schema_registry`. Its ``iter_errors`` raises
    ``referencing.exceptions.Unresolvable`` where a reference cannot be
    resolved; :func:`validation_errors` turns that into a structgen error."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, registry=schema_registry(registry), format_checker=cls.FORMAT_CHECKER)


def validation_errors(validator: Any, value: Any) -> list:
    """``validator``'s errors for ``value``, ordered by where they are."""
    try:
        return sorted(validator.iter_errors(value), key=lambda err: list(err.absolute_path))
    except Unresolvable as e:
        raise UnresolvableReferenceError(str(e.ref)) from None
    except (re.error, OverflowError, RecursionError) as e:  # a pattern re cannot compile, a repeat above its limit
        raise InvalidSchemaError(f"jsonschema cannot evaluate the schema: {clip(str(e))}") from None


def _file_name_hint(text: str | bytes | bytearray) -> str:
    """What to do when the text given as a schema looks like a file name."""
    if not isinstance(text, str) or len(text) > 1024 or "\n" in text or text.lstrip()[:1] in ("{", "[", '"'):
        return ""
    return (f". A str is JSON text, not a file name: to compile the file, pass pathlib.Path({text!r}) "
            "or its parsed content (the command line is what reads file names)")


# --------------------------------------------------------------------------- helpers


def _esc(token) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_META_VALIDATORS: dict = {}


def _validate(schema) -> tuple[int, Any, bool]:
    """Check the schema against its metaschema; return (draft, validator
    class, whether ``$schema`` names a dialect jsonschema does not know: it
    is then read as 2020-12, as the final validation reads it)."""
    import jsonschema
    from jsonschema import validators
    from jsonschema.exceptions import best_match

    if isinstance(schema, bool):
        return 2020, jsonschema.Draft202012Validator, False
    dialect = schema.get("$schema")
    if dialect is not None and not isinstance(dialect, str):  # jsonschema's lookup fails on it untyped
        raise InvalidSchemaError(f"$schema must be a URI string, not {type(dialect).__name__}", "#/$schema")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = validators.validator_for(schema, default=None)
    unknown = cls is None and dialect is not None
    cls = cls or jsonschema.Draft202012Validator
    drafts = {
        jsonschema.Draft4Validator: 4,
        jsonschema.Draft6Validator: 6,
        jsonschema.Draft7Validator: 7,
        jsonschema.Draft201909Validator: 2019,
        jsonschema.Draft202012Validator: 2020,
    }
    draft = drafts.get(cls)
    if draft is None:
        raise UnsupportedSchemaError("$schema", "#", f"dialect {clip(dialect)!r} (drafts 4, 6, 7, 2019-09 and 2020-12 are)")
    if quick_check(cls, schema):
        return draft, cls, unknown
    meta = _META_VALIDATORS.get(cls)
    if meta is None:  # building one resolves the metaschema's references: keep it
        meta = _META_VALIDATORS[cls] = cls(static_metaschema(cls))
    error = best_match(meta.iter_errors(schema))
    if error is not None:
        ptr = "#" + "".join("/" + _esc(p) for p in error.absolute_path)
        raise InvalidSchemaError(f"invalid JSON Schema: {error.message}", ptr)
    return draft, cls, unknown


def _pointer_map(schema) -> dict[int, str]:
    """The JSON pointer of every object and array in the schema. Refuses
    floats JSON cannot hold (``inf``, ``nan``: a dict built in Python may hold
    them), which would reach the number automata as infinities, and nesting
    deeper than :data:`MAX_SCHEMA_DEPTH`."""
    out: dict[int, str] = {}
    stack = [(schema, "#", 1)]
    while stack:
        node, ptr, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise GrammarTooLargeError(f"{_TOO_DEEP}: deeper than MAX_SCHEMA_DEPTH = {MAX_SCHEMA_DEPTH} at {clip(ptr)}")
        if isinstance(node, dict):
            out.setdefault(id(node), ptr)
            items = ((_esc(k), v) for k, v in node.items())
        elif isinstance(node, list):
            out.setdefault(id(node), ptr)
            items = enumerate(node)
        else:
            continue
        for k, v in items:
            if isinstance(v, (dict, list)):
                stack.append((v, f"{ptr}/{k}", depth + 1))
            elif isinstance(v, float) and not math.isfinite(v):
                raise InvalidSchemaError(f"{v} is not a JSON number (JSON has no Infinity or NaN)", f"{ptr}/{k}")
    return out


# --------------------------------------------------------------------------- compiler


class _Compiler(CombinatorsMixin, InstanceChecksMixin, StringsMixin, ContainersMixin):
    """Schema to grammar. The mixins hold oneOf/not/if (json_combinators),
    value checks (json_instances), strings (json_strings) and arrays/objects
    (json_layout); this class holds references, the normal form and values."""

    def __init__(self, schema, ws, lenient, max_any_depth, nullable, unknown_formats="error",
                 closed_objects=False, registry=None, canonical=False) -> None:
        import referencing.jsonschema

        self.schema = schema
        self.pointers = _pointer_map(schema)
        self.draft, self.validator_cls, unknown_dialect = _validate(schema)
        self.format_checker = self.validator_cls.FORMAT_CHECKER
        self.spec = referencing.jsonschema.specification_with(_DRAFT_URIS[self.draft])
        resource = self.spec.create_resource(schema)
        self.registry = schema_registry(registry)
        self.root = Sub(schema, self.registry.resolver_with_root(resource), "#")
        self.resolved: dict = {}  # Sub.key -> the Sub its $ref points to (see resolve)
        self.ws = ws
        self.sep = seq(ws, literal(","), ws)
        self.colon = seq(ws, literal(":"), ws)
        self.lenient = lenient
        self.max_any_depth = max_any_depth
        self.nullable = nullable
        self.unknown_formats = unknown_formats
        self.closed_objects = closed_objects
        self.canonical = canonical
        self.notes: list[str] = []
        self.reasons = Reasons()
        self.rules: dict[str, ir.Expr] = {}
        self.families: dict = {}  # rule families by prefix (json_layout.AnyOrderMembers)
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
        self.lossy: set = set()  # keys of subschemas where lenient mode skipped something
        self.lossy_events = 0
        self.negation_memo: dict = {}
        self.any_order_spent = 0  # subset states of any-order objects beyond ANY_ORDER_MAX_PROPERTIES
        self.keep: list = []
        text = json.dumps(schema) if not isinstance(schema, bool) else ""
        # annotation bookkeeping (more branches) only when something reads it
        self.annotations_matter = '"unevaluatedProperties"' in text or '"unevaluatedItems"' in text
        self.false_sub = Sub(False, self.root.resolver, "#")
        self.true_sub = Sub(True, self.root.resolver, "#")
        if unknown_dialect:
            self.unsupported("$schema", "#/$schema", f"unknown dialect {clip(schema['$schema'])!r}, read as 2020-12 "
                             "(drafts 4, 6, 7, 2019-09 and 2020-12 are known)")

    # ------------------------------------------------------------------ driver
    def run(self) -> Grammar:
        try:
            body = self.value((self.root,))
        except _TooManyBranches as e:
            raise UnsupportedSchemaError(e.keyword, e.ptr, e.detail) from None
        self.rules["start"] = seq(self.ws, body, self.ws)
        if self.canonical:
            self.rules["start"] = ir.intersect(self.rules["start"], json_text.canonical_json())
        graph = self._trim()
        return Grammar(self.rules, "start", list(dict.fromkeys(self.notes)), graph=graph, families=self.families)

    def _trim(self) -> RuleGraph:
        """Fail if the schema accepts nothing; drop the rules the start rule
        does not reach. Returns the rule graph of what remains, for the
        automaton to reuse. Rules with an empty language stay: the automaton
        never enters them, and finding them all would mean evaluating every
        rule (see :class:`~structgen.grammar.analysis.RuleGraph`)."""
        graph = RuleGraph(self.rules, self.families)
        if not graph.is_productive(graph.index["start"]):
            where = "; ".join(f"{p}: {w}" for p, w in self.reasons.items[:5])
            raise UnsatisfiableSchemaError(
                "the schema accepts no JSON value" + (f" ({where})" if where else "")
                + "; check for contradictory constraints"
            )
        keep = graph.reachable("start")
        if len(keep) < len(self.rules):
            for name in [n for n in self.rules if n not in keep]:
                del self.rules[name]
        return graph.subset(self.rules)

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

    def check_depth(self, ptr: str) -> None:
        """Refuse values and subschemas nested (through ``$ref`` chains too)
        deeper than :data:`MAX_SCHEMA_DEPTH`: a RecursionError raised inside
        a library's native code (referencing's maps) would not come back as one."""
        if len(self.in_progress) + len(self.norm_stack) >= MAX_SCHEMA_DEPTH:
            raise GrammarTooLargeError(f"{_TOO_DEEP}: deeper than MAX_SCHEMA_DEPTH = {MAX_SCHEMA_DEPTH} at {clip(ptr)}")

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

    def resolve(self, sub: Sub) -> Sub:
        """The subschema ``sub``'s ``$ref`` points to, looked up once per
        subschema: big schemas reach the same wrappers hundreds of times, and
        a lookup took about 20 µs."""
        got = self.resolved.get(sub.key)
        if got is None:
            got = self._resolve(sub)
            if got is not self.true_sub:  # an unresolvable reference is reported where each path meets it
                self.resolved[sub.key] = got
        return got

    def _resolve(self, sub: Sub) -> Sub:
        from referencing.exceptions import PointerToNowhere, Unresolvable

        target = sub.schema["$ref"]
        ptr = f"{sub.ptr}/$ref"
        try:
            resolved = sub.resolver.lookup(target)
        except PointerToNowhere:
            raise InvalidSchemaError(f"$ref {target!r} points to nothing", ptr) from None
        except Unresolvable:
            self.unsupported("$ref", ptr, f"cannot resolve {clip(str(target))!r}: it is not in the schema or the "
                             "registry given (remote references are never fetched)")
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
        self.check_depth(sub.ptr)
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

        def guarded(keyword: str, fn) -> None:
            """Run one keyword's step; too many alternatives is unsupported
            (in lenient mode the keyword is skipped)."""
            try:
                fn()
            except _TooManyBranches as e:
                self.unsupported(e.keyword or keyword, e.ptr, e.detail)

        def narrow(fn) -> None:
            nonlocal branches
            if branches:
                branches = fn(branches)

        for part in self.negations_last([self.child(sub, "allOf", i) for i in range(len(s.get("allOf", ())))]):
            guarded("allOf", lambda: narrow(lambda bs: self.restrict(bs, part)))
        if "anyOf" in s:
            guarded("anyOf", lambda: self._any_of(sub, conj))
        if "oneOf" in s:
            guarded("oneOf", lambda: narrow(lambda bs: self.one_of(sub, bs)))
        if "not" in s:
            guarded("not", lambda: narrow(lambda bs: self.exclude_sub(bs, self.child(sub, "not"))))
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
                lo = tighter_lower(lo, (s["exclusiveMinimum"], True))
            if _is_num(s.get("exclusiveMaximum")):
                hi = tighter_upper(hi, (s["exclusiveMaximum"], True))
        kw["minimum"], kw["maximum"] = lo, hi
        if "multipleOf" in s:
            kw["multiple_of"] = ((s["multipleOf"], ptr + "/multipleOf"),)
        # strings
        if "minLength" in s:
            kw["min_len"] = self.count(sub, "minLength")
        if "maxLength" in s:
            kw["max_len"] = self.count(sub, "maxLength")
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
            kw["min_items"] = self.count(sub, "minItems")
        if "maxItems" in s:
            kw["max_items"] = self.count(sub, "maxItems")
        if s.get("uniqueItems") is True and "array" in types:
            if not (kw.get("max_items") is not None and kw["max_items"] <= 1):
                self.unsupported("uniqueItems", ptr + "/uniqueItems", "uniqueness of array items cannot be expressed by a grammar")
        if "contains" in s and d >= 6:
            cmin = self.count(sub, "minContains") if d >= 2019 and "minContains" in s else 1
            cmax = self.count(sub, "maxContains") if d >= 2019 and "maxContains" in s else None
            kw["contains"] = ((self.child(sub, "contains"), cmin, cmax, ptr + "/contains"),)
        # objects
        obj = self.obj_part(sub)
        if obj is not None:
            kw["obj"] = (obj,)
        if "required" in s and isinstance(s["required"], list):
            kw["required"] = tuple(dict.fromkeys(s["required"]))
        if "minProperties" in s:
            kw["min_props"] = self.count(sub, "minProperties")
        if "maxProperties" in s:
            kw["max_props"] = self.count(sub, "maxProperties")
        if "propertyNames" in s and d >= 6 and not self._is_trivial(s["propertyNames"]):
            kw["prop_names"] = (self.child(sub, "propertyNames"),)
        return trim_types(Branch(**kw))

    def count(self, sub: Sub, key: str) -> int:
        """The value of a count keyword (``maxLength``, ``minItems`` ...): the
        automaton counts to ``ir.MAX_REPEAT`` at most."""
        n = int(sub.schema[key])
        if n > ir.MAX_REPEAT:
            raise GrammarTooLargeError(
                f"{key} at {clip(sub.ptr)}/{key} is above the largest count supported, {ir.MAX_REPEAT}"
            )
        return n

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
        if not props and not patterns and additional is None and "properties" not in s:
            return None  # (an empty ``properties`` still declares the object's members: see closes)
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
        self.check_depth(c[0].ptr)
        name = f"v{self.value_count}"
        self.value_count += 1
        self.rules[name] = NOTHING  # placeholder
        self.in_progress[key] = name
        try:
            branches = [TOP]
            for s in self.negations_last(c):
                try:
                    branches = self.restrict(branches, s)
                except _TooManyBranches as e:
                    self.unsupported(e.keyword, e.ptr, e.detail)  # lenient: drop this part
                self.reasons.add(c[0].ptr, "no value satisfies all its subschemas")
            expr = alt(*(self.compile_branch(b) for b in branches))
        finally:
            del self.in_progress[key]
        if len(self.rules) > MAX_RULES:
            raise GrammarTooLargeError(
                f"the grammar for this schema grew past {MAX_RULES} rules (around {c[0].ptr}); "
                "simplify the schema (large oneOf/anyOf combinations multiply; objects with thousands of "
                "optional properties need rules for each)")
        if name in self.recursive or not _small(expr, 60):
            self.rules[name] = expr
            result = ref(name)
        else:
            del self.rules[name]
            result = expr
        self.values[key] = result
        return result

    def any_value(self) -> ir.Expr:
        family = _any_value_rules(self.ws, self.sep, self.colon, self.max_any_depth)
        for name, body in family.items():
            self.rules.setdefault(name, body)
        return ref(_any_name(self.max_any_depth))

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
            strings = [v for v in vals if isinstance(v, str)]
            return alt(json_text.strings_literal(strings) if strings else NOTHING,
                       *(json_text.value_literal(v, self.ws) for v in vals if not isinstance(v, str)))
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
        if len(b.multiple_of) == 1 and not b.not_multiple_of:
            out = self.fractional_multiples(b, b.multiple_of[0][0], ints, fracs)
            if out is not None:
                return out
        k = None
        float_divisor = False
        exact_below = 2 ** 53  # int / float division is exact only below 2**53
        integral = any(not isinstance(m, float) or m.is_integer() for m, _ in b.multiple_of)
        for m, mptr in b.multiple_of:
            if isinstance(m, float) and not m.is_integer():
                dyadic = json_numbers.dyadic_parts(m) if integral else None
                if dyadic is None:
                    self.unsupported("multipleOf", mptr, f"non-integral divisor {m!r} (validators compare it in floating point)")
                    continue
                # with an integral divisor too, multiples are integers n; n is
                # a multiple of p / 2**j when p divides it, and n / (p / 2**j)
                # is exact below 2**(53 - j)
                m, j = dyadic
                exact_below = min(exact_below, json_numbers.exact_magnitude(j))
            if isinstance(m, float):
                float_divisor = True
            m = abs(int(m))
            k = m if k is None else k * m // math.gcd(k, m)
        excluded = tuple(abs(int(m)) for m, _ in b.not_multiple_of)
        float_divisor = float_divisor or any(isinstance(m, float) for m, _ in b.not_multiple_of)
        lo, hi = b.minimum, b.maximum
        if (k is not None or excluded) and (float_divisor or exact_below != 2 ** 53):
            lo = tighter_lower(lo, (-exact_below, False))
            hi = tighter_upper(hi, (exact_below, False))
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
        if k is None and not excluded:
            out = _bounded_number(fracs, self.draft >= 6, tuple(bounds.items()))
            if out == NOTHING:
                self.reasons.add(b.ptr, "no number within the bounds")
            return self.hoist(out)
        e = json_numbers.number_expr(integers=True, fractions=fracs, multiple_of=k, not_multiple_of=excluded,
                                     zero_fractions=self.draft >= 6, **bounds)
        if e is None:
            mptr = (b.multiple_of or b.not_multiple_of)[0][1]
            self.unsupported("multipleOf", mptr, "the divisors are too large for a remainder automaton")
            e = json_numbers.number_expr(integers=True, fractions=fracs, zero_fractions=self.draft >= 6, **bounds)
        out = json_numbers.lower(e, self.sink)
        if out == NOTHING:
            self.reasons.add(b.ptr, "no number within the bounds")
        return self.hoist(out)

    def fractional_multiples(self, b: Branch, m, ints: bool, fracs: bool) -> ir.Expr | None:
        """Multiples of one non-integral divisor p / 2**j (see
        json_numbers.dyadic_multiples); None for other divisors."""
        if not isinstance(m, float) or m.is_integer():
            return None
        lo, hi = b.minimum, b.maximum
        e = json_numbers.dyadic_multiples(
            m, integers=ints, fractions=fracs, zero_fractions=self.draft >= 6,
            minimum=None if lo is None else lo[0], exclusive_minimum=bool(lo and lo[1]),
            maximum=None if hi is None else hi[0], exclusive_maximum=bool(hi and hi[1]))
        if e is None:
            return None
        out = json_numbers.lower(e, self.sink)
        if out == NOTHING:
            self.reasons.add(b.ptr, "no multiple of the divisor within the bounds")
        return self.hoist(out)




# --------------------------------------------------------------------------- module helpers


@lru_cache(maxsize=1024)
def _bounded_number(fractions: bool, zero_fractions: bool, bounds: tuple) -> ir.Expr:
    """Integers (and fractions) within bounds, as bytes: no rules needed, so
    kept per process (``minimum: 0`` recurs in most schemas)."""
    e = json_numbers.number_expr(integers=True, fractions=fractions, zero_fractions=zero_fractions, **dict(bounds))
    return json_numbers.lower(e)


def _any_name(depth: int | None) -> str:
    return "any" if depth is None else f"any{depth}"


@lru_cache(maxsize=32)
def _any_value_rules(ws: ir.Expr, sep: ir.Expr, colon: ir.Expr, depth: int | None) -> dict[str, ir.Expr]:
    """The rules of "any JSON value nested at most ``depth`` deep": ``any<d>``
    for each depth, plus the string characters' rule. Their names and bodies
    do not depend on the schema, so they are built once per whitespace policy
    and depth and copied into every grammar that needs them."""
    rules: dict[str, ir.Expr] = {}
    sink = charlang.RuleSink(rules, prefix="anychar")
    string = seq(json_text.QUOTE, charlang.encode(ANY_STRING, json_text.JsonCharEncoder(sink), {}, sink), json_text.QUOTE)
    scalars = alt(literal("null"), literal("true"), literal("false"), json_numbers.PLAIN_NUMBER, string)
    levels = [None] if depth is None else range(depth + 1)
    for d in levels:
        if d == 0:
            rules[_any_name(d)] = scalars
            continue
        inner = ref(_any_name(None if d is None else d - 1))
        arr = alt(seq(literal("["), ws, literal("]")),
                  seq(literal("["), ws, inner, rep(seq(sep, inner), 0, None), ws, literal("]")))
        member = seq(string, colon, inner)
        obj = alt(seq(literal("{"), ws, literal("}")),
                  seq(literal("{"), ws, member, rep(seq(sep, member), 0, None), ws, literal("}")))
        rules[_any_name(d)] = alt(scalars, arr, obj)
    return rules


def _small(e: ir.Expr, limit: int) -> bool:
    """Is the expression tree at most ``limit`` nodes (refs count as one)?"""
    return ir.tree_size(e, limit) <= limit
