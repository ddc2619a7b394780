"""Token masks against a brute-force per-token walk, on real vocabularies.

The index decides most tokens without walking them (trie pruning, the
self-loop shortcut, UTF-8 loops, counter clamping); the brute force walks
every token's bytes one by one through the DFA. They must agree on every
state visited while reading sample documents.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from structgen.automaton.lazy_dfa import DEAD
from structgen.compile import compile_json_schema
from structgen.grammar import ir
from structgen.index.kernels import utf8_prefixes
from structgen.index import token_index
from structgen.index.token_index import TokenArrays
from structgen.matcher import CompiledGrammar
from structgen.vocab import Vocabulary
from tests import tokenizers

WS = ir.rep(ir.byte_ranges([(0x20, 0x20), (0x09, 0x0A), (0x0D, 0x0D)]))
STRING_CHAR = ir.alt(
    ir.chars([(0x22, 0x22), (0x5C, 0x5C), (0, 0x1F)], negate=True),
    ir.seq(ir.literal("\\"), ir.alt(ir.byte_ranges([(ord(c), ord(c)) for c in '"\\/bfnrt']), ir.seq(ir.literal("u"), ir.rep(ir.byte_ranges([(48, 57), (65, 70), (97, 102)]), 4, 4)))),
)


def json_like_grammar(max_len: int | None) -> ir.Grammar:
    string = ir.seq(ir.literal('"'), ir.rep(STRING_CHAR, 0, max_len), ir.literal('"'))
    number = ir.seq(ir.opt(ir.literal("-")), ir.alt(ir.literal("0"), ir.seq(ir.byte_ranges([(49, 57)]), ir.rep(ir.byte_ranges([(48, 57)])))))
    value = ir.alt(string, number, ir.literal("true"), ir.literal("null"), ir.ref("obj"), ir.ref("arr"))
    member = ir.seq(string, WS, ir.literal(":"), WS, ir.ref("value"), WS)
    obj = ir.seq(ir.literal("{"), WS, ir.opt(ir.seq(member, ir.rep(ir.seq(ir.literal(","), WS, member)))), ir.literal("}"))
    arr = ir.seq(ir.literal("["), WS, ir.opt(ir.seq(ir.ref("value"), WS, ir.rep(ir.seq(ir.literal(","), WS, ir.ref("value"), WS)))), ir.literal("]"))
    return ir.Grammar({"start": ir.seq(WS, ir.ref("obj")), "obj": obj, "arr": arr, "value": value})


DOCS = [
    '{"name": "Bob é 日本", "xs": [1, 2, {"a": [true]}], "k": -12}',
    '{\n  "t": "tab\\there \\"q\\" \\u00e9 \\\\ 🙂 Привет",\n  "n": [[], {}, 123456789, null]\n}',
    '{"a":"' + "x" * 40 + '","b":"' + "long words and more words " * 3 + '"}',
]


def brute_force_mask(grammar: CompiledGrammar, state: int) -> np.ndarray:
    vocab = grammar.vocab
    out = np.zeros(len(vocab.token_bytes), dtype=bool)
    for i, data in enumerate(vocab.token_bytes):
        if data and i not in vocab.special_ids:
            out[i] = grammar.dfa.walk(state, data) != DEAD
    if grammar.dfa.is_accepting(state):
        out[list(vocab.eos_ids)] = True
    return out


def spell(vocab: Vocabulary, text: str, rng: random.Random) -> list[int]:
    """Random (non-canonical) token spellings of ``text``: exercises tokens a
    tokenizer would rarely produce, e.g. ones splitting a UTF-8 character."""
    lookup: dict[bytes, int] = {}
    for i, b in enumerate(vocab.token_bytes):
        if b and i not in vocab.special_ids:
            lookup.setdefault(b, i)
    data = text.encode()
    out, pos = [], 0
    while pos < len(data):
        choices = [k for k in range(1, 12) if data[pos : pos + k] in lookup and pos + k <= len(data)]
        k = rng.choice(choices)
        out.append(lookup[data[pos : pos + k]])
        pos += k
    return out


@pytest.mark.parametrize("tokenizer_name", ["llama3", "smollm2", "mistral_sp"])
@pytest.mark.parametrize("max_len", [None, 30])
def test_masks_match_brute_force(tokenizer_name, max_len):
    vocab = Vocabulary.from_tokenizer(tokenizers.ALL[tokenizer_name]())
    grammar = CompiledGrammar(json_like_grammar(max_len), vocab)
    rng = random.Random(7)
    checked = 0
    for doc in DOCS:
        if max_len is not None and doc is DOCS[2]:
            continue  # its 60+ character string is longer than max_len
        m = grammar.matcher()
        for tok in spell(vocab, doc, rng):
            if rng.random() < 0.35:
                assert np.array_equal(m.allowed_mask(), brute_force_mask(grammar, m.state))
                checked += 1
            assert m.allowed_mask()[tok]
            assert m.advance(tok)
        assert m.is_accepting()
        assert m.allowed_mask()[list(vocab.eos_ids)].all()
    assert checked >= 10


def test_bounded_string_masks_near_the_bound():
    """Counter clamping must not leak past the real bound: at each position of
    a string limited to 300 characters the mask is exactly the brute force one.
    Every position's mask is computed, so from the second position on the
    length tiers serve them; the checks sit on both sides of each tier (the
    horizon is 129 bytes; tiers 8, 16, 32 and 64)."""
    vocab = Vocabulary.from_tokenizer(tokenizers.llama3())
    grammar = CompiledGrammar(ir.Grammar.from_expr(ir.seq(ir.literal('"'), ir.rep(ir.byte_ranges([(97, 122), (32, 32)]), 0, 300), ir.literal('"'))), vocab)
    assert grammar.index.arrays.tiers == [8, 16, 32, 64, 129]
    m = grammar.matcher()
    a = vocab.token_bytes.index(b"a")
    assert m.advance(vocab.token_bytes.index(b'"'))
    for step in range(300):
        mask = m.allowed_mask()
        if step in (0, 100, 171, 172, 200, 236, 237, 268, 269, 284, 285, 292, 293, 299):
            assert np.array_equal(mask, brute_force_mask(grammar, m.state)), step
        assert m.advance(a)
    assert not m.advance(a)
    assert m.allowed_mask()[vocab.token_bytes.index(b'"')]


def test_token_arrays_trie_is_consistent():
    """The breadth-first trie against the tokens it was built from: following
    a token's bytes from the top nodes through the children spells it, every
    node on the way holds its position, the last one (only) ends it, and each such
    node's facts (bytes and longest token below, whole UTF-8) cover it."""
    vocab = Vocabulary.from_tokenizer(tokenizers.llama3())
    a = TokenArrays.of(vocab)
    assert TokenArrays.of(vocab) is a
    trie = a.trie
    assert (trie.node_lo < trie.node_hi).all()
    kids = trie.n_children > 0
    assert (trie.first_child[kids] > np.flatnonzero(kids)).all()
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(a.ids), 300, replace=False):
        data = vocab.token_bytes[a.ids[pos]]
        path, lo, hi = [], 0, trie.n_top
        for byte in data:
            siblings = np.arange(lo, hi)
            here = siblings[(trie.node_byte[siblings] == byte) & (trie.node_lo[siblings] <= pos) & (pos < trie.node_hi[siblings])]
            assert len(here) == 1
            path.append(int(here[0]))
            lo = trie.first_child[here[0]]
            hi = lo + trie.n_children[here[0]]
        last = path[-1]
        assert trie.node_lo[last] <= pos < trie.node_lo[last] + trie.node_ending[last]
        assert (trie.node_lo[path[:-1]] + trie.node_ending[path[:-1]] <= pos).all()
        bits = np.unpackbits(trie.subtree_bytes[path].view(np.uint8), axis=1, bitorder="little").astype(bool)
        assert bits[:, list(data)].all()
        assert (trie.subtree_maxlen[path] >= len(data)).all()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            assert not trie.subtree_utf8[path].any()


