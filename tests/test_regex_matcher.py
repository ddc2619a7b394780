"""End to end: regexes compiled for real tokenizers, walked token by token.

For each regex (the fullmatch cases of ``test_regex_frontend`` plus seeded
random ones) and each tokenizer (Llama-3, SmolLM2):

- strings (matching ones sampled from the regex, their near-misses, random
  ones) are tokenized and fed to a Matcher, which must accept exactly when
  Python's ``re.fullmatch`` does (same Python/ECMA agreement rules as in
  ``test_regex_frontend``);
- at a few visited states ``allowed_mask()`` is checked against independent
  computations: every special token except EOS is refused, EOS is allowed iff
  the IR oracle accepts the text so far, no token whose first byte the oracle
  calls dead is allowed, a sample of allowed and refused tokens agrees with
  the oracle's prefix check (``can_extend``) and with ``copy().advance``, and
  at some states the whole vocabulary is compared with ``copy().advance``;
- random walks through the allowed tokens only ever produce viable prefixes,
  and those the matcher accepts match the regex.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

import structgen
from structgen.frontends.regex import parse_regex, regex_to_expr
from structgen.grammar import ir
from tests.ir_oracle import can_extend, matches
from tests.test_regex_frontend import CASES, PY_DOT, Case

try:
    from tests import tokenizers as _tokenizers

    TOKENIZERS = {"llama3": _tokenizers.llama3, "smollm2": _tokenizers.smollm2}
except ImportError:  # pragma: no cover - the tokenizer packages are test dependencies
    TOKENIZERS = {}

SAMPLE = 24  # allowed and refused tokens checked against the oracle per state
FULL_VOCAB_EVERY = 12  # compare the whole vocabulary with copy().advance at every n-th regex


# --------------------------------------------------------------------- regexes

def _random_regex(rng: random.Random, depth: int = 0) -> tuple[str, str]:
    """(ECMA, Python) spellings of a small random regex (see test_regex_frontend)."""
    r = rng.random()
    if depth >= 3 or r < 0.35:
        kind = rng.choice(["char", "char", "class", "short", "dot"])
        if kind == "char":
            c = rng.choice(["a", "b", "1", "-", "é", "😀", "\\.", "_", " ", "x", "{", "\\}"])
            return c, c
        if kind == "short":
            c = rng.choice([r"\d", r"\w", r"\D", r"\W"])
            return c, c
        if kind == "dot":
            return ".", PY_DOT
        items = rng.sample(["a", "b", "1", "a-c", "0-9", "à-ÿ", "é", "😀", "_", r"\d", r"\w", r"\-", " "],
                           rng.randint(1, 3))
        text = "[" + ("^" if rng.random() < 0.3 else "") + "".join(items) + "]"
        return text, text
    if r < 0.55:
        parts = [_random_regex(rng, depth + 1) for _ in range(rng.randint(2, 3))]
        return "".join(p[0] for p in parts), "".join(p[1] for p in parts)
    if r < 0.7:
        parts = [_random_regex(rng, depth + 1) if rng.random() < 0.85 else ("", "") for _ in range(rng.randint(2, 3))]
        return ("(?:" + "|".join(p[0] for p in parts) + ")", "(?:" + "|".join(p[1] for p in parts) + ")")
    inner = _random_regex(rng, depth + 1)
    q = rng.choice(["*", "+", "?", "{0}", "{2}", "{1,3}", "{2,}", "*?", "{0,4}", "{3}"])
    return "(?:" + inner[0] + ")" + q, "(?:" + inner[1] + ")" + q


def _regexes() -> list[Case]:
    # empty languages have their own test below
    out = [c for c in CASES if not c.search and regex_to_expr(c.pattern) != ir.NOTHING]
    rng = random.Random(1234)
    seen = {c.pattern for c in out}
    while len(out) < 300:
        ecma, py = _random_regex(rng)
        if ecma not in seen:
            seen.add(ecma)
            out.append(Case(ecma, py, max_len=16))
    return out


REGEXES = _regexes()


# --------------------------------------------------------------------- strings

_ASCII_PRINTABLE = (0x20, 0x7E)


def _sample_char(ranges, rng: random.Random) -> str | None:
    ranges = [(lo, hi) for lo, hi in ranges if not (0xD800 <= lo and hi <= 0xDFFF)]
    if not ranges:
        return None
    ascii_part = [(max(lo, 0x20), min(hi, 0x7E)) for lo, hi in ranges if lo <= 0x7E and hi >= 0x20]
    if ascii_part and rng.random() < 0.7:
        lo, hi = rng.choice(ascii_part)
    else:
        lo, hi = rng.choice(ranges)
        hi = min(hi, lo + 300) if rng.random() < 0.8 else hi
    for _ in range(10):
        cp = rng.randint(lo, hi)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)
    return None


def _sample(node, rng: random.Random, budget: list[int]) -> str | None:
    """A random string of the regex's language (None: hit an empty set)."""
    kind = node[0]
    if kind == "set":
        return _sample_char(node[1], rng)
    if kind in ("anchor", "empty"):
        return ""
    if kind == "group":
        return _sample(node[1], rng, budget)
    if kind == "seq":
        parts = [_sample(x, rng, budget) for x in node[1]]
        return None if any(p is None for p in parts) else "".join(parts)
    if kind == "alt":
        options = list(node[1])
        rng.shuffle(options)
        for o in options:
            s = _sample(o, rng, budget)
            if s is not None:
                return s
        return None
    if kind == "rep":
        _, body, lo, hi = node
        top = lo + 3 if hi is None else min(hi, lo + 3)
        count = rng.randint(lo, top) if budget[0] > 0 else lo
        budget[0] -= count
        parts = [_sample(body, rng, budget) for _ in range(count)]
        return None if any(p is None for p in parts) else "".join(parts)
    raise AssertionError(kind)


