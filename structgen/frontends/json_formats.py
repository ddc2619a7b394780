"""String ``format`` values as character-level languages (see :mod:`charlang`).

Every language here is *sound*: a string it accepts passes ``jsonschema``'s
``FormatChecker`` for that format (when the checker's optional dependency is
installed) and the RFC the format names. Where the RFC is looser than what is
easy to express, we accept a subset:

- ``date``: ``YYYY-MM-DD`` with a real calendar date (month lengths, Feb 29 in
  leap years only, year 0000 rejected as Python's ``date`` does).
- ``date-time``: RFC 3339, ``T``/``t`` separator, ``Z``/``z`` or ``+hh:mm``
  offset, seconds 00-59 (the checker rejects leap seconds), calendar-checked date.
- ``time``: the time part of the above (offset required).
- ``duration``: RFC 3339 appendix A (``P1Y2M3D``, ``PT4H``, ``P2W``...).
- ``email``: RFC 5321 mailbox: a dot-atom or quoted-string local part (at
  most 64 characters) and a hostname or an ``[IPv4]`` / ``[IPv6:...]`` literal.
- ``hostname``: RFC 1123 labels (alphanumerics and inner hyphens, at most 63
  characters, no ``--`` in positions 3-4 as IDNA ``xn--`` labels need valid
  punycode), the last label containing a letter; the 253-character total is
  guaranteed by bounding label count and length together (up to 3 labels of
  63, 7 of 35, 15 of 15 or 31 of 7 characters).
- ``ipv4``: dotted quad, no leading zeros; ``ipv6``: RFC 4291 text forms
  (one ``::``, optional trailing dotted quad, no zone id).
- ``uuid``: 8-4-4-4-12 hex digits.
- ``uri`` / ``uri-reference``: RFC 3986; ``iri`` / ``iri-reference``: RFC
  3987 (the same with ``ucschar`` and, in queries, ``iprivate``).
- ``uri-template``: RFC 6570 level 4 with erratum 6937, without the
  operators reserved for future extensions.
- ``json-pointer``, ``relative-json-pointer``: RFC 6901 and its draft extension.
- ``regex``: a subset of the patterns valid for ECMA-262 (with or without the
  ``u`` flag) and for Python's ``re``, which ``jsonschema`` compiles them with
  (see :func:`_regex`).
- ``full-date``: RFC 3339's name for ``date``.
- OpenAPI Format Registry: ``byte`` is canonical RFC 4648 base64 (padding
  required, pad bits zero); ``binary``, ``password``, ``commonmark`` and
  ``html`` constrain nothing beyond the string type.

Other formats raise :class:`KeyError` from :func:`format_language` (the JSON
Schema frontend turns that into ``UnsupportedSchemaError``).

A format alone is compiled from its expression; intersected with other
string constraints it needs its minimised automaton (:func:`format_automaton`),
which takes up to a second to build. ``python -m structgen.warmup`` writes
those automata, and the ones their builders use, to an on-disk cache keyed
by the sources they come from; a process without the cache builds them.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
from functools import lru_cache
from pathlib import Path

from structgen.frontends import charlang
from structgen.frontends.regex import regex_to_expr
from structgen.grammar import ir


def _re(pattern: str) -> ir.Expr:
    return regex_to_expr(pattern, search=False, encode_chars=charlang.cset)


_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
              r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
DATE = rf"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP}-02-29)"
TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
DATE_TIME = rf"{DATE}[Tt]{TIME}"

_DUR_TIME = r"T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
DURATION = (rf"P(?:(?:[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?|[0-9]+M(?:[0-9]+D)?|[0-9]+D)(?:{_DUR_TIME})?"
            rf"|{_DUR_TIME}|[0-9]+W)")

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{IPV4})"
IPV6 = "(?:" + "|".join([
    rf"(?:{_H16}:){{6}}{_LS32}",
    rf"::(?:{_H16}:){{5}}{_LS32}",
    rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
]) + ")"

UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"

# RFC 3986 URIs; RFC 3987 IRIs add ``ucschar`` to the unreserved characters
# and ``iprivate`` to queries
_UCSCHAR = r"\u{a0}-\u{d7ff}\u{f900}-\u{fdcf}\u{fdf0}-\u{ffef}" + "".join(
    rf"\u{{{p:x}0000}}-\u{{{p:x}fffd}}" for p in range(1, 14)) + r"\u{e1000}-\u{efffd}"
_IPRIVATE = r"\u{e000}-\u{f8ff}\u{f0000}-\u{ffffd}\u{100000}-\u{10fffd}"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_IP_LITERAL = rf"\[(?:{IPV6}|[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~{_SUB_DELIMS}:]+)\]"


def _uri_patterns(ucs: str = "", private: str = "") -> tuple[str, str]:
    """(absolute, reference) patterns of RFC 3986 URIs, or with RFC 3987's
    ``ucschar`` and ``iprivate`` ranges given, of IRIs."""
    unreserved = rf"A-Za-z0-9\-._~{ucs}"
    pchar = rf"(?:[{unreserved}{_SUB_DELIMS}:@]|{_PCT})"
    userinfo = rf"(?:[{unreserved}{_SUB_DELIMS}:]|{_PCT})*"
    reg_name = rf"(?:[{unreserved}{_SUB_DELIMS}]|{_PCT})*"
    authority = rf"(?:{userinfo}@)?(?:{_IP_LITERAL}|{reg_name})(?::[0-9]*)?"
    segment_nz_nc = rf"(?:[{unreserved}{_SUB_DELIMS}@]|{_PCT})+"
    path_abempty = rf"(?:/{pchar}*)*"
    path_absolute = rf"/(?:{pchar}+{path_abempty})?"
    query = rf"(?:{pchar}|[/?{private}])*"
    fragment = rf"(?:{pchar}|[/?])*"
    tail = rf"(?:\?{query})?(?:#{fragment})?"
    hier = rf"(?://{authority}{path_abempty}|{path_absolute}|{pchar}+{path_abempty}|)"
    relative = rf"(?://{authority}{path_abempty}|{path_absolute}|{segment_nz_nc}{path_abempty}|)"
    absolute = rf"{_SCHEME}:{hier}{tail}"
    return absolute, rf"(?:{absolute}|{relative}{tail})"


URI, URI_REFERENCE = _uri_patterns()
IRI, IRI_REFERENCE = _uri_patterns(_UCSCHAR, _IPRIVATE)

# RFC 6570 level 4 with erratum 6937 (the apostrophe is a literal); the
# operators reserved for future extensions (= , ! @ |) are refused
_VARCHAR = rf"(?:[A-Za-z0-9_]|{_PCT})"
_VARSPEC = rf"{_VARCHAR}(?:\.?{_VARCHAR})*(?::[1-9][0-9]{{0,3}}|\*)?"
URI_TEMPLATE = (rf"(?:[!#$&-;=?-\[\]_a-z~{_UCSCHAR}{_IPRIVATE}]|{_PCT}"
                rf"|\{{[+#./;?&]?{_VARSPEC}(?:,{_VARSPEC})*\}})*")

# RFC 4648 section 4, canonical: the pad bits of the last group are zero
_B64 = "A-Za-z0-9+/"
BASE64 = rf"(?:[{_B64}]{{4}})*(?:[{_B64}][AQgw]==|[{_B64}]{{2}}[AEIMQUYcgkosw048]=)?"

JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"
RELATIVE_JSON_POINTER = rf"(?:0|[1-9][0-9]*)(?:#|{JSON_POINTER})"

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]"


def _label(max_len: int) -> str:
    return rf"[A-Za-z0-9](?:[A-Za-z0-9\-]{{0,{max_len - 2}}}[A-Za-z0-9])?"


@lru_cache(maxsize=None)
def _hostname() -> ir.Expr:
    options = []
    # "--" in the third and fourth positions marks IDNA labels (xn--...), which
    # must be valid punycode: not expressible, so refused
    reserved = _re(r"..--.*")
    for labels, length in ((3, 63), (7, 35), (15, 15), (31, 7)):
        label = _stored(f"hostname-label-{length}", lambda: charlang.combine(
            [_re(_label(length)), reserved], ("and", ("var", 0), ("not", ("var", 1)))))
        last = _stored(f"hostname-last-label-{length}", lambda: charlang.combine(
            [_re(_label(length)), reserved, _re(r".*[A-Za-z].*")], ("and", ("var", 0), ("not", ("var", 1)), ("var", 2))))
        inner = ir.rep(ir.seq((charlang.DFA_LEAF, label, 0), charlang.char(".")), 0, labels - 1)
        options.append(ir.seq(inner, (charlang.DFA_LEAF, last, 0)))
    return ir.alt(*options)


def _email() -> ir.Expr:
    # RFC 5321 Mailbox: dot-atom or quoted-string local part (at most 64
    # characters), then a hostname or an address literal
    local = _re(rf"{_ATEXT}+(?:\.{_ATEXT}+)*|\"(?:[ !#-\[\]-~]|\\[ -~])*\"")
    local = (charlang.DFA_LEAF, _stored("email-local-part", lambda: charlang.combine([local, charlang.length(1, 64)])), 0)
    literal = _re(rf"\[(?:{IPV4}|IPv6:{IPV6})\]")
    return ir.seq(local, charlang.char("@"), ir.alt(_hostname(), literal))


REGEX_GROUP_DEPTH = 4  # group nesting the ``regex`` format accepts
_SYNTAX_CHARS = "^$\\.*+?()[]{}|"


def _chars(s: str) -> ir.Expr:
    return charlang.cset([(ord(c), ord(c)) for c in s])


def _chars_except(s: str) -> ir.Expr:
    return charlang.cset(charlang.subtract_ranges(charlang.ANY_RANGES, charlang.merge_ranges(
        (ord(c), ord(c)) for c in s)))


def _repeat_bounds() -> ir.Expr:
    """``{n}``, ``{n,}``, ``{n,m}`` with n <= m (ECMA rejects n > m), counts of
    at most 4 digits: m longer than n, both of one digit, or two digits with
    the first of m greater."""
    digit = charlang.cset([(0x30, 0x39)])
    number = ir.alt(digit, ir.seq(charlang.cset([(0x31, 0x39)]), ir.rep(digit, 1, 3)))

    def sized(n: int, hi: int) -> ir.Expr:  # canonical numbers of n to hi digits
        return digit if hi == 1 else ir.seq(charlang.cset([(0x31, 0x39)]), ir.rep(digit, n - 1, hi - 1))

    def up_from(d: int) -> ir.Expr:
        return charlang.cset([(0x30 + d, 0x39)])

    comma = charlang.char(",")
    pairs = [ir.seq(sized(n, n), comma, sized(n + 1, 4)) for n in (1, 2, 3)]
    pairs += [ir.seq(charlang.char(str(d)), comma, up_from(d)) for d in range(10)]
    pairs += [ir.seq(charlang.char(str(d)), digit, comma, up_from(d + 1), digit) for d in range(1, 9)]
    return ir.seq(charlang.char("{"), ir.alt(number, ir.seq(number, comma), *pairs), charlang.char("}"))


def _class_ranges() -> list[ir.Expr]:
    """``x-y`` within the digits or the letters of one case, with x the
    first of them or y the last (``0-7``, ``a-f``, ``1-9``): ordered ranges
    whose check needs no memory of x."""
    out = []
    for lo, hi in ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)):
        dash_to = ir.seq(charlang.char("-"), charlang.cset([(hi, hi)]))
        out.append(ir.seq(charlang.cset([(lo, lo)]), charlang.char("-"), charlang.cset([(lo, hi)])))
        out.append(ir.seq(charlang.cset([(lo + 1, hi)]), dash_to))
    return out


def _flat_regex() -> ir.Expr:
    """The ``regex`` format without groups: alternatives of literals, ``.``,
    escapes of syntax characters and of ``/``, ``\\d \\w \\s`` and their
    complements, control, ``\\x`` and ``\\u`` escapes, classes with
    :func:`_class_ranges`, assertions ``^ $ \\b \\B``, and greedy or lazy
    quantifiers after an atom."""
    hexdigit = charlang.cset([(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)])
    escape = ir.seq(charlang.char("\\"), ir.alt(
        _chars(_SYNTAX_CHARS + "/dDwWsSnrtfv"),
        ir.seq(charlang.char("x"), ir.rep(hexdigit, 2, 2)),
        ir.seq(charlang.char("u"), ir.rep(hexdigit, 4, 4))))
    # unescaped ^ only leads a class, [ and doubled & | ~ are Python's
    # future set operations (FutureWarning), so they are left out
    item = ir.alt(_chars_except("\\]-[^&|~"), escape, charlang.text("\\-"), *_class_ranges())
    dash = charlang.char("-")
    body = ir.alt(ir.seq(dash, ir.rep(item, 0, None)), ir.seq(ir.rep(item, 1, None), ir.opt(dash)))
    klass = ir.seq(charlang.char("["), ir.opt(charlang.char("^")), body, charlang.char("]"))
    atom = ir.alt(_chars_except(_SYNTAX_CHARS), charlang.char("."), escape, klass)
    quantifier = ir.seq(ir.alt(_chars("*+?"), _repeat_bounds()), ir.opt(charlang.char("?")))
    assertion = ir.alt(_chars("^$"), charlang.text("\\b"), charlang.text("\\B"))
    alternative = ir.rep(ir.alt(ir.seq(atom, ir.opt(quantifier)), assertion), 0, None)
    return ir.seq(alternative, ir.rep(ir.seq(charlang.char("|"), alternative), 0, None))


class _Groups(charlang.Component):
    """Groups ``(...)`` and ``(?:...)`` nested up to ``max_depth`` around the
    minimal DFA of :func:`_flat_regex`. A closed group is an atom, and every
    state after an atom is the same minimal state, so the automaton needs only
    the depth: ``(`` opens where ``.`` would lead there, ``)`` closes where
    the pattern may end. State: (depth, flat state or OPEN / OPEN_Q)."""

    OPEN, OPEN_Q = -1, -2  # after "(" and after "(?"

    def __init__(self, flat: charlang.DFA, max_depth: int) -> None:
        self.flat = flat
        self.max_depth = max_depth
        self.start = (0, 0)
        self.after_atom = self._flat_step(0, ord("."))

    def _flat_step(self, s: int, c: int) -> int | None:
        for ranges, t in self.flat.trans[s]:
            if any(lo <= c <= hi for lo, hi in ranges):
                return t
        return None

    def step(self, state, c: int):
        depth, s = state
        if s == self.OPEN_Q:
            return (depth, 0) if c == ord(":") else None
        if s == self.OPEN:
            if c == ord("?"):
                return (depth, self.OPEN_Q)
            s = 0
        t = self._flat_step(s, c)
        if t is not None:
            return (depth, t)
        if c == ord("(") and depth < self.max_depth and self._flat_step(s, ord(".")) == self.after_atom:
            return (depth + 1, self.OPEN)
        if c == ord(")") and depth > 0 and self.flat.accept[s]:
            return (depth - 1, self.after_atom)
        return None

    def accepting(self, state) -> bool:
        return state[0] == 0 and state[1] >= 0 and self.flat.accept[state[1]]

    def cuts(self, state):
        s = max(state[1], 0)
        points = {ord(x) + d for x in "()?:" for d in (0, 1)}
        points.update(p for ranges, _ in self.flat.trans[s] for lo, hi in ranges for p in (lo, hi + 1))
        return points


def _regex() -> ir.Expr:
    """ECMA-262 patterns valid with and without the ``u`` flag that Python's
    ``re`` (``jsonschema``'s checker) compiles too: :func:`_flat_regex` with
    groups. A subset (no back-references, named groups, look-arounds, ``{``,
    ``}`` or ``]`` literals, ranges such as ``c-x``...): every string accepted
    is a valid regex for both."""
    def make():
        flat = charlang.minimize(charlang.dfa_of(_flat_regex()))
        return charlang.minimize(charlang.combine([_Groups(flat, REGEX_GROUP_DEPTH)]))

    return (charlang.DFA_LEAF, _stored("regex-groups", make), 0)


_BUILDERS = {
    "date": lambda: _re(DATE),
    "date-time": lambda: _re(DATE_TIME),
    "time": lambda: _re(TIME),
    "duration": lambda: _re(DURATION),
    "email": _email,
    "hostname": _hostname,
    "ipv4": lambda: _re(IPV4),
    "ipv6": lambda: _re(IPV6),
    "uuid": lambda: _re(UUID),
    "uri": lambda: _re(URI),
    "uri-reference": lambda: _re(URI_REFERENCE),
    "json-pointer": lambda: _re(JSON_POINTER),
    "relative-json-pointer": lambda: _re(RELATIVE_JSON_POINTER),
    "iri": lambda: _re(IRI),
    "iri-reference": lambda: _re(IRI_REFERENCE),
    "uri-template": lambda: _re(URI_TEMPLATE),
    "regex": _regex,
    # RFC 3339's name for the production JSON Schema calls ``date``
    "full-date": lambda: _re(DATE),
    # OpenAPI Format Registry
    "byte": lambda: _re(BASE64),
    # registry formats that constrain nothing beyond the string type: any
    # octets, a UI hint to mask the value, markup every parser accepts
    # (CommonMark defines a rendering of every string; HTML a parse of one)
    "binary": lambda: charlang.ANY_STRING,
    "password": lambda: charlang.ANY_STRING,
    "commonmark": lambda: charlang.ANY_STRING,
    "html": lambda: charlang.ANY_STRING,
}

SUPPORTED_FORMATS = frozenset(_BUILDERS)


_MAX_FORMAT_STATES = 8000  # email's automaton, the largest, has 3,273 states once minimised


@lru_cache(maxsize=None)
def format_language(name: str) -> ir.Expr:
    """The character-level language of format ``name`` (KeyError if
    unsupported), as an expression: encoded alone it makes a far smaller
    grammar than its automaton would (email: 3,273 states)."""
    e = _BUILDERS[name]()
    _format_of[id(e)] = name  # e stays alive in this function's cache
    return e


_format_of: dict[int, str] = {}


def format_automaton(e: ir.Expr) -> charlang.DFA | None:
    """The minimised automaton of ``e`` if it is a format's language, else
    None. Intersecting a format with other string constraints needs it, and
    making it takes up to a second (email 0.9 s, hostname 0.6 s, iri 0.25 s),
    so :func:`store_format_cache` (run by ``structgen.warmup`` after
    installing) keeps them on disk and a process reads them from there."""
    name = _format_of.get(id(e))
    if name is None or format_language(name) is not e:
        return None
    return _automaton(name)


def _automaton(name: str) -> charlang.DFA:
    return _stored(name, lambda: charlang.minimize(charlang.dfa_of(format_language(name), max_states=_MAX_FORMAT_STATES)))


# --------------------------------------------------------------------------- the on-disk cache

_made: dict[str, charlang.DFA] = {}  # every automaton _stored has returned in this process


def _stored(key: str, make) -> charlang.DFA:
    """The automaton ``make()`` builds, from the on-disk cache when it is
    there. The formats' languages and the automata their builders need (the
    hostname labels, the regex format's groups) all come through here, so
    that a process with the cache builds none of them."""
    dfa = _made.get(key)
    if dfa is None:
        dfa = _read_cached(key)
        if dfa is None:
            dfa = make()
        _made[key] = dfa
    return dfa


@lru_cache(maxsize=1)
def _cache_dir() -> Path:
    """The cache folder of this version of the frontends: its name is a hash
    of their sources and the IR's, so an edit never reads stale automata."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sorted([*here.glob("*.py"), *(here.parent / "grammar").glob("*.py")]):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return here / "__pycache__" / f"formats-{digest.hexdigest()[:16]}"


