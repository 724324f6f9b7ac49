"""The Redis Cluster protocol's view of quorumkv: the replies of the CLUSTER command.

Theory of operation. Cluster-aware clients (redis-py's RedisCluster, redis-cli -c, go-redis,
Jedis, redis-benchmark --cluster) learn the topology from CLUSTER SLOTS, CLUSTER SHARDS or
CLUSTER NODES, in the formats of Redis 7, and route every key themselves. quorumkv maps its
model onto Redis's:

- a Redis node is a quorumkv node, named by a stable 40-hex-digit id derived from the cluster
  id and the node id (`node_name`), reached at its client address;
- a slot range's master is its shard's leader (as this node observes it; during an election,
  the shard's preferred leader or first voter stands in, and a client sent there is forwarded
  or redirected once the election ends); its replicas are the shard's other voters that are
  not known to be down; learners show in CLUSTER SHARDS only, with health "loading";
- in CLUSTER NODES a node is a master when it leads at least one shard (its slots are those
  of every shard it leads), otherwise a slave of the leader of the first shard it follows.

A quorumkv node leads some shards and follows others, which no Redis node does. Clients that
keep one role per address (redis-py keeps the role it first reads in CLUSTER SLOTS and sends
SCAN, FLUSHALL... to the nodes it thinks are masters) must meet every leading node as a master
first: CLUSTER SLOTS therefore lists first one range of each leading node, and leaves out of
those first entries the replicas that have not appeared as a master yet. Every later entry
lists all replicas. Redis itself does not order CLUSTER SLOTS by slot either.

Replies are kv.reply values, so the server's codec writes them in RESP2 or RESP3 (CLUSTER
SHARDS as maps, CLUSTER NODES and CLUSTER INFO as verbatim text, as Redis 7 does).
COUNTKEYSINSLOT and GETKEYSINSLOT need a shard's data: `cluster_command` answers them with a
`SlotRead` for the server to run as a read on the shard owning the slot (the data state
machine answers it with `count_keys_in_slot` / `keys_in_slot`, state_machines.py).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from quorumkv import limits
from quorumkv.cluster.metadata import METADATA_SHARD_ID, ReplicaRole, Shard, parse_address
from quorumkv.cluster.slot_ranges import format_ranges, slot_total
from quorumkv.cluster.slots import SLOT_COUNT, key_slot
from quorumkv.cluster.view import ClusterView, SlotHealth
from quorumkv.kv import layout
from quorumkv.kv.numbers import parse_integer
from quorumkv.kv.reply import (
    NOT_AN_INTEGER,
    ErrorReply,
    Map,
    Reply,
    SimpleString,
    VerbatimString,
    arity_error,
)
from quorumkv.kv.store import KeyValueStore

COUNT_KEYS_IN_SLOT = b"QKV.COUNTKEYSINSLOT"
"""Internal read of a data shard: keys stored in one slot."""

GET_KEYS_IN_SLOT = b"QKV.GETKEYSINSLOT"
"""Internal read of a data shard: up to N keys stored in one slot."""


@functools.lru_cache(maxsize=4096)
def node_name(cluster_id: str, node_id: int) -> str:
    """The 40-hex-digit name Redis clients know node `node_id` by, stable for the cluster."""
    return hashlib.sha1(f"quorumkv:{cluster_id}:{node_id}".encode()).hexdigest()


def _name(view: ClusterView, node_id: int) -> bytes:
    return node_name(view.metadata.cluster_id, node_id).encode()


def _endpoint(view: ClusterView, node_id: int) -> tuple[bytes, int]:
    member = view.member(node_id)
    address = None if member is None else parse_address(member.client_address)
    return (b"", 0) if address is None else (address[0].encode(), address[1])


def _followers(view: ClusterView, shard: Shard, leader: int) -> list[int]:
    """The shard's voters other than `leader` that are not known to be down, by node id."""
    return [r.node_id for r in shard.voters()
            if r.node_id != leader and r.node_id not in view.down_nodes]


# ---- CLUSTER SLOTS ----------------------------------------------------------------------------


