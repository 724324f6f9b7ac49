"""Where one client command runs: the routing decision of a node for one connection.

Theory of operation. `route(view, mode, client_routing, name, args)` decides, without doing
anything, what the node does with a data command (one in kv's command table), given its view
of the cluster (view.py) and the connection's mode:

- a *plain* connection is served whatever node it reached: a command whose keys all live on one
  shard runs there (`Local` if this node leads it, `Forward` to the leader, `NoLeader` while an
  election is on); MGET, DEL, EXISTS and UNLINK over several shards are split per shard and
  gathered (`SplitAcrossShards`, not atomic across shards); other multi-key commands over
  several shards (MSET, MSETNX, RENAME...) are refused until cross-shard transactions exist;
  keyless commands (DBSIZE, KEYS, FLUSHALL, RANDOMKEY) run on every shard and SCAN walks them
  all (`ScanStep`, scan_cursor.py);
- a *cluster* connection, one that issued READONLY or a CLUSTER topology command (SLOTS,
  SHARDS, NODES), or any connection when the node runs with `--client-routing redirect`, is
  treated as Redis Cluster treats its clients: keys in different slots are refused with
  -CROSSSLOT (even on one shard), a key whose shard this node does not lead is answered
  `-MOVED slot host:port` naming the leader, keyless commands concern this node only (the
  shards it leads), and after READONLY a read may run on a voting follower here (`Local`
  with `stale_read`: it may miss the latest writes), except a random draw (HRANDFIELD,
  SRANDMEMBER), which only the leader answers, seeded by its ReadIndex context;
- a slot no shard owns is answered -CLUSTERDOWN Hash slot not served.

A node learns the leaders of the shards it hosts from its own replicas. For a shard it does not
host and whose leader it has not heard of, it sends the command (or the client, with MOVED) to
the replica most likely to lead (`ClusterView.acting_leader`: the preferred leader), which
serves it or points onward to the leader it knows; only an election among its own replicas is
waited for (`NoLeader`).

The order of checks follows Redis: unknown command and arity first, then the first key's slot
(unassigned: CLUSTERDOWN), then the other keys' slots (CROSSSLOT), then the redirection.
Command-specific syntax is checked where the command runs, as in Redis.

ASKING is accepted and lasts one command, as in Redis; it changes nothing until slots can
migrate between shards (there is no importing slot to serve yet). `mode_after` gives the mode
a connection has after a command (READONLY, READWRITE, ASKING, CLUSTER SLOTS...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from quorumkv.cluster.fan_out import Gather, Part, same_command, split_keys
from quorumkv.cluster.metadata import ReplicaRole, Shard
from quorumkv.cluster.scan_cursor import ScanStep, plan_scan
from quorumkv.cluster.slots import key_slot
from quorumkv.cluster.view import ClusterView
from quorumkv.kv import commands as kv_commands
from quorumkv.kv.numbers import parse_cursor
from quorumkv.kv.reply import (
    INVALID_CURSOR,
    ErrorReply,
    Reply,
    arity_error,
    unknown_command_error,
)
from quorumkv.kv.scan import pattern_slot


class ClientRouting(enum.Enum):
    """The node's --client-routing setting."""

    AUTO = "auto"
    """Forward for plain connections; redirect connections that showed they route by slot."""
    REDIRECT = "redirect"
    """Treat every connection as a cluster client (MOVED, CROSSSLOT, per-node keyless)."""


@dataclass(frozen=True, slots=True)
class ConnectionMode:
    """What a connection has told the node about itself."""

    cluster_aware: bool = False
    readonly: bool = False
    asking: bool = False


PLAIN = ConnectionMode()

TOPOLOGY_SUBCOMMANDS = frozenset({b"SLOTS", b"SHARDS", b"NODES"})
"""CLUSTER subcommands only a client that routes by slot needs: they make it a cluster client."""


def mode_after(mode: ConnectionMode, name: bytes, args: tuple[bytes, ...]) -> ConnectionMode:
    """The connection's mode after it sent `name` (upper case) with `args`."""
    if name == b"READONLY":
        return ConnectionMode(cluster_aware=True, readonly=True)
    if name == b"READWRITE":
        return ConnectionMode(cluster_aware=mode.cluster_aware, readonly=False)
    if name == b"ASKING":
        return ConnectionMode(mode.cluster_aware, mode.readonly, asking=True)
    aware = mode.cluster_aware or (
        name == b"CLUSTER" and len(args) == 1 and args[0].upper() in TOPOLOGY_SUBCOMMANDS)
    if aware == mode.cluster_aware and not mode.asking:
        return mode  # the common case: nothing changes, nothing is allocated
    return ConnectionMode(aware, mode.readonly, asking=False)


