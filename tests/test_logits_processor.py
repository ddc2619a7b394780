"""structgen.LogitsProcessor inside the real ``model.generate`` of the default
model (SmolLM2-135M-Instruct), plus its masking rules on hand-made inputs."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import torch
from pydantic import BaseModel, Field
from transformers import LogitsProcessorList

import structgen
from structgen.errors import StructgenError
from structgen.integrations.generate import default_model
from structgen.integrations.specs import vocabulary_for
from structgen.vocab import Vocabulary

CODE = r"[0-9]{3}-[a-z]{2,4}"


@pytest.fixture(scope="module")
def model_tok():
    # One thread: a 135M model gains little from two, and loses a lot when
    # other processes compete for the cores (OpenMP spin-waiting).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield default_model()
    finally:
        torch.set_num_threads(threads)


def _chat(tok, prompts):
    texts = [
        tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    old = tok.padding_side
    tok.padding_side = "left"
    try:
        return tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = old


def _outputs(tok, enc, out):
    """Generated ids per row, cut at the first EOS/pad, and their text."""
    rows = []
    for row in out[:, enc["input_ids"].shape[1] :].tolist():
        if tok.eos_token_id in row:
            row = row[: row.index(tok.eos_token_id)]
        rows.append(row)
    return rows


def _run(model, tok, proc, prompts, **kw):
    enc = _chat(tok, prompts)
    kw.setdefault("do_sample", False)
    out = model.generate(**enc, logits_processor=LogitsProcessorList([proc]), pad_token_id=tok.pad_token_id, **kw)
    return enc, out, _outputs(tok, enc, out)


def _text(proc, ids):
    return proc.grammar.vocab.decode_bytes(ids).decode("utf-8")


def _accepts(proc, ids) -> bool:
    m = proc.grammar.matcher()
    return all(m.advance(t) for t in ids) and m.is_accepting()


def test_batch_of_different_prompts_with_left_padding(model_tok):
    model, tok = model_tok
    proc = structgen.LogitsProcessor(structgen.Regex(CODE), tok)
    prompts = ["Give me a product code.", "Write a short code made of three digits, a dash and letters, please."]
    enc, out, rows = _run(model, tok, proc, prompts, max_new_tokens=12)
    assert enc["attention_mask"][0, 0] == 0  # the shorter prompt really is left-padded
    assert proc.prompt_length == enc["input_ids"].shape[1]
    for ids in rows:
        text = _text(proc, ids)
        assert re.fullmatch(CODE, text), text
        assert _accepts(proc, ids)
        assert proc.finish(text) == text
    # every row of the batch ended with EOS, and padding afterwards
    assert all(tok.eos_token_id in row for row in out[:, enc["input_ids"].shape[1] :].tolist())


def test_choice_and_the_rows_that_finish_early(model_tok):
    model, tok = model_tok
    options = ["yes", "no", "it depends on the weather"]
    proc = structgen.LogitsProcessor(structgen.Choice(options), tok)
    enc, out, rows = _run(model, tok, proc, ["Is water wet?", "Will it rain tomorrow in London?"], max_new_tokens=10)
    for ids in rows:
        assert _text(proc, ids) in options
    # after its EOS a row only ever received EOS/pad
    for row in out[:, enc["input_ids"].shape[1] :].tolist():
        if tok.eos_token_id in row:
            tail = row[row.index(tok.eos_token_id) :]
            assert set(tail) <= {tok.eos_token_id, tok.pad_token_id}


def test_beam_search_outputs_all_validate(model_tok):
    model, tok = model_tok
    pattern = r"(red|green|blue) (car|bike|boat)s?"
    proc = structgen.LogitsProcessor(structgen.Regex(pattern), tok)
    enc, out, rows = _run(
        model, tok, proc, ["Name a coloured vehicle.", "What do you drive?"],
        max_new_tokens=8, num_beams=3, num_return_sequences=3,
    )
    assert len(rows) == 6
    texts = [_text(proc, ids) for ids in rows]
    for text in texts:
        assert re.fullmatch(pattern, text), texts
    assert len({tuple(ids) for ids in rows[:3]}) == 3  # three distinct beams of the first prompt


def test_beam_search_on_a_schema(model_tok):
    model, tok = model_tok

    class Point(BaseModel):
        x: int = Field(ge=-100, le=100)
        y: int = Field(ge=-100, le=100)

    proc = structgen.LogitsProcessor(Point, tok)
    enc, out, rows = _run(model, tok, proc, ["A point in the plane as JSON."], max_new_tokens=16, num_beams=3, num_return_sequences=2)
    for ids in rows:
        point = proc.finish(_text(proc, ids))
        assert isinstance(point, Point)


def test_pydantic_and_json_schema(model_tok):
    model, tok = model_tok

    class Cat(BaseModel):
        name: str = Field(max_length=12)
        age: int = Field(ge=0, le=30)

    proc = structgen.LogitsProcessor(Cat, tok)
    enc, out, rows = _run(model, tok, proc, ["Describe a cat as JSON."], max_new_tokens=24)
    cat = proc.finish(_text(proc, rows[0]))
    assert isinstance(cat, Cat)

    schema = {
        "type": "object",
        "properties": {"city": {"enum": ["Paris", "Rome", "Oslo"]}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
        "additionalProperties": False,
    }
    proc = structgen.LogitsProcessor(schema, tok)
    enc, out, rows = _run(model, tok, proc, ["The weather in a European capital, as JSON."], max_new_tokens=16)
    value = proc.finish(_text(proc, rows[0]))
    jsonschema.validate(value, schema)
    assert json.loads(_text(proc, rows[0])) == value


def test_processor_reused_across_calls_does_not_leak_state(model_tok):
    model, tok = model_tok
    proc = structgen.LogitsProcessor(structgen.Regex(CODE), tok)
    _, _, first = _run(model, tok, proc, ["Give me a product code."], max_new_tokens=12)
    # a second call with another batch size and prompt length
    _, _, second = _run(model, tok, proc, ["A code?", "Another code, different from the first one?"], max_new_tokens=12)
    # and the first call again: same output as before, same as a fresh processor
    _, _, again = _run(model, tok, proc, ["Give me a product code."], max_new_tokens=12)
    fresh = structgen.LogitsProcessor(structgen.Regex(CODE), tok)
    _, _, reference = _run(model, tok, fresh, ["A code?", "Another code, different from the first one?"], max_new_tokens=12)
    assert again == first
    assert second == reference
    for ids in first + second:
        assert re.fullmatch(CODE, _text(proc, ids))


def test_sampling_with_a_seed_is_reproducible(model_tok):
    model, tok = model_tok
    proc = structgen.LogitsProcessor(structgen.Regex(r"[a-z]{3,8}( [a-z]{3,8}){2}"), tok)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        _, _, rows = _run(model, tok, proc, ["Three words about the sea."], max_new_tokens=14, do_sample=True, temperature=1.0)
        runs.append(rows)
    assert runs[0] == runs[1]


# -- masking rules, on hand-made input ids and scores ---------------------------------------


def _step(proc, ids, width, dtype=torch.float32):
    scores = torch.zeros((len(ids), width), dtype=dtype)
    return proc(torch.tensor(ids, dtype=torch.long), scores)


def test_mask_allows_exactly_the_matchers_tokens_and_never_the_padding_columns(model_tok):
    _, tok = model_tok
    proc = structgen.LogitsProcessor(structgen.Choice(["yes", "no"]), tok)
    n = len(proc.grammar.vocab.token_bytes)
    prompt = tok("Question:")["input_ids"]
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        proc.reset()
        out = _step(proc, [prompt], n + 64, dtype)
        allowed = torch.isfinite(out[0]).nonzero().flatten().tolist()
        expected = proc.grammar.matcher().allowed_token_ids().tolist()
        assert allowed == expected
        assert out.dtype == dtype and torch.isinf(out[0, n:]).all()


def test_eos_only_when_accepting_and_finished_rows_only_allow_eos_or_pad(model_tok):
    _, tok = model_tok
    proc = structgen.LogitsProcessor(structgen.Regex("[0-9]+"), tok, pad_token_id=0)
    eos = tok.eos_token_id
    n = len(proc.grammar.vocab.token_bytes)
    prompt = tok("Number:")["input_ids"]
    seven = tok.convert_tokens_to_ids("7")
    rows = [prompt, prompt]
    out = _step(proc, rows, n)
    assert torch.isinf(out[:, eos]).all()  # nothing written yet: not accepting
    rows = [r + [seven] for r in rows]
    out = _step(proc, rows, n)
    assert torch.isfinite(out[:, eos]).all() and torch.isfinite(out[:, seven]).all()
    rows = [rows[0] + [eos], rows[1] + [seven]]  # row 0 finishes
    out = _step(proc, rows, n)
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == sorted({0, eos})
    assert torch.isfinite(out[1, seven])
    rows = [rows[0] + [0], rows[1] + [eos]]  # padding after the finish is fine
    out = _step(proc, rows, n)
    assert proc.matchers[0].is_stopped() and proc.matchers[1].is_stopped()


def test_rows_are_followed_by_their_tokens_when_reordered(model_tok):
    _, tok = model_tok
    proc = structgen.LogitsProcessor(structgen.Choice(["cat", "cow", "dog"]), tok)
    n = len(proc.grammar.vocab.token_bytes)
    c, d, o, a, g, w, t = (tok.convert_tokens_to_ids(ch) for ch in "cdoagwt")
    prompt = tok("Pet:")["input_ids"]

    def fresh():
        proc.reset()
        _step(proc, [prompt, prompt], n)
        _step(proc, [prompt + [c], prompt + [d]], n)

    def allows(out, row, tok_id):
        return bool(torch.isfinite(out[row, tok_id]))

    fresh()  # rows swapped, as beam search does: "do" now in row 0, "co" in row 1
    out = _step(proc, [prompt + [d, o], prompt + [c, o]], n)
    assert allows(out, 0, g) and not allows(out, 0, w)
    assert allows(out, 1, w) and not allows(out, 1, g)

    fresh()  # one parent ("c") with two children, the other beam dropped
    out = _step(proc, [prompt + [c, a], prompt + [c, o]], n)
    assert allows(out, 0, t) and not allows(out, 0, w)
    assert allows(out, 1, w) and not allows(out, 1, t)
    out = _step(proc, [prompt + [c, o, w], prompt + [c, a, t]], n)
    assert allows(out, 0, tok.eos_token_id) and allows(out, 1, tok.eos_token_id)


def test_no_allowed_token_raises_a_clear_error():
    vocab = Vocabulary.from_token_bytes([b"a", b"b", b""], eos_ids=[2])
    grammar = structgen.compile_regex("c", vocab)
    proc = structgen.LogitsProcessor(grammar)
    with pytest.raises(StructgenError, match="no token"):
        proc(torch.tensor([[0]]), torch.zeros((1, 3)))


def test_model_eos_ids_extend_the_tokenizers(model_tok):
    _, tok = model_tok
    extra = tok.convert_tokens_to_ids("<|endoftext|>")
    vocab = vocabulary_for(tok, [extra])
    assert set(vocab.eos_ids) == {tok.eos_token_id, extra}
    assert vocabulary_for(tok, [extra]) is vocab  # cached: compiled grammars stay cached too
    proc = structgen.LogitsProcessor(structgen.Regex("a"), tok, eos_token_id=extra)
    assert proc.grammar.vocab is vocab