def cluster_slots(view: ClusterView) -> Reply:
    """CLUSTER SLOTS: [start, end, master, replica...] per slot range; each node is
    [host, port, name, {}] (Redis 7). Ordered so that every leading node is first met as a
    master (see the module docstring)."""
    entries = [(slot_range, shard, view.acting_leader(shard))
               for shard in view.serving_shards() for slot_range in shard.slot_ranges]
    entries.sort(key=lambda entry: entry[0].start)
    primaries = {leader for _, _, leader in entries}
    first: dict[int, int] = {}
    for index, (_, _, leader) in enumerate(entries):
        first.setdefault(leader, index)
    leading = set(first.values())
    ordered = [entries[i] for i in first.values()] + [
        entry for i, entry in enumerate(entries) if i not in leading]
    seen: set[int] = set()
    reply: list[Reply] = []
    for slot_range, shard, leader in ordered:
        seen.add(leader)
        replicas = [node for node in _followers(view, shard, leader)
                    if node in seen or node not in primaries]
        reply.append([slot_range.start, slot_range.end,
                      *(_slots_node(view, node) for node in (leader, *replicas))])
    return reply


def _slots_node(view: ClusterView, node_id: int) -> Reply:
    host, port = _endpoint(view, node_id)
    return [host, port, _name(view, node_id), Map([])]


# ---- CLUSTER SHARDS ---------------------------------------------------------------------------


def cluster_shards(view: ClusterView) -> Reply:
    """CLUSTER SHARDS: a map per data shard with its "slots" (flat start, end pairs) and its
    "nodes" (the leader first, as master, then the other replicas)."""
    reply: list[Reply] = []
    for shard in view.metadata.data_shards():
        leader = view.acting_leader(shard)
        others = [r for r in shard.replicas if r.node_id != leader]
        nodes: list[Reply] = [_shard_node(view, shard, leader, b"master", False)]
        nodes += [_shard_node(view, shard, r.node_id, b"replica",
                              r.role is ReplicaRole.LEARNER) for r in others]
        slots: list[Reply] = [bound for r in shard.slot_ranges for bound in (r.start, r.end)]
        reply.append(Map([(b"slots", slots), (b"nodes", nodes)]))
    return reply


def _shard_node(view: ClusterView, shard: Shard, node_id: int, role: bytes,
                learner: bool) -> Reply:
    host, port = _endpoint(view, node_id)
    health = b"failed" if node_id in view.down_nodes else b"loading" if learner else b"online"
    return Map([
        (b"id", _name(view, node_id)), (b"port", port), (b"ip", host), (b"endpoint", host),
        (b"role", role),
        (b"replication-offset", view.applied_indexes.get((shard.shard_id, node_id), 0)),
        (b"health", health),
    ])


# ---- CLUSTER NODES ----------------------------------------------------------------------------


def cluster_nodes(view: ClusterView, now_ms: int) -> Reply:
    """CLUSTER NODES: one line per member, in Redis's format:
    <name> <host:port@peer-port> <flags> <master name|-> <ping-sent> <pong-received>
    <config-epoch> <link-state> <slot ranges...>."""
    led: dict[int, list[Shard]] = {}
    for shard in view.serving_shards():
        led.setdefault(view.acting_leader(shard), []).append(shard)
    lines = [_node_line(view, node_id, led, now_ms) for node_id in sorted(view.metadata.members)]
    return VerbatimString(b"txt", b"".join(line + b"\n" for line in lines))


def _node_line(view: ClusterView, node_id: int, led: dict[int, list[Shard]],
               now_ms: int) -> bytes:
    member = view.metadata.members[node_id]
    host, port = _endpoint(view, node_id)
    peer = parse_address(member.peer_address)
    myself, down = node_id == view.node_id, node_id in view.down_nodes
    shards = led.get(node_id, [])
    master = b"-" if shards else _master_of(view, node_id, led)
    flags = [b"master" if master == b"-" else b"slave"]
    if myself:
        flags.insert(0, b"myself")
    if down:
        flags.append(b"fail")
    epoch = max((shard.epoch for shard in shards), default=0)
    slots = format_ranges(r for shard in shards for r in shard.slot_ranges).encode()
    fields = [_name(view, node_id), b"%b:%d@%d" % (host, port, peer[1] if peer else 0),
              b",".join(flags), master, b"0", b"0" if myself or down else b"%d" % now_ms,
              b"%d" % epoch, b"disconnected" if down else b"connected"]
    return b" ".join(fields + ([slots] if slots else []))


