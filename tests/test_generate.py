"""structgen.generate with the real default model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import jsonschema
import pytest
import torch
from pydantic import BaseModel, Field

import structgen
from structgen.automaton.lazy_dfa import DEAD
from structgen.errors import TruncatedOutputError
from structgen.integrations.generate import GenerationResult, default_model
from structgen.integrations.specs import Grammar

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # A 135M model gains little from a second thread and loses a lot when
    # other processes compete for the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mt():
    model, tok = default_model()
    return {"model": model, "tokenizer": tok}


class Cat(BaseModel):
    name: str = Field(max_length=12)
    age: int = Field(ge=0, le=30)
    indoor: bool


PERSON = {
    "type": "object",
    "properties": {
        "first_name": {"type": "string", "maxLength": 10},
        "favourite_colour": {"enum": ["red", "green", "blue"]},
        "number_of_children": {"type": "integer", "minimum": 0, "maximum": 9},
    },
    "required": ["first_name", "favourite_colour", "number_of_children"],
    "additionalProperties": False,
}


def test_pydantic_model_gives_a_validated_instance():
    # no model given: the default model is loaded (once per process)
    cat = structgen.generate(Cat, "Describe a cat as JSON.", max_new_tokens=32)
    assert isinstance(cat, Cat)
    Cat.model_validate(cat.model_dump())


def test_json_schema_gives_a_valid_dict(mt):
    person = structgen.generate(PERSON, "Invent a person, as JSON.", max_new_tokens=40, **mt)
    assert isinstance(person, dict)
    jsonschema.validate(person, PERSON)


def test_objects_are_closed_unless_asked_for_the_schemas_literal_meaning(mt):
    # no additionalProperties: generation takes the declared properties only
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    value = structgen.generate(schema, "Where is the Louvre?", max_new_tokens=32, **mt)
    assert set(value) == {"city"}
    jsonschema.validate(value, schema)
    # closed_objects=False: extra keys are allowed again, and greedy SmolLM2 invents them
    r = structgen.generate(schema, "Where is the Louvre?", max_new_tokens=12, closed_objects=False,
                           return_details=True, **mt)
    keys = re.findall(r'"((?:[^"\\]|\\.)*)":', r.text)
    assert keys and keys[0] != "city", r.text
    text = b'{"city":"Paris","country":"France"}'
    for closed in (True, False):
        dfa = structgen.LogitsProcessor(schema, mt["tokenizer"], closed_objects=closed).grammar.dfa
        state = dfa.walk(dfa.start, text)
        assert (state != DEAD and dfa.is_accepting(state)) is not closed


def test_a_bad_spec_fails_before_a_model_loads(monkeypatch):
    from structgen.integrations import model as model_module

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the spec was checked")

    monkeypatch.setattr(model_module, "load_model", no_loading)
    with pytest.raises(structgen.RegexError):
        structgen.generate(structgen.Regex("(?=a)b"), "x", model="structgen-tests/not-loaded")
    with pytest.raises(structgen.UnsupportedSchemaError):
        structgen.generate({"type": "array", "uniqueItems": True}, "x", model="structgen-tests/not-loaded")


def test_stream_yields_the_text_as_it_is_written_then_the_value(mt):
    *pieces, cat = structgen.stream(Cat, "Describe a cat as JSON.", max_new_tokens=32, **mt)
    assert isinstance(cat, Cat) and len(pieces) > 2 and all(isinstance(p, str) and p for p in pieces)
    assert Cat.model_validate_json("".join(pieces)) == cat
    assert structgen.generate(Cat, "Describe a cat as JSON.", max_new_tokens=32, **mt) == cat  # greedy: the same
    *pieces, code = structgen.stream(structgen.Regex("[0-9]{3}-[0-9]{4}"), "A phone number:", **mt)
    assert "".join(pieces) == code
    with pytest.raises(TruncatedOutputError):
        list(structgen.stream(Cat, "Describe a cat as JSON.", max_new_tokens=3, **mt))
    with pytest.raises(TypeError, match="one prompt"):
        next(structgen.stream(Cat, ["A cat.", "A dog."], **mt))


def test_a_stream_stopped_early_leaves_nothing_behind(mt):
    def kv_caches() -> int:
        gc.collect()
        return sum(type(o).__name__ == "DynamicCache" for o in gc.get_objects())

    before = kv_caches()
    items = structgen.stream(Cat, "Describe a cat as JSON.", max_new_tokens=32, **mt)
    first, second = next(items), next(items)  # the forced '{"name":"', then a sampled piece
    assert first.startswith("{") and kv_caches() == before + 1
    items.close()
    assert kv_caches() == before and not torch.is_inference_mode_enabled()
    assert isinstance(structgen.generate(Cat, "Describe a cat as JSON.", max_new_tokens=32, **mt), Cat)


def test_json_schema_as_text(mt):
    value = structgen.generate('{"type": "array", "items": {"type": "integer"}, "maxItems": 3}',
                               "Three small numbers as a JSON list.", max_new_tokens=16, **mt)
    assert isinstance(value, list) and len(value) <= 3 and all(isinstance(v, int) for v in value)


def test_regex_and_choice(mt):
    phone = structgen.generate(structgen.Regex(r"\(\d{3}\) \d{3}-\d{4}"), "A US phone number:", max_new_tokens=20, **mt)
    assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", phone)
    options = ["positive", "negative", "neutral"]
    answer = structgen.generate(structgen.Choice(options), "Sentiment of 'I love this phone!'?", max_new_tokens=8, **mt)
    assert answer in options


def test_gbnf_grammar_file(mt):
    answer = structgen.generate(Grammar(ROOT / "grammars" / "yes_no.gbnf"), "Is the sky blue?", max_new_tokens=4, **mt)
    assert answer in ("yes", "no")


def test_batch_of_different_prompts_returns_a_list_in_order(mt):
    prompts = [
        "A cat called Tom, as JSON.",
        "Describe an old indoor cat named Whiskers who is 15, as JSON.",
        "Make up a kitten as JSON.",
    ]
    cats = structgen.generate(Cat, prompts, max_new_tokens=32, **mt)
    assert isinstance(cats, list) and len(cats) == 3
    assert all(isinstance(c, Cat) for c in cats)
    # each row is what the same prompt gives alone (greedy)
    alone = structgen.generate(Cat, prompts[1], max_new_tokens=32, **mt)
    assert cats[1] == alone


def test_sampling_with_a_seed_is_reproducible(mt):
    kw = dict(temperature=1.0, top_p=0.95, max_new_tokens=16, **mt)
    spec = structgen.Regex(r"[a-z]{3,8}( [a-z]{3,8}){2}")
    a = structgen.generate(spec, ["Three words about the sea.", "Three words about snow."], seed=3, **kw)
    b = structgen.generate(spec, ["Three words about the sea.", "Three words about snow."], seed=3, **kw)
    assert a == b
    for text in a:
        assert re.fullmatch(r"[a-z]{3,8}( [a-z]{3,8}){2}", text)


def test_truncated_output_raises_with_the_partial_text(mt):
    spec = structgen.Regex(r"[a-z]{20,40}\.")
    with pytest.raises(TruncatedOutputError) as info:
        structgen.generate(spec, "Write one very long word.", max_new_tokens=3, **mt)
    err = info.value
    assert err.partial_text and re.fullmatch(r"[a-z]+", err.partial_text)
    assert err.max_new_tokens == 3
    # in a batch: the error says which prompt and carries every row's outcome
    with pytest.raises(TruncatedOutputError) as info:
        structgen.generate(structgen.Regex(r"(ok|[a-z]{30,40}\.)"), ["Say ok.", "Write one very long word."],
                           max_new_tokens=4, **mt)
    assert len(info.value.results) == 2
    assert info.value.index == next(i for i, r in enumerate(info.value.results) if isinstance(r, TruncatedOutputError))


def test_jump_forward_saves_forward_passes_and_keeps_outputs_valid(mt):
    kw = dict(max_new_tokens=48, return_details=True, **mt)
    fast = structgen.generate(PERSON, "Invent a person, as JSON.", jump_forward=True, **kw)
    slow = structgen.generate(PERSON, "Invent a person, as JSON.", jump_forward=False, **kw)
    for r in (fast, slow):
        assert isinstance(r, GenerationResult) and r.error is None and r.finish_reason == "eos"
        jsonschema.validate(r.value, PERSON)
    assert fast.stats.forced_tokens > 5
    assert fast.stats.forward_passes < slow.stats.forward_passes
    assert slow.stats.forced_tokens == 0 and slow.stats.forward_passes == slow.stats.sampled_tokens + 1


def test_chat_template_flag_and_messages(mt):
    raw = structgen.generate(structgen.Choice(["yes", "no"]), "Question: is fire hot? Answer:", chat_template=False,
                             return_details=True, **mt)
    assert raw.value in ("yes", "no")
    messages = [{"role": "system", "content": "Answer yes or no."}, {"role": "user", "content": "Is ice cold?"}]
    assert structgen.generate(structgen.Choice(["yes", "no"]), messages, **mt) in ("yes", "no")


def test_details_never_raise_and_never_hold_an_invalid_value(mt):
    results = structgen.generate(structgen.Regex(r"(ok|[a-z]{30,40}\.)"), ["Say ok.", "Write one very long word."],
                                 max_new_tokens=4, return_details=True, **mt)
    for r in results:
        if r.error is not None:
            assert r.value is None and r.finish_reason == "length"
        else:
            assert re.fullmatch(r"(ok|[a-z]{30,40}\.)", r.value)


def test_bad_arguments(mt):
    with pytest.raises(TypeError, match="Regex"):
        structgen.generate("not json", "hi", **mt)
    with pytest.raises(ValueError):
        structgen.generate(structgen.Regex("a"), "hi", max_new_tokens=0, **mt)
    with pytest.raises(TypeError):
        structgen.generate(structgen.Regex("a"), "hi", tokenizer=mt["tokenizer"])
    with pytest.raises(structgen.RegexError):
        structgen.generate(structgen.Regex("(?=a)b"), "hi", **mt)


def test_a_tokenizer_that_is_not_the_models_is_a_tokenizer_error(mt):
    """The Llama-3 tokenizer (128,256 tokens) with SmolLM2 (49,152): generate
    checks the model's embedding before the first forward pass, the processor
    checks the logits' width on its first call; both name the two sizes."""
    from transformers import LogitsProcessorList

    from tests.tokenizers import llama3

    tok = llama3()
    with pytest.raises(structgen.TokenizerError, match="embeddings have 49152 tokens but the tokenizer has 128256"):
        structgen.generate({"type": "integer"}, "A number:", model=mt["model"], tokenizer=tok, max_new_tokens=4)
    proc = structgen.LogitsProcessor({"type": "integer"}, tok)
    ids = tok("A number:", add_special_tokens=False, return_tensors="pt")["input_ids"]  # ids the model has too
    with pytest.raises(structgen.TokenizerError, match="logits have 49152 tokens but the tokenizer has 128256"):
        mt["model"].generate(ids, logits_processor=LogitsProcessorList([proc]), max_new_tokens=2, do_sample=False,
                             pad_token_id=0)


