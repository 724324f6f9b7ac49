"""Requests in flight to a leader that went away are settled at once (issue 11, item 3).

The leader of the only data shard is paused with SIGSTOP: its TCP connections stay open (the
kernel still acknowledges), so nothing but the election tells the other nodes it is gone. The
nodes run with a request timeout of an hour: a command that waited for it would hit the
client's socket timeout (a bound on the test, not a measurement) and fail the test.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from quorumkv.server.local_cluster import (
    LocalCluster,
    info_fields,
    pipeline_replies,
    shard_status,
    wait_until,
)

from .resp_client import RawClient

HOUR_MS = 3_600_000


@pytest.fixture
def slow_timeout_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path / "cluster", nodes=3,
                         server_args=["--shards", "1", "--request-timeout-ms", str(HOUR_MS)])
    try:
        local.start()
        local.wait_for_leader()
        local.wait_for_preferred_leaders()
        yield local
    finally:
        for node_id in local.running():
            os.kill(local.pid(node_id), signal.SIGCONT)
        local.close()


def test_forwards_to_a_paused_leader_are_settled_when_a_new_leader_is_seen(
        slow_timeout_cluster: LocalCluster) -> None:
    """With the leader paused, a healthy node answers a forwarded write -UNKNOWN and retries a
    forwarded read at the new leader, without waiting for request_timeout_ms."""
    cluster = slow_timeout_cluster
    leader = cluster.wait_for_leader()
    healthy = next(n for n in cluster.node_ids if n != leader)
    port = cluster.client_ports[healthy]
    setup = RawClient(port)
    assert setup.call("SET paused:k before") == b"+OK\r\n"
    reader, writer = RawClient(port, timeout_s=300), RawClient(port, timeout_s=300)
    os.kill(cluster.pid(leader), signal.SIGSTOP)
    try:
        reader.send(b"*2\r\n$3\r\nGET\r\n$8\r\npaused:k\r\n")
        writer.send(b"*3\r\n$3\r\nSET\r\n$9\r\npaused:k2\r\n$1\r\nv\r\n")
        read_reply = reader.read_reply()[0]
        write_reply = writer.read_reply()[0]
        assert read_reply == b"$6\r\nbefore\r\n"
        assert write_reply.startswith(b"-UNKNOWN "), write_reply
        assert b"is no longer the leader" in write_reply
        # The connection keeps working at the new leader.
        assert writer.call("SET paused:k3 after") == b"+OK\r\n"
        assert writer.call("GET paused:k3") == b"$5\r\nafter\r\n"
    finally:
        os.kill(cluster.pid(leader), signal.SIGCONT)


def test_a_pipeline_keeps_its_order_across_a_leader_pause(
        slow_timeout_cluster: LocalCluster) -> None:
    """SET/GET pairs pipelined on a healthy node while the leader is paused and replaced:
    every GET after an acknowledged SET returns its value (or an error), none misses it."""
    cluster = slow_timeout_cluster
    leader = cluster.wait_for_leader()
    healthy = next(n for n in cluster.node_ids if n != leader)
    port = cluster.client_ports[healthy]
    count = 2_000
    commands: list[tuple[bytes, ...]] = []
    for i in range(count):
        commands += [(b"SET", b"pair:%d" % i, b"v%d" % i), (b"GET", b"pair:%d" % i)]
    replies: list[object] = []
    client = threading.Thread(
        target=lambda: replies.extend(pipeline_replies(port, commands, timeout_s=300)))
    client.start()
    probe = RawClient(port)
    wait_until(lambda: probe.call("EXISTS pair:20") == b":1\r\n", 60, "the pipeline to start")
    os.kill(cluster.pid(leader), signal.SIGSTOP)
    try:
        others = [n for n in cluster.node_ids if n != leader]
        wait_until(lambda: new_leader(cluster, others, leader), 60, "a new leader")
    finally:
        os.kill(cluster.pid(leader), signal.SIGCONT)
    client.join(300)
    assert len(replies) == 2 * count
    outcomes = {"ok": 0, "error": 0}
    for i in range(count):
        set_reply, get_reply = replies[2 * i], replies[2 * i + 1]
        outcomes["ok" if set_reply == b"OK" else "error"] += 1
        if set_reply == b"OK":
            assert get_reply == b"v%d" % i or isinstance(get_reply, tuple), (i, get_reply)
        else:
            assert isinstance(set_reply, tuple), (i, set_reply)
            assert set_reply[1].startswith(("UNKNOWN", "TRYAGAIN")), (i, set_reply)
    assert outcomes["ok"] > 0


def new_leader(cluster: LocalCluster, nodes: list[int], old: int) -> bool:
    """Whether `nodes` agree on a leader of shard 1 other than `old`."""
    seen = {int(shard_status(info_fields(cluster.client_ports[n]), 1).get("leader", 0))
            for n in nodes}
    return len(seen) == 1 and seen.pop() not in (0, old)
