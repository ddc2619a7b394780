"""What the output should look like: the spec types and their compilation.

Every model-facing entry point (:func:`structgen.generate`,
:class:`structgen.LogitsProcessor`, the CLI) accepts the same kinds of spec:

* a Pydantic model class (``class Cat(BaseModel): ...``) -> a validated instance;
* a JSON Schema, as a ``dict``, a ``bool``, JSON text or the
  ``pathlib.Path`` of a JSON file (a ``str`` is always text) -> a ``dict``
  (or whatever JSON value the schema describes);
* :class:`Regex` ``("[0-9]{3}-[0-9]{4}")`` -> the matching ``str``;
* :class:`Choice` ``(["yes", "no"])`` -> one of the options;
* :class:`Grammar` ``(Path("grammars/arith.gbnf"))`` or ``(gbnf_text)`` -> the ``str``;
* an already compiled :class:`~structgen.matcher.CompiledGrammar` -> the ``str``.

:func:`prepare` turns a spec into a :class:`Prepared`: the compiled grammar
(cached, so preparing the same spec twice is cheap) plus ``finish(text)``,
which turns the final text into the return value and never lets an invalid
object through (Pydantic validation; ``jsonschema`` validation when lenient
compilation left something unenforced).
"""

from __future__ import annotations

import json
import operator
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from structgen.errors import OutputValidationError, StructgenError, TruncatedOutputError
from structgen.grammar.ir import Grammar as IRGrammar
from structgen.matcher import CompiledGrammar, Matcher
from structgen.vocab import Vocabulary

__all__ = ["Regex", "Choice", "Grammar", "Prepared", "prepare", "check", "pydantic_schema", "vocabulary_for"]


# --------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Regex:
    """Outputs that fully match ``pattern`` (ECMA-262 / Python syntax; no
    look-around or back-references). The result is the matching string."""

    pattern: str

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):
            raise TypeError(f"Regex pattern must be a str, not {type(self.pattern).__name__}")


@dataclass(frozen=True)
class Choice:
    """Outputs equal to one of ``options`` (strings). The result is the option."""

    options: tuple[str, ...]

    def __init__(self, options: Iterable[str]) -> None:
        if isinstance(options, str):
            raise TypeError("Choice takes a list of strings, not one string (did you mean Choice([...])?)")
        opts = tuple(options)
        if not opts:
            raise ValueError("Choice needs at least one option")
        bad = [o for o in opts if not isinstance(o, str)]
        if bad:
            raise TypeError(f"Choice options must be strings; got {bad[0]!r}")
        object.__setattr__(self, "options", opts)


@dataclass(frozen=True)
class Grammar:
    """A GBNF grammar (llama.cpp format, start rule ``root``): its text (a
    ``str`` is always text, never a path, so a grammar sent by a stranger
    cannot read a file), or a ``pathlib.Path`` of a ``.gbnf`` file. The result
    is the generated string.

    A file is read when the grammar is compiled; compiled grammars are cached
    on the text, so an edited file is picked up."""

    source: "str | os.PathLike[str]"

    def __init__(self, text_or_path: "str | os.PathLike[str]") -> None:
        if not isinstance(text_or_path, (str, os.PathLike)):
            raise TypeError(f"Grammar takes GBNF text or a path, not {type(text_or_path).__name__}")
        object.__setattr__(self, "source", text_or_path)


# ---------------------------------------------------------------- vocabulary

_eos_vocabs: "weakref.WeakKeyDictionary[Vocabulary, dict]" = weakref.WeakKeyDictionary()
_eos_lock = threading.Lock()


def vocabulary_for(tokenizer: Any, eos_ids: Iterable[int] | int | None = None) -> Vocabulary:
    """The vocabulary of ``tokenizer`` whose EOS set is the tokenizer's own
    ``eos_token_id`` plus ``eos_ids`` (e.g. a model's
    ``generation_config.eos_token_id``). The same object is returned for the
    same tokenizer and EOS set, so compiled grammars stay cached."""
    base = tokenizer if isinstance(tokenizer, Vocabulary) else Vocabulary.from_tokenizer(tokenizer)
    wanted: list[Any] = []  # ids of any integer type
    own = getattr(tokenizer, "eos_token_id", None)
    if isinstance(tokenizer, Vocabulary):
        wanted.extend(base.eos_ids)
    elif own is not None:
        wanted.extend(own if isinstance(own, (list, tuple)) else [own])
    if eos_ids is not None:
        wanted.extend([eos_ids] if hasattr(eos_ids, "__index__") else eos_ids)  # one id: int, numpy, torch
    if not wanted:
        wanted.extend(base.eos_ids)
    key = tuple(sorted(dict.fromkeys(operator.index(i) for i in wanted)))
    if not key:
        raise StructgenError(
            f"tokenizer {base.name!r} has no end-of-sequence token; pass eos_token_id=... so the "
            "output can end"
        )
    if key == tuple(sorted(base.eos_ids)):
        return base
    with _eos_lock:
        per = _eos_vocabs.setdefault(base, {})
        vocab = per.get(key)
        if vocab is None:
            vocab = per[key] = base.with_eos_ids(key)
    return vocab


