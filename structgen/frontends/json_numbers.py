"""JSON numbers with exact range and divisibility constraints, as grammar IR.

Syntax is JSON's: ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``.

How a number is compared with a bound is decided the way a JSON Schema
validator running on Python's ``json`` module decides it (our guarantee is
that accepted output validates with ``jsonschema``):

- an *integer literal* (no ``.``, no exponent) parses to an exact ``int``; it
  is compared exactly with the bound, so ``minimum: 0.5`` admits ``1`` but
  not ``0``;
- a *fractional literal* parses to the nearest ``float``. Accepting a decimal
  ``x`` is sound when ``x >= repr(m)``, ``m`` being the smallest double that
  satisfies the bound (rounding is monotonic), so strict bounds and integer
  bounds get the right side of the float rounding interval: with
  ``exclusiveMinimum: 5`` the literal ``5.0000000000000000001`` (which parses
  to ``5.0``) is rejected. The values lost this way are within one float ulp
  of the bound;
- exponent forms are allowed only when the range does not need them checked:
  no bound at all, or a magnitude bound of exactly zero on one side and none
  on the other (``minimum: 0``). Otherwise bounded numbers are written without
  exponent (``json.dumps`` uses one only below 1e-4 or from 1e16 on).

``integer`` accepts integer literals (``-0`` included, it parses to 0) and,
for draft 6+ (where ``3.0`` is an integer), integer literals followed by a
zero fraction (``3.0``, ``3.00``) up to 2**53 in magnitude (beyond, the float
they parse to is not exact). Exponent forms of integers (``1e2``) are never
accepted for ``integer``. ``multipleOf`` is supported for integral divisors:
integer literals only (no fractional spelling), by enumeration for small
ranges and a remainder automaton otherwise; so is its negation (integer
literals with a non-zero remainder, and fractional literals that surely
parse to a non-integer). Non-integral divisors p / 2**j (small p and j: 0.25,
2.5, 1.5) are exact on literals without exponent below 2**(53 - j)
(:func:`dyadic_multiples`); with an integral divisor beside them, integer
multiples of p. Other fractional divisors (0.01) are unsupported: validators
divide in floating point, where 0.07 / 0.01 is not an integer.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from structgen.frontends import charlang
from structgen.frontends.charlang import cset, text
from structgen.grammar import ir

DIGIT = cset([(0x30, 0x39)])
NONZERO = cset([(0x31, 0x39)])
ZERO = text("0")
MINUS = text("-")
DOT = text(".")
EXPONENT = ir.seq(cset([(0x45, 0x45), (0x65, 0x65)]), ir.opt(cset([(0x2B, 0x2B), (0x2D, 0x2D)])), ir.rep(DIGIT, 1, None))
ANY_DIGITS = ir.rep(DIGIT, 0, None)
FRACTION = ir.seq(DOT, ir.rep(DIGIT, 1, None))
NATURAL = ir.alt(ZERO, ir.seq(NONZERO, ANY_DIGITS))  # canonical non-negative integer
INTEGER = ir.seq(ir.opt(MINUS), NATURAL)
NUMBER = ir.seq(ir.opt(MINUS), NATURAL, ir.opt(FRACTION), ir.opt(EXPONENT))

MAX_DOUBLE = 1.7976931348623157e308
SAFE_INTEGER = 2 ** 53
#: Literals whose float value is surely not an integer (all three must hold): magnitude below 1e9,
#: no exponent, and among the first six fraction digits one is not 0 and one is
#: not 9, so the value is at least 1e-6 away from every integer while floats
#: there are spaced below 2.5e-7 (``1.0000000000000000001`` parses to ``1.0``).
NON_INTEGER = (
    ir.seq(ir.opt(MINUS), ir.alt(ZERO, ir.seq(NONZERO, ir.rep(DIGIT, 0, 8))), DOT, ir.rep(DIGIT, 1, None)),
    ir.seq(ir.opt(MINUS), ir.rep(DIGIT, 1, None), DOT, ir.rep(DIGIT, 0, 5), NONZERO, ANY_DIGITS),
    ir.seq(ir.opt(MINUS), ir.rep(DIGIT, 1, None), DOT, ir.rep(DIGIT, 0, 5), cset([(0x30, 0x38)]), ANY_DIGITS),
)
ENUMERATE_MULTIPLES = 256
MAX_DIVISOR_STATES = 2000


def _digits(lo: int, hi: int) -> ir.Expr:
    return cset([(0x30 + lo, 0x30 + hi)])


# --------------------------------------------------------------------------- integers


def _fixed(lo: str, hi: str) -> ir.Expr:
    """Digit strings of len(lo) == len(hi) characters between lo and hi."""
    if not lo:
        return ir.EPS
    a, b = int(lo[0]), int(hi[0])
    if a == b:
        return ir.seq(_digits(a, a), _fixed(lo[1:], hi[1:]))
    n = len(lo) - 1
    parts = []
    first, last = a, b
    if lo[1:].strip("0"):
        parts.append(ir.seq(_digits(a, a), _fixed(lo[1:], "9" * n)))
        first += 1
    tail = None
    if hi[1:].strip("9"):
        tail = ir.seq(_digits(b, b), _fixed("0" * n, hi[1:]))
        last -= 1
    if first <= last:
        parts.append(ir.seq(_digits(first, last), ir.rep(DIGIT, n, n)))
    if tail is not None:
        parts.append(tail)
    return ir.alt(*parts)


def natural_range(lo: int, hi: int | None) -> ir.Expr:
    """Canonical decimal naturals (no leading zeros) in ``[lo, hi]``."""
    lo = max(lo, 0)
    if hi is not None and hi < lo:
        return ir.NOTHING
    parts = []
    n_lo = len(str(lo))
    n_hi = len(str(hi)) if hi is not None else None
    n = n_lo
    while n_hi is None or n <= n_hi:
        start = lo if n == n_lo else 10 ** (n - 1)
        if n_hi is None and n > n_lo:
            # every longer natural
            parts.append(ir.seq(NONZERO, ir.rep(DIGIT, n - 1, None)))
            break
        end = 10 ** n - 1 if (n_hi is None or n < n_hi) else hi
        parts.append(_fixed(str(start), str(end)))
        n += 1
    return ir.alt(*parts)


def integer_range(lo: int | None, hi: int | None) -> ir.Expr:
    """Integer literals (``-0`` included) with value in ``[lo, hi]`` (None: unbounded)."""
    parts = []
    if hi is None or hi >= 0:
        parts.append(natural_range(max(lo, 0) if lo is not None else 0, hi))
    if lo is None or lo <= 0:
        mag_lo = max(-hi, 0) if hi is not None else 0
        mag_hi = -lo if lo is not None else None
        parts.append(ir.seq(MINUS, natural_range(mag_lo, mag_hi)))
    return ir.alt(*parts)


def integer_multiples(k: int, lo: int | None, hi: int | None, *, excluded: tuple = (),
                      max_states: int = MAX_DIVISOR_STATES) -> ir.Expr | None:
    """Integer literals in ``[lo, hi]`` divisible by ``k`` and by none of
    ``excluded`` (character-level); None if the automaton would be too large."""
    k = abs(k)
    excluded = _useful_exclusions(k, excluded)
    if excluded is None:
        return ir.NOTHING
    if k == 1 and not excluded:
        return integer_range(lo, hi)
    if lo is not None and hi is not None:
        first = -((-lo) // k) * k
        if first > hi:
            return ir.NOTHING
        count = (hi - first) // k + 1
        if count <= ENUMERATE_MULTIPLES:
            vals = [v for v in range(first, hi + 1, k) if all(v % m for m in excluded)]
            opts = [text(str(v)) for v in vals]
            if 0 in vals:
                opts.append(text("-0"))
            return ir.alt(*opts)
    if math.lcm(k, *excluded) > max_states:
        return None
    parts = []
    try:
        if hi is None or hi >= 0:
            rng = natural_range(max(lo, 0) if lo is not None else 0, hi)
            parts.append(_multiples_dfa(rng, k, excluded, max_states))
        if lo is None or lo <= 0:
            rng = natural_range(max(-hi, 0) if hi is not None else 0, -lo if lo is not None else None)
            parts.append(ir.seq(MINUS, _multiples_dfa(rng, k, excluded, max_states)))
    except charlang.TooLarge:
        return None
    return ir.alt(*parts)


def _useful_exclusions(k: int, excluded) -> tuple | None:
    """The excluded divisors that matter for multiples of k: None if one
    divides k (no multiple of k is left), and without those that are
    multiples of another one (excluding the smaller one excludes them)."""
    ms = sorted({abs(m) for m in excluded})
    if any(k % m == 0 for m in ms):
        return None
    return tuple(m for i, m in enumerate(ms) if not any(m % d == 0 for d in ms[:i]))


def _multiples_dfa(rng: ir.Expr, k: int, excluded: tuple, max_states: int) -> ir.Expr:
    comps = [rng, charlang.DivisibleBy(k), *(charlang.DivisibleBy(m) for m in excluded)]
    formula = ("and", ("var", 0), ("var", 1), *(("not", ("var", i)) for i in range(2, len(comps))))
    dfa = charlang.combine(comps, formula, max_states=max_states)
    return (charlang.DFA_LEAF, dfa, 0) if not dfa.empty else ir.NOTHING


def non_integer(e: ir.Expr) -> ir.Expr:
    """The literals of character expression e that surely parse to a
    non-integer (:data:`NON_INTEGER`), as a DFA leaf."""
    dfa = charlang.combine([e, *NON_INTEGER])
    return ir.NOTHING if dfa.empty else (charlang.DFA_LEAF, dfa, 0)


def lower(e, sink: "charlang.RuleSink | None" = None) -> ir.Expr:
    """Character-level number expression to byte IR (numbers are ASCII).
    DFA leaves (remainder automata) become rules in ``sink``."""
    return charlang.encode(e, ir.chars, {}, sink)


PLAIN_NUMBER = lower(NUMBER)  # any JSON number, as bytes: every free-form value needs it


# --------------------------------------------------------------------------- fractions


def _ge(f: str, allow_empty: bool) -> ir.Expr:
    """Digit strings D with 0.D >= 0.f (f without trailing zeros)."""
    if not f:
        return ir.rep(DIGIT, 0 if allow_empty else 1, None)
    d = int(f[0])
    parts = [ir.seq(_digits(d, d), _ge(f[1:], True))]
    if d < 9:
        parts.append(ir.seq(_digits(d + 1, 9), ANY_DIGITS))
    return ir.alt(*parts)


def _le(f: str, allow_empty: bool) -> ir.Expr:
    """Digit strings D with 0.D <= 0.f (f without trailing zeros)."""
    if not f:
        return ir.rep(text("0"), 0 if allow_empty else 1, None)
    d = int(f[0])
    parts = [ir.seq(_digits(d, d), _le(f[1:], True))]
    if d > 0:
        parts.append(ir.seq(_digits(0, d - 1), ANY_DIGITS))
    if allow_empty:
        parts.append(ir.EPS)
    return ir.alt(*parts)


def _between(fa: str, fb: str, allow_empty: bool) -> ir.Expr:
    """Digit strings D with 0.fa <= 0.D <= 0.fb."""
    if not fa:
        return _le(fb, allow_empty)
    a = int(fa[0])
    b = int(fb[0]) if fb else 0
    if a == b:
        return ir.seq(_digits(a, a), _between(fa[1:], fb[1:], True))
    parts = [ir.seq(_digits(a, a), _ge(fa[1:], True)), ir.seq(_digits(b, b), _le(fb[1:], True))]
    if a + 1 <= b - 1:
        parts.append(ir.seq(_digits(a + 1, b - 1), ANY_DIGITS))
    return ir.alt(*parts)


def _split(x: Fraction) -> tuple[int, str]:
    """Integer part and fraction digits (no trailing zeros) of a non-negative
    terminating decimal."""
    ip = x.numerator // x.denominator
    rest = x - ip
    digits = ""
    while rest:
        rest *= 10
        d = rest.numerator // rest.denominator
        digits += str(d)
        rest -= d
        if len(digits) > 2000:
            raise ValueError("not a terminating decimal")
    return ip, digits


def _fractional_magnitudes(lo: Fraction, hi: Fraction | None) -> ir.Expr:
    """Literals ``I.F`` (F non-empty) whose value lies in ``[lo, hi]``, lo >= 0."""
    a, fa = _split(lo)
    if hi is None:
        return ir.alt(
            ir.seq(text(str(a)), DOT, _ge(fa, False)),
            ir.seq(natural_range(a + 1, None), DOT, ir.rep(DIGIT, 1, None)),
        )
    if hi < lo:
        return ir.NOTHING
    b, fb = _split(hi)
    if a == b:
        return ir.seq(text(str(a)), DOT, _between(fa, fb, False))
    parts = [ir.seq(text(str(a)), DOT, _ge(fa, False)), ir.seq(text(str(b)), DOT, _le(fb, False))]
    if a + 1 <= b - 1:
        parts.append(ir.seq(natural_range(a + 1, b - 1), DOT, ir.rep(DIGIT, 1, None)))
    return ir.alt(*parts)


def _smallest_double(bound, strict: bool) -> float | None:
    """The smallest double d with d >= bound (d > bound if strict); None if none is finite."""
    b = Fraction(bound)
    if b > Fraction(MAX_DOUBLE):
        return None
    f = float(bound) if b >= -Fraction(MAX_DOUBLE) else -MAX_DOUBLE
    while Fraction(f) < b or (strict and Fraction(f) == b):
        f = math.nextafter(f, math.inf)
        if f == math.inf:
            return None
    while True:
        g = math.nextafter(f, -math.inf)
        if g == -math.inf or Fraction(g) < b or (strict and Fraction(g) == b):
            break
        f = g
    return f


def _largest_double(bound, strict: bool) -> float | None:
    r = _smallest_double(-Fraction(bound), strict)
    return None if r is None else -r


def _dec(f: float) -> Fraction:
    """The shortest decimal that rounds to ``f``, exactly."""
    return Fraction(Decimal(repr(f)))


# --------------------------------------------------------------------------- public


def number_expr(*, integers: bool, fractions: bool, minimum=None, exclusive_minimum: bool = False,
                maximum=None, exclusive_maximum: bool = False, multiple_of: int | None = None,
                not_multiple_of: tuple = (), zero_fractions: bool = False) -> ir.Expr | None:
    """Character-level expression (possibly holding DFA leaves, see
    :func:`lower`) for the JSON numbers allowed. ``integers``: integer literals
    allowed; ``fractions``: literals with a fraction or exponent allowed.
    ``not_multiple_of``: integral divisors the number must not be a multiple
    of (fractional literals are then limited to surely non-integer ones).
    Bounds are the schema's values (int or float). None: a divisor too large."""
    parts = []
    ilo = ihi = None
    if minimum is not None:
        m = Fraction(minimum)
        ilo = math.floor(m) + 1 if exclusive_minimum else math.ceil(m)
    if maximum is not None:
        m = Fraction(maximum)
        ihi = math.ceil(m) - 1 if exclusive_maximum else math.floor(m)
    divisible = multiple_of is not None or not_multiple_of

    def multiples(lo, hi):
        return integer_multiples(multiple_of or 1, lo, hi, excluded=not_multiple_of)

    if integers:
        if divisible:
            e = multiples(ilo, ihi)
            if e is None:
                return None
            parts.append(e)
        elif ilo is None or ihi is None or ilo <= ihi:
            parts.append(integer_range(ilo, ihi))
        if zero_fractions and not fractions:
            # ``3.0`` is an integer for draft 6+ validators; the float it parses
            # to is exact up to 2**53, so its bounds check is exact there
            zlo = max(ilo, -SAFE_INTEGER) if ilo is not None else -SAFE_INTEGER
            zhi = min(ihi, SAFE_INTEGER) if ihi is not None else SAFE_INTEGER
            if zlo <= zhi:
                e = multiples(zlo, zhi) if divisible else integer_range(zlo, zhi)
                if e is not None:
                    parts.append(ir.seq(e, DOT, ir.rep(ZERO, 1, None)))
    if fractions and multiple_of is None:
        e = _fractional(minimum, exclusive_minimum, maximum, exclusive_maximum)
        parts.append(non_integer(e) if not_multiple_of else e)
    return ir.alt(*parts)