def test_own_loop_matches_model_generate_token_for_token(mt):
    """Without jump-forward, structgen's loop (KV cache, left padding, own
    position ids) picks exactly the tokens model.generate + LogitsProcessor does."""
    from transformers import LogitsProcessorList

    model, tok = mt["model"], mt["tokenizer"]
    spec = structgen.Regex(r"[A-Z][a-z]{2,8} (is|was) [0-9]{1,2}\.")
    prompts = ["How old is Tom?", "Tell me the age of a famous old tortoise, in one short sentence."]
    mine = structgen.generate(spec, prompts, jump_forward=False, max_new_tokens=12, return_details=True, **mt)
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
    tok.padding_side, side = "left", tok.padding_side
    try:
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = side
    proc = structgen.LogitsProcessor(spec, tok)
    out = model.generate(**enc, logits_processor=LogitsProcessorList([proc]), max_new_tokens=12, do_sample=False,
                         pad_token_id=tok.pad_token_id)
    for r, row in zip(mine, out[:, enc["input_ids"].shape[1]:].tolist()):
        expected = row[: row.index(tok.eos_token_id)] if tok.eos_token_id in row else row
        assert r.token_ids == expected


def test_json_is_spelled_canonically_but_the_schema_still_decides(mt):
    """Canonical spelling: no zero-padded numbers or needless escapes in the
    mask, members in declaration order so keys are forced; canonical=False
    gives the bare schema. Values that need an escape keep one."""
    import numpy as np

    from structgen.integrations.specs import prepare

    tok = mt["tokenizer"]
    schema = {"type": "object", "properties": {"p": {"type": "integer", "minimum": 0, "maximum": 40},
                                               "q": {"type": "string"}},
              "required": ["p", "q"], "additionalProperties": False}

    def allowed_after(prepared, text):
        m = prepared.matcher()
        for t in tok(text, add_special_tokens=False)["input_ids"]:
            assert m.advance(t)
        return m, {tok.convert_ids_to_tokens(int(i)) for i in m.allowed_token_ids()}

    canonical, bare = prepare(schema, tok), prepare(schema, tok, canonical=False)
    m, after_num = allowed_after(canonical, '{"p":12')
    assert "." not in after_num and "," in after_num
    assert "." in allowed_after(bare, '{"p":12')[1]
    m, _ = allowed_after(canonical, "{")
    assert m.forced_bytes() == b'"p":'  # declaration order: the first key is forced
    assert allowed_after(bare, "{")[0].forced_bytes() == b'"'  # any order: "p" or "q"
    m, _ = allowed_after(canonical, '{"p":1,"q":"')
    assert not m.advance_bytes(b"\\u0061") and m.advance_bytes(b"\\u00e9") is False
    assert allowed_after(bare, '{"p":1,"q":"')[0].advance_bytes(b"\\u00e9")

    # Where only an escape will do, the escape is the spelling: a random walk
    # always finds a way to the end, and what it writes is valid.
    const = {"const": "a\u0001b\"c"}
    prepared = prepare(const, tok)
    rng = np.random.default_rng(0)
    for _ in range(5):
        m, ids = prepared.matcher(), []
        while not m.is_accepting():
            choices = m.allowed_token_ids()
            assert len(choices), ids
            t = int(rng.choice(choices))
            assert m.advance(t)
            ids.append(t)
        assert prepared.finish(prepared.grammar.vocab.decode_bytes(ids).decode()) == const["const"]