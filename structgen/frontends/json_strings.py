"""String constraints as character-level languages (mixed into the JSON
Schema compiler): ``minLength``/``maxLength``, ``pattern``, ``format``, string
enums and negated patterns/enums combine into one automaton
(:mod:`charlang`), as do the key languages of undeclared properties
(not a declared name, ``propertyNames``, ``patternProperties`` regions).

Patterns are ECMA-262 (:mod:`structgen.frontends.regex`), but ``jsonschema``
matches them with Python's ``re``: where the two disagree on a shorthand
class (``\\D \\W \\S`` and ``\\s`` around Unicode digits, word characters,
U+001C-U+001F, U+0085 and U+FEFF), every character set of that pattern loses
the characters in question, so what we accept passes both.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import replace
from functools import lru_cache

from structgen.errors import RegexError
from structgen.frontends import charlang, json_text
from structgen.frontends.charlang import ANY_STRING
from structgen.frontends.json_constraints import Branch
from structgen.frontends.json_formats import format_automaton, format_language
from structgen.frontends.regex import regex_to_expr
from structgen.grammar import ir
from structgen.grammar.ir import EPS, NOTHING, alt, seq

MAX_STRING_STATES = 4000  # product automaton cap for several constraints on one string

_PY_CLASSES: dict[str, tuple] = {}


def _python_disagreement(kind: str) -> tuple:
    """Code points where an ECMA shorthand class and Python's ``re`` class differ
    in a way that would make us accept something ``re`` rejects."""
    r = _PY_CLASSES.get(kind)
    if r is None:
        pts = []
        for cp in range(0x80, charlang.MAX_CP + 1):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            c = chr(cp)
            if kind == "d" and unicodedata.category(c) == "Nd":
                pts.append(cp)
            elif kind == "w" and (c.isalnum() or c == "_"):
                pts.append(cp)
        r = charlang.merge_ranges((p, p) for p in pts)
        _PY_CLASSES[kind] = r
    return r


def _subst(f, consts: dict):
    """Formula f with the variables in consts replaced by constants, simplified."""
    if f is True or f is False:
        return f
    op = f[0]
    if op == "var":
        return consts.get(f[1], f)
    if op == "not":
        x = _subst(f[1], consts)
        return (not x) if isinstance(x, bool) else ("not", x)
    parts = [_subst(g, consts) for g in f[1:]]
    absorbing = op == "or"  # True absorbs an "or", False an "and"
    if any(p is absorbing for p in parts):
        return absorbing
    parts = [p for p in parts if not isinstance(p, bool)]
    if not parts:
        return not absorbing
    return parts[0] if len(parts) == 1 else (op,) + tuple(parts)


_NOT_IN_KEPT = 1024


def _not_in(names: tuple) -> ir.Expr:
    """Strings (character level) that are none of ``names``: a DFA leaf read
    off the trie of the names, registered so that
    :meth:`StringCompiler.spell_key` knows it by identity and takes its
    spelling from :func:`_undeclared_keys`.

    Registered at every call, not only when the trie is built: the register
    is emptied when it grows, and a trie still in the cache must be known
    again afterwards. (It was registered only when built; once the register
    had been emptied, deep into a long run, every cached trie was spelled
    afresh: 100 ms instead of 8 ms for the keys of a large Kubernetes
    schema.)"""
    e = _trie_leaf(names)
    if len(_names_of) >= 4 * _NOT_IN_KEPT:
        _names_of.clear()
    _names_of[id(e)] = (e, names)  # e is held, so its id is not reused while registered
    return e


_names_of: dict[int, tuple] = {}  # id(_not_in(names)) -> (that expression, names)


def _names_behind(e: ir.Expr) -> tuple | None:
    """The names ``e`` was made from, if it is a :func:`_not_in` trie."""
    known = _names_of.get(id(e))
    return known[1] if known is not None and known[0] is e else None


_END = ""  # a trie node's mark that a name ends there (no character is "")


def _trie(names: tuple) -> dict:
    """Nested dicts, one per prefix of a name, keyed by the next character."""
    trie: dict = {}
    for n in names:
        node = trie
        for ch in n:
            node = node.setdefault(ch, {})
        node[_END] = True
    return trie


def _kids(node: dict) -> list:
    """The characters that continue a name at a trie node, in order; no
    surrogate (a name holding one can never be spelled)."""
    return sorted(ch for ch in node if ch != _END and not 0xD800 <= ord(ch) <= 0xDFFF)


@lru_cache(maxsize=_NOT_IN_KEPT)
def _trie_leaf(names: tuple) -> ir.Expr:
    """The DFA leaf of :func:`_not_in`. Kept per process: schemas of one
    family (Kubernetes, say) declare the same objects again and again."""
    return (charlang.DFA_LEAF, _trie_automaton(names), 0)


def _trie_automaton(names: tuple) -> charlang.DFA:
    """The DFA of the strings that are none of ``names``, read off their
    trie: state 0 is the root, state 1 the strings that left the trie
    (everything accepted from there), every other state a trie node. Not
    minimised (:func:`_shrunk` does that where the automaton meets a
    pattern). Deriving it from a trie expression took 100 ms for a trie of
    460 nodes, and building that expression was the larger part of spelling
    a schema's keys."""
    nodes = [_trie(names), None]
    trans: list = [None, [(charlang.ANY_RANGES, 1)]]
    accept = [False, True]
    i = 0
    while i < len(nodes):
        node = nodes[i]
        if node is not None:
            kids = _kids(node)
            row = []
            for ch in kids:
                row.append((((ord(ch), ord(ch)),), len(nodes)))
                nodes.append(node[ch])
                trans.append(None)
                accept.append(False)
            other = _other_characters(kids)
            if other:
                row.append((other, 1))
            trans[i] = row
            accept[i] = _END not in node
        i += 1
    return charlang.DFA(trans, accept)


