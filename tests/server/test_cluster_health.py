"""Honest cluster state on real processes: CLUSTER INFO fails without a quorum, and a restarted
node that hosts no replica of the metadata shard knows the slot map when it starts serving."""

from __future__ import annotations

from pathlib import Path

import redis

from quorumkv.cluster.metadata import METADATA_SHARD_ID
from quorumkv.cluster.slots import SLOT_COUNT
from quorumkv.server.local_cluster import LocalCluster, info_fields, wait_until

from .conftest import start_cluster


def cluster_info(local: LocalCluster, node_id: int) -> dict[str, str]:
    """CLUSTER INFO of one node as field -> value (read as text: the wire reply)."""
    client = redis.Redis(port=local.client_ports[node_id], socket_timeout=10)
    try:
        text = client.execute_command("CLUSTER", "INFO")
    finally:
        client.close()
    lines = (line.partition(":") for line in bytes(text).decode().splitlines() if line)
    return {name: value for name, _, value in lines}


def slot_counts_add_up(info: dict[str, str]) -> bool:
    counted = sum(int(info[f"cluster_slots_{k}"]) for k in ("ok", "pfail", "fail"))
    return counted == int(info["cluster_slots_assigned"]) == SLOT_COUNT


def test_cluster_info_fails_without_a_quorum_and_recovers(tmp_path: Path) -> None:
    """Killing 2 of 3 nodes turns the survivor's CLUSTER INFO to cluster_state:fail with every
    slot failed; restarting them brings cluster_state:ok back, every slot ok, on every node."""
    local = start_cluster(tmp_path / "cluster", nodes=3, shards=3)
    try:
        assert cluster_info(local, 1)["cluster_state"] == "ok"
        local.kill(2)
        local.kill(3)

        def survivor_fails() -> bool:
            info = cluster_info(local, 1)
            assert slot_counts_add_up(info)
            return info["cluster_state"] == "fail" and (
                info["cluster_slots_fail"] == str(SLOT_COUNT))

        wait_until(survivor_fails, 30, "cluster_state:fail with every slot failed")
        for node_id in (2, 3):
            local.start_node(node_id, wait=False, bootstrap_flags=False)
        for node_id in local.node_ids:
            local.wait_listening(node_id)

        def all_ok() -> bool:
            infos = [cluster_info(local, n) for n in local.node_ids]
            return all(i["cluster_state"] == "ok" and i["cluster_slots_ok"] == str(SLOT_COUNT)
                       and slot_counts_add_up(i) for i in infos)

        wait_until(all_ok, 30, "cluster_state:ok with every slot ok on every node")
    finally:
        local.close()


def test_a_node_that_cannot_know_the_metadata_answers_cluster_info_fail(tmp_path: Path) -> None:
    """One node of three started alone cannot bootstrap the metadata (no quorum): CLUSTER INFO
    answers cluster_state:fail with no slot assigned, not an error."""
    local = LocalCluster(tmp_path / "cluster", nodes=3)
    try:
        local.start_node(1)
        info = cluster_info(local, 1)
        assert info["cluster_state"] == "fail" and info["cluster_slots_assigned"] == "0"
    finally:
        local.close()


def hosts_metadata_replica(local: LocalCluster, node_id: int) -> bool:
    shards = info_fields(local.client_ports[node_id])["shards"].split(",")
    return str(METADATA_SHARD_ID) in shards


def test_a_restarted_node_without_a_metadata_replica_serves_at_once(tmp_path: Path) -> None:
    """4 nodes, shard 0 on 3 of them: the fourth, killed and restarted, lists every slot in
    CLUSTER SLOTS and serves a SET and a GET as the first commands it gets once it answers
    PING (no -CLUSTERDOWN while it would learn the metadata)."""
    local = start_cluster(tmp_path / "cluster", nodes=4, shards=4)
    try:
        outsiders = [n for n in local.node_ids if not hosts_metadata_replica(local, n)]
        assert len(outsiders) == 1, "placement puts shard 0 on 3 of 4 nodes"
        node_id = outsiders[0]
        local.kill(node_id)
        local.start_node(node_id, wait=True, bootstrap_flags=False)  # returns once PING works
        topology = redis.Redis(port=local.client_ports[node_id], socket_timeout=30)
        slots = topology.execute_command("CLUSTER", "SLOTS")
        assert sum(int(end) - int(start) + 1 for start, end, *_ in slots) == SLOT_COUNT
        topology.close()  # CLUSTER SLOTS made it a cluster client: data goes on another
        client = redis.Redis(port=local.client_ports[node_id], socket_timeout=30)
        keys = [f"restarted:{index}" for index in range(16)]  # several shards
        for key in keys:
            assert client.set(key, key)
        assert client.mget(keys) == [key.encode() for key in keys]
        client.close()
    finally:
        local.close()