def _fractional(minimum, exclusive_minimum, maximum, exclusive_maximum) -> ir.Expr:
    """Literals with a fraction part or an exponent, within the bounds."""
    if minimum is None and maximum is None:
        return ir.seq(ir.opt(MINUS), NATURAL, ir.alt(ir.seq(FRACTION, ir.opt(EXPONENT)), EXPONENT))
    lo = hi = None
    if minimum is not None:
        d = _smallest_double(minimum, exclusive_minimum)
        if d is None:
            return ir.NOTHING
        lo = _dec(d)
    if maximum is not None:
        d = _largest_double(maximum, exclusive_maximum)
        if d is None:
            return ir.NOTHING
        hi = _dec(d)
    if lo is not None and hi is not None and lo > hi:
        return ir.NOTHING
    any_mag_exp = ir.seq(NATURAL, ir.alt(ir.seq(FRACTION, ir.opt(EXPONENT)), EXPONENT))
    parts = []
    # non-negative values in [max(lo, 0), hi]
    if hi is None or hi >= 0:
        mlo = max(lo, Fraction(0)) if lo is not None else Fraction(0)
        if mlo == 0 and hi is None:
            parts.append(any_mag_exp)
        else:
            parts.append(_fractional_magnitudes(mlo, hi))
    # negative values in [lo, min(hi, 0)]: '-' and a magnitude in [max(-hi, 0), -lo]
    if lo is None or lo <= 0:
        mlo = max(-hi, Fraction(0)) if hi is not None else Fraction(0)
        mhi = -lo if lo is not None else None
        if mlo == 0 and mhi is None:
            parts.append(ir.seq(MINUS, any_mag_exp))
        else:
            parts.append(ir.seq(MINUS, _fractional_magnitudes(mlo, mhi)))
    return ir.alt(*parts)