# ------------------------------------------------------------------- prepare


@dataclass
class Prepared:
    """A spec made ready for decoding.

    ``grammar`` is the compiled grammar; ``finish(text)`` returns the value
    (see :meth:`finish`); ``convert`` turns an accepted text into it;
    ``kind`` is ``"pydantic"``, ``"json"``, ``"regex"``, ``"choice"``,
    ``"grammar"`` or ``"compiled"``; ``is_json`` says whether the text is JSON."""

    grammar: CompiledGrammar
    convert: Callable[[str], Any]
    kind: str
    notes: list[str] = field(default_factory=list)

    @property
    def is_json(self) -> bool:
        return self.kind in ("pydantic", "json")

    def finish(self, text: str) -> Any:
        """The value of a finished output's text. Every path that returns a
        value comes through here, so only a text the grammar accepts gets one:
        a text cut off before its end (a token limit) raises
        :class:`TruncatedOutputError` with the partial text, one the grammar
        rejects :class:`OutputValidationError`. Then ``convert`` validates
        (Pydantic; ``jsonschema`` where lenient compilation left something
        unenforced) and converts."""
        m = self.grammar.matcher()
        if not m.advance_bytes(text.encode("utf-8", "surrogatepass")):
            raise OutputValidationError(text, "the grammar does not accept it")
        if not m.is_accepting():
            raise TruncatedOutputError(text)
        return self.convert(text)

    def matcher(self) -> Matcher:
        """A fresh matcher for one sequence."""
        return self.grammar.matcher()


def prepare(
    spec: Any,
    tokenizer: Any,
    *,
    eos_ids: Iterable[int] | int | None = None,
    whitespace: str | int = "compact",
    lenient: bool = False,
    canonical: bool = True,
    closed_objects: bool = True,
    registry: Any = None,
) -> Prepared:
    """Compile ``spec`` for ``tokenizer`` (see the module docstring for the
    kinds of spec). ``eos_ids`` are extra end-of-sequence ids (the model's);
    ``whitespace``, ``lenient``, ``canonical`` and ``closed_objects`` apply to
    JSON specs. ``canonical``: each value spelled one way, as ``json.dumps``
    spells it (no ``\\u0061`` escapes, no ``12.000``), and object members in
    declaration order: a small model stays on track and jump-forward writes
    every key; the values accepted are the same. ``closed_objects``:
    an object whose schema says nothing about extra keys gets its declared
    properties only, as OpenAI's strict mode, xgrammar and outlines generate
    it (otherwise a small model may invent keys until the token limit);
    ``False`` generates what the schema literally allows. Either way the
    output validates against the schema as written (Pydantic models: extra
    fields would be ignored by validation anyway). ``registry``: a
    ``referencing.Registry`` holding the documents that ``$ref``s outside a
    JSON Schema name; nothing is ever fetched (pass the returned
    :class:`Prepared` to ``generate`` or ``LogitsProcessor``)."""
    if isinstance(spec, Prepared):
        return spec
    return _prepare(spec, tokenizer, eos_ids, whitespace, lenient, canonical, closed_objects, registry)


def _prepare(
    spec: Any, tokenizer: Any, eos_ids: Any, whitespace: str | int, lenient: bool, canonical: bool,
    closed_objects: bool, registry: Any,
) -> Prepared:
    if isinstance(spec, CompiledGrammar):
        return Prepared(spec, _text_finish(spec), "compiled", list(spec.notes))

    vocab = vocabulary_for(tokenizer, eos_ids)
    from structgen import compile as C

    if isinstance(spec, Regex):
        g = C.compile_regex(spec.pattern, vocab)
        return Prepared(g, _text_finish(g), "regex")
    if isinstance(spec, Choice):
        g = C.compile_choice(list(spec.options), vocab)
        return Prepared(g, _text_finish(g), "choice")
    if isinstance(spec, Grammar) or isinstance(spec, IRGrammar):
        g = C.compile_grammar(spec.source if isinstance(spec, Grammar) else spec, vocab)
        return Prepared(g, _text_finish(g), "grammar", list(g.notes))

    model_cls = _pydantic_model(spec)
    if model_cls is not None:
        g = C.compile_json_schema(
            pydantic_schema(model_cls), vocab, whitespace=whitespace, lenient=lenient, canonical=canonical,
            closed_objects=closed_objects,
        )
        return Prepared(g, _pydantic_finish(model_cls), "pydantic", list(g.notes))

    if isinstance(spec, str):
        from structgen.frontends.json_schema import parse_schema_text

        try:
            schema = parse_schema_text(spec)
        except json.JSONDecodeError:
            raise TypeError(
                "a str spec must be a JSON Schema in JSON text; for a schema file pass pathlib.Path(file), "
                "for a regular expression structgen.Regex(pattern), for a grammar structgen.Grammar(text_or_path)"
            ) from None
    elif isinstance(spec, (dict, bool)):
        schema = spec
    elif isinstance(spec, os.PathLike):
        from structgen.frontends.json_schema import load_schema

        schema = load_schema(spec)
    else:
        raise TypeError(
            f"cannot use {type(spec).__name__} as an output spec: pass a Pydantic model class, a JSON "
            "Schema (dict, JSON text or pathlib.Path of a file), structgen.Regex(...), structgen.Choice([...]), "
            "structgen.Grammar(...) or a CompiledGrammar"
        )
    g = C.compile_json_schema(
        schema, vocab, whitespace=whitespace, lenient=lenient, canonical=canonical, closed_objects=closed_objects,
        registry=registry,
    )
    return Prepared(g, _json_finish(schema, validate=bool(g.notes), registry=registry), "json", list(g.notes))