def _other_characters(kids: list) -> tuple:
    """The characters that continue no name at a trie node with these children."""
    return _characters_other_than(charlang.merge_ranges((ord(ch), ord(ch)) for ch in kids))


@lru_cache(maxsize=4096)
def _characters_other_than(used: tuple) -> tuple:
    other = charlang.cset(charlang.subtract_ranges(charlang.ANY_RANGES, used))
    return () if other == NOTHING else other[1]


_KEY_RULES: dict[str, ir.Expr] = {}  # the rules of every spelling _undeclared_keys made
_key_sink = charlang.RuleSink(_KEY_RULES, prefix="keychar")
_key_encoder = json_text.JsonCharEncoder(_key_sink)
_key_lock = threading.Lock()


@lru_cache(maxsize=1024)
def _undeclared_keys(names: tuple) -> tuple[ir.Expr, dict[str, ir.Expr]]:
    """The JSON spelling of :func:`_not_in` ``(names)`` and the rules it
    refers to (for characters beyond printable ASCII; their names start
    ``keychar``, which no grammar's own rules do). Spelling the keys of a
    Kubernetes object took about 1 ms per object and the same objects recur
    across schemas, so the spelling is kept per process and its few rules
    are copied into each grammar that uses it."""
    with _key_lock:
        e = _spelled_trie_complement(names)
        return e, {name: _KEY_RULES[name] for name in dict.fromkeys(ir.iter_refs(e))}


def _spelled_trie_complement(names: tuple) -> ir.Expr:
    """The strings that are none of ``names``, spelled as JSON string
    contents, built from the trie in one pass with each character set
    spelled once: per node, the end of the key if no name ends there, any
    character no name continues with followed by any string, and each
    continuing character followed by its child. Building a character-level
    trie expression and encoding it took three times as long (110 against
    33 ms for eslintrc's four big key sets)."""
    spelled: dict = {}

    def spell(ranges: tuple) -> ir.Expr:
        got = spelled.get(ranges)
        if got is None:
            got = spelled[ranges] = _key_encoder(ranges)
        return got

    any_string = ir.rep(spell(ANY_STRING[1][1]), 0, None)

    def go(node: dict) -> ir.Expr:
        opts = []
        if _END not in node:
            opts.append(EPS)
        kids = _kids(node)
        other = _other_characters(kids)
        if other:
            opts.append(seq(spell(other), any_string))
        for ch in kids:
            opts.append(seq(spell(((ord(ch), ord(ch)),)), go(node[ch])))
        return alt(*opts)

    return go(_trie(names))


