"""Partitioning on real processes: 3 nodes, 12 shards, Redis Cluster clients and plain clients."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from quorumkv.cluster.slots import SLOT_COUNT, key_slot
from quorumkv.server.local_cluster import LocalCluster, info_fields, resp_command, wait_until

from .conftest import start_cluster

SHARDS = 12


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """3 nodes, 12 data shards, leaders at their preferred nodes (4 per node)."""
    local = start_cluster(tmp_path_factory.mktemp("partitioned"), shards=SHARDS)
    try:
        yield local
    finally:
        local.close()


def plain(cluster: LocalCluster, node_id: int) -> redis.Redis:
    return redis.Redis(port=cluster.client_ports[node_id], socket_timeout=10)


def cluster_client(cluster: LocalCluster, node_id: int = 1) -> RedisCluster:
    return RedisCluster(host="127.0.0.1", port=cluster.client_ports[node_id],
                        socket_timeout=10)


def covered_once(ranges: list[tuple[int, int]]) -> bool:
    slots = sorted(slot for start, end in ranges for slot in range(start, end + 1))
    return slots == list(range(SLOT_COUNT))


def test_cluster_slots_and_shards_cover_every_slot_once_on_every_node(
        cluster: LocalCluster) -> None:
    """CLUSTER SLOTS and CLUSTER SHARDS of every node cover all 16384 slots exactly once, and
    the leaders are spread: every node is the master of 4 of the 12 shards."""
    for node_id in cluster.node_ids:
        client = plain(cluster, node_id)
        slots = client.execute_command("CLUSTER", "SLOTS")
        assert covered_once([(int(entry[0]), int(entry[1])) for entry in slots])
        masters = [entry[2][1] for entry in slots]
        assert sorted(masters.count(cluster.client_ports[n]) for n in cluster.node_ids) == [
            4, 4, 4]
        shards = client.execute_command("CLUSTER", "SHARDS")
        ranges = []
        for shard in shards:
            flat = [int(slot) for slot in shard.get("slots", shard.get(b"slots"))]
            ranges.extend(zip(flat[::2], flat[1::2], strict=True))
        assert len(shards) == SHARDS and covered_once(ranges)
        info = client.execute_command("CLUSTER", "INFO")
        assert b"cluster_state:ok" in info and b"cluster_slots_assigned:16384" in info
        client.close()


def test_redis_py_cluster_client_works_unmodified(cluster: LocalCluster) -> None:
    """redis-py's RedisCluster writes and reads 1,200 keys over all shards; hash tags keep
    keys together (one slot), so multi-key commands on them work."""
    client = cluster_client(cluster)
    keys = [f"key:{index}" for index in range(1200)]
    pipeline = client.pipeline()
    for key in keys:
        pipeline.set(key, key.upper())
    assert all(pipeline.execute())
    assert {key_slot(k.encode()) * SHARDS // SLOT_COUNT for k in keys} == set(range(SHARDS))
    assert client.mget_nonatomic(keys) == [k.upper().encode() for k in keys]
    tagged = [f"{{user:7}}:{field}" for field in ("name", "mail", "city")]
    assert len({key_slot(k.encode()) for k in tagged}) == 1
    assert client.mset({k: "x" for k in tagged}) is True
    assert client.mget(tagged) == [b"x"] * 3
    assert client.delete(*tagged) == 3
    assert client.keyslot("user") == key_slot(b"user")
    slot = key_slot(b"key:1")
    assert client.cluster_countkeysinslot(slot) >= 1
    assert "key:1" in client.cluster_get_keys_in_slot(slot, 1000)  # redis-py decodes them
    client.close()


def test_plain_clients_work_against_every_node(cluster: LocalCluster) -> None:
    """Plain clients on any node: commands are forwarded to the leaders, MGET/DEL/EXISTS
    across shards are split and gathered, DBSIZE/KEYS/SCAN see the whole cluster, MSET
    across shards is refused with a clear error."""
    keys = [f"plain:{index}" for index in range(40)]
    for node_id in cluster.node_ids:
        client = plain(cluster, node_id)
        for key in keys:
            assert client.set(key, f"{node_id}:{key}")
        assert client.mget(keys) == [f"{node_id}:{key}".encode() for key in keys]
        assert client.exists(*keys) == len(keys)
        client.close()
    client = plain(cluster, 2)
    assert sorted(client.keys("plain:*")) == sorted(k.encode() for k in keys)
    assert sorted(client.scan_iter(match="plain:*", count=7)) == sorted(
        k.encode() for k in keys)
    assert client.dbsize() >= len(keys)
    with pytest.raises(redis.ResponseError, match="hash to the same shard"):  # -CROSSSLOT
        client.mset({"plain:0": "a", "plain:1": "b", "plain:2": "c"})
    assert client.delete(*keys) == len(keys)
    assert client.exists(*keys) == 0
    client.close()


def test_cluster_mode_connections_are_redirected(cluster: LocalCluster) -> None:
    """A connection that asked for CLUSTER SLOTS is answered -MOVED for keys led elsewhere and
    -CROSSSLOT for keys in two slots; READONLY/READWRITE/ASKING answer OK."""
    key = b"moved-key"
    slot = key_slot(key)
    owner = next(n for n in cluster.node_ids
                 if _masters(cluster, 1).get(slot) == cluster.client_ports[n])
    other = next(n for n in cluster.node_ids if n != owner)
    client = plain(cluster, other)
    connection = client.connection_pool.get_connection()
    connection.send_command("CLUSTER", "SLOTS")
    connection.read_response()
    connection.send_command("GET", key)
    with pytest.raises(redis.exceptions.MovedError) as raised:  # -MOVED slot host:port
        connection.read_response()
    assert str(raised.value) == f"{slot} 127.0.0.1:{cluster.client_ports[owner]}"
    connection.send_command("MGET", "a", "b")
    with pytest.raises(redis.exceptions.ClusterCrossSlotError):  # -CROSSSLOT
        connection.read_response()
    for command in ("READONLY", "READWRITE", "ASKING"):
        connection.send_command(command)
        assert connection.read_response() == b"OK"
    client.connection_pool.release(connection)
    client.close()


def _masters(cluster: LocalCluster, node_id: int) -> dict[int, int]:
    """slot -> client port of its master, from CLUSTER SLOTS of `node_id`."""
    client = plain(cluster, node_id)
    table = {}
    for entry in client.execute_command("CLUSTER", "SLOTS"):
        for slot in range(int(entry[0]), int(entry[1]) + 1):
            table[slot] = int(entry[2][1])
    client.close()
    return table


def test_redis_cli_follows_redirections(cluster: LocalCluster) -> None:
    """`redis-cli -c` (cluster mode) sets and reads keys of every node's shards."""
    port = str(cluster.client_ports[3])
    for index in range(12):
        key = f"cli:{index}"
        result = subprocess.run(["redis-cli", "-c", "-p", port, "SET", key, "v"],
                                capture_output=True, text=True, timeout=30, check=True)
        assert result.stdout.strip() == "OK"
        result = subprocess.run(["redis-cli", "-c", "-p", port, "GET", key],
                                capture_output=True, text=True, timeout=30, check=True)
        assert result.stdout.strip() == "v"


