"""Split commands: parts per shard in first-appearance order, replies gathered, errors first."""

from __future__ import annotations

from quorumkv.cluster.fan_out import Gather, Part, gather, same_command, split_keys
from quorumkv.kv.reply import OK, ErrorReply, SimpleString


def test_split_keeps_order_and_duplicates() -> None:
    """Keys are grouped per shard in the client's order, duplicates kept, positions noted."""
    parts = split_keys(b"MGET", [b"a", b"b", b"c", b"a"], [2, 1, 2, 2])
    assert parts == (Part(2, b"MGET", (b"a", b"c", b"a"), (0, 2, 3)),
                     Part(1, b"MGET", (b"b",), (1,)))
    assert gather(Gather.BY_POSITION, parts, [[b"1", None, b"1"], [b"2"]]) == [
        b"1", b"2", None, b"1"]


def test_gather_rules() -> None:
    """Sums add, lists concatenate, OKs combine, the first non-nil wins."""
    parts = same_command(b"DBSIZE", (), [1, 2, 3])
    assert gather(Gather.SUM, parts, [1, 2, 3]) == 6
    assert gather(Gather.CONCATENATE, parts, [[b"a"], [], [b"b"]]) == [b"a", b"b"]
    assert gather(Gather.ALL_OK, parts, [OK, OK, SimpleString(b"OK")]) == OK
    assert gather(Gather.FIRST_NON_NULL, parts, [None, b"k", b"j"]) == b"k"
    assert gather(Gather.SUM, (), ()) == 0
    assert gather(Gather.FIRST_NON_NULL, (), ()) is None


def test_errors_win() -> None:
    """Any part's error is the reply; malformed part replies become errors, never crashes."""
    parts = same_command(b"DEL", (b"k",), [1, 2])
    error = ErrorReply(b"TRYAGAIN shard 2: retry")
    assert gather(Gather.SUM, parts, [1, error]) is error
    assert isinstance(gather(Gather.SUM, parts, [1, b"x"]), ErrorReply)
    assert isinstance(gather(Gather.ALL_OK, parts, [OK, 1]), ErrorReply)
    split = split_keys(b"MGET", [b"a", b"b"], [1, 2])
    assert isinstance(gather(Gather.BY_POSITION, split, [[b"1"], []]), ErrorReply)
