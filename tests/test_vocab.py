"""Vocabulary: token id -> exact bytes, checked against the tokenizers' own
decode and encode on real vocabularies (Llama-3, SmolLM2, Mistral SentencePiece,
Tekken)."""

from __future__ import annotations

import functools
import random
import re

import pytest

from structgen.errors import TokenizerError
from structgen.vocab import Vocabulary, bytes_to_unicode

from . import tokenizers as T

NAMES = list(T.ALL)

# ----------------------------------------------------------------- helpers


def vocab_of(name: str) -> Vocabulary:
    return Vocabulary.from_tokenizer(T.ALL[name]())


def decode(name: str, ids: list[int]) -> str:
    """The tokenizer's own decoding of ``ids`` (no clean-up of spaces)."""
    tok = T.ALL[name]()
    if name == "tekken":
        return tok.decode(ids)
    return tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def encode(name: str, text: str) -> list[int]:
    """The tokenizer's encoding of ``text``, without BOS/EOS."""
    tok = T.ALL[name]()
    if name == "tekken":
        return tok.encode(text, bos=False, eos=False)
    return tok.encode(text, add_special_tokens=False)


def assert_same_text(name: str, ours: bytes, decoded: str, context) -> None:
    """``ours`` (our bytes) must be what the tokenizer decoded.

    Valid UTF-8 must match exactly. Invalid UTF-8 (a random sequence cut in the
    middle of a character) is compared after ``errors="replace"`` decoding:
    byte-level BPE (from_utf8_lossy over all bytes) and tiktoken (Python's
    decode with errors="replace") replace each maximal invalid subsequence by
    one U+FFFD exactly as Python does, so they must still match exactly.
    (SentencePiece byte fallback differs: see ``sentencepiece_text``.)
    """
    try:
        text = ours.decode("utf-8")
    except UnicodeDecodeError:
        text = ours.decode("utf-8", errors="replace")
    assert text == decoded, context


def sentencepiece_text(tok, v: Vocabulary, ids: list[int]) -> str:
    """What tokenizers' SentencePiece decoder makes of our bytes.

    Its ByteFallback step decodes each run of consecutive ``<0xHH>`` tokens
    together: a run that is valid UTF-8 becomes its text, an invalid run
    becomes one U+FFFD *per byte token*, valid bytes included (``<0xB0><0x6C>``
    gives two U+FFFD, not U+FFFD + "l"). Other tokens are always valid UTF-8.
    Which ids are byte tokens comes from the tokenizer's own token strings.
    """
    pieces = tok.convert_ids_to_tokens(ids)
    out: list[str] = []
    run: list[bytes] = []

    def flush():
        data = b"".join(run)
        try:
            out.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            out.append("\ufffd" * len(run))
        run.clear()

    for i, piece in zip(ids, pieces):
        if re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
            run.append(v.token_bytes[i])
        else:
            flush()
            out.append(v.token_bytes[i].decode("utf-8"))
    flush()
    return "".join(out)


def random_ids(vocab: Vocabulary, rng: random.Random, k: int) -> list[int]:
    n = len(vocab)
    out = []
    while len(out) < k:
        i = rng.randrange(n)
        if i not in vocab.special_ids:
            out.append(i)
    return out


_PIECES = [
    # ASCII words, digits, JSON punctuation
    "the", " the", "Hello", " world", "x", "A", "42", "3.14", "-7", "1e10", "{", "}", "[", "]", ":", ",", '"',
    '{"a": 1}', "null", "true", "\\", "\\n", "'", "<", ">", "/", "#", "@", "_", "~", "`", "%", "&", "|",
    # whitespace
    " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", " \n", "\n  ",
    # accents and other scripts
    "é", "ñ", "ü", "ø", "Å", "ç", "naïve", "café", "Ωμέγα", "Привет", "עברית", "العربية", "हिन्दी", "ß",
    # CJK
    "日本語", "中文", "한국어", "漢", "ひらがな",
    # emoji, including multi-code-point ones
    "😀", "🎉", "👩‍💻", "🇫🇷", "👍🏽", "❤️",
    # symbols, invisible and rare characters
    "€", "™", "→", "∑", "\u00a0", "\u200b", "\u00ad", "\ufeff", "\x00", "\x1b", "\x7f", "\ufffd",
]


