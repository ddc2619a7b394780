"""The GBNF frontend: every construct, the shipped grammars, every error.

Languages are checked twice: with the IR oracle (``tests.ir_oracle``, no code
shared with the automaton) and with the real engine (``compile_grammar`` and a
matcher fed raw bytes). A hypothesis test also builds random GBNF grammars
together with an equivalent Python regex and compares them on random strings.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import structgen
from structgen.errors import GrammarError
from structgen.frontends.gbnf import load_gbnf, parse_gbnf
from structgen.grammar import ir
from structgen.vocab import Vocabulary
from tests import ir_oracle

GRAMMARS = Path(__file__).resolve().parent.parent / "grammars"

# Every single byte, a few multi-byte tokens, and EOS (the last id).
VOCAB = Vocabulary.from_token_bytes(
    [bytes([b]) for b in range(256)] + [b"true", b'{"', b'":', b", ", b"\n  ", b"yes", "é".encode(), b""],
    eos_ids=[263],
    name="bytes",
)


def engine_accepts(grammar, data: bytes) -> bool:
    m = structgen.compile_grammar(grammar, VOCAB).matcher()
    return m.advance_bytes(data) and m.is_accepting()


def engine_prefix(grammar, data: bytes) -> bool:
    return structgen.compile_grammar(grammar, VOCAB).matcher().advance_bytes(data)


def accepts(text: str, s: str | bytes) -> bool:
    """Oracle and engine agree on ``s``; return their verdict."""
    data = s.encode("utf-8") if isinstance(s, str) else s
    g = parse_gbnf(text)
    want = ir_oracle.matches(g, data)
    assert engine_accepts(text, data) == want, (text, data)
    assert engine_prefix(text, data) == ir_oracle.can_extend(g, data), (text, data)
    return want


# --------------------------------------------------------------------------- constructs

CONSTRUCTS = [
    # (grammar, accepted, rejected)
    ('root ::= "abc"', ["abc"], ["", "ab", "abcd", "ABC"]),
    ('root ::= "a" "b"  "c"', ["abc"], ["ab", "a b c"]),
    ('root ::= "a" | "bc" | "d"', ["a", "bc", "d"], ["", "b", "ad"]),
    ('root ::= "x" ("a" | "b") "y"', ["xay", "xby"], ["xy", "xaby"]),
    ('root ::= "a"*', ["", "a", "aaaa"], ["b", "ab"]),
    ('root ::= "ab"+', ["ab", "abab"], ["", "a", "aba"]),
    ('root ::= "a" "b"?', ["a", "ab"], ["abb", "b"]),
    ('root ::= "a"{3}', ["aaa"], ["aa", "aaaa"]),
    ('root ::= "a"{2,}', ["aa", "aaaaaa"], ["", "a"]),
    ('root ::= "a"{1,3}', ["a", "aa", "aaa"], ["", "aaaa"]),
    ('root ::= "a"{,2}', ["", "a", "aa"], ["aaa"]),
    ('root ::= "a"{ 2 , 3 }', ["aa", "aaa"], ["a", "aaaa"]),
    ('root ::= "a"{0}', [""], ["a"]),
    ('root ::= "ab"{2}?', ["", "abab"], ["ab", "ababab"]),  # stacked postfix: ("ab"{2})?
    ('root ::= "a"+*', ["", "a", "aaa"], ["b"]),
    ('root ::= ("a" "b"*)+', ["a", "abb", "aab"], ["", "b", "ba"]),
    ('root ::= [a-c]', ["a", "b", "c"], ["d", "", "ab", "A"]),
    ('root ::= [a-cx0-9_]+', ["ax_09", "c"], ["d", "a-b"]),
    ('root ::= [^a-c]', ["d", "\n", "é", "\U0001F600"], ["a", "c", "", "dd"]),
    ('root ::= [-a]', ["-", "a"], ["b"]),
    ('root ::= [a-]', ["-", "a"], ["b"]),
    ('root ::= [\\-\\]\\[\\\\\\^]', ["-", "]", "[", "\\", "^"], ["a"]),
    ('root ::= [^"\\\\]*', ["abc", "é'"], ['"', "\\", 'a"']),
    ('root ::= "x" []', [], ["x", ""]),
    ('root ::= "x" | []', ["x"], [""]),
    ('root ::= [^]', ["a", "\n", "é"], ["", "ab"]),
    ('root ::= [\\x41-\\x43\\u00e9]', ["A", "C", "é"], ["D", "e"]),
    ('root ::= [\\xe0-\\xff]', ["à", "ÿ", "é"], ["\xe0".encode("latin-1"), "a"]),
    ('root ::= .', ["a", "\n", "\r", "é", "中", "\U0001F600"], ["", "ab", b"\xff", b"\xc3"]),
    ('root ::= "<" .* ">"', ["<>", "<a\nb>", "<>>"], ["<", "a<>"]),
    ('root ::= "\\n\\t\\r\\"\\\\"', ['\n\t\r"\\'], ["ntr"]),
    ('root ::= "\\f\\v\\b\\0"', ["\f\v\b\x00"], ["fvb0"]),
    ('root ::= "\\x41\\xe9"', ["Aé"], ["A\xe9".encode("latin-1")]),
    ('root ::= "\\u00e9\\u4e2d"', ["é中"], ["e"]),
    ('root ::= "\\U0001F600"', ["\U0001F600"], [""]),
    ('root ::= "\\[\\]\\-\\#\\ \\\'"', ["[]-# '"], [""]),
    ('root ::= "a#b" # comment with "quotes" and [brackets] (parens\n', ["a#b"], ["a"]),
    ('root ::= "[" "]" "(" "|" ")"', ["[](|)"], [""]),
    ('root ::= "é" "中文" "\U0001F600"', ["é中文\U0001F600"], ["é"]),
    ('root ::= ()', [""], ["a"]),
    ('root ::= "a" ( ) "b"', ["ab"], ["a"]),
    ('root ::= "a" |', ["a", ""], ["b"]),
    ('root ::= | "a"', ["a", ""], ["b"]),
    ('root ::= "a" ("b" | ) "c"', ["abc", "ac"], ["ab"]),
    # rule references, names with - and _ and digits, unused rules
    ('root ::= my-rule_2 my-rule_2\nmy-rule_2 ::= "x" | "y"\nunused ::= "z"', ["xy", "yy"], ["x", "z"]),
    ('root::="a"b\nb::="c"', ["ac"], ["a"]),
    ('root ::= 1st\n1st ::= "one"', ["one"], [""]),
    # recursion (right and nested, not left)
    ('root ::= "(" root ")" | ""', ["", "()", "((()))"], ["(", "())", ")("]),
    ('root ::= "a" root | "b"', ["b", "ab", "aaab"], ["a", ""]),
    ('root ::= list\nlist ::= "[" (item ("," item)*)? "]"\nitem ::= [0-9] | list',
     ["[]", "[1,[2,[]],3]", "[[[]]]"], ["[", "[1,]", "[,]", "[1,[2]"]),
    ('root ::= a\na ::= "x" b | ""\nb ::= "y" a', ["", "xy", "xyxy"], ["x", "xyx"]),
    # layout: multi-line rules, continuation lines, comments, CRLF, tabs, BOM
    ('# leading comment\n\nroot ::=\n  "a"\n  "b" # inline\n  | "c"\n\n# trailing', ["ab", "c"], ["a", "b"]),
    ('root ::= (\n    "a"\n  | "b"\n)\n  "c"\nother ::= "d"', ["ac", "bc"], ["c", "d"]),
    ('root ::= x\r\nx ::= "a"\r\n  | "b"\r\n', ["a", "b"], ["\r"]),
    ('\ufeffroot\t::=\t"a"\t"b"', ["ab"], ["a"]),
    ('root ::= "a" # comment\n    # comment line inside a rule\n    "b"', ["ab"], ["a"]),
]


@pytest.mark.parametrize("text, good, bad", CONSTRUCTS, ids=[c[0][:40] for c in CONSTRUCTS])
def test_constructs(text, good, bad):
    if not good:  # an empty language is refused up front
        with pytest.raises(GrammarError, match="matches no string"):
            load_gbnf(text)
        return
    for s in good:
        assert accepts(text, s), s
    for s in bad:
        assert not accepts(text, s), s


def test_rules_become_refs_and_unused_rules_are_dropped():
    g = load_gbnf('root ::= item ("," item)*\nitem ::= [0-9]+\nunused ::= "u" other\nother ::= "o"')
    assert g.start == "root"
    assert set(g.rules) == {"root", "item"}
    assert g.rules["root"] == ir.seq(ir.ref("item"), ir.rep(ir.seq(ir.literal(","), ir.ref("item")), 0, None))
    assert g.rules["item"] == ir.rep(ir.chars([(0x30, 0x39)]), 1, None)


def test_start_rule_can_be_chosen():
    g = load_gbnf('root ::= "a"\nother ::= "b" other?', start="other")
    assert g.start == "other" and set(g.rules) == {"other"}
    assert ir_oracle.matches(g, b"bbb")


def test_deep_recursion_in_input_is_fine():
    text = 'root ::= "(" root ")" | "x"'
    data = b"(" * 300 + b"x" + b")" * 300
    assert engine_accepts(text, data)
    assert not engine_accepts(text, data[:-1])


# --------------------------------------------------------------------------- random grammars vs re

ALPHABET = "ab-]\\\"\n é"


def _gbnf_char(c: str, in_class: bool) -> str:
    specials = '"\\' if not in_class else "]\\-^["
    if c == "\n":
        return "\\n"
    if c in specials:
        return "\\" + c
    if c == "é":
        return "\\xe9"
    return c


@st.composite
def _atoms(draw):
    kind = draw(st.sampled_from(["lit", "class", "nclass", "dot"]))
    if kind == "lit":
        s = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=3))
        return '"' + "".join(_gbnf_char(c, False) for c in s) + '"', re.escape(s)
    if kind == "dot":
        return ".", "."
    chars = draw(st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=3, unique=True))
    neg = kind == "nclass"
    body = "".join(_gbnf_char(c, True) for c in chars)
    pybody = "".join(re.escape(c) for c in chars)
    return f"[{'^' if neg else ''}{body}]", f"[{'^' if neg else ''}{pybody}]"


def _extend(children):
    # GBNF operator -> Python spelling ("{1,2}?" is a stacked optional, not a lazy repeat)
    ops = {"*": "(?:{})*", "+": "(?:{})+", "?": "(?:{})?", "{2}": "(?:{}){{2}}", "{1,}": "(?:{}){{1,}}",
           "{0,2}": "(?:{}){{0,2}}", "{,1}": "(?:{}){{0,1}}", "{1,2}?": "(?:(?:{}){{1,2}})?", "+*": "(?:(?:{})+)*"}

    def quant(x):
        return st.tuples(x, st.sampled_from(sorted(ops))).map(
            lambda p: (f"({p[0][0]}){p[1]}", ops[p[1]].format(p[0][1]))
        )

    seqs = st.lists(children, min_size=2, max_size=3).map(
        lambda xs: (" ".join(f"({g})" for g, _ in xs), "".join(f"(?:{p})" for _, p in xs)))
    alts = st.lists(children, min_size=2, max_size=3).map(
        lambda xs: (" | ".join(g for g, _ in xs), "|".join(f"(?:{p})" for _, p in xs)))
    return st.one_of(quant(children), seqs, alts)


_EXPRS = st.recursive(_atoms(), _extend, max_leaves=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    exprs=st.lists(_EXPRS, min_size=1, max_size=3),
    strings=st.lists(st.text(alphabet=ALPHABET, max_size=6), min_size=1, max_size=12),
)
def test_random_grammars_match_python_regex(exprs, strings):
    # rule r0 is root; rule ri (i >= 1) is referenced from r(i-1), across lines
    lines = []
    py = ""
    for i, (g, p) in enumerate(reversed(exprs)):
        k = len(exprs) - 1 - i
        if k == len(exprs) - 1:
            lines.append(f"r{k} ::= {g}")
            py = f"(?:{p})"
        else:
            lines.append(f"r{k} ::= ({g})\n    r{k + 1}")
            py = f"(?:{p}){py}"
    text = "\n".join(lines).replace("r0 ::=", "root ::=").replace("\n    r0", "\n    root")
    pattern = re.compile(py, re.DOTALL)
    g = load_gbnf(text)
    for s in strings:
        want = pattern.fullmatch(s) is not None
        assert ir_oracle.matches(g, s.encode()) == want, (text, py, s)


def test_random_grammar_text_layout():
    # the composition used above really does build multi-rule grammars
    text = 'root ::= ("a")\n    r1\nr1 ::= "b"'
    assert accepts(text, "ab") and not accepts(text, "a")


# --------------------------------------------------------------------------- files and paths


def test_load_from_path_and_text(tmp_path):
    f = tmp_path / "g.gbnf"
    f.write_text('root ::= "from-file"\n', encoding="utf-8")
    assert ir_oracle.matches(load_gbnf(f), b"from-file")
    other = tmp_path / "grammar.txt"  # a file with any extension is read
    other.write_text('root ::= "txt"')
    assert ir_oracle.matches(load_gbnf(other), b"txt")
    assert ir_oracle.matches(load_gbnf(b'root ::= "bytes"'), b"bytes")
    m = structgen.compile_grammar(f, VOCAB).matcher()
    assert m.advance_bytes(b"from-file") and m.is_accepting()


def test_a_str_is_never_a_path(tmp_path):
    f = tmp_path / "g.gbnf"
    f.write_text('root ::= "secret"\n', encoding="utf-8")
    for arg in (str(f), "/etc/passwd"):
        with pytest.raises(GrammarError) as e:
            load_gbnf(arg)
        assert e.value.args[0].startswith("<gbnf>:1:1: ") and "secret" not in str(e.value)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(GrammarError, match=r"GBNF file '.*missing\.gbnf' not found"):
        load_gbnf(tmp_path / "missing.gbnf")
    bad = tmp_path / "bad.gbnf"
    bad.write_text('root ::= "a"\nx ::= (\n')
    with pytest.raises(GrammarError) as e:
        load_gbnf(bad)
    assert str(e.value).startswith(f"{bad}:3:1: expected ')'")
    latin = tmp_path / "latin.gbnf"
    latin.write_bytes(b'root ::= "\xe9"')
    with pytest.raises(GrammarError, match="not valid UTF-8"):
        load_gbnf(latin)
    with pytest.raises(TypeError):
        load_gbnf(42)


# --------------------------------------------------------------------------- errors

ERRORS = [
    # (text, message fragment, line, column)
    ("", "empty grammar: expected a rule", 1, 1),
    ("  # only a comment\n", "empty grammar", 2, 1),
    ('root := "x"', "expected '::=' after rule name 'root', found ':'", 1, 6),
    ('root "x"', "expected '::=' after rule name 'root', found '\"'", 1, 6),
    ('root\n', "expected '::=' after rule name 'root', found end of grammar", 2, 1),
    ('::= "x"', "expected a rule name to start a rule definition 'name ::= ...', found ':'", 1, 1),
    ('root ::= "a"\n  ::= "b"', "unexpected ':': '::=' must follow a rule name", 2, 3),
    ('"x" ::= "y"', "expected a rule name to start a rule definition", 1, 1),
    ('root ::= "x" other ::= "y"', "rule definition 'other ::=' must start on a new line", 1, 14),
    ('root ::= "abc', "unterminated string (opened at 1:10): expected '\"'", 1, 14),
    ('root ::= "abc\n"', "before the end of the line (write \\n for a line break)", 1, 14),
    ('root ::= [abc', "unterminated character class (opened at 1:10): expected ']'", 1, 14),
    ('root ::= [a\nb]', "unterminated character class", 1, 12),
    ('root ::= "\\q"', "unknown escape '\\q'", 1, 11),
    ('root ::= "\\x4"', "bad escape '\\x': expected 2 hex digits", 1, 11),
    ('root ::= "\\u12G4"', "bad escape '\\u': expected 4 hex digits", 1, 11),
    ('root ::= "\\U00110000"', "beyond U+10FFFF", 1, 11),
    ('root ::= "\\ud800"', "U+D800 is a surrogate code point", 1, 11),
    ('root ::= "a\\', "backslash at the end of the grammar", 1, 12),
    ('root ::= [z-a]', "character range 'z-a' is out of order", 1, 11),
    ('root ::= ("a" | "b"', "expected ')' to close the '(' at 1:10, found end of grammar", 1, 20),
    ('root ::= ("a"\nnext ::= "b"', "expected ')' to close the '(' at 1:10, found a new rule ('next' ::=)", 2, 1),
    ('root ::= "a")', "unbalanced ')': no '(' is open", 1, 13),
    ('root ::= "a" ]', "unbalanced ']'", 1, 14),
    ('root ::= "a" }', "unbalanced '}'", 1, 14),
    ('root ::= *"a"', "'*' has nothing to repeat", 1, 10),
    ('root ::= "x" | +', "'+' has nothing to repeat", 1, 16),
    ('root ::= ("a" ?)', "", None, None),  # fine: '?' applies to "a"
    ('root ::= "a"{}', "expected a number in repetition", 1, 14),
    ('root ::= "a"{x}', "expected a number in repetition", 1, 14),
    ('root ::= "a"{2 3}', "expected ',' or '}' in repetition '{...}', found '3'", 1, 16),
    ('root ::= "a"{2,3', "expected '}' to close the repetition, found end of grammar", 1, 17),
    ('root ::= "a"{3,1}', "repetition {3,1}: the maximum is below the minimum", 1, 13),
    ("root ::= 'a'", "strings use double quotes in GBNF", 1, 10),
    ('root ::= <[1234]>', "token references '<...>' are not supported", 1, 10),
    ('root ::= "a" @', "expected a string \"...\", a character class [...], '.', a rule name or '(', found '@'", 1, 14),
    ('root ::= "a"\nroot ::= "b"', "rule 'root' is defined twice (first definition on line 1)", 2, 1),
    ('root ::= value\nvalu ::= "x"', "undefined rule 'value' (used in rule 'root' at 1:10)", 1, 10),
    ('root ::= a\na ::= b c b\n', "undefined rules 'b' (used in rule 'a' at 2:7), 'c' (used in rule 'a' at 2:9)", 2, 7),
    ('root ::= "x"\nunused ::= missing', "undefined rule 'missing'", 2, 12),
    ('expr ::= "x"', "no 'root' rule: a GBNF grammar starts at the rule named 'root' (defined: 'expr')", None, None),
    ('root ::= [] "x"', "the grammar matches no string at all", None, None),
    ('root ::= "a" root', "the grammar matches no string at all", None, None),
    # left recursion: direct, indirect, through a nullable prefix, through a group
    ('root ::= expr\nexpr ::= expr "+" term | term\nterm ::= [0-9]',
     "left recursion: rule 'expr' (line 2) reaches itself without consuming input (expr -> expr)", 2, 1),
    ('root ::= a\na ::= b "x" | "z"\nb ::= "y"? a', "left recursion", 2, 1),
    ('root ::= " "* root "x" | "y"', "(root -> root)", 1, 1),
    ('root ::= ("a"? (root))+ "b" | "c"', "left recursion", 1, 1),
    ('root ::= ("(" root)* "x"\n', "", None, None),  # fine: "(" comes first
]


@pytest.mark.parametrize("text, fragment, line, col", ERRORS, ids=[e[0][:40] or "empty" for e in ERRORS])
def test_errors(text, fragment, line, col):
    if not fragment:
        load_gbnf(text)  # no error expected
        return
    with pytest.raises(GrammarError) as info:
        load_gbnf(text)
    msg = str(info.value)
    assert fragment in msg
    if line is not None:
        assert msg.startswith(f"<gbnf>:{line}:{col}: "), msg
        assert (info.value.line, info.value.column) == (line, col)
        # the offending line is quoted with a caret under the column
        src_line = (text.lstrip("\ufeff").split("\n") + [""])[line - 1]
        quoted, caret = msg.split("\n")[1:3]
        assert quoted == "    " + src_line
        assert caret == "    " + " " * (col - 1) + "^"


def test_left_recursion_message_suggests_rewrite():
    with pytest.raises(GrammarError) as info:
        load_gbnf('root ::= root "a" | "b"')
    assert "without left recursion" in str(info.value)
    assert "expr ::= term (\"+\" term)*" in str(info.value)


def test_errors_are_structgen_errors_and_value_errors():
    with pytest.raises(structgen.StructgenError):
        load_gbnf("root ::= (")
    with pytest.raises(ValueError):
        structgen.compile_grammar("root ::= (", VOCAB)


def test_deeply_nested_groups_are_an_error_not_a_crash():
    with pytest.raises(GrammarError, match="nested"):
        load_gbnf("root ::= " + "(" * 5000 + '"a"' + ")" * 5000)
    g = load_gbnf("root ::= " + "(" * 50 + '"a"' + ")" * 50)
    assert ir_oracle.matches(g, b"a")


# --------------------------------------------------------------------------- shipped grammars


def _shipped(name: str) -> Path:
    return GRAMMARS / name


def test_every_shipped_grammar_loads():
    names = sorted(p.name for p in GRAMMARS.glob("*.gbnf"))
    assert {"json.gbnf", "arithmetic.gbnf", "csv.gbnf", "yes_no.gbnf"} <= set(names)
    for name in names:
        g = load_gbnf(_shipped(name))
        assert g.start == "root"
        structgen.compile_grammar(_shipped(name), VOCAB).matcher().allowed_mask()


def test_readme_example_grammar_is_valid():
    readme = (GRAMMARS / "README.md").read_text(encoding="utf-8")
    block = readme.split("## The GBNF subset structgen reads")[1].split("```")[1]
    g = load_gbnf(block)
    assert ir_oracle.matches(g, b"hi, Bob!")
    assert not ir_oracle.matches(g, b"hi, bob!")


def shipped_accepts(name: str, s: str) -> bool:
    return engine_accepts(_shipped(name), s.encode("utf-8"))


def test_yes_no():
    for s in ("yes", "no"):
        assert shipped_accepts("yes_no.gbnf", s)
    for s in ("", "Yes", "yes ", "y", "noyes", "maybe"):
        assert not shipped_accepts("yes_no.gbnf", s)


ARITH_GOOD = ["1", "1+2", "1 + 2 * 3", "(1 + 2.5) * -3 / 4", "--1", "((((7))))", " 3.14 ", "10/(2-3)*4"]
ARITH_BAD = ["", "1 +", "+1", "(1", "1)", "1 2", "1..2", "1.", ".5", "()", "1 ** 2", "a"]


def test_arithmetic_samples():
    g = load_gbnf(_shipped("arithmetic.gbnf"))
    for s in ARITH_GOOD:
        assert shipped_accepts("arithmetic.gbnf", s), s
        assert ir_oracle.matches(g, s.encode())
    for s in ARITH_BAD:
        assert not shipped_accepts("arithmetic.gbnf", s), s
        assert not ir_oracle.matches(g, s.encode())


_NUM = st.one_of(st.integers(0, 10**6).map(str), st.floats(0, 1e6, allow_nan=False).map(lambda x: f"{x:.3f}"))
_ARITH = st.recursive(
    _NUM,
    lambda e: st.one_of(
        st.tuples(e, st.sampled_from(["+", "-", "*", "/", " + ", " * "]), e).map("".join),
        e.map(lambda x: f"({x})"),
        e.map(lambda x: f"( {x} )"),
        e.map(lambda x: f"-{x}"),
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(_ARITH)
def test_arithmetic_random_expressions(expr):
    assert shipped_accepts("arithmetic.gbnf", expr)
    eval(compile(expr.replace("/", "*"), "<expr>", "eval"))  # and Python reads it as an expression too


CSV_GOOD = ["a,b,c", "a,b\n1,2\n", "a,b\r\n1,2\r\n", "", "\n", ',,\n,', '"x, y","he said ""hi""",z',
            '"multi\nline",2', "é,中"]
