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
already explored. Operations with unknown outcome (`info`) return at +infinity: the search
succeeds once every definite operation is linearized, the rest being left out (as if they never
happened, or happened after everything else).

Keys are independent (P-compositionality, Herlihy & Wing): each key is checked alone, with its
own budget of `steps_max` search steps; exhausting it answers `unknown`, never a guess.

When a key is not linearizable, the verdict names the operation at fault. Cutting a history
just after some return, and turning operations still running at the cut into `info`, keeps a
linearizable history linearizable; so a binary search over returns finds the first return after
which no linearization exists. That operation, the longest partial linearization the search
reached, and the operations running beside it form the counterexample.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from quorumkv import limits
from quorumkv.history.operation import History, Operation, by_key, key_order
from quorumkv.history.register_model import RegisterModel, without_unobserved_writes
from quorumkv.history.verdict import Verdict, combined, quoted
from quorumkv.invariant import invariant

__all__ = [
    "Model",
    "Verdict",
    "check_linearizable",
    "check_register_history",
    "check_register_keys",
]


class Model(Protocol):
    """A sequential specification the search can linearize operations against."""

    name: str

    def initial_state(self) -> Hashable: ...

    def prepare(self, operation: Operation) -> Operation | None: ...

    def step(self, state: Hashable, operation: Operation) -> tuple[bool, Hashable]: ...

    def explain(self, state: Hashable, operation: Operation) -> str: ...


def check_register_history(
    history: History, steps_max: int = limits.linearizability_search_steps_max
) -> Verdict:
    """Whether every key of `history`, taken as a register, is linearizable.

    Returns the verdict of the first key (in key order) found not linearizable; else, if the
    search bound stopped any key, an unknown verdict; else a valid one. Raises MalformedHistory
    for a history that breaks its format (see History.operations and RegisterModel.prepare).
    """
    verdicts = check_register_keys(history, steps_max)
    operations = sum(len(group) for group in by_key(history.operations()).values())
    return combined(
        verdicts.values(),
        f"linearizable: {len(verdicts)} keys, {operations} operations",
    )


def check_register_keys(
    history: History, steps_max: int = limits.linearizability_search_steps_max
) -> dict[str | None, Verdict]:
    """One register verdict per key of `history`, keys in order."""
    groups = by_key(history.operations())
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
    prepared: list[Operation] = []
    original: dict[int, Operation] = {}
    for operation in operations:
        ready = model.prepare(operation)
        if ready is not None:
            prepared.append(ready)
            original[id(ready)] = operation
    if isinstance(model, RegisterModel):
        prepared = without_unobserved_writes(prepared)
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
    return _refutation(prepared, original, model, key, steps_max, result)


# ---- The search ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Outcome:
    """What one search found: validity, steps used, and its deepest partial linearization."""

    valid: bool | None
    steps: int
    path: list[int]
    state: Hashable
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


def _search(operations: Sequence[Operation], model: Model, steps_max: int) -> _Outcome:
    """Lowe's just-in-time linearization search with Porcupine's cache (module docstring)."""
    events = _Events(operations)
    bits = [1 << index for index in range(len(operations))]
    definite = [operation.ret is not None for operation in operations]
    remaining = sum(definite)
    state = model.initial_state()
    linearized = 0
    calls: list[tuple[int, Hashable]] = []
    seen: set[tuple[int, Hashable]] = set()
    deepest = _Outcome(False, 0, [], state, -1)
    slot = events.next[events.head]
    steps = 0
    while remaining:
        steps += 1
        if steps > steps_max:
            return _Outcome(None, steps_max, deepest.path, deepest.state, deepest.blocked)
        invariant(slot != -1, "a definite operation's return remains ahead of the scan")
        if events.is_call[slot]:
            index = events.operation[slot]
            legal, after = model.step(state, operations[index])
            configuration = (linearized | bits[index], after)
            if legal and configuration not in seen:
                seen.add(configuration)
                calls.append((slot, state))
                state, linearized = after, configuration[0]
                remaining -= definite[index]
                events.lift(slot)
                slot = events.next[events.head]
            else:
                slot = events.next[slot]
            continue
        if len(calls) > len(deepest.path) or deepest.blocked == -1:
            path = [events.operation[call] for call, _ in calls]
            deepest = _Outcome(False, 0, path, state, events.operation[slot])
        if not calls:
            deepest.steps = steps
            return deepest
        slot, state = calls.pop()
        index = events.operation[slot]
        linearized ^= bits[index]
        remaining += definite[index]
        events.unlift(slot)
        slot = events.next[slot]
    path = [events.operation[call] for call, _ in calls]
    return _Outcome(True, steps, path, state, -1)


