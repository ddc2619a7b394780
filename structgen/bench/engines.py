"""One adapter per engine, all behind the same small interface.

An :class:`Engine` is built once per worker process from a Hugging Face
tokenizer (the slow part: vocabulary conversion) and then compiles schemas::

    engine = make_engine("structgen", tokenizer)
    compiled = engine.compile(schema)        # raises CompileError for a refused schema
    s = compiled.session()                   # one per test instance
    s.mask()                                 # compute the next-token mask (this is what TBM times)
    s.allowed(token_id)                      # bit of the last mask
    s.advance(token_id)                      # consume; False if the engine refused it
    s.eos_allowed()                          # EOS bit of the last mask

Every engine gets the same whitespace policy: any JSON whitespace between
tokens (``json.dumps`` writes ``", "`` and ``": "``), and JSON Schema semantics
(extra properties allowed unless the schema says otherwise). Engine variants:
``structgen-lenient`` and ``llguidance-lenient`` skip keywords they cannot
enforce instead of refusing the schema.

Any exception an engine raises while compiling is a compile error for the
peers. For structgen only :class:`structgen.errors.StructgenError` is a compile
error; anything else is a crash (a bug), reported with its traceback.
"""

from __future__ import annotations

import importlib.metadata
import json
from typing import Any

ENGINES = ("structgen", "llguidance", "xgrammar", "outlines-core")
VARIANTS = ("structgen-lenient", "llguidance-lenient")
# whitespace the peers that take a pattern are given ("flexible" JSON whitespace)
JSON_WS = r"[ \t\n\r]*"


class CompileError(Exception):
    """The engine refused the schema (the ``compile_error`` outcome)."""


class EngineUnavailable(Exception):
    """The engine's package is not installed."""


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def engine_version(name: str) -> str:
    base = name.split("-lenient")[0]
    if base == "structgen":  # this package, installed or run from a checkout
        import structgen

        return structgen.__version__
    dist = {"outlines-core": "outlines_core"}.get(base, base)
    return _dist_version(dist)


def engine_available(name: str) -> bool:
    return engine_version(name) != "not installed"


def make_engine(name: str, tokenizer: Any) -> "Engine":
    cls = {
        "structgen": StructgenEngine,
        "structgen-lenient": StructgenEngine,
        "llguidance": LLGuidanceEngine,
        "llguidance-lenient": LLGuidanceEngine,
        "xgrammar": XGrammarEngine,
        "outlines-core": OutlinesEngine,
    }.get(name)
    if cls is None:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES + VARIANTS)}")
    if not engine_available(name):
        raise EngineUnavailable(f"engine {name!r} is not installed (pip install 'structgen[bench]')")
    return cls(tokenizer, lenient=name.endswith("-lenient"))


def eos_id(tokenizer: Any) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token")
    return int(eos)


class Engine:
    name = "?"

    def __init__(self, tokenizer: Any, *, lenient: bool = False) -> None:
        self.tokenizer = tokenizer
        self.lenient = lenient
        self.eos = eos_id(tokenizer)

    def compile(self, schema: Any) -> "Compiled":  # pragma: no cover - interface
        raise NotImplementedError

    def after_schema(self) -> None:
        """Drop per-schema caches so a long-lived worker does not grow."""


class Compiled:
    info: dict = {}

    def session(self) -> "Session":  # pragma: no cover - interface
        raise NotImplementedError


