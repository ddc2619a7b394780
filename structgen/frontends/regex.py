"""Regular expressions (ECMA-262 / JSON Schema flavour) to grammar IR.

:func:`regex_to_expr` parses a pattern and builds an IR expression with the
constructors of :mod:`structgen.grammar.ir`. Every character-matching construct
(literal characters, classes, ``.``, ``\\d``...) becomes a set of code point
ranges handed to ``encode_chars``, so a caller can decide how characters are
spelled in the automaton's input (raw UTF-8 by default; JSON string text with
escapes for the JSON Schema ``pattern`` keyword).

Why our own parser and not ``interegular.parse_pattern``: interegular refuses
``^``, ``$``, ``\\uXXXX`` and ``\\0`` (the most common constructs of schema
patterns), rejects ECMA named groups and literal ``{``, gives no error
positions, uses Python's ``\\s``, combines ``[\\D\\S]`` wrongly, and builds a set
of every single character for a class range (0.45 s for ``[\\x00-\\U0010ffff]``).
The ECMA syntax we need is small, so we parse it directly into code point
ranges.

Semantics (ECMA-262 with code point semantics, like the ``u`` flag):

- ``\\d`` = ``[0-9]``, ``\\w`` = ``[A-Za-z0-9_]``, ``\\s`` = ECMA white space and
  line terminators; ``\\D \\W \\S`` their complements.
- ``.`` is any character except ``\\n \\r \\u2028 \\u2029`` (any character
  under the ``s`` flag).
- ``[]`` matches nothing and ``[^]`` any character (ECMA, not Python).
- escapes ``\\t \\n \\r \\f \\v \\0 \\b`` (backspace, in classes) ``\\cX \\xHH
  \\uHHHH`` (surrogate pairs combine) ``\\u{H...}``, legacy octal ``\\0NN``, and
  the Python spellings ``\\UHHHHHHHH`` and ``\\N{NAME}``; a backslash before
  any other non-alphanumeric character is that character.
- quantifiers ``* + ? {n} {n,} {n,m}`` and their lazy ``?`` forms (laziness
  does not change the language); a ``{`` that does not start a valid
  quantifier is a literal.
- groups ``(...)``, ``(?:...)``, ``(?<name>...)``, ``(?P<name>...)``,
  comments ``(?#...)``, inline flags ``(?i)`` / ``(?s)`` at the start of the
  pattern and scoped ``(?i:...)``, ``(?-i:...)``.
- anchors ``^`` / ``$`` (and Python's ``\\A`` / ``\\Z``) only at the start /
  end of a top-level alternative, also through a group that is a whole
  alternative (``^(a|b)$``, ``(^a$)|(^b$)``).

Refused with :class:`~structgen.errors.RegexError` (message names the feature,
position given): look-ahead/look-behind, back-references, ``\\b``/``\\B``
word boundaries, anchors anywhere else, Unicode property escapes
``\\p{...}``, the ``m``/``x`` flags, atomic groups, conditionals, possessive
quantifiers, ``{,n}`` (literal in ECMA but ``{0,n}`` in Python), and syntax
errors.
"""

from __future__ import annotations

import bisect
import unicodedata
from typing import Callable, Iterable

from structgen.errors import RegexError, clip
from structgen.grammar import ir, utf8
from structgen.grammar.graph import merge_ranges

__all__ = ["regex_to_expr", "parse_regex", "DIGIT", "WORD", "SPACE", "LINE_TERMINATORS", "ANY"]

Ranges = tuple  # tuple of (lo, hi) code point pairs, sorted and merged

MAX_CP = utf8.MAX_CODE_POINT

DIGIT: Ranges = ((0x30, 0x39),)
WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
# ECMA-262 WhiteSpace and LineTerminator: TAB LF VT FF CR SP NBSP, category Zs, LS PS, BOM.
SPACE: Ranges = (
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)
LINE_TERMINATORS: Ranges = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
ANY: Ranges = ((0, MAX_CP),)


# --------------------------------------------------------------------------- ranges

def _complement(ranges: Ranges) -> Ranges:
    return tuple(utf8.complement(list(ranges)))


