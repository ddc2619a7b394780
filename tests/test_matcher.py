"""Matcher semantics: refusal keeps state, EOS rules, rollback, copies,
jump-forward tokens, and one compiled grammar shared across threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import structgen
from structgen.matcher import CompiledGrammar
from structgen.vocab import Vocabulary
from tests.tokenizers import llama3


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_tokenizer(llama3())


def ids_of(vocab: Vocabulary, text: str) -> list[int]:
    return llama3().encode(text, add_special_tokens=False)


def test_refused_token_leaves_state_unchanged(vocab):
    m = structgen.compile_regex(r"ab+c", vocab).matcher()
    (a,) = ids_of(vocab, "a")
    (x,) = ids_of(vocab, "x")
    assert m.advance(a)
    state, mask = m.state, m.allowed_mask().copy()
    assert not mask[x]
    assert not m.advance(x)
    assert m.state == state and m.steps == 1
    assert np.array_equal(m.allowed_mask(), mask)


def test_eos_only_when_accepting_then_stopped(vocab):
    m = structgen.compile_regex(r"ab?", vocab).matcher()
    eos = vocab.eos_ids[0]
    assert not m.allowed_mask()[eos] and not m.advance(eos)
    assert m.advance(ids_of(vocab, "a")[0])
    assert m.is_accepting() and m.allowed_mask()[list(vocab.eos_ids)].all()
    assert m.advance(eos)
    assert m.is_stopped() and m.is_accepting()
    assert not m.allowed_mask().any()
    assert not m.advance(ids_of(vocab, "b")[0])
    m.rollback(1)
    assert not m.is_stopped() and m.advance(ids_of(vocab, "b")[0])


def test_special_tokens_are_never_allowed(vocab):
    m = structgen.compile_regex(r"[\s\S]*", vocab).matcher()  # anything at all
    mask = m.allowed_mask()
    specials = sorted(vocab.special_ids - set(vocab.eos_ids))
    assert specials and not mask[specials].any()
    assert not m.advance(specials[0])
    assert mask[list(vocab.eos_ids)].all()


def test_rollback_and_copy_are_independent(vocab):
    g = structgen.compile_regex(r"(cat|car|dog)s?", vocab)
    m = g.matcher()
    for t in ids_of(vocab, "cat"):
        assert m.advance(t)
    fork = m.copy()
    assert fork.advance(ids_of(vocab, "s")[0])
    assert not m.is_stopped() and m.steps + 1 == fork.steps
    m.rollback(m.steps)
    assert m.state == g.matcher().state
    with pytest.raises(ValueError, match="roll back"):
        m.rollback(1)


def test_forced_tokens_spell_the_forced_bytes(vocab):
    g = structgen.compile_regex(r'\{"name": "(Ann|Bob)", "age": [0-9]+\}', vocab)
    m = g.matcher()
    assert m.forced_bytes() == b'{"name": "'
    forced = m.forced_tokens()
    spelled = vocab.decode_bytes(forced)
    # A final token that a longer one could extend (here the quote) is held back.
    assert forced and b'{"name": "'.startswith(spelled) and len(spelled) < len(b'{"name": "')
    for t in forced:
        assert m.allowed_mask()[t] and m.advance(t)
    assert m.advance_bytes(b'{"name": "'[len(spelled) :] + b'Bob", ')
    assert m.forced_bytes() == b'"age": '


def test_huge_dfa_regexes_compile_lazily(vocab):
    for pattern, sample in [(r"(a|b)*a(a|b){25}", "ab" * 20 + "a" + "b" * 25), (r"[a-z]{1,2000}", "hello" * 300)]:
        g = structgen.compile_regex(pattern, vocab)
        m = g.matcher()
        for t in ids_of(vocab, sample):
            assert m.allowed_mask()[t] and m.advance(t)
        assert m.is_accepting()
        assert g.stats()["states_built"] < 5000


def test_shared_grammar_across_threads(vocab):
    text = '{"id": 12, "tags": ["a", "b"], "ok": true}'
    pattern = r'\{"id": [0-9]+, "tags": \[("[a-z]*"(, )?)*\], "ok": (true|false)\}'
    ids = ids_of(vocab, text)
    expected = []
    m = structgen.compile_regex(pattern, vocab).matcher()
    for t in ids:
        expected.append(m.allowed_mask().copy())
        m.advance(t)
    # A fresh compiled grammar (nothing cached yet) shared by four threads.
    fresh = CompiledGrammar(structgen.compile_regex(pattern, vocab).grammar, vocab)
    errors: list[str] = []

    def worker() -> None:
        mm = fresh.matcher()
        for step, t in enumerate(ids):
            if not np.array_equal(mm.allowed_mask(), expected[step]):
                errors.append(f"mask differs at step {step}")
            mm.advance(t)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