class Session:
    def mask(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def allowed(self, token: int) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def advance(self, token: int) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def eos_allowed(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


# --------------------------------------------------------------------------- structgen


class StructgenEngine(Engine):
    name = "structgen"

    def __init__(self, tokenizer: Any, *, lenient: bool = False) -> None:
        super().__init__(tokenizer, lenient=lenient)
        from structgen.compile import as_vocabulary
        from structgen.index.token_index import TokenArrays
        from structgen.warmup import warm_up

        self.vocab = as_vocabulary(tokenizer)
        if self.eos not in set(self.vocab.eos_ids):
            self.vocab = self.vocab.with_eos_ids([self.eos])
        # Per-process and per-vocabulary work belongs to setup (as a peer's
        # tokenizer preparation does), not to the first schema's TTFM:
        # loading the compiled kernels and the vocabulary's trie arrays.
        warm_up()
        TokenArrays.of(self.vocab)

    def compile(self, schema: Any) -> "Compiled":
        from structgen import compile_json_schema
        from structgen.errors import StructgenError

        try:
            g = compile_json_schema(schema, self.vocab, whitespace="flexible", lenient=self.lenient)
        except StructgenError as e:
            raise CompileError(f"{type(e).__name__}: {e}") from None
        return _StructgenCompiled(g, self.eos)

    def after_schema(self) -> None:
        # compile_json_schema keeps recent grammars for reuse; the benchmark
        # compiles each schema once, so keeping them only costs memory.
        from structgen import compile as compile_module

        cache = getattr(compile_module, "_cache", None)
        if cache is not None:
            cache.clear()


class _StructgenCompiled(Compiled):
    def __init__(self, g: Any, eos: int) -> None:
        self.g = g
        self.eos = eos

    @property
    def info(self) -> dict:
        try:
            return dict(self.g.stats())
        except Exception:  # stats are informative only
            return {}

    def session(self) -> Session:
        return _StructgenSession(self.g.matcher(), self.eos)


class _StructgenSession(Session):
    __slots__ = ("m", "bits", "eos")

    def __init__(self, m: Any, eos: int) -> None:
        self.m = m
        self.bits = None
        self.eos = eos

    def mask(self) -> None:
        self.bits = self.m.allowed_bitmask()

    def allowed(self, token: int) -> bool:
        return bool((int(self.bits[token >> 3]) >> (token & 7)) & 1)

    def advance(self, token: int) -> bool:
        return bool(self.m.advance(token))

    def eos_allowed(self) -> bool:
        return self.allowed(self.eos) and self.m.is_accepting()


# --------------------------------------------------------------------------- llguidance


class LLGuidanceEngine(Engine):
    """``LLMatcher`` with llguidance's own JSON compiler: strict defaults
    (unsupported keywords are errors), flexible whitespace; ``-lenient`` adds
    ``{"lenient": true, "coerce_one_of": true}`` like the baseline."""

    name = "llguidance"

    def __init__(self, tokenizer: Any, *, lenient: bool = False) -> None:
        super().__init__(tokenizer, lenient=lenient)
        import llguidance
        import llguidance.hf
        import numpy as np

        self._ll = llguidance
        self.lltok = llguidance.hf.from_tokenizer(tokenizer, eos_token=self.eos)
        self.n_vocab = self.lltok.vocab_size
        self.buf = np.zeros((self.n_vocab + 31) // 32, dtype=np.int32)
        self.options: dict = {"whitespace_flexible": True}
        if lenient:
            self.options.update({"lenient": True, "coerce_one_of": True})

    def compile(self, schema: Any) -> "Compiled":
        LLMatcher = self._ll.LLMatcher
        try:
            grammar = LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=self.options)
            m = LLMatcher(self.lltok, grammar, log_level=0)
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from None
        if m.is_error():
            raise CompileError(m.get_error())
        return _LLCompiled(self, m)


class _LLCompiled(Compiled):
    def __init__(self, engine: LLGuidanceEngine, m: Any) -> None:
        self.engine = engine
        self.pristine = m.deep_copy()
        self.m = m
        self.used = False

    def session(self) -> Session:
        # reuse one matcher (its lexer caches stay warm, as in a server);
        # a matcher in the error state cannot be reset, so copy a fresh one.
        if self.used:
            if self.m.is_error():
                self.m = self.pristine.deep_copy()
            else:
                self.m.reset()
        self.used = True
        return _LLSession(self.m, self.engine.buf, self.engine.eos)


class _LLSession(Session):
    __slots__ = ("m", "buf", "ptr", "nbytes", "eos")

    def __init__(self, m: Any, buf: Any, eos: int) -> None:
        self.m = m
        self.buf = buf
        self.ptr = buf.ctypes.data
        self.nbytes = buf.size * 4
        self.eos = eos

    def mask(self) -> None:
        self.m.unsafe_compute_mask_ptr(self.ptr, self.nbytes)

    def allowed(self, token: int) -> bool:
        return bool((int(self.buf[token >> 5]) >> (token & 31)) & 1)

    def advance(self, token: int) -> bool:
        return bool(self.m.consume_token(token))

    def eos_allowed(self) -> bool:
        return self.allowed(self.eos) and self.m.is_accepting()


# --------------------------------------------------------------------------- xgrammar


class XGrammarEngine(Engine):
    """``GrammarCompiler.compile_json_schema(any_whitespace=True,
    strict_mode=False)`` (strict_mode=True would forbid properties the schema
    does not list, which JSON Schema allows), one compiler thread, no cache."""

    name = "xgrammar"

    def __init__(self, tokenizer: Any, *, lenient: bool = False) -> None:
        super().__init__(tokenizer, lenient=lenient)
        import xgrammar as xgr

        self._xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, stop_token_ids=[self.eos])
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        self.bitmask = xgr.allocate_token_bitmask(1, self.info.vocab_size)
        self.view = self.bitmask.numpy()[0]

    def compile(self, schema: Any) -> "Compiled":
        try:
            cg = self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=True, strict_mode=False)
            m = self._xgr.GrammarMatcher(cg)
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from None
        return _XGCompiled(self, m)


