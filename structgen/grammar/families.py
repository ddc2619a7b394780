"""Rule families: rules a grammar defines only when something reaches them.

Some constructions need one rule per state of a small machine whose state
space is far bigger than what a generation visits. An object whose six
members may come in any order, each at most once, needs a rule per set of
members seen: 64 of them (128 with undeclared members), each an alternation
over the members still open. Built eagerly, such states were about 40% of the
time to first mask on MaskBench, though a document visits one chain of them.

A :class:`RuleFamily` names its states ``"<prefix>/<key>"`` and builds a
state's body the first time a derivative reaches it. For the whole-grammar
facts (:mod:`structgen.grammar.analysis`) a family stands in two ways:

- its references to other rules are those of :attr:`RuleFamily.deps`, an
  expression holding every part a body may use besides the family's own
  states (its members, separators): enough for the reference graph, its
  strongly connected components and the byte sets;
- a state's nullability and productivity come from :meth:`RuleFamily.value`,
  which follows the family's own transitions and asks the analysis about the
  parts, so no body is built to answer them.

The contract: a body consists of parts from ``deps`` and references to states
of the same family, and the family's own transitions form no cycle other
than a state reaching itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from structgen.grammar import ir
from structgen.grammar.ir import Expr

SEPARATOR = "/"  # between a family's prefix and a state's key; no other rule name contains it


def split_name(name: str) -> tuple[str, str] | None:
    """``(prefix, key text)`` of a family state's name; None for other rules."""
    prefix, sep, key = name.partition(SEPARATOR)
    return (prefix, key) if sep else None


class RuleFamily:
    """A machine whose states are rules. Subclasses define :meth:`moves`:
    per state, whether it may end there and its steps ``(part, next state)``;
    a state's body is then ``EPS`` (if it may end) or any step's part
    followed by the next state."""

    def __init__(self, prefix: str, deps: Expr, size: int) -> None:
        if SEPARATOR in prefix:
            raise ValueError(f"a family prefix cannot contain {SEPARATOR!r}")
        self.prefix = prefix
        self.deps = deps
        self.size = size  # number of states: keys are 0 .. size-1
        self._bodies: dict[int, Expr] = {}

    # -------------------------------------------------------------- subclass
    def moves(self, key: int) -> tuple[bool, Iterable[tuple[Expr, int]]]:  # pragma: no cover - interface
        raise NotImplementedError

    # ---------------------------------------------------------------- states
    def name(self, key: int) -> str:
        return f"{self.prefix}{SEPARATOR}{key}"

    def ref(self, key: int) -> Expr:
        return ir.ref(self.name(key))

    @property
    def built(self) -> int:
        """How many states' bodies exist so far."""
        return len(self._bodies)

    def body(self, key: int) -> Expr:
        """The state's rule body, built once (automata built from one grammar
        share it, so their memos by node identity agree)."""
        got = self._bodies.get(key)
        if got is None:
            ends, steps = self.moves(key)
            options = [ir.EPS] if ends else []
            options.extend(ir.seq(part, self.ref(nxt)) for part, nxt in steps)
            got = self._bodies.setdefault(key, ir.alt(*options))
        return got

    def value(self, key: int, ev: Callable[[Expr], bool]) -> bool:
        """Nullability or productivity of a state (whichever ``ev`` gives for
        an expression over other rules): is there a path of steps whose parts
        all have the value, to a state that may end? Depth first with an
        explicit stack (a count of undeclared members can make a path
        thousands of states long); a state reaching itself adds nothing, and
        the contract rules out other cycles, so this is the least fixpoint."""
        parts: dict[int, bool] = {}
        finished: set[int] = set()  # states from which no such path exists
        ends, steps = self.moves(key)
        if ends:
            return True
        stack = [(key, iter(steps))]
        while stack:
            k, steps = stack[-1]
            for part, nxt in steps:
                if nxt == k or nxt in finished:
                    continue
                got = parts.get(id(part))
                if got is None:
                    got = parts[id(part)] = ev(part)
                if not got:
                    continue
                ends, nxt_steps = self.moves(nxt)
                if ends:
                    return True
                stack.append((nxt, iter(nxt_steps)))
                break
            else:
                finished.add(k)
                stack.pop()
        return False


def family_state(families: dict[str, RuleFamily], name: str) -> tuple[RuleFamily, int] | None:
    """``(family, key)`` of a state's rule name; None if no family has it."""
    parts = split_name(name)
    if parts is None:
        return None
    family = families.get(parts[0])
    if family is None or not parts[1].isdigit():
        return None
    key = int(parts[1])
    return (family, key) if key < family.size else None
