"""Exception types. Each failure a user can hit has its own type and a message
that says what went wrong and what to do about it."""

from __future__ import annotations

#: how much of a spec (pattern, grammar line, schema value) an error message
#: quotes: a hostile spec of megabytes must not come back whole in a log line
QUOTE_LIMIT = 200


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


class StructgenError(Exception):
    """Base class of every error structgen raises on purpose."""

    #: set when a batched ``generate`` raises for one row: that row's prompt
    #: index, and every row's value or exception
    index: int | None = None
    results: list | None = None


class InvalidSchemaError(StructgenError, ValueError):
    """The input is not a valid JSON Schema (or Pydantic model)."""

    def __init__(self, message: str, pointer: str = "") -> None:
        self.pointer = pointer
        super().__init__(f"{clip(message, 4 * QUOTE_LIMIT)} (at {clip(pointer or '#')})")


class UnsupportedSchemaError(StructgenError):
    """A schema keyword structgen cannot enforce. Strict mode refuses it rather
    than silently ignoring it; pass ``lenient=True`` to enforce the rest and
    validate the final output instead."""

    def __init__(self, keyword: str, pointer: str, detail: str = "") -> None:
        self.keyword = keyword
        self.pointer = pointer
        msg = f"keyword {clip(keyword)!r} at {clip(pointer or '#')} is not supported"
        if detail:
            msg += f": {clip(detail, 4 * QUOTE_LIMIT)}"
        super().__init__(
            msg + " (to skip it and validate the output afterwards, pass lenient=True; on the command line, --lenient)"
        )


class UnsatisfiableSchemaError(StructgenError):
    """The schema accepts no JSON value at all (e.g. minimum above maximum)."""


class RegexError(StructgenError, ValueError):
    """A regular expression is malformed or uses a feature no automaton can
    express (look-around, back-references)."""

    def __init__(self, message: str, pattern: str, position: int | None = None) -> None:
        self.pattern = pattern
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where} in regex {clip(pattern)!r}")


class GrammarError(StructgenError, ValueError):
    """A grammar file (GBNF/Lark) is malformed or refers to undefined rules."""


class UnresolvableReferenceError(StructgenError, LookupError):
    """A ``$ref`` names a document that is neither in the schema nor in the
    registry passed as ``registry=``. structgen never fetches one (no network,
    no file): put it in a ``referencing.Registry`` and pass that."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(
            f"$ref {clip(uri)!r} is not in the schema or the registry given; schemas are never fetched "
            "(network or file): pass registry=referencing.Registry().with_resource(uri, resource)"
        )


class GrammarTooLargeError(StructgenError):
    """The automaton hit one of its caps (states, expression size, nesting).
    Simplify the schema or raise the cap with ``compile_*(..., max_states=...)``."""


class TokenizerError(StructgenError):
    """The tokenizer's tokens cannot be mapped to the exact bytes they emit,
    or the tokenizer is not the model's (its vocabulary is wider than the
    model's embedding)."""


class TruncatedOutputError(StructgenError):
    """Generation stopped (token limit) before the output was complete. The
    partial text is kept on ``.partial_text``; raise ``max_new_tokens``."""

    def __init__(self, partial_text: str, max_new_tokens: int | None = None) -> None:
        self.partial_text = partial_text
        self.max_new_tokens = max_new_tokens
        limit = f" of {max_new_tokens} tokens" if max_new_tokens else ""
        super().__init__(
            f"output was cut off by the token limit{limit} before it was complete; "
            f"raise max_new_tokens. Partial output: {partial_text[:200]!r}"
        )


class ModelNotFoundError(StructgenError, FileNotFoundError):
    """The model (or the package that ships it) is not on this machine.
    structgen never downloads models; the message says how to get it."""


class OutputValidationError(StructgenError, ValueError):
    """The finished output failed the final validation. With a strict
    compilation this cannot happen; with ``lenient=True`` it means the model
    wrote something the grammar could not rule out (see ``CompiledGrammar.notes``).
    ``.text`` is the output, ``.errors`` what was wrong with it."""

    def __init__(self, text: str, errors: str) -> None:
        self.text = text
        self.errors = errors
        super().__init__(f"the output does not validate: {errors}. Output: {text[:200]!r}")
