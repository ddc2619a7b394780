"""JSON text pieces as grammar IR: string characters with every escape form,
string literals, whitespace, numbers' digits, and literal JSON values.

A character inside a JSON string is spelled as JSON encoders write it
(``json.dumps`` with or without ``ensure_ascii``, ``JSON.stringify``, serde):

- printable ASCII (U+0020..U+007E) raw, except ``"`` and ``\\`` which are
  written ``\\"`` and ``\\\\``; ``/`` may also be written ``\\/``;
- control characters as their short escape (``\\b \\f \\n \\r \\t``) or
  ``\\u00XX``;
- everything else raw (UTF-8) or as ``\\uXXXX`` (hex digits in either case), a
  supplementary character as a ``\\uD8xx\\uDCxx`` surrogate pair.

This is a subset of what JSON allows (``\\u0041`` for ``A`` is refused), which
keeps string automata small (a set of ASCII characters has one spelling each)
and loses nothing that real encoders produce. :func:`json_char` accepts
exactly those spellings of the code points it is given, so constraints written
over decoded characters (patterns, lengths, formats, property names) apply to
what a JSON parser decodes. Lone surrogate escapes are never produced.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from structgen.frontends import charlang
from structgen.grammar import ir

Ranges = tuple

_SHORT_ESCAPES = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x08: "b", 0x0C: "f", 0x0A: "n", 0x0D: "r", 0x09: "t"}
_RAW_OK: Ranges = ((0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, charlang.MAX_CP))

_HEX_DIGIT_BYTES = [
    [(ord(str(d)), ord(str(d)))] if d < 10 else [(ord("a") + d - 10,) * 2, (ord("A") + d - 10,) * 2]
    for d in range(16)
]


def _digit_set(lo: int, hi: int, base: int) -> ir.Expr:
    if base == 10:
        return ir.byte_ranges([(0x30 + lo, 0x30 + hi)])
    out = []
    for d in range(lo, hi + 1):
        out.extend(_HEX_DIGIT_BYTES[d])
    return ir.byte_ranges(out)


def fixed_width_range(lo: int, hi: int, width: int, base: int = 16) -> ir.Expr:
    """Numerals of exactly ``width`` digits (leading zeros included) whose
    value lies in ``[lo, hi]``; hex digits match in either case."""
    if lo > hi:
        return ir.NOTHING
    if width == 0:
        return ir.EPS
    unit = base ** (width - 1)
    top_lo, rest_lo = divmod(lo, unit)
    top_hi, rest_hi = divmod(hi, unit)
    full = unit - 1
    if top_lo == top_hi:
        return ir.seq(_digit_set(top_lo, top_lo, base), fixed_width_range(rest_lo, rest_hi, width - 1, base))
    parts = []
    first = top_lo
    if rest_lo != 0:
        parts.append(ir.seq(_digit_set(top_lo, top_lo, base), fixed_width_range(rest_lo, full, width - 1, base)))
        first += 1
    last = top_hi
    tail = None
    if rest_hi != full:
        tail = ir.seq(_digit_set(top_hi, top_hi, base), fixed_width_range(0, rest_hi, width - 1, base))
        last -= 1
    if first <= last:
        parts.append(ir.seq(_digit_set(first, last, base), ir.rep(_digit_set(0, base - 1, base), width - 1, width - 1)))
    if tail is not None:
        parts.append(tail)
    return ir.alt(*parts)


def _u_escape(lo: int, hi: int) -> ir.Expr:
    return ir.seq(ir.literal("\\u"), fixed_width_range(lo, hi, 4))


@lru_cache(maxsize=4096)
def json_char(ranges: Ranges) -> ir.Expr:
    """Every JSON string spelling of one code point from ``ranges``."""
    ranges = charlang.merge_ranges(ranges)
    opts = [ir.chars(charlang.intersect_ranges(ranges, _RAW_OK))]
    for cp, letter in _SHORT_ESCAPES.items():
        if charlang.intersect_ranges(ranges, ((cp, cp),)):
            opts.append(ir.literal("\\" + letter))
    for lo, hi in charlang.intersect_ranges(ranges, ((0, 0x1F), (0x7F, 0xFFFF))):
        # BMP beyond printable ASCII: \uXXXX, never a surrogate code unit alone
        for a, b in ((lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)):
            if a <= b:
                opts.append(_u_escape(a, b))
    for lo, hi in charlang.intersect_ranges(ranges, ((0x10000, charlang.MAX_CP),)):
        opts.append(_surrogate_pairs(lo, hi))
    return ir.alt(*opts)


def _surrogate_pairs(lo: int, hi: int) -> ir.Expr:
    hl, ll = divmod(lo - 0x10000, 0x400)
    hh, lh = divmod(hi - 0x10000, 0x400)
    H = 0xD800
    L = 0xDC00
    if hl == hh:
        return ir.seq(_u_escape(H + hl, H + hl), _u_escape(L + ll, L + lh))
    parts = [ir.seq(_u_escape(H + hl, H + hl), _u_escape(L + ll, L + 0x3FF))]
    if hl + 1 <= hh - 1:
        parts.append(ir.seq(_u_escape(H + hl + 1, H + hh - 1), _u_escape(L, L + 0x3FF)))
    parts.append(ir.seq(_u_escape(H + hh, H + hh), _u_escape(L, L + lh)))
    return ir.alt(*parts)


_PRINTABLE: Ranges = ((0x20, 0x7E),)


class JsonCharEncoder:
    """:func:`json_char` for grammars with many character sets: the spellings of
    printable ASCII (a few bytes) stay inline, the rest (controls, non-ASCII:
    escape alternatives of a few hundred nodes) becomes one rule per distinct
    set, usually the same one. Callable as an ``encode_chars`` hook."""

    def __init__(self, sink: "charlang.RuleSink") -> None:
        self.sink = sink
        self.memo: dict[Ranges, ir.Expr] = {}
        self.rest_rules: dict[Ranges, ir.Expr] = {}

    def __call__(self, ranges) -> ir.Expr:
        ranges = charlang.merge_ranges(ranges)
        hit = self.memo.get(ranges)
        if hit is not None:
            return hit
        ascii_part = charlang.intersect_ranges(ranges, _PRINTABLE)
        rest = charlang.subtract_ranges(ranges, _PRINTABLE)
        opts = [json_char(ascii_part)] if ascii_part else []
        if rest:
            r = self.rest_rules.get(rest)
            if r is None:
                name = self.sink.reserve()
                self.sink.define(name, json_char(rest))
                r = self.rest_rules[rest] = ir.ref(name)
            opts.append(r)
        e = self.memo[ranges] = ir.alt(*opts)
        return e


def json_char_of(c: str) -> ir.Expr:
    cp = ord(c)
    if 0xD800 <= cp <= 0xDFFF:  # a lone surrogate (only from \u escapes): that escape only
        return _u_escape(cp, cp)
    return json_char(((cp, cp),))


QUOTE = ir.literal('"')


# Printable ASCII without a short escape: one spelling each, the character itself.
_SPELLED_AS_IS = re.compile("[%s]*" % re.escape("".join(chr(c) for c in range(0x20, 0x7F) if c not in _SHORT_ESCAPES)))


def string_literal(s: str) -> ir.Expr:
    """The JSON string whose decoded value is ``s``, in any spelling."""
    if _SPELLED_AS_IS.fullmatch(s):  # most enum values: no per-character alternatives to build
        return ir.literal(f'"{s}"')
    return ir.seq(QUOTE, *(json_char_of(c) for c in s), QUOTE)


TRIE_MAX_LENGTH = 256  # longer strings are spelled apart: a trie nests one level per branching character


def strings_literal(values: list[str]) -> ir.Expr:
    """The JSON strings whose decoded values are ``values``, in any spelling,
    as one trie: a common prefix is spelled once. One literal per value made
    every automaton state along the way carry all of them (an enum of 100,000
    strings: 785 MB and 8 s to the first mask)."""
    root: dict = {}
    apart = []
    for v in values:
        if len(v) > TRIE_MAX_LENGTH:
            apart.append(string_literal(v))
            continue
        node = root
        for ch in v:
            node = node.setdefault(ch, {})
        node[""] = True  # a value ends here (no character is "")
    done: dict[int, ir.Expr] = {}  # node id -> its expression, children first, without recursion
    stack = [root]
    while stack:
        node = stack[-1]
        pending = [kid for ch, kid in node.items() if ch and id(kid) not in done]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        opts = [ir.EPS] if "" in node else []
        opts.extend(ir.seq(json_char_of(ch), done[id(kid)]) for ch, kid in node.items() if ch)
        done[id(node)] = ir.alt(*opts)
    return ir.alt(ir.seq(QUOTE, done[id(root)], QUOTE) if root else ir.NOTHING, *apart)


def string_of(char_expr: ir.Expr, memo: dict | None = None) -> ir.Expr:
    """A JSON string whose decoded content is in the character-level language."""
    return ir.seq(QUOTE, charlang.encode(char_expr, json_char, memo if memo is not None else {}), QUOTE)


def utf8_chars(ranges: Ranges) -> ir.Expr:
    """Plain (unescaped) UTF-8 spelling: for text outside JSON strings."""
    return ir.chars(ranges)


# --------------------------------------------------------------------------- whitespace

WS_BYTES = ir.byte_ranges([(0x20, 0x20), (0x09, 0x0A), (0x0D, 0x0D)])


def whitespace(policy) -> ir.Expr:
    """The expression for one whitespace gap under the policy."""
    if policy == "compact":
        return ir.EPS
    if policy == "flexible":
        return ir.rep(WS_BYTES, 0, None)
    if isinstance(policy, int) and not isinstance(policy, bool) and policy >= 0:
        return ir.rep(WS_BYTES, 0, policy)
    raise ValueError(f"whitespace must be 'compact', 'flexible' or a non-negative int, not {policy!r}")


# --------------------------------------------------------------------------- canonical spelling

# JSON text spelled the way encoders write it, for generation: strings as
# json.dumps(..., ensure_ascii=False) writes them (raw characters, the short
# escapes \" \\ \b \f \n \r \t, and \u00xx only for the other control
# characters, \udxxx for lone surrogates, which have no other spelling; no \/
# and no \u escape of a printable character), numbers as JavaScript's
# JSON.stringify writes them (no fraction that ends in 0, so "12" and never
# "12.0"; at most 16 fraction digits, which a double never needs more of; an
# exponent "e+21" or "e-7" without leading zeros). Every JSON value keeps a
# spelling, so intersecting a schema's grammar with this language narrows how
# values are written, never which values can be.
_C_WS = r"[ \t\n\r]"
_C_PUNCT = r"[{}\[\],:]"
_C_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\bfnrt]|\\u00[01][0-9a-f]|\\ud[89a-f][0-9a-f]{2})*"'
_C_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]{0,15}[1-9])?(?:e[+-][1-9][0-9]{0,2})?"
# A number must be followed by whitespace, punctuation or the end, so that
# "1.50" cannot pass as the two numbers "1.5" and "0".
CANONICAL_JSON = (
    rf"(?:{_C_WS}|{_C_PUNCT}|{_C_STRING}|true|false|null|{_C_NUMBER}(?:{_C_WS}|{_C_PUNCT}))*(?:{_C_NUMBER})?"
)


@lru_cache(maxsize=1)
def canonical_json() -> ir.Expr:
    """:data:`CANONICAL_JSON` as an expression, to intersect with a schema's."""
    from structgen.frontends.regex import regex_to_expr

    return regex_to_expr(CANONICAL_JSON)