def random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.8:
            parts.append(rng.choice(_PIECES))
        else:
            # any code point, surrogates excluded: exercises byte fallback and
            # tokens that are parts of characters
            while True:
                cp = rng.choice((rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xFFFF), rng.randint(0x10000, 0x10FFFF)))
                if not 0xD800 <= cp <= 0xDFFF:
                    break
            parts.append(chr(cp))
    return "".join(parts)


# ------------------------------------------------------------- per tokenizer

EXPECTED = {
    # name: (len, kind, strips_leading_space, eos_ids, special id range)
    "llama3": (128256, "byte_level", False, (128009, 128001), range(128000, 128256)),
    "smollm2": (49152, "byte_level", False, (2, 0), range(0, 17)),
    "mistral_sp": (32000, "sentencepiece", True, (2,), range(0, 3)),
    "tekken": (131072, "tekken", False, (2,), range(0, 1000)),
}


@pytest.mark.parametrize("name", NAMES)
def test_shape_special_and_eos(name):
    v = vocab_of(name)
    size, kind, strips, eos, special = EXPECTED[name]
    assert len(v) == len(v.token_bytes) == size
    assert v.kind == kind
    assert v.strips_leading_space is strips
    assert v.eos_ids == eos
    assert v.special_ids == frozenset(special)
    assert set(v.eos_ids) <= v.special_ids
    assert all(v.token_bytes[i] == b"" for i in v.special_ids)
    assert all(v.token_bytes[i] for i in range(size) if i not in v.special_ids)
    assert all(isinstance(b, bytes) for b in v.token_bytes)


def test_special_token_names():
    """The EOS ids are the tokens one expects by name."""
    llama = T.llama3()
    assert llama.convert_ids_to_tokens([128009, 128001]) == ["<|eot_id|>", "<|end_of_text|>"]
    smol = T.smollm2()
    assert smol.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert smol.eos_token_id == 2
    sp = T.mistral_sp()
    assert sp.convert_ids_to_tokens([0, 1, 2]) == ["<unk>", "<s>", "</s>"]
    tek = T.tekken()
    assert (tek.bos_id, tek.eos_id, tek.num_special_tokens) == (1, 2, 1000)


@pytest.mark.parametrize("name", NAMES)
def test_random_token_sequences_match_decode(name):
    """Random non-special token sequences: our bytes == the tokenizer's decode."""
    v = vocab_of(name)
    rng = random.Random(f"ids-{name}")
    for _ in range(300):
        ids = random_ids(v, rng, rng.randint(1, 20))
        ours = v.decode_bytes(ids)
        decoded = decode(name, ids)
        if name == "mistral_sp":
            expected = sentencepiece_text(T.mistral_sp(), v, ids)
            if expected.startswith(" "):
                # SentencePiece leading-space rule: encoding adds a space in
                # front of the text (the "dummy prefix"), so decode drops one
                # space at the very start of its output; the token itself
                # still emits it.
                assert v.strips_leading_space
                expected = expected[1:]
            assert expected == decoded, (ids, ours, decoded)
        else:
            assert_same_text(name, ours, decoded, (ids, ours, decoded))


