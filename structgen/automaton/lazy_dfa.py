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
"""

from __future__ import annotations

import sys
import threading
from collections import deque

import numpy as np

from structgen.errors import GrammarError, GrammarTooLargeError
from structgen.grammar.analysis import RuleGraph
from structgen.grammar.ir import Expr, Grammar

# Node kinds.
_NOTHING, _EPS, _BYTES, _SEQ, _ALT, _REP, _REF, _AND = range(8)
# Nodes one search for a way through an intersection may visit before giving up.
_MAX_SEARCH = 50_000

DEAD = 0
UNKNOWN = -1

# Derivatives recurse along the nesting of the expression, which follows the
# nesting of the document being generated; allow deep documents.
if sys.getrecursionlimit() < 20000:
    sys.setrecursionlimit(20000)


class LazyDFA:
    """The transition table of a grammar, filled on demand. Thread-safe."""

    def __init__(self, grammar: Grammar, *, max_states: int = 200_000, max_nodes: int = 5_000_000) -> None:
        self.grammar = grammar
        self.max_states = max_states
        self.max_nodes = max_nodes
        self._lock = threading.RLock()
        graph = grammar.rule_graph()
        self._rule_index = graph.index
        self._grammar_has_and = graph.has_and
        self._byte_class_list, members = _byte_classes(graph.byte_sets)
        self.byte_class = np.array(self._byte_class_list, dtype=np.int32)
        self.num_classes = len(members)
        self._class_bytes = [np.array(m, dtype=np.intp) for m in members]
        self._class_first_byte = np.array([b[0] for b in self._class_bytes], dtype=np.int64)
        self._class_sizes = np.array([len(b) for b in self._class_bytes], dtype=np.int64)
        self._class_masks: dict[tuple, int] = {}

        # Node store: parallel lists indexed by node id.
        self._kind: list[int] = []
        self._args: list[tuple] = []
        self._nullable: list[bool] = []
        self._has_and: list[bool] = []  # contains an intersection (maybe via a rule)
        self._live: dict[int, bool] = {}  # productivity of nodes with intersections
        self._intern: dict[tuple, int] = {}
        self._rule_body: list[int | None] = [None] * len(self._rule_index)
        self._deriv_memo: dict[int, int] = {}
        self._seq_memo: dict[tuple[int, int], int] = {}
        self._first_of: list[int | None] = []
        self._leading_of: dict[int, frozenset] = {}
        self._local_targets: dict[tuple[int, int], int] = {}
        self._all_classes = (1 << self.num_classes) - 1
        self._class_mask_bytes = (self.num_classes + 7) // 8
        self._bytes_of_classes: dict[int, np.ndarray] = {}  # class mask -> bool per byte
        self._clamp_memo: dict[int, dict[int, int]] = {}

        self._mk((_NOTHING,), False)  # node 0
        self._mk((_EPS,), True)  # node 1
        self._load_rules(graph)

        # DFA states: state id <-> node id. State 0 is dead (node NOTHING).
        self._state_of_node: dict[int, int] = {}
        self._node_of_state: list[int] = []
        self.table = np.full((1024, 256), UNKNOWN, dtype=np.int32)
        self._complete_rows: set[int] = set()
        self._state_for(0)
        self.table[DEAD, :] = DEAD
        self._complete_rows.add(DEAD)
        self.start = self._state_for(self._live_or_nothing(self._body(self._rule_index[grammar.start])))

    # ------------------------------------------------------------------ nodes
    def _mk(self, key: tuple, nullable: bool, has_and: bool = False) -> int:
        node = self._intern.get(key)
        if node is None:
            node = len(self._kind)
            if node >= self.max_nodes:
                raise GrammarTooLargeError(
                    f"the automaton grew past {self.max_nodes} expression nodes; "
                    "simplify the grammar or raise max_nodes"
                )
            self._kind.append(key[0])
            self._args.append(key[1:])
            self._nullable.append(nullable)
            self._has_and.append(has_and)
            self._intern[key] = node
        return node

    def _seq(self, a: int, b: int) -> int:
        if a == 0 or b == 0:
            return 0
        if a == 1:
            return b
        if b == 1:
            return a
        if self._kind[a] == _SEQ:  # re-associate to the right, remembered: chains recur in every derivative
            key = (a, b)
            r = self._seq_memo.get(key)
            if r is None:
                head, tail = self._args[a]
                r = self._seq_memo[key] = self._seq(head, self._seq(tail, b))
            return r
        return self._mk((_SEQ, a, b), self._nullable[a] and self._nullable[b], self._has_and[a] or self._has_and[b])

    def _alt(self, options) -> int:
        flat: set[int] = set()
        for o in options:
            if o == 0:
                continue
            if self._kind[o] == _ALT:
                flat.update(self._args[o][0])
            else:
                flat.add(o)
        if not flat:
            return 0
        if len(flat) == 1:
            return next(iter(flat))
        key = tuple(sorted(flat))
        return self._mk((_ALT, key), any(self._nullable[o] for o in key), any(self._has_and[o] for o in key))

    def _and(self, parts) -> int:
        flat: set[int] = set()
        for p in parts:
            if p == 0:
                return 0
            if self._kind[p] == _AND:
                flat.update(self._args[p][0])
            else:
                flat.add(p)
        if len(flat) == 1:
            return next(iter(flat))
        key = tuple(sorted(flat))
        return self._mk((_AND, key), all(self._nullable[p] for p in key), True)

    def _rep(self, e: int, lo: int, hi: int | None) -> int:
        if hi == 0 or e == 1:
            return 1
        if e == 0:
            return 1 if lo == 0 else 0
        if lo == 1 and hi == 1:
            return e
        return self._mk((_REP, e, lo, hi), lo == 0 or self._nullable[e], self._has_and[e])

    def _bytes(self, ranges) -> int:
        mask = self._class_masks.get(ranges)
        if mask is None:
            classes = self._byte_class_list
            mask = 0
            for lo, hi in ranges:
                for c in set(classes[lo : hi + 1]):
                    mask |= 1 << c
            self._class_masks[ranges] = mask
        return self._mk((_BYTES, mask), False) if mask else 0

    def _from_ir(self, e: Expr, memo: dict[int, int]) -> int:
        node = memo.get(id(e))
        if node is not None:
            return node
        kind = e[0]
        if kind == "bytes":
            node = self._bytes(e[1])
        elif kind == "seq":
            node = 1
            for part in reversed(e[1]):
                node = self._seq(self._from_ir(part, memo), node)
        elif kind == "alt":
            node = self._alt([self._from_ir(x, memo) for x in e[1]])
        elif kind == "and":
            node = self._and([self._from_ir(x, memo) for x in e[1]])
        elif kind == "rep":
            node = self._rep(self._from_ir(e[1], memo), e[2], e[3])
        elif kind == "ref":
            idx = self._rule_index.get(e[1])
            if idx is None:
                raise GrammarError(f"reference to undefined rule {e[1]!r}")
            if not self._graph.is_productive(idx):
                node = 0
            else:
                node = self._mk((_REF, idx), self._graph.is_nullable(idx), idx in self._rules_with_and)
        elif kind == "eps":
            node = 1
        elif kind == "nothing":
            node = 0
        else:
            raise GrammarError(f"unknown IR node kind {kind!r}")
        memo[id(e)] = node
        return node

    def _load_rules(self, graph: RuleGraph) -> None:
        """Keep the grammar's rule graph and reject left recursion (it would
        make derivation loop forever). Rule bodies are interned later, when a
        derivative first reaches them, so a big schema pays only for the
        rules a generation visits; a reference is interned with the rule's
        nullability, or as ``NOTHING`` when the rule is unproductive, so no
        state is ever a dead end that is not ``DEAD``. The graph evaluates
        both only for the rules asked about."""
        self._graph = graph
        self._rules_with_and = _rules_reaching_and(graph) if self._grammar_has_and else set()
        self._rule_ir = graph.bodies
        self._ir_memo: dict[int, int] = {}  # by id(): the grammar keeps every IR node alive
        self._check_left_recursion(graph)

    def _body(self, rule: int) -> int:
        """The interned body of ``rule``, interned on first use."""
        node = self._rule_body[rule]
        if node is None:
            node = self._rule_body[rule] = self._from_ir(self._rule_ir[rule], self._ir_memo)
        return node

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
            return frozenset((self._rule_index[e[1]],))
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

    # ------------------------------------------------------------ derivatives
    def _first(self, n: int) -> int:
        """Bit mask of the byte classes that can start a string of ``n``: the
        derivative by any other class is ``NOTHING`` without computing it.
        Follows rule references; only leading positions are visited, which
        cannot cycle because left recursion is rejected."""
        f = self._first_of[n] if n < len(self._first_of) else None
        if f is not None:
            return f
        k = self._kind[n]
        if k == _BYTES:
            f = self._args[n][0]
        elif k == _SEQ:
            head, tail = self._args[n]
            f = self._first(head)
            if self._nullable[head]:
                f |= self._first(tail)
        elif k == _ALT:
            f = 0
            for x in self._args[n][0]:
                f |= self._first(x)
        elif k == _AND:
            f = -1
            for x in self._args[n][0]:
                f &= self._first(x)
        elif k == _REP:
            f = self._first(self._args[n][0])
        elif k == _REF:
            f = self._first(self._body(self._args[n][0]))
        else:
            f = 0
        if n >= len(self._first_of):
            self._first_of.extend([None] * (len(self._kind) - len(self._first_of)))
        self._first_of[n] = f
        return f

    def _deriv(self, n: int, c: int) -> int:
        key = n * self.num_classes + c
        r = self._deriv_memo.get(key)
        if r is not None:
            return r
        if not (self._first(n) >> c) & 1:
            return 0
        k = self._kind[n]
        if k == _BYTES:
            r = 1
        elif k == _SEQ:
            head, tail = self._args[n]
            r = self._seq(self._deriv(head, c), tail)
            if self._nullable[head]:
                r = self._alt((r, self._deriv(tail, c)))
        elif k == _ALT:
            bit = 1 << c
            first = self._first
            r = self._alt([self._deriv(x, c) for x in self._args[n][0] if first(x) & bit])
        elif k == _REP:
            e, lo, hi = self._args[n]
            r = self._seq(self._deriv(e, c), self._rep(e, max(lo - 1, 0), None if hi is None else hi - 1))
        elif k == _AND:
            r = self._and([self._deriv(x, c) for x in self._args[n][0]])
        elif k == _REF:
            r = self._deriv(self._body(self._args[n][0]), c)
        else:
            r = 0
        self._deriv_memo[key] = r
        return r

    # ------------------------------------------------------ mask equivalence
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
        memo = self._clamp_memo.setdefault(horizon, {})
        with self._lock:
            node = self._clamp(self._node_of_state[state], horizon, memo)
            return self._state_for(node)

    def _clamp(self, n: int, horizon: int, memo: dict[int, int]) -> int:
        r = memo.get(n)
        if r is not None:
            return r
        k = self._kind[n]
        if k == _SEQ:
            head, tail = self._args[n]
            r = self._seq(self._clamp(head, horizon, memo), self._clamp(tail, horizon, memo))
        elif k == _ALT:
            r = self._alt([self._clamp(x, horizon, memo) for x in self._args[n][0]])
        elif k == _REP:
            e, lo, hi = self._args[n]
            lo = 0 if self._nullable[e] else min(lo, horizon)
            hi = None if hi is None or hi > horizon else hi
            r = self._rep(e, lo, hi)
        else:
            r = n
        memo[n] = r
        return r

    # ----------------------------------------------------------------- states
    def _state_for(self, node: int) -> int:
        s = self._state_of_node.get(node)
        if s is None:
            s = len(self._node_of_state)
            if s >= self.max_states:
                raise GrammarTooLargeError(
                    f"the automaton grew past {self.max_states} states; simplify the grammar or raise max_states"
                )
            self._state_of_node[node] = s
            self._node_of_state.append(node)
            if s >= self.table.shape[0]:
                grown = np.full((self.table.shape[0] * 2, 256), UNKNOWN, dtype=np.int32)
                grown[: self.table.shape[0]] = self.table
                self.table = grown
        return s

    @property
    def num_states(self) -> int:
        return len(self._node_of_state)

    def is_accepting(self, state: int) -> bool:
        return self._nullable[self._node_of_state[state]]

    def step(self, state: int, byte: int) -> int:
        """The state after one byte (filling the table if needed)."""
        nxt = self.table[state, byte]
        if nxt == UNKNOWN:
            nxt = self.fill(state, byte)
        return int(nxt)

    def _derive(self, state: int, c: int) -> int:
        """The state reached from ``state`` on class ``c`` (table not written)."""
        node = self._node_of_state[state]
        return self._derive_alike(state, node, self._alike(node, c))

    def _derive_alike(self, state: int, node: int, alike: int) -> int:
        """The state reached from ``state`` on any of the classes ``alike``
        (:meth:`_alike`), derived once for the lowest of them."""
        if not alike:
            return DEAD
        rep = (alike & -alike).bit_length() - 1
        key = (state, rep)
        nxt = self._local_targets.get(key)
        if nxt is not None:
            return nxt
        try:
            d = self._deriv(node, rep)
        except RecursionError:
            raise GrammarTooLargeError(
                "the expression nesting got too deep to derive; the document nests too deeply "
                "for this grammar (lower the nesting bound)"
            ) from None
        nxt = self._local_targets[key] = self._state_for(self._live_or_nothing(d))
        return nxt

    def _alike(self, n: int, c: int) -> int:
        """The classes whose derivative of ``n`` equals the one by ``c``, as
        a class mask: those in the first set that every leading byte set of
        ``n`` (:meth:`_leading_sets`) treats like ``c``, because a derivative
        reads the class only there; 0 when ``c`` is not in the first set
        (the derivative is ``NOTHING``). Byte classes are global: a schema's
        40 key names make most letters a class of their own, yet a state
        inside one free-form key tells only a few apart."""
        alike = self._first(n)
        if not (alike >> c) & 1:
            return 0
        for m in self._leading_sets(n):
            alike &= m if (m >> c) & 1 else ~m
        return alike

    def _leading_sets(self, n: int) -> frozenset:
        """The class masks of the byte sets that can match the first byte of
        a string of ``n`` (their union is :meth:`_first`)."""
        got = self._leading_of.get(n)
        if got is not None:
            return got
        k = self._kind[n]
        if k == _BYTES:
            r = frozenset(self._args[n])
        elif k == _SEQ:
            head, tail = self._args[n]
            r = self._leading_sets(head)
            if self._nullable[head]:
                r = r | self._leading_sets(tail)
        elif k == _ALT or k == _AND:
            r = frozenset().union(*(self._leading_sets(x) for x in self._args[n][0]))
        elif k == _REP:
            r = self._leading_sets(self._args[n][0])
        elif k == _REF:
            r = self._leading_sets(self._body(self._args[n][0]))
        else:
            r = frozenset()
        self._leading_of[n] = r
        return r

    def _live_or_nothing(self, node: int) -> int:
        """``node``, or ``NOTHING`` when an intersection in it leaves no way
        to reach acceptance (see the construction notes)."""
        if not self._has_and[node] or self._productive(node):
            return node
        return 0

    def _productive(self, node: int) -> bool:
        """Can ``node`` still reach acceptance? Decided structurally; only
        an intersection needs a search (:meth:`_and_productive`)."""
        live = self._live.get(node)
        if live is None:
            live = self._live[node] = self._prod(node, frozenset())
        return live

    def _prod(self, n: int, expanding: frozenset) -> bool:
        """Productivity with the rules in ``expanding`` assumed unproductive
        (a rule only counts through a way out of its own recursion). Only
        results that do not depend on that assumption are memoized as false."""
        if not self._has_and[n]:
            return n != 0
        live = self._live.get(n)
        if live is not None:
            return live
        k = self._kind[n]
        if k == _SEQ:
            live = all(self._prod(x, expanding) for x in self._args[n])
        elif k == _ALT:
            live = any(self._prod(x, expanding) for x in self._args[n][0])
        elif k == _REP:
            live = self._args[n][1] == 0 or self._prod(self._args[n][0], expanding)
        elif k == _REF:
            rule = self._args[n][0]
            live = rule not in expanding and self._prod(self._body(rule), expanding | {rule})
        else:
            live = self._and_productive(n)
        if live or not expanding:
            self._live[n] = live
        return live

    def _and_productive(self, root: int) -> bool:
        """Breadth-first search over the derivatives of an intersection for
        an accepting node, or one that is productive by the structural rule
        (typically the string's product is finished and only the rest of the
        document is left)."""
        seen = {root}
        queue = deque([root])
        while queue:
            n = queue.popleft()
            if self._nullable[n] or (self._kind[n] != _AND and self._productive(n)):
                return True
            first = self._first(n)
            for c in range(self.num_classes):
                if (first >> c) & 1:
                    d = self._deriv(n, c)
                    if d and d not in seen:
                        seen.add(d)
                        queue.append(d)
            if len(seen) > _MAX_SEARCH:
                raise GrammarTooLargeError(
                    f"checking that an intersection (e.g. pattern and maxLength) can still be completed "
                    f"took more than {_MAX_SEARCH} automaton nodes; simplify the constraints"
                )
        return False

    def fill(self, state: int, byte: int) -> int:
        """Compute the transition of ``state`` on ``byte``'s whole class."""
        with self._lock:
            return self._fill_class(state, self._byte_class_list[byte])

    def fill_classes(self, keys) -> None:
        """Compute the transitions ``state * num_classes + class`` listed in
        ``keys`` that are still unknown (what a token walk asked for)."""
        nc = self.num_classes
        first = self._class_first_byte
        with self._lock:
            for key in keys:
                state, c = divmod(key, nc)
                if self.table[state, first[c]] == UNKNOWN:
                    self._fill_class(state, c)

    def _fill_class(self, state: int, c: int) -> int:
        """Derive ``state`` by class ``c`` and write the target for every byte
        of the classes the state treats alike (:meth:`_alike`); the bytes
        outside the first set are filled as ``DEAD`` in one go."""
        node = self._node_of_state[state]
        alike = self._alike(node, c)
        nxt = self._derive_alike(state, node, alike)
        if not alike:
            alike = self._all_classes & ~self._first(node)
        byts = self._bytes_of_classes.get(alike)
        if byts is None:
            classes = np.unpackbits(np.frombuffer(alike.to_bytes(self._class_mask_bytes, "little"), np.uint8), bitorder="little")
            byts = self._bytes_of_classes[alike] = classes.view(bool)[self.byte_class]
        self.table[state, byts] = nxt  # the table may have grown in _derive_alike
        return nxt

    def complete_row(self, state: int) -> np.ndarray:
        """The full transition row of ``state`` (every byte class computed)."""
        if state not in self._complete_rows:
            with self._lock:
                row = self.table[state]
                per_class = row[self._class_first_byte].tolist()
                first = self._first(self._node_of_state[state])
                for c, nxt in enumerate(per_class):
                    if nxt == UNKNOWN:
                        per_class[c] = self._derive(state, c) if (first >> c) & 1 else DEAD
                self.table[state] = np.asarray(per_class, dtype=np.int32)[self.byte_class]
                self._complete_rows.add(state)
        return self.table[state]

    def walk(self, state: int, data: bytes) -> int:
        """The state after reading ``data`` (``DEAD`` if it cannot continue)."""
        table = self.table
        for b in data:
            nxt = table[state, b]
            if nxt == UNKNOWN:
                nxt = self.fill(state, b)
                table = self.table
            state = int(nxt)
            if state == DEAD:
                return DEAD
        return state

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