def test_utf8_prefixes_agree_with_the_strict_decoder():
    """The compiled UTF-8 scan (whole-character prefix, cut-off rest) against
    Python's decoder, on every Llama-3 token and on random byte strings rich
    in the edge bytes (overlong starts, surrogates, past U+10FFFF)."""
    vocab = Vocabulary.from_tokenizer(tokenizers.llama3())
    rng = random.Random(3)
    edge = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]
    strings = [b for b in vocab.token_bytes if b]
    strings += [bytes(rng.choice(edge + [rng.randrange(256)]) for _ in range(rng.randrange(1, 9))) for _ in range(20_000)]
    lengths = np.array([len(b) for b in strings])
    offsets = np.concatenate([[0], np.cumsum(lengths[:-1])])
    whole, cut_off = utf8_prefixes(np.frombuffer(b"".join(strings), np.uint8), offsets, lengths)
    for data, w, c in zip(strings, whole.tolist(), cut_off.tolist()):
        try:
            data.decode("utf-8")
            assert (w, c) == (len(data), False), data
        except UnicodeDecodeError as e:
            assert w == e.start, data
            assert c == (e.reason == "unexpected end of data"), data


TEXT = (b"", b"abc", "é日".encode())
LOOPS = {  # grammar, whether its loop is split, texts read inside the loop
    # JSON string contents: whole UTF-8 characters loop (loop kind 2).
    "json string": (ir.seq(ir.literal('"'), ir.rep(STRING_CHAR), ir.literal('"'), WS, ir.literal(",")), True, TEXT),
    # Every high byte loops by itself (kind 1); only the quote leaves.
    "bytes": (ir.seq(ir.literal('"'), ir.rep(ir.byte_ranges([(0x20, 0x21), (0x23, 0xFF)])), ir.literal('"')), True, TEXT),
    # Nothing leaves the loop: every token is kept whole.
    "everything": (ir.seq(ir.literal('"'), ir.rep(ir.byte_ranges([(0, 0xFF)]))), True, TEXT),
    # Nearly every token leaves a loop of letters, but only the quote leads on:
    # the split holds the tokens whose first other byte is a quote.
    "letters": (ir.seq(ir.literal('"'), ir.rep(ir.byte_ranges([(0x61, 0x7A)])), ir.literal('"')), True, TEXT[:2]),
    # Letters and the two-byte characters of U+00C0..U+00FF: the lead byte C3
    # leaves the loop but leads on, into the middle of a character.
    "letters and latin-1": (ir.seq(ir.literal('"'), ir.rep(ir.alt(ir.byte_ranges([(0x61, 0x7A)]), ir.seq(
        ir.byte_ranges([(0xC3, 0xC3)]), ir.byte_ranges([(0x80, 0xBF)])))), ir.literal('"')), True, TEXT[:2] + ("é".encode(),)),
    # A space leads on too, and a third of the tokens leave there: no split, a full walk.
    "letters, then a space": (ir.seq(ir.literal('"'), ir.rep(ir.byte_ranges([(0x61, 0x7A)])),
                                     ir.alt(ir.literal('"'), ir.literal(" x"))), False, TEXT[:2]),
}