# --------------------------------------------------------------------------- literal values


def number_literals(v) -> list[str]:
    """Spellings of a JSON number that a JSON Schema validator treats as equal
    to ``v``: its canonical form, plus the integer form of an integral float
    and ``x.0`` of an integer that a float holds exactly (``json.loads`` reads
    ``x.0`` as a float: ``1e400`` becomes ``inf``, ``2**53 + 1`` its neighbour)."""
    if isinstance(v, bool):
        raise TypeError("bool is not a number")
    if isinstance(v, int):
        return [str(v), f"{v}.0"] if abs(v) <= 2**53 or _float_holds(v) else [str(v)]
    if v != v or v in (float("inf"), float("-inf")):
        return []
    out = [json.dumps(v)]
    if v.is_integer():
        out.append(str(int(v)))
    return out


def _float_holds(v: int) -> bool:
    try:
        return float(v) == v
    except OverflowError:
        return False


ANY_ORDER_CONST_KEYS = 4  # object values with at most this many keys match in any key order


def _permutations(members: list, seen: int, sep: ir.Expr) -> ir.Expr:
    """All orders of the members not in ``seen`` (a bit mask), comma-separated."""
    rest = [k for k in range(len(members)) if not seen >> k & 1]
    if not rest:
        return ir.EPS
    return ir.alt(*(ir.seq(sep if seen else ir.EPS, members[k], _permutations(members, seen | 1 << k, sep))
                    for k in rest))


