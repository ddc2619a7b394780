"""Batch token bitmasks in the layout serving engines share.

vLLM, SGLang, xgrammar and llguidance all pass allowed tokens as an int32
tensor of shape ``(batch, ceil(vocab / 32))``: bit ``t % 32`` of word
``t // 32`` is set when token ``t`` is allowed. One such tensor, allocated
once and refilled every step, serves every backend, and it is 32 times
smaller than a bool mask, which matters when it crosses to a GPU.

A matcher's cached mask is a packed ``uint8`` array in little bit order
(bit ``t % 8`` of byte ``t // 8``). On a little-endian machine those bytes
*are* the int32 words, so filling a row is one copy of at most
``vocab / 8`` bytes, with no per-token work in Python.

- :func:`allocate_token_bitmask` makes the tensor (pinned when CUDA is
  there, so the copy to the device can overlap).
- :func:`fill_next_token_bitmask_batch` fills many rows. Masks of states
  seen before are copied at once; states never seen before are computed in
  a thread pool first. Only the token-trie walk releases the GIL (the lazy
  DFA's derivatives share one store per grammar and hold it), so threads pay
  where several rows need cold masks of different grammars.
- :func:`apply_token_bitmask_inplace` sets the logits of disallowed tokens
  to ``-inf`` on the logits' own device: a compiled loop over the words for
  CPU ``float32``/``float64`` logits, tensor ops elsewhere (CUDA, ``bfloat16``).
  No bool array of the vocabulary's size is built on the host.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
import torch
from numba import njit

__all__ = [
    "allocate_token_bitmask",
    "apply_token_bitmask_inplace",
    "bitmask_width",
    "fill_next_token_bitmask_batch",
    "write_packed_row",
]

if sys.byteorder != "little":  # pragma: no cover - every platform torch ships for is little-endian
    raise ImportError("structgen's bitmasks assume a little-endian machine")


def bitmask_width(vocab_size: int) -> int:
    """Words per row: ``ceil(vocab_size / 32)``."""
    return (int(vocab_size) + 31) // 32


def allocate_token_bitmask(batch_size: int, vocab_size: int) -> torch.Tensor:
    """An int32 CPU tensor ``(batch_size, ceil(vocab_size / 32))`` with every
    bit set (every token allowed). Pinned when CUDA is available, so
    :func:`apply_token_bitmask_inplace` copies it to the GPU asynchronously."""
    if batch_size < 0 or vocab_size < 1:
        raise ValueError(f"need batch_size >= 0 and vocab_size >= 1, got {batch_size} and {vocab_size}")
    pin = torch.cuda.is_available()
    return torch.full((batch_size, bitmask_width(vocab_size)), -1, dtype=torch.int32, pin_memory=pin)


def as_words(bitmask: Any) -> np.ndarray:
    """The bitmask as a 2-D int32 numpy array sharing its memory (a 1-D
    bitmask is one row)."""
    if isinstance(bitmask, torch.Tensor):
        if bitmask.device.type != "cpu":
            raise ValueError(
                f"fill the bitmask on the CPU (got a {bitmask.device.type} tensor); "
                "apply_token_bitmask_inplace moves it to the logits' device"
            )
        if bitmask.dtype != torch.int32:
            raise TypeError(f"the bitmask must be int32, got {bitmask.dtype}")
        words = bitmask.numpy()
    else:
        words = np.asarray(bitmask)
        if words.dtype != np.int32:
            raise TypeError(f"the bitmask must be int32, got {words.dtype}")
    if words.ndim == 1:
        words = words[None, :]
    if words.ndim != 2 or not words.flags.c_contiguous or not words.flags.writeable:
        raise ValueError("the bitmask must be a writable, contiguous (batch, words) array")
    return words


def write_packed_row(words: np.ndarray, row: int, packed: np.ndarray | None) -> None:
    """Copy a packed ``uint8`` mask into row ``row`` of ``words``; the bits
    past the mask (tokens the tokenizer does not have) are cleared. ``None``
    clears the row: nothing is allowed."""
    target = words[row].view(np.uint8)
    n = 0
    if packed is not None:
        n = min(target.shape[0], packed.shape[0])
        target[:n] = packed[:n]
    target[n:] = 0


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="structgen-mask")
        return _POOL


def fill_next_token_bitmask_batch(
    matchers: Sequence[Any],
    bitmask: Any,
    indices: Sequence[int] | None = None,
    *,
    threads: int | None = None,
) -> None:
    """Fill row ``indices[i]`` (default ``i``) of ``bitmask`` with the mask of
    ``matchers[i]``. A ``None`` matcher leaves its row as it is.

    Masks already cached are copied in order; the rest are computed first,
    on up to ``threads`` threads (default: one per core; ``1``: in this
    thread), each distinct state once."""
    words = as_words(bitmask)
    rows = range(len(matchers)) if indices is None else [int(i) for i in indices]
    if len(rows) != len(matchers):
        raise ValueError(f"{len(matchers)} matchers but {len(rows)} row indices")
    cold: dict[tuple[int, Any], Any] = {}
    waiting: list[tuple[Any, int]] = []
    for m, r in zip(matchers, rows):
        if m is None:
            continue
        packed = m.cached_bitmask()
        if packed is None:
            cold.setdefault((id(m.grammar), m.state), m)
            waiting.append((m, r))
        else:
            write_packed_row(words, r, packed)
    if not waiting:
        return
    workers = min(len(cold), threads or os.cpu_count() or 1)
    if workers > 1:
        # Computing caches the mask; the loop below then finds it.
        list(_pool().map(lambda m: m.allowed_bitmask(), list(cold.values())))
    for m, r in waiting:
        write_packed_row(words, r, m.allowed_bitmask())


@njit(cache=True, nogil=True)
def _mask_rows(logits, words, rows, vocab_width):  # pragma: no cover - compiled
    """Set ``logits[r, t] = -inf`` where bit ``t`` of ``words[r]`` is clear,
    and for every column ``t >= vocab_width``."""
    n_cols = logits.shape[1]
    limit = min(n_cols, vocab_width)
    for k in range(rows.shape[0]):
        r = rows[k]
        for w in range((limit + 31) // 32):
            word = words[r, w]
            if word == -1:
                continue
            base = w * 32
            span = min(32, limit - base)
            if word == 0:  # the common case outside strings: a plain store loop the compiler vectorizes
                for b in range(span):
                    logits[r, base + b] = -np.inf
                continue
            for b in range(span):
                if (word >> b) & 1 == 0:
                    logits[r, base + b] = -np.inf
        for t in range(limit, n_cols):
            logits[r, t] = -np.inf


def apply_token_bitmask_inplace(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    indices: Sequence[int] | torch.Tensor | None = None,
    *,
    vocab_size: int | None = None,
) -> None:
    """Set ``logits[i, t]`` to ``-inf`` for every token ``t`` the bitmask does
    not allow, in place, on the logits' device.

    ``logits``: ``(batch, n)`` (or ``(n,)``), CPU or CUDA. ``bitmask``: int32
    ``(batch, words)``, on any device (a pinned CPU bitmask is copied with
    ``non_blocking``). ``indices``: the rows to mask, of both tensors (default:
    all). Columns at or past ``vocab_size`` (default ``words * 32``) are never
    allowed: models pad their embedding matrix beyond the tokenizer."""
    if logits.dim() == 1:
        if indices is not None:
            raise ValueError("indices need 2-D logits")
        apply_token_bitmask_inplace(logits.unsqueeze(0), bitmask.reshape(1, -1), vocab_size=vocab_size)
        return
    if bitmask.dim() == 1:
        bitmask = bitmask.unsqueeze(0)
    if bitmask.dtype != torch.int32:
        raise TypeError(f"the bitmask must be int32, got {bitmask.dtype}")
    if bitmask.shape[0] < logits.shape[0] and indices is None:
        raise ValueError(f"bitmask has {bitmask.shape[0]} rows for {logits.shape[0]} rows of logits")
    width = bitmask.shape[1] * 32 if vocab_size is None else min(int(vocab_size), bitmask.shape[1] * 32)
    rows = _row_indices(indices, logits.shape[0])
    if (
        logits.device.type == "cpu"
        and bitmask.device.type == "cpu"
        and logits.dtype in (torch.float32, torch.float64)
        and logits.is_contiguous()
    ):
        _mask_rows(logits.numpy(), bitmask.contiguous().numpy(), rows, width)
        return
    _apply_on_device(logits, bitmask, rows, width)


def _row_indices(indices: Any, batch: int) -> np.ndarray:
    if indices is None:
        return np.arange(batch, dtype=np.int64)
    if isinstance(indices, torch.Tensor):
        indices = indices.cpu().numpy()
    rows = np.asarray(indices, dtype=np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= batch):
        raise IndexError(f"row indices must be in [0, {batch})")
    return rows


_SHIFTS: dict[torch.device, torch.Tensor] = {}


def _apply_on_device(logits: torch.Tensor, bitmask: torch.Tensor, rows: np.ndarray, width: int) -> None:
    """Tensor ops on the logits' device: the int32 words travel, the bits are
    unpacked there."""
    device = logits.device
    if bitmask.device != device:
        bitmask = bitmask.to(device, non_blocking=True)
    shifts = _SHIFTS.get(device)
    if shifts is None:
        shifts = _SHIFTS[device] = torch.arange(32, dtype=torch.int32, device=device)
    every_row = rows.shape[0] == logits.shape[0] and bool((rows == np.arange(rows.shape[0])).all())
    if every_row:
        words, part = bitmask[: logits.shape[0]], logits
    else:
        select = torch.from_numpy(rows).to(device, non_blocking=True)
        words, part = bitmask.index_select(0, select), logits.index_select(0, select)
    limit = min(logits.shape[1], width)
    blocked = ((words.unsqueeze(-1) >> shifts) & 1).view(words.shape[0], -1)[:, :limit] == 0
    part[:, :limit].masked_fill_(blocked, float("-inf"))
    part[:, limit:] = float("-inf")
    if not every_row:
        logits.index_copy_(0, select, part)
