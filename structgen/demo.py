"""``make demo``: load the default model and ask it for a JSON object, first
without constraints (what a model does on its own), then with structgen
(guaranteed to match the schema), and say whether each validated."""

from __future__ import annotations

import json
import sys
import time

import pydantic
from pydantic import BaseModel

import structgen
from structgen.integrations.model import DEFAULT_MODEL, load_model


class Cat(BaseModel):
    name: str
    age: int
    indoor: bool


PROMPT = (
    "Describe a cat as a JSON object with the keys name (a string), age (an integer) "
    "and indoor (true or false). Answer with the JSON object only."
)


def main() -> int:
    started = time.perf_counter()
    model, tokenizer = load_model()
    print(f"loaded {DEFAULT_MODEL} in {time.perf_counter() - started:.1f} s")
    print(f"schema: {json.dumps(Cat.model_json_schema())}")
    print(f"prompt: {PROMPT}\n")

    text, n_tokens, elapsed = _unconstrained(model, tokenizer, PROMPT)
    print(f"without constraints ({n_tokens} tokens, {elapsed:.1f} s):")
    print(text.strip())
    problem = _problem(text.strip())
    print("-> validates" if problem is None else f"-> does NOT validate: {problem}")

    started = time.perf_counter()
    cat = structgen.generate(Cat, PROMPT, model=model, tokenizer=tokenizer)
    elapsed = time.perf_counter() - started
    print(f"\nwith structgen ({elapsed:.1f} s):")
    print(cat.model_dump_json())
    Cat.model_validate(cat.model_dump())  # the guarantee, checked once more
    print("-> validated against the schema")
    return 0


def _problem(text: str) -> str | None:
    """None if ``text`` is a valid Cat, else what is wrong with it."""
    try:
        Cat.model_validate_json(text)
    except pydantic.ValidationError as err:
        return "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
            for e in err.errors()[:3]
        )
    return None


def _unconstrained(model, tokenizer, prompt: str) -> tuple[str, int, float]:
    import torch

    messages = [{"role": "user", "content": prompt}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    started = time.perf_counter()
    with torch.no_grad():
        output = model.generate(
            **inputs, max_new_tokens=80, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    elapsed = time.perf_counter() - started
    new_tokens = output[0, inputs["input_ids"].shape[1]:]
    return tokenizer.decode(new_tokens, skip_special_tokens=True), len(new_tokens), elapsed


if __name__ == "__main__":
    sys.exit(main())