_CASE_TABLE: tuple[list[int], list[tuple[int, ...]]] | None = None


def _case_table() -> tuple[list[int], list[tuple[int, ...]]]:
    """Sorted cased code points and, for each, the other members of its
    simple-case equivalence class (closure under one-character lower/upper)."""
    global _CASE_TABLE
    if _CASE_TABLE is None:
        parent: dict[int, int] = {}

        def find(x: int) -> int:
            while parent.get(x, x) != x:
                x = parent[x]
            return x

        def union(a: int, b: int) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        for cp in range(MAX_CP + 1):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            c = chr(cp)
            for other in (c.lower(), c.upper()):
                if len(other) == 1 and other != c:
                    parent.setdefault(cp, cp)
                    parent.setdefault(ord(other), ord(other))
                    union(cp, ord(other))
        classes: dict[int, list[int]] = {}
        for cp in parent:
            classes.setdefault(find(cp), []).append(cp)
        keys = sorted(parent)
        others = [tuple(x for x in classes[find(cp)] if x != cp) for cp in keys]
        _CASE_TABLE = (keys, others)
    return _CASE_TABLE


def _case_fold(ranges: Ranges) -> Ranges:
    """Add every case variant of every character in ``ranges``."""
    keys, others = _case_table()
    extra: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for k in range(bisect.bisect_left(keys, lo), bisect.bisect_right(keys, hi)):
            extra.extend((o, o) for o in others[k])
    return merge_ranges(list(ranges) + extra) if extra else ranges


# --------------------------------------------------------------------------- parser
#
# AST nodes (tuples):
#   ("set", ranges)                  one character from the code point ranges
#   ("seq", (node, ...))             concatenation
#   ("alt", (node, ...))             alternation
#   ("group", node)                  a parenthesised group that is not quantified
#   ("rep", node, lo, hi)            repetition (hi None: unbounded)
#   ("anchor", "^" | "$", position)  an assertion