@pytest.mark.parametrize("name", sorted(LOOPS))
@pytest.mark.parametrize("tokenizer_name", ["llama3", "mistral_sp"])
def test_loop_split_masks_match_brute_force(name, tokenizer_name):
    """A state that loops walks only the tokens leaving the loop, from where
    they leave it (or all of them, where too many leave): its masks, and
    those of states sharing the split, against the brute force."""
    body, splits, texts = LOOPS[name]
    vocab = Vocabulary.from_tokenizer(tokenizers.ALL[tokenizer_name]())
    grammar = CompiledGrammar(ir.Grammar({"start": body}), vocab)
    m = grammar.matcher()
    assert m.advance_bytes(b'"')
    assert (grammar.index._loop_split(m.state) is not None) == splits
    for data in texts:
        here = m.copy()
        assert here.advance_bytes(data)
        assert np.array_equal(here.allowed_mask(), brute_force_mask(grammar, here.state)), data


def test_loop_splits_kept_are_the_most_recent():
    """A long-lived process meets many loops: only the most recently used
    splits are kept, and one asked for again is the same object."""
    tokens = [bytes([b]) for b in range(256)] + [b"w%d" % i for i in range(3000)]
    arrays = TokenArrays.of(Vocabulary.from_token_bytes(tokens, eos_ids=[], name="loop-splits"))
    first = np.zeros(4, dtype=np.uint64)
    split = arrays.loop_split(1, first, first)
    assert split is not None and arrays.loop_split(1, first, first) is split
    for byte in range(1, 40):
        leaving = first.copy()
        leaving[byte >> 6] |= np.uint64(1) << np.uint64(byte & 63)
        arrays.loop_split(1, leaving, leaving)
    assert len(arrays._loop_splits) == token_index._KEPT_SPLITS
    assert arrays.loop_split(1, leaving, leaving) is arrays.loop_split(1, leaving, leaving)
    assert arrays.loop_split(1, first, first) is not split  # evicted, made again


