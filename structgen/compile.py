"""Public compile entry points: a spec plus a tokenizer gives a CompiledGrammar.

Compiled grammars are cached per (spec, options, vocabulary), so calling
``generate()`` or building a ``LogitsProcessor`` repeatedly with the same
schema reuses the DFA states and masks already built.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from typing import Any

from structgen.errors import GrammarTooLargeError, InvalidSchemaError, clip
from structgen.grammar.ir import Grammar
from structgen.matcher import CompiledGrammar
from structgen.vocab import Vocabulary

_CACHE_SIZE = 64
_cache: "OrderedDict[tuple, CompiledGrammar]" = OrderedDict()
_cache_lock = threading.Lock()


def as_vocabulary(tokenizer: Any) -> Vocabulary:
    """Accept a Vocabulary or anything :meth:`Vocabulary.from_tokenizer` reads."""
    if isinstance(tokenizer, Vocabulary):
        return tokenizer
    return Vocabulary.from_tokenizer(tokenizer)


def _cached(key: tuple, vocab: Vocabulary, build, max_states: int) -> CompiledGrammar:
    full_key = key + (id(vocab), max_states)
    with _cache_lock:
        hit = _cache.get(full_key)
        if hit is not None and hit.vocab is vocab:
            _cache.move_to_end(full_key)
            return hit
    compiled = CompiledGrammar(build(), vocab, max_states=max_states)
    with _cache_lock:
        _cache[full_key] = compiled
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def compile_regex(pattern: str, tokenizer: Any, *, max_states: int = 200_000) -> CompiledGrammar:
    """Outputs that fully match ``pattern`` (ECMA-262 syntax, see
    :mod:`structgen.frontends.regex`)."""
    from structgen.frontends.regex import regex_to_expr

    vocab = as_vocabulary(tokenizer)
    return _cached(("regex", pattern), vocab, lambda: Grammar.from_expr(regex_to_expr(pattern)), max_states)


def compile_choice(options: list[str], tokenizer: Any, *, max_states: int = 200_000) -> CompiledGrammar:
    """Outputs equal to one of ``options``."""
    from structgen.grammar import ir

    if not options:
        raise ValueError("a choice needs at least one option")
    vocab = as_vocabulary(tokenizer)
    return _cached(
        ("choice", tuple(options)),
        vocab,
        lambda: Grammar.from_expr(ir.alt(*(ir.literal(o) for o in options))),
        max_states,
    )


def compile_json_schema(
    schema: Any,
    tokenizer: Any,
    *,
    whitespace: str | int = "compact",
    lenient: bool = False,
    closed_objects: bool = False,
    registry: Any = None,
    max_states: int = 200_000,
    **options: Any,
) -> CompiledGrammar:
    """Outputs that are JSON documents valid against ``schema`` (a dict, JSON
    text, bool, Pydantic model class, or the ``pathlib.Path`` of a JSON file;
    a ``str`` is always JSON text).

    ``whitespace``: ``"compact"`` (none, the default for generation),
    ``"flexible"`` (any JSON whitespace, e.g. to accept ``json.dumps`` output)
    or an int N (at most N whitespace characters per gap). ``lenient``: enforce
    what can be enforced and list the rest in ``.notes`` instead of raising
    :class:`~structgen.errors.UnsupportedSchemaError`. ``closed_objects``: an
    object whose schema says nothing about extra keys takes only its declared
    properties (what generation wants; ``generate`` and ``LogitsProcessor``
    turn it on); the default is the schema's meaning, as a validator reads it.
    ``registry``: a ``referencing.Registry`` holding the documents that
    ``$ref``s outside the schema name; nothing is ever fetched (network or
    file), and a reference to anything else is unsupported.
    Other options go to :func:`~structgen.frontends.json_schema.json_schema_to_grammar`,
    e.g. ``canonical=True``: one spelling per value and declared key order
    (what generation uses).
    """
    from structgen.frontends.json_schema import json_schema_to_grammar, load_schema

    if isinstance(schema, os.PathLike):  # read now: the cache is keyed on the content
        schema = load_schema(schema)
    vocab = as_vocabulary(tokenizer)
    key = ("json", _schema_key(schema), whitespace, lenient, closed_objects, _ByIdentity(registry),
           tuple(sorted(options.items())))
    return _cached(
        key,
        vocab,
        lambda: json_schema_to_grammar(
            schema, whitespace=whitespace, lenient=lenient, closed_objects=closed_objects, registry=registry,
            **options,
        ),
        max_states,
    )


def compile_grammar(grammar: Any, tokenizer: Any, *, max_states: int = 200_000) -> CompiledGrammar:
    """A :class:`~structgen.grammar.ir.Grammar`, GBNF text (a ``str`` is always
    text) or a ``pathlib.Path`` of a ``.gbnf`` file (see
    :mod:`structgen.frontends.gbnf`)."""
    vocab = as_vocabulary(tokenizer)
    if isinstance(grammar, Grammar):
        return CompiledGrammar(grammar, vocab, max_states=max_states)
    from structgen.frontends.gbnf import parse_gbnf, read_gbnf

    # Key the cache on the grammar text, not a path: an edited file recompiles.
    text, source = read_gbnf(grammar)
    return _cached(("gbnf", text), vocab, lambda: parse_gbnf(text, source=source), max_states)


class _ByIdentity:
    """A cache-key part equal only to itself (a registry is not hashable). It
    holds ``obj``, so its id is not reused by another object while cached."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.obj is self.obj


def _schema_key(schema: Any) -> Any:
    """The cache key of a schema: its JSON text, written under the frontend's
    recursion guard (deep schemas are the frontend's to refuse)."""
    if isinstance(schema, type):
        return ("model", schema.__module__, schema.__qualname__, id(schema))
    if isinstance(schema, (dict, list, bool)):
        from structgen.grammar.analysis import deep_recursion

        with deep_recursion():
            try:
                return json.dumps(schema, sort_keys=True, default=str)
            except RecursionError:
                raise GrammarTooLargeError("the schema is nested too deeply to compile") from None
            except (ValueError, TypeError) as e:  # a cycle, an integer of thousands of digits, mixed key types
                raise InvalidSchemaError(f"the schema is not JSON: {clip(str(e))}") from None
    return schema
