"""A SIGTERM at any moment after start is a clean stop: exit 0, never "a bug stopped this node"."""

from __future__ import annotations

from pathlib import Path

from quorumkv.server.local_cluster import LocalCluster

SIGTERM_ROUNDS = 20
"""Stops of one node right after it starts listening (the race showed in a few % of them)."""


def test_sigterm_shortly_after_start_never_reports_a_bug(tmp_path: Path) -> None:
    """Twenty times, node 1 of a running 3-node cluster is stopped with SIGTERM as soon as it
    answers PING (elections and catch-up still producing Ready cycles): every stop exits 0
    and its log never says "a bug stopped this node"."""
    with LocalCluster(tmp_path / "cluster", nodes=3) as cluster:
        cluster.start()
        codes = []
        for _ in range(SIGTERM_ROUNDS):
            codes.append(cluster.stop(1))
            cluster.start_node(1)  # returns once the node answers PING
        codes.append(cluster.stop(1))
        log = cluster.log(1)
    assert "a bug stopped this node" not in log
    assert "Traceback" not in log
    assert codes == [0] * (SIGTERM_ROUNDS + 1)