class _XGCompiled(Compiled):
    def __init__(self, engine: XGrammarEngine, m: Any) -> None:
        self.engine = engine
        self.m = m
        self.used = False

    def session(self) -> Session:
        if self.used:
            self.m.reset()
        self.used = True
        return _XGSession(self.m, self.engine)


class _XGSession(Session):
    __slots__ = ("m", "bitmask", "view", "eos")

    def __init__(self, m: Any, engine: XGrammarEngine) -> None:
        self.m = m
        self.bitmask = engine.bitmask
        self.view = engine.view
        self.eos = engine.eos

    def mask(self) -> None:
        self.m.fill_next_token_bitmask(self.bitmask)

    def allowed(self, token: int) -> bool:
        return bool((int(self.view[token >> 5]) >> (token & 31)) & 1)

    def advance(self, token: int) -> bool:
        return bool(self.m.accept_token(token))

    def eos_allowed(self) -> bool:
        return self.allowed(self.eos)


# --------------------------------------------------------------------------- outlines-core


def byte_level_token_bytes(tokenizer: Any) -> dict[int, bytes] | None:
    """Token id -> bytes for a byte-level BPE vocabulary (GPT-2 alphabet), or
    None if the vocabulary is not byte-level. Independent of structgen's own
    vocabulary code, so that a bug there does not leak into a peer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    decode = {chr(c): b for b, c in zip(bs, cs)}
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    out: dict[int, bytes] = {}
    for text, tid in tokenizer.get_vocab().items():
        if tid in special:
            continue
        try:
            out[tid] = bytes(decode[c] for c in text)
        except KeyError:
            return None
    return out


class OutlinesEngine(Engine):
    """``build_regex_from_schema(schema, whitespace_pattern=[ \\t\\n\\r]*)``,
    then ``Index(regex, Vocabulary)`` (the compile) and a ``Guide`` per test."""

    name = "outlines-core"

    def __init__(self, tokenizer: Any, *, lenient: bool = False) -> None:
        super().__init__(tokenizer, lenient=lenient)
        import numpy as np
        import outlines_core

        self._oc = outlines_core
        table = byte_level_token_bytes(tokenizer)
        if table is None:  # e.g. SentencePiece: fall back to structgen's byte mapping
            from structgen.vocab import Vocabulary

            v = Vocabulary.from_tokenizer(tokenizer)
            specials = set(v.special_ids)
            table = {i: b for i, b in enumerate(v.token_bytes) if b and i not in specials}
        by_bytes: dict[bytes, list[int]] = {}
        for tid, data in table.items():
            if tid != self.eos and data:
                by_bytes.setdefault(data, []).append(tid)
        self.vocabulary = outlines_core.Vocabulary(self.eos, by_bytes)
        n = max(len(tokenizer), max(table) + 1, self.eos + 1)
        self.buf = np.zeros((n + 31) // 32, dtype=np.int32)

    def compile(self, schema: Any) -> "Compiled":
        from outlines_core.json_schema import build_regex_from_schema

        try:
            regex = build_regex_from_schema(json.dumps(schema), JSON_WS)
            index = self._oc.Index(regex, self.vocabulary)
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from None
        return _OCCompiled(self, index)


class _OCCompiled(Compiled):
    def __init__(self, engine: OutlinesEngine, index: Any) -> None:
        self.engine = engine
        self.index = index

    def session(self) -> Session:
        return _OCSession(self.engine._oc.Guide(self.index), self.engine)


class _OCSession(Session):
    __slots__ = ("g", "buf", "ptr", "numel", "eos")

    def __init__(self, g: Any, engine: OutlinesEngine) -> None:
        self.g = g
        self.buf = engine.buf
        self.ptr = engine.buf.ctypes.data
        self.numel = engine.buf.size
        self.eos = engine.eos

    def mask(self) -> None:
        self.g.write_mask_into(self.ptr, self.numel, 4)

    def allowed(self, token: int) -> bool:
        return bool((int(self.buf[token >> 5]) >> (token & 31)) & 1)

    def advance(self, token: int) -> bool:
        try:
            self.g.advance(token, return_tokens=False)
        except Exception:
            return False
        return True

    def eos_allowed(self) -> bool:
        return self.allowed(self.eos) and self.g.is_finished()
