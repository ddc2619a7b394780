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
- ``uri`` / ``uri-reference``: RFC 3986 (ASCII only; IP literals with IPv6,
  no IPvFuture).
- ``json-pointer``, ``relative-json-pointer``: RFC 6901 and its draft extension.

Other formats raise :class:`KeyError` from :func:`format_language` (the JSON
Schema frontend turns that into ``UnsupportedSchemaError``).
"""

from __future__ import annotations

from functools import lru_cache

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

# RFC 3986
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
_HOST = rf"(?:\[{IPV6}\]|{_REG_NAME})"
_AUTHORITY = rf"(?:{_USERINFO}@)?{_HOST}(?::[0-9]*)?"
_SEGMENT = rf"{_PCHAR}*"
_SEGMENT_NZ = rf"{_PCHAR}+"
_SEGMENT_NZ_NC = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}@]|{_PCT})+"
_PATH_ABEMPTY = rf"(?:/{_SEGMENT})*"
_PATH_ABSOLUTE = rf"/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"
_PATH_ROOTLESS = rf"{_SEGMENT_NZ}(?:/{_SEGMENT})*"
_PATH_NOSCHEME = rf"{_SEGMENT_NZ_NC}(?:/{_SEGMENT})*"
_QUERY = rf"(?:{_PCHAR}|[/?])*"
_HIER = rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_ROOTLESS}|)"
URI = rf"{_SCHEME}:{_HIER}(?:\?{_QUERY})?(?:#{_QUERY})?"
_RELATIVE = rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_PATH_NOSCHEME}|)"
URI_REFERENCE = rf"(?:{URI}|{_RELATIVE}(?:\?{_QUERY})?(?:#{_QUERY})?)"

JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"
RELATIVE_JSON_POINTER = rf"(?:0|[1-9][0-9]*)(?:#|{JSON_POINTER})"

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]"


def _label(max_len: int) -> str:
    return rf"[A-Za-z0-9](?:[A-Za-z0-9\-]{{0,{max_len - 2}}}[A-Za-z0-9])?"


def _hostname() -> ir.Expr:
    options = []
    # "--" in the third and fourth positions marks IDNA labels (xn--...), which
    # must be valid punycode: not expressible, so refused
    reserved = _re(r"..--.*")
    for labels, length in ((3, 63), (7, 35), (15, 15), (31, 7)):
        label = charlang.combine([_re(_label(length)), reserved], ("and", ("var", 0), ("not", ("var", 1))))
        last = charlang.combine([_re(_label(length)), reserved, _re(r".*[A-Za-z].*")],
                                ("and", ("var", 0), ("not", ("var", 1)), ("var", 2)))
        inner = ir.rep(ir.seq((charlang.DFA_LEAF, label, 0), charlang.char(".")), 0, labels - 1)
        options.append(ir.seq(inner, (charlang.DFA_LEAF, last, 0)))
    return ir.alt(*options)


def _email() -> ir.Expr:
    # RFC 5321 Mailbox: dot-atom or quoted-string local part (at most 64
    # characters), then a hostname or an address literal
    local = _re(rf"{_ATEXT}+(?:\.{_ATEXT}+)*|\"(?:[ !#-\[\]-~]|\\[ -~])*\"")
    local = (charlang.DFA_LEAF, charlang.combine([local, charlang.length(1, 64)]), 0)
    literal = _re(rf"\[(?:{IPV4}|IPv6:{IPV6})\]")
    return ir.seq(local, charlang.char("@"), ir.alt(_hostname(), literal))


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
}

SUPPORTED_FORMATS = frozenset(_BUILDERS)


@lru_cache(maxsize=None)
def format_language(name: str) -> ir.Expr:
    """The character-level language of format ``name`` (KeyError if unsupported)."""
    return _BUILDERS[name]()
