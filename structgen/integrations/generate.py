"""``structgen.generate``: constrained generation in one call.

    cat = structgen.generate(Cat, "Describe a cat.")          # a validated Cat
    cats = structgen.generate(Cat, ["a tabby", "a kitten"])   # batched: a list

It runs its own decoding loop rather than ``model.generate``, for
**jump-forward decoding**: where the grammar leaves only one way to continue
(a property name, ``":"``, closing brackets, the rest of a ``Choice`` option),
those tokens are appended without sampling and fed to the model together in
the next forward pass (one pass for many tokens, using the KV cache). When an
output is complete and only EOS may follow, the row ends without a pass.
Finished rows leave the batch (their KV cache rows are dropped).

Rows of a batch are left-padded; rows that take different numbers of forced
tokens in a step are padded inside the step's chunk (masked out, positions
kept contiguous), so one forward pass serves the whole batch.
"""

from __future__ import annotations

import codecs
import contextlib
import inspect
import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generator, Iterator, Mapping, Sequence

import numpy as np
import torch

from structgen.errors import StructgenError, TruncatedOutputError
from structgen.integrations.specs import OutputValidationError, Prepared, check, prepare
from structgen.bitmask import allocate_token_bitmask
from structgen.integrations.transformers import check_vocab_width, mask_rows
from structgen.matcher import Matcher

__all__ = ["generate", "stream", "GenerationResult", "GenerationStats", "default_model"]


@dataclass
class GenerationStats:
    """What one ``generate`` call did (for a batch: all rows together)."""

    forward_passes: int = 0
    sampled_tokens: int = 0  # tokens chosen by sampling / argmax
    forced_tokens: int = 0  # tokens appended by jump-forward, no sampling
    forced_stops: int = 0  # rows ended without a pass (only EOS could follow)
    prompt_tokens: int = 0
    model_s: float = 0.0  # time inside the model's forward
    constraint_s: float = 0.0  # masks, matcher steps, jump-forward
    sample_s: float = 0.0  # softmax / top-p / multinomial / argmax
    total_s: float = 0.0

    @property
    def generated_tokens(self) -> int:
        return self.sampled_tokens + self.forced_tokens


@dataclass
class GenerationResult:
    """One output with its details (``generate(..., return_details=True)``).

    ``value`` is the validated result (``None`` when ``error`` is set);
    ``finish_reason`` is ``"eos"`` (the output ended), ``"complete"`` (the
    token limit was reached exactly where the output is complete) or
    ``"length"`` (cut off: ``error`` is a :class:`TruncatedOutputError`)."""

    value: Any
    text: str
    token_ids: list[int]
    finish_reason: str
    error: StructgenError | None = None
    stats: GenerationStats = field(default_factory=GenerationStats)


# ---------------------------------------------------------------- model


_models: "OrderedDict[str | None, tuple[Any, Any]]" = OrderedDict()
_models_lock = threading.Lock()


