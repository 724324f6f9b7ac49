"""Events pair into operations; malformed histories are refused; JSON lines round-trip."""

from __future__ import annotations

import pytest
from history_builders import cas, history, read, write

from quorumkv.errors import MalformedHistory
from quorumkv.history import Event, History, OpType, from_json_lines, to_json_lines
from quorumkv.history.operation import frozen


def test_invocations_pair_with_completions_per_process() -> None:
    """Each invocation pairs with its own process's next completion, whatever interleaves."""
    operations = history(
        write(1, 5, call=0, ret=4), read(2, None, call=1, ret=2), cas(3, 5, 6, True, call=3, ret=9)
    ).operations()
    assert [(op.process, op.function, op.status, op.call, op.ret) for op in operations] == [
        (1, "write", "ok", 0, 4),
        (2, "read", "ok", 1, 2),
        (3, "cas", "ok", 3, 9),
    ]
    assert operations[2].input == [5, 6] and operations[2].output is True


def test_info_and_unfinished_operations_never_return() -> None:
    """An info completion and a missing completion both give status info and ret None."""
    operations = history(
        write(1, 1, call=0, ret=3, status="info"), write(2, 2, call=1, ret=None, status="info")
    ).operations()
    assert [(op.status, op.ret) for op in operations] == [("info", None), ("info", None)]
    assert not operations[0].definite


def test_failed_operation_keeps_its_return_time() -> None:
    """A fail completion is definite: status fail, ret set."""
    [operation] = history(write(1, 1, call=0, ret=3, status="fail")).operations()
    assert (operation.status, operation.ret, operation.definite) == ("fail", 3, True)


@pytest.mark.parametrize(
    "events",
    [
        [Event(OpType.INVOKE, 1, "read", "x", None, 0), Event(OpType.INVOKE, 1, "read", "x", None, 1)],
        [Event(OpType.OK, 1, "read", "x", 3, 0)],
        [Event(OpType.INVOKE, 1, "read", "x", None, 0), Event(OpType.OK, 1, "write", "x", 3, 1)],
        [Event(OpType.INVOKE, 1, "read", "x", None, 0), Event(OpType.OK, 1, "read", "y", 3, 1)],
        [Event(OpType.INVOKE, 1, "read", "x", None, 5), Event(OpType.OK, 1, "read", "x", 3, 4)],
    ],
    ids=["double-invoke", "orphan-completion", "other-function", "other-key", "time-backwards"],
)
def test_malformed_histories_are_refused(events: list[Event]) -> None:
    """Double invocations, orphan or mismatched completions and time going back raise."""
    with pytest.raises(MalformedHistory):
        History(events).operations()


def test_json_lines_round_trip() -> None:
    """to_json_lines then from_json_lines gives back the same events, one per line."""
    original = history(
        write(1, "a", call=0, ret=2), cas(2, "a", ["b", 1], False, call=1, ret=3),
        read(3, None, call=4, ret=None, status="info", key=None),
    )
    text = to_json_lines(original)
    assert text.count("\n") == len(original) == 5
    assert from_json_lines(text).events == original.events


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[1, 2]",
        '{"type": "invoke", "process": 1, "function": "read", "key": "x", "value": null}',
        '{"type": "begin", "process": 1, "function": "read", "key": "x", "value": null, "time": 0}',
        '{"type": "ok", "process": "1", "function": "read", "key": "x", "value": null, "time": 0}',
        '{"type": "ok", "process": 1, "function": "read", "key": 7, "value": null, "time": 0}',
    ],
)
def test_json_lines_refuse_malformed_lines(line: str) -> None:
    """A line that is not one well-typed event raises MalformedHistory naming the line."""
    with pytest.raises(MalformedHistory, match="line 2"):
        from_json_lines("\n" + line + "\n")


def test_unserializable_value_is_refused() -> None:
    """An event whose value JSON cannot hold raises MalformedHistory on writing."""
    with pytest.raises(MalformedHistory):
        to_json_lines(History([Event(OpType.INVOKE, 1, "write", "x", object(), 0)]))


def test_frozen_values_compare_like_their_json() -> None:
    """Lists become tuples (hashable, equal when the JSON is equal); dicts are refused."""
    assert frozen([1, [2, "a"]]) == (1, (2, "a"))
    assert hash(frozen([1, [2]])) == hash((1, (2,)))
    with pytest.raises(MalformedHistory):
        frozen({"a": 1})
