"""A short run of the fuzz campaign (structgen.bench.fuzz; the full one is
``structgen bench fuzz``, its results under benchmarks/results/fuzz-*): random
walks over a few MaskBench schemas, Test Suite groups and hypothesis-generated
schemas, in plain and generation mode, compact and flexible whitespace, with
all three policies. No complete output is invalid and no walk meets a dead end
or any other broken promise of the engine."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

import structgen
from structgen.bench import cli, fuzz
from structgen.frontends.json_schema import schema_validator
from structgen.vocab import Vocabulary
from tests.test_json_schema_suite import SUITE
from tests.tokenizers import smollm2


@pytest.fixture(scope="module")
def walker() -> fuzz.Walker:
    return fuzz.Walker(Vocabulary.from_tokenizer(smollm2()), max_tokens=120)


def test_short_campaign_finds_no_broken_promise(walker):
    cases = fuzz.maskbench_cases(fuzz.DEFAULT_MASKBENCH, sample=6, seed=1)
    cases += fuzz.suite_cases(SUITE)[::8]
    cases += fuzz.hypothesis_cases(8, seed=1)
    campaign = fuzz.run_campaign(cases, {"smollm2": walker}, walks=1, seed=1, grammar_seconds=5)
    total = campaign.totals()
    broken = [f for f in campaign.failures if f["outcome"] in fuzz.BROKEN]
    assert not broken, broken[0]
    assert total["output"] >= 300, total
    assert {k[0] for k in campaign.walks} == {"maskbench", "suite", "hypothesis"}
    assert {k[4] for k in campaign.walks} == set(fuzz.POLICIES)


def test_each_broken_promise_is_caught(walker):
    """The checks themselves: an output the schema refuses, an output out of
    canonical spelling or declared order, and a matcher whose mask is empty or
    disagrees with its acceptance."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}
    validator = schema_validator(schema)
    assert fuzz.problem(b'{"a":1,"b":"x"}', validator, schema=schema, canonical=True) is None
    assert fuzz.problem(b'{"a":"1"}', validator)[0] == "invalid"
    assert fuzz.problem(b'{"a":1', validator)[0] == "invalid"
    assert fuzz.problem(b'{"b":"\xff"}', validator)[0] == "invalid"  # not UTF-8
    assert fuzz.problem(b'{"b":"x","a":1}', validator, schema=schema, canonical=True) == ("noncanonical", "members out of declared order")
    assert fuzz.problem(b'{"a":1E2}', validator, schema=schema, canonical=True)[0] == "noncanonical"

    grammar = structgen.compile_json_schema(schema, walker.vocab)

    class Broken:
        """A matcher that allows no token, or EOS where the output is incomplete."""

        def __init__(self, bits):
            self.bits = bits

        def allowed_bitmask(self):
            return self.bits

        def is_accepting(self):
            return False

    rng = random.Random(0)
    assert walker.walk(Broken(grammar.nothing_allowed), rng).outcome == "dead_end"
    eos_only = np.packbits(np.isin(np.arange(len(walker.vocab.token_bytes)), walker.vocab.eos_ids), bitorder="little")
    assert walker.walk(Broken(eos_only), rng).outcome == "mask_error"


def test_seeded_walk_follows_the_instance(walker):
    """With the whole instance as its seed and no randomness left over, a seeded
    walk spells the instance."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array"}}}
    grammar = structgen.compile_json_schema(schema, walker.vocab)
    text = fuzz.spell({"name": "Ada Lovelace", "tags": [1, "x"]}, whitespace="compact", canonical=False, rng=random.Random(0))
    seed = walker.seed_tokens(text)

    class Longest(random.Random):
        def randint(self, a, b):  # follow all of the seed
            return b

    w = walker.walk(grammar.matcher(), Longest(0), "seeded", seed)
    assert w.text.startswith(walker.vocab.decode_bytes(seed))
    assert w.outcome == "complete" and json.loads(w.text)["name"] == "Ada Lovelace"


def test_cli_writes_the_report(tmp_path):
    out = tmp_path / "fuzz"
    code = cli.main(["fuzz", "--maskbench", "", "--suite", str(SUITE / "enum.json"), "--hypothesis", "2",
                     "--tokenizers", "smollm2", "--walks", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["totals"]["output"] > 0 and results["totals"]["invalid"] == 0
    assert set(results["per_source"]) == {"suite", "hypothesis"}
    assert results["command"].startswith("structgen bench fuzz") or results["command"].startswith("nice")
    summary = (out / "summary.md").read_text()
    assert "| source | tokenizer | mode | whitespace | policy |" in summary
    assert (out / "failures.jsonl").read_text() == ""
