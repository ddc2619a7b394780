"""Code point ranges to UTF-8 byte-range sequences.

A character class such as ``[^"\\\\]`` covers over a million code points, but its
UTF-8 encodings form a handful of byte-range sequences, e.g. ``[\\xC2-\\xDF][\\x80-\\xBF]``.
The split follows the usual construction: first cut a range where the encoded
length changes, then cut it until every continuation byte position spans either
one value or the full ``80..BF`` block, at which point the lowest and highest
encodings give the byte ranges position by position.
"""

from __future__ import annotations

MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
_LENGTH_BOUNDARIES = ((0x0, 0x7F), (0x80, 0x7FF), (0x800, 0xFFFF), (0x10000, MAX_CODE_POINT))


def complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """All code points not in the (sorted, merged) ``ranges``."""
    out = []
    nxt = 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= MAX_CODE_POINT:
        out.append((nxt, MAX_CODE_POINT))
    return out


def remove_surrogates(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop U+D800..U+DFFF, which have no valid UTF-8 encoding."""
    s_lo, s_hi = SURROGATES
    out = []
    for lo, hi in ranges:
        if hi < s_lo or lo > s_hi:
            out.append((lo, hi))
            continue
        if lo < s_lo:
            out.append((lo, s_lo - 1))
        if hi > s_hi:
            out.append((s_hi + 1, hi))
    return out


def encode_ranges(ranges: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Byte-range sequences whose concatenations are exactly the UTF-8 encodings
    of the code points in ``ranges``."""
    out: list[list[tuple[int, int]]] = []
    for lo, hi in ranges:
        for b_lo, b_hi in _LENGTH_BOUNDARIES:
            a, b = max(lo, b_lo), min(hi, b_hi)
            if a <= b:
                _split_same_length(a, b, out)
    return out


def multibyte_sequences() -> list[list[tuple[int, int]]]:
    """The byte-range sequences of every well-formed multi-byte character
    (all scalar values from U+0080, surrogates excluded)."""
    return encode_ranges(remove_surrogates([(0x80, MAX_CODE_POINT)]))


def _split_same_length(lo: int, hi: int, out: list) -> None:
    n = len(chr(lo).encode("utf-8", "surrogatepass"))
    for i in range(1, n):
        mask = (1 << (6 * i)) - 1
        if lo & ~mask != hi & ~mask:
            if lo & mask:
                _split_same_length(lo, lo | mask, out)
                _split_same_length((lo | mask) + 1, hi, out)
                return
            if hi & mask != mask:
                _split_same_length(lo, (hi & ~mask) - 1, out)
                _split_same_length(hi & ~mask, hi, out)
                return
    a = chr(lo).encode("utf-8", "surrogatepass")
    b = chr(hi).encode("utf-8", "surrogatepass")
    out.append(list(zip(a, b)))
