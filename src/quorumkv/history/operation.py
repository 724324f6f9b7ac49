"""Operation histories: what clients asked, when, and what they were told.

A history is the list of events a test harness records, in the order it saw them: a process
(one client, with at most one operation outstanding) *invokes* an operation, then learns its
outcome: `ok` (it happened, with this result), `fail` (it definitely did not happen) or `info`
(unknown: it may have happened, at any time after its invocation, even after later operations
of the same process). An invocation with no completion at all counts as `info`.

Checkers do not work on events but on `Operation`s, each pairing an invocation with its
completion: `call` and `ret` are the event times, and only their order matters. An operation
that is not definite (`info`) has `ret = None`, meaning it extends to +infinity. Values come from
JSON in the real harness, so checkers compare them through `frozen`, which turns lists into
tuples (hashable, and equal when the JSON was equal).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from quorumkv.errors import MalformedHistory
from quorumkv.invariant import InvariantViolation

Status = Literal["ok", "fail", "info"]


class OpType(enum.StrEnum):
    """The kind of an event: an invocation, or one of the three possible completions."""

    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a process did or learned.

    `value`: for a write, the value written; for a cas, [expected, new] on invocation and the
    boolean result on `ok`; for a read, None on invocation and the value read on `ok` (None
    meaning the key is absent). `time` is a monotonic logical or real time (nanoseconds).
    """

    type: OpType
    process: int
    function: str
    key: str | None
    value: object
    time: int


@dataclass(frozen=True, slots=True)
class Operation:
    """An invocation paired with its completion.

    `status` is "ok", "fail" or "info"; `ret` is None exactly when the status is "info" (the
    operation may take effect at any time after `call`). `index` is the position of the
    invocation in its history (-1 for operations built by hand) and names it in messages.
    """

    process: int
    function: str
    key: str | None
    input: object
    output: object
    status: Status
    call: int
    ret: int | None
    index: int = -1

    @property
    def definite(self) -> bool:
        """True when the outcome is known: it happened (ok) or it did not (fail)."""
        return self.status != "info"

    def return_time(self) -> int:
        """`ret` of an operation known to have completed; an info one has none (a bug to ask)."""
        if self.ret is None:
            raise InvariantViolation(f"{self.describe()} never returned: it has no return time")
        return self.ret

    def describe(self) -> str:
        """A one-line account of this operation for verdict messages."""
        if self.function == "read":
            what = f"read -> {self.output!r}" if self.status == "ok" else "read"
        elif self.status == "ok" and self.output is not None:
            what = f"{self.function} {self.input!r} -> {self.output!r}"
        else:
            what = f"{self.function} {self.input!r}"
        returned = "never returned" if self.ret is None else f"returned at {self.ret}"
        label = f"operation {self.index}" if self.index >= 0 else "operation"
        return (
            f"{label} (process {self.process}, {what}, {self.status}, "
            f"called at {self.call}, {returned})"
        )


_COMPLETION_STATUS: dict[OpType, Status] = {
    OpType.OK: "ok",
    OpType.FAIL: "fail",
    OpType.INFO: "info",
}


class History:
    """The events of one test run, in the order the harness recorded them."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._events: list[Event] = list(events)

    def append(self, event: Event) -> None:
        """Record one more event."""
        self._events.append(event)

    @property
    def events(self) -> tuple[Event, ...]:
        """The events recorded so far, in order."""
        return tuple(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def operations(self) -> list[Operation]:
        """Pair every invocation with its completion, in order of invocation.

        An invocation never completed becomes an `info` operation. Raises MalformedHistory
        when a process invokes twice without completing, completes what it never invoked,
        completes a different function or key than it invoked, or completes before invoking.
        """
        outstanding: dict[int, tuple[int, Event]] = {}
        completed: dict[int, Operation] = {}
        for position, event in enumerate(self._events):
            if event.type is OpType.INVOKE:
                if event.process in outstanding:
                    raise MalformedHistory(
                        f"event {position}: process {event.process} invokes {event.function} "
                        f"while event {outstanding[event.process][0]} is still outstanding"
                    )
                outstanding[event.process] = (position, event)
                continue
            if event.process not in outstanding:
                raise MalformedHistory(
                    f"event {position}: process {event.process} completes {event.function} "
                    "without an outstanding invocation"
                )
            start, invocation = outstanding.pop(event.process)
            completed[start] = _paired(start, invocation, position, event)
        for start, invocation in outstanding.values():
            completed[start] = _unfinished(start, invocation)
        return [completed[start] for start in sorted(completed)]


def _paired(start: int, invocation: Event, position: int, completion: Event) -> Operation:
    """The operation made of an invocation (event `start`) and its completion."""
    if (completion.function, completion.key) != (invocation.function, invocation.key):
        raise MalformedHistory(
            f"event {position}: process {completion.process} completes "
            f"{completion.function} on {completion.key!r} but invoked "
            f"{invocation.function} on {invocation.key!r} at event {start}"
        )
    if completion.time < invocation.time:
        raise MalformedHistory(
            f"event {position}: process {completion.process} completes at time "
            f"{completion.time}, before its invocation at time {invocation.time}"
        )
    status = _COMPLETION_STATUS[completion.type]
    return Operation(
        process=invocation.process,
        function=invocation.function,
        key=invocation.key,
        input=invocation.value,
        output=completion.value,
        status=status,
        call=invocation.time,
        ret=None if status == "info" else completion.time,
        index=start,
    )


def _unfinished(start: int, invocation: Event) -> Operation:
    """The `info` operation of an invocation whose completion was never recorded."""
    return Operation(
        process=invocation.process,
        function=invocation.function,
        key=invocation.key,
        input=invocation.value,
        output=None,
        status="info",
        call=invocation.time,
        ret=None,
        index=start,
    )


def frozen(value: object) -> Hashable:
    """`value` made hashable for comparison: lists and tuples become tuples, sets frozensets.

    Raises MalformedHistory for a value that cannot be compared (a dict, an arbitrary object
    that is not hashable).
    """
    if isinstance(value, list | tuple):
        return tuple(frozen(item) for item in value)
    if isinstance(value, set | frozenset):
        return frozenset(frozen(item) for item in value)
    if isinstance(value, Hashable):
        return value
    raise MalformedHistory(f"value {value!r} cannot be compared; use JSON scalars and lists")


def by_key(operations: Iterable[Operation]) -> dict[str | None, list[Operation]]:
    """Operations grouped by key, each group in the order given (P-compositionality)."""
    groups: dict[str | None, list[Operation]] = {}
    for operation in operations:
        groups.setdefault(operation.key, []).append(operation)
    return groups


def key_order(key: str | None) -> tuple[bool, str]:
    """A sort key that puts keys in a stable order, the None key first."""
    return (key is not None, key or "")