def _master_of(view: ClusterView, node_id: int, led: dict[int, list[Shard]]) -> bytes:
    """The name of the leader of the first shard `node_id` follows, or "-" if none."""
    for leader, shards in sorted(led.items()):
        if any(shard.replica_on(node_id) is not None for shard in shards):
            return _name(view, leader)
    return b"-"


# ---- CLUSTER INFO -----------------------------------------------------------------------------


def cluster_info(view: ClusterView | None) -> Reply:
    """CLUSTER INFO: Redis's fields, one "name:value" per line. As in Redis, the state is
    `fail` when a slot is unassigned or has failed (here: its shard has no quorum from this
    node, view.SlotHealth); slots merely suspected (pfail) leave it `ok`. A node that does
    not know the metadata yet (no view) knows no slot: `fail`, every count 0."""
    counts = dict.fromkeys(SlotHealth, 0)
    if view is None:
        return _info_text(counts, known_nodes=0, size=0, current_epoch=0, my_epoch=0)
    for shard in view.serving_shards():
        counts[view.slot_health(shard)] += slot_total(shard.slot_ranges)
    masters = {view.acting_leader(shard) for shard in view.serving_shards()}
    my_epoch = max((s.epoch for s in view.led_here()), default=0)
    return _info_text(counts, len(view.metadata.members), len(masters),
                      view.metadata.cluster_epoch, my_epoch)


def _info_text(counts: dict[SlotHealth, int], known_nodes: int, size: int,
               current_epoch: int, my_epoch: int) -> Reply:
    assigned = sum(counts.values())
    fail = counts[SlotHealth.FAIL]
    fields = [
        ("cluster_state", "ok" if assigned == SLOT_COUNT and not fail else "fail"),
        ("cluster_slots_assigned", assigned), ("cluster_slots_ok", counts[SlotHealth.OK]),
        ("cluster_slots_pfail", counts[SlotHealth.PFAIL]), ("cluster_slots_fail", fail),
        ("cluster_known_nodes", known_nodes), ("cluster_size", size),
        ("cluster_current_epoch", current_epoch), ("cluster_my_epoch", my_epoch),
        ("cluster_stats_messages_sent", 0), ("cluster_stats_messages_received", 0),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ]
    return VerbatimString(b"txt", "".join(f"{k}:{v}\r\n" for k, v in fields).encode())


# ---- keys in a slot ---------------------------------------------------------------------------


def count_keys_in_slot(store: KeyValueStore, slot: int) -> int:
    """Keys a data shard stores in `slot` (expired ones not yet deleted included, as Redis)."""
    raw = store.get(layout.COUNT_PREFIX + slot.to_bytes(2, "big"))
    return 0 if raw is None else layout.decode_count(raw)


def keys_in_slot(store: KeyValueStore, slot: int, count: int) -> list[bytes]:
    """Up to `count` (at most limits.get_keys_in_slot_max) keys a data shard stores in
    `slot`, in stored order."""
    wanted = min(count, limits.get_keys_in_slot_max)
    start, end = layout.slot_range(slot)
    keys: list[bytes] = []
    while len(keys) < wanted:
        rows = store.scan(start, end, min(wanted - len(keys), limits.store_page_records_max))
        keys.extend(layout.user_key(stored_key) for stored_key, _ in rows)
        if not rows:
            break
        start = rows[-1][0] + b"\0"
    return keys


# ---- the CLUSTER command ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotRead:
    """Run the internal read `name` `args` on shard `shard_id` (at its leader) and answer its
    reply as is."""

    shard_id: int
    name: bytes
    args: tuple[bytes, ...]


