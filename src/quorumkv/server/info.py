"""The INFO command's text: Redis 7.0's sections and fields where they apply, plus `# Quorumkv`.

Theory of operation. `render` gathers figures from the node (its host, transport, dispatcher,
client connections and statistics, server/stats.py) and from the process (/proc, getrusage)
and lays them out as Redis does: `# Section` headers, `field:value` lines, sections separated
by a blank line, CRLF line ends, in Redis's order. As Redis 7: no argument or `default` gives
the default sections, `all` adds commandstats, `everything` adds the node's own section
(`quorumkv`, as a Redis module's section), and section names (any case) may be combined with
these; an unknown name adds nothing.

Every figure is measured or is a fact about quorumkv (blocked_clients:0: it has no blocking
commands); a Redis figure that would have to be invented (RDB save times, a memory
fragmentation ratio) is left out. docs/server.md says what each figure means here.
"""

from __future__ import annotations

import os
import platform
import resource
import secrets
import struct
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import quorumkv
from quorumkv.cluster.metadata import METADATA_SHARD_ID
from quorumkv.host.shard_view import ReadView
from quorumkv.kv.keys import count_totals
from quorumkv.server.stats import system_memory_bytes

if TYPE_CHECKING:
    from quorumkv.server.node import ServerNode
    from quorumkv.server.resp_server import ClientServer

RUN_ID = secrets.token_hex(20)
"""Identifies this process (Redis's run_id): random at each start."""


def _human(size: int) -> str:
    """Bytes as Redis's bytesToHuman writes them (1.50M)."""
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{size}B" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1024
    return f"{size}B"


