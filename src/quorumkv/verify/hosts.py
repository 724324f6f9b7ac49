"""Where each node of a verify run lives: its addresses and how to start a process there.

Theory of operation. A `NodeHost` is everything the harness needs to know about one node's
place: the address clients dial, the address peers dial, and the command prefix that puts a
process there (`ip netns exec <namespace>` for a namespace, nothing on loopback). The private
network (namespaces.py) and the loopback layout (`loopback_hosts`) both produce them, so the
rest of the harness is the same in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass

from quorumkv.server.local_cluster import free_port

CLIENT_PORT = 7001
"""The client (RESP) port of every node in namespace mode (each node has its own address)."""

PEER_PORT = 17001
"""The peer port of every node in namespace mode."""


@dataclass(frozen=True, slots=True)
class NodeHost:
    """One node's place: addresses and the prefix of the command that starts it there."""

    node_id: int
    client_host: str
    client_port: int
    peer_host: str
    peer_port: int
    command_prefix: tuple[str, ...] = ()
    namespace: str | None = None

    @property
    def peers_entry(self) -> str:
        """This node's item of the server's `--peers` list."""
        return (f"{self.node_id}={self.peer_host}:{self.peer_port}/"
                f"{self.client_host}:{self.client_port}")


def peers_flag(hosts: list[NodeHost]) -> str:
    """The `--peers` value naming every node of the run."""
    return ",".join(host.peers_entry for host in hosts)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the ephemeral range
    (local_cluster.free_port)."""
    return free_port()


def loopback_hosts(nodes: int) -> list[NodeHost]:
    """Nodes as processes on 127.0.0.1, each with two free ports (no network faults possible)."""
    return [NodeHost(node_id, "127.0.0.1", free_loopback_port(), "127.0.0.1",
                     free_loopback_port())
            for node_id in range(1, nodes + 1)]