_HEX = "0123456789abcdefABCDEF"
_FLAG_NAMES = {"i", "s"}
_ASCII_DIGITS = frozenset("0123456789")


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.n = len(pattern)
        self.i = 0
        self.flags: frozenset[str] = frozenset()

    # -- helpers
    def error(self, message: str, position: int | None) -> RegexError:
        return RegexError(message, self.p, position)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < self.n else ""

    # -- grammar
    def parse(self):
        while self.p.startswith("(?", self.i) and self._is_global_flags():
            pass
        node = self.disjunction()
        if self.i < self.n:
            raise self.error("unbalanced ')'", self.i)
        return node

    def _is_global_flags(self) -> bool:
        j = self.i + 2
        while j < self.n and self.p[j].isalpha():
            j += 1
        if j == self.i + 2 or j >= self.n or self.p[j] != ")":
            return False
        self.flags = self.flags | self._check_flags(self.p[self.i + 2:j], self.i + 2)
        self.i = j + 1
        return True

    def _check_flags(self, letters: str, pos: int) -> frozenset[str]:
        for k, f in enumerate(letters):
            if f == "m":
                raise self.error("the multiline flag (?m) is not supported", pos + k)
            if f not in _FLAG_NAMES:
                raise self.error(f"inline flag {f!r} is not supported (only i and s)", pos + k)
        return frozenset(letters)

    def disjunction(self):
        options = [self.alternative()]
        while self.peek() == "|":
            self.i += 1
            options.append(self.alternative())
        return options[0] if len(options) == 1 else ("alt", tuple(options))

    def alternative(self):
        terms = []
        while self.i < self.n and self.p[self.i] not in "|)":
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else ("seq", tuple(terms))

    def term(self):
        start = self.i
        c = self.p[self.i]
        if c in "^$":
            self.i += 1
            node = ("anchor", c, start)
        elif c == "\\" and self.peek(1) in ("A", "Z"):
            self.i += 2
            node = ("anchor", "^" if self.p[start + 1] == "A" else "$", start)
        else:
            node = self.atom()
        return self.quantifier(node, start)

    def quantifier(self, node, start: int):
        q = self.peek()
        qpos = self.i
        if q in ("*", "+", "?"):
            self.i += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[q]
        elif q == "{":
            bounds = self._braces()
            if bounds is None:
                return node
            lo, hi = bounds
        else:
            return node
        if node[0] == "anchor":
            raise self.error(f"quantifier {q!r} after the assertion {node[1]!r} (nothing to repeat)", qpos)
        if node[0] == "empty":
            raise self.error(f"quantifier {q!r} with nothing to repeat", qpos)
        if self.peek() == "?":
            self.i += 1  # lazy: same language
        nxt = self.peek()
        if nxt in ("*", "+", "?") or (nxt == "{" and self._braces(consume=False) is not None):
            what = "possessive quantifier" if nxt == "+" else "multiple repeat"
            raise self.error(f"{what} {nxt!r} is not supported", self.i)
        if node[0] == "group":
            node = node[1]
        return ("rep", node, lo, hi)

    def _digits_end(self, k: int) -> int:
        """Where the run of ASCII digits at ``k`` ends (ECMA and Python's
        ``re`` count in ASCII digits only)."""
        while k < self.n and self.p[k] in _ASCII_DIGITS:
            k += 1
        return k

    def _count(self, j: int, k: int) -> int:
        """The repeat count spelled by ``p[j:k]``, at most ``ir.MAX_REPEAT``."""
        digits = self.p[j:k].lstrip("0") or "0"
        if len(digits) > len(str(ir.MAX_REPEAT)) or int(digits) > ir.MAX_REPEAT:
            raise self.error(f"repeat count {clip(digits, 30)} is above the largest supported, {ir.MAX_REPEAT}", j)
        return int(digits)

    def _braces(self, consume: bool = True):
        """Parse ``{n}``, ``{n,}``, ``{n,m}`` at the cursor; None if it is a literal brace."""
        j = self.i + 1
        k = self._digits_end(j)
        if k == j:
            if k < self.n and self.p[k] == ",":
                m = self._digits_end(k + 1)
                if m > k + 1 and m < self.n and self.p[m] == "}":
                    raise self.error(
                        "quantifier '{,n}' is ambiguous (literal text in ECMA-262, {0,n} in Python); "
                        "write {0,n} or escape the brace", self.i)
            return None
        lo = self._count(j, k)
        hi: int | None = lo
        if k < self.n and self.p[k] == ",":
            m = self._digits_end(k + 1)
            hi = self._count(k + 1, m) if m > k + 1 else None
            k = m
        if k >= self.n or self.p[k] != "}":
            return None
        if hi is not None and hi < lo:
            raise self.error(f"numbers out of order in quantifier {{{lo},{hi}}}", self.i)
        if consume:
            self.i = k + 1
        return lo, hi

    def atom(self):
        start = self.i
        c = self.p[self.i]
        if c == "(":
            return self.group()
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            self.i += 1
            return ("set", ANY if "s" in self.flags else _complement(LINE_TERMINATORS))
        if c == "\\":
            kind, value = self.escape(in_class=False)
            return ("set", self._fold(value if kind == "set" else ((value, value),)))
        if c in "*+?":
            raise self.error(f"quantifier {c!r} with nothing to repeat", start)
        if c == "{" and self._braces(consume=False) is not None:
            raise self.error("quantifier '{' with nothing to repeat", start)
        self.i += 1
        return ("set", self._fold(((ord(c), ord(c)),)))

    def group(self):
        start = self.i
        self.i += 1
        saved = self.flags
        if self.peek() == "?":
            nxt = self.peek(1)
            if nxt == ":":
                self.i += 2
            elif nxt in ("=", "!"):
                raise self.error(f"look-ahead '(?{nxt}' is not supported", start)
            elif nxt == "<" and self.peek(2) in ("=", "!"):
                raise self.error(f"look-behind '(?<{self.peek(2)}' is not supported", start)
            elif nxt == "<" or (nxt == "P" and self.peek(2) == "<"):
                j = self.p.find(">", self.i)
                name = self.p[self.i + (2 if nxt == "<" else 3):j] if j >= 0 else ""
                if j < 0 or not name.isidentifier():
                    raise self.error("bad group name", start)
                self.i = j + 1
            elif nxt == "P" and self.peek(2) == "=":
                raise self.error("back-reference '(?P=name)' is not supported", start)
            elif nxt == "#":
                j = self.p.find(")", self.i)
                if j < 0:
                    raise self.error("unterminated comment group", start)
                self.i = j + 1
                return ("empty",)
            elif nxt == ">":
                raise self.error("atomic group '(?>' is not supported", start)
            elif nxt == "(":
                raise self.error("conditional group '(?(' is not supported", start)
            else:
                j = self.i + 1
                while j < self.n and (self.p[j].isalpha() or self.p[j] == "-"):
                    j += 1
                spec = self.p[self.i + 1:j]
                if j < self.n and self.p[j] == ")" and spec and "-" not in spec:
                    raise self.error("inline flags are only supported at the start of the pattern", start)
                if not spec or j >= self.n or self.p[j] != ":" or spec.count("-") > 1 or spec == "-":
                    raise self.error(f"unknown group extension '(?{nxt}'", start)
                on, _, off = spec.partition("-")
                add = self._check_flags(on, self.i + 1)
                remove = self._check_flags(off, self.i + 2 + len(on))
                self.flags = (self.flags | add) - remove
                self.i = j + 1
        inner = self.disjunction()
        self.flags = saved
        if self.peek() != ")":
            raise self.error("missing ')', unterminated group", start)
        self.i += 1
        return ("group", inner)

    def _fold(self, ranges: Ranges) -> Ranges:
        return _case_fold(ranges) if "i" in self.flags else ranges

    def char_class(self) -> Ranges:
        start = self.i
        self.i += 1
        negate = False
        if self.peek() == "^":
            negate = True
            self.i += 1
        parts: list[tuple[int, int]] = []
        while True:
            if self.i >= self.n:
                raise self.error("unterminated character class", start)
            if self.p[self.i] == "]":
                self.i += 1
                break
            a_pos = self.i
            kind, value = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                b_pos = self.i
                kind2, value2 = self.class_atom()
                if kind == "set" or kind2 == "set":
                    raise self.error("a class escape like \\d cannot be a range endpoint",
                                     a_pos if kind == "set" else b_pos)
                if value > value2:
                    raise self.error(f"character range out of order {self.p[a_pos:self.i]!r}", a_pos)
                parts.append((value, value2))
            elif kind == "set":
                parts.extend(value)
            else:
                parts.append((value, value))
        ranges = self._fold(merge_ranges(parts))
        return _complement(ranges) if negate else ranges

    def class_atom(self):
        c = self.p[self.i]
        if c == "\\":
            return self.escape(in_class=True)
        self.i += 1
        return "cp", ord(c)

    def _hex(self, count: int, start: int, what: str) -> int:
        digits = self.p[self.i:self.i + count]
        if len(digits) != count or any(d not in _HEX for d in digits):
            raise self.error(f"incomplete escape {what}: expected {count} hex digits", start)
        self.i += count
        return int(digits, 16)

    def escape(self, in_class: bool):
        """At a backslash. Returns ("cp", code point) or ("set", ranges)."""
        start = self.i
        self.i += 1
        if self.i >= self.n:
            raise self.error("pattern ends with a lone backslash", start)
        c = self.p[self.i]
        self.i += 1
        simple = {"t": 9, "n": 10, "v": 11, "f": 12, "r": 13}
        if c in simple:
            return "cp", simple[c]
        classes = {"d": DIGIT, "w": WORD, "s": SPACE}
        if c in classes:
            return "set", classes[c]
        if c.lower() in classes and c.isupper():
            return "set", _complement(classes[c.lower()])
        if c == "b":
            if in_class:
                return "cp", 8
            raise self.error("word boundary '\\b' is not supported", start)
        if c == "B":
            raise self.error("non-word-boundary '\\B' is not supported", start)
        if c in "AZ" and in_class:
            raise self.error(f"'\\{c}' is not allowed in a character class", start)
        if c == "z" or c == "G":
            raise self.error(f"anchor '\\{c}' is not supported (use '$' or '\\Z')", start)
        if c == "x":
            return "cp", self._hex(2, start, "\\x")
        if c == "u":
            if self.peek() == "{":
                j = self.p.find("}", self.i)
                digits = self.p[self.i + 1:j] if j >= 0 else ""
                if not digits or any(d not in _HEX for d in digits) or int(digits, 16) > MAX_CP:
                    raise self.error("bad escape \\u{...}", start)
                self.i = j + 1
                return "cp", int(digits, 16)
            cp = self._hex(4, start, "\\u")
            if 0xD800 <= cp <= 0xDBFF and self.p.startswith("\\u", self.i):
                save = self.i
                self.i += 2
                try:
                    low = self._hex(4, save, "\\u")
                except RegexError:
                    self.i = save
                    return "cp", cp
                if 0xDC00 <= low <= 0xDFFF:
                    return "cp", 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
                self.i = save
            return "cp", cp  # a lone surrogate matches nothing (it is not valid UTF-8)
        if c == "U":
            cp = self._hex(8, start, "\\U")
            if cp > MAX_CP:
                raise self.error("bad escape \\U: beyond U+10FFFF", start)
            return "cp", cp
        if c == "N" and self.peek() == "{":
            j = self.p.find("}", self.i)
            try:
                ch = unicodedata.lookup(self.p[self.i + 1:j]) if j >= 0 else ""
            except KeyError:
                ch = ""
            if len(ch) != 1:
                raise self.error("bad character name in \\N{...}", start)
            self.i = j + 1
            return "cp", ord(ch)
        if c == "c":
            letter = self.peek()
            if not ("a" <= letter <= "z" or "A" <= letter <= "Z"):
                raise self.error("bad control escape \\c: expected a letter", start)
            self.i += 1
            return "cp", ord(letter) % 32
        if c in "pP":
            raise self.error(f"Unicode property escape '\\{c}{{...}}' is not supported", start)
        if c == "k":
            raise self.error("back-reference '\\k<name>' is not supported", start)
        if c == "0" or (in_class and c in "1234567"):
            # NUL, or legacy octal (\0NN; in classes \NNN): Python and ECMA Annex B agree.
            j = self.i
            while j < self.n and j < self.i + 2 and self.p[j] in "01234567":
                j += 1
            value = int(c + self.p[self.i:j], 8)
            if value > 0o377:
                j -= 1
                value = int(c + self.p[self.i:j], 8)
            self.i = j
            return "cp", value
        if c.isdigit():
            raise self.error(f"back-reference '\\{c}' is not supported", start)
        if c.isalnum():
            raise self.error(f"unknown escape '\\{c}'", start)
        return "cp", ord(c)


