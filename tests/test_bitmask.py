"""The int32 batch bitmask (structgen.bitmask) and the matcher surface serving
engines use: masks handed out are read-only, batch fills and the device-side
apply agree with ``allowed_mask()`` on random states of real vocabularies,
``validate_tokens``/``rollback``/``jump_forward_string``/``is_terminated``."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import structgen
from structgen.vocab import Vocabulary
from tests.tokenizers import llama3, smollm2

SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 3},
            "ok": {"type": "boolean"},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "number"}},
    {"type": "string", "pattern": "^[a-z]{2,5}-[0-9]{1,3}$"},
]


@pytest.fixture(scope="module", params=["llama3", "smollm2"])
def vocab(request) -> Vocabulary:
    return Vocabulary.from_tokenizer({"llama3": llama3, "smollm2": smollm2}[request.param]())


def unpack(words: torch.Tensor, n: int) -> np.ndarray:
    """Reference unpacking of an int32 bitmask: bit t % 32 of word t // 32."""
    w = words.numpy().astype(np.int64) & 0xFFFFFFFF
    bits = (w[:, :, None] >> np.arange(32)) & 1
    return bits.reshape(w.shape[0], -1)[:, :n].astype(bool)


def random_matchers(vocab: Vocabulary, count: int, seed: int) -> list:
    """Matchers of the test schemas, each walked a random number of random
    allowed tokens (EOS included once in a while, so some are stopped)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        m = structgen.compile_json_schema(SCHEMAS[i % len(SCHEMAS)], vocab).matcher()
        for _ in range(rng.randrange(0, 12)):
            allowed = m.allowed_token_ids()
            if allowed.size == 0:
                break
            m.advance(int(rng.choice(allowed.tolist())))
        out.append(m)
    return out


def test_handed_out_masks_are_read_only(vocab):
    g = structgen.compile_regex(r"[a-z]+", vocab)
    a = g.matcher().allowed_bitmask()
    with pytest.raises(ValueError):
        a[:] = 0
    assert g.matcher().allowed_mask().any()
    stopped = structgen.compile_regex("a", vocab).matcher()
    assert stopped.advance(vocab.token_bytes.index(b"a")) and stopped.advance(vocab.eos_ids[0])
    with pytest.raises(ValueError):
        stopped.allowed_bitmask()[:] = 0xFF


def test_allocate_layout():
    bm = structgen.allocate_token_bitmask(3, 65)
    assert bm.dtype == torch.int32 and bm.shape == (3, 3) and bm.device.type == "cpu"
    assert (bm == -1).all()  # every token allowed until filled


def test_single_and_batch_fill_agree_with_allowed_mask(vocab):
    n = len(vocab.token_bytes)
    padded = n + 77  # models pad their embedding beyond the tokenizer
    matchers = random_matchers(vocab, 24, seed=1)
    expected = np.stack([m.allowed_mask() for m in matchers])

    one = structgen.allocate_token_bitmask(len(matchers), padded)
    for i, m in enumerate(matchers):
        m.fill_next_token_bitmask(one, i)
    assert np.array_equal(unpack(one, n), expected)
    assert not unpack(one, padded)[:, n:].any()

    for threads in (1, None):
        fresh = random_matchers(vocab, 24, seed=1)  # same walks, masks now cached or not per grammar
        batch = structgen.allocate_token_bitmask(len(fresh), padded)
        structgen.fill_next_token_bitmask_batch(fresh, batch, threads=threads)
        assert torch.equal(batch, one)

    # Rows chosen by index; None leaves a row untouched.
    sub = structgen.allocate_token_bitmask(len(matchers), padded)
    structgen.fill_next_token_bitmask_batch([matchers[5], None, matchers[2]], sub, indices=[0, 1, 7])
    assert np.array_equal(unpack(sub, n)[0], expected[5]) and np.array_equal(unpack(sub, n)[7], expected[2])
    assert (sub[1] == -1).all()


def test_cold_states_in_threads_match_one_thread(vocab):
    """Masks computed on the thread pool (distinct cold states of several
    grammars at once) equal those computed one by one."""
    schemas = [{"type": "string", "pattern": f"^[a-z]{{{k}}}[0-9]+$"} for k in range(2, 8)]

    def matchers():
        out = []
        for s in schemas:
            m = structgen.compile_json_schema(s, vocab, max_states=50_000).matcher()
            assert m.advance(vocab.token_bytes.index(b'"'))
            out.append(m)
        return out

    parallel = structgen.allocate_token_bitmask(len(schemas), len(vocab.token_bytes))
    structgen.fill_next_token_bitmask_batch(matchers(), parallel, threads=4)
    serial = structgen.allocate_token_bitmask(len(schemas), len(vocab.token_bytes))
    for i, m in enumerate(matchers()):
        m.fill_next_token_bitmask(serial, i)
    assert torch.equal(parallel, serial)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_apply_agrees_with_allowed_mask(vocab, dtype):
    n = len(vocab.token_bytes)
    padded = n + 45
    matchers = random_matchers(vocab, 9, seed=2)
    expected = np.stack([m.allowed_mask() for m in matchers])
    bm = structgen.allocate_token_bitmask(len(matchers), padded)
    structgen.fill_next_token_bitmask_batch(matchers, bm)
    logits = torch.randn(len(matchers), padded).to(dtype)
    before = logits.clone()
    structgen.apply_token_bitmask_inplace(logits, bm, vocab_size=n)
    allowed = np.zeros((len(matchers), padded), dtype=bool)
    allowed[:, :n] = expected
    allowed_t = torch.from_numpy(allowed)
    assert torch.isinf(logits[~allowed_t]).all() and (logits[~allowed_t] < 0).all()
    assert torch.equal(logits[allowed_t], before[allowed_t])


def test_apply_selected_rows_only():
    bm = torch.zeros((4, 2), dtype=torch.int32)
    bm[:, 0] = 0b101  # tokens 0 and 2
    logits = torch.zeros(4, 50)
    structgen.apply_token_bitmask_inplace(logits, bm, indices=[1, 3])
    assert (logits[[0, 2]] == 0).all()
    for r in (1, 3):
        finite = torch.isfinite(logits[r]).nonzero().flatten().tolist()
        assert finite == [0, 2]  # columns 32..63 cleared, 64.. past the mask
    one = torch.zeros(70)
    structgen.apply_token_bitmask_inplace(one, bm[0])
    assert torch.isfinite(one).nonzero().flatten().tolist() == [0, 2]


def test_apply_torch_path_matches_compiled_path():
    """The tensor-op path (CUDA, bfloat16) and the compiled CPU loop agree,
    with and without row indices."""
    gen = torch.Generator().manual_seed(0)
    bm = torch.randint(-(2**31), 2**31 - 1, (6, 40), dtype=torch.int32, generator=gen)
    logits = torch.randn(6, 1300, generator=gen)
    for indices in (None, [4, 0, 5]):
        a, b = logits.clone(), logits.clone().to(torch.bfloat16)
        structgen.apply_token_bitmask_inplace(a, bm, indices, vocab_size=1250)
        structgen.apply_token_bitmask_inplace(b, bm, indices, vocab_size=1250)
        assert torch.equal(torch.isinf(a), torch.isinf(b))


def test_bad_bitmasks_are_refused():
    with pytest.raises(TypeError):
        structgen.apply_token_bitmask_inplace(torch.zeros(2, 64), torch.zeros((2, 2), dtype=torch.int64))
    g = structgen.compile_regex("a", Vocabulary.from_token_bytes([b"a", b""], eos_ids=[1]))
    with pytest.raises(TypeError):
        g.matcher().fill_next_token_bitmask(np.zeros((1, 1), dtype=np.uint32))


def test_validate_tokens_rollback_and_forced_string(vocab):
    tok_ids = lambda text: _encode(vocab, text)  # noqa: E731
    m = structgen.compile_json_schema(SCHEMAS[0], vocab).matcher()
    good = tok_ids('{"name":"Al","age":3}')
    assert m.validate_tokens(good) == len(good) and m.steps == 0
    bad = tok_ids('{"name":"Al","age":-3}')
    accepted = m.validate_tokens(bad)
    assert 0 < accepted < len(bad) and m.steps == 0
    for t in good[:3]:
        assert m.advance(np.int64(t))
    assert m.advance(torch.tensor(good[3]))
    state = m.state
    m.rollback(2)
    assert m.steps == 2
    for t in good[2:4]:
        m.advance(t)
    assert m.state == state
    for t in good[4:]:
        m.advance(t)
    assert m.is_accepting() and not m.is_terminated()
    assert m.advance(vocab.eos_ids[0]) and m.is_terminated()

    forced = structgen.compile_regex("héllo(wor|wan)", vocab).matcher()
    assert forced.jump_forward_string() == "héllow"
    assert forced.advance_bytes("hé".encode()) and forced.jump_forward_string() == "llow"
    assert forced.advance_bytes(b"llowa") and forced.jump_forward_string() == "n"
    # The forced bytes end inside a character (é and è share their first byte): whole characters only.
    split = structgen.compile_regex("a(é|è)", vocab).matcher()
    assert split.forced_bytes() == b"a\xc3" and split.jump_forward_string() == "a"


def _encode(vocab: Vocabulary, text: str) -> list[int]:
    tok = llama3() if len(vocab.token_bytes) > 100_000 else smollm2()
    return tok.encode(text, add_special_tokens=False)
