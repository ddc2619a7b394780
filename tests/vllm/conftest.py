"""Fixtures for the tests that run structgen inside a real vLLM engine.

They need the vLLM venv (``make test-vllm`` builds ``.venv-vllm``); without
vLLM every test here is skipped at import. One engine (the packaged SmolLM2,
on CPU, about 40 s to load on 2 cores) serves the whole session, in this
process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so the tests can look at the
processor's state.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
# CPU KV cache, GiB: the default (4) is more than these short requests need.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

# Small enough for 2 cores, big enough for a few concurrent requests; eager,
# because compiling the model with inductor costs minutes on 2 cores; float32,
# because vLLM's CPU bfloat16 is emulated (many times slower) without AVX-512.
ENGINE_ARGS = dict(
    max_model_len=2048, max_num_seqs=8, max_num_batched_tokens=2048, seed=0, enforce_eager=True, dtype="float32"
)


@pytest.fixture(scope="session")
def model_dir() -> str:
    from structgen.integrations.vllm import default_model_dir

    return str(default_model_dir())


@pytest.fixture(scope="session")
def llm(model_dir):
    vllm = pytest.importorskip("vllm")
    from structgen.integrations.vllm import StructgenLogitsProcessor

    engine = vllm.LLM(model=model_dir, logits_processors=[StructgenLogitsProcessor], **ENGINE_ARGS)
    yield engine
    del engine


@pytest.fixture(scope="session")
def tokenizer(llm):
    return llm.get_tokenizer()
