"""SCAN across shards: a cursor naming the shard returns every key exactly once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.cluster import routing
from quorumkv.cluster.metadata import ClusterMetadata, make_shard
from quorumkv.cluster.scan_cursor import (
    ScanStep,
    decode_cursor,
    encode_cursor,
    finish_scan,
    plan_scan,
)
from quorumkv.cluster.slot_ranges import SlotRange, subtract
from quorumkv.kv.reply import INVALID_CURSOR, ErrorReply, Reply

from .cluster_harness import Cluster

CLUSTER = routing.ConnectionMode(cluster_aware=True)


def scan_all(cluster: Cluster, node: int, mode: routing.ConnectionMode,
             *options: str) -> tuple[list[bytes], list[int]]:
    """Every key a full SCAN iteration returns, and the cursors it went through."""
    cursor, keys, cursors = b"0", [], []
    for _ in range(10_000):
        reply = cluster.run(node, mode, "SCAN", cursor, *options)
        assert isinstance(reply, list), reply
        cursor, batch = reply
        assert isinstance(cursor, bytes) and isinstance(batch, list)
        keys.extend(batch)  # type: ignore[arg-type]
        cursors.append(int(cursor))
        if cursor == b"0":
            return keys, cursors
    raise AssertionError("SCAN did not finish")


def fill(cluster: Cluster, count: int) -> set[bytes]:
    for index in range(count):
        cluster.plain("SET", f"key:{index}", "v")
    return {f"key:{index}".encode() for index in range(count)}


@given(st.integers(1, 40), st.integers(1, 9), st.integers(0, 120))
@settings(max_examples=30, deadline=None)
def test_plain_scan_returns_every_key_once(count: int, shards: int, keys: int) -> None:
    """A plain client's SCAN over any number of shards returns each key exactly once, with
    cursors below 2**63."""
    cluster = Cluster(nodes=3, shards=shards)
    expected = fill(cluster, keys)
    found, cursors = scan_all(cluster, 2, routing.PLAIN, "COUNT", str(count))
    assert sorted(found) == sorted(expected)
    assert all(0 <= cursor < 1 << 63 for cursor in cursors)


def test_cluster_scan_covers_this_nodes_shards() -> None:
    """A cluster client's SCAN on each node returns the keys of the shards it leads; the
    nodes together return every key once (what redis-py's scan_iter relies on)."""
    cluster = Cluster(nodes=3, shards=6)
    expected = fill(cluster, 300)
    per_node = [scan_all(cluster, node, CLUSTER, "COUNT", "7")[0] for node in (1, 2, 3)]
    assert all(per_node)
    assert sorted(k for keys in per_node for k in keys) == sorted(expected)


def test_scan_match_with_a_hash_tag_stays_on_one_shard() -> None:
    """SCAN MATCH {tag}* walks only the shard owning the tag's slot."""
    cluster = Cluster(nodes=3, shards=6)
    fill(cluster, 50)
    for index in range(20):
        cluster.plain("SET", f"{{user7}}:{index}", "v")
    decision = cluster.decide(1, routing.PLAIN, "SCAN", "0", "MATCH", "{user7}:*")
    assert isinstance(decision, ScanStep) and len(decision.order) == 1
    found, _ = scan_all(cluster, 1, routing.PLAIN, "MATCH", "{user7}:*", "COUNT", "3")
    assert sorted(found) == sorted(f"{{user7}}:{i}".encode() for i in range(20))


def test_scan_over_interleaved_slot_ranges() -> None:
    """Shards whose slot ranges interleave (after slots moved) are still scanned exactly
    once each: the cursor names the shard, not only the position."""
    cluster = Cluster(nodes=3, shards=3)
    shards = dict(cluster.metadata.shards)
    first, third = shards[1], shards[3]
    moved = (SlotRange(third.slot_ranges[0].start, third.slot_ranges[0].start + 2000),)
    shards[1] = make_shard(1, first.slot_ranges + moved, first.replicas, 2, first.preferred_leader)
    shards[3] = make_shard(3, subtract(third.slot_ranges, moved), third.replicas, 2,
                           third.preferred_leader)
    cluster.metadata = ClusterMetadata("c", 2, cluster.metadata.members, shards)
    expected = fill(cluster, 400)
    found, _ = scan_all(cluster, 1, routing.PLAIN, "COUNT", "9")
    assert sorted(found) == sorted(expected)


def test_cursor_encoding() -> None:
    """A cursor holds the shard id above the shard's own 46-bit cursor; 0 is the start."""
    assert decode_cursor(0) == (0, 0)
    assert decode_cursor(encode_cursor(5, (1 << 46) - 1)) == (5, (1 << 46) - 1)
    assert encode_cursor((1 << 17) - 1, (1 << 46) - 1) < 1 << 63


def test_plan_and_finish() -> None:
    """Cursors of vanished shards continue at the next shard; errors pass through."""
    assert plan_scan(0, [3, 1], (b"0",)) == ScanStep(1, (b"0",), (1, 3))
    assert plan_scan(encode_cursor(2, 77), [1, 3], (b"x", b"COUNT", b"5")) == ScanStep(
        3, (b"0", b"COUNT", b"5"), (1, 3))
    assert plan_scan(encode_cursor(3, 77), [1, 3], (b"x",)) == ScanStep(3, (b"77",), (1, 3))
    assert plan_scan(encode_cursor(4, 1), [1, 3], (b"x",)) is None
    step = ScanStep(1, (b"0",), (1, 3))
    assert finish_scan(step, [b"12", [b"a"]]) == [b"%d" % encode_cursor(1, 12), [b"a"]]
    assert finish_scan(step, [b"0", []]) == [b"%d" % encode_cursor(3, 0), []]
    assert finish_scan(ScanStep(3, (b"0",), (1, 3)), [b"0", [b"z"]]) == [b"0", [b"z"]]
    error = ErrorReply(b"ERR syntax error")
    assert finish_scan(step, error) is error
    malformed: Reply = [b"x"]
    assert isinstance(finish_scan(step, malformed), ErrorReply)


def test_invalid_cursor_is_refused() -> None:
    """A cursor that is not an unsigned 64-bit number gets Redis's error."""
    cluster = Cluster(nodes=3, shards=3)
    assert cluster.plain("SCAN", "-1") == INVALID_CURSOR
    assert cluster.plain("SCAN", "abc") == INVALID_CURSOR
    assert cluster.plain("SCAN", "0", "COUNT") == ErrorReply(b"ERR syntax error")
