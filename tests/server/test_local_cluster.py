"""The test clusters' port picker (server/local_cluster.py)."""

from __future__ import annotations

from quorumkv.server.local_cluster import LISTEN_PORTS, free_port


def test_free_port_never_returns_a_port_twice() -> None:
    """500 picks give 500 different ports in the listening range: a cluster's peer and client
    ports cannot coincide (500 random picks among 12,000 ports would repeat one almost surely)."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    assert all(LISTEN_PORTS[0] <= port < LISTEN_PORTS[1] for port in ports)