KEY_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "nummer": {"type": "integer"},
        "ünïcode": {"type": "string", "maxLength": 3},
        "日付": {"type": "string"},
    },
    "additionalProperties": {"type": "string", "minLength": 2},
}
KEY_DOCS = [
    {"name": "Zoë", "nummer": -3, "ünïcode": "abc", "日付": "今日"},
    {"extra é": "xy", "日本": "語\"q", "n": "ab", "name": "a b"},
]


@pytest.mark.parametrize("tokenizer_name", ["llama3", "mistral_sp"])
def test_key_and_value_starts_match_brute_force(tokenizer_name):
    """Object key starts and non-looping string starts (minLength): the walk
    enters string contents one byte in, where the loop shortcut takes over
    from a state other than the mask's, and first bytes into the free-key
    loop take that loop's mask; declared names, UTF-8 lead bytes and free
    keys must all come out exactly as the brute force walk says."""
    tokenizer = tokenizers.ALL[tokenizer_name]()
    grammar = compile_json_schema(KEY_SCHEMA, tokenizer, whitespace="flexible")
    handed_over = 0
    for doc in KEY_DOCS:
        text = json.dumps(doc, ensure_ascii=False)
        m = grammar.matcher()
        for tok in tokenizer.encode(text, add_special_tokens=False):
            assert np.array_equal(m.allowed_mask(), brute_force_mask(grammar, m.state)), m.state
            handed_over += bool(grammar.index._handed_over(m.state))
            assert m.advance(tok)
        assert m.is_accepting()
    assert handed_over  # key states whose first bytes take the free-key loop's mask were met


SEARCH_SCHEMA = {"type": "object", "properties": {"id": {"type": "string", "pattern": "[0-9a-f]{8}-[0-9a-f]{4}"}}}


@pytest.mark.parametrize("prefix", [b'{"id": "1', b'{"id": "x12345678-', b'{"id": "0123456789abcdef-12', b'{"id": "a1b2c3d4-1234'])
def test_search_pattern_positions_match_brute_force(prefix):
    """Inside an unanchored pattern, the bytes that break a partial match
    lead where they lead from the restart state, which has no loop split:
    its mask is walked, through the same trie as the state's own walk, the
    first time a partial match asks for it (a fresh grammar, so nothing is
    cached yet)."""
    tokenizer = tokenizers.ALL["llama3"]()
    grammar = compile_json_schema(SEARCH_SCHEMA, tokenizer, whitespace="flexible")
    m = grammar.matcher()
    assert m.advance_bytes(prefix)
    handed = grammar.index._handed_over(m.state)
    assert handed and all(grammar.index._loop_split(loop) is None for loop, _ in handed)
    assert np.array_equal(m.allowed_mask(), brute_force_mask(grammar, m.state))
