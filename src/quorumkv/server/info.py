"""The INFO command's text: Redis's sections, plus a `# Quorumkv` section about Raft.

Theory of operation. `render` gathers figures from the node (its host, transport, dispatcher
and client connections) and lays them out as Redis does: `# Section` headers, `field:value`
lines, sections separated by a blank line, CRLF line ends. Sections asked for by name are
rendered in the order of `SECTIONS`; no name, `default`, `all` or `everything` renders all.
Figures Redis has and quorumkv does not (RDB saves, replication offsets) are reported with
the values a Redis in the same situation would report, so tools that parse INFO keep working.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import quorumkv
from quorumkv.cluster.metadata import METADATA_SHARD_ID
from quorumkv.host.shard_view import ReadView
from quorumkv.kv.keys import key_count

if TYPE_CHECKING:
    from quorumkv.server.node import ServerNode
    from quorumkv.server.resp_server import ClientServer


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _human(size: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.2f}{unit}" if unit != "B" else f"{size}B"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _server(node: ServerNode, clients: ClientServer) -> list[str]:
    from quorumkv.server.commands import REDIS_VERSION

    uptime = int(time.time() - node.started_at)
    address = node.config.client_address()
    return [
        f"redis_version:{REDIS_VERSION.decode()}",
        "redis_mode:cluster",
        f"quorumkv_version:{quorumkv.__version__}",
        f"os:{platform.system()} {platform.release()} {platform.machine()}",
        "arch_bits:64",
        f"python_version:{platform.python_version()}",
        f"process_id:{os.getpid()}",
        f"tcp_port:{address.port}",
        f"uptime_in_seconds:{uptime}",
        f"uptime_in_days:{uptime // 86400}",
        f"hz:{max(1, 1000 // node.config.tick_ms)}",
        f"executable:{sys.argv[0]}",
        f"config_file:{node.config.config_file or ''}",
    ]


def _clients(node: ServerNode, clients: ClientServer) -> list[str]:
    return [
        f"connected_clients:{len(clients.connections)}",
        f"maxclients:{node.config.client_connections_max}",
        "blocked_clients:0",
    ]


def _memory(node: ServerNode, clients: ClientServer) -> list[str]:
    resident = _resident_bytes()
    return [
        f"used_memory:{resident}",
        f"used_memory_human:{_human(resident)}",
        f"used_memory_rss:{resident}",
        f"used_memory_rss_human:{_human(resident)}",
        "maxmemory:0",
        "maxmemory_policy:noeviction",
    ]


def _persistence(node: ServerNode, clients: ClientServer) -> list[str]:
    return [
        "loading:0",
        "rdb_changes_since_last_save:0",
        "aof_enabled:0",
        "quorumkv_storage:rocksdb",
        f"quorumkv_fsync:{'always' if node.config.sync else 'never'}",
        f"quorumkv_data_dir:{node.config.data_dir}",
        *_disk_full(node),
    ]


def _disk_full(node: ServerNode) -> list[str]:
    """Whether a full disk stalls this node's writes, and since when (unix seconds; 0: not)."""
    since = node.host.disk_full_since_ms
    return [f"quorumkv_disk_full:{int(since is not None)}",
            f"quorumkv_disk_full_since:{since // 1000 if since is not None else 0}"]


def _stats(node: ServerNode, clients: ClientServer) -> list[str]:
    return [
        f"total_connections_received:{clients.accepted_total}",
        f"total_commands_processed:{clients.commands_total}",
        f"rejected_connections:{clients.rejected_total}",
        f"quorumkv_forwarded_commands:{node.dispatcher.forwarded_total}",
        f"quorumkv_served_forwards:{node.dispatcher.served_forwards}",
        f"quorumkv_request_timeouts:{node.dispatcher.timeouts}",
        f"quorumkv_ready_cycles:{node.gate.cycles}",
        f"quorumkv_ready_thread:{int(node.gate.threaded)}",
        f"quorumkv_disk_stalls:{node.gate.stalls}",
        f"quorumkv_dropped_peer_frames:{node.transport.dropped_frames()}",
        *(f"quorumkv_{name}:{value}" for name, value in node.host.snapshot_figures().items()),
    ]


def _replication(node: ServerNode, clients: ClientServer) -> list[str]:
    return ["role:master", "connected_slaves:0", "master_repl_offset:0"]


