"""The register model: the sequential specification of one key read, written and cas'ed.

State is the key's value (None: absent), initially None. A `read` is legal when its output
equals the state; a `write` sets it; a `cas [expected, new]` that answered True is legal when
the state equals `expected` and then sets `new`, one that answered False is legal when the state
differs from `expected` and leaves it unchanged. Both cas outcomes are observations to check.

Operations whose outcome is unknown (`info`) may take effect at any point after their call or
never. A read or a cas with no answer changes nothing visible if it did not happen, and a read
changes nothing if it did, so `prepare` drops info reads (and fails, which never happened) while
an info write or cas is kept: applied when linearized, or left out of the linearization.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
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
        expected, new = _cas_values(operation)
        if operation.status == "info":
            return True, new if state == expected else state
        if operation.output:
            return state == expected, new
        return state != expected, state

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


def without_unobserved_writes(operations: Sequence[Operation]) -> list[Operation]:
    """`operations` (prepared) less the info writes and cas whose new value nobody observes.

    Such an operation, if it happened, left a value that no read returned and no cas expected,
    so every definite operation after it is a write: leaving it out (as if it never happened)
    keeps a linearizable history linearizable and an unlinearizable one unlinearizable. A cas
    that answered False observes "anything but `expected`", which such a value would satisfy,
    so when one is present nothing is removed. This shrinks the search a lot when many writes
    time out, as they do under partitions.
    """
    observed: set[Hashable] = set()
    for operation in operations:
        if operation.function == "read":
            observed.add(operation.output)  # frozen by prepare
        elif operation.function == "cas":
            if operation.status == "ok" and operation.output is False:
                return list(operations)
            observed.add(_cas_values(operation)[0])
    return [
        operation
        for operation in operations
        if operation.status != "info" or _written_value(operation) in observed
    ]


def _written_value(operation: Operation) -> Hashable:
    if operation.function == "cas":
        return _cas_values(operation)[1]
    return operation.input  # frozen by prepare