def default_model(name_or_path: str | os.PathLike[str] | None = None, *, progress: bool = True) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``name_or_path`` (default: the packaged
    SmolLM2-135M-Instruct), loaded once per process and kept (the last two).
    ``progress=False``: a first load that converts the model prints nothing."""
    from structgen.integrations.model import load_model

    name = None if name_or_path is None else os.fspath(name_or_path)
    with _models_lock:
        hit = _models.get(name)
        if hit is None:
            hit = _models[name] = load_model(name, progress=progress)
            while len(_models) > 2:
                _models.popitem(last=False)
        _models.move_to_end(name)
        return hit


def _loads_a_model(model: Any) -> bool:
    """Will :func:`_model_and_tokenizer` load a model (seconds, a minute on
    first use)? Then a bad spec should fail first, in milliseconds."""
    if model is not None and not isinstance(model, (str, os.PathLike)):
        return False
    with _models_lock:
        return (None if model is None else os.fspath(model)) not in _models


def _model_and_tokenizer(model: Any, tokenizer: Any):
    if model is None:
        if tokenizer is not None:
            raise TypeError("tokenizer= was given without model=; pass both, or neither for the default model")
        return default_model()
    if isinstance(model, (str, os.PathLike)):
        loaded, loaded_tok = default_model(os.fspath(model))
        return loaded, tokenizer if tokenizer is not None else loaded_tok
    if tokenizer is None:
        from structgen.integrations.model import load_tokenizer

        name = getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "_name_or_path", None)
        if not name:
            raise TypeError("pass tokenizer= with model= (the model does not say where it was loaded from)")
        tokenizer = load_tokenizer(name)
    return model, tokenizer


def _model_vocab_width(model: Any) -> int | None:
    """How many token ids the model's input embedding has (``None`` if it
    does not say): a prompt id past it fails inside the forward pass."""
    try:
        rows = model.get_input_embeddings().num_embeddings
    except (AttributeError, NotImplementedError):  # not a transformers model, or one without the accessor
        rows = getattr(getattr(model, "config", None), "vocab_size", None)
    return None if rows is None else int(rows)


def _model_eos_ids(model: Any) -> list[int]:
    cfg = getattr(model, "generation_config", None)
    eos = getattr(cfg, "eos_token_id", None)
    if eos is None:
        eos = getattr(getattr(model, "config", None), "eos_token_id", None)
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


# --------------------------------------------------------------- prompts


def _is_messages(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(m, dict) and "role" in m for m in x)


def _prompt_ids(prompt: Any, tokenizer: Any, chat_template: bool, system_prompt: str | None) -> list[int]:
    template = getattr(tokenizer, "chat_template", None)
    if _is_messages(prompt):
        messages = list(prompt)
        if not template:
            raise StructgenError("a list of chat messages needs a tokenizer with a chat template")
    elif isinstance(prompt, str):
        if not (chat_template and template):
            return list(tokenizer(prompt)["input_ids"])
        messages = [{"role": "user", "content": prompt}]
    else:
        raise TypeError(f"a prompt is a str or a list of chat messages, not {type(prompt).__name__}")
    if system_prompt is not None and messages[0].get("role") != "system":
        messages = [{"role": "system", "content": system_prompt}, *messages]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


# --------------------------------------------------------------- sampler


class _Sampler:
    def __init__(self, temperature: float | None, top_p: float | None, top_k: int | None, seed: int | None, device):
        self.greedy = not temperature
        if temperature is not None and temperature < 0:
            raise ValueError("temperature must be >= 0 (0 or None: greedy)")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if top_k is not None and top_k < 1:
            raise ValueError("top_k must be >= 1")
        self.temperature = temperature or 1.0
        self.top_p = top_p
        self.top_k = top_k
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(int(seed))

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.greedy:
            return logits.argmax(dim=-1)
        logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            drop_sorted = cum - sorted_logits.softmax(dim=-1) >= self.top_p  # keep the token that crosses top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = logits.softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)


# ------------------------------------------------------------------ loop


class _Row:
    __slots__ = ("index", "matcher", "generated", "pending", "done", "reason")

    def __init__(self, index: int, matcher: Matcher | None):
        self.index = index
        self.matcher = matcher
        self.generated: list[int] = []
        self.pending: list[int] = []
        self.done = False
        self.reason = ""


def _forward_kwargs(model) -> tuple[str, bool]:
    """The model's name for the KV cache argument and whether it takes
    ``logits_to_keep`` (transformers renamed ``past_key_values`` to ``cache``)."""
    params: Mapping[str, Any]
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover
        params = {}
    cache_arg = "cache" if "cache" in params else "past_key_values"
    return cache_arg, "logits_to_keep" in params


def _new_cache(model):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers
        return DynamicCache()


def decode(model: Any, prepared: Prepared | None, prompts: Sequence[Sequence[int]], **options: Any
           ) -> tuple[list[_Row], GenerationStats]:
    """:func:`decode_steps` run to the end: ``(rows, stats)``."""
    return _run(decode_steps(model, prepared, prompts, **options))


def _run(steps: Generator[list[_Row], None, tuple[list[_Row], GenerationStats]]
         ) -> tuple[list[_Row], GenerationStats]:
    while True:
        try:
            next(steps)
        except StopIteration as end:
            return end.value


@torch.inference_mode()
def decode_steps(
    model: Any,
    prepared: Prepared | None,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    sampler: _Sampler,
    jump_forward: bool,
    pad_token_id: int,
    eos_ids: Sequence[int] = (),
) -> Generator[list[_Row], None, tuple[list[_Row], GenerationStats]]:
    """The decoding loop, a step at a time: yields the rows (the same list,
    their ``generated`` tokens growing) once the tokens forced before the
    first forward pass are in and after every step, and returns ``(rows,
    stats)``. Closing it early ends decoding there; its KV cache and matchers
    go with it. ``prepared=None`` decodes without constraints (the baseline
    the benchmark compares against): rows then end on ``eos_ids``."""
    stats = GenerationStats()
    started = time.perf_counter()
    device = model.device
    grammar = prepared.grammar if prepared is not None else None
    if grammar is not None:
        eos = frozenset(grammar.vocab.eos_ids)
        vocab_size = len(grammar.vocab.token_bytes)
        finished_packed = grammar.nothing_allowed  # finished rows leave the batch
        bitmask = allocate_token_bitmask(len(prompts), vocab_size)
    else:
        eos = frozenset(eos_ids)
    rows = [_Row(i, prepared.matcher() if prepared is not None else None) for i in range(len(prompts))]
    stats.prompt_tokens = sum(len(p) for p in prompts)

    t = time.perf_counter()
    for row in rows:
        if jump_forward and grammar is not None:
            _jump(row, max_new_tokens, stats)
            _check_limit(row, max_new_tokens)
    stats.constraint_s += time.perf_counter() - t
    yield rows

    # First chunk: each prompt (plus its forced tokens), left-padded.
    width = max(len(p) + len(r.generated) for p, r in zip(prompts, rows))
    first = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, row) in enumerate(zip(prompts, rows)):
        seq = list(p) + row.generated
        if not seq:
            raise StructgenError("an empty prompt: give the model at least one token to start from")
        first[i, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        attention[i, width - len(seq) :] = 1
    chunk = first
    cache = _new_cache(model)
    cache_arg, keep_arg = _forward_kwargs(model)
    active = list(range(len(rows)))  # row indices in batch order

    # Drop rows already finished before the first pass.
    keep = [i for i in active if not rows[i].done]
    if len(keep) < len(active):
        chunk, attention = chunk[keep], attention[keep]
        active = keep

    while active:
        attention_d = attention.to(device)
        positions = (attention_d.cumsum(-1) - 1).clamp(min=0)[:, -chunk.shape[1] :]
        kwargs = {cache_arg: cache, "use_cache": True}
        if keep_arg:
            kwargs["logits_to_keep"] = 1
        t = time.perf_counter()
        out = model(input_ids=chunk.to(device), attention_mask=attention_d, position_ids=positions, **kwargs)
        logits = out.logits[:, -1, :].float()
        stats.model_s += time.perf_counter() - t
        stats.forward_passes += 1
        if not keep_arg and cache_arg == "past_key_values":
            cache = getattr(out, "past_key_values", cache)

        t = time.perf_counter()
        if grammar is not None:
            matchers = [rows[i].matcher for i in active]
            empty = mask_rows(matchers, logits, bitmask, finished_packed, vocab_size)
            if empty >= 0:
                row = rows[active[empty]]
                text = grammar.vocab.decode_bytes(row.generated).decode("utf-8", "replace")
                raise StructgenError(
                    f"no token can continue the output {text!r}: the grammar needs bytes this tokenizer "
                    "cannot spell here. Please report this with the spec"
                )
        stats.constraint_s += time.perf_counter() - t

        t = time.perf_counter()
        tokens = sampler(logits).tolist()
        stats.sample_s += time.perf_counter() - t

        t = time.perf_counter()
        for i, tok in zip(active, tokens):
            row = rows[i]
            stats.sampled_tokens += 1
            if tok in eos:
                if row.matcher is not None and not row.matcher.advance(tok):  # pragma: no cover - masked
                    raise StructgenError(f"internal error: EOS sampled in a non-accepting state (row {i})")
                row.done, row.reason = True, "eos"
                stats.sampled_tokens -= 1  # EOS is not part of the output
                continue
            if row.matcher is not None and not row.matcher.advance(tok):  # pragma: no cover - masked
                raise StructgenError(f"internal error: token {tok} sampled but not allowed (row {i})")
            row.generated.append(tok)
            row.pending = [tok]
            if jump_forward and grammar is not None:
                _jump(row, max_new_tokens, stats)
            _check_limit(row, max_new_tokens)
        stats.constraint_s += time.perf_counter() - t
        yield rows

        # Rows that finished leave the batch (and the KV cache).
        keep_pos = [k for k, i in enumerate(active) if not rows[i].done]
        if not keep_pos:
            break
        if len(keep_pos) < len(active):
            index = torch.tensor(keep_pos, dtype=torch.long)
            cache.batch_select_indices(index.to(device))
            attention = attention[index]
            active = [active[k] for k in keep_pos]
        # Next chunk: each row's pending tokens, right-aligned.
        k = max(len(rows[i].pending) for i in active)
        chunk = torch.full((len(active), k), pad_token_id, dtype=torch.long)
        new_attention = torch.zeros((len(active), k), dtype=torch.long)
        for b, i in enumerate(active):
            pend = rows[i].pending
            chunk[b, k - len(pend) :] = torch.tensor(pend, dtype=torch.long)
            new_attention[b, k - len(pend) :] = 1
        attention = torch.cat([attention, new_attention], dim=1)

    stats.total_s = time.perf_counter() - started
    return rows, stats


def _check_limit(row: _Row, max_new_tokens: int) -> None:
    if not row.done and len(row.generated) >= max_new_tokens:
        row.done = True
        row.reason = "complete" if row.matcher is None or row.matcher.is_accepting() else "length"


def _jump(row: _Row, max_new_tokens: int, stats: GenerationStats) -> None:
    """Append the tokens the grammar forces; end the row if only EOS can follow.

    Forced tokens come from :meth:`Matcher.forced_tokens` (the forced bytes,
    spelled greedily) and, where that leaves nothing, from states whose mask
    allows exactly one token (the model could not choose anything else, so
    taking it changes nothing but the number of forward passes)."""
    m = row.matcher
    assert m is not None  # only constrained rows jump
    while len(row.generated) < max_new_tokens:
        forced = m.forced_tokens()
        if not forced:
            single = _state_info(m)[1]
            if single < 0:
                break
            forced = [single]
        room = max_new_tokens - len(row.generated)
        took = 0
        for tok in forced[:room]:
            if not m.advance(tok):  # pragma: no cover - forced tokens are allowed
                break
            row.generated.append(tok)
            row.pending.append(tok)
            took += 1
        stats.forced_tokens += took
        if took < len(forced):
            break
    if _state_info(m)[0]:
        row.done, row.reason = True, "eos"
        stats.forced_stops += 1


_STATE_INFO: "weakref.WeakKeyDictionary[Any, dict[int, tuple[bool, int]]]" = weakref.WeakKeyDictionary()


def _state_info(m: Matcher) -> tuple[bool, int]:
    """``(only_eos, single)`` for the matcher's state, cached per grammar and
    state: ``only_eos`` when the output is complete and nothing but EOS may
    follow; ``single`` the one token allowed when there is exactly one and
    EOS is not allowed (else -1)."""
    grammar = m.grammar
    per = _STATE_INFO.get(grammar)
    if per is None:
        per = _STATE_INFO[grammar] = {}
    state = m.state
    info = per.get(state)
    if info is None:
        packed = m.allowed_bitmask()
        nz = np.flatnonzero(packed)
        eos = set(grammar.vocab.eos_ids)
        only_eos, single = False, -1
        if nz.size <= len(eos) + 1:
            ids = [int(b) * 8 + bit for b in nz for bit in range(8) if (int(packed[b]) >> bit) & 1]
            others = [i for i in ids if i not in eos]
            only_eos = bool(ids) and not others
            if len(ids) == 1 and others:
                single = others[0]
        info = per[state] = (only_eos, single)
    return info


# ------------------------------------------------------------------ API


def generate(
    spec: Any,
    prompt: str | Sequence[Any],
    *,
    model: Any = None,
    tokenizer: Any = None,
    max_new_tokens: int = 256,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    chat_template: bool = True,
    system_prompt: str | None = None,
    jump_forward: bool = True,
    whitespace: str | int = "compact",
    lenient: bool = False,
    canonical: bool = True,
    closed_objects: bool = True,
    return_details: bool = False,
) -> Any:
    """Generate output that matches ``spec`` and return it, validated.

    ``spec``: a Pydantic model class (returns an instance), a JSON Schema dict
    or JSON text (returns the parsed value), :class:`structgen.Regex`,
    :class:`structgen.Choice` or :class:`structgen.Grammar` (returns the
    string), or a compiled grammar.

    ``prompt``: a string, a list of chat messages (``[{"role": "user",
    "content": ...}]``), or a list of those for a batch (returns a list, in
    order). ``model``/``tokenizer``: a loaded model and its tokenizer, or a
    model name/path (see :func:`structgen.load_model`); by default the packaged
    SmolLM2-135M-Instruct, loaded once. ``chat_template``: wrap a string prompt
    in the tokenizer's chat template (when it has one) as a user message, after
    ``system_prompt`` if given.

    Sampling: greedy when ``temperature`` is 0 or None; otherwise softmax
    sampling with ``top_p``/``top_k`` filtering, reproducible with ``seed``.
    ``max_new_tokens`` bounds the output's tokens (EOS not counted).
    ``jump_forward``: append the tokens the grammar forces without sampling
    them (fewer forward passes; tokens may be split differently from how the
    model would split them). ``whitespace``/``lenient``: JSON options (see
    :func:`structgen.compile_json_schema`); ``canonical``: spell JSON the way
    ``json.dumps`` does (property names and strings without needless escapes,
    numbers without endless zeros) with object members in declaration order,
    which keeps small models on track and lets jump-forward write every key
    (the values accepted are the same);
    ``closed_objects``: an object whose schema says nothing about extra keys
    gets its declared properties only (``False``: any extra keys the schema
    allows; see :func:`structgen.integrations.specs.prepare`).

    Raises :class:`~structgen.errors.TruncatedOutputError` (with
    ``.partial_text``) when ``max_new_tokens`` cuts an output short; in a batch
    the first such error is raised with ``.index`` (its prompt) and
    ``.results`` (every row's value or exception) attached. With
    ``return_details=True`` nothing is raised for an output: a
    :class:`GenerationResult` (or a list) carries value, text, tokens, finish
    reason, error and statistics.
    """
    batched = isinstance(prompt, (list, tuple)) and not _is_messages(prompt)
    prompts = list(prompt) if batched else [prompt]
    if not prompts:
        return []
    prepared, steps = _begin(
        spec, prompts, model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
        top_k=top_k, seed=seed, chat_template=chat_template, system_prompt=system_prompt,
        jump_forward=jump_forward, whitespace=whitespace, lenient=lenient, canonical=canonical,
        closed_objects=closed_objects,
    )
    rows, stats = _run(steps)
    results = [_result(row, prepared, max_new_tokens, stats) for row in rows]
    if return_details:
        return results if batched else results[0]
    values: list[Any] = [r.error if r.error is not None else r.value for r in results]
    for i, r in enumerate(results):
        if r.error is not None:
            err = r.error
            err.index = i
            err.results = values
            raise err
    return values if batched else values[0]


def stream(
    spec: Any,
    prompt: str | Sequence[Any],
    *,
    model: Any = None,
    tokenizer: Any = None,
    max_new_tokens: int = 256,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    seed: int | None = None,
    chat_template: bool = True,
    system_prompt: str | None = None,
    jump_forward: bool = True,
    whitespace: str | int = "compact",
    lenient: bool = False,
    canonical: bool = True,
    closed_objects: bool = True,
) -> Iterator[Any]:
    """:func:`generate` for one prompt, yielding the output's text as it is
    produced (``str`` pieces: sampled tokens, and the tokens jump-forward adds
    with them); the last item is the validated value, what ``generate`` would
    return. Errors come where ``generate`` raises them: a bad spec or model at
    the first ``next()``, :class:`~structgen.errors.TruncatedOutputError` after
    the text. A consumer that stops early (``break``, ``close()``) ends the
    decoding there, and its KV cache and matcher go with it::

        for item in structgen.stream(Cat, "Describe a cat as JSON."):
            if isinstance(item, Cat):
                cat = item                        # last: the validated value
            else:
                print(item, end="", flush=True)   # the text so far
    """
    if isinstance(prompt, (list, tuple)) and not _is_messages(prompt):
        raise TypeError("stream() takes one prompt (a str or a list of chat messages); batches go to generate()")
    prepared, steps = _begin(
        spec, [prompt], model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
        top_k=top_k, seed=seed, chat_template=chat_template, system_prompt=system_prompt,
        jump_forward=jump_forward, whitespace=whitespace, lenient=lenient, canonical=canonical,
        closed_objects=closed_objects,
    )
    vocab = prepared.grammar.vocab
    text = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span tokens
    sent = 0
    with contextlib.closing(steps):
        while True:
            try:
                row = next(steps)[0]
            except StopIteration as end:
                rows, stats = end.value
                break
            piece = text.decode(vocab.decode_bytes(row.generated[sent:]))
            sent = len(row.generated)
            if piece:
                yield piece
    result = _result(rows[0], prepared, max_new_tokens, stats)
    if result.error is not None:
        raise result.error
    yield result.value


def _begin(
    spec: Any,
    prompts: list[Any],
    model: Any,
    tokenizer: Any,
    *,
    max_new_tokens: int,
    temperature: float | None,
    top_p: float | None,
    top_k: int | None,
    seed: int | None,
    chat_template: bool,
    system_prompt: str | None,
    jump_forward: bool,
    whitespace: str | int,
    lenient: bool,
    canonical: bool,
    closed_objects: bool,
) -> tuple[Prepared, Generator[list[_Row], None, tuple[list[_Row], GenerationStats]]]:
    """The compiled spec and the (unstarted) decoding of ``prompts``, checked
    in the order that fails fastest: arguments, the spec before a model is
    loaded, then the model and the prompts."""
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    if _loads_a_model(model):
        check(spec, whitespace=whitespace, lenient=lenient, closed_objects=closed_objects)  # fail before a slow load
    model, tokenizer = _model_and_tokenizer(model, tokenizer)
    prepared = prepare(spec, tokenizer, eos_ids=_model_eos_ids(model), whitespace=whitespace, lenient=lenient,
                       canonical=canonical, closed_objects=closed_objects)
    width = _model_vocab_width(model)
    if width is not None:
        check_vocab_width(width, len(prepared.grammar.vocab.token_bytes), "embeddings")
    ids = [_prompt_ids(p, tokenizer, chat_template, system_prompt) for p in prompts]
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = prepared.grammar.vocab.eos_ids[0]
    sampler = _Sampler(temperature, top_p, top_k, seed, model.device)
    steps = decode_steps(model, prepared, ids, max_new_tokens=max_new_tokens, sampler=sampler,
                         jump_forward=jump_forward, pad_token_id=int(pad))
    return prepared, steps


def _result(row: _Row, prepared: Prepared, max_new_tokens: int, stats: GenerationStats) -> GenerationResult:
    data = prepared.grammar.vocab.decode_bytes(row.generated)
    if row.reason == "length":
        text = data.decode("utf-8", "replace")
        err = TruncatedOutputError(text, max_new_tokens)
        return GenerationResult(None, text, row.generated, "length", err, stats)
    text = data.decode("utf-8")
    try:
        value = prepared.finish(text)
    except OutputValidationError as err:
        return GenerationResult(None, text, row.generated, row.reason, err, stats)
    return GenerationResult(value, text, row.generated, row.reason, None, stats)