def parse_regex(pattern: str):
    """Parse ``pattern`` into the internal AST (see the node list above)."""
    try:
        return _Parser(pattern).parse()
    except RecursionError:
        raise RegexError("pattern is nested too deeply", pattern) from None


# --------------------------------------------------------------------------- anchors

def _alternatives(node) -> tuple:
    return node[1] if node[0] == "alt" else (node,)


def _terms(node) -> list:
    if node[0] == "seq":
        return list(node[1])
    if node[0] == "empty":
        return []
    return [node]


def _split_anchors(node, outer_start: bool = False, outer_end: bool = False) -> list:
    """Top-level alternatives as (start_anchored, body, end_anchored)."""
    out = []
    for option in _alternatives(node):
        terms = _terms(option)
        a_start, a_end = outer_start, outer_end
        while terms and terms[0][0] == "anchor" and terms[0][1] == "^":
            a_start = True
            terms.pop(0)
        while terms and terms[-1][0] == "anchor" and terms[-1][1] == "$":
            a_end = True
            terms.pop()
        if len(terms) == 1 and terms[0][0] == "group" and _find_anchor(terms[0]) is not None:
            out.extend(_split_anchors(terms[0][1], a_start, a_end))
            continue
        # (?:^a|^b)c and a(?:b$|c$): a leading / trailing group whose every
        # alternative carries the anchor anchors the whole alternative.
        if len(terms) > 1 and terms[0][0] == "group":
            stripped = _strip_group_anchor(terms[0], 0, "^")
            if stripped is not None:
                terms[0] = stripped
                a_start = True
        if len(terms) > 1 and terms[-1][0] == "group":
            stripped = _strip_group_anchor(terms[-1], -1, "$")
            if stripped is not None:
                terms[-1] = stripped
                a_end = True
        body = ("seq", tuple(terms))
        out.append((a_start, body, a_end))
    return out


