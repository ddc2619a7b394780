"""A lazily built DFA over bytes, from Brzozowski derivatives of the grammar IR.

Construction notes
------------------
*States are expressions.* The DFA state reached after reading a prefix ``p`` is
the derivative of the grammar by ``p``: the expression that matches exactly
the suffixes completing ``p``. Derivatives are hash-consed into integer node
ids, and a few smart-constructor rules (flatten and sort alternations, re-
associate sequences, let ``NOTHING`` absorb) make equal languages usually get
equal ids. For regular expressions that already guarantees finitely many
states; we never enumerate them, a state exists only once something asks for
a transition into it.

*Why derivatives.* Bounded repeats (``maxLength: 1000``) stay a counter inside
one node instead of a thousand NFA copies, and a rule reference is expanded
only when a derivative walks into it. A recursive rule (``$ref`` cycles, any
JSON value) therefore needs no explicit stack: the pending continuation is the
rest of the sequence, so the expression grows with the document's nesting and
shrinks back as brackets close. Left recursion would derive forever and is
rejected when the grammar is loaded.

*Byte classes.* Bytes that every byte set of the grammar treats alike form one
class (JSON grammars typically have a few dozen). Derivatives are computed per
class and written into a ``states x 256`` numpy transition table, so the token
index can walk the whole vocabulary with array lookups. Unknown transitions
are ``-1``; state 0 is the dead state.

*Intersections.* ``and`` nodes derive part-wise, so ``pattern`` times
``maxLength`` is a product built only where a generation goes. A product can
be empty even though its parts are not, which would leave a live-looking state
with no way to finish. Every new state that contains an intersection is
therefore checked for a path to acceptance (structurally, with a
breadth-first search over the derivatives of each intersection, memoized);
states without one become ``DEAD``. Without
intersections no check is needed: every other non-empty node is productive
because a reference to an unproductive rule is interned as ``NOTHING``.

*Caps.* ``max_states`` and ``max_nodes`` bound the construction; hitting one
raises :class:`~structgen.errors.GrammarTooLargeError` instead of exhausting
memory.

*Compiled.* Nodes, derivatives and the table live in flat arrays handled by
compiled code (:mod:`structgen.automaton.derivatives`), so a token walk
derives the transitions it meets without coming back to Python; this class
loads the grammar, interns rule bodies when a derivative first reaches them,
grows the arrays and turns compiled failures into exceptions.
"""

from __future__ import annotations

import threading

import numpy as np

from structgen.automaton import derivatives as core
from structgen.errors import GrammarError, GrammarTooLargeError
from structgen.grammar.analysis import RuleGraph, deep_recursion
from structgen.grammar.ir import Expr, Grammar

DEAD = core.DEAD
UNKNOWN = core.UNKNOWN

# The IR kinds that are n-ary compiled nodes, and those with operands.
_N_ARY = {"seq": core.SEQ, "alt": core.ALT, "and": core.AND}
_COMPOSITE = frozenset(("seq", "alt", "and", "rep"))

_FATAL = {
    core.TOO_DEEP: f"an automaton expression nests more than {core.MAX_DEPTH} levels deep, too deep to derive; "
    "simplify the grammar (or lower its nesting bound)",
    core.SEARCH_LIMIT: f"checking that an intersection (e.g. pattern and maxLength) can still be completed "
    f"took more than {core.MAX_SEARCH} automaton nodes; simplify the constraints",
}


