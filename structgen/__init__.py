"""structgen: constrained decoding for Hugging Face models.

Make a model's output always match a JSON Schema, a Pydantic model, a regular
expression or a grammar, by masking the logits of every token that could not
continue a valid output.

Pipeline: frontends (``structgen.frontends``) turn a spec into the grammar IR
(``structgen.grammar``); the lazy DFA (``structgen.automaton``) and the token
index (``structgen.index``) turn it into per-state token masks; a ``Matcher``
(``structgen.matcher``) follows one sequence; the integrations
(``structgen.integrations``) plug that into ``transformers``.
"""

from __future__ import annotations

from structgen.compile import compile_choice, compile_grammar, compile_json_schema, compile_regex
from structgen.errors import (
    GrammarError,
    GrammarTooLargeError,
    InvalidSchemaError,
    ModelNotFoundError,
    OutputValidationError,
    RegexError,
    StructgenError,
    TokenizerError,
    TruncatedOutputError,
    UnsatisfiableSchemaError,
    UnsupportedSchemaError,
)
from structgen.matcher import CompiledGrammar, Matcher
from structgen.vocab import Vocabulary

__version__ = "0.1.0"

# The model-facing API and the batch bitmasks pull in torch: import them on first use.
_LAZY = {
    "generate": "structgen.integrations.generate",
    "stream": "structgen.integrations.generate",
    "GenerationResult": "structgen.integrations.generate",
    "Regex": "structgen.integrations.specs",
    "Choice": "structgen.integrations.specs",
    "Grammar": "structgen.integrations.specs",
    "LogitsProcessor": "structgen.integrations.transformers",
    "load_model": "structgen.integrations.model",
    "load_tokenizer": "structgen.integrations.model",
    "allocate_token_bitmask": "structgen.bitmask",
    "apply_token_bitmask_inplace": "structgen.bitmask",
    "fill_next_token_bitmask_batch": "structgen.bitmask",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'structgen' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "compile_json_schema",
    "compile_regex",
    "compile_choice",
    "compile_grammar",
    "CompiledGrammar",
    "Matcher",
    "Vocabulary",
    "StructgenError",
    "InvalidSchemaError",
    "ModelNotFoundError",
    "OutputValidationError",
    "UnsupportedSchemaError",
    "UnsatisfiableSchemaError",
    "RegexError",
    "GrammarError",
    "GrammarTooLargeError",
    "TokenizerError",
    "TruncatedOutputError",
    *_LAZY,
]
