"""Checking runs in a child process under a time limit; past it, the verdict is unknown."""

from __future__ import annotations

from pathlib import Path

from quorumkv.history import Event, History, OpType, to_json_lines
from quorumkv.verify.checking import check_history


def write_history(path: Path, read_value: str) -> Path:
    """One write of 'a', then a read returning `read_value`."""
    history = History([
        Event(OpType.INVOKE, 0, "write", "k", "a", 1), Event(OpType.OK, 0, "write", "k", "a", 2),
        Event(OpType.INVOKE, 1, "read", "k", None, 3), Event(OpType.OK, 1, "read", "k", read_value, 4),
    ])
    path.write_text(to_json_lines(history))
    return path


def test_checker_verdicts_come_back_from_the_child(tmp_path: Path) -> None:
    """A valid history is valid; a stale read is invalid, with its counterexample quoted."""
    valid = check_history("linearizability", write_history(tmp_path / "ok.jsonl", "a"), 60)
    assert valid["valid"] is True
    stale = check_history("linearizability", write_history(tmp_path / "bad.jsonl", "b"), 60)
    assert stale["valid"] is False and stale["counterexample"]


def test_time_limit_gives_unknown(tmp_path: Path) -> None:
    """A checker that does not answer within its time limit yields unknown, saying why."""
    verdict = check_history("linearizability", write_history(tmp_path / "h.jsonl", "a"), 0.0)
    assert verdict["valid"] is None and "time limit" in verdict["message"]


def test_malformed_history_gives_unknown(tmp_path: Path) -> None:
    """A history the checker cannot read is unknown, never valid."""
    path = tmp_path / "broken.jsonl"
    path.write_text("not json\n")
    verdict = check_history("set", path, 60)
    assert verdict["valid"] is None and "could not run" in verdict["message"]
