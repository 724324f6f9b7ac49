"""Requests in flight to a leader that went away are settled at once (issue 11, item 3).

The leader of the only data shard is paused with SIGSTOP: its TCP connections stay open (the
kernel still acknowledges), so nothing but the election tells the other nodes it is gone. The
nodes run with a request timeout of an hour: a command that waited for it would hit the
client's socket timeout (a bound on the test, not a measurement) and fail the test.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from quorumkv.server.local_cluster import LocalCluster

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