# ---- Explaining a refutation ---------------------------------------------------------------


def _refutation(
    operations: list[Operation],
    original: dict[int, Operation],
    model: Model,
    key: str | None,
    steps_max: int,
    refuted: _Outcome,
) -> Verdict:
    """The verdict for operations `refuted` by a search: the first return at fault, and why."""
    returns = sorted(
        (index for index, operation in enumerate(operations) if operation.ret is not None),
        key=lambda index: _event_order(operations, 2 * index + 1),
    )
    low, high = 1, len(returns)
    while low < high:
        middle = (low + high) // 2
        prefix, _ = _prefix(operations, model, returns[middle - 1])
        if _search(prefix, model, steps_max).valid is False:
            high = middle
        else:
            low = middle + 1
    prefix, positions = _prefix(operations, model, returns[high - 1])
    outcome = _search(prefix, model, steps_max)
    if outcome.valid is not False:
        # Only the untested last prefix can get here (the search bound cut it short): it
        # differs from the whole history by info operations after every return at most.
        prefix, positions = list(operations), list(range(len(operations)))
        outcome = refuted
    culprit = original[id(operations[returns[high - 1]])]
    blocked = original[id(operations[positions[outcome.blocked]])]
    which = "it" if blocked is culprit else blocked.describe()
    message = (
        f"key {key!r} is not linearizable: no order of the operations up to the return of "
        f"{culprit.describe()} respects both real time and the {model.name} model. The longest "
        f"linearization found places {len(outcome.path)} of {len(prefix)} operations; then "
        f"{which} cannot take effect: {model.explain(outcome.state, prefix[outcome.blocked])}."
    )
    witnesses = _witnesses(prefix, outcome, model)
    return Verdict(
        False,
        key,
        message,
        quoted(
            [original[id(operations[positions[index]])] for index in witnesses],
            first=[culprit, blocked],
        ),
    )


def _prefix(
    operations: Sequence[Operation], model: Model, last: int
) -> tuple[list[Operation], list[int]]:
    """The history cut just after the return of operation `last`.

    Operations called before the cut and returning after it become `info` (re-prepared, so a
    read running at the cut is dropped). Also returns, for each operation kept, its position
    in `operations`.
    """
    cut = _event_order(operations, 2 * last + 1)
    kept: list[Operation] = []
    positions: list[int] = []
    for index, operation in enumerate(operations):
        if _event_order(operations, 2 * index) > cut:
            continue
        if _event_order(operations, 2 * index + 1) > cut:
            running = model.prepare(replace(operation, status="info", ret=None, output=None))
            if running is None:
                continue
            operation = running
        kept.append(operation)
        positions.append(index)
    return kept, positions


def _witnesses(prefix: Sequence[Operation], outcome: _Outcome, model: Model) -> list[int]:
    """The operations that show the problem, most telling first: the tail of the deepest
    linearization from the second-last change of state, then those running beside the
    blocked operation that the linearization left out."""
    states = [model.initial_state()]
    for index in outcome.path:
        states.append(model.step(states[-1], prefix[index])[1])
    changes = [step for step in range(len(outcome.path)) if states[step] != states[step + 1]]
    start = changes[-2] if len(changes) >= 2 else (changes[-1] if changes else 0)
    tail = outcome.path[start:]
    blocked = prefix[outcome.blocked]
    placed = set(outcome.path)
    beside = [
        index
        for index, operation in enumerate(prefix)
        if index not in placed
        and index != outcome.blocked
        and (operation.ret is None or blocked.ret is None or operation.ret >= blocked.call)
    ]
    return [*reversed(tail), *beside]
