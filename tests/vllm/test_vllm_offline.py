"""structgen inside a real vLLM engine (offline API): per-request specs,
errors, aborts. Runs only where vLLM is installed (``make test-vllm``)."""

from __future__ import annotations

import gc
import json
import re
import weakref

import pytest

vllm = pytest.importorskip("vllm")

import jsonschema  # noqa: E402
from vllm.exceptions import VLLMValidationError  # noqa: E402

from structgen import Choice, Grammar, GrammarTooLargeError, Regex  # noqa: E402
from structgen.integrations import vllm as sv  # noqa: E402

SCHEMAS = [
    {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
        "required": ["name", "age"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
        "required": ["x", "y"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9}, "minItems": 2, "maxItems": 4},
    {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green", "blue"]}, "ok": {"type": "boolean"}},
        "required": ["colour", "ok"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "pattern": "^[A-Z][a-z]{2,12}$"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 2},
        },
        "required": ["city", "tags"],
        "additionalProperties": False,
    },
]
PROMPTS = [
    "Describe a person as JSON with a name and an age.",
    "Give a point in the plane as JSON.",
    "List a few small numbers as a JSON array.",
    "Pick a colour and say whether it is ok, as JSON.",
    "Name a city and give it two short tags, as JSON.",
]


def chat(tokenizer, text: str) -> dict:
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
    return {"prompt_token_ids": tokenizer.encode(rendered, add_special_tokens=False)}


def params(spec, max_tokens: int = 96, **kw) -> "vllm.SamplingParams":
    return vllm.SamplingParams(temperature=0.0, max_tokens=max_tokens, extra_args=sv.request_args(spec), **kw)


def run_engine(engine, until=None) -> dict:
    """Step the engine until no request is left (or ``until()`` is true); the
    finished outputs by request id."""
    done = {}
    while engine.has_unfinished_requests():
        for out in engine.step():
            if out.finished:
                done[out.request_id] = out
        if until is not None and until():
            break
    return done


def test_concurrent_requests_with_different_schemas_all_validate(llm, tokenizer):
    prompts = [chat(tokenizer, p) for p in PROMPTS]
    outs = llm.generate(prompts, [params(s) for s in SCHEMAS], use_tqdm=False)
    for schema, out in zip(SCHEMAS, outs):
        text = out.outputs[0].text
        assert out.outputs[0].finish_reason == "stop", text
        jsonschema.validate(json.loads(text), schema)
    stats = sv.processor_stats()
    assert stats["steps"] > 0 and stats["max_rows"] >= 2


def test_regex_choice_and_grammar_requests(llm, tokenizer):
    regex = Regex(r"[0-9]{3}-[0-9]{4}")
    choice = Choice(["yes", "no", "maybe"])
    grammar = Grammar('root ::= "(" num " + " num ")"\nnum ::= [1-9] [0-9]?\n')
    prompts = [
        chat(tokenizer, "Give me a phone number."),
        chat(tokenizer, "Is the sky blue? Answer yes, no or maybe."),
        chat(tokenizer, "Write a sum of two numbers in brackets."),
    ]
    outs = llm.generate(prompts, [params(regex), params(choice), params(grammar)], use_tqdm=False)
    texts = [o.outputs[0].text for o in outs]
    assert all(o.outputs[0].finish_reason == "stop" for o in outs), texts
    assert re.fullmatch(regex.pattern, texts[0]), texts[0]
    assert texts[1] in choice.options
    assert re.fullmatch(r"\([1-9][0-9]? \+ [1-9][0-9]?\)", texts[2]), texts[2]


def test_unconstrained_requests_are_left_alone(llm, tokenizer):
    prompt = chat(tokenizer, "Say hello.")
    plain = llm.generate([prompt], vllm.SamplingParams(temperature=0.0, max_tokens=8), use_tqdm=False)
    again = llm.generate([prompt], vllm.SamplingParams(temperature=0.0, max_tokens=8), use_tqdm=False)
    assert plain[0].outputs[0].token_ids == again[0].outputs[0].token_ids


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"structgen_json": '{"type": "object", "properties": {"a": {"type": "strin"}}}'}, "strin"),
        ({"structgen_json": "{not json"}, "not JSON"),
        ({"structgen_regex": "(?<=a)b"}, "does not compile"),
        ({"structgen_grammar": "root ::= missing"}, "does not compile"),
        ({"structgen_choice": []}, "structgen_choice"),
        ({"structgen_regex": "a", "structgen_choice": ["a"]}, "one spec"),
    ],
)
def test_invalid_spec_is_refused_at_admission_and_the_others_finish(llm, tokenizer, bad, message):
    engine = llm.llm_engine
    schema = SCHEMAS[0]
    engine.add_request("ok-1", chat(tokenizer, PROMPTS[0]), params(schema))
    with pytest.raises((ValueError, VLLMValidationError), match=re.escape(message)):
        engine.add_request("bad", chat(tokenizer, PROMPTS[0]), vllm.SamplingParams(max_tokens=16, extra_args=bad))
    engine.add_request("ok-2", chat(tokenizer, PROMPTS[1]), params(SCHEMAS[1]))
    done = run_engine(engine)
    assert set(done) == {"ok-1", "ok-2"}
    jsonschema.validate(json.loads(done["ok-1"].outputs[0].text), schema)
    jsonschema.validate(json.loads(done["ok-2"].outputs[0].text), SCHEMAS[1])


def test_a_spec_that_fails_in_the_engine_ends_only_its_request(llm, tokenizer, monkeypatch):
    """A spec past admission whose compile fails (here: made to fail) ends at
    once with empty text; the batch goes on."""
    real = sv.Compiler._compile
    doomed = {"type": "object", "properties": {"doomed": {"type": "boolean"}}, "required": ["doomed"]}

    def compile_or_fail(self, spec, stops):
        if spec == doomed:
            raise GrammarTooLargeError("made to fail for the test")
        return real(self, spec, stops)

    monkeypatch.setattr(sv.Compiler, "_compile", compile_or_fail)
    before = sv.processor_stats()["request_errors"]
    engine = llm.llm_engine
    engine.add_request("doomed", chat(tokenizer, "Anything."), params(doomed))
    engine.add_request("fine", chat(tokenizer, PROMPTS[3]), params(SCHEMAS[3]))
    done = run_engine(engine)
    assert done["doomed"].outputs[0].text == ""
    assert done["doomed"].outputs[0].finish_reason == "stop"
    jsonschema.validate(json.loads(done["fine"].outputs[0].text), SCHEMAS[3])
    assert sv.processor_stats()["request_errors"] == before + 1


def test_an_aborted_request_frees_its_matcher(llm, tokenizer):
    """Aborting a request releases its matcher at the next step, while the
    other request goes on."""
    engine = llm.llm_engine
    free_text = {"type": "object", "properties": {"story": {"type": "string"}}, "required": ["story"]}
    engine.add_request("a", chat(tokenizer, "Tell a story as JSON."), params(free_text, max_tokens=200))
    engine.add_request("b", chat(tokenizer, "Tell another story as JSON."), params(free_text, max_tokens=200))
    proc = next(iter(sv._instances))
    for _ in range(50):
        engine.step()
        if len(proc.requests) == 2 and all(r.seen >= 2 for r in proc.requests.values()):
            break
    live = {id(r): weakref.ref(r) for r in proc.requests.values()}
    engine.abort_request(["b"])
    engine.step()
    engine.step()
    gc.collect()
    assert len(proc.requests) == 1
    assert sum(ref() is None for ref in live.values()) == 1
    done = run_engine(engine)
    assert set(done) == {"a"}
