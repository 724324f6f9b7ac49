"""Hashes and sets on a real 3-node cluster through redis-py: RESP3 reply types, a killed
leader loses no acknowledged member, and a follower that missed compacted entries gets every
hash and set in the snapshot it installs."""

from __future__ import annotations

import signal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from quorumkv.server.local_cluster import LocalCluster, info_fields, shard_status, wait_until


def connect(cluster: LocalCluster, node_id: int, protocol: int = 3) -> redis.Redis:
    return redis.Redis(port=cluster.client_ports[node_id], protocol=protocol, socket_timeout=10,
                       retry=Retry(NoBackoff(), 0))


def retried(call: object, *args: object) -> object:
    """A write retried while the cluster answers -TRYAGAIN (no leader yet: nothing applied)."""
    for _ in range(200):
        try:
            return call(*args)  # type: ignore[operator]
        except redis.ResponseError as error:
            if not str(error).startswith("TRYAGAIN"):
                raise
    raise AssertionError(f"{args!r}: -TRYAGAIN for too long")


def test_hash_and_set_commands_answer_like_redis_over_resp3(cluster: LocalCluster) -> None:
    """redis-py against any node: HGETALL is a dict, SMEMBERS a set, HRANDFIELD WITHVALUES
    pairs; WRONGTYPE across types; TYPE, EXPIRE, RENAME and SCAN TYPE work for both."""
    client = connect(cluster, cluster.node_ids[1])
    assert client.hset("user:1", mapping={"name": "ada", "visits": "1"}) == 2
    assert client.hincrby("user:1", "visits", 4) == 5
    assert client.hgetall("user:1") == {b"name": b"ada", b"visits": b"5"}
    assert client.hrandfield("user:1", 2, withvalues=True) in (
        [[b"name", b"ada"], [b"visits", b"5"]], [[b"visits", b"5"], [b"name", b"ada"]])
    assert client.sadd("{g}tags", "a", "b", "c") == 3
    assert client.sadd("{g}other", "b", "c", "d") == 3
    assert client.smembers("{g}tags") == {b"a", b"b", b"c"}
    assert client.sinter("{g}tags", "{g}other") == {b"b", b"c"}
    assert client.sinterstore("{g}both", ["{g}tags", "{g}other"]) == 2
    assert client.smove("{g}tags", "{g}other", "a") is True
    assert client.type("user:1") == b"hash" and client.type("{g}tags") == b"set"
    try:
        client.get("user:1")
        raise AssertionError("GET on a hash answered")
    except redis.ResponseError as error:
        assert str(error).startswith("WRONGTYPE")
    assert client.expire("{g}both", 100) is True
    assert 0 < client.ttl("{g}both") <= 100
    assert client.rename("{g}both", "{g}renamed") is True
    assert client.smembers("{g}renamed") == {b"b", b"c"}
    assert set(client.scan_iter(_type="set")) >= {b"{g}tags", b"{g}other", b"{g}renamed"}
    assert list(client.scan_iter(_type="hash")) == [b"user:1"]
    assert sorted(client.hscan_iter("user:1")) == [(b"name", b"ada"), (b"visits", b"5")]
    assert client.command_getkeys("SINTERCARD", "2", "{g}a", "{g}b", "LIMIT", "1") == [
        b"{g}a", b"{g}b"]
    client.close()


def test_collections_survive_failover_and_travel_in_snapshots(
        fresh_cluster: LocalCluster) -> None:
    """Members acknowledged before and after a SIGKILL of the leader are all there; a follower
    down while the leader compacts its log installs a snapshot holding every hash and set."""
    cluster = fresh_cluster
    leader = cluster.wait_for_leader()
    clients = {node: connect(cluster, node) for node in cluster.node_ids}
    for index in range(50):
        node = cluster.node_ids[index % 3]
        assert clients[node].hset("h", f"f{index}", index) == 1
        assert clients[node].sadd("s", f"m{index}") == 1
    cluster.kill(leader, signal.SIGKILL)
    survivors = [node for node in cluster.node_ids if node != leader]
    for index in range(50, 100):
        client = clients[survivors[index % 2]]
        assert retried(client.hset, "h", f"f{index}", index) == 1
        assert retried(client.sadd, "s", f"m{index}") == 1
    new_leader = cluster.wait_for_leader()
    assert new_leader in survivors
    expected_hash = {b"f%d" % index: b"%d" % index for index in range(100)}
    expected_set = {b"m%d" % index for index in range(100)}
    for node in survivors:
        assert clients[node].hgetall("h") == expected_hash
        assert clients[node].smembers("s") == expected_set
    cluster.start_node(leader, bootstrap_flags=False)
    clients[leader] = connect(cluster, leader)

    lagging = next(node for node in survivors if node != new_leader)
    lagging_applied = cluster.applied_index(lagging)
    cluster.kill(lagging)
    writer = clients[new_leader]
    pipeline = writer.pipeline(transaction=False)
    for index in range(11_000):  # > log_compaction_entries_min: the leader compacts
        pipeline.hset("big", f"f{index}", index) if index % 2 else pipeline.sadd(
            "bigset", f"m{index}")
        if index % 1000 == 999:
            assert all(pipeline.execute())
    assert writer.delete("h") == 1  # a released hash: its members wait for the sweep
    assert writer.hlen("big") == 5_500 and writer.scard("bigset") == 5_500
    leader_status = wait_until(
        lambda: (status := shard_status(info_fields(cluster.client_ports[new_leader]), 1))
        and int(status["log_first_index"]) > lagging_applied + 1 and status, 60,
        "the leader to compact its log past the lagging follower")
    cluster.start_node(lagging, bootstrap_flags=False)
    commit = int(leader_status["commit"])
    wait_until(lambda: cluster.applied_index(lagging) >= commit, 90,
               f"node {lagging} to apply up to {commit}")
    assert int(info_fields(cluster.client_ports[lagging], b"stats")[
        "quorumkv_snapshots_received"]) >= 1
    # Read the lagging follower's own applied state (READONLY: served there, not forwarded).
    follower = connect(cluster, lagging, protocol=2)
    follower.execute_command("READONLY")
    assert follower.hlen("big") == 5_500 and follower.scard("bigset") == 5_500
    assert follower.hget("big", "f10999") == b"10999"
    assert follower.sismember("bigset", "m10998") == 1
    assert follower.smembers("s") == expected_set
    assert follower.exists("h") == 0
    follower.close()
    for client in clients.values():
        client.close()