def test_leading_space_rule_sentencepiece():
    """The first token keeps its space in token_bytes; only decode() of a
    sequence that *starts* with it drops the space. A token before it keeps
    the space in the decoded text."""
    tok = T.mistral_sp()
    v = vocab_of("mistral_sp")
    brace = tok.convert_tokens_to_ids("▁{")
    a = tok.convert_tokens_to_ids("a")
    assert v.token_bytes[brace] == b" {"
    assert tok.decode([brace]) == "{"
    assert tok.decode([a, brace]) == "a {"
    assert v.decode_bytes([a, brace]) == b"a {"
    newline = tok.convert_tokens_to_ids("<0x0A>")
    assert v.token_bytes[newline] == b"\n"
    assert v.token_bytes[tok.convert_tokens_to_ids("<0xE6>")] == b"\xe6"


def test_random_sequences_after_a_prefix_sentencepiece():
    """The same check as above with no leading-space rule involved: put a
    token without space in front, and decode must give its text followed by
    exactly our bytes."""
    tok = T.mistral_sp()
    v = vocab_of("mistral_sp")
    a = tok.convert_tokens_to_ids("a")
    rng = random.Random("prefix")
    for _ in range(200):
        ids = random_ids(v, rng, rng.randint(1, 20))
        assert "a" + sentencepiece_text(tok, v, ids) == decode("mistral_sp", [a, *ids]), ids
        # and where the bytes are valid UTF-8, they are exactly the decoded text
        try:
            text = v.decode_bytes(ids).decode("utf-8")
        except UnicodeDecodeError:
            continue
        assert "a" + text == decode("mistral_sp", [a, *ids]), ids


@pytest.mark.parametrize("name", NAMES)
def test_encoded_text_round_trips(name):
    """encode(text) -> concatenated bytes == the text's UTF-8 (no BOS)."""
    v = vocab_of(name)
    rng = random.Random(f"text-{name}")
    for _ in range(200):
        text = random_text(rng)
        ids = encode(name, text)
        assert not set(ids) & v.special_ids, (text, ids)
        expected = text.encode("utf-8")
        missing = missing_bytes(name)
        if missing & set(expected):
            # the tokenizer drops bytes it has no token for (SmolLM2, see
            # SMOLLM2_MISSING_BYTES): the bytes of the other characters remain
            expected = bytes(b for b in expected if b not in missing)
        elif name == "mistral_sp":
            # SentencePiece adds one space in front of the text when encoding
            # (always, even before a leading space); decode removes it again.
            expected = b" " + expected
            assert decode(name, ids) == text
        assert v.decode_bytes(ids) == expected, (text, ids)