def _keyspace(node: ServerNode, clients: ClientServer) -> list[str]:
    """Keys as this node has applied them (not a linearizable read; DBSIZE is one)."""
    keys = store_figures(node).get("keys", 0)
    return [f"db0:keys={keys}"] if keys else []


def store_figures(node: ServerNode) -> dict[str, int]:
    """Figures read from the store: key count, each shard's first log index. The store is
    read only while no Ready cycle runs on the worker thread (host_gate.py); meanwhile the
    figures of the last read are reported."""
    if node.gate.busy:
        return node.last_store_figures
    store = node.host.store
    figures = {f"log_first_index_{s}": store.log(s).first_index() for s in node.host.shard_ids()}
    figures["keys"] = sum(key_count(ReadView(store.shard(s))) for s in node.host.shard_ids()
                          if s != METADATA_SHARD_ID)  # the data shards hosted here
    node.last_store_figures = figures
    return figures


def _quorumkv(node: ServerNode, clients: ClientServer) -> list[str]:
    membership = node.require_membership()
    lines = [
        f"node_id:{node.node_id}",
        f"cluster_id:{membership.cluster_id}",
        f"shards:{','.join(str(s) for s in node.host.shard_ids())}",
        *_cluster_lines(node),
    ]
    figures = store_figures(node)
    for shard_id, status in node.host.status().items():
        first_index = figures.get(f"log_first_index_{shard_id}", 0)
        lines.append(
            f"shard_{shard_id}:role={status['role']},leader={status['leader']},"
            f"term={status['term']},commit={status['commit']},applied={status['applied']},"
            f"log_first_index={first_index},"
            f"pending_proposals={status['pending_proposals']},"
            f"pending_reads={status['pending_reads']}")
    for peer, state in node.transport.status().items():
        entry = membership.peers.get(peer)
        client = entry.client_address if entry is not None else None
        lines.append(f"peer_{peer}:state={state},client_address={client or ''}")
    lines.append(f"tick_ms:{node.config.tick_ms}")
    lines.append(f"election_timeout_ticks:{node.config.election_timeout_ticks}")
    lines.append(f"read_only:{node.config.read_only}")
    lines.append(f"in_flight_commands:{node.dispatcher.in_flight()}")
    return lines


def _cluster_lines(node: ServerNode) -> list[str]:
    """The cluster metadata as this node knows it (cluster_epoch 0: not known yet)."""
    view = node.cluster.view
    if view is None:
        return ["cluster_epoch:0", f"client_routing:{node.config.client_routing}"]
    lines = [f"cluster_epoch:{view.metadata.cluster_epoch}",
             f"client_routing:{node.config.client_routing}",
             f"cluster_shards:{len(view.metadata.shards)}",
             f"leader_transfers_started:{node.cluster.transfers_started}"]
    for shard in view.metadata.shards.values():
        ranges = " ".join(f"{start}-{end}" for start, end in shard.slot_ranges)
        replicas = " ".join(str(r.node_id) for r in shard.replicas)
        lines.append(f"cluster_shard_{shard.shard_id}:slots={ranges},replicas={replicas},"
                     f"preferred_leader={shard.preferred_leader},epoch={shard.epoch},"
                     f"leader={view.leader_of(shard.shard_id)}")
    for shard_id, statistics in sorted(node.cluster.statistics.items()):
        lines.append(f"shard_statistics_{shard_id}:keys={statistics.keys},"
                     f"reads_per_second={statistics.reads_per_second:.1f},"
                     f"writes_per_second={statistics.writes_per_second:.1f}")
    return lines


SECTIONS: dict[str, Callable[[ServerNode, ClientServer], list[str]]] = {
    "server": _server, "clients": _clients, "memory": _memory, "persistence": _persistence,
    "stats": _stats, "replication": _replication, "keyspace": _keyspace,
    "quorumkv": _quorumkv,
}


def render(node: ServerNode, clients: ClientServer, names: list[bytes]) -> bytes:
    """The INFO text for the sections named (all of them if none, default, all, everything)."""
    wanted = {n.decode(errors="replace") for n in names}
    if not wanted or wanted & {"default", "all", "everything"}:
        wanted = set(SECTIONS)
    blocks = []
    for name, section in SECTIONS.items():
        if name in wanted:
            header = "# " + name.capitalize()
            blocks.append("\r\n".join([header, *section(node, clients)]))
    return ("\r\n\r\n".join(blocks) + "\r\n").encode()
