"""A node whose data directory was lost is refused by its peers and stops once, clearly; the
rest of the cluster keeps serving (real processes, real RocksDB, redis-py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from quorumkv.raft.types import ConfState, SnapshotMeta
from quorumkv.server.local_cluster import LocalCluster
from quorumkv.server.node import EXIT_STORAGE_LOST
from quorumkv.server.storage_identity import storage_id_of
from quorumkv.storage.open import open_node_store

EXIT_TIMEOUT_S = 60
KEYS = 50


def connect(cluster: LocalCluster, node_id: int) -> redis.Redis:
    return redis.Redis(port=cluster.client_ports[node_id], protocol=2, socket_timeout=10,
                       retry=Retry(NoBackoff(), 0))


def set_retrying(client: redis.Redis, key: str, value: str) -> None:
    """SET, retried on -TRYAGAIN (definitely not applied), bounded."""
    for _ in range(200):
        try:
            assert client.set(key, value)
            return
        except redis.ResponseError as error:
            assert str(error).startswith("TRYAGAIN"), error
    raise AssertionError(f"{key}: -TRYAGAIN for too long")


def storage_id_in_log(log: str) -> str:
    match = re.search(r"storage id ([0-9a-f]{32})", log)
    assert match, "the node did not print its storage id at start"
    return match.group(1)


def test_a_data_directory_keeps_one_storage_id_and_an_older_one_gets_one(
        tmp_path: Path) -> None:
    """A directory written before storage ids (shard records, no id) gets one on its first
    open, synced; every later open reads the same one; an emptied directory gets another."""
    path = str(tmp_path / "store")
    store = open_node_store(path)
    batch = store.batch()
    batch.set_applied(1, SnapshotMeta(5, 5, ConfState(voters=(1, 2, 3))))
    store.write(batch, sync=True)  # what an older version left: data, no storage id
    storage_id, created = storage_id_of(store)
    assert created and len(storage_id) == 32
    store.close()
    store = open_node_store(path)
    assert storage_id_of(store) == (storage_id, False)
    store.close()
    shutil.rmtree(path)
    store = open_node_store(path)
    other, created = storage_id_of(store)
    assert created and other != storage_id
    store.close()


def test_a_node_restarted_on_an_emptied_data_directory_is_refused_and_stops_once(
        tmp_path: Path) -> None:
    """Node 2 restarted with its old node id on an emptied data directory exits with
    EXIT_STORAGE_LOST and a message naming both storage ids and the recovery that works (not
    the invariant crash "commit index ... is past the last index", exit 70, on every start);
    started again (after nodes 1 and 3 restarted: they keep what they know) it says the
    same, never crashes; nodes 1 and 3 log the refusal (address, node id, reason) and serve
    every earlier write and new writes, with no error."""
    with LocalCluster(tmp_path / "cluster", nodes=3) as cluster:
        cluster.start()
        cluster.wait_for_leader()
        clients = {n: connect(cluster, n) for n in (1, 3)}
        for i in range(KEYS):
            set_retrying(clients[1 + 2 * (i % 2)], f"key:{i}", f"value:{i}")
        old_storage_id = storage_id_in_log(cluster.log(2))
        assert cluster.stop(2) == 0
        shutil.rmtree(cluster.data_dir(2))

        for attempt in range(2):
            if attempt == 1:  # what nodes 1 and 3 know of node 2 survives their restarts
                for node_id in (1, 3):
                    assert cluster.stop(node_id) == 0
                    cluster.start_node(node_id)
                cluster.wait_for_leader()
                clients = {n: connect(cluster, n) for n in (1, 3)}
            cluster.start_node(2, wait=False)
            code = cluster.processes[2].wait(EXIT_TIMEOUT_S)
            log = cluster.log(2)
            assert code == EXIT_STORAGE_LOST, log[-3000:]
            assert "a bug stopped this node" not in log and "past the last index" not in log
            assert log.count("was initialised afresh") == attempt + 1
            assert f"knows node 2 with storage id {old_storage_id}" in log
            assert "cannot rejoin under its old identity" in log
            assert "not have yet" in log  # node replace: named as not available, not advised

        for node_id in (1, 3):
            refusals = [line for line in cluster.log(node_id).splitlines()
                        if "refusing peer connection" in line and "(node 2)" in line]
            assert refusals, f"node {node_id} did not log refusing node 2"
            assert re.search(r"from 127\.0\.0\.1:\d+ \(node 2\)", refusals[0])
            assert old_storage_id in refusals[0]
            client = clients[node_id]
            assert client.mget([f"key:{i}" for i in range(KEYS)]) == [
                f"value:{i}".encode() for i in range(KEYS)]
            for i in range(10):
                set_retrying(client, f"after:{node_id}:{i}", "v")
            assert client.get(f"after:{node_id}:9") == b"v"
            assert "a bug stopped this node" not in cluster.log(node_id)
        assert cluster.is_running(1) and cluster.is_running(3)


def test_a_node_restarted_on_an_older_copy_of_its_data_directory_stops_clearly(
        tmp_path: Path) -> None:
    """Node 2 restarted on an older copy of its own data directory (same storage id, a log
    shorter than what it acknowledged) is stopped by its Raft core with ReplicaStateLost
    (exit EXIT_STORAGE_LOST, shard, commit and last index named), not an invariant crash;
    nodes 1 and 3 keep serving."""
    with LocalCluster(tmp_path / "cluster", nodes=3) as cluster:
        cluster.start()
        cluster.wait_for_leader()
        clients = {n: connect(cluster, n) for n in (1, 3)}
        set_retrying(clients[1], "before", "copy")
        assert cluster.stop(2) == 0
        copy = tmp_path / "node2-copy"
        shutil.copytree(cluster.data_dir(2), copy, symlinks=True)
        cluster.start_node(2)
        for i in range(KEYS):  # acknowledged by node 2 too (it is a voter of every shard)
            set_retrying(clients[1], f"key:{i}", f"value:{i}")
        cluster.wait_for_leader()
        assert cluster.stop(2) == 0
        shutil.rmtree(cluster.data_dir(2))
        shutil.copytree(copy, cluster.data_dir(2), symlinks=True)

        cluster.start_node(2, wait=False)
        code = cluster.processes[2].wait(EXIT_TIMEOUT_S)
        log = cluster.log(2)
        assert code == EXIT_STORAGE_LOST, log[-3000:]
        assert "lost entries it had acknowledged" in log and "but its log ends at" in log
        assert "a bug stopped this node" not in log
        for node_id in (1, 3):
            assert clients[node_id].get(f"key:{KEYS - 1}") == f"value:{KEYS - 1}".encode()
            set_retrying(clients[node_id], f"after:{node_id}", "v")