def test_mistral_sp_fixture_encodes_like_sentencepiece():
    """The transformers tokenizer built in tests/tokenizers.py tokenizes exactly
    like the SentencePiece model it comes from."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(T.MISTRAL_SP_MODEL))
    rng = random.Random("sp-fixture")
    for _ in range(200):
        text = random_text(rng)
        assert encode("mistral_sp", text) == sp.encode(text), text


def test_sentencepiece_readers_agree():
    """The SentencePiece model read directly (sentencepiece processor,
    mistral-common's wrapper, transformers' SentencePiece backend) gives the
    same bytes as the transformers fast tokenizer, whose bytes come from its
    decoder pipeline instead."""
    import sentencepiece
    from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    fast = vocab_of("mistral_sp")
    path = str(T.MISTRAL_SP_MODEL)
    for tok in (
        sentencepiece.SentencePieceProcessor(model_file=path),
        SentencePieceTokenizer(path),
        SentencePieceBackend(vocab_file=path),
    ):
        v = Vocabulary.from_tokenizer(tok)
        assert v.token_bytes == fast.token_bytes, type(tok)
        assert v.special_ids == fast.special_ids
        assert v.eos_ids == (2,)
        assert v.kind == "sentencepiece" and v.strips_leading_space
    sp = sentencepiece.SentencePieceProcessor(model_file=path)
    rng = random.Random("sp-direct")
    v = Vocabulary.from_tokenizer(sp)
    for _ in range(100):
        ids = random_ids(v, rng, rng.randint(1, 20))
        ours = v.decode_bytes(ids)
        if ours.startswith(b" "):
            ours = ours[1:]  # leading-space rule, as above
        try:
            assert ours.decode("utf-8") == sp.decode(ids), ids
        except UnicodeDecodeError:
            pass  # sentencepiece's handling of invalid bytes is its own; covered above


def test_tekken_wrappers():
    """MistralTokenizer and transformers' MistralCommonBackend unwrap to the
    same Tekken vocabulary."""
    # A real MistralTokenizer would load the file again; a stand-in with the
    # same shape (.instruct_tokenizer.tokenizer) checks the unwrapping.
    class Instruct:
        tokenizer = T.tekken()

    class Wrapper:
        instruct_tokenizer = Instruct()

    v = Vocabulary.from_tokenizer(Wrapper())
    assert v.token_bytes == vocab_of("tekken").token_bytes
    assert v.eos_ids == (2,)


def test_tekken_bytes_match_public_api():
    tok = T.tekken()
    v = vocab_of("tekken")
    rng = random.Random("tekken-api")
    for i in [0, 2, 999, 1000, 1001, 1255, 1256, len(v) - 1] + [rng.randrange(len(v)) for _ in range(500)]:
        assert v.token_bytes[i] == tok.id_to_byte_piece(i), i


# SmolLM2's vocabulary has no token for these bytes: its BPE was trained
# without a full 256-byte alphabet. 0xC0, 0xC1 and 0xF5..0xFF never occur in
# UTF-8, but 0xF1/0xF2 lead the code points U+40000..U+BFFFF and the others are
# ASCII control characters: encoding silently drops them.
SMOLLM2_MISSING_BYTES = {0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2, *range(0xF5, 0x100)}


@functools.cache
def missing_bytes(name: str) -> frozenset[int]:
    """Bytes with no single-byte token, from the tokenizer's own vocabulary."""
    if name not in ("llama3", "smollm2"):
        return frozenset()
    vocab = T.ALL[name]().get_vocab()
    return frozenset(b for b, ch in bytes_to_unicode().items() if ch not in vocab)


@pytest.mark.parametrize("name", ["llama3", "smollm2"])
def test_byte_level_single_bytes(name):
    """Every byte value that has a single-byte token (spelled with the GPT-2
    table) emits exactly that byte."""
    tok = T.ALL[name]()
    v = vocab_of(name)
    missing = missing_bytes(name)
    assert missing == (SMOLLM2_MISSING_BYTES if name == "smollm2" else set())
    table = bytes_to_unicode()
    for b, ch in table.items():
        if b not in missing:
            assert v.token_bytes[tok.convert_tokens_to_ids(ch)] == bytes([b])
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    single = {tb[0] for tb in v.token_bytes if len(tb) == 1}
    assert single == set(range(256)) - missing


# ------------------------------------------------------------- added tokens


def check_against_decode(tok, v: Vocabulary, ids: list[int]) -> None:
    decoded = tok.decode(ids, clean_up_tokenization_spaces=False)
    if v.kind == "sentencepiece":
        expected = sentencepiece_text(tok, v, ids)
        if expected.startswith(" "):
            expected = expected[1:]  # leading-space rule
        assert expected == decoded, ids
    else:
        assert_same_text("", v.decode_bytes(ids), decoded, ids)


def test_added_tokens_byte_level():
    """Plain added tokens emit their UTF-8 text; special ones are special with
    no bytes; the cache notices the new size."""
    tok = T.load_llama3()  # a private copy: it gets modified
    before = Vocabulary.from_tokenizer(tok)
    plain = ["<think>", "</think>", "é x", '{"key":', "日本"]
    tok.add_tokens(plain)
    tok.add_tokens(["<|tool|>"], special_tokens=True)
    v = Vocabulary.from_tokenizer(tok)
    assert v is not before and len(v) == len(before) + len(plain) + 1 == len(tok)
    new_ids = tok.convert_tokens_to_ids(plain)
    for text, i in zip(plain, new_ids):
        assert i >= len(before)
        assert v.token_bytes[i] == text.encode("utf-8"), text
        assert i not in v.special_ids
    tool = tok.convert_tokens_to_ids("<|tool|>")
    assert tool in v.special_ids and v.token_bytes[tool] == b""
    rng = random.Random("added-bl")
    for _ in range(100):
        ids = random_ids(v, rng, rng.randint(1, 8)) + [rng.choice(new_ids)]
        rng.shuffle(ids)
        check_against_decode(tok, v, ids)