CSV_BAD = ['a"b', '"a"b', '"unterminated', '"a""', "a\rb", 'a,"b"c']


def test_csv_samples():
    for s in CSV_GOOD:
        assert shipped_accepts("csv.gbnf", s), s
    for s in CSV_BAD:
        assert not shipped_accepts("csv.gbnf", s), s


@settings(max_examples=60, deadline=None)
@given(
    # no lone "\r" in fields: Python's writer leaves it unquoted when the line end is "\n",
    # while csv.gbnf (like RFC 4180) keeps CR out of bare fields
    rows=st.lists(st.lists(st.text(alphabet='ab ,"\né', max_size=5), min_size=1, max_size=4), max_size=4),
    eol=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_accepts_python_csv_writer_output(rows, eol):
    buf = io.StringIO()
    csv.writer(buf, lineterminator=eol).writerows(rows)
    text = buf.getvalue()
    assert shipped_accepts("csv.gbnf", text), text
    if text.endswith(eol):
        assert shipped_accepts("csv.gbnf", text[: -len(eol)])


JSON_GOOD = ['{"a":[1,2,{"b":null}],"c":"\\u00e9\\n","d":-0.5e+10}', "[]", "{}", '""', "0", "-1.5E-3", "true",
             ' { "a" : [ 1 , 2 ] } ', '"é中\U0001F600"', '[[[[["deep"]]]]]', '{"":{}}', "\t\r\n null \n"]
JSON_BAD = ["", "{", "[1,]", '{"a":1,}', "01", "1.", ".5", "+1", "-", "tru", "nul", "'a'", '{"a"}', '{a:1}',
            '"\\x41"', '"\u0001"', '"a', "[1 2]", "NaN", "Infinity", "1 2", '"\\u12"', "{}{}"]


def _json_ok(s: str) -> bool:
    def reject(name):
        raise ValueError(name)

    try:
        json.loads(s, parse_constant=reject)
        return True
    except ValueError:
        return False


def test_json_samples():
    g = load_gbnf(_shipped("json.gbnf"))
    for s in JSON_GOOD:
        assert _json_ok(s), s
        assert shipped_accepts("json.gbnf", s), s
        assert ir_oracle.matches(g, s.encode())
    for s in JSON_BAD:
        assert not _json_ok(s), s
        assert not shipped_accepts("json.gbnf", s), s
        assert not ir_oracle.matches(g, s.encode())


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=_JSON_VALUES,
    style=st.sampled_from([
        dict(separators=(",", ":")),
        dict(),
        dict(indent=2),
        dict(indent="\t", ensure_ascii=False),
        dict(ensure_ascii=False, separators=(", ", ": ")),
    ]),
)
def test_json_accepts_json_dumps(value, style):
    text = json.dumps(value, **style)
    assert shipped_accepts("json.gbnf", text), text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}[]:,"\\ 01-.eE+tru\nfalsn', max_size=12))