# --------------------------------------------------------------------------- fractional divisors

MAX_DIVISOR_EXPONENT = 6  # fractional divisors p / 2**j need j <= this (0.015625 = 1/64)
ANY_ZEROS = ir.rep(ZERO, 0, None)


def dyadic_parts(divisor: float) -> tuple[int, int] | None:
    """(p, j) with divisor = ±p / 2**j, p odd, for the non-integral divisors
    handled exactly (j <= MAX_DIVISOR_EXPONENT, p < MAX_DIVISOR_STATES)."""
    f = Fraction(divisor)
    j = f.denominator.bit_length() - 1
    p = abs(f.numerator)
    if not 1 <= j <= MAX_DIVISOR_EXPONENT or p >= MAX_DIVISOR_STATES:
        return None
    return p, j


def exact_magnitude(j: int) -> int:
    """10**d - 1, the largest such bound below 2**(53 - j): multiples of p /
    2**j up to it are exact floats with exact quotients, and a digit-count
    bound keeps remainder automata small."""
    return 10 ** math.floor((53 - j) * math.log10(2)) - 1


def dyadic_multiples(divisor: float, *, integers: bool, fractions: bool, zero_fractions: bool,
                     minimum=None, exclusive_minimum: bool = False, maximum=None,
                     exclusive_maximum: bool = False) -> ir.Expr | None:
    """Literals of the multiples of a non-integral ``divisor`` p / 2**j (p
    odd, j <= MAX_DIVISOR_EXPONENT, p < MAX_DIVISOR_STATES) within the bounds;
    None for other divisors. ``jsonschema`` divides in floating point, so only
    literals it surely accepts are allowed: no exponent and magnitude below
    2**(53 - j) (:func:`exact_magnitude`), where a literal n * divisor parses
    to that exact float and the quotient n (below 2**53) is exact. ``integers``: integer values
    allowed (``I``, and ``I.0`` when ``fractions`` or ``zero_fractions``);
    ``fractions``: other values allowed (``I.F`` with the digits of k / 2**j)."""
    pj = dyadic_parts(divisor)
    if pj is None:
        return None
    p, j = pj
    limit = exact_magnitude(j)  # largest integer part
    parts = []
    for r in range(2 ** j if fractions else 1):
        frac = Fraction(r, 2 ** j)
        spellings = []
        if r:
            spellings.append(ir.seq(DOT, text(_split(frac)[1]), ANY_ZEROS))
        elif integers:
            spellings.append(ir.EPS)
            if fractions or zero_fractions:
                spellings.append(ir.seq(DOT, ir.rep(ZERO, 1, None)))
        if not spellings:
            continue
        residue = (-r * pow(2 ** j, -1, p)) % p if p > 1 else 0
        tail = ir.alt(*spellings)
        for sign, (a, b) in ((ir.EPS, _magnitudes(frac, minimum, exclusive_minimum, maximum, exclusive_maximum)),
                             (MINUS, _magnitudes(frac, _neg(maximum), exclusive_maximum, _neg(minimum),
                                                 exclusive_minimum))):
            b = limit if b is None else min(b, limit)
            if a <= b:
                parts.append(ir.seq(sign, _residue_naturals(a, b, p, residue), tail))
    return ir.alt(*parts)


def _neg(bound):
    return None if bound is None else -Fraction(bound)


def _magnitudes(frac: Fraction, minimum, exclusive_minimum: bool, maximum,
                exclusive_maximum: bool) -> tuple[int, int | None]:
    """The integer parts I >= 0 with I + frac within the bounds."""
    a = 0
    if minimum is not None:
        m = Fraction(minimum) - frac
        a = max(a, math.floor(m) + 1 if exclusive_minimum else math.ceil(m))
    b = None
    if maximum is not None:
        m = Fraction(maximum) - frac
        b = math.ceil(m) - 1 if exclusive_maximum else math.floor(m)
    return a, b


def _residue_naturals(a: int, b: int, p: int, residue: int) -> ir.Expr:
    """Canonical naturals in [a, b] congruent to ``residue`` modulo p."""
    rng = natural_range(a, b)
    if p == 1:
        return rng
    dfa = charlang.combine([rng, charlang.DivisibleBy(p, residue)], max_states=MAX_DIVISOR_STATES * 20)
    return (charlang.DFA_LEAF, dfa, 0) if not dfa.empty else ir.NOTHING
