"""Histories as JSON lines: one event per line, the format files and harnesses exchange.

Each line is an object with the fields of `Event`: `{"type": "invoke", "process": 1,
"function": "write", "key": "x", "value": 3, "time": 120}`. Reading and writing files is the
caller's business (this package does no I/O); these functions only convert text.
"""

from __future__ import annotations

import json

from quorumkv.errors import MalformedHistory
from quorumkv.history.operation import Event, History, OpType

_FIELDS = ("type", "process", "function", "key", "value", "time")


def to_json_lines(history: History) -> str:
    """The history as text, one JSON object per event, each line ending with a newline.

    Raises MalformedHistory if a value cannot be written as JSON.
    """
    lines = []
    for position, event in enumerate(history):
        record = {
            "type": event.type.value,
            "process": event.process,
            "function": event.function,
            "key": event.key,
            "value": event.value,
            "time": event.time,
        }
        try:
            lines.append(json.dumps(record, separators=(",", ":")) + "\n")
        except (TypeError, ValueError) as error:
            raise MalformedHistory(f"event {position}: value is not JSON: {error}") from error
    return "".join(lines)


def from_json_lines(text: str) -> History:
    """The history written by `to_json_lines` (blank lines are skipped).

    Raises MalformedHistory, naming the line, for text that is not one event per line.
    """
    history = History()
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            history.append(_event(number, line))
    return history


def _event(number: int, line: str) -> Event:
    """The event one line holds."""
    try:
        record = json.loads(line)
    except ValueError as error:
        raise MalformedHistory(f"line {number}: not JSON: {error}") from error
    if not isinstance(record, dict) or set(record) != set(_FIELDS):
        raise MalformedHistory(f"line {number}: expected an object with fields {_FIELDS}")
    try:
        kind = OpType(record["type"])
    except ValueError as error:
        raise MalformedHistory(f"line {number}: unknown event type {record['type']!r}") from error
    process, function, key, time = (record[name] for name in ("process", "function", "key", "time"))
    if not _is_integer(process) or not _is_integer(time):
        raise MalformedHistory(f"line {number}: process and time must be integers")
    if not isinstance(function, str) or not (key is None or isinstance(key, str)):
        raise MalformedHistory(f"line {number}: function must be a string, key a string or null")
    return Event(kind, process, function, key, record["value"], time)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