def test_json_agrees_with_json_loads_on_random_text(s):
    assert shipped_accepts("json.gbnf", s) == _json_ok(s), s


# --------------------------------------------------------------------------- real tokenizer


def test_llama3_tokens_walk_through_shipped_grammars():
    from tests.tokenizers import llama3

    tok = llama3()
    vocab = Vocabulary.from_tokenizer(tok)
    eos = vocab.eos_ids[0]
    cases = [
        ("json.gbnf", '{"name": "Ada", "tags": ["x", "y"], "age": 36, "ok": true}', True),
        ("json.gbnf", '[1, 2.5e3, null, {"é": "中"}]', True),
        ("json.gbnf", '{"a": [1, 2,]}', False),
        ("arithmetic.gbnf", "(12 + 3.5) * -4 / 2", True),
        ("arithmetic.gbnf", "12 + * 3", False),
        ("yes_no.gbnf", "yes", True),
        ("yes_no.gbnf", "yes!", False),
        ("csv.gbnf", 'name,age\n"Lovelace, Ada",36\n', True),
    ]
    for name, text, valid in cases:
        compiled = structgen.compile_grammar(_shipped(name), vocab)
        m = compiled.matcher()
        ids = tok.encode(text, add_special_tokens=False)
        assert vocab.decode_bytes(ids) == text.encode("utf-8")
        ok = True
        for t in ids:
            allowed = bool(m.allowed_mask()[t])
            advanced = m.advance(t)
            assert allowed == advanced, (name, text, t)
            if not advanced:
                ok = False
                break
        if valid:
            assert ok and m.is_accepting(), (name, text)
            assert m.allowed_mask()[eos]
            assert m.advance(eos) and m.is_stopped()
        else:
            assert not (ok and m.is_accepting()), (name, text)


def test_llama3_inline_grammar_masks():
    from tests.tokenizers import llama3

    tok = llama3()
    vocab = Vocabulary.from_tokenizer(tok)
    compiled = structgen.compile_grammar('root ::= "The answer is " ("yes" | "no") "."', vocab)
    m = compiled.matcher()
    for t in tok.encode("The answer is no.", add_special_tokens=False):
        assert m.advance(t)
    assert m.is_accepting()
    m = compiled.matcher()
    allowed = {vocab.token_bytes[i] for i in m.allowed_token_ids()}
    assert b"The" in allowed and b"T" in allowed and b" The" not in allowed and b"yes" not in allowed
