"""Real processes, real faults: acknowledged writes survive a killed leader, restarts lose nothing."""

from __future__ import annotations

import signal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from quorumkv.server.local_cluster import LocalCluster, info_fields, shard_status, wait_until


def connect(cluster: LocalCluster, node_id: int) -> redis.Redis:
    return redis.Redis(port=cluster.client_ports[node_id], protocol=2, socket_timeout=10,
                       retry=Retry(NoBackoff(), 0))


class Writer:
    """Writes unique keys through given nodes and records what the cluster acknowledged.

    An OK is acknowledged; -TRYAGAIN (definitely not applied) is retried; -UNKNOWN or a
    broken connection leaves the write in doubt (it may or may not be there later)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.acknowledged: dict[str, str] = {}
        self.in_doubt: dict[str, str] = {}
        self.clients: dict[int, redis.Redis] = {}
        self.next = 0

    def write(self, node_id: int) -> None:
        client = self.clients.setdefault(node_id, connect(self.cluster, node_id))
        key, value = f"key:{self.next}", f"value:{self.next}"
        self.next += 1
        for _ in range(100):
            try:
                if client.set(key, value):
                    self.acknowledged[key] = value
                return
            except redis.ResponseError as error:
                if str(error).startswith("TRYAGAIN"):
                    continue
                assert str(error).startswith("UNKNOWN"), error
                self.in_doubt[key] = value
                return
            except (redis.ConnectionError, redis.TimeoutError):
                self.in_doubt[key] = value
                self.clients.pop(node_id).close()
                return
        raise AssertionError(f"{key}: -TRYAGAIN for too long")

    def check(self, node_id: int) -> None:
        """Every acknowledged write reads back; writes in doubt are there or absent, never
        something else."""
        client = connect(self.cluster, node_id)
        keys = list(self.acknowledged) + list(self.in_doubt)
        values = client.mget(keys)
        for key, value in zip(keys, values, strict=True):
            if key in self.acknowledged:
                assert value == self.acknowledged[key].encode(), f"acknowledged {key} lost"
            else:
                assert value in (None, self.in_doubt[key].encode())
        client.close()


def test_killing_the_leader_loses_no_acknowledged_write(fresh_cluster: LocalCluster) -> None:
    """SIGKILL the leader mid-stream; writes continue through the others; all acked survive."""
    cluster = fresh_cluster
    writer = Writer(cluster)
    leader = cluster.wait_for_leader()
    for round_number in range(60):
        writer.write(cluster.node_ids[round_number % 3])
    cluster.kill(leader, signal.SIGKILL)
    survivors = [n for n in cluster.node_ids if n != leader]
    for round_number in range(120):
        writer.write(survivors[round_number % 2])
    new_leader = cluster.wait_for_leader()
    assert new_leader in survivors
    assert len(writer.acknowledged) >= 100
    for node_id in survivors:
        writer.check(node_id)


def test_a_restarted_node_catches_up_by_snapshot(fresh_cluster: LocalCluster) -> None:
    """A follower down while the log is compacted past it catches up (snapshot) on restart,
    and then can stand in for the other follower in the quorum."""
    cluster = fresh_cluster
    leader = cluster.wait_for_leader()
    lagging, other = [n for n in cluster.node_ids if n != leader]
    lagging_applied = cluster.applied_index(lagging)
    cluster.kill(lagging)
    client = connect(cluster, leader)
    pipeline = client.pipeline(transaction=False)
    for index in range(11_000):  # > log_compaction_entries_min: the leader compacts
        pipeline.set(f"bulk:{index}", index)
        if index % 1000 == 999:
            assert all(pipeline.execute())
    # INFO reports the store figures of the last cycle-free moment: wait for a fresh one.
    leader_status = wait_until(
        lambda: (status := shard_status(info_fields(cluster.client_ports[leader]), 1))
        and int(status["log_first_index"]) > lagging_applied + 1 and status, 30,
        "the leader to compact its log past the lagging follower")  # entries are gone
    cluster.start_node(lagging, bootstrap_flags=False)
    commit = int(leader_status["commit"])
    wait_until(lambda: cluster.applied_index(lagging) >= commit, 60,
               f"node {lagging} to apply up to {commit}")
    stats = info_fields(cluster.client_ports[lagging], b"stats")
    assert int(stats["quorumkv_snapshots_received"]) >= 1
    assert int(stats["quorumkv_snapshot_bytes_received"]) > 11_000 * len(b"bulk:10999")
    cluster.kill(other)  # the restarted node is now needed for every commit
    assert client.set("after", "catch-up") is True
    assert client.get("bulk:10999") == b"10999"
    client.close()


def test_stopping_every_node_and_restarting_keeps_all_data(fresh_cluster: LocalCluster) -> None:
    """Graceful stop of all nodes exits 0; a restart with only --data-dir serves all the data."""
    cluster = fresh_cluster
    writer = Writer(cluster)
    for index in range(90):
        writer.write(cluster.node_ids[index % 3])
    client = connect(cluster, cluster.node_ids[0])
    client.set("ttl-key", "v", ex=3600)
    client.close()
    assert not writer.in_doubt
    for node_id in cluster.node_ids:
        assert cluster.stop(node_id) == 0, cluster.log(node_id)[-3000:]
    for node_id in cluster.node_ids:
        cluster.start_node(node_id, wait=False, bootstrap_flags=False)
    for node_id in cluster.node_ids:
        cluster.wait_listening(node_id)
    cluster.wait_for_leader()
    for node_id in cluster.node_ids:
        writer.check(node_id)
    client = connect(cluster, cluster.node_ids[1])
    assert 3000 < client.ttl("ttl-key") <= 3600
    client.close()


def test_a_stopped_leader_hands_over_and_writes_go_on(fresh_cluster: LocalCluster) -> None:
    """SIGTERM on the leader: leadership moves to another node, the leader exits 0, and the
    cluster keeps accepting writes."""
    cluster = fresh_cluster
    leader = cluster.wait_for_leader()
    survivor = next(n for n in cluster.node_ids if n != leader)
    client = connect(cluster, survivor)
    assert client.set("before", "1")
    assert cluster.stop(leader) == 0
    assert "handing leadership of shard 1" in cluster.log(leader)
    assert client.set("after", "2")
    assert cluster.wait_for_leader() != leader
    assert client.get("before") == b"1"
    client.close()
