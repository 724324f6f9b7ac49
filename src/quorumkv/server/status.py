"""`quorumkv status`: the cluster as its nodes report it, read over RESP (INFO quorumkv).

Theory of operation. One node's `INFO quorumkv` lists the cluster metadata it knows (one
`cluster_shard_N` line per shard: slots, replicas, preferred leader, epoch, observed leader)
and its peers' client addresses; every node's `INFO quorumkv` lists its own replicas (role,
leader, term, commit, applied), and its `INFO server` its process id (which process on the
machine is which node, e.g. under `quorumkv up`). `read_cluster` asks the first node, then every member it
names, and `render` lays the answers out as two tables: nodes, and shards with each replica's
term and applied index. A node that does not answer is shown as unreachable; nothing here
changes the cluster.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

STATUS_TIMEOUT_S = 2.0
"""How long `status` waits for one node's answer."""


def _request(host: str, port: int, *words: bytes) -> bytes:
    """One command over a fresh connection; the content of its bulk string reply. Raises
    OSError if the node does not answer, or answers something else."""
    with socket.create_connection((host, port), timeout=STATUS_TIMEOUT_S) as connection:
        connection.sendall(encode_command(*words))
        data = b""
        while not reply_complete(data):
            chunk = connection.recv(65536)
            if not chunk:
                raise OSError(f"{host}:{port} closed the connection")
            data += chunk
    header, _, rest = data.partition(b"\r\n")
    if header[:1] != b"$":
        raise OSError(f"{host}:{port} answered {data[:200]!r}")
    return rest[:int(header[1:])]


def encode_command(*words: bytes) -> bytes:
    """A command as a RESP array of bulk strings."""
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words)


def reply_complete(data: bytes) -> bool:
    """Whether `data` holds one whole reply: a line, or a bulk string (null included)."""
    header, separator, rest = data.partition(b"\r\n")
    if not separator:
        return False
    if header[:1] != b"$":
        return True
    length = int(header[1:])
    return length < 0 or len(rest) >= length + 2


def parse_info(text: str) -> dict[str, str]:
    """INFO text as field -> value (section headers and blank lines left out)."""
    fields = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and not name.startswith("#"):
            fields[name] = value
    return fields


def info_fields(host: str, port: int) -> dict[str, str]:
    """INFO server and quorumkv of one node, field -> value. Raises OSError if it does not
    answer."""
    reply = _request(host, port, b"INFO", b"server", b"quorumkv")
    return parse_info(reply.decode(errors="replace"))


def _items(value: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in value.split(",") if "=" in item)


@dataclass
class NodeReport:
    node_id: int
    address: str
    fields: dict[str, str] = field(default_factory=dict)
    reachable: bool = False

    def replica(self, shard_id: int) -> dict[str, str]:
        return _items(self.fields.get(f"shard_{shard_id}", ""))


@dataclass
class ClusterReport:
    shards: dict[int, dict[str, str]]
    nodes: dict[int, NodeReport]
    cluster_id: str
    epoch: str


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def read_cluster(address: str) -> ClusterReport:
    """Ask the node at `address`, then every member it lists. Raises OSError if the first
    node does not answer."""
    host, port = _split_address(address)
    first = info_fields(host, port)
    node_id = int(first.get("node_id", "0"))
    nodes = {node_id: NodeReport(node_id, address, first, True)}
    for name, value in first.items():
        if name.startswith("peer_"):
            peer = int(name[len("peer_"):])
            client = _items(value).get("client_address", "")
            nodes[peer] = NodeReport(peer, client)
    for report in nodes.values():
        if report.reachable or not report.address:
            continue
        try:
            report.fields = info_fields(*_split_address(report.address))
            report.reachable = True
        except (OSError, ValueError):
            pass
    shards = {int(name[len("cluster_shard_"):]): _items(value)
              for name, value in first.items() if name.startswith("cluster_shard_")}
    return ClusterReport(shards, nodes, first.get("cluster_id", ""),
                         first.get("cluster_epoch", "0"))


def render(report: ClusterReport, console: Console) -> None:
    """Two tables: the nodes, and the shards with each replica's term and applied index."""
    nodes = Table(title=f"cluster {report.cluster_id!r}, metadata epoch {report.epoch}")
    for column in ("node", "client address", "pid", "state", "replicas", "leads"):
        nodes.add_column(column)
    for node_id, node in sorted(report.nodes.items()):
        hosted = [s for s in report.shards if node.replica(s)]
        leads = [s for s in hosted if node.replica(s).get("role") == "leader"]
        nodes.add_row(str(node_id), node.address, node.fields.get("process_id", "?"),
                      "up" if node.reachable else "unreachable",
                      str(len(hosted)) if node.reachable else "?",
                      " ".join(map(str, sorted(leads))) if node.reachable else "?")
    console.print(nodes)
    shards = Table(title="shards")
    for column in ("shard", "slots", "leader", "preferred", "epoch", "replicas (term/applied)"):
        shards.add_column(column)
    for shard_id, shard in sorted(report.shards.items()):
        replicas = []
        for replica in shard.get("replicas", "").split():
            host = report.nodes.get(int(replica))
            status = host.replica(shard_id) if host is not None else {}
            replicas.append(f"{replica}: {status.get('term', '?')}/{status.get('applied', '?')}"
                            if status else f"{replica}: ?")
        shards.add_row(str(shard_id), shard.get("slots", "") or "(metadata)",
                       shard.get("leader", "0"), shard.get("preferred_leader", ""),
                       shard.get("epoch", ""), ", ".join(replicas))
    console.print(shards)