@lru_cache(maxsize=1024)
def pattern_language(p: str) -> ir.Expr:
    """The character-level language of pattern ``p`` (search semantics;
    :class:`RegexError` if it cannot be enforced). Kept per process, so that
    the same object comes back and its minimised automaton can be reused
    (see :func:`_shrunk`)."""
    narrow: tuple = ()
    if re.search(r"(?<!\\)(?:\\\\)*\\[DW]", p):
        narrow = charlang.merge_ranges(_python_disagreement("d") + _python_disagreement("w"))
    if re.search(r"(?<!\\)(?:\\\\)*\\[sS]", p):
        narrow = charlang.merge_ranges(narrow + ((0x1C, 0x1F), (0x85, 0x85), (0xFEFF, 0xFEFF)))

    def enc(ranges):
        if narrow:
            ranges = charlang.subtract_ranges(charlang.merge_ranges(ranges), narrow)
        return charlang.cset(ranges)

    return regex_to_expr(p, search=True, encode_chars=enc)


class _KeptByIdentity:
    """The most recent results of a costly function of expressions, kept per
    process and looked up by the identity of the arguments (hashing a large
    expression tuple costs nearly as much as a small minimisation). Each
    entry keeps its arguments alive, so their ids cannot be reused while it
    lives. A format's or a pattern's language is one object per process
    (their builders are cached), so schemas that share one share its
    automata: minimising ``uri`` takes 0.1 s, intersecting it with
    ``^https?://`` 12 ms."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: "OrderedDict[tuple, tuple]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, args: tuple, extra=()):
        """The result for ``args`` (by identity) and ``extra`` (small and
        hashable: by value), or None."""
        key = (tuple(map(id, args)), extra)
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or any(a is not b for a, b in zip(hit[0], args)):
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, args: tuple, value, extra=()) -> None:
        with self._lock:
            self._entries[(tuple(map(id, args)), extra)] = (args, value)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


_shrunk_memo = _KeptByIdentity(512)
_combined_memo = _KeptByIdentity(256)


def _shrunk(c: ir.Expr):
    """``c`` as a minimised automaton leaf, or True / False when it accepts
    every string / none."""
    r = _shrunk_memo.get((c,))
    if r is None:
        dfa = format_automaton(c)
        if dfa is None:
            # A DFA leaf at its start (a key trie, a product made before) is
            # minimised as it is; deriving it again cost 100 ms for a trie of
            # 460 nodes.
            leaf = c[0] == charlang.DFA_LEAF and c[2] == 0
            dfa = charlang.minimize(c[1] if leaf else charlang.dfa_of(c, max_states=MAX_STRING_STATES))
        if dfa.empty:
            r = False
        elif charlang.is_universal(dfa):
            r = True
        else:
            r = (charlang.DFA_LEAF, dfa, 0)
        _shrunk_memo.put((c,), r)
    return r


def _combined(comps: list, f) -> charlang.DFA:
    """``charlang.combine`` of the string constraints ``comps`` under formula ``f``."""
    args = tuple(comps)
    dfa = _combined_memo.get(args, f)
    if dfa is None:
        dfa = charlang.combine(comps, f, max_states=MAX_STRING_STATES)
        _combined_memo.put(args, dfa, f)
    return dfa


class StringsMixin:
    """Patterns, string values and key languages for ``_Compiler``."""

    def pattern(self, p: str, ptr: str) -> ir.Expr:
        """The character-level language of a ``pattern`` (search semantics)."""
        hit = self.pattern_memo.get(p)
        if hit is not None:
            return hit
        try:
            e = pattern_language(p)
        except RegexError as err:
            # ECMA syntax we do not parse (e.g. \p{...}) or a malformed pattern:
            # either way we cannot enforce it
            self.unsupported("pattern", ptr, str(err))
            e = ANY_STRING
        self.pattern_memo[p] = e
        return e

    def string_formula(self, b: Branch, comps: list):
        """Add b's string constraints to comps; return the formula over them
        (True: unconstrained)."""
        parts = []

        def var(e) -> tuple:
            comps.append(e)
            return ("var", len(comps) - 1)

        if b.enum is not None:
            strings = [v for v in b.enum if isinstance(v, str)]
            parts.append(var(alt(*(charlang.text(v) for v in strings))))
        if b.min_len or b.max_len is not None:
            parts.append(var(charlang.length(b.min_len, b.max_len)))
        for p, ptr in b.patterns:
            parts.append(var(self.pattern(p, ptr)))
        for p, ptr in b.not_patterns:
            parts.append(("not", var(self.pattern(p, ptr))))
        for f, _ in b.formats:
            parts.append(var(format_language(f)))
        strings = [v for v in b.not_values if isinstance(v, str)]
        if strings:
            parts.append(("not", var(alt(*(charlang.text(v) for v in strings)))))
        if not parts:
            return True
        return parts[0] if len(parts) == 1 else ("and",) + tuple(parts)

    def string(self, b: Branch) -> ir.Expr:
        comps: list = []
        f = self.string_formula(b, comps)
        content = self.string_content(comps, f, b)
        if content == NOTHING:
            self.reasons.add(b.ptr, "no string satisfies the string constraints")
            return NOTHING
        return self.hoist(seq(json_text.QUOTE, charlang.encode(content, self.jenc, self.encode_memo,
                                                               self.sink), json_text.QUOTE))

    def string_content(self, comps: list, f, b: Branch | None) -> ir.Expr:
        """A character-level expression for ``f`` over ``comps``."""
        if f is True:
            return ANY_STRING
        if f[0] == "var":
            return comps[f[1]]
        key = (tuple(comps), f)
        hit = self.string_memo.get(key)
        if hit is not None:
            return hit
        # a length constraint the other constraints already imply is dropped
        if f[0] == "and" and b is not None and (b.min_len or b.max_len is not None) and len(f) == 3 and all(
            x[0] == "var" for x in f[1:]
        ):
            others = [comps[x[1]] for x in f[1:] if comps[x[1]] != charlang.length(b.min_len, b.max_len)]
            if len(others) == 1:
                lb = charlang.length_bounds(others[0])
                if lb is None:
                    return NOTHING
                if lb[0] >= b.min_len and (b.max_len is None or (lb[1] is not None and lb[1] <= b.max_len)):
                    self.string_memo[key] = others[0]
                    return others[0]
        try:
            comps2, f2 = self._shrink_components(comps, f)
            if f2 is True:
                self.string_memo[key] = ANY_STRING
                return ANY_STRING
            if f2 is False:
                self.string_memo[key] = NOTHING
                return NOTHING
            if f2[0] == "var":
                self.string_memo[key] = comps2[f2[1]]
                return comps2[f2[1]]
            counted = _counted_class(comps2, f2)
            if counted is not None:
                self.string_memo[key] = counted
                return counted
            if b is not None and _is_conjunction(comps2, f2) and _product_bound(comps2) > 4 * MAX_STRING_STATES:
                raise charlang.TooLarge  # plainly too big: skip the eager attempt
            dfa = _combined(comps2, f2)
        except charlang.TooLarge:
            if b is not None and _is_conjunction(comps, f):
                # Too big to build here: the automaton intersects lazily.
                result = ("and", tuple(comps[x[1]] for x in f[1:]))
                self.string_memo[key] = result
                return result
            ptr = b.ptr if b is not None else ""
            kw = "maxLength" if b is not None and (b.min_len or b.max_len is not None) else "pattern"
            self.unsupported(kw, ptr, f"the combined string constraints need more than {MAX_STRING_STATES} automaton states")
            if b is not None and kw == "maxLength":
                b2 = replace(b, min_len=0, max_len=None)
                comps2: list = []
                return self.string_content(comps2, self.string_formula(b2, comps2), b2)
            return ANY_STRING
        result = NOTHING if dfa.empty else (charlang.DFA_LEAF, dfa, 0)
        self.string_memo[key] = result
        self.keep.append(dfa)
        return result

    def _shrink_components(self, comps: list, f):
        """Minimise each component that is not a plain length counter, and
        replace components accepting everything / nothing by constants."""
        out = []
        consts: dict[int, bool] = {}
        for i, c in enumerate(comps):
            if c[0] == "rep" and c[1] == charlang.ANY_CHAR:
                out.append(c)
                continue
            r = _shrunk(c)
            if isinstance(r, bool):
                consts[i] = r
                out.append(c)
            else:
                out.append(r)
        return out, _subst(f, consts)

    def spell_key(self, key: ir.Expr) -> ir.Expr:
        """The JSON spelling of a key language (character level), as the
        content between the quotes."""
        names = _names_behind(key)
        if names is not None:
            spelling, rules = _undeclared_keys(names)
            self.rules.update(rules)
            return spelling
        return charlang.encode(key, self.jenc, self.encode_memo, self.sink)

    def key_language(self, b: Branch, names: list, pats: list, inside: list, outside: list) -> ir.Expr:
        """Keys that are not declared names, satisfy propertyNames, match the
        patterns ``inside`` and none of ``outside`` (indices into pats)."""
        comps: list = [_not_in(tuple(names))]
        parts: list = [("var", 0)]
        for i in inside:
            comps.append(self.pattern(pats[i][0], pats[i][2]))
            parts.append(("var", len(comps) - 1))
        for i in outside:
            comps.append(self.pattern(pats[i][0], pats[i][2]))
            parts.append(("not", ("var", len(comps) - 1)))
        pn = self.names_formula(b, comps)
        if pn is False:
            return NOTHING
        if pn is not True:
            parts.append(pn)
        f = parts[0] if len(parts) == 1 else ("and",) + tuple(parts)
        return self.string_content(comps, f, None)

    def names_formula(self, b: Branch, comps: list):
        """propertyNames as a formula over comps (True: unconstrained)."""
        result = []
        for s in b.prop_names:
            options = []
            for nb in self.normalize(s):
                if "string" not in nb.types:
                    continue
                f = self.string_formula(nb, comps)
                if f is True:
                    options = None
                    break
                options.append(f)
            if options is None:
                continue
            if not options:
                return False
            result.append(options[0] if len(options) == 1 else ("or",) + tuple(options))
        if not result:
            return True
        return result[0] if len(result) == 1 else ("and",) + tuple(result)


def _is_conjunction(comps: list, f) -> bool:
    """Is ``f`` a plain "all of these" over expression components (no
    negation, no non-regular checkers), which an IR intersection can state?"""
    return f[0] == "and" and all(x[0] == "var" and isinstance(comps[x[1]], tuple) for x in f[1:])


def _counted_class(comps: list, f) -> ir.Expr | None:
    """A conjunction of lengths and one-class loops (``^[\\w.-]+$``) as one
    counted class ``C{lo,hi}``, or None. The product automaton of such a
    pattern and a ``maxLength`` is a chain with a state per position, and no
    two positions share a mask (about 4 ms each for ``\\w`` and ``maxLength:
    64``); a counted repeat is clamped, and its positions share the masks of
    their length tiers (``TokenIndex._tiered``)."""
    if not _is_conjunction(comps, f):
        return None
    ranges, lo, hi = charlang.ANY_RANGES, 0, None
    for x in f[1:]:
        c = comps[x[1]]
        if c[0] == "rep" and c[1] == charlang.ANY_CHAR:
            lo = max(lo, c[2])
            if c[3] is not None:
                hi = c[3] if hi is None else min(hi, c[3])
            continue
        loop = charlang.class_loop(c[1], c[2]) if c[0] == charlang.DFA_LEAF else None
        if loop is None:
            return None
        ranges = charlang.intersect_ranges(ranges, loop[0])
        lo = max(lo, loop[1])
    if hi is not None and lo > hi:
        return NOTHING
    return ir.rep(charlang.cset(ranges), lo, hi)


def _product_bound(comps: list) -> float:
    """Rough size of the product automaton: minimised components count their
    states, a length counter its largest finite bound plus one, anything else
    one."""
    size = 1.0
    for c in comps:
        if c[0] == charlang.DFA_LEAF:
            size *= len(c[1].trans)
        elif c[0] == "rep" and c[1] == charlang.ANY_CHAR:
            size *= (c[3] if c[3] is not None else c[2]) + 1
    return size