# ---- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Local:
    """Run on this node's replica of the shard. `stale_read`: a READONLY client's read that
    may be answered from this replica's applied state without asking the leader."""

    shard_id: int
    stale_read: bool = False


@dataclass(frozen=True, slots=True)
class Forward:
    """Run at the shard's leader, on another node, and relay its reply."""

    shard_id: int
    leader_node_id: int


@dataclass(frozen=True, slots=True)
class NoLeader:
    """The shard has no known leader: wait for an election (bounded), then route again."""

    shard_id: int


@dataclass(frozen=True, slots=True)
class Moved:
    """Answer -MOVED: the slot is served at `address` (host:port of the shard's leader)."""

    slot: int
    address: str

    @property
    def reply(self) -> ErrorReply:
        return ErrorReply(b"MOVED %d %b" % (self.slot, self.address.encode()))


@dataclass(frozen=True, slots=True)
class CrossSlot:
    """Answer -CROSSSLOT: a cluster client's keys are in different slots."""

    @property
    def reply(self) -> ErrorReply:
        return CROSSSLOT_REPLY


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer `reply` at once (refusals, CLUSTERDOWN, a finished SCAN, an arity error)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class SplitAcrossShards:
    """Run every part at its shard, then combine the replies with fan_out.gather(gather, ...).
    No parts: answer fan_out.gather(gather, (), ()) at once."""

    parts: tuple[Part, ...]
    gather: Gather


Decision: TypeAlias = (Local | Forward | NoLeader | Moved | CrossSlot | Answer
                       | SplitAcrossShards | ScanStep)

CROSSSLOT_REPLY = ErrorReply(b"CROSSSLOT Keys in request don't hash to the same slot")
SLOT_NOT_SERVED = ErrorReply(b"CLUSTERDOWN Hash slot not served")
CLUSTER_DOWN = ErrorReply(b"CLUSTERDOWN The cluster is down")
"""For a node that does not know the cluster metadata yet."""

SPLITTABLE: dict[bytes, Gather] = {
    b"MGET": Gather.BY_POSITION, b"DEL": Gather.SUM, b"UNLINK": Gather.SUM,
    b"EXISTS": Gather.SUM,
}
"""Multi-key commands a plain client may send over several shards (each key independent)."""

KEYLESS: dict[bytes, Gather] = {
    b"DBSIZE": Gather.SUM, b"KEYS": Gather.CONCATENATE, b"FLUSHALL": Gather.ALL_OK,
    b"FLUSHDB": Gather.ALL_OK, b"RANDOMKEY": Gather.FIRST_NON_NULL,
}
"""Keyless commands run on every shard in scope (SCAN walks them instead)."""


# ---- routing ----------------------------------------------------------------------------------


def route(view: ClusterView, mode: ConnectionMode, client_routing: ClientRouting,
          name: bytes, args: tuple[bytes, ...], choice: int = 0) -> Decision:
    """The decision for data command `name` (upper case) with `args` on this node.
    RANDOMKEY starts at the shard `choice` (any integer drawn at random) designates."""
    spec = kv_commands.command_spec(name)
    if spec is None:
        return Answer(unknown_command_error(name, args))
    if not spec.arity_ok(len(args)):
        return Answer(arity_error(name))
    cluster_client = mode.cluster_aware or client_routing is ClientRouting.REDIRECT
    keys = kv_commands.keys_of(name, args)
    if not keys:
        return _keyless(view, cluster_client, name, args, choice)
    if cluster_client:
        return _redirect(view, mode, name, keys)
    return _serve(view, name, keys)


def _redirect(view: ClusterView, mode: ConnectionMode, name: bytes,
              keys: list[bytes]) -> Decision:
    """Redis Cluster's rules for a client that routes by slot."""
    slot = key_slot(keys[0])
    shard = view.shard_of_slot(slot)
    if shard is None:
        return Answer(SLOT_NOT_SERVED)
    if any(key_slot(key) != slot for key in keys[1:]):
        return CrossSlot()
    leader = view.leader_of(shard.shard_id)
    if leader == view.node_id:
        return Local(shard.shard_id)
    if mode.readonly and not kv_commands.is_write(name) and not kv_commands.is_random_read(
            name) and _voter_here(view, shard):
        return Local(shard.shard_id, stale_read=True)
    target = _leader_or_guess(view, shard)
    member = view.member(target) if target else None
    if member is None:
        return NoLeader(shard.shard_id)
    return Moved(slot, member.client_address)


