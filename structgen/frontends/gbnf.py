r"""GBNF grammars (the grammar format of llama.cpp) to grammar IR.

:func:`load_gbnf` reads GBNF text, or a ``.gbnf`` file given as a
``pathlib.Path`` (a ``str`` is always grammar text), and returns a
:class:`~structgen.grammar.ir.Grammar` whose start rule is ``root``. Each GBNF
rule becomes one IR rule of the same name; a rule name used in a body becomes
``ir.ref(name)``, so recursion stays real recursion (the automaton expands
references lazily).

Supported syntax::

    # a comment runs to the end of the line
    root      ::= greeting ", " name "!"          # sequence
    greeting  ::= "hello" | "hi"                  # alternatives
    name      ::= [A-Z] [a-z]*                    # character classes, * + ?
    id-number ::= [0-9]{3} ("-" [0-9]{2,4})?      # {n} {n,} {n,m} {,m}, groups
    anything  ::= .*                              # . is any character
    quoted    ::= "\"" [^"\\]* "\""               # escapes, negated classes
    list      ::= "[" (                           # a rule may span several lines
                    item ("," item)*
                  )? "]"
                | "none"
    item      ::= [a-z]+

- Rule names: letters, digits, ``-`` and ``_``. A rule definition
  ``name ::= ...`` must begin its line; every other line break is plain
  white space, so bodies continue over as many lines as needed (a line may
  also start with ``|``). Each rule is defined once.
- Strings ``"..."`` and character classes ``[...]`` / ``[^...]`` (ranges
  ``a-z``; ``-`` is literal first or last; ``[]`` matches nothing, ``[^]``
  any character) take the escapes ``\n \t \r \f \v \b \0``,
  ``\xHH``, ``\uHHHH``, ``\UHHHHHHHH`` and a backslash before any ASCII
  punctuation or space (``\" \\ \] \[ \- \^`` ...), which is that
  character. Strings hold no raw line break (write ``\n``).
- ``.`` is any character, line breaks included (as in llama.cpp).
- Postfix operators ``* + ? {n} {n,} {n,m} {,m}`` apply to the element
  before them and may be stacked (``"a"{2}?``).
- ``()`` and an empty alternative (``a ::= "x" |``) match the empty string.

Characters are Unicode code points, spelled as UTF-8 in the automaton:
``"\xe9"`` and ``[\xe0-\xff]`` are the characters U+00E9 and U+00E0..U+00FF
(two UTF-8 bytes each), as in llama.cpp, never single raw bytes.

**No left recursion.** The automaton derives rules lazily and cannot expand a
rule that reaches itself before consuming input. Write repetition instead::

    expr ::= term (("+" | "-") term)*      # not: expr ::= expr "+" term | term

:func:`load_gbnf` detects left recursion and names the rules involved.

Not supported (refused with a clear :class:`~structgen.errors.GrammarError`):
llama.cpp token references ``<[123]>`` / ``<think>`` (structgen constrains
text, not token ids).

Every error is a :class:`~structgen.errors.GrammarError` whose message starts
with ``source:line:column:`` (1-based), says what was expected, and shows the
offending line with a caret; the exception also carries ``.line`` and
``.column``. Undefined rules are named with the rule that uses them. Unused
rules are allowed and dropped from the returned grammar.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path

from structgen.errors import QUOTE_LIMIT, GrammarError, GrammarTooLargeError, clip
from structgen.grammar import ir
from structgen.grammar.ir import Expr, Grammar

__all__ = ["load_gbnf", "parse_gbnf"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = {"n": 0x0A, "t": 0x09, "r": 0x0D, "f": 0x0C, "v": 0x0B, "b": 0x08, "0": 0x00}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_MAX_CP = 0x10FFFF
_MAX_NESTING = 200
_POSTFIX = "*+?{"
_ELEMENT_HINT = "a string \"...\", a character class [...], '.', a rule name or '('"
#: the largest GBNF file :func:`load_gbnf` reads (a path may name a huge or endless file)
MAX_GBNF_FILE_BYTES = 16 << 20


def load_gbnf(text_or_path: str | os.PathLike | bytes, *, start: str = "root") -> Grammar:
    """Parse a GBNF grammar into the IR; the start rule is ``root``.

    ``text_or_path`` is GBNF text (``str`` or UTF-8 ``bytes``), or the path
    of a file to read as a ``pathlib.Path`` (any ``os.PathLike``). A string is
    never taken for a path, so a grammar from an untrusted source cannot make
    structgen read a file. Raises :class:`~structgen.errors.GrammarError`
    (with line and column) on any mistake, including a missing file.
    """
    text, source = read_gbnf(text_or_path)
    return parse_gbnf(text, start=start, source=source)


def parse_gbnf(text: str, *, start: str = "root", source: str = "<gbnf>") -> Grammar:
    """Parse GBNF ``text`` (never a path); ``source`` names it in messages."""
    if not isinstance(text, str):
        raise TypeError(f"GBNF text must be a str, not {type(text).__name__}")
    if text.startswith("\ufeff"):
        text = text[1:]
    parser = _Parser(text, source)
    try:
        parser.parse()
    except RecursionError:
        raise parser.error("grammar is nested too deeply", parser.i) from None
    return parser.finish(start)


def read_gbnf(arg) -> tuple[str, str]:
    """The GBNF text and a name for messages: a ``str`` or ``bytes`` is the
    text itself, an ``os.PathLike`` a file to read."""
    if isinstance(arg, bytes):
        try:
            return arg.decode("utf-8"), "<gbnf>"
        except UnicodeDecodeError as e:
            raise GrammarError(f"GBNF text is not valid UTF-8: {e}") from None
    if isinstance(arg, os.PathLike):
        return _read_file(Path(arg)), os.fspath(arg)
    if not isinstance(arg, str):
        raise TypeError(f"load_gbnf takes GBNF text or a pathlib.Path, not {type(arg).__name__}")
    return arg, "<gbnf>"


def _read_file(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_GBNF_FILE_BYTES + 1)
    except FileNotFoundError:
        raise GrammarError(f"GBNF file {str(path)!r} not found") from None
    except OSError as e:
        raise GrammarError(f"cannot read GBNF file {str(path)!r}: {e.strerror or e}") from None
    if len(data) > MAX_GBNF_FILE_BYTES:
        raise GrammarTooLargeError(f"GBNF file {str(path)!r} is larger than {MAX_GBNF_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GrammarError(f"GBNF file {str(path)!r} is not valid UTF-8 (byte {e.start})") from None


def _describe(text: str, i: int) -> str:
    """What the parser found at ``i``, for 'expected X, found Y' messages."""
    if i >= len(text):
        return "end of grammar"
    c = text[i]
    if c == "\n" or c == "\r":
        return "end of line"
    if c in _NAME_CHARS:
        j = i
        while j < len(text) and text[j] in _NAME_CHARS:
            j += 1
        return repr(clip(text[i:j]))
    return repr(c)


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.source = source
        self.line_starts = [0] + [k + 1 for k, c in enumerate(text) if c == "\n"]
        self.rules: dict[str, Expr] = {}
        self.rule_pos: dict[str, int] = {}
        self.refs: list[tuple[str, int, str]] = []  # (name, position, rule using it)
        self.current = ""
        self.depth = 0

    # ------------------------------------------------------------------ helpers
    def where(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, pos)
        return line, pos - self.line_starts[line - 1] + 1

    def error(self, message: str, pos: int) -> GrammarError:
        pos = min(max(pos, 0), self.n)
        line, col = self.where(pos)
        start = self.line_starts[line - 1]
        end = self.s.find("\n", start)
        src = self.s[start:] if end < 0 else self.s[start:end]
        src = src.rstrip("\r")
        lo = max(0, col - 1 - QUOTE_LIMIT // 2)  # a window around the column: a line may be megabytes long
        shown = ("…" if lo else "") + src[lo : lo + QUOTE_LIMIT] + ("…" if lo + QUOTE_LIMIT < len(src) else "")
        caret = "".join("\t" if ch == "\t" else " " for ch in shown[: col - 1 - lo + (lo > 0)]) + "^"
        err = GrammarError(f"{self.source}:{line}:{col}: {clip(message, 4 * QUOTE_LIMIT)}\n    {shown}\n    {caret}")
        err.line, err.column = line, col
        return err

    def peek(self) -> str:
        return self.s[self.i] if self.i < self.n else ""

    def skip_space(self) -> None:
        s, n = self.s, self.n
        i = self.i
        while i < n:
            c = s[i]
            if c in " \t\r\n":
                i += 1
            elif c == "#":
                j = s.find("\n", i)
                i = n if j < 0 else j + 1
            else:
                break
        self.i = i

    def read_name(self) -> str:
        j = self.i
        while j < self.n and self.s[j] in _NAME_CHARS:
            j += 1
        name = self.s[self.i : j]
        self.i = j
        return name

    def at_definition(self) -> bool:
        """Is the cursor (at a name) the start of ``name ::=``?"""
        save = self.i
        self.read_name()
        self.skip_space()
        found = self.s.startswith("::=", self.i)
        self.i = save
        return found

    def at_line_start(self, pos: int) -> bool:
        line, _ = self.where(pos)
        return self.s[self.line_starts[line - 1] : pos].strip(" \t") == ""

    # ------------------------------------------------------------------ grammar
    def parse(self) -> None:
        self.skip_space()
        if self.i >= self.n:
            raise self.error("empty grammar: expected a rule such as 'root ::= \"yes\" | \"no\"'", self.i)
        while self.i < self.n:
            self.rule()

    def rule(self) -> None:
        pos = self.i
        if self.peek() not in _NAME_CHARS:
            raise self.error(f"expected a rule name to start a rule definition 'name ::= ...', found {_describe(self.s, pos)}", pos)
        name = self.read_name()
        if not self.at_line_start(pos):
            raise self.error(f"rule definition '{name} ::=' must start on a new line", pos)
        self.skip_space()
        if not self.s.startswith("::=", self.i):
            raise self.error(f"expected '::=' after rule name {name!r}, found {_describe(self.s, self.i)}", self.i)
        if name in self.rule_pos:
            first, _ = self.where(self.rule_pos[name])
            raise self.error(f"rule {name!r} is defined twice (first definition on line {first})", pos)
        self.i += 3
        self.current = name
        self.rule_pos[name] = pos
        self.skip_space()
        body = self.alternatives()
        c = self.peek()
        if c == ")":
            raise self.error("unbalanced ')': no '(' is open", self.i)
        if c and not (c in _NAME_CHARS and self.at_definition()):
            raise self.error(f"expected {_ELEMENT_HINT}, '|' or a new rule, found {_describe(self.s, self.i)}", self.i)
        self.rules[name] = body

    def alternatives(self) -> Expr:
        options = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            self.skip_space()
            options.append(self.sequence())
        return ir.alt(*options)

    def sequence(self) -> Expr:
        items: list[Expr] = []
        while self.i < self.n:
            c = self.s[self.i]
            pos = self.i
            if c in "|)":
                break
            if c in _POSTFIX:
                if not items:
                    raise self.error(f"{c!r} has nothing to repeat: put it after {_ELEMENT_HINT}", pos)
                items[-1] = self.postfix(items[-1])
            elif c == '"':
                items.append(self.string())
            elif c == "[":
                items.append(ir.chars(self.char_class()))
            elif c == ".":
                self.i += 1
                items.append(ir.chars([(0, _MAX_CP)]))
            elif c == "(":
                items.append(self.group())
            elif c in _NAME_CHARS:
                if self.at_definition():
                    if not self.at_line_start(pos):
                        name = self.read_name()
                        raise self.error(
                            f"rule definition '{name} ::=' must start on a new line "
                            f"(or is a '::=' out of place inside rule {self.current!r})", pos)
                    break
                name = self.read_name()
                self.refs.append((name, pos, self.current))
                items.append(ir.ref(name))
            elif c == "<":
                raise self.error("token references '<...>' are not supported: structgen constrains text, "
                                 "write the token's text as a string instead", pos)
            elif c == "}":
                raise self.error("unbalanced '}': a repetition is written {n}, {n,}, {n,m} or {,m}", pos)
            elif c == "]":
                raise self.error("unbalanced ']': no character class '[' is open", pos)
            elif c == "'":
                raise self.error("strings use double quotes in GBNF: write \"...\"", pos)
            elif self.s.startswith("::=", pos) or c == ":":
                raise self.error("unexpected ':': '::=' must follow a rule name at the start of a line", pos)
            else:
                raise self.error(f"expected {_ELEMENT_HINT}, found {_describe(self.s, pos)}", pos)
            self.skip_space()
        return ir.seq(*items)

    def group(self) -> Expr:
        open_pos = self.i
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise self.error(f"groups are nested more than {_MAX_NESTING} deep", open_pos)
        self.i += 1
        self.skip_space()
        inner = self.alternatives()
        if self.peek() != ")":
            line, col = self.where(open_pos)
            if self.i < self.n and self.peek() in _NAME_CHARS:
                what = f"a new rule ({_describe(self.s, self.i)} ::=)"
            else:
                what = _describe(self.s, self.i)
            raise self.error(f"expected ')' to close the '(' at {line}:{col}, found {what}", self.i)
        self.i += 1
        self.depth -= 1
        return inner

    def postfix(self, e: Expr) -> Expr:
        c = self.s[self.i]
        if c == "*":
            self.i += 1
            return ir.rep(e, 0, None)
        if c == "+":
            self.i += 1
            return ir.rep(e, 1, None)
        if c == "?":
            self.i += 1
            return ir.opt(e)
        lo, hi = self.braces()
        return ir.rep(e, lo, hi)

    def braces(self) -> tuple[int, int | None]:
        open_pos = self.i
        self.i += 1

        def skip_blanks() -> None:
            while self.peek() in (" ", "\t"):
                self.i += 1

        def number() -> int | None:
            j = self.i
            while j < self.n and self.s[j].isdigit() and self.s[j].isascii():
                j += 1
            if j == self.i:
                return None
            digits = self.s[self.i : j].lstrip("0") or "0"
            if len(digits) > len(str(ir.MAX_REPEAT)) or int(digits) > ir.MAX_REPEAT:
                raise self.error(f"repetition count {clip(digits, 30)} is above the largest supported, "
                                 f"{ir.MAX_REPEAT}", self.i)
            self.i = j
            return int(digits)

        skip_blanks()
        lo = number()
        skip_blanks()
        if self.peek() == "}":
            if lo is None:
                raise self.error("expected a number in repetition '{n}', '{n,}', '{n,m}' or '{,m}'", self.i)
            self.i += 1
            return lo, lo
        if self.peek() != ",":
            what = "a number" if lo is None else "',' or '}'"
            raise self.error(f"expected {what} in repetition '{{...}}', found {_describe(self.s, self.i)}", self.i)
        self.i += 1
        skip_blanks()
        hi = number()
        skip_blanks()
        if self.peek() != "}":
            raise self.error(f"expected '}}' to close the repetition, found {_describe(self.s, self.i)}", self.i)
        self.i += 1
        if hi is not None and hi < (lo or 0):
            raise self.error(f"repetition {{{lo},{hi}}}: the maximum is below the minimum", open_pos)
        return (lo or 0), hi

    # ------------------------------------------------------------ characters
    def char(self, closing: str, open_pos: int, what: str) -> int:
        """One (possibly escaped) character inside a string or class."""
        pos = self.i
        if pos >= self.n:
            line, col = self.where(open_pos)
            raise self.error(f"unterminated {what} (opened at {line}:{col}): expected '{closing}'", pos)
        c = self.s[pos]
        if c in "\r\n":
            line, col = self.where(open_pos)
            hint = " (write \\n for a line break)" if what == "string" else ""
            raise self.error(f"unterminated {what} (opened at {line}:{col}): expected '{closing}' before the end of the line{hint}", pos)
        if c != "\\":
            self.i += 1
            return ord(c)
        if pos + 1 >= self.n:
            raise self.error("a backslash at the end of the grammar: expected an escape such as \\n", pos)
        e = self.s[pos + 1]
        self.i = pos + 2
        if e in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[e]
        if e in _HEX_ESCAPES:
            count = _HEX_ESCAPES[e]
            digits = self.s[self.i : self.i + count]
            if len(digits) != count or any(d not in _HEX for d in digits):
                raise self.error(f"bad escape '\\{e}': expected {count} hex digits", pos)
            self.i += count
            cp = int(digits, 16)
            if cp > _MAX_CP:
                raise self.error(f"bad escape '\\{e}{digits}': beyond U+10FFFF, the last Unicode character", pos)
            return cp
        if e.isascii() and not e.isalnum() and e not in "\r\n":
            return ord(e)
        raise self.error(f"unknown escape '\\{e}': use \\n \\t \\r \\xHH \\uHHHH \\UHHHHHHHH, "
                         f"or a backslash before punctuation such as \\\" \\\\ \\]", pos)

    def string(self) -> Expr:
        open_pos = self.i
        self.i += 1
        out: list[str] = []
        while True:
            if self.peek() == '"':
                self.i += 1
                break
            pos = self.i
            cp = self.char('"', open_pos, "string")
            if 0xD800 <= cp <= 0xDFFF:
                raise self.error(f"U+{cp:04X} is a surrogate code point, not a character (it has no UTF-8 form)", pos)
            out.append(chr(cp))
        return ir.literal("".join(out))

    def char_class(self) -> list[tuple[int, int]]:
        open_pos = self.i
        self.i += 1
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        ranges: list[tuple[int, int]] = []
        while True:
            if self.peek() == "]":
                self.i += 1
                break
            a_pos = self.i
            a = self.char("]", open_pos, "character class")
            if self.peek() == "-" and self.i + 1 < self.n and self.s[self.i + 1] != "]":
                self.i += 1
                b = self.char("]", open_pos, "character class")
                if b < a:
                    raise self.error(f"character range {self.s[a_pos:self.i]!r} is out of order (U+{a:04X} > U+{b:04X})", a_pos)
                ranges.append((a, b))
            else:
                ranges.append((a, a))
        if negate:
            return _complement(ranges)
        return ranges

    # ------------------------------------------------------------------ checks
    def finish(self, start: str) -> Grammar:
        undefined: dict[str, tuple[int, str]] = {}
        for name, pos, user in self.refs:
            if name not in self.rules and name not in undefined:
                undefined[name] = (pos, user)
        if undefined:
            parts = []
            for name, (pos, user) in undefined.items():
                line, col = self.where(pos)
                parts.append(f"{name!r} (used in rule {user!r} at {line}:{col})")
            first_pos = next(iter(undefined.values()))[0]
            plural = "rules" if len(parts) > 1 else "rule"
            raise self.error(f"undefined {plural} {', '.join(parts)}: define each with 'name ::= ...'", first_pos)
        if start not in self.rules:
            have = ", ".join(repr(r) for r in self.rules)
            raise GrammarError(
                f"{self.source}: no {start!r} rule: a GBNF grammar starts at the rule named {start!r} "
                f"(defined: {have})")
        reachable = _reachable(self.rules, start)
        rules = {name: body for name, body in self.rules.items() if name in reachable}
        productive = _fixpoint(rules, nullable=False)
        if start not in productive:
            raise GrammarError(
                f"{self.source}: the grammar matches no string at all: rule {start!r} can never finish "
                "(every alternative needs an empty character class or a rule that recurses forever)")
        self._check_left_recursion(rules, productive)
        return Grammar(rules, start)

    def _check_left_recursion(self, rules: dict[str, Expr], productive: set[str]) -> None:
        nullable = _fixpoint(rules, nullable=True)
        leading = {name: _leading_refs(body, nullable, productive) for name, body in rules.items()}
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in rules:  # depth-first with an explicit stack: a chain of 10,000 rules is not 10,000 frames
            if root in state:
                continue
            state[root] = 1
            path, todo = [root], [iter(leading[root])]
            while todo:
                nxt = next(todo[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    todo.pop()
                elif state.get(nxt) == 1:
                    self._left_recursion(path[path.index(nxt):] + [nxt])
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    todo.append(iter(leading[nxt]))

    def _left_recursion(self, cycle: list[str]) -> None:
        name = cycle[0]
        line, _ = self.where(self.rule_pos[name])
        raise self.error(
            f"left recursion: rule {name!r} (line {line}) reaches itself without consuming input "
            f"({' -> '.join(cycle)}). GBNF grammars for structgen must be written without left "
            "recursion: use repetition, e.g. 'expr ::= term (\"+\" term)*' instead of "
            "'expr ::= expr \"+\" term | term'", self.rule_pos[name])


# --------------------------------------------------------------------------- analysis


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in sorted(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= _MAX_CP:
        out.append((nxt, _MAX_CP))
    return out


def _reachable(rules: dict[str, Expr], start: str) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for name in ir.iter_refs(rules[stack.pop()]):
            if name not in seen:
                seen.add(name)
                stack.append(name)
    return seen


def _fixpoint(rules: dict[str, Expr], *, nullable: bool) -> set[str]:
    """Rules that can match the empty string (``nullable``) or anything at
    all. A worklist: a rule is checked again only when a rule it refers to
    turns good (checking every rule again each round was quadratic in a chain
    of rules: 10,000 took 40 s)."""
    users: dict[str, list[str]] = {name: [] for name in rules}
    for name, body in rules.items():
        for used in set(ir.iter_refs(body)):
            if used in users:
                users[used].append(name)
    good: set[str] = set()
    todo = list(rules)
    while todo:
        name = todo.pop()
        if name not in good and _fixpoint_expr(rules[name], good, nullable=nullable):
            good.add(name)
            todo.extend(users[name])
    return good


def _leading_refs(e: Expr, nullable: set[str], productive: set[str]) -> set[str]:
    """Rules that ``e`` can enter before consuming any input."""
    out: set[str] = set()

    def dead(x: Expr) -> bool:  # the language of x is empty
        return not _fixpoint_expr(x, productive, nullable=False)

    def walk(x: Expr) -> None:
        kind = x[0]
        if kind == "ref":
            if x[1] in productive:
                out.add(x[1])
        elif kind == "seq":
            if any(dead(p) for p in x[1]):
                return
            for p in x[1]:
                walk(p)
                if not _fixpoint_expr(p, nullable, nullable=True):
                    break
        elif kind == "alt":
            for p in x[1]:
                walk(p)
        elif kind == "rep":
            if not dead(x[1]):
                walk(x[1])

    walk(e)
    return out


def _fixpoint_expr(e: Expr, good: set[str], *, nullable: bool) -> bool:
    kind = e[0]
    if kind == "bytes":
        return not nullable
    if kind == "eps":
        return True
    if kind == "nothing":
        return False
    if kind == "seq":
        return all(_fixpoint_expr(x, good, nullable=nullable) for x in e[1])
    if kind == "alt":
        return any(_fixpoint_expr(x, good, nullable=nullable) for x in e[1])
    if kind == "rep":
        return e[2] == 0 or _fixpoint_expr(e[1], good, nullable=nullable)
    if kind == "ref":
        return e[1] in good
    raise ValueError(f"unknown IR node {kind!r}")
