"""The counter checker: every read lies between what must and what may have been counted.

The workload increments a counter per key (`incr`, input the amount, None meaning 1) and reads
it (`read`, output an integer; None reads as 0, the key being absent). For a completed read:

- an increment acknowledged before the read was invoked certainly counts;
- an increment that did not fail and was invoked before the read returned (or as it returned:
  operations that touch count as concurrent) may count;
- nothing else can count.

So the read must lie between the certain sum plus every possible negative amount and the certain
sum plus every possible positive amount. The last read is the final value the workload ends
with; a key with increments and no completed read cannot be judged and makes the verdict unknown.
Sums over time windows come from prefix sums and binary search, so long histories stay cheap.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from quorumkv.errors import MalformedHistory
from quorumkv.history.operation import History, Operation, by_key, key_order
from quorumkv.history.verdict import Verdict, combined, quoted


def check_counter_history(history: History) -> Verdict:
    """Whether every read of every key of `history` is within the counter's possible bounds.

    Raises MalformedHistory for functions other than incr/read, or amounts and reads that
    are not integers.
    """
    groups = by_key(history.operations())
    verdicts = [check_counter_key(groups[key], key) for key in sorted(groups, key=key_order)]
    return combined(verdicts, f"counter valid: {len(groups)} keys, {len(history)} events")


def check_counter_key(operations: Sequence[Operation], key: str | None = None) -> Verdict:
    """The counter verdict for the operations of one key."""
    increments = [
        operation
        for operation in operations
        if _function(operation) == "incr" and operation.status != "fail"
    ]
    reads = [read for read in operations if read.function == "read" and read.status == "ok"]
    certain = _Sums([add for add in increments if add.status == "ok"], by_return=True)
    possible = _Sums(increments, by_return=False)
    if not reads:
        if increments:
            return Verdict(None, key, f"key {key!r}: {len(increments)} increments, no read")
        return Verdict(True, key, f"key {key!r}: no operations to check")
    for read in sorted(reads, key=lambda read: read.call):
        value = _read_value(read)
        low, high = _bounds(read, certain, possible)
        if not low <= value <= high:
            return _out_of_bounds(read, value, low, high, increments, key)
    return Verdict(
        True, key, f"key {key!r}: {len(reads)} reads within bounds of {len(increments)} increments"
    )


class _Sums:
    """Prefix sums of increment amounts in time order (of return, or of call)."""

    __slots__ = ("times", "total", "negative", "positive")

    def __init__(self, increments: Sequence[Operation], by_return: bool) -> None:
        ordered = sorted(
            (add.return_time() if by_return else add.call, _amount(add)) for add in increments
        )
        self.times = [time for time, _ in ordered]
        amounts = [amount for _, amount in ordered]
        self.total = [0, *itertools.accumulate(amounts)]
        self.negative = [0, *itertools.accumulate(min(0, amount) for amount in amounts)]
        self.positive = [0, *itertools.accumulate(max(0, amount) for amount in amounts)]

    def before(self, time: int) -> int:
        """How many increments have their time strictly before `time`."""
        return bisect.bisect_left(self.times, time)

    def until(self, time: int) -> int:
        """How many increments have their time at or before `time`."""
        return bisect.bisect_right(self.times, time)


def _bounds(read: Operation, certain: _Sums, possible: _Sums) -> tuple[int, int]:
    """The least and greatest value `read` may return."""
    done = certain.before(read.call)
    maybe = possible.until(read.return_time())
    # Certain increments are among the possible ones (acknowledged before the read began,
    # so invoked before it returned): count them once, at their exact amount.
    low = certain.total[done] + possible.negative[maybe] - certain.negative[done]
    high = certain.total[done] + possible.positive[maybe] - certain.positive[done]
    return low, high


def _out_of_bounds(
    read: Operation,
    value: int,
    low: int,
    high: int,
    increments: Sequence[Operation],
    key: str | None,
) -> Verdict:
    """The verdict for a read outside [low, high], quoting the increments running beside it."""
    side = f"above the most, {high}," if value > high else f"below the least, {low},"
    beside = [
        add
        for add in increments
        if add.call <= read.return_time() and (add.ret is None or add.ret >= read.call)
    ]
    return Verdict(
        False,
        key,
        f"key {key!r}: {read.describe()} is {side} that the increments acknowledged before "
        f"it began and those invoked before it returned allow",
        quoted(beside, first=[read]),
    )


def _function(operation: Operation) -> str:
    if operation.function not in ("incr", "read"):
        raise MalformedHistory(
            f"{operation.describe()}: the counter model knows incr and read only"
        )
    return operation.function


def _amount(increment: Operation) -> int:
    if increment.input is None:
        return 1
    if not isinstance(increment.input, int) or isinstance(increment.input, bool):
        raise MalformedHistory(f"{increment.describe()}: an increment amount is an integer")
    return increment.input


def _read_value(read: Operation) -> int:
    if read.output is None:
        return 0
    if not isinstance(read.output, int) or isinstance(read.output, bool):
        raise MalformedHistory(f"{read.describe()}: a counter read returns an integer")
    return read.output
