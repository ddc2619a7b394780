"""Token vocabularies: for every token id, the exact bytes it emits.

Constrained decoding works on bytes, so the first job is to know, for each token
id of a tokenizer, which bytes it adds to the output. Tokenizers store their
tokens in disguised forms:

* byte-level BPE (GPT-2, SmolLM2, Llama-3, Qwen) spells every byte as one
  printable character (``Ġ`` is the space, ``Ċ`` the newline);
* SentencePiece writes ``▁`` for a space and ``<0x0A>`` for a raw byte
  ("byte fallback"), and its decoder drops one space at the very start of the
  output (the leading-space rule: encoding adds a space prefix to the text);
* tiktoken-style vocabularies (mistral-common's Tekken) store the bytes directly,
  with the special tokens occupying the first ids.

For a ``transformers`` fast tokenizer the decoder pipeline stored in the
tokenizer itself (``backend_tokenizer.decoder``) says which of these applies;
:func:`Vocabulary.from_tokenizer` replays that pipeline on each token's string
instead of calling ``decode`` token by token, and refuses decoders whose output
is not a plain concatenation of per-token bytes (WordPiece's ``##`` joining,
BPE end-of-word suffixes, CTC), raising :class:`~structgen.errors.TokenizerError`.

Special and control tokens (BOS, EOS, padding, chat markers, ids with no token at
all) emit ``b""`` and are listed in ``special_ids``; they are never part of the
structured text. ``eos_ids`` is a subset of ``special_ids``. Any other token that
would emit nothing is also put in ``special_ids``: a token that makes no
progress must never be allowed.

Tokens that are invalid UTF-8 on their own (one byte of a multi-byte character)
are normal and kept as they are.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import TokenizerError

__all__ = ["Vocabulary", "bytes_to_unicode"]

# Names of tokens that end a sequence or a turn. A special token with one of these
# names counts as EOS in addition to ``tokenizer.eos_token_id``: chat models stop on
# several (Llama-3 ``<|eot_id|>`` and ``<|end_of_text|>``, Llama-3.1 also
# ``<|eom_id|>``, ChatML models ``<|im_end|>`` and ``<|endoftext|>``).
END_TOKEN_NAMES = (
    "</s>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<eos>",
    "<|return|>",
)


def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 byte-level table: byte value -> the printable character that
    stands for it. Printable Latin-1 bytes stand for themselves; the other 68
    bytes (controls, space, DEL, NBSP, soft hyphen...) get U+0100 onwards in
    byte order, so the space is ``Ġ`` (U+0120) and the newline ``Ċ``."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


def _byte_level_translation() -> dict[int, int]:
    """A ``str.translate`` table such that ``s.translate(T).encode("latin-1")``
    gives the bytes of a byte-level token, and raises UnicodeEncodeError when
    ``s`` holds a character outside the table (which the decoder then treats by
    emitting the token's UTF-8 as is)."""
    table = {ord(ch): b for b, ch in bytes_to_unicode().items()}
    # Latin-1 characters that are not in the table must not pass through
    # encode("latin-1"): send them above U+00FF so the encode fails.
    for cp in range(256):
        if cp not in table:
            table[cp] = 0xFFFF
    return table


_BYTE_LEVEL_T = _byte_level_translation()
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


class Vocabulary:
    """The bytes each token id emits, plus which ids are special and which end
    the sequence.

    Attributes:
        token_bytes: index = token id; ``b""`` for special/control tokens.
        special_ids: ids that are never part of structured text (special and
            control tokens, EOS, ids with no token, tokens emitting nothing).
        eos_ids: every id that ends generation; a subset of ``special_ids``.
        name: the tokenizer's name, for messages.
        kind: how the bytes were recovered: ``"byte_level"``,
            ``"sentencepiece"`` (``▁``/byte-fallback style), ``"tekken"``,
            ``"tiktoken"`` or ``"custom"``.
        strips_leading_space: the tokenizer's ``decode`` drops one space at the
            start of the whole output (SentencePiece rule). ``token_bytes`` keep
            that space: a token such as ``▁{`` emits ``b" {"`` wherever it is.
    """

    __slots__ = ("token_bytes", "special_ids", "eos_ids", "name", "kind", "strips_leading_space", "__weakref__")

    def __init__(
        self,
        token_bytes: list[bytes],
        special_ids: frozenset[int],
        eos_ids: tuple[int, ...],
        name: str,
        kind: str = "custom",
        strips_leading_space: bool = False,
    ) -> None:
        self.token_bytes = token_bytes
        self.special_ids = special_ids
        self.eos_ids = eos_ids
        self.name = name
        self.kind = kind
        self.strips_leading_space = strips_leading_space

    def __len__(self) -> int:
        return len(self.token_bytes)

    def __repr__(self) -> str:
        return (
            f"Vocabulary({self.name!r}, {len(self)} tokens, kind={self.kind}, "
            f"{len(self.special_ids)} special, eos_ids={list(self.eos_ids)})"
        )

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The concatenated bytes of ``ids`` (special tokens emit nothing)."""
        tb = self.token_bytes
        return b"".join(tb[i] for i in ids)

    def with_eos_ids(self, eos_ids: Iterable[int]) -> Vocabulary:
        """A copy whose EOS set is exactly ``eos_ids`` (e.g. a model's
        ``generation_config.eos_token_id``); the token bytes are shared."""
        eos = _check_ids(eos_ids, len(self), "eos_ids")
        return Vocabulary(
            self.token_bytes,
            self.special_ids | frozenset(eos),
            eos,
            self.name,
            self.kind,
            self.strips_leading_space,
        )

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_token_bytes(
        cls,
        token_bytes: Sequence[bytes],
        *,
        eos_ids: Iterable[int],
        special_ids: Iterable[int] = (),
        name: str = "custom",
    ) -> Vocabulary:
        """A vocabulary from a list of bytes per token id. Special and EOS ids
        are blanked to ``b""``; EOS ids are added to ``special_ids``; tokens
        with no bytes become special."""
        tb = [bytes(b) for b in token_bytes]
        n = len(tb)
        eos = _check_ids(eos_ids, n, "eos_ids")
        special = set(_check_ids(special_ids, n, "special_ids")) | set(eos)
        return cls._finish(tb, special, eos, name, "custom", False)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> Vocabulary:
        """The vocabulary of a ``transformers`` tokenizer (fast or
        SentencePiece-based slow), a ``tokenizers.Tokenizer``, a mistral-common
        tokenizer (Tekken or SentencePiece, bare or wrapped in ``MistralTokenizer``
        or transformers' ``MistralCommonBackend``), a ``sentencepiece``
        processor or a ``tiktoken`` encoding.

        The result is cached on the tokenizer object: calling again is free, and
        the cache is rebuilt if the tokenizer's size changed (tokens added).
        Raises :class:`TokenizerError` when the bytes cannot be recovered.
        """
        signature = _size_signature(tokenizer)
        try:
            hit = _CACHE.get(tokenizer)
        except TypeError:  # not hashable / not weak-referenceable: no caching
            hit = None
        if hit is not None and hit[0] == signature:
            return hit[1]
        vocab = _build(tokenizer)
        try:
            _CACHE[tokenizer] = (signature, vocab)
        except TypeError:
            pass
        return vocab

    @classmethod
    def _finish(
        cls,
        token_bytes: list[bytes],
        special: set[int],
        eos: Iterable[int],
        name: str,
        kind: str,
        strips_leading_space: bool,
    ) -> Vocabulary:
        n = len(token_bytes)
        eos_t = tuple(i for i in dict.fromkeys(eos) if 0 <= i < n)
        special = {i for i in special if 0 <= i < n}
        special.update(eos_t)
        for i in special:
            token_bytes[i] = b""
        # A token emitting nothing can never make progress: never allow it.
        special.update([i for i, b in enumerate(token_bytes) if not b])
        return cls(token_bytes, frozenset(special), eos_t, name, kind, strips_leading_space)


_CACHE: weakref.WeakKeyDictionary[Any, tuple[Any, Vocabulary]] = weakref.WeakKeyDictionary()


def _check_ids(ids: Iterable[int], n: int, what: str) -> tuple[int, ...]:
    if isinstance(ids, int):
        ids = (ids,)
    out = tuple(dict.fromkeys(int(i) for i in ids))
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise ValueError(f"{what} {bad} are outside the vocabulary (0..{n - 1})")
    return out


def _size_signature(tok: Any) -> Any:
    try:
        return len(tok)
    except Exception:
        return None


# ---------------------------------------------------------------------- dispatch


def _name_of(tok: Any) -> str:
    for attr in ("name_or_path", "_file_path", "file_path", "name"):
        try:
            value = getattr(tok, attr, None)
        except Exception:
            value = None
        if value:
            return str(value)
    return type(tok).__name__


def _build(tok: Any) -> Vocabulary:
    name = _name_of(tok)
    inner = _unwrap_mistral(tok)
    if inner is not tok:
        return _build_mistral_common(inner, name)
    if hasattr(tok, "num_special_tokens") and hasattr(tok, "id_to_byte_piece"):
        return _build_tekken(tok, name)
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        return _build_from_tokenizers(backend, name, hf=tok)
    import tokenizers

    if isinstance(tok, tokenizers.Tokenizer):
        return _build_from_tokenizers(tok, name, hf=None)
    sp = _sentencepiece_processor(tok)
    if sp is not None:
        return _build_sentencepiece(sp, name, hf=tok if hasattr(tok, "sp_model") else None)
    if hasattr(tok, "_mergeable_ranks") and hasattr(tok, "decode_single_token_bytes"):
        return _build_tiktoken(tok, name)
    raise TokenizerError(
        f"tokenizer {name!r} ({type(tok).__module__}.{type(tok).__qualname__}) is not a kind structgen can read: "
        "pass a transformers tokenizer (fast, or SentencePiece-based), a tokenizers.Tokenizer, a mistral-common "
        "tokenizer, a sentencepiece processor or a tiktoken encoding, or build the vocabulary yourself with "
        "Vocabulary.from_token_bytes"
    )


def _unwrap_mistral(tok: Any) -> Any:
    """transformers' MistralCommonBackend -> MistralTokenizer -> inner tokenizer."""
    obj = tok
    if type(obj).__name__ == "MistralCommonBackend" and hasattr(obj, "tokenizer"):
        obj = obj.tokenizer
    instruct = getattr(obj, "instruct_tokenizer", None)
    if instruct is not None and hasattr(instruct, "tokenizer"):
        obj = instruct.tokenizer
    return obj


def _build_mistral_common(inner: Any, name: str) -> Vocabulary:
    if hasattr(inner, "num_special_tokens") and hasattr(inner, "id_to_byte_piece"):
        return _build_tekken(inner, name)
    sp = _sentencepiece_processor(inner)
    if sp is not None:
        return _build_sentencepiece(sp, name, hf=None)
    raise TokenizerError(f"tokenizer {name!r}: unknown mistral-common tokenizer type {type(inner).__name__}")


# ------------------------------------------------------------- tokenizers (fast)


def _build_from_tokenizers(backend: Any, name: str, hf: Any) -> Vocabulary:
    """From a ``tokenizers.Tokenizer``: its vocabulary strings (model vocab, then
    added tokens by id) run through a replay of its decoder pipeline."""
    if backend.decoder is None:
        raise TokenizerError(
            f"tokenizer {name!r} has no decoder: its decode() joins tokens with spaces, so the bytes a token "
            "emits are not defined"
        )
    decoder = json.loads(backend.decoder.__getstate__())

    strings: dict[int, str] = {i: s for s, i in backend.get_vocab(with_added_tokens=False).items()}
    special: set[int] = set()
    for i, added in backend.get_added_tokens_decoder().items():
        # tokenizers decodes an added token through the same decoder as the
        # others, starting from id_to_token: the content, or for a
        # "normalized" added token its normalized form (a SentencePiece
        # normalizer turns "<think>" into "▁<think>", which decodes as " <think>").
        s = backend.id_to_token(i)
        strings[i] = added.content if s is None else s
        if added.special:
            special.add(i)
    if hf is not None:
        try:
            special.update(int(i) for i in hf.all_special_ids or () if i is not None)
        except Exception:
            pass
    n = max(strings) + 1 if strings else 0
    if hf is not None:
        try:
            n = max(n, len(hf))
        except Exception:
            pass

    pieces, kind, strips = _replay_decoder(decoder, list(strings.values()), name)
    token_bytes = [b""] * n
    for i, b in zip(strings.keys(), pieces):
        token_bytes[i] = b
    if len(strings) < n:  # holes in the id space: ids with no token at all
        special.update(set(range(n)).difference(strings.keys()))

    eos = _eos_ids_hf(hf, strings, special)
    return Vocabulary._finish(token_bytes, special, eos, name, kind, strips)


def _replay_decoder(decoder: dict, texts: list[str], name: str) -> tuple[list[bytes], str, bool]:
    """Replay a tokenizers decoder pipeline on each token string separately.

    Steps that act per token (Replace, ByteFallback, ByteLevel, Metaspace,
    per-token Strip) are applied to every token. Once the tokens are fused into
    one string (Fuse, ByteLevel), only a Strip of leading spaces may follow: it
    acts on the start of the whole output, which is the SentencePiece
    leading-space rule, reported as ``strips_leading_space``. Anything that is
    not a concatenation of per-token bytes raises TokenizerError.
    """
    steps = decoder["decoders"] if decoder.get("type") == "Sequence" else [decoder]
    # Each item: str (still text) or bytes (already raw bytes).
    items: list[str | bytes] = list(texts)
    fused = False
    strips = False
    kind = None
    for step in steps:
        typ = step.get("type")
        if typ == "ByteLevel":
            out: list[str | bytes] = []
            for s in items:
                if isinstance(s, bytes):
                    out.append(s)
                    continue
                try:
                    out.append(s.translate(_BYTE_LEVEL_T).encode("latin-1"))
                except UnicodeEncodeError:
                    # tokenizers emits a token with a character outside the
                    # table as its plain UTF-8.
                    out.append(s.encode("utf-8"))
            items = out
            fused = True
            kind = kind or "byte_level"
        elif fused:
            if typ == "Strip" and step.get("stop", 0) == 0 and step.get("content") == " " and step.get("start", 0) <= 1:
                strips = strips or step.get("start", 0) == 1
            elif typ == "Fuse":
                pass
            else:
                raise TokenizerError(
                    f"tokenizer {name!r}: decoder step {typ} after the tokens are joined is not supported "
                    f"(decoder: {json.dumps(decoder, ensure_ascii=False)[:300]})"
                )
        elif typ == "Replace":
            pattern = step.get("pattern", {})
            if "String" not in pattern:
                raise TokenizerError(f"tokenizer {name!r}: Replace decoder with a regex pattern is not supported")
            old, new = pattern["String"], step.get("content", "")
            items = [s.replace(old, new) if isinstance(s, str) else s for s in items]
            if old == "▁" and new == " ":
                kind = kind or "sentencepiece"
        elif typ == "ByteFallback":
            out = []
            for s in items:
                if isinstance(s, str) and len(s) == 6:
                    m = _BYTE_TOKEN.fullmatch(s)
                    out.append(bytes([int(m.group(1), 16)]) if m else s)
                else:
                    out.append(s)
            items = out
            kind = kind or "sentencepiece"
        elif typ == "Fuse":
            fused = True
        elif typ == "Strip":
            start, stop, content = step.get("start", 0), step.get("stop", 0), step.get("content", " ")
            items = [_strip_token(s, content, start, stop) if isinstance(s, str) else s for s in items]
        elif typ == "Metaspace":
            repl = step.get("replacement", "▁")
            items = [s.replace(repl, " ") if isinstance(s, str) else s for s in items]
            scheme = step.get("prepend_scheme")
            if scheme is None:  # older serialisation
                scheme = "always" if step.get("add_prefix_space", True) else "never"
            # Metaspace drops the space that starts the first token: the
            # leading-space rule.
            strips = strips or scheme != "never"
            kind = kind or "sentencepiece"
        else:
            why = {
                "WordPiece": "WordPiece joins tokens with spaces and strips '##' prefixes",
                "BPEDecoder": "the BPE decoder turns end-of-word suffixes into spaces",
                "CTC": "the CTC decoder drops repeated tokens",
            }.get(str(typ), "unknown decoder kind")
            raise TokenizerError(
                f"tokenizer {name!r}: cannot recover token bytes from a {typ} decoder ({why}); "
                "build the vocabulary yourself with Vocabulary.from_token_bytes"
            )
    pieces = [s if isinstance(s, bytes) else s.encode("utf-8") for s in items]
    return pieces, kind or "custom", strips


def _strip_token(s: str, content: str, start: int, stop: int) -> str:
    i = 0
    while i < start and i < len(s) and s[i] == content:
        i += 1
    j = len(s)
    k = 0
    while k < stop and j > i and s[j - 1] == content:
        j -= 1
        k += 1
    return s[i:j]


def _eos_ids_hf(hf: Any, strings: dict[int, str], special: set[int]) -> list[int]:
    eos: list[int] = []
    if hf is not None:
        try:
            eid = hf.eos_token_id
        except Exception:
            eid = None
        if isinstance(eid, int):
            eos.append(eid)
        elif isinstance(eid, (list, tuple)):
            eos.extend(int(i) for i in eid)
    by_name = {s: i for i, s in strings.items() if i in special}
    for end in END_TOKEN_NAMES:
        if end in by_name:
            eos.append(by_name[end])
    return eos[:1] + sorted(set(eos[1:]) - set(eos[:1]))


# ----------------------------------------------------------------- sentencepiece


def _sentencepiece_processor(tok: Any) -> Any:
    try:
        import sentencepiece as spm
    except ImportError:
        return None
    for cand in (tok, getattr(tok, "sp_model", None), getattr(tok, "_model", None)):
        if isinstance(cand, spm.SentencePieceProcessor):
            return cand
    return None


def _build_sentencepiece(sp: Any, name: str, hf: Any) -> Vocabulary:
    """From a SentencePiece model: control/unknown/unused pieces are special,
    byte pieces ``<0xHH>`` are one raw byte, ``▁`` is a space."""
    n_sp = sp.get_piece_size()
    pieces = sp.id_to_piece(list(range(n_sp)))
    special: set[int] = set()
    token_bytes: list[bytes] = []
    for i, piece in enumerate(pieces):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            special.add(i)
            token_bytes.append(b"")
        elif sp.is_byte(i):
            token_bytes.append(bytes([int(piece[3:5], 16)]))
        else:
            token_bytes.append(piece.replace("▁", " ").encode("utf-8"))
    # SentencePiece's decoder drops the space of the dummy prefix it adds when
    # encoding; see whether this model does.
    try:
        strips = sp.decode_pieces(["▁a"]) == "a"
    except Exception:
        strips = True
    eos: list[int] = []
    if hf is not None:
        added = getattr(hf, "_added_tokens_decoder", None) or {}
        for i, tokobj in added.items():
            while i >= len(token_bytes):
                token_bytes.append(b"")
                special.add(len(token_bytes) - 1)
            if getattr(tokobj, "special", False):
                special.add(i)
            elif i >= n_sp:
                token_bytes[i] = str(tokobj).encode("utf-8")
                special.discard(i)
        try:
            special.update(i for i in hf.all_special_ids if i is not None)
        except Exception:
            pass
        if isinstance(getattr(hf, "eos_token_id", None), int):
            eos.append(hf.eos_token_id)
    if sp.eos_id() >= 0:
        eos.append(sp.eos_id())
    return Vocabulary._finish(token_bytes, special, eos, name, "sentencepiece", strips)


# ------------------------------------------------------------- tekken / tiktoken


def _invert_ranks(ranks: dict[bytes, int], size: int, name: str) -> list[bytes]:
    out: list[bytes | None] = [None] * size
    for b, r in ranks.items():
        if r < size:
            out[r] = b
    missing = [r for r, b in enumerate(out) if b is None]
    if missing:
        raise TokenizerError(f"tokenizer {name!r}: ranks {missing[:5]} have no bytes")
    return out  # type: ignore[return-value]


def _build_tekken(tok: Any, name: str) -> Vocabulary:
    """Tekken: ids below ``num_special_tokens`` are special (control) tokens;
    id ``k`` above them is tiktoken rank ``k - num_special_tokens``."""
    n_special = tok.num_special_tokens
    n = tok.n_words
    ranks = getattr(tok, "_tekken_token2id_nospecial", None)
    if ranks is None:
        ranks = getattr(getattr(tok, "_model", None), "_mergeable_ranks", None)
    if ranks is not None:
        inner = _invert_ranks(ranks, n - n_special, name)
    else:  # public API fallback
        inner = [tok.id_to_byte_piece(i) for i in range(n_special, n)]
    token_bytes = [b""] * n_special + list(inner)
    special = set(range(n_special))
    eos = []
    try:
        eos.append(tok.eos_id)
    except Exception:
        pass
    return Vocabulary._finish(token_bytes, special, eos, name, "tekken", False)


def _build_tiktoken(enc: Any, name: str) -> Vocabulary:
    ranks = enc._mergeable_ranks
    specials: dict[str, int] = dict(getattr(enc, "_special_tokens", {}) or {})
    n = max([enc.n_vocab, len(ranks), *(i + 1 for i in specials.values())])
    token_bytes: list[bytes] = [b""] * n
    for b, r in ranks.items():
        token_bytes[r] = b
    special = set(specials.values())
    special.update(i for i in range(n) if not token_bytes[i])
    eos = []
    eot = getattr(enc, "eot_token", None)
    if isinstance(eot, int):
        eos.append(eot)
    for end in END_TOKEN_NAMES:
        if end in specials:
            eos.append(specials[end])
    return Vocabulary._finish(token_bytes, special, eos, name, "tiktoken", False)