def test_added_tokens_sentencepiece():
    """With a SentencePiece normalizer, tokenizers keeps a (default)
    normalized added token in normalized form: "<think>" becomes "▁<think>" and
    decodes as " <think>" after another token. An added token marked
    normalized=False emits its text as is."""
    from tokenizers import AddedToken

    tok = T.load_mistral_sp()
    before = Vocabulary.from_tokenizer(tok)
    normalized = ["<think>", "é x", '{"key":']
    raw = ["</think>", "日 本"]
    tok.add_tokens(normalized)
    tok.add_tokens([AddedToken(t, normalized=False) for t in raw])
    tok.add_tokens(["<|tool|>"], special_tokens=True)
    v = Vocabulary.from_tokenizer(tok)
    assert len(v) == len(before) + 6 == len(tok)
    for text in normalized:
        assert v.token_bytes[tok.convert_tokens_to_ids(text)] == b" " + text.encode(), text
    for text in raw:
        assert v.token_bytes[tok.convert_tokens_to_ids(text)] == text.encode(), text
    tool = tok.convert_tokens_to_ids("<|tool|>")
    assert tool in v.special_ids and v.token_bytes[tool] == b""
    new_ids = list(range(len(before), len(before) + 5))
    rng = random.Random("added-sp")
    for _ in range(100):
        ids = random_ids(v, rng, rng.randint(1, 8)) + [rng.choice(new_ids)]
        rng.shuffle(ids)
        check_against_decode(tok, v, ids)


def test_added_token_with_table_characters_follows_decode():
    """A byte-level added token made only of table characters is decoded
    through the byte table by tokenizers ("éx" -> b"\\xe9x", shown as "\\ufffdx"),
    and one with a character outside the table comes out as its UTF-8. The
    vocabulary follows what decode emits."""
    tok = T.load_llama3()
    tok.add_tokens(["éx", "Ġzz", "é x"])
    v = Vocabulary.from_tokenizer(tok)
    ex, gzz, e_x = tok.convert_tokens_to_ids(["éx", "Ġzz", "é x"])
    assert v.token_bytes[ex] == b"\xe9x" and tok.decode([ex]) == "\ufffdx"
    assert v.token_bytes[gzz] == b" zz" and tok.decode([gzz]) == " zz"
    assert v.token_bytes[e_x] == "é x".encode() and tok.decode([e_x]) == "é x"


# ------------------------------------------------------------- errors, cache


def _wrap(backend, name):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=backend, name_or_path=name)


def test_wordpiece_raises():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    wp = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.Whitespace()
    wp.decoder = decoders.WordPiece()
    with pytest.raises(TokenizerError, match=r"tiny-wordpiece.*WordPiece"):
        Vocabulary.from_tokenizer(_wrap(wp, "tiny-wordpiece"))
    # a bare tokenizers.Tokenizer is read the same way
    with pytest.raises(TokenizerError, match="WordPiece"):
        Vocabulary.from_tokenizer(wp)


def test_bpe_suffix_decoder_raises():
    from tokenizers import Tokenizer, decoders, models

    bpe = Tokenizer(models.BPE({"a</w>": 0, "b": 1}, [], end_of_word_suffix="</w>"))
    bpe.decoder = decoders.BPEDecoder(suffix="</w>")
    with pytest.raises(TokenizerError, match=r"tiny-bpe.*BPEDecoder"):
        Vocabulary.from_tokenizer(_wrap(bpe, "tiny-bpe"))