def check(
    spec: Any, *, whitespace: str | int = "compact", lenient: bool = False, closed_objects: bool = True
) -> None:
    """Run the spec's frontend alone, without a tokenizer: raises the errors
    compiling would (bad regex, grammar or schema) in milliseconds, e.g.
    before loading a model."""
    if isinstance(spec, (Prepared, CompiledGrammar, Choice, IRGrammar)):
        return
    if isinstance(spec, Regex):
        from structgen.frontends.regex import regex_to_expr

        regex_to_expr(spec.pattern)
        return
    if isinstance(spec, Grammar):
        from structgen.frontends.gbnf import load_gbnf

        load_gbnf(spec.source)
        return
    if isinstance(spec, str):
        from structgen.frontends.json_schema import parse_schema_text

        try:
            spec = parse_schema_text(spec)
        except json.JSONDecodeError:
            return  # prepare() explains
    if isinstance(spec, os.PathLike):
        from structgen.frontends.json_schema import load_schema

        spec = load_schema(spec)
    if _pydantic_model(spec) is not None:
        spec = pydantic_schema(spec)
    if isinstance(spec, (dict, bool)):
        from structgen.frontends.json_schema import json_schema_to_grammar

        json_schema_to_grammar(spec, whitespace=whitespace, lenient=lenient, closed_objects=closed_objects)


_pydantic_schemas: "weakref.WeakKeyDictionary[type, dict]" = weakref.WeakKeyDictionary()


def pydantic_schema(model_cls) -> dict:
    """pydantic's ``model_json_schema()`` of ``model_cls``, computed once per
    class. It is not rewritten: objects of models whose extra fields are
    ignored (pydantic's default) say nothing about extra keys, and
    ``closed_objects`` (see :func:`prepare`) closes them like any schema's."""
    cached = _pydantic_schemas.get(model_cls)
    if cached is None:
        cached = _pydantic_schemas[model_cls] = model_cls.model_json_schema()
    return cached


def _pydantic_model(spec: Any):
    if not isinstance(spec, type):
        return None
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return None
    return spec if issubclass(spec, BaseModel) else None


# -------------------------------------------------------------------- finish


def _identity(text: str) -> str:
    return text


def _text_finish(grammar: CompiledGrammar) -> Callable[[str], Any]:
    return _identity


def _pydantic_finish(model_cls) -> Callable[[str], Any]:
    import pydantic

    def finish(text: str):
        try:
            return model_cls.model_validate_json(text)
        except pydantic.ValidationError as e:
            problems = "; ".join(
                (".".join(map(str, err["loc"])) + ": " if err["loc"] else "") + err["msg"] for err in e.errors()
            )
            raise OutputValidationError(text, problems) from e

    return finish


def _json_finish(schema: Any, *, validate: bool, registry: Any = None) -> Callable[[str], Any]:
    from structgen.frontends.json_schema import schema_validator, validation_errors

    validator = schema_validator(schema, registry) if validate else None

    def finish(text: str):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as e:  # an integer of thousands of digits, deep nesting
            raise OutputValidationError(text, f"json.loads cannot read it: {e}") from None
        if validator is not None:
            errors = validation_errors(validator, value)
            if errors:
                msg = "; ".join(f"{_pointer(err.absolute_path)}: {err.message}" for err in errors[:5])
                raise OutputValidationError(text, msg)
        return value

    return finish


def _pointer(path: Sequence[Any]) -> str:
    return "/" + "/".join(str(p) for p in path) if path else "#"