def test_a_killed_node_and_a_full_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    """After a node is killed, RedisCluster keeps writing by following MOVED; after every node
    restarts, the slot map and the data are the same."""
    local = start_cluster(tmp_path_factory.mktemp("restart"), shards=6)
    try:
        client = cluster_client(local, 1)
        for index in range(200):
            assert client.set(f"before:{index}", index)
        slots_before = _slot_shards(local, 1)
        local.kill(3)
        written = 0
        for index in range(200):
            written += _retrying(lambda index=index: client.set(f"after:{index}", index))
        assert written == 200
        client.close()
        for node_id in (1, 2):
            local.stop(node_id)
        for node_id in local.node_ids:
            local.start_node(node_id, wait=False, bootstrap_flags=False)
        for node_id in local.node_ids:
            local.wait_listening(node_id)
        local.wait_for_leader()
        assert _slot_shards(local, 2) == slots_before
        client = wait_until(lambda: cluster_client(local, 2), 30, "a cluster client")
        for prefix in ("before", "after"):
            values = [_retrying(lambda k=f"{prefix}:{i}": client.get(k)) for i in range(200)]
            assert values == [str(i).encode() for i in range(200)]
        client.close()
    finally:
        local.close()


def _slot_shards(local: LocalCluster, node_id: int) -> list[tuple[int, int]]:
    client = plain(local, node_id)
    ranges = sorted((int(e[0]), int(e[1])) for e in client.execute_command("CLUSTER", "SLOTS"))
    client.close()
    return ranges


def _retrying(action):  # type: ignore[no-untyped-def]
    """Run a cluster client's command, retrying while a failover is in progress."""
    return wait_until(lambda: _attempt(action), 30, "a command to succeed during failover")


def _attempt(action):  # type: ignore[no-untyped-def]
    try:
        return action()
    except (redis.exceptions.ClusterError, redis.ConnectionError, redis.TimeoutError,
            redis.ResponseError):
        return None


def test_info_says_the_node_runs_a_cluster(cluster: LocalCluster) -> None:
    """HELLO reports mode cluster and CONFIG GET cluster-enabled says yes."""
    port = cluster.client_ports[1]
    assert b"yes" in resp_command(port, b"CONFIG", b"GET", b"cluster-enabled")
    assert b"cluster_epoch:1" in resp_command(port, b"INFO", b"quorumkv")


