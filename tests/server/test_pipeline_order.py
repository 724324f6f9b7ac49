"""Commands pipelined on one connection take effect in the order sent (issue 11, item 1).

A 3-node cluster of real processes with 12 data shards, so that consecutive keys fall on
shards led by different nodes: a pipeline on one connection mixes commands run locally,
forwarded, split across shards and read by ReadIndex. Clients are raw sockets (every command
written at once) and redis-py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from quorumkv.server.local_cluster import (
    LocalCluster,
    info_fields,
    pipeline_replies,
    shard_status,
)

from .conftest import start_cluster

PAIRS = int(os.environ.get("QUORUMKV_PIPELINE_PAIRS", "300"))
"""SET/GET pairs per node in the default suite (the slow test sends 100,000)."""


@pytest.fixture(scope="module")
def cluster12(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = start_cluster(tmp_path_factory.mktemp("cluster"), shards=12)
    try:
        yield local
    finally:
        local.close()


def pipeline(port: int, commands: list[tuple[bytes, ...]], timeout_s: float = 120.0
             ) -> list[object]:
    return pipeline_replies(port, commands, timeout_s)


def test_short_pipeline_reads_its_own_writes_on_every_node(cluster12: LocalCluster) -> None:
    """SET A 1, GET A, SET A 2, GET A, DEL A written at once answer as Redis does, on each node."""
    for node_id in cluster12.node_ids:
        replies = pipeline(cluster12.client_ports[node_id], [
            (b"SET", b"A", b"1"), (b"GET", b"A"), (b"SET", b"A", b"2"), (b"GET", b"A"),
            (b"DEL", b"A")])
        assert replies == [b"OK", b"1", b"OK", b"2", 1], f"node {node_id}"


def test_split_commands_keep_their_place(cluster12: LocalCluster) -> None:
    """Multi-key commands split across shards (MGET, EXISTS, DEL) see exactly the commands
    sent before them on the connection and none sent after."""
    keys = [b"split:%d" % i for i in range(8)]  # spread over the 12 shards
    for node_id in cluster12.node_ids:
        replies = pipeline(cluster12.client_ports[node_id], [
            *[(b"SET", key, b"1") for key in keys],
            (b"MGET", *keys),
            (b"SET", keys[3], b"2"),
            (b"MGET", *keys),
            (b"EXISTS", *keys),
            (b"DEL", *keys),
            (b"MGET", *keys),
            (b"INCR", keys[5]),
            (b"GET", keys[5]),
            (b"DEL", keys[5]),
        ])
        assert replies == [
            *[b"OK"] * 8, [b"1"] * 8, b"OK", [b"1", b"1", b"1", b"2", b"1", b"1", b"1", b"1"], 8, 8,
            [None] * 8, 1, b"1", 1], f"node {node_id}"


def test_redis_py_pipeline_sees_its_own_writes(cluster12: LocalCluster) -> None:
    """A redis-py (non-transactional) pipeline gets the results Redis would give."""
    for node_id in cluster12.node_ids:
        client = redis.Redis(port=cluster12.client_ports[node_id], socket_timeout=120)
        try:
            pipe = client.pipeline(transaction=False)
            for i in range(50):
                pipe.set(f"py:{node_id}:{i}", i)
                pipe.get(f"py:{node_id}:{i}")
                pipe.incr(f"py:{node_id}:counter")
            results = pipe.execute()
        finally:
            client.close()
        assert results[0::3] == [True] * 50
        assert results[1::3] == [str(i).encode() for i in range(50)]
        assert results[2::3] == list(range(1, 51))


def shard_terms(cluster: LocalCluster) -> dict[str, int]:
    """Each data shard's highest term as the nodes report it (a change means an election)."""
    terms: dict[str, int] = {}
    for node_id in cluster.node_ids:
        fields = info_fields(cluster.client_ports[node_id])
        for name in fields:
            if name.removeprefix("shard_").isdigit() and name != "shard_0":
                term = int(shard_status(fields, int(name[6:]))["term"])
                terms[name] = max(terms.get(name, 0), term)
    return terms


def set_get_pairs(cluster: LocalCluster, count: int) -> None:
    """`count` pipelined pairs on one connection to each node, the nodes at the same time.

    Every GET after an acknowledged SET returns its value. No command gets an error unless
    an election happened meanwhile (on this shared test machine a starved node can miss its
    heartbeats): then only the answers a leader change gives, never "no answer within
    request_timeout_ms", which would mean a command waited behind the client's own flood."""
    terms_before = shard_terms(cluster)
    results: dict[int, list[object]] = {}

    def run(node_id: int) -> None:
        commands: list[tuple[bytes, ...]] = []
        for i in range(count):
            key = b"key:%d:%d" % (node_id, i)
            commands += [(b"SET", key, b"v%d" % i), (b"GET", key)]
        results[node_id] = pipeline(cluster.client_ports[node_id], commands, timeout_s=600)

    threads = [threading.Thread(target=run, args=(node_id,)) for node_id in cluster.node_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elections = shard_terms(cluster) != terms_before
    for node_id in cluster.node_ids:
        assert node_id in results, f"node {node_id}: the pipeline failed (see the output)"
        replies = results[node_id]
        errors = [r[1] for r in replies if isinstance(r, tuple)]
        if not elections:
            assert errors == [], f"node {node_id}: {len(errors)} errors, first {errors[:3]}"
        assert not [e for e in errors if "request_timeout_ms" in e], errors[:3]
        missed = [i for i in range(count)
                  if replies[2 * i] == b"OK" and replies[2 * i + 1] not in (b"v%d" % i,)
                  and not isinstance(replies[2 * i + 1], tuple)]
        assert missed == [], f"node {node_id}: {len(missed)} GETs missed their SET"
        assert all(r == b"OK" or isinstance(r, tuple) for r in replies[0::2])


def test_pipelined_set_get_pairs_on_every_node(cluster12: LocalCluster) -> None:
    """Pipelined SET key:i / GET key:i pairs: every GET returns its SET's value, and no errors
    (-UNKNOWN, -TRYAGAIN) although the client sends faster than the cluster commits."""
    set_get_pairs(cluster12, PAIRS)


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_100000_pipelined_set_get_pairs_on_every_node(tmp_path: Path) -> None:
    """The issue's load: 100,000 pipelined pairs on every node, all in order, no errors."""
    local = start_cluster(tmp_path / "cluster", shards=12)
    try:
        set_get_pairs(local, 100_000)
    finally:
        local.close()