_UNSUPPORTED = frozenset({
    b"ADDSLOTS", b"ADDSLOTSRANGE", b"DELSLOTS", b"DELSLOTSRANGE", b"FLUSHSLOTS", b"SETSLOT",
    b"MEET", b"FORGET", b"REPLICATE", b"FAILOVER", b"RESET", b"SAVECONFIG", b"BUMPEPOCH",
    b"SET-CONFIG-EPOCH", b"COUNT-FAILURE-REPORTS", b"LINKS", b"MYSHARDID", b"REPLICAS",
    b"SLAVES",
})

_HELP = (
    b"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"COUNTKEYSINSLOT <slot>", b"    Return the number of keys in <slot>.",
    b"GETKEYSINSLOT <slot> <count>", b"    Return key names stored in <slot>.",
    b"INFO", b"    Return information about the cluster.",
    b"KEYSLOT <key>", b"    Return the hash slot for <key>.",
    b"MYID", b"    Return the node id.",
    b"NODES", b"    Return cluster configuration seen by node.",
    b"SHARDS", b"    Return information about slot range mappings and the nodes serving them.",
    b"SLOTS", b"    Return information about slots range mappings.",
    b"HELP", b"    Print this help.",
)

_ARITY = {b"INFO": 0, b"MYID": 0, b"NODES": 0, b"SHARDS": 0, b"SLOTS": 0, b"HELP": 0,
          b"KEYSLOT": 1, b"COUNTKEYSINSLOT": 1, b"GETKEYSINSLOT": 2}


def cluster_command(view: ClusterView, args: tuple[bytes, ...],
                    now_ms: int) -> Reply | SlotRead:
    """The reply to CLUSTER `args` (args[0] is the subcommand), or the SlotRead to run."""
    if not args:
        return arity_error(b"CLUSTER")
    subcommand, rest = args[0].upper(), args[1:]
    if subcommand in _UNSUPPORTED:
        return ErrorReply(b"ERR CLUSTER %b is not supported: quorumkv assigns slots, replicas "
                          b"and leaders itself (see quorumkv status)" % subcommand)
    arity = _ARITY.get(subcommand)
    if arity is None:
        return ErrorReply(b"ERR unknown subcommand '%b'. Try CLUSTER HELP." % args[0][:128])
    if len(rest) != arity:
        return arity_error(b"cluster|" + subcommand)
    if subcommand == b"KEYSLOT":
        return key_slot(rest[0])
    if subcommand in (b"COUNTKEYSINSLOT", b"GETKEYSINSLOT"):
        return _slot_read(view, subcommand, rest)
    return _topology(view, subcommand, now_ms)


def _topology(view: ClusterView, subcommand: bytes, now_ms: int) -> Reply:
    if subcommand == b"SLOTS":
        return cluster_slots(view)
    if subcommand == b"SHARDS":
        return cluster_shards(view)
    if subcommand == b"NODES":
        return cluster_nodes(view, now_ms)
    if subcommand == b"INFO":
        return cluster_info(view)
    if subcommand == b"MYID":
        return _name(view, view.node_id)
    return [SimpleString(line) for line in _HELP]


def _slot_read(view: ClusterView, subcommand: bytes, rest: tuple[bytes, ...]) -> Reply | SlotRead:
    numbers = [number for text in rest if (number := parse_integer(text)) is not None]
    if len(numbers) != len(rest):
        return NOT_AN_INTEGER
    slot, count = numbers[0], numbers[-1]
    if not 0 <= slot < SLOT_COUNT or count < 0:
        return ErrorReply(b"ERR Invalid slot" if subcommand == b"COUNTKEYSINSLOT"
                          else b"ERR Invalid slot or number of keys")
    shard = view.shard_of_slot(slot)
    if shard is None or shard.shard_id == METADATA_SHARD_ID:
        return 0 if subcommand == b"COUNTKEYSINSLOT" else []
    if subcommand == b"COUNTKEYSINSLOT":
        return SlotRead(shard.shard_id, COUNT_KEYS_IN_SLOT, (b"%d" % slot,))
    return SlotRead(shard.shard_id, GET_KEYS_IN_SLOT, (b"%d" % slot, b"%d" % count))