def _read_cached(key: str) -> charlang.DFA | None:
    # The garbage collector is held off while the ten thousand small tuples
    # of a large automaton are made: its passes over them took 50 of 60 ms.
    collecting = gc.isenabled()
    gc.disable()
    try:
        data = json.loads((_cache_dir() / f"{key}.json").read_text())
        trans = [[(tuple((lo, hi) for lo, hi in ranges), t) for ranges, t in row] for row in data["trans"]]
        dfa = charlang.DFA(trans, [bool(a) for a in data["accept"]], minimal=bool(data["minimal"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: build it
    finally:
        if collecting:
            gc.enable()
    return dfa if len(dfa.trans) == len(dfa.accept) else None


def store_format_cache() -> int:
    """Build every format's automata and write those not in the cache yet;
    returns how many were written (0 when the folder cannot be written)."""
    folder = _cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return 0
    for stale in folder.parent.glob("formats-*"):
        if stale != folder:
            shutil.rmtree(stale, ignore_errors=True)
    for name in sorted(_BUILDERS):
        if format_language(name) != charlang.ANY_STRING:
            _automaton(name)
    written = 0
    for key, dfa in sorted(_made.items()):
        path = folder / f"{key}.json"
        if path.exists():
            continue
        trans = [[[[list(r) for r in ranges], t] for ranges, t in row] for row in dfa.trans]
        text = json.dumps({"trans": trans, "accept": dfa.accept, "minimal": dfa.minimal}, separators=(",", ":"))
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        except OSError:
            return written
        written += 1
    return written