def test_status_shows_nodes_shards_and_leaders(cluster: LocalCluster) -> None:
    """`quorumkv status` lists every node as up with its process id, and every shard with its
    leader, term and applied index on each replica."""
    result = subprocess.run(
        [sys.executable, "-m", "quorumkv.cli", "status", "-p", str(cluster.client_ports[2])],
        capture_output=True, text=True, timeout=30, check=True,
        env={**os.environ, "COLUMNS": "200"})
    node_table, _, shard_table = result.stdout.partition("shards")
    nodes, shards = ([[cell.strip() for cell in line.split("│")[1:-1]]
                      for line in table.splitlines() if line.startswith("│")]
                     for table in (node_table, shard_table))
    assert [int(row[0]) for row in nodes] == [1, 2, 3]
    assert [int(row[2]) for row in nodes] == [cluster.pid(n) for n in (1, 2, 3)]
    assert [row[3] for row in nodes] == ["up"] * 3
    assert [int(row[0]) for row in shards] == list(range(SHARDS + 1))
    assert all(row[2] == row[3] for row in shards[1:])  # led by the preferred leaders
    assert all(row[5].count("/") == 3 for row in shards)  # term/applied of 3 replicas


def test_redis_benchmark_cluster_runs_to_completion(cluster: LocalCluster) -> None:
    """`redis-benchmark --cluster` (SET and GET over every slot) finishes without errors."""
    result = subprocess.run(
        ["redis-benchmark", "--cluster", "-p", str(cluster.client_ports[1]), "-n", "3000",
         "-c", "10", "-r", "100000", "-t", "set,get", "-q"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "SET:" in result.stdout and "GET:" in result.stdout, result.stdout
    assert "error" not in (result.stdout + result.stderr).lower()


def test_readonly_connections_read_from_followers(cluster: LocalCluster) -> None:
    """After READONLY, a read of a key whose shard is led elsewhere is answered by this
    node's replica (possibly stale: the test waits for the write to reach it), not -MOVED;
    a write is still redirected."""
    key = b"follower-read"
    slot = key_slot(key)
    owner_port = _masters(cluster, 1)[slot]
    writer = cluster_client(cluster)
    assert writer.set(key, "fresh")
    writer.close()
    follower = next(n for n in cluster.node_ids if cluster.client_ports[n] != owner_port)
    client = plain(cluster, follower)
    connection = client.connection_pool.get_connection()
    connection.send_command("READONLY")
    assert connection.read_response() == b"OK"

    def read() -> bytes | None:
        connection.send_command("GET", key)
        reply = connection.read_response()
        return reply if reply == b"fresh" else None

    assert wait_until(read, 10, "the write to reach the follower") == b"fresh"
    connection.send_command("SET", key, "x")
    with pytest.raises(redis.exceptions.MovedError):
        connection.read_response()
    client.connection_pool.release(connection)
    client.close()


def test_shard_statistics_are_sampled_on_the_leaders(cluster: LocalCluster) -> None:
    """Every shard's leader reports its statistics in INFO quorumkv: the keys written by the
    earlier tests are counted, shard by shard, on the node leading each shard."""
    client = cluster_client(cluster)
    for index in range(100):
        client.set(f"statistics:{index}", index)
    client.close()

    def statistics() -> dict[int, dict[str, str]]:
        found = {}
        for node_id in cluster.node_ids:
            for name, value in info_fields(cluster.client_ports[node_id]).items():
                if name.startswith("shard_statistics_"):
                    found[int(name.rsplit("_", 1)[1])] = dict(
                        item.split("=", 1) for item in value.split(","))
        return found if len(found) == SHARDS and all(
            int(s["keys"]) > 0 for s in found.values()) else {}

    found = wait_until(statistics, 30, "every shard's statistics")
    assert all(float(s["writes_per_second"]) >= 0 for s in found.values())


def test_five_nodes_where_no_node_hosts_every_shard(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """5 nodes, 10 shards, 3 replicas each: nodes without a replica of shard 0 read the
    metadata from its leader; plain clients on every node reach shards hosted elsewhere; the
    slot map covers every slot once on every node; RedisCluster works."""
    local = start_cluster(tmp_path_factory.mktemp("five"), nodes=5, shards=10)
    try:
        for node_id in local.node_ids:
            assert covered_once(_slot_shards(local, node_id))
            client = plain(local, node_id)
            keys = [f"five:{node_id}:{index}" for index in range(30)]
            for key in keys:
                assert client.set(key, key)
            assert client.mget(keys) == [key.encode() for key in keys]
            client.close()
        assert plain(local, 1).dbsize() == 150
        client = cluster_client(local, 4)
        for index in range(300):
            assert client.set(f"five-cluster:{index}", index)
        assert client.mget_nonatomic([f"five-cluster:{i}" for i in range(300)]) == [
            str(i).encode() for i in range(300)]
        client.close()
    finally:
        local.close()
