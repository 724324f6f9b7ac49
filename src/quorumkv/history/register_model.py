"""The register model: the sequential specification of one key read, written and cas'ed.

State is the key's value (None: absent), initially None. A `read` is legal when its output
equals the state; a `write` sets it; a `cas [expected, new]` that answered True is legal when
the state equals `expected` and then sets `new`, one that answered False is legal when the state
differs from `expected` and leaves it unchanged. Both cas outcomes are observations to check.

Operations whose outcome is unknown (`info`) may take effect at any point after their call or
never. A read changes nothing either way, so `prepare` drops info reads (and fails, which never
happened), while an info write or cas is kept: applied when linearized, or left out of the
linearization (or linearized as a no-op, which is the same). `with_info_deadlines` bounds how
late an info write may take effect, which keeps the search small.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import replace
from typing import cast

from quorumkv.errors import MalformedHistory
from quorumkv.history.operation import Operation, frozen


class RegisterModel:
    """Read, write and compare-and-set on one key; see the module docstring."""

    name = "register"

    def initial_state(self) -> Hashable:
        """A key starts absent."""
        return None

    def prepare(self, operation: Operation) -> Operation | None:
        """The operation with comparable (frozen) values, or None when it can be left out.

        Raises MalformedHistory for a function other than read/write/cas, a cas input that is
        not [expected, new], or a completed cas whose output is not a boolean.
        """
        if operation.status == "fail":
            return None
        if operation.function == "read":
            if operation.status == "info":
                return None
            return replace(operation, input=None, output=frozen(operation.output))
        if operation.function == "write":
            return replace(operation, input=frozen(operation.input), output=None)
        if operation.function == "cas":
            return _prepared_cas(operation)
        raise MalformedHistory(
            f"{operation.describe()}: the register model knows read, write and cas only"
        )

    def step(self, state: Hashable, operation: Operation) -> tuple[bool, Hashable]:
        """Whether `operation` may take effect in `state`, and the state after it."""
        if operation.function == "read":
            return operation.output == state, state
        if operation.function == "write":
            return True, operation.input
        expected, new = cast(tuple[Hashable, Hashable], operation.input)  # made by prepare
        if operation.status == "info":
            return True, new if state == expected else state
        if operation.output:
            return state == expected, new
        return state != expected, state

    def bounded(self, operations: list[Operation]) -> list[Operation]:
        """Prepared operations with info writes given deadlines (see with_info_deadlines)."""
        return with_info_deadlines(operations)

    def justifies(
        self, prior: Hashable, state: Hashable, operation: Operation, after: Hashable
    ) -> bool | None:
        """Whether `operation`, taking `state` to `after`, needs the info operation that just
        took the register from `prior` to `state`.

        True: it observes the new value (a read, a successful cas, an info cas that applies,
        a cas that failed because the register no longer held `prior`). False: it tells
        nothing either way (a failed cas expecting a third value, an info operation without
        effect); look at the next one. None: it overwrites the value unobserved (a write).
        """
        if operation.function == "read":
            return True
        if operation.function == "write":
            return None if after != state or operation.status != "info" else False
        if operation.status == "info":
            return after != state
        if operation.output:
            return True
        return _cas_values(operation)[0] == prior

    def justifiers(
        self, operations: Sequence[Operation]
    ) -> Callable[[Hashable, Hashable], Iterable[int]]:
        """A function of (prior, state) listing the positions in `operations` of those that
        could justify an info operation taking the register from `prior` to `state`: reads
        returning `state`, cas expecting it, and failed cas expecting `prior`."""
        observing: dict[Hashable, list[int]] = {}
        refusing: dict[Hashable, list[int]] = {}
        for position, operation in enumerate(operations):
            if operation.function == "read":
                observing.setdefault(operation.output, []).append(position)
            elif operation.function == "cas":
                expected = _cas_values(operation)[0]
                failed = operation.status == "ok" and operation.output is False
                (refusing if failed else observing).setdefault(expected, []).append(position)
        empty: list[int] = []

        def justifiers(prior: Hashable, state: Hashable) -> Iterable[int]:
            return itertools.chain(observing.get(state, empty), refusing.get(prior, empty))

        return justifiers

    def explain(self, state: Hashable, operation: Operation) -> str:
        """Why `operation` cannot take effect in `state`, as a sentence fragment."""
        if operation.function == "read":
            return f"it read {operation.output!r} but the register holds {state!r}"
        if operation.function == "cas" and operation.status == "ok":
            expected, _ = _cas_values(operation)
            if operation.output:
                return f"it succeeded, so the register held {expected!r}, but it holds {state!r}"
            return f"it failed, so the register did not hold {expected!r}, but it does"
        return "it must take effect before it returned, and no placement allows that"


def _prepared_cas(operation: Operation) -> Operation:
    """A cas with frozen [expected, new] and, when ok, a boolean output."""
    values = operation.input
    if not isinstance(values, list | tuple) or len(values) != 2:
        raise MalformedHistory(f"{operation.describe()}: a cas input is [expected, new]")
    if operation.status == "ok" and not isinstance(operation.output, bool):
        raise MalformedHistory(f"{operation.describe()}: a completed cas answers true or false")
    output = operation.output if operation.status == "ok" else None
    return replace(operation, input=frozen(values), output=output)


def _cas_values(operation: Operation) -> tuple[Hashable, Hashable]:
    return cast(tuple[Hashable, Hashable], operation.input)  # checked by _prepared_cas


def with_info_deadlines(operations: Sequence[Operation]) -> list[Operation]:
    """`operations` (prepared) with each info write or cas bounded by a deadline, or dropped.

    Say such an operation writes value v, and D is the last return of an operation observing
    v (a read returning it, a cas expecting it). Had it taken effect after D, it would have left
    a value that nothing after it observes: every definite operation placed after it up to the
    next change of value would be a write. So taking effect after D is the same as never taking
    effect, and the search may demand that it take effect by D or not at all: its return
    becomes D, and the search may linearize it as a no-op (see linearizability.py). With no
    observer at all (or none returning after its call) it is dropped. A cas that answered False
    observes "anything but `expected`", which v would satisfy, so when one is present no
    deadline is set. An info cas expecting v has no return: it leaves the deadline unbounded.

    This shrinks the search a lot when many writes time out, as they do under partitions:
    without it, an info operation stays pending to the end and doubles the configurations
    explored at every later point.
    """
    deadline: dict[Hashable, int | None] = {}
    for operation in operations:
        if operation.function == "read":
            observed = operation.output  # frozen by prepare
        elif operation.function == "cas":
            if operation.status == "ok" and operation.output is False:
                return list(operations)
            observed = _cas_values(operation)[0]
        else:
            continue
        deadline[observed] = _later(deadline.get(observed, -1), operation.ret)
    bounded = []
    for operation in operations:
        if operation.status == "info":
            last = deadline.get(_written_value(operation), -1)
            if last is not None and last < operation.call:
                continue
            operation = replace(operation, ret=last)
        bounded.append(operation)
    return bounded


def _later(time: int | None, other: int | None) -> int | None:
    """The later of two return times, None standing for +infinity."""
    if time is None or other is None:
        return None
    return max(time, other)


def _written_value(operation: Operation) -> Hashable:
    if operation.function == "cas":
        return _cas_values(operation)[1]
    return operation.input  # frozen by prepare
