"""The per-request arguments (no engine needed, but kept with the vLLM
tests: they run where vLLM is installed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from pydantic import BaseModel  # noqa: E402

from structgen import Choice, Grammar, Regex  # noqa: E402
from structgen.integrations import vllm as sv  # noqa: E402


class Point(BaseModel):
    x: int
    y: int


def test_request_args_carry_only_strings_and_lists(tmp_path: Path):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    gbnf = tmp_path / "g.gbnf"
    gbnf.write_text('root ::= "a"\n')
    cases = [
        (schema, {"structgen_json": json.dumps(schema)}),
        (json.dumps(schema), {"structgen_json": json.dumps(schema)}),
        (Regex("[0-9]+"), {"structgen_regex": "[0-9]+"}),
        (Choice(["a", "b"]), {"structgen_choice": ["a", "b"]}),
        (Grammar('root ::= "a"'), {"structgen_grammar": 'root ::= "a"'}),
        (Grammar(gbnf), {"structgen_grammar": 'root ::= "a"\n'}),
    ]
    for spec, expected in cases:
        assert sv.request_args(spec) == expected
    args = sv.request_args(Point)
    assert set(json.loads(args["structgen_json"])["required"]) == {"x", "y"}
    with pytest.raises(TypeError):
        sv.request_args(42)


def test_spec_from_args_round_trips_and_keys_are_canonical():
    a = sv.spec_from_args(sv.request_args({"b": 1, "a": 2, "type": "object"}))
    b = sv.spec_from_args({"structgen_json": {"type": "object", "a": 2, "b": 1}})
    assert a[0] == b[0]
    assert sv.spec_from_args(None) is None
    assert sv.spec_from_args({"other": 1}) is None
    key, spec = sv.spec_from_args({"structgen_choice": ["x", "y"]})
    assert key[0] == "choice" and spec == Choice(["x", "y"])


@pytest.mark.parametrize(
    "args",
    [
        {"structgen_json": "[1, 2]"},
        {"structgen_json": 3},
        {"structgen_regex": 5},
        {"structgen_choice": "abc"},
        {"structgen_choice": [1, 2]},
        {"structgen_grammar": ["x"]},
    ],
)
def test_malformed_args_are_value_errors(args):
    with pytest.raises(ValueError, match="structgen"):
        sv.spec_from_args(args)


def test_stop_only_row_sets_exactly_the_stop_bits():
    import torch

    from structgen.bitmask import allocate_token_bitmask

    proc = object.__new__(sv.StructgenLogitsProcessor)
    proc.vocab_size = 100
    proc.bitmask = allocate_token_bitmask(2, 100)
    req = sv._Request(("regex", "a"), None, [0, 31, 63, 95, 200], None)
    proc._stop_only(1, req)
    bits = [(int(proc.bitmask[1, t // 32]) >> (t % 32)) & 1 for t in range(100)]
    assert [t for t, b in enumerate(bits) if b] == [0, 31, 63, 95]
    assert bool((proc.bitmask[0] == -1).all())
    assert proc.bitmask.dtype == torch.int32