def _strip_group_anchor(group, index: int, kind: str):
    """The group without the ``kind`` anchor at the ``index`` end of each of
    its alternatives, or None unless every alternative has it there."""
    options = []
    for option in _alternatives(group[1]):
        terms = _terms(option)
        if not terms or terms[index][0] != "anchor" or terms[index][1] != kind:
            return None
        while terms and terms[index][0] == "anchor" and terms[index][1] == kind:
            terms.pop(index)
        options.append(("seq", tuple(terms)))
    return ("group", options[0] if len(options) == 1 else ("alt", tuple(options)))


def _find_anchor(node):
    stack = [node]
    while stack:
        x = stack.pop()
        kind = x[0]
        if kind == "anchor":
            return x
        if kind in ("seq", "alt"):
            stack.extend(x[1])
        elif kind in ("group", "rep"):
            stack.append(x[1])
    return None


# --------------------------------------------------------------------------- to IR

def _default_encode(ranges: list[tuple[int, int]]) -> ir.Expr:
    return ir.chars(ranges)


class _Builder:
    def __init__(self, encode_chars: Callable[[list[tuple[int, int]]], ir.Expr]) -> None:
        self.encode = encode_chars
        self.cache: dict[Ranges, ir.Expr] = {}

    def chars(self, ranges: Ranges) -> ir.Expr:
        e = self.cache.get(ranges)
        if e is None:
            valid = utf8.remove_surrogates(list(ranges))
            e = self.encode(valid) if valid else ir.NOTHING
            self.cache[ranges] = e
        return e

    def build(self, node) -> ir.Expr:
        kind = node[0]
        if kind == "set":
            return self.chars(node[1])
        if kind == "seq":
            return ir.seq(*(self.build(x) for x in node[1]))
        if kind == "alt":
            return ir.alt(*(self.build(x) for x in node[1]))
        if kind == "group":
            return self.build(node[1])
        if kind == "rep":
            return ir.rep(self.build(node[1]), node[2], node[3])
        if kind == "empty":
            return ir.EPS
        raise AssertionError(kind)


