"""A ``transformers`` logits processor that enforces a spec.

    proc = structgen.LogitsProcessor(Cat, tokenizer)
    out = model.generate(**inputs, logits_processor=LogitsProcessorList([proc]))

How it follows ``model.generate``:

* The first call of a generation sees the prompt (left-padded batch); its
  length is remembered. Every later call sees one more column: the token just
  chosen for each row, which advances that row's matcher.
* Beam search reorders rows between steps. When the rows are not simply the
  previous rows plus one token, each row is matched to its parent by its
  generated tokens (a dict from the previous rows' tokens to their matchers),
  so a row's state always follows its tokens, never its index.
* A new ``generate`` call is detected (batch size, length or prompt changed)
  and starts from fresh matchers; :meth:`LogitsProcessor.reset` forces that.
  The one case detection cannot see: a new call whose prompt is exactly the
  previous call's prompt plus the one token the processor last saw; call
  ``reset()`` between calls if you feed outputs back as prompts.
* EOS is allowed only where the output is complete. A row that consumed EOS
  allows only EOS and the pad token afterwards (``generate`` pads finished
  rows). A beam that took a token the grammar refused (beam search fills its
  beams from ``-inf`` candidates when fewer valid continuations exist) is
  dead: it too allows only EOS/pad, and its score is ``-inf`` anyway.
* Logit columns beyond the tokenizer's vocabulary (models pad their embedding
  matrix) are never allowed. Fewer columns than the tokenizer has tokens mean
  that the tokenizer is not the model's: the first call of a generation
  raises :class:`~structgen.errors.TokenizerError`.
* Each step refills one int32 batch bitmask (:mod:`structgen.bitmask`; cached
  masks are copied, new ones computed on threads) and applies it on the
  logits' device.

Speculative / assisted decoding, which calls processors on several candidate
positions at once, is not supported.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import numpy as np
import torch

try:  # subclass transformers' base class so LogitsProcessorList accepts it as one of its own
    from transformers import LogitsProcessor as _HFLogitsProcessor
except ImportError:  # pragma: no cover - transformers is a dependency
    _HFLogitsProcessor = object

from structgen.bitmask import (
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    as_words,
    bitmask_width,
    fill_next_token_bitmask_batch,
    write_packed_row,
)
from structgen.errors import StructgenError, TokenizerError
from structgen.integrations.specs import Prepared, prepare
from structgen.matcher import CompiledGrammar, Matcher

__all__ = ["LogitsProcessor"]

_DEAD = None  # row state of a beam that took a refused token


class LogitsProcessor(_HFLogitsProcessor):
    """Mask every token that cannot continue a valid output.

    ``spec``: a Pydantic model class, a JSON Schema (dict or JSON text),
    :class:`structgen.Regex`, :class:`structgen.Choice`,
    :class:`structgen.Grammar` or a compiled grammar. ``tokenizer``: the
    model's tokenizer. ``eos_token_id``: extra ids that end the output (the
    model's ``generation_config.eos_token_id`` if it differs from the
    tokenizer's); ``pad_token_id``: the id ``generate`` pads finished rows with
    (default: the tokenizer's). ``whitespace``/``lenient``: JSON options, see
    :func:`structgen.compile_json_schema`; ``canonical``: JSON is spelled as
    ``json.dumps`` spells it (no ``\\u0061`` escapes, no ``12.000``) with
    members in declaration order, see :func:`structgen.integrations.specs.prepare`;
    ``closed_objects``:
    objects whose schema says nothing about extra keys get their declared
    properties only (``False``: the schema's literal meaning).

    After a generation, :meth:`finish` turns a row's text into the validated
    value (Pydantic instance, dict, str).
    """

    def __init__(
        self,
        spec: Any,
        tokenizer: Any = None,
        *,
        eos_token_id: int | Iterable[int] | None = None,
        pad_token_id: int | None = None,
        whitespace: str | int = "compact",
        lenient: bool = False,
        canonical: bool = True,
        closed_objects: bool = True,
    ) -> None:
        if tokenizer is None and not isinstance(spec, (CompiledGrammar, Prepared)):
            raise TypeError("LogitsProcessor needs the tokenizer (LogitsProcessor(spec, tokenizer))")
        self.prepared: Prepared = prepare(
            spec, tokenizer, eos_ids=eos_token_id, whitespace=whitespace, lenient=lenient, canonical=canonical,
            closed_objects=closed_objects,
        )
        self.grammar: CompiledGrammar = self.prepared.grammar
        vocab = self.grammar.vocab
        self.vocab_size = len(vocab.token_bytes)
        if pad_token_id is None and tokenizer is not None:
            pad_token_id = getattr(tokenizer, "pad_token_id", None)
        finished = set(vocab.eos_ids)
        if pad_token_id is not None and 0 <= int(pad_token_id) < self.vocab_size:
            finished.add(int(pad_token_id))
        allowed: np.ndarray = np.zeros(self.vocab_size, dtype=bool)
        allowed[sorted(finished)] = True
        self._finished_packed = np.packbits(allowed, bitorder="little")
        self._bitmask = allocate_token_bitmask(1, self.vocab_size)  # grown to the batch on first use
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget the current generation; the next call starts a new one."""
        self._prompt: torch.Tensor | None = None
        self._last: torch.Tensor | None = None
        self._rows: list[Matcher | None] = []

    @property
    def prompt_length(self) -> int | None:
        """Length of the (padded) prompt of the current generation."""
        return None if self._prompt is None else self._prompt.shape[1]

    @property
    def matchers(self) -> list[Matcher | None]:
        """The matcher of each row as of the last call (``None``: dead beam)."""
        return list(self._rows)

    def finish(self, text: str) -> Any:
        """The value of a finished output's text (validated). A text cut off
        before its end (``max_new_tokens``) raises
        :class:`~structgen.errors.TruncatedOutputError` with the partial text,
        as :func:`structgen.generate` does; see :meth:`Prepared.finish`."""
        return self.prepared.finish(text)

    # ------------------------------------------------------------------ call
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        ids = input_ids.detach()
        if ids.device.type != "cpu":
            ids = ids.cpu()
        if not self._continues(ids):
            check_vocab_width(scores.shape[1], self.vocab_size, "logits")
            self._start(ids)
        self._last = ids.clone()
        return self._apply_mask(scores)

    def _continues(self, ids: torch.Tensor) -> bool:
        """Is ``ids`` the previous call's rows plus one token each?"""
        last, prompt = self._last, self._prompt
        if last is None or prompt is None or ids.shape[0] != last.shape[0] or ids.shape[1] != last.shape[1] + 1:
            return False
        plen = prompt.shape[1]
        if not torch.equal(ids[:, :plen], prompt):
            return False
        new_tokens = ids[:, -1].tolist()
        if torch.equal(ids[:, :-1], last):  # no reordering (greedy, sampling)
            self._rows = [_step(m, t) for m, t in zip(self._rows, new_tokens)]
            return True
        # Beam search: find each row's parent among the previous rows by its tokens.
        parent_of: dict[tuple[int, ...], int] = {}
        for r, row in enumerate(last[:, plen:].tolist()):
            parent_of.setdefault(tuple(row), r)
        parents = []
        for row in ids[:, plen:-1].tolist():
            p = parent_of.get(tuple(row))
            if p is None:
                return False  # not a continuation after all: a new generation
            parents.append(p)
        children = Counter(parents)
        seen: Counter = Counter()
        rows = []
        for p, tok in zip(parents, new_tokens):
            m = self._rows[p]
            seen[p] += 1
            if m is not None and seen[p] < children[p]:
                m = m.copy()  # several children: all but the last get a copy
            rows.append(_step(m, tok))
        self._rows = rows
        return True

    def _start(self, ids: torch.Tensor) -> None:
        self._prompt = ids.clone()
        self._rows = [self.prepared.matcher() for _ in range(ids.shape[0])]

    # ------------------------------------------------------------------ mask
    def _apply_mask(self, scores: torch.Tensor) -> torch.Tensor:
        rows = self._rows
        batch = scores.shape[0]
        if batch != len(rows):
            raise StructgenError(
                f"LogitsProcessor got scores for {batch} rows but input_ids for {len(rows)}; "
                "speculative/assisted decoding is not supported"
            )
        if self._bitmask.shape[0] < batch:
            self._bitmask = allocate_token_bitmask(batch, self.vocab_size)
        empty = mask_rows(rows, scores, self._bitmask, self._finished_packed, self.vocab_size)
        if empty >= 0:
            self._no_token_error(empty)
        return scores

    def _no_token_error(self, row: int) -> None:
        m = self._rows[row]
        text = b""
        if m is not None and self._last is not None and self._prompt is not None:
            gen = self._last[row, self._prompt.shape[1] :].tolist()
            text = self.grammar.vocab.decode_bytes(gen)
        raise StructgenError(
            f"no token in the vocabulary can continue row {row} (output so far: "
            f"{text.decode('utf-8', 'replace')!r}); the grammar needs bytes this tokenizer cannot spell "
            "here. Please report this with the spec"
        )


def check_vocab_width(width: int, vocab_size: int, what: str) -> None:
    """Raise :class:`~structgen.errors.TokenizerError` when the model's
    ``width`` (its embedding rows, or the logits' columns) is narrower than the
    tokenizer's ``vocab_size``: the tokenizer is then not the model's, its ids
    name other tokens or none. Wider is fine (models pad their embedding)."""
    if width < vocab_size:
        raise TokenizerError(
            f"the model's {what} have {width} tokens but the tokenizer has {vocab_size}: this is not the model's "
            "tokenizer (its token ids would name other tokens, or none); pass the tokenizer that came with the model"
        )


def mask_rows(
    rows: list[Matcher | None],
    scores: torch.Tensor,
    bitmask: torch.Tensor,
    finished_packed: np.ndarray,
    vocab_size: int,
) -> int:
    """Mask ``scores`` in place by each row's matcher, through the int32
    ``bitmask`` (one row per matcher, refilled here); return the first row that
    allows no token at all, or ``-1``.

    Finished (stopped) and dead (``None``) rows get ``finished_packed``.
    Columns past ``vocab_size`` (the model's padded embedding) are blocked."""
    words = as_words(bitmask)
    live, live_rows = [], []
    for r, m in enumerate(rows):
        if m is None or m.is_stopped():
            write_packed_row(words, r, finished_packed)
        else:
            live.append(m)
            live_rows.append(r)
    fill_next_token_bitmask_batch(live, bitmask, live_rows)
    n = min(scores.shape[1], vocab_size)
    within = words[: len(rows), : bitmask_width(n)]
    if n % 32:  # tokens the logits do not have do not count
        within = within.copy()
        within[:, -1] &= np.int32((1 << (n % 32)) - 1)
    empty = np.flatnonzero(~within.any(axis=1))
    apply_token_bitmask_inplace(scores, bitmask[: len(rows)], vocab_size=n)
    return int(empty[0]) if empty.size else -1


def _step(m: Matcher | None, token: int) -> Matcher | None:
    """Advance one row by the token ``generate`` chose for it."""
    if m is None or m.is_stopped():
        return m  # finished or dead rows ignore what follows (padding)
    return m if m.advance(token) else _DEAD