def _voter_here(view: ClusterView, shard: Shard) -> bool:
    """Whether this node has a voting replica of `shard` (a learner may still be receiving
    its first snapshot: it does not serve reads)."""
    replica = shard.replica_on(view.node_id)
    return replica is not None and replica.role is ReplicaRole.VOTER


def _leader_or_guess(view: ClusterView, shard: Shard) -> int:
    """The shard's leader if known; else, when no replica here will learn it, the replica
    most likely to lead (view.acting_leader), which serves the command or points onward.
    0 when an election among this node's own replicas must be awaited."""
    leader = view.leader_of(shard.shard_id)
    if leader and view.member(leader) is not None:
        return leader
    return 0 if view.hosts(shard) else view.acting_leader(shard)


def _serve(view: ClusterView, name: bytes, keys: list[bytes]) -> Decision:
    """A plain client's keyed command: run it wherever its keys' shards are."""
    shards: list[Shard] = []
    for key in keys:
        shard = view.shard_of_slot(key_slot(key))
        if shard is None:
            return Answer(SLOT_NOT_SERVED)
        shards.append(shard)
    first = shards[0]
    if all(shard is first for shard in shards[1:]):
        return _at_shard(view, first)
    gather = SPLITTABLE.get(name)
    if gather is None:
        return Answer(_cross_shard_refusal(name))
    return SplitAcrossShards(split_keys(name, keys, [s.shard_id for s in shards]), gather)


def _at_shard(view: ClusterView, shard: Shard) -> Decision:
    if view.leader_of(shard.shard_id) == view.node_id:
        return Local(shard.shard_id)
    target = _leader_or_guess(view, shard)
    return Forward(shard.shard_id, target) if target else NoLeader(shard.shard_id)


def _cross_shard_refusal(name: bytes) -> ErrorReply:
    return ErrorReply(
        b"CROSSSLOT Keys in request don't hash to the same shard: %b needs all its keys on one "
        b"shard and quorumkv has no cross-shard transactions yet; give the keys one {hash tag} "
        b"to keep them together" % name)


def _keyless(view: ClusterView, cluster_client: bool, name: bytes, args: tuple[bytes, ...],
             choice: int) -> Decision:
    """Every serving shard for a plain client; the shards this node leads for a cluster
    client (Redis Cluster answers these per node)."""
    shards = view.led_here() if cluster_client else view.serving_shards()
    if name == b"SCAN":
        return _scan(view, shards, args)
    gather = KEYLESS.get(name)
    if gather is None:
        return Answer(ErrorReply(b"ERR %b is not supported on a partitioned cluster" % name))
    if name == b"KEYS":
        shards = _pinned(view, shards, args[0])
    shard_ids = [shard.shard_id for shard in shards]
    if name == b"RANDOMKEY" and shard_ids:
        start = choice % len(shard_ids)
        shard_ids = shard_ids[start:] + shard_ids[:start]
    return SplitAcrossShards(same_command(name, args, shard_ids), gather)


def _pinned(view: ClusterView, shards: list[Shard], pattern: bytes) -> list[Shard]:
    """The shards of `shards` that can hold keys matching `pattern`: only the owner of the
    pattern's slot when its hash tag fixes it (kv.scan.pattern_slot)."""
    slot = None if pattern == b"*" else pattern_slot(pattern)
    if slot is None:
        return shards
    owner = view.shard_of_slot(slot)
    return [shard for shard in shards if shard is owner]


def _scan(view: ClusterView, shards: list[Shard], args: tuple[bytes, ...]) -> Decision:
    cursor = parse_cursor(args[0])
    if cursor is None:
        return Answer(INVALID_CURSOR)
    pattern = None
    for index in range(1, len(args) - 1, 2):  # as kv's SCAN reads them: the last MATCH wins
        if args[index].upper() == b"MATCH":
            pattern = args[index + 1]
    if pattern is not None:
        shards = _pinned(view, shards, pattern)
    step = plan_scan(cursor, [shard.shard_id for shard in shards], args)
    return Answer([b"0", []]) if step is None else step