def value_literal(v, ws: ir.Expr) -> ir.Expr:
    """A JSON value equal to ``v``: objects with at most
    ``ANY_ORDER_CONST_KEYS`` keys in any key order (bigger ones in their own
    order), strings in the spellings of :func:`json_char`, numbers in their
    common equal spellings."""
    if v is None:
        return ir.literal("null")
    if v is True:
        return ir.literal("true")
    if v is False:
        return ir.literal("false")
    if isinstance(v, (int, float)):
        return ir.alt(*(ir.literal(s) for s in number_literals(v)))
    if isinstance(v, str):
        return string_literal(v)
    if isinstance(v, list):
        if not v:
            return ir.seq(ir.literal("["), ws, ir.literal("]"))
        items = []
        for i, x in enumerate(v):
            if i:
                items.extend([ws, ir.literal(","), ws])
            items.append(value_literal(x, ws))
        return ir.seq(ir.literal("["), ws, *items, ws, ir.literal("]"))
    if isinstance(v, dict):
        if not v:
            return ir.seq(ir.literal("{"), ws, ir.literal("}"))
        members = [ir.seq(string_literal(k), ws, ir.literal(":"), ws, value_literal(x, ws)) for k, x in v.items()]
        sep = ir.seq(ws, ir.literal(","), ws)
        if len(members) <= ANY_ORDER_CONST_KEYS:
            body = _permutations(members, 0, sep)
        else:
            items = []
            for i, m in enumerate(members):
                if i:
                    items.append(sep)
                items.append(m)
            body = ir.seq(*items)
        return ir.seq(ir.literal("{"), ws, body, ws, ir.literal("}"))
    raise TypeError(f"not a JSON value: {type(v).__name__}")