def regex_to_expr(pattern: str, *, search: bool = False,
                  encode_chars: Callable[[list[tuple[int, int]]], ir.Expr] | None = None) -> ir.Expr:
    """The IR expression for the strings ``pattern`` matches.

    ``search=False``: the whole string must match (``re.fullmatch``).
    ``search=True`` (JSON Schema ``pattern``): the pattern may match anywhere in
    the string; a top-level alternative starting with ``^`` / ending with ``$``
    is anchored on that side.

    ``encode_chars(ranges)`` receives sorted, merged, surrogate-free inclusive
    code point ranges (never empty) and returns the expression for one such
    character; default: its UTF-8 bytes (:func:`structgen.grammar.ir.chars`).
    It is called once per distinct set.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"regex pattern must be a str, not {type(pattern).__name__}")
    tree = parse_regex(pattern)
    options = _split_anchors(tree)
    for _, body, _ in options:
        anchor = _find_anchor(body)
        if anchor is not None:
            side = "start" if anchor[1] == "^" else "end"
            raise RegexError(
                f"anchor {anchor[1]!r} is only supported at the {side} of the pattern or of a "
                f"top-level alternative", pattern, anchor[2])
    builder = _Builder(encode_chars or _default_encode)
    any_star = None
    out = []
    for a_start, body, a_end in options:
        e = builder.build(body)
        if search and e != ir.NOTHING and not (a_start and a_end):
            if any_star is None:
                any_star = ir.rep(builder.chars(ANY), 0, None)
            e = ir.seq(ir.EPS if a_start else any_star, e, ir.EPS if a_end else any_star)
        out.append(e)
    return ir.alt(*out)