class LazyDFA:
    """The transition table of a grammar, filled on demand. Thread-safe."""

    def __init__(self, grammar: Grammar, *, max_states: int = 200_000, max_nodes: int = 5_000_000) -> None:
        self.grammar = grammar
        self.max_states = max_states
        self.max_nodes = max_nodes
        self._lock = threading.RLock()
        graph = grammar.rule_graph()
        self._graph = graph
        self._rule_index = graph.index
        self._byte_class_list, members = _byte_classes(graph.byte_sets)
        self.byte_class = np.array(self._byte_class_list, dtype=np.int64)
        self.num_classes = len(members)
        self._class_words: dict[tuple, tuple[int, int, int, int]] = {}
        self._rules_with_and = _rules_reaching_and(graph) if graph.has_and else set()
        self._ir_node: dict[int, int] = {}  # id(IR node) -> node; the grammar keeps the IR alive
        with deep_recursion():
            self._check_left_recursion(graph)
        # a family's states get the rule numbers after the grammar's rules, a block per family
        self._family_base: dict[str, int] = {}
        self._family_rules: dict[int, tuple] = {}  # rule number -> (family, key), once referenced
        num_rules = len(graph.bodies)
        for prefix, family in graph.families.items():
            self._family_base[prefix] = num_rules
            num_rules += family.size
        self.store = core.new_store(num_rules, self.byte_class, [m[0] for m in members], max_states, max_nodes)
        self._keep_arrays()
        start = self._rule_index[grammar.start]
        self._intern_rule(start)
        self.start = self.call_until_done(core.start_state, self._rule_body[start])

    def _keep_arrays(self) -> None:
        """The store's arrays Python reads, again after each growth."""
        view = core.python_view(self.store)
        self._meta, self._rule_body, self._table, self._complete, self._nullable, self._node_of_state = view

    # ------------------------------------------------------------ compiled calls
    def call(self, fn, *args):
        """``fn(store, *args)`` once, under the lock. If it failed on
        something fixable (a rule body to intern, an array out of room), that
        is fixed before returning; other failures raise
        :class:`GrammarTooLargeError`. Returns ``(result, failed)``."""
        with self._lock:
            meta = self._meta
            meta[core.M_STATUS] = core.OK
            result = fn(self.store, *args)
            status = int(meta[core.M_STATUS])
            if status != core.OK:
                self._fix(status)
            return result, status != core.OK

    def call_until_done(self, fn, *args):
        """``fn(store, *args)``, called again after each fixed failure (for
        functions whose partial work is kept, so that a retry goes on)."""
        while True:
            result, failed = self.call(fn, *args)
            if not failed:
                return result

    def _fix(self, status: int) -> None:
        if status == core.NEED_RULE:
            self._intern_rule(int(self._meta[core.M_ARG]))
        elif status == core.FULL:
            if not core.grow(self.store):
                raise RuntimeError("structgen bug: the automaton store is full but has nothing to grow")
            self._keep_arrays()
        elif status == core.TOO_MANY_STATES:
            raise GrammarTooLargeError(
                f"the automaton grew past {self.max_states} states; simplify the grammar or raise max_states"
            )
        elif status == core.TOO_MANY_NODES:
            raise GrammarTooLargeError(
                f"the automaton grew past {self.max_nodes} expression nodes; simplify the grammar or raise max_nodes"
            )
        else:
            raise GrammarTooLargeError(_FATAL[status])

    # ------------------------------------------------------------------- IR
    def _intern_rule(self, rule: int) -> None:
        """Intern the body of ``rule``, when a derivative first reaches it,
        so that a big schema pays only for the rules a generation visits."""
        if rule < len(self._graph.bodies):
            body = self._graph.bodies[rule]
        else:
            family, key = self._family_rules[rule]
            body = family.body(key)
        code: list[int] = []
        words: list[tuple[int, int, int, int]] = []
        flattened: list[tuple[int, int]] = []
        with deep_recursion():  # rule values are solved as references are met
            root, n_ops = self._flatten(body, code, words, flattened)
        out = np.empty(n_ops, dtype=np.int64)
        word_rows = np.array(words, dtype=np.uint64).reshape(len(words), 4)
        self.call_until_done(core.intern_ops, np.array(code, dtype=np.int64), word_rows, out)
        nodes = out.tolist()
        ir_node = self._ir_node
        for ir_id, op in flattened:
            ir_node[ir_id] = nodes[op]
        self._rule_body[rule] = nodes[root]

    def _flatten(self, root: Expr, code: list, words: list, flattened: list) -> tuple[int, int]:
        """Append the ops of ``root`` to ``code`` (the format of
        :func:`~structgen.automaton.derivatives.intern_ops`), operands first,
        with an explicit stack (IR nests deeper than Python's recursion
        limit); byte sets go to ``words``, and ``(id(IR node), op)`` of each
        node not interned before to ``flattened``. Returns the op of
        ``root`` and the number of ops. Operands that are leaves or interned
        before get their ops as their parent is expanded, without a round
        through the stack (they are about two thirds of the ops)."""
        local: dict[int, int] = {}  # id(IR node) -> op
        ir_node = self._ir_node
        stack: list[tuple[Expr, bool]] = []

        def visit(e: Expr) -> None:  # an op now, or the node on the stack
            key = id(e)
            if key in local:
                return
            node = ir_node.get(key)
            if node is not None:
                code.extend((core.EXISTING, node))
            elif e[0] in _COMPOSITE:
                stack.append((e, False))
                return
            else:
                code.extend(self._op(e, local, words))
                flattened.append((key, len(local)))
            local[key] = len(local)

        visit(root)
        while stack:
            e, operands_done = stack.pop()
            key = id(e)
            if key in local:
                continue
            if not operands_done:
                stack.append((e, True))
                for x in reversed(e[1]) if e[0] != "rep" else (e[1],):
                    visit(x)
                continue
            code.extend(self._op(e, local, words))
            flattened.append((key, len(local)))
            local[key] = len(local)
        return local[id(root)], len(local)

    def _op(self, e: Expr, local: dict[int, int], words: list) -> tuple:
        """The op of ``e``, whose operands are in ``local`` already. A
        reference is interned with the rule's nullability, or as ``NOTHING``
        when the rule is unproductive, so no state is ever a dead end that is
        not ``DEAD``."""
        kind = e[0]
        if kind == "bytes":
            words.append(self._words(e[1]))
            return core.BYTES, len(words) - 1
        if kind in _N_ARY:
            return (_N_ARY[kind], len(e[1]), *[local[id(x)] for x in e[1]])
        if kind == "rep":
            return core.REP, local[id(e[1])], e[2], -1 if e[3] is None else e[3]
        if kind == "ref":
            idx = self._rule_index.get(e[1])
            if idx is None:
                return self._family_ref_op(e)
            if not self._graph.is_productive(idx):
                return (core.NOTHING,)
            return core.REF, idx, int(self._graph.is_nullable(idx)), int(idx in self._rules_with_and)
        if kind == "eps":
            return (core.EPS,)
        if kind == "nothing":
            return (core.NOTHING,)
        raise GrammarError(f"unknown IR node kind {kind!r}")

    def _family_ref_op(self, e: Expr) -> tuple:
        """The op of a reference to a family's state: its rule number is the
        family's block plus the key; its facts come from the family."""
        graph = self._graph
        state = graph.family_state(e[1])
        if state is None:
            raise GrammarError(f"reference to undefined rule {e[1]!r}")
        family, key = state
        if not graph.is_productive.of(e):
            return (core.NOTHING,)
        idx = self._family_base[family.prefix] + key
        self._family_rules[idx] = state
        refs, has_and = graph.family_facts[family.prefix]
        reaches_and = has_and or any(graph.index[n] in self._rules_with_and for n in refs)
        return core.REF, idx, int(graph.is_nullable.of(e)), int(reaches_and)

    def _words(self, ranges) -> tuple[int, int, int, int]:
        """The byte classes of a byte set, as four 64-bit words."""
        words = self._class_words.get(ranges)
        if words is None:
            classes = self._byte_class_list
            mask = 0
            for lo, hi in ranges:
                for c in set(classes[lo : hi + 1]):
                    mask |= 1 << c
            words = self._class_words[ranges] = tuple((mask >> (64 * i)) & 0xFFFFFFFFFFFFFFFF for i in range(4))
        return words

    def _check_left_recursion(self, graph: RuleGraph) -> None:
        """A cycle of rules reached without consuming a byte is a cycle of the
        reference graph too, so only rules in its recursive components are
        examined (JSON grammars rarely have any besides free-form values)."""
        leading_memo: dict[int, frozenset] = {}
        names = graph.names
        for component in graph.components:
            if len(component) == 1 and component[0] not in graph.edges[component[0]]:
                continue
            members = set(component)
            first = {i: sorted(members.intersection(self._leading_refs(graph.bodies[i], leading_memo)))
                     for i in component}
            state = dict.fromkeys(component, 0)  # 0 new, 1 on stack, 2 done
            for root in component:
                if state[root]:
                    continue
                path = [root]
                work = [iter(first[root])]
                state[root] = 1
                while work:
                    nxt = next(work[-1], None)
                    if nxt is None:
                        state[path.pop()] = 2
                        work.pop()
                        continue
                    if state[nxt] == 1:
                        cycle = " -> ".join(names[x] for x in path[path.index(nxt):] + [nxt])
                        raise GrammarError(f"left recursion through rules {cycle}: a rule reaches itself without consuming input")
                    if state[nxt] == 0:
                        state[nxt] = 1
                        path.append(nxt)
                        work.append(iter(first[nxt]))

    def _leading_refs(self, e: Expr, memo: dict) -> frozenset:
        """Indices of the rules ``e`` can reach without consuming a byte."""
        kind = e[0]
        if kind == "bytes" or kind == "eps" or kind == "nothing":  # leaves: no call, no memo
            return _NO_REFS
        if kind == "ref":
            idx = self._rule_index.get(e[1])
            if idx is None:  # a family's state leads with what the family is made of
                state = self._graph.family_state(e[1])
                if state is None:
                    raise GrammarError(f"reference to undefined rule {e[1]!r}")
                return self._leading_refs(state[0].deps, memo)
            return frozenset((idx,))
        got = memo.get(id(e))
        if got is not None:
            return got
        if kind == "seq":
            acc: set[int] = set()
            for part in e[1]:
                if part[0] == "bytes":
                    break
                acc |= self._leading_refs(part, memo)
                if not self._graph.is_nullable.of(part):
                    break
            r = frozenset(acc)
        elif kind in ("alt", "and"):
            found = [self._leading_refs(x, memo) for x in e[1] if x[0] != "bytes"]
            r = frozenset().union(*found) if found else _NO_REFS
        else:  # rep
            r = self._leading_refs(e[1], memo)
        memo[id(e)] = r
        return r

    # ----------------------------------------------------------------- states
    @property
    def table(self) -> np.ndarray:
        """``states x 256`` transitions (``UNKNOWN`` until derived). The array
        is replaced when it grows: read it again after a call."""
        return self._table

    @property
    def num_states(self) -> int:
        return int(self._meta[core.M_STATES])

    def is_accepting(self, state: int) -> bool:
        return bool(self._nullable[self._node_of_state[state]])

    def step(self, state: int, byte: int) -> int:
        """The state after one byte (filling the table if needed)."""
        nxt = self._table[state, byte]
        if nxt == UNKNOWN:
            nxt = self.fill(state, byte)
        return int(nxt)

    def fill(self, state: int, byte: int) -> int:
        """Compute the transition of ``state`` on ``byte`` (and on every byte
        the state treats alike)."""
        return int(self.call_until_done(core.fill_class, state, self._byte_class_list[byte]))

    def complete_row(self, state: int) -> np.ndarray:
        """The full transition row of ``state`` (every byte class computed)."""
        if not self._complete[state]:
            self.call_until_done(core.complete_row, state)
        return self._table[state]

    def loop_bytes(self, state: int) -> tuple[int, np.ndarray]:
        """How ``state`` loops (:func:`~structgen.automaton.derivatives.ensure_loops`):
        the kind of loop and the bytes that leave it (four 64-bit words)."""
        kind, leaving = self.call_until_done(core.loop_facts, state)
        return int(kind), leaving

    def walk(self, state: int, data: bytes) -> int:
        """The state after reading ``data`` (``DEAD`` if it cannot continue)."""
        table = self._table
        for b in data:
            nxt = table[state, b]
            if nxt == UNKNOWN:
                nxt = self.fill(state, b)
                table = self._table
            state = int(nxt)
            if state == DEAD:
                return DEAD
        return state

    def mask_equivalent(self, state: int, horizon: int) -> int:
        """A state with the same token mask as ``state``, with repeat counters
        clamped to ``horizon`` (the longest token, in bytes, plus one).

        Every repeat iteration consumes at least one byte, so while reading one
        token a counter moves by at most ``horizon - 1``: bounds beyond the
        horizon cannot be reached and lower bounds beyond it cannot be met, and
        which tokens stay alive is the same as with the clamped counters. That
        lets ``[a-z]{1,2000}`` or ``maxLength: 1000`` share one cached mask for
        all but the last ``horizon`` positions instead of one per position.
        """
        return int(self.call_until_done(core.mask_equivalent, state, horizon))

    def forced_bytes(self, state: int, limit: int = 256) -> bytes:
        """The bytes every continuation of ``state`` must start with."""
        out = bytearray()
        while len(out) < limit and not self.is_accepting(state):
            row = self.complete_row(state)
            live = np.flatnonzero(row != DEAD)
            if len(live) != 1:
                break
            b = int(live[0])
            out.append(b)
            state = int(row[b])
        return bytes(out)