def _strings(case: Case, rng: random.Random) -> list[str]:
    tree = parse_regex(case.pattern)
    positives = [s for s in (_sample(tree, rng, [30]) for _ in range(4)) if s is not None]
    alphabet = sorted(set("".join(positives)) | set("a1 é😀-_.x\n"))
    out = []
    for s in positives:
        out.append(s)
        if s:
            i = rng.randrange(len(s))
            c = rng.choice(alphabet)
            out += [s[:i] + s[i + 1:], s[:i] + c + s[i:], s[:i] + c + s[i + 1:]]
        out.append(s + rng.choice(alphabet))
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(2)]
    return [s[: case.max_len] for s in dict.fromkeys(out)]


# --------------------------------------------------------------------- checks

@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def tokenizer(request):
    return TOKENIZERS[request.param]()


def _check_mask(g, m, prefix: bytes, rng: random.Random, full: bool) -> None:
    vocab = g.vocab
    tb = vocab.token_bytes
    mask = m.allowed_mask()
    assert mask.shape == (len(tb),)
    eos = list(vocab.eos_ids)
    accepting = matches(g.grammar, prefix)
    assert bool(mask[eos].all()) == accepting and bool(mask[eos].any()) == accepting, prefix
    blocked = sorted(vocab.special_ids - set(eos))
    assert not mask[blocked].any(), prefix
    allowed = np.flatnonzero(mask)
    # no token starting with a dead byte
    first = _first_bytes(vocab)
    live = np.array([can_extend(g.grammar, prefix + bytes([b])) for b in range(256)])
    has_bytes = first >= 0
    assert not (mask & has_bytes & ~live[np.maximum(first, 0)]).any(), prefix
    # samples of allowed tokens and of refused tokens with a live first byte
    refused = np.flatnonzero(~mask & has_bytes & live[np.maximum(first, 0)])
    picks = list(rng.sample(list(allowed), min(SAMPLE, len(allowed))))
    picks += list(rng.sample(list(refused), min(SAMPLE, len(refused))))
    for i in picks:
        expected = can_extend(g.grammar, prefix + tb[i])
        assert bool(mask[i]) == expected, (prefix, tb[i], expected)
        assert m.copy().advance(int(i)) == expected, (prefix, tb[i])
    if full:
        brute = np.array([m.copy().advance(i) for i in range(len(tb))])
        assert (brute == mask).all(), (prefix, np.flatnonzero(brute != mask)[:10])


_FIRST_BYTES: dict[int, np.ndarray] = {}


def _first_bytes(vocab) -> np.ndarray:
    got = _FIRST_BYTES.get(id(vocab))
    if got is None:
        got = np.array([b[0] if b else -1 for b in vocab.token_bytes], dtype=np.int64)
        _FIRST_BYTES[id(vocab)] = got
    return got


@pytest.mark.parametrize("index", range(0, len(REGEXES), 25), ids=lambda i: f"regexes{i}-{i + 24}")
def test_regex_matcher(tokenizer, index):
    failures = []
    for k, case in enumerate(REGEXES[index:index + 25]):
        try:
            _check_case(tokenizer, case, full=(index + k) % FULL_VOCAB_EVERY == 0)
        except AssertionError as err:
            failures.append(f"{case.pattern!r}: {str(err)[:300]}")
    assert not failures, "\n".join(failures[:10])


def _check_case(tokenizer, case: Case, full: bool) -> None:
    rng = random.Random(case.pattern)
    g = structgen.compile_regex(case.pattern, tokenizer)
    py = case.python()
    vocab = g.vocab
    strings = _strings(case, rng)
    mask_checked = False
    for s in strings:
        data = s.encode()
        ids = tokenizer.encode(s, add_special_tokens=False)
        if vocab.decode_bytes(ids) != data:
            continue  # the tokenizer normalises this text: not a byte-exact test
        expected = py.fullmatch(s) is not None
        m = g.matcher()
        steps = []
        ok = True
        for t in ids:
            steps.append(m.copy())
            if not m.advance(t):
                ok = False
                break
        got = ok and m.is_accepting()
        assert got == expected, f"string {s!r}: matcher {got}, re {expected}"
        if expected and not mask_checked:
            # check masks at the start, one state in the middle and the end
            mask_checked = True
            positions = sorted({0, len(ids) // 2, len(ids)})
            for n_tokens in positions:
                state = steps[n_tokens] if n_tokens < len(steps) else m
                _check_mask(g, state, vocab.decode_bytes(ids[:n_tokens]), rng, full and n_tokens == 0)
    _random_walk(g, py, rng)


def _random_walk(g, py: re.Pattern, rng: random.Random) -> None:
    """Sample allowed tokens: the text must stay viable, and be a match when accepted."""
    m = g.matcher()
    eos = set(g.vocab.eos_ids)
    data = b""
    for _ in range(6):
        allowed = [i for i in np.flatnonzero(m.allowed_mask()) if i not in eos]
        if not allowed:
            break
        t = int(rng.choice(allowed))
        assert m.advance(t)
        data += g.vocab.token_bytes[t]
        assert can_extend(g.grammar, data), data
        if m.is_accepting():
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise AssertionError(f"accepted text is not UTF-8: {data!r}") from None
            assert py.fullmatch(text[:200]) is not None or len(text) > 200, text


@pytest.mark.parametrize("pattern", ["[]", r"a[^\d\D]", r"\uD800"])
def test_empty_language_is_refused_at_compile_time(tokenizer, pattern):
    with pytest.raises(structgen.GrammarError, match="matches no output"):
        structgen.compile_regex(pattern, tokenizer)
