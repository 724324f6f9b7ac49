"""A node whose disk fills up: reads keep answering, writes are refused with the disk-full
error, INFO and the log say so once, and writes resume once space returns (a real process,
its data directory on a small tmpfs, redis-py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from quorumkv.server.local_cluster import LocalCluster, info_fields, wait_until
from storage.test_disk_full import small_tmpfs  # tests/ is on sys.path (rootdir-relative)

DISK_BYTES = 24 * 1024 * 1024
HEADROOM_BYTES = 2 * 1024 * 1024
"""Space left beside the ballast once the node runs: a few large SETs fill it."""
VALUE_BYTES = 256 * 1024
FILL_WRITES_MAX = 200
KEYS = 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs mounted for the test (needs root), unmounted afterwards."""
    with small_tmpfs(tmp_path / "disk", DISK_BYTES) as mount:
        yield mount


def fill_with_ballast(disk: Path) -> Path:
    """A file taking all free space of `disk` but HEADROOM_BYTES."""
    ballast = disk / "ballast"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(ballast, "wb") as file:
        file.write(b"\0" * max(0, free - HEADROOM_BYTES))
    return ballast


@contextlib.contextmanager
def cluster_with_node_1_on(disk: Path, tmp_path: Path,
                           nodes: int) -> Iterator[tuple[LocalCluster, redis.Redis]]:
    """A started cluster whose node 1 keeps its data on `disk` (its log stays off it), and a
    client of node 1 that never retries on its own."""
    base = tmp_path / "cluster"
    base.mkdir()
    (disk / "node1").mkdir()
    (base / "node1").symlink_to(disk / "node1")
    with LocalCluster(base, nodes=nodes, server_args=["--shards", "1"]) as cluster:
        cluster.start()
        cluster.wait_for_leader()
        yield cluster, redis.Redis(port=cluster.client_ports[1], protocol=2, socket_timeout=30,
                                   retry=Retry(NoBackoff(), 0))


def test_a_full_disk_keeps_reads_answering_and_says_so_once(tmp_path: Path,
                                                            small_disk: Path) -> None:
    """On a one-node cluster whose data directory fills up: GET, EXISTS and STRLEN of keys
    written before answer their values; SET answers the disk-full error; INFO persistence
    shows quorumkv_disk_full:1 and since when; the log has the start line exactly once;
    once the space is freed a SET succeeds, INFO shows 0, and the end line is logged once."""
    with cluster_with_node_1_on(small_disk, tmp_path, nodes=1) as (cluster, client):
        port = cluster.client_ports[1]
        for i in range(KEYS):
            assert client.set(f"key:{i}", f"value:{i}")
        ballast = fill_with_ballast(small_disk)

        refusal = ""
        for i in range(FILL_WRITES_MAX):
            try:
                client.set(f"big:{i}", os.urandom(VALUE_BYTES))
            except redis.ResponseError as error:
                if "disk full" in str(error):
                    refusal = str(error)
                    break
                # The write that found the disk full waits in the stalled log: its outcome
                # is unknown until space returns.
                assert str(error).startswith("UNKNOWN"), error
        assert refusal, f"no disk-full error after {FILL_WRITES_MAX} writes"
        assert "writes are refused" in refusal

        for i in range(KEYS):
            assert client.get(f"key:{i}") == f"value:{i}".encode()
            assert client.exists(f"key:{i}") == 1
            assert client.strlen(f"key:{i}") == len(f"value:{i}")
        assert client.exists("missing") == 0
        with pytest.raises(redis.ResponseError, match="disk full"):
            client.set("key:0", "changed")
        assert client.get("key:0") == b"value:0"
        persistence = info_fields(port, b"persistence")
        assert persistence["quorumkv_disk_full"] == "1"
        assert int(persistence["quorumkv_disk_full_since"]) > 0
        assert cluster.log(1).count("disk full under") == 1

        ballast.unlink()

        def writes_again() -> bool:
            try:
                return bool(client.set("after", "space"))
            except redis.ResponseError as error:
                assert "disk full" in str(error) or str(error).startswith("UNKNOWN"), error
                return False

        wait_until(writes_again, 60, "writes to resume once space is freed", poll_s=0.1)
        assert client.get("after") == b"space"
        assert info_fields(port, b"persistence")["quorumkv_disk_full"] == "0"
        log = cluster.log(1)
        assert log.count("disk full under") == 1
        assert log.count("disk space is back under") == 1
        assert "a bug stopped this node" not in log


def set_until_ok(client: redis.Redis, key: str, value: bytes) -> None:
    """SET, retried while its answer says nothing happened or may have (bounded)."""
    for _ in range(50):
        try:
            if client.set(key, value):
                return
        except redis.ResponseError as error:
            assert str(error).startswith(("TRYAGAIN", "UNKNOWN")), error
    raise AssertionError(f"{key}: no OK after 50 tries")


def test_a_node_with_a_full_disk_in_a_three_node_cluster_keeps_serving_its_clients(
        tmp_path: Path, small_disk: Path) -> None:
    """Node 1 of three has its data directory on a tmpfs that fills up (it replicates every
    write): its clients keep reading every key and writing (served by the leader the other
    two elect), its INFO shows quorumkv_disk_full:1 and its log the start line once; once
    space returns it catches up and logs the end line."""
    with cluster_with_node_1_on(small_disk, tmp_path, nodes=3) as (cluster, client):
        port = cluster.client_ports[1]
        for i in range(KEYS):
            set_until_ok(client, f"key:{i}", f"value:{i}".encode())
        ballast = fill_with_ballast(small_disk)

        def full() -> bool:
            return info_fields(port, b"persistence")["quorumkv_disk_full"] == "1"

        for i in range(FILL_WRITES_MAX):
            set_until_ok(client, f"big:{i}", os.urandom(VALUE_BYTES))
            if full():
                break
        assert full(), f"node 1's disk not full after {FILL_WRITES_MAX} writes"

        for i in range(KEYS):
            assert client.get(f"key:{i}") == f"value:{i}".encode()
            assert client.exists(f"key:{i}") == 1
            assert client.strlen(f"key:{i}") == len(f"value:{i}")
        set_until_ok(client, "during", b"full")
        assert client.get("during") == b"full"
        assert full()
        assert cluster.log(1).count("disk full under") == 1

        ballast.unlink()
        wait_until(lambda: not full(), 60, "node 1 to resume once space is freed", poll_s=0.1)
        log = cluster.log(1)
        assert log.count("disk full under") == 1
        assert log.count("disk space is back under") == 1
        assert "a bug stopped this node" not in log
        assert cluster.running() == [1, 2, 3]