def _byte_classes(byte_sets) -> tuple[list[int], list[list[int]]]:
    """Partition 0..255 into classes of bytes that every byte set treats
    alike: the class of each byte, and the bytes of each class."""
    sig = [0] * 256
    for bit, ranges in enumerate(byte_sets):
        flag = 1 << bit
        for lo, hi in ranges:
            for b in range(lo, hi + 1):
                sig[b] |= flag
    classes: dict[int, int] = {}
    of_byte = [classes.setdefault(s, len(classes)) for s in sig]
    members: list[list[int]] = [[] for _ in classes]
    for b, c in enumerate(of_byte):
        members[c].append(b)
    return of_byte, members


def _rules_reaching_and(graph: RuleGraph) -> set[int]:
    """Rules whose expansion contains an intersection, directly or through
    the rules they reference."""
    direct = {i for i, has in enumerate(graph.contains_and) if has}
    callers: list[list[int]] = [[] for _ in graph.bodies]
    for i, targets in enumerate(graph.edges):
        for t in targets:
            callers[t].append(i)
    out, stack = set(direct), list(direct)
    while stack:
        for caller in callers[stack.pop()]:
            if caller not in out:
                out.add(caller)
                stack.append(caller)
    return out


_NO_REFS: frozenset = frozenset()