def _server(node: ServerNode, clients: ClientServer) -> list[str]:
    from quorumkv.server.commands import REDIS_VERSION

    now = time.time()
    uptime = int(now - node.started_at)
    address = node.config.client_address()
    config_file = node.config.config_file
    hz = max(1, 1000 // node.config.tick_ms)  # Raft ticks per second: the node's cron
    return [
        f"redis_version:{REDIS_VERSION.decode()}",
        "redis_mode:cluster",
        f"quorumkv_version:{quorumkv.__version__}",
        f"os:{platform.system()} {platform.release()} {platform.machine()}",
        f"arch_bits:{struct.calcsize('P') * 8}",
        f"python_version:{platform.python_version()}",
        f"process_id:{os.getpid()}",
        f"run_id:{RUN_ID}",
        f"tcp_port:{address.port}",
        f"server_time_usec:{int(now * 1_000_000)}",
        f"uptime_in_seconds:{uptime}",
        f"uptime_in_days:{uptime // 86400}",
        f"hz:{hz}",
        f"configured_hz:{hz}",
        f"executable:{os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ''}",
        f"config_file:{config_file.resolve() if config_file is not None else ''}",
        "io_threads_active:0",
    ]


def _clients(node: ServerNode, clients: ClientServer) -> list[str]:
    return [
        f"connected_clients:{len(clients.connections)}",
        f"maxclients:{clients.maxclients}",
        "blocked_clients:0",
        "tracking_clients:0",
    ]


def _memory(node: ServerNode, clients: ClientServer) -> list[str]:
    figures = clients.stats.memory()
    lines = []
    for name, key in (("used_memory", "used"), ("used_memory_rss", "rss"),
                      ("used_memory_peak", "peak")):
        if key in figures:
            lines += [f"{name}:{figures[key]}", f"{name}_human:{_human(figures[key])}"]
    total = system_memory_bytes()
    if total:
        lines += [f"total_system_memory:{total}",
                  f"total_system_memory_human:{_human(total)}"]
    return [*lines, "maxmemory:0", "maxmemory_human:0B", "maxmemory_policy:noeviction"]


def _persistence(node: ServerNode, clients: ClientServer) -> list[str]:
    return [
        "loading:0",
        "async_loading:0",
        "rdb_bgsave_in_progress:0",
        "aof_enabled:1",
        "aof_rewrite_in_progress:0",
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
    stats = clients.stats
    ops, input_kbps, output_kbps = stats.rates()
    return [
        f"total_connections_received:{stats.connections_received}",
        f"total_commands_processed:{stats.commands_processed}",
        f"instantaneous_ops_per_sec:{round(ops)}",
        f"total_net_input_bytes:{stats.net_input_bytes}",
        f"total_net_output_bytes:{stats.net_output_bytes}",
        f"instantaneous_input_kbps:{input_kbps:.2f}",
        f"instantaneous_output_kbps:{output_kbps:.2f}",
        f"rejected_connections:{stats.rejected_connections}",
        f"expired_keys:{stats.expired_keys}",
        "evicted_keys:0",
        "evicted_clients:0",
        f"keyspace_hits:{stats.keyspace_hits}",
        f"keyspace_misses:{stats.keyspace_misses}",
        "pubsub_channels:0",
        "pubsub_patterns:0",
        "total_forks:0",
        f"total_error_replies:{stats.error_replies}",
        f"total_reads_processed:{stats.reads_processed}",
        f"total_writes_processed:{stats.writes_processed}",
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
    """Every node accepts writes (role master); replication is Raft's, so no Redis replica is
    connected. The offset counts log entries applied here over every replica, not bytes."""
    applied = sum(int(str(status["applied"])) for status in node.host.status().values())
    return ["role:master", "connected_slaves:0", "master_failover_state:no-failover",
            f"master_repl_offset:{applied}"]


def _seconds(value: float) -> str:
    return f"{value:.6f}"


def _cpu(node: ServerNode, clients: ClientServer) -> list[str]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [
        f"used_cpu_sys:{_seconds(own.ru_stime)}",
        f"used_cpu_user:{_seconds(own.ru_utime)}",
        f"used_cpu_sys_children:{_seconds(children.ru_stime)}",
        f"used_cpu_user_children:{_seconds(children.ru_utime)}",
    ]
    if hasattr(resource, "RUSAGE_THREAD"):  # INFO runs on the event loop: the main thread
        main = resource.getrusage(resource.RUSAGE_THREAD)
        lines += [f"used_cpu_sys_main_thread:{_seconds(main.ru_stime)}",
                  f"used_cpu_user_main_thread:{_seconds(main.ru_utime)}"]
    return lines


def _modules(node: ServerNode, clients: ClientServer) -> list[str]:
    return []  # no modules can be loaded


def _commandstats(node: ServerNode, clients: ClientServer) -> list[str]:
    lines = []
    for name, entry in sorted(clients.stats.commands.items()):
        per_call = entry.usec / entry.calls if entry.calls else 0.0
        lines.append(f"cmdstat_{name.decode()}:calls={entry.calls},usec={entry.usec},"
                     f"usec_per_call={per_call:.2f},rejected_calls={entry.rejected_calls},"
                     f"failed_calls={entry.failed_calls}")
    return lines


def _errorstats(node: ServerNode, clients: ClientServer) -> list[str]:
    return [f"errorstat_{code.decode(errors='replace')}:count={count}"
            for code, count in sorted(clients.stats.errors.items())]


def _cluster(node: ServerNode, clients: ClientServer) -> list[str]:
    return ["cluster_enabled:1"]


def _keyspace(node: ServerNode, clients: ClientServer) -> list[str]:
    """Keys as this node has applied them (not a linearizable read; DBSIZE is one): how many,
    how many have an expiry, and the mean time those have left, in milliseconds."""
    figures = store_figures(node)
    keys, expires = figures.get("keys", 0), figures.get("expires", 0)
    if not keys:
        return []
    average_ttl = 0
    if expires:
        left_ms = figures.get("expiry_sum_ms", 0) - expires * int(time.time() * 1000)
        average_ttl = max(0, left_ms // expires)
    return [f"db0:keys={keys},expires={expires},avg_ttl={average_ttl}"]


def store_figures(node: ServerNode) -> dict[str, int]:
    """Figures read from the store: key count, each shard's first log index. The store is
    read only while no Ready cycle runs on the worker thread (host_gate.py); meanwhile the
    figures of the last read are reported."""
    if node.gate.busy:
        return node.last_store_figures
    store = node.host.store
    figures = {f"log_first_index_{s}": store.log(s).first_index() for s in node.host.shard_ids()}
    totals = [count_totals(ReadView(store.shard(s))) for s in node.host.shard_ids()
              if s != METADATA_SHARD_ID]  # the data shards hosted here
    figures["keys"] = sum(t.keys for t in totals)
    figures["expires"] = sum(t.expiring for t in totals)
    figures["expiry_sum_ms"] = sum(t.expiry_sum_ms for t in totals)
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


SECTIONS: dict[str, tuple[str, Callable[[ServerNode, ClientServer], list[str]]]] = {
    "server": ("Server", _server), "clients": ("Clients", _clients),
    "memory": ("Memory", _memory), "persistence": ("Persistence", _persistence),
    "stats": ("Stats", _stats), "replication": ("Replication", _replication),
    "cpu": ("CPU", _cpu), "modules": ("Modules", _modules),
    "commandstats": ("Commandstats", _commandstats), "errorstats": ("Errorstats", _errorstats),
    "cluster": ("Cluster", _cluster), "keyspace": ("Keyspace", _keyspace),
    "quorumkv": ("Quorumkv", _quorumkv),
}
"""Every section, in the order INFO lays them out (Redis's, then the node's own)."""

DEFAULT_SECTIONS = frozenset(SECTIONS) - {"commandstats", "quorumkv"}
ALL_SECTIONS = frozenset(SECTIONS) - {"quorumkv"}
_ALIASES = {"module_list": "modules"}


def sections_named(names: list[bytes]) -> set[str]:
    """The sections INFO's arguments ask for, as Redis 7 reads them."""
    if not names:
        return set(DEFAULT_SECTIONS)
    wanted: set[str] = set()
    for raw in names:
        name = raw.decode(errors="replace").lower()
        if name == "default":
            wanted |= DEFAULT_SECTIONS
        elif name == "all":
            wanted |= ALL_SECTIONS
        elif name == "everything":
            wanted |= set(SECTIONS)
        else:
            wanted.add(_ALIASES.get(name, name))
    return wanted


def render(node: ServerNode, clients: ClientServer, names: list[bytes]) -> bytes:
    """The INFO text for the sections named (see the module docstring)."""
    wanted = sections_named(names)
    blocks = []
    for name, (header, section) in SECTIONS.items():
        if name in wanted:
            blocks.append("\r\n".join(["# " + header, *section(node, clients)]))
    return ("\r\n\r\n".join(blocks) + "\r\n").encode() if blocks else b""
