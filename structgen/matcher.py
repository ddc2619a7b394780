"""Compiled grammars and per-sequence matchers.

A :class:`CompiledGrammar` is the shared, thread-safe part: the lazy DFA and
the token index with its mask cache. A :class:`Matcher` is one sequence's
position in it; it is cheap to create and to copy.
"""

from __future__ import annotations

import operator
from typing import Any, Iterable

import numpy as np

from structgen.automaton.lazy_dfa import DEAD, LazyDFA
from structgen.errors import GrammarError
from structgen.grammar.ir import Grammar
from structgen.index.token_index import TokenIndex, TokenSpeller


class CompiledGrammar:
    """A grammar bound to a vocabulary. Create matchers with :meth:`matcher`."""

    def __init__(self, grammar: Grammar, vocab, *, max_states: int = 200_000) -> None:
        self.grammar = grammar
        self.vocab = vocab
        self.dfa = LazyDFA(grammar, max_states=max_states)
        if self.dfa.start == DEAD:
            raise GrammarError(
                "the grammar matches no output at all (its language is empty); "
                "check for contradictory constraints or a pattern that can never match"
            )
        self.index = TokenIndex(self.dfa, vocab)
        self._eos = frozenset(vocab.eos_ids)
        self._blocked = frozenset(vocab.special_ids) - self._eos
        self.nothing_allowed: np.ndarray = np.zeros((len(vocab.token_bytes) + 7) // 8, dtype=np.uint8)
        self.nothing_allowed.flags.writeable = False

    @property
    def notes(self) -> list[str]:
        """What the grammar does not enforce (lenient compilation)."""
        return self.grammar.notes

    def matcher(self) -> "Matcher":
        return Matcher(self)

    def stats(self) -> dict:
        """Sizes worth showing a user: IR nodes, DFA states and cached masks."""
        return {
            "rules": len(self.grammar.rules),
            "rule_families": len(self.grammar.families),
            "family_states_built": sum(f.built for f in self.grammar.families.values()),
            "ir_nodes": self.grammar.size(),
            "byte_classes": self.dfa.num_classes,
            "states_built": self.dfa.num_states,
            "masks_cached": self.index.cached_states,
            "vocab_size": len(self.vocab.token_bytes),
        }


class MatcherBase:
    """What every kind of matcher offers, derived from five primitives that
    subclasses define: ``allowed_bitmask``, ``cached_bitmask``, ``advance``,
    ``rollback`` and ``forced_bytes`` (plus ``grammar`` and ``is_stopped``)."""

    __slots__ = ()
    grammar: CompiledGrammar

    def allowed_bitmask(self) -> np.ndarray:
        raise NotImplementedError

    def cached_bitmask(self) -> np.ndarray | None:
        raise NotImplementedError

    def advance(self, token_id: int) -> bool:
        raise NotImplementedError

    def rollback(self, n: int = 1) -> None:
        raise NotImplementedError

    def forced_bytes(self) -> bytes:
        raise NotImplementedError

    def is_stopped(self) -> bool:
        raise NotImplementedError

    def allowed_mask(self) -> np.ndarray:
        """Boolean mask with one entry per token id."""
        n = len(self.grammar.vocab.token_bytes)
        return np.unpackbits(self.allowed_bitmask(), count=n, bitorder="little").view(bool)

    def allowed_token_ids(self) -> np.ndarray:
        return np.flatnonzero(self.allowed_mask())

    def fill_next_token_bitmask(self, bitmask: Any, index: int = 0) -> None:
        """Write this sequence's mask into row ``index`` of an int32 bitmask
        (see :func:`structgen.allocate_token_bitmask`). Bits past the
        tokenizer's vocabulary are cleared; after EOS no bit is set."""
        from structgen.bitmask import as_words, write_packed_row

        write_packed_row(as_words(bitmask), index, self.allowed_bitmask())

    def validate_tokens(self, token_ids: Iterable[int]) -> int:
        """How many of ``token_ids``, from the first, could be advanced in
        turn. The state is left as it was (speculative decoding asks this of
        draft tokens)."""
        taken = 0
        for token in token_ids:
            if not self.advance(token):
                break
            taken += 1
        self.rollback(taken)
        return taken

    def is_terminated(self) -> bool:
        """EOS was consumed (the name serving engines use for :meth:`is_stopped`)."""
        return self.is_stopped()

    def jump_forward_string(self) -> str:
        """:meth:`forced_bytes` as text, up to the last whole character
        (a serving engine appends it to the output and retokenizes)."""
        data = self.forced_bytes()
        for end in range(len(data), max(len(data) - 4, 0) - 1, -1):  # a UTF-8 character has at most 4 bytes
            try:
                return data[:end].decode("utf-8")
            except UnicodeDecodeError:
                continue
        return ""

    def forced_tokens(self) -> list[int]:
        """Tokens that spell the forced bytes, for jump-forward decoding.

        The forced bytes are split greedily into the longest vocabulary tokens.
        A final piece that some longer token starts with is left out, because the
        model might rather continue with that longer token.
        """
        data = self.forced_bytes()
        if not data:
            return []
        return TokenSpeller.of(self.grammar.vocab).greedy_tokens(data)


class Matcher(MatcherBase):
    """One sequence's progress through a compiled grammar.

    ``advance`` refuses a token that cannot continue a valid output and leaves
    the state unchanged; EOS is accepted only where the output is complete.
    After EOS the matcher is *stopped* and accepts nothing more.
    """

    __slots__ = ("grammar", "_state", "_history", "_stopped")

    def __init__(self, grammar: CompiledGrammar) -> None:
        self.grammar = grammar
        self._state = grammar.dfa.start
        self._history: list[tuple[int, bool]] = []
        self._stopped = False

    # ------------------------------------------------------------------ masks
    def allowed_bitmask(self) -> np.ndarray:
        """Packed mask (``np.uint8``, little bit order, bit ``i`` = token ``i``).
        Cached per state and shared, hence read-only."""
        if self._stopped:
            return self.grammar.nothing_allowed
        return self.grammar.index.packed_mask(self._state)

    def cached_bitmask(self) -> np.ndarray | None:
        """:meth:`allowed_bitmask` if it is already known, else ``None``
        (lets a batch compute the unknown ones in parallel first)."""
        if self._stopped:
            return self.grammar.nothing_allowed
        return self.grammar.index.cached_mask(self._state)

    # ------------------------------------------------------------------ steps
    def advance(self, token_id: int) -> bool:
        """Consume one token; ``False`` (state unchanged) if it is not allowed.
        Any integer type will do (numpy, a one-element torch tensor)."""
        if self._stopped:
            return False
        token_id = operator.index(token_id)
        g = self.grammar
        if token_id in g._eos:
            if not g.dfa.is_accepting(self._state):
                return False
            self._history.append((self._state, self._stopped))
            self._stopped = True
            return True
        if token_id in g._blocked or not 0 <= token_id < len(g.vocab.token_bytes):
            return False
        data = g.vocab.token_bytes[token_id]
        if not data:
            return False
        nxt = g.dfa.walk(self._state, data)
        if nxt == DEAD:
            return False
        self._history.append((self._state, self._stopped))
        self._state = nxt
        return True

    def advance_bytes(self, data: bytes) -> bool:
        """Consume raw bytes (not tokens); for tests and byte-level tools.
        All or nothing: on ``False`` the state is unchanged. Counts as one step
        for :meth:`rollback`."""
        if self._stopped:
            return False
        nxt = self.grammar.dfa.walk(self._state, data)
        if nxt == DEAD:
            return False
        self._history.append((self._state, self._stopped))
        self._state = nxt
        return True

    def rollback(self, n: int = 1) -> None:
        """Undo the last ``n`` successful steps."""
        if n < 0 or n > len(self._history):
            raise ValueError(f"cannot roll back {n} steps; only {len(self._history)} were taken")
        for _ in range(n):
            self._state, self._stopped = self._history.pop()

    def reset(self) -> None:
        self._state = self.grammar.dfa.start
        self._history.clear()
        self._stopped = False

    def copy(self) -> "Matcher":
        m = Matcher.__new__(Matcher)
        m.grammar = self.grammar
        m._state = self._state
        m._history = list(self._history)
        m._stopped = self._stopped
        return m

    # ----------------------------------------------------------------- status
    def is_accepting(self) -> bool:
        """The output so far is complete and valid (EOS would be allowed)."""
        return self._stopped or self.grammar.dfa.is_accepting(self._state)

    def is_stopped(self) -> bool:
        """EOS was consumed; nothing more is allowed."""
        return self._stopped

    @property
    def state(self) -> int:
        """The DFA state id (equal ids mean equal futures)."""
        return self._state

    @property
    def steps(self) -> int:
        return len(self._history)

    def forced_bytes(self) -> bytes:
        """The bytes every valid continuation starts with (empty if there is a choice)."""
        if self._stopped:
            return b""
        return self.grammar.dfa.forced_bytes(self._state)
