"""The set checker: no acknowledged element lost, none invented.

The workload adds elements to a set per key (`add`, input the element, ideally each element
once) and reads the whole set (`read`, output the list of elements; None reads as empty). For
every completed read:

- nothing invented: each element read was added by an operation that did not fail and was
  invoked before (or as) the read returned; a failed add definitely did not happen;
- nothing lost: each element whose add was acknowledged before the read was invoked is there,
  and so is each element that a read completed before this one was invoked already saw.

Adds of unknown outcome (`info`) may be present or absent, but once seen they must stay. The
last read of a key is the "final read" the workload ends with; a key with adds and no completed
read cannot be judged and makes the verdict unknown.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from quorumkv.errors import MalformedHistory
from quorumkv.history.operation import History, Operation, by_key, frozen, key_order
from quorumkv.history.verdict import Verdict, combined, quoted


def check_set_history(history: History) -> Verdict:
    """Whether every key of `history`, taken as a grow-only set, lost or invented nothing.

    Raises MalformedHistory for functions other than add/read or a read that is not a list.
    """
    groups = by_key(history.operations())
    verdicts = [check_set_key(groups[key], key) for key in sorted(groups, key=key_order)]
    return combined(verdicts, f"set valid: {len(groups)} keys, {len(history)} events")


def check_set_key(operations: Sequence[Operation], key: str | None = None) -> Verdict:
    """The set verdict for the operations of one key."""
    adds = [(add, frozen(add.input)) for add in operations if _function(add) == "add"]
    reads = sorted(
        (read for read in operations if read.function == "read" and read.status == "ok"),
        key=lambda read: read.call,
    )
    if not reads:
        if adds:
            return Verdict(None, key, f"key {key!r}: {len(adds)} adds but no completed read")
        return Verdict(True, key, f"key {key!r}: no operations to check")
    first_call: dict[Hashable, int] = {}
    for add, element in adds:
        if add.status != "fail":
            first_call[element] = min(add.call, first_call.get(element, add.call))
    acknowledged = sorted(
        ((add, element) for add, element in adds if add.status == "ok"),
        key=lambda pair: pair[0].return_time(),
    )
    seen = _Seen(reads)
    for read in reads:
        elements = seen.contents[id(read)]
        returned = read.return_time()
        invented = sorted(
            (element for element in elements if first_call.get(element, returned + 1) > returned),
            key=repr,
        )
        if invented:
            return _invented(read, invented, adds, key)
        missing = [
            add
            for add, element in acknowledged
            if add.return_time() < read.call and element not in elements
        ]
        if missing:
            return _lost_acknowledged(read, missing, key)
        gone = seen.before(read.call) - elements
        if gone:
            return _lost_seen(read, sorted(gone, key=repr), seen, key)
    return Verdict(True, key, f"key {key!r}: {len(adds)} adds, {len(reads)} reads consistent")


class _Seen:
    """The elements reads saw, and their union over the reads completed before a time."""

    def __init__(self, reads: Sequence[Operation]) -> None:
        self.contents = {id(read): _elements(read) for read in reads}
        self._by_return = sorted(reads, key=Operation.return_time)
        self._included = 0
        self._union: set[Hashable] = set()

    def before(self, time: int) -> set[Hashable]:
        """Elements seen by reads that returned before `time` (times asked never decrease)."""
        while (
            self._included < len(self._by_return)
            and self._by_return[self._included].return_time() < time
        ):
            self._union |= self.contents[id(self._by_return[self._included])]
            self._included += 1
        return self._union

    def first_seen(self, element: Hashable) -> Operation:
        """The earliest-returning read that saw `element`."""
        return next(read for read in self._by_return if element in self.contents[id(read)])


def _function(operation: Operation) -> str:
    if operation.function not in ("add", "read"):
        raise MalformedHistory(f"{operation.describe()}: the set model knows add and read only")
    return operation.function


def _elements(read: Operation) -> frozenset[Hashable]:
    if read.output is None:
        return frozenset()
    if not isinstance(read.output, list | tuple | set | frozenset):
        raise MalformedHistory(f"{read.describe()}: a set read returns a list of elements")
    return frozenset(frozen(element) for element in read.output)


def _invented(
    read: Operation,
    invented: list[Hashable],
    adds: Sequence[tuple[Operation, Hashable]],
    key: str | None,
) -> Verdict:
    """`read` holds elements that no add invoked before it returned, and not failed, explains."""
    sources = [add for add, element in adds if element in set(invented)]
    how = "their adds failed or started after it returned" if sources else "nobody added them"
    return Verdict(
        False,
        key,
        f"key {key!r}: {read.describe()} holds elements {invented[:8]!r} that no add could "
        f"have put there: {how}",
        quoted(sources, first=[read]),
    )


def _lost_acknowledged(read: Operation, missing: list[Operation], key: str | None) -> Verdict:
    """`read` lacks elements whose adds were acknowledged before it was invoked."""
    return Verdict(
        False,
        key,
        f"key {key!r}: {read.describe()} lacks {len(missing)} acknowledged elements "
        f"{[add.input for add in missing[:8]]!r}; the first was added by {missing[0].describe()}",
        quoted(missing, first=[read]),
    )


def _lost_seen(read: Operation, gone: list[Hashable], seen: _Seen, key: str | None) -> Verdict:
    """`read` lacks elements that a read completed before it was invoked had seen."""
    earlier = seen.first_seen(gone[0])
    return Verdict(
        False,
        key,
        f"key {key!r}: {read.describe()} lacks elements {gone[:8]!r} that earlier reads had "
        f"seen, first {earlier.describe()}",
        quoted([earlier], first=[read]),
    )