def test_no_decoder_raises():
    from tokenizers import Tokenizer, models

    wl = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    with pytest.raises(TokenizerError, match=r"tiny-wordlevel.*no decoder"):
        Vocabulary.from_tokenizer(_wrap(wl, "tiny-wordlevel"))


def test_unknown_object_raises():
    class NotATokenizer:
        name_or_path = "mystery"

    with pytest.raises(TokenizerError, match="mystery"):
        Vocabulary.from_tokenizer(NotATokenizer())


def test_metaspace_unigram_tokenizer():
    """A Unigram model with a Metaspace decoder (T5/ALBERT style)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    pieces = [("<unk>", 0.0), ("▁", -1.0), ("▁a", -1.0), ("b", -2.0), ("▁ab", -1.5), ("a", -2.0)]
    backend = Tokenizer(models.Unigram(pieces, unk_id=0))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    tok = _wrap(backend, "tiny-unigram")
    tok.add_special_tokens({"unk_token": "<unk>"})
    v = Vocabulary.from_tokenizer(tok)
    assert v.token_bytes[1:] == [b" ", b" a", b"b", b" ab", b"a"]
    assert v.strips_leading_space and v.kind == "sentencepiece"
    assert v.special_ids == {0}
    for ids in ([2, 3], [5, 2, 4], [4, 1, 3]):
        ours = v.decode_bytes(ids)
        if ours.startswith(b" "):
            ours = ours[1:]  # Metaspace leading-space rule
        assert ours == tok.decode(ids).encode(), ids


@pytest.mark.parametrize("name", NAMES)
def test_cached_per_tokenizer(name):
    tok = T.ALL[name]()
    assert Vocabulary.from_tokenizer(tok) is Vocabulary.from_tokenizer(tok)


def test_cache_is_per_object():
    a, b = T.load_mistral_sp(), T.load_mistral_sp()
    va, vb = Vocabulary.from_tokenizer(a), Vocabulary.from_tokenizer(b)
    assert va is not vb and va.token_bytes == vb.token_bytes


# ------------------------------------------------------------- custom


def test_from_token_bytes():
    v = Vocabulary.from_token_bytes([b"a", b"b", b"<eos>", b"", b"{"], eos_ids=[2], special_ids=[0], name="toy")
    assert v.token_bytes == [b"", b"b", b"", b"", b"{"]
    assert v.special_ids == {0, 2, 3}  # special, EOS, and the empty token
    assert v.eos_ids == (2,)
    assert len(v) == 5 and v.name == "toy" and v.kind == "custom"
    assert v.decode_bytes([1, 4, 2]) == b"b{"
    w = v.with_eos_ids([4])
    assert w.eos_ids == (4,) and 4 in w.special_ids and w.token_bytes is v.token_bytes
    with pytest.raises(ValueError, match="eos_ids"):
        Vocabulary.from_token_bytes([b"a"], eos_ids=[1])
    with pytest.raises(ValueError, match="special_ids"):
        Vocabulary.from_token_bytes([b"a"], eos_ids=[], special_ids=[-1])


def test_tiktoken_encoding():
    import tiktoken

    ranks = {bytes([i]): i for i in range(256)}
    ranks[b" {"] = 256
    ranks[b"\xe6\x97"] = 257
    enc = tiktoken.Encoding(
        name="toy", pat_str=r"\s?\S+|\s+", mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 258, "<|x|>": 259}
    )
    v = Vocabulary.from_tokenizer(enc)
    assert len(v) == 260 and v.kind == "tiktoken"
    assert v.token_bytes[256] == b" {" and v.token_bytes[257] == b"\xe6\x97" and v.token_bytes[65] == b"A"
    assert v.special_ids == {258, 259} and v.eos_ids == (258,)
    assert v.decode_bytes(enc.encode_ordinary(' {"a": "日"}')) == ' {"a": "日"}'.encode()
