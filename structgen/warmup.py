"""Compile the numba kernels once, right after installing (``make`` runs
``python -m structgen.warmup``).

The compiled core takes about a minute to compile and is then loaded from
numba's on-disk cache in about a second; without this step the first
generation or test run would pay the minute. The automata of the string
formats (``email``, ``hostname``...) are cached on disk here too: built,
they cost up to a second each in every process that meets them. A small schema over a
vocabulary of single bytes and a few words reaches every kernel entry
point: rule interning, derivation, table growth, the trie walk, loop bytes,
loop splits, mask writing and applying a batch bitmask to logits.
"""

from __future__ import annotations

import time

_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "note": {"type": "string"},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
    },
    "required": ["name"],
}


def warm_up() -> None:
    # imported here: importing the compiled core is what compiles most of it
    from structgen.automaton import derivatives as core
    from structgen.compile import compile_json_schema
    from structgen.vocab import Vocabulary

    words = [b'{"name": "', b"hello", b"\xc3\xa9t\xc3\xa9", b'", "note": "', b"hi", b'", "tags": ["', b'a"', b"]}"]
    # Filler words, so that few enough tokens leave a string's loop for it
    # to be split (see structgen.index.loop_split).
    filler = [b"w%d" % i for i in range(1000)]
    tokens = [bytes([b]) for b in range(256)] + words + filler + [b""]
    vocab = Vocabulary.from_token_bytes(tokens, eos_ids=[len(tokens) - 1], name="warm-up")
    grammar = compile_json_schema(_SCHEMA, vocab, whitespace="flexible")
    # Entry points a small grammar does not need: a full transition row (the
    # byte-level API) and growing the store (bigger grammars; here nothing
    # is full enough to grow, so it changes nothing).
    grammar.dfa.complete_row(grammar.dfa.start)
    core.grow(grammar.dfa.store)
    matcher = grammar.matcher()
    for token in range(256, 256 + len(words)):
        matcher.allowed_mask()
        if not matcher.advance(token):
            raise RuntimeError(f"warm-up document refused at {tokens[token]!r}")
    if not matcher.is_accepting():
        raise RuntimeError("warm-up document not accepted")
    _warm_up_bitmask(grammar)


def _warm_up_bitmask(grammar) -> None:
    """The compiled loop that applies int32 bitmasks to CPU logits, for the
    logits dtypes models produce on the CPU."""
    import torch

    from structgen.bitmask import allocate_token_bitmask, apply_token_bitmask_inplace

    n = len(grammar.vocab.token_bytes)
    bitmask = allocate_token_bitmask(1, n)
    grammar.matcher().fill_next_token_bitmask(bitmask)
    for dtype in (torch.float32, torch.float64):
        apply_token_bitmask_inplace(torch.zeros(1, n, dtype=dtype), bitmask)


if __name__ == "__main__":
    from structgen.frontends.json_formats import store_format_cache

    start = time.perf_counter()
    print("structgen: compiling the numba kernels (about a minute, once)...", flush=True)
    warm_up()
    print(f"structgen: kernels compiled and cached in {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    written = store_format_cache()
    print(f"structgen: {written} string format automata built and cached in {time.perf_counter() - start:.0f} s")
