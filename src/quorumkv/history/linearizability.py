"""Linearizability checking: is there one order of the operations that explains every answer?

A history is linearizable when each operation can be given a point between its call and its
return such that, applied one by one in the order of those points, a sequential model (here the
register of register_model.py) produces exactly the answers clients saw.

The search is Wing & Gong's, made "just in time" by Lowe and memoized as in Porcupine. Call and
return events sit in one doubly linked list sorted by time (at equal times calls come first, so
touching operations count as concurrent). Scanning from the front, a call whose operation the
model accepts in the current state is *linearized*: its call and return leave the list and the
scan restarts. Reaching a return means that operation was not linearized before it returned, so
the search backtracks, reinserting the last linearized operation and trying the next call after
it. A cache of (set of linearized operations as a bitmask, model state) prunes configurations
already explored. Operations with unknown outcome (`info`) return at +infinity, or at the
deadline the model sets (register_model.with_info_deadlines): the search succeeds once every
operation with a return is linearized, the rest being left out (as if they never happened).

Info operations are what makes this search explode: each one left pending doubles the
configurations at every later point. Two rules keep it in check, both sound because they only
skip orders for which an equivalent explored order exists. An info operation is applied only
if it changes the state, and only if what follows needs its value (an info write that is
overwritten before anything observes it might as well not have happened); the search state
therefore also holds `pending`, the state before such an unjustified info operation.

Keys are independent (P-compositionality, Herlihy & Wing): each key is checked alone, with its
own budget of `steps_max` search steps; exhausting it answers `unknown`, never a guess.

When a key is not linearizable, the verdict names the operation at fault. Cutting a history
just after some return, and turning operations still running at the cut into `info`, keeps a
linearizable history linearizable; so the first return after which no linearization exists is
well defined, and found by checking the operation the search was blocked on (usually right) or
else by a binary search over returns. That operation, the end of the longest linearization the
search reached, and the operations that could have explained it form the counterexample.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from quorumkv import limits
from quorumkv.history.operation import History, Operation, by_key, key_order
from quorumkv.history.register_model import RegisterModel
from quorumkv.history.verdict import Verdict, combined, quoted
from quorumkv.invariant import InvariantViolation

__all__ = [
    "Model",
    "Verdict",
    "check_linearizable",
    "check_register_history",
    "check_register_keys",
]


class Model(Protocol):
    """A sequential specification the search can linearize operations against.

    `prepare` freezes an operation's values and validates them, or returns None for one that
    can be left out; `bounded` may give info operations deadlines (their `ret`) or drop them;
    `step` says whether an operation may take effect in a state and the state after it;
    `justifies` and `justifiers` tell whether, and which, operations observe the effect of an
    info operation (see _Rules.moved); `explain` words why an operation cannot take effect.
    """

    name: str

    def initial_state(self) -> Hashable: ...

    def prepare(self, operation: Operation) -> Operation | None: ...

    def bounded(self, operations: list[Operation]) -> list[Operation]: ...

    def step(self, state: Hashable, operation: Operation) -> tuple[bool, Hashable]: ...

    def justifies(
        self, prior: Hashable, state: Hashable, operation: Operation, after: Hashable
    ) -> bool | None: ...

    def justifiers(
        self, operations: Sequence[Operation]
    ) -> Callable[[Hashable, Hashable], Iterable[int]]: ...

    def explain(self, state: Hashable, operation: Operation) -> str: ...


def check_register_history(
    history: History, steps_max: int = limits.linearizability_search_steps_max
) -> Verdict:
    """Whether every key of `history`, taken as a register, is linearizable.

    Returns the verdict of the first key (in key order) found not linearizable; else, if the
    search bound stopped any key, an unknown verdict; else a valid one. Raises MalformedHistory
    for a history that breaks its format (see History.operations and RegisterModel.prepare).
    """
    operations = history.operations()
    verdicts = _register_verdicts(operations, steps_max)
    return combined(
        verdicts.values(), f"linearizable: {len(verdicts)} keys, {len(operations)} operations"
    )


def check_register_keys(
    history: History, steps_max: int = limits.linearizability_search_steps_max
) -> dict[str | None, Verdict]:
    """One register verdict per key of `history`, keys in order."""
    return _register_verdicts(history.operations(), steps_max)


def _register_verdicts(
    operations: Sequence[Operation], steps_max: int
) -> dict[str | None, Verdict]:
    groups = by_key(operations)
    model = RegisterModel()
    return {
        key: check_linearizable(groups[key], model, key, steps_max)
        for key in sorted(groups, key=key_order)
    }


def check_linearizable(
    operations: Sequence[Operation],
    model: Model,
    key: str | None = None,
    steps_max: int = limits.linearizability_search_steps_max,
) -> Verdict:
    """Whether `operations` (all on one key) are linearizable with respect to `model`."""
    # Prepared operations carry, as `index`, their position in `operations`, so that verdicts
    # can quote the operations as recorded.
    prepared: list[Operation] = []
    for position, operation in enumerate(operations):
        ready = model.prepare(operation)
        if ready is not None:
            prepared.append(replace(ready, index=position))
    prepared = model.bounded(prepared)
    result = _search(prepared, model, steps_max)
    if result.valid:
        return Verdict(
            True,
            key,
            f"key {key!r}: {len(prepared)} operations linearizable ({result.steps} search steps)",
        )
    if result.valid is None:
        return Verdict(
            None,
            key,
            f"key {key!r}: unknown: the search stopped after {steps_max} steps over "
            f"{len(prepared)} operations without deciding; raise steps_max or check a "
            "shorter history",
        )
    return _refutation(prepared, operations, model, key, steps_max, result)


# ---- The search ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Outcome:
    """What one search found: validity, steps used, and its deepest partial linearization.

    `path` lists the operations of that linearization in order, `states` the model state before
    each of them and, last, after them all; `blocked` is the operation whose return the search
    could not pass from there (-1 if none).
    """

    valid: bool | None
    steps: int
    path: list[int]
    states: list[Hashable]
    blocked: int


class _Events:
    """Call and return events of operations in one doubly linked list, sorted by time.

    Slot s < 2n holds the s-th event in time order; slot 2n is the head sentinel; -1 ends the
    list. `lift` unlinks an operation's call and return, `unlift` relinks them (dancing links:
    it must undo lifts in reverse order).
    """

    def __init__(self, operations: Sequence[Operation]) -> None:
        codes = sorted(range(2 * len(operations)), key=lambda code: _event_order(operations, code))
        self.head = len(codes)
        self.operation = [code >> 1 for code in codes]
        self.is_call = [code & 1 == 0 for code in codes]
        slot_of = {code: slot for slot, code in enumerate(codes)}
        self.match = [slot_of[code | 1] for code in codes]
        self.next = [*range(1, len(codes)), -1, 0 if codes else -1]
        self.previous = [self.head, *range(len(codes) - 1), -1]

    def lift(self, slot: int) -> None:
        self._unlink(slot)
        self._unlink(self.match[slot])

    def unlift(self, slot: int) -> None:
        self._relink(self.match[slot])
        self._relink(slot)

    def _unlink(self, slot: int) -> None:
        before, after = self.previous[slot], self.next[slot]
        self.next[before] = after
        if after != -1:
            self.previous[after] = before

    def _relink(self, slot: int) -> None:
        before, after = self.previous[slot], self.next[slot]
        self.next[before] = slot
        if after != -1:
            self.previous[after] = slot


def _event_order(operations: Sequence[Operation], code: int) -> tuple[int, int, int, int]:
    """Sort key of event `code` (2i: call of operation i, 2i+1: its return)."""
    operation = operations[code >> 1]
    if code & 1 == 0:
        return (0, operation.call, 0, code)
    if operation.ret is None:
        return (1, 0, 1, code)
    return (0, operation.ret, 1, code)


class _Settled:
    """The marker of a search state where no info operation awaits justification."""

    def __repr__(self) -> str:
        return "settled"


_SETTLED = _Settled()


def _search(operations: Sequence[Operation], model: Model, steps_max: int) -> _Outcome:
    """Lowe's just-in-time linearization search with Porcupine's cache (module docstring).

    The search state is the set of linearized operations (a bitmask), the model state, and
    `pending`: the state before an info operation that changed it and awaits justification
    (or _SETTLED). An info operation with a deadline has two ways to be linearized, applied
    (choice 0) or as a no-op (choice 1); every other operation has only the first.
    """
    events = _Events(operations)
    rules = _Rules(operations, model)
    bits = [1 << index for index in range(len(operations))]
    bounded = rules.bounded
    choices = [
        1 + (bound and operation.status == "info")
        for bound, operation in zip(bounded, operations, strict=True)
    ]
    plain = [operation.status == "ok" for operation in operations]
    step = model.step
    remaining = sum(bounded)
    state = model.initial_state()
    pending: Hashable = _SETTLED
    linearized = 0
    calls: list[tuple[int, Hashable, Hashable, int]] = []
    seen: set[tuple[int, Hashable, Hashable]] = set()
    deepest = _Outcome(False, 0, [], [state], -1)
    slot, choice = events.next[events.head], 0
    moved: tuple[Hashable, Hashable] | None
    steps = 0
    while remaining:
        steps += 1
        if steps > steps_max:
            deepest.valid, deepest.steps = None, steps_max
            return deepest
        if slot == -1:
            raise InvariantViolation("the scan passed every return yet some remain to linearize")
        if events.is_call[slot]:
            index = events.operation[slot]
            if choice >= choices[index]:
                slot, choice = events.next[slot], 0
                continue
            if pending is _SETTLED and plain[index]:  # the common case, inlined for speed
                legal, after = step(state, operations[index])
                moved = (after, pending) if legal else None
            else:
                moved = rules.moved(index, choice, state, pending, linearized)
            configuration = (linearized | bits[index], *moved) if moved else None
            if configuration is None or configuration in seen:
                choice += 1
                continue
            seen.add(configuration)
            calls.append((slot, state, pending, choice))
            linearized, state, pending = configuration
            remaining -= bounded[index]
            events.lift(slot)
            slot, choice = events.next[events.head], 0
            continue
        if len(calls) > len(deepest.path) or deepest.blocked == -1:
            path = [events.operation[call[0]] for call in calls]
            states = [call[1] for call in calls]
            deepest = _Outcome(False, 0, path, [*states, state], events.operation[slot])
        if not calls:
            deepest.steps = steps
            return deepest
        slot, state, pending, choice = calls.pop()
        index = events.operation[slot]
        linearized ^= bits[index]
        remaining += bounded[index]
        events.unlift(slot)
        choice += 1
    path = [events.operation[call[0]] for call in calls]
    return _Outcome(True, steps, path, [*(call[1] for call in calls), state], -1)


class _Rules:
    """Where the search may go from a configuration (see `moved`)."""

    def __init__(self, operations: Sequence[Operation], model: Model) -> None:
        self.operations = operations
        self.model = model
        self.bounded = [operation.ret is not None for operation in operations]
        self.justifiers = model.justifiers(operations)

    def moved(
        self, index: int, choice: int, state: Hashable, pending: Hashable, linearized: int
    ) -> tuple[Hashable, Hashable] | None:
        """The (state, pending) after linearizing operation `index` by `choice`, or None if
        the search need not go there: the model refuses it, or a canonical order without it
        exists.

        An info operation that changed the state must be justified by what follows: a later
        operation that observes its value (model.justifies), so one is applied only while
        such an operation remains to linearize. One overwritten unobserved might as well not
        have happened, and that order is explored anyway. For the same reason an info
        operation with no deadline is never applied without effect.
        """
        if choice == 1:
            return state, pending
        operation = self.operations[index]
        legal, after = self.model.step(state, operation)
        if not legal:
            return None
        if pending is not _SETTLED:
            justified = self.model.justifies(pending, state, operation, after)
            if justified is None:
                return None
            if justified:
                pending = _SETTLED
        if operation.status == "info":
            if after == state:
                return (after, pending) if self.bounded[index] else None
            if all(linearized >> other & 1 for other in self.justifiers(state, after)):
                return None
            pending = state
        return after, pending


# ---- Explaining a refutation ---------------------------------------------------------------


def _refutation(
    operations: list[Operation],
    original: Sequence[Operation],
    model: Model,
    key: str | None,
    steps_max: int,
    refuted: _Outcome,
) -> Verdict:
    """The verdict for operations `refuted` by a search: the first return at fault, and why."""
    returns = sorted(
        (index for index, operation in enumerate(operations) if operation.status == "ok"),
        key=lambda index: _event_order(operations, 2 * index + 1),
    )
    count, (prefix, outcome) = _first_refuted_prefix(operations, model, steps_max, returns, refuted)
    if outcome.valid is not False:
        # Only the untested last prefix can get here (the search bound cut it short): it
        # differs from the whole history by info operations after every return at most.
        prefix, outcome = list(operations), refuted
    culprit = original[operations[returns[count - 1]].index]
    blocked = original[prefix[outcome.blocked].index]
    which = "it" if blocked is culprit else blocked.describe()
    message = (
        f"key {key!r} is not linearizable: no order of the operations up to the return of "
        f"{culprit.describe()} respects both real time and the {model.name} model. The longest "
        f"linearization found places {len(outcome.path)} of {len(prefix)} operations; then "
        f"{which} cannot take effect: {model.explain(outcome.states[-1], prefix[outcome.blocked])}."
    )
    witnesses = _witnesses(prefix, outcome, model)
    return Verdict(
        False,
        key,
        message,
        quoted(
            [original[prefix[index].index] for index in witnesses],
            first=[culprit, blocked],
        ),
    )


def _first_refuted_prefix(
    operations: Sequence[Operation],
    model: Model,
    steps_max: int,
    returns: Sequence[int],
    refuted: _Outcome,
) -> tuple[int, tuple[list[Operation], _Outcome]]:
    """The least count of returns after which the history is refuted, with that prefix and
    its search outcome (refuted, or undecided if it is the whole history).

    The operation the whole search was blocked on is usually the one at fault: if the prefix
    up to its return is refuted and the one before it linearizable, that is the answer at the
    price of two searches. Otherwise a binary search over the returns finds it.
    """

    def searched(count: int) -> tuple[list[Operation], _Outcome]:
        prefix = _prefix(operations, model, returns[count - 1])
        return prefix, _search(prefix, model, steps_max)

    if refuted.blocked in returns:
        hint = returns.index(refuted.blocked) + 1
        found = searched(hint)
        if found[1].valid is False and (hint == 1 or searched(hint - 1)[1].valid is True):
            return hint, found
    low, high = 1, len(returns)
    while low < high:
        middle = (low + high) // 2
        if searched(middle)[1].valid is False:
            high = middle
        else:
            low = middle + 1
    return high, searched(high)


def _prefix(operations: Sequence[Operation], model: Model, last: int) -> list[Operation]:
    """The history cut just after the return of operation `last`.

    Operations called before the cut and returning after it become `info` without deadline
    (re-prepared, so a read running at the cut is dropped).
    """
    cut = _event_order(operations, 2 * last + 1)
    kept: list[Operation] = []
    for index, operation in enumerate(operations):
        if _event_order(operations, 2 * index) > cut:
            continue
        if _event_order(operations, 2 * index + 1) > cut:
            running = model.prepare(replace(operation, status="info", ret=None, output=None))
            if running is None:
                continue
            operation = running
        kept.append(operation)
    return kept


def _witnesses(prefix: Sequence[Operation], outcome: _Outcome, model: Model) -> list[int]:
    """The operations that show the problem, most telling first: the tail of the deepest
    linearization from the second-last change of state, the last operation before it that
    left a state the blocked one would accept, the definite operations running beside the
    blocked one that the linearization left out, and the info operations that would have let
    it take effect."""
    states = outcome.states
    changes = [step for step in range(len(outcome.path)) if states[step] != states[step + 1]]
    start = changes[-2] if len(changes) >= 2 else (changes[-1] if changes else 0)
    tail = outcome.path[start:]
    blocked = prefix[outcome.blocked]
    placed = {*outcome.path, outcome.blocked}
    beside = [
        index
        for index, operation in enumerate(prefix)
        if index not in placed
        and operation.status == "ok"
        and (operation.ret is None or blocked.ret is None or operation.ret >= blocked.call)
    ]
    enabling = [
        index
        for index, operation in enumerate(prefix)
        if index not in placed
        and operation.status == "info"
        and model.step(model.step(states[-1], operation)[1], blocked)[0]
    ]
    earlier = [  # the last earlier point at which the blocked operation could have been placed
        outcome.path[step]
        for step in range(start)
        if states[step] != states[step + 1] and model.step(states[step + 1], blocked)[0]
    ][-1:]
    return [*reversed(tail), *earlier, *beside, *enabling]
