"""The host's operator log: one INFO line per leadership event and per snapshot transfer,
each naming node, shard and term."""

from __future__ import annotations

import logging

import pytest

from quorumkv.host.host import HostConfig

from .cluster import Cluster


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "quorumkv.host" and r.levelno == logging.INFO and text in r.getMessage()]


def settle(cluster: Cluster, ticks: int = 50) -> None:
    """Run a steady cluster for a while: heartbeats flow, nothing changes."""
    for _ in range(ticks):
        cluster.tick()


def test_elections_and_leader_changes_are_logged_once_each(
        caplog: pytest.LogCaptureFixture) -> None:
    """An election won, a leader learned by followers, a leader lost, a leader stepping down:
    each is one INFO line naming node, shard and term, however many heartbeats follow."""
    caplog.set_level(logging.INFO, logger="quorumkv.host")
    cluster = Cluster(3)
    cluster.run_until(lambda: cluster.leader() != 0 and all(
        h.leader_of(1) == cluster.leader() for h in cluster.hosts.values()))
    first = cluster.leader()
    term = cluster.hosts[first].replica(1).node.term
    settle(cluster)
    assert len(lines(caplog, f"node {first}: shard 1 term {term}: elected leader")) == 1
    others = [n for n in cluster.hosts if n != first]
    for node_id in others:
        assert len(lines(caplog, f"node {node_id}: shard 1 term {term}: leader is node "
                                 f"{first}")) == 1

    caplog.clear()
    cluster.network.isolated.add(first)
    cluster.run_until(lambda: any(cluster.hosts[n].is_leader(1) for n in others)
                      and not cluster.hosts[first].is_leader(1)
                      and all(cluster.hosts[n].leader_of(1) for n in others))
    second = next(n for n in others if cluster.hosts[n].is_leader(1))
    third = next(n for n in others if n != second)
    new_term = cluster.hosts[second].replica(1).node.term
    settle(cluster)
    assert len(lines(caplog, f"node {second}: shard 1 term {new_term}: elected leader")) == 1
    assert len(lines(caplog, f"node {third}: shard 1 term {new_term}: leader is node "
                             f"{second}")) == 1
    assert len(lines(caplog, f"lost its leader node {first}")) >= 1
    stepped = lines(caplog, f"node {first}: shard 1 term")
    assert len(stepped) == 1 and "stepped down as leader" in stepped[0]


def test_a_snapshot_transfer_is_logged_when_it_starts_and_ends_on_both_sides(
        caplog: pytest.LogCaptureFixture) -> None:
    """A learner catching up by snapshot: the leader logs the transfer's start and its end
    (bytes, duration), the learner its start and its receipt, each once, naming node, shard,
    term and peer."""
    caplog.set_level(logging.INFO, logger="quorumkv.host")
    cluster = Cluster(3, config=HostConfig(log_compaction_entries_min=5,
                                           snapshot_chunk_bytes_max=64))
    cluster.run_until(lambda: cluster.leader() != 0)
    leader = cluster.leader()
    for index in range(30):
        cluster.call(leader, b"SET", b"key%d" % index, b"value%d" % index)
    cluster.add_learner(leader, 4)
    settle(cluster)
    term = cluster.hosts[leader].replica(1).node.term
    sending = f"node {leader}: shard 1 term {term}: snapshot to node 4 (snapshot at index"
    receiving = f"node 4: shard 1 term {term}: snapshot from node {leader} (snapshot at index"
    sender_lines, receiver_lines = lines(caplog, sending), lines(caplog, receiving)
    assert len(sender_lines) == 2 and len(receiver_lines) == 2
    assert sender_lines[0].endswith(": started") and receiver_lines[0].endswith(": started")
    assert ": sent, " in sender_lines[1] and ": received, " in receiver_lines[1]
    size = int(sender_lines[1].split(": sent, ")[1].split(" bytes")[0])
    assert size > 0 and f"received, {size} bytes in " in receiver_lines[1]
