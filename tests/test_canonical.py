"""Canonical JSON (the grammar intersected with one spelling per value, members
in declaration order) on real schemas: random walks through the allowed
tokens (structgen.bench.fuzz's walker) never reach a dead end, and every
complete output validates, is spelled canonically and keeps the declared
member order."""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

import numpy as np
import pytest

import structgen
from structgen.bench.fuzz import Walker, problem
from structgen.errors import GrammarTooLargeError, StructgenError
from structgen.frontends.json_schema import schema_validator
from structgen.vocab import Vocabulary
from tests.tokenizers import smollm2

MASKBENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "maskbench-dev"
SCHEMAS = 30  # a fixed sample of MaskBench, chosen by a hash of the file name
WALKS = 3
MAX_TOKENS = 200


def sample() -> list[Path]:
    files = sorted(MASKBENCH.glob("*.json"), key=lambda p: zlib.crc32(p.name.encode()))
    return files[:SCHEMAS]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_tokenizer(smollm2())


@pytest.fixture(scope="module")
def walker(vocab) -> Walker:
    return Walker(vocab, MAX_TOKENS)


@pytest.mark.parametrize("path", sample(), ids=lambda p: p.stem)
def test_random_walks_are_canonical_and_valid(path, walker):
    schema = json.loads(path.read_text())["schema"]
    try:
        grammar = structgen.compile_json_schema(schema, walker.vocab, canonical=True, closed_objects=True)
    except StructgenError:
        pytest.skip("structgen does not compile this schema")  # coverage is measured by the MaskBench run
    validator = schema_validator(schema)
    rng = random.Random(zlib.crc32(path.name.encode()))
    for _ in range(WALKS):
        w = walker.walk(grammar.matcher(), rng, "closing")
        assert w.outcome in ("complete", "budget"), (w.outcome, w.text)
        if w.outcome == "complete":
            assert problem(w.text, validator, schema=schema, canonical=True) is None, w.text


@pytest.mark.xfail(raises=GrammarTooLargeError, strict=True,
                   reason="known: the canonical intersection's completion search passes its cap")
def test_required_keys_that_no_property_declares_get_a_first_mask(vocab):
    """Found by the fuzz campaign (benchmarks/results/fuzz-2026-12-08): with
    required keys that ``properties`` does not declare (two of 7 characters,
    three of 3, as in the Test Suite's required.json), the canonical grammar
    compiles but its first mask meets the 50,000-node cap of the search that
    checks an intersection can still be completed. Plain grammars are fine."""
    schema = {"required": ["aaaaaaa", "bbbbbbb"]}
    assert structgen.compile_json_schema(schema, vocab).matcher().allowed_token_ids().size
    grammar = structgen.compile_json_schema(schema, vocab, canonical=True, closed_objects=True)
    assert grammar.matcher().allowed_token_ids().size


def test_canonical_accepts_the_same_values(vocab):
    """The canonical grammar accepts json.dumps's spelling of valid values
    (floats that are not integral, below 1e16: no exponent), and refuses the
    other spellings that the plain grammar takes."""
    schema = {"type": "object", "properties": {"n": {"type": "number"}, "s": {"type": "string"},
                                               "i": {"type": "integer"}}}
    canonical = structgen.compile_json_schema(schema, vocab, canonical=True)
    plain = structgen.compile_json_schema(schema, vocab)
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = round(float(rng.normal()) * 10.0 ** int(rng.integers(0, 6)), 3)
        n = n + 0.5 if n.is_integer() else n  # "12.0" is json.dumps's spelling, "12" the canonical one
        chars = "".join(chr(int(c)) for c in rng.integers(1, 0x2FF, size=int(rng.integers(0, 8))))
        value = {"n": n, "s": chars, "i": int(rng.integers(-99, 99))}
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        for g in (canonical, plain):
            m = g.matcher()
            assert m.advance_bytes(text) and m.is_accepting(), text
    for other in (b'{"n":1.50}', b'{"i":12.0}', b'{"n":1E+5}', b'{"n":1e05}', b'{"s":"\\u00e9"}', b'{"s":"\\/"}',
                  b'{"s":"a","n":1}'):
        m = plain.matcher()
        assert m.advance_bytes(other) and m.is_accepting(), other
        m = canonical.matcher()
        assert not (m.advance_bytes(other) and m.is_accepting()), other
