"""The node's view of the partitioned cluster: bootstrap, the metadata of shard 0, leaders.

Theory of operation. The pure half (quorumkv.cluster) decides; this module keeps its inputs
current on one node, on the event loop thread:

- Bootstrap. On the very first start every node computes the same plan
  (`place_shards(members, --shards, --replication-factor)`; members in node-id order), keeps
  it in its store (`cluster_plan`, the encoded BootstrapCluster command) and bootstraps the
  replicas the plan puts on it. Until the node knows the metadata it proposes the plan to
  shard 0 every `metadata_poll_interval_ticks` (identical proposals answer +OK: the first one
  applied wins, the rest change nothing). A crash between the plan and the bootstraps is
  repaired at the next start, from the stored plan.
- Metadata. A node hosting a replica of shard 0 reloads the metadata from it after each Ready
  cycle that advanced shard 0's applied index; a node without one reads it from shard 0's
  leader (`QKV.METADATA-READ`) every poll interval, keeps the last copy in its store
  (`cluster_metadata`, as Redis keeps nodes.conf) and is handed the metadata by every peer
  it connects to (`greeting`, `offer`). So a restarted node knows the slot map before it
  listens for clients (from its replica or its copy) and learns anything newer one round
  trip after it reaches a peer. The view only moves forward: metadata older than the
  view's cluster epoch is ignored, whatever its source.
- Leaders. For shards hosted here, the host's replicas know their leader; for the others, the
  leader named by the last forwarded command's answer (`Dispatcher.learned_leaders`), else the
  shard's preferred leader (`ClusterView.acting_leader`). `observe()` (every tick) rebuilds the
  view only when leaders or reachable peers changed, so CLUSTER replies follow an election
  within a tick of this node learning of it.
- Statistics. Every `shard_statistics_interval_ticks`, between Ready cycles, each shard this
  node leads is sampled (`ShardSample`: its key count, the reads and writes this node ran as
  its leader) and `statistics` holds each one's `ShardStatistics` (keys, reads/s, writes/s)
  against the previous sample, for later placement decisions (bytes are not measured yet: 0).
- Preferred leaders. Every `leader_balance_interval_ticks`, the shards this node leads whose
  preferred leader is another reachable voter are handed over (`leader_transfers`, at most
  `leader_transfers_per_round_max` per round), which spreads leaders evenly over the nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from quorumkv import errors, limits
from quorumkv.cluster.metadata import (
    METADATA_SHARD_ID,
    ClusterMetadata,
    Member,
    Shard,
    decode_metadata,
    encode_metadata,
    make_member,
)
from quorumkv.cluster.metadata_commands import (
    METADATA_WRITE,
    BootstrapCluster,
    decode_metadata_command,
    encode_metadata_command,
)
from quorumkv.cluster.metadata_state_machine import METADATA_READ, load_metadata
from quorumkv.cluster.placement import leader_transfers, place_shards
from quorumkv.cluster.shard_statistics import ShardSample, ShardStatistics, statistics_between
from quorumkv.cluster.state_machines import DATA, METADATA
from quorumkv.cluster.view import ClusterView
from quorumkv.codec.peer import ClusterMetadataPush, PeerRecord
from quorumkv.host.host import Host
from quorumkv.host.shard_view import ReadView
from quorumkv.kv.keys import key_count
from quorumkv.kv.reply import ErrorReply, Reply
from quorumkv.server.config import DEFAULT_CLIENT_PORT, Address, ServerConfig
from quorumkv.server.membership import Membership
from quorumkv.storage.protocols import NodeStore

log = logging.getLogger("quorumkv.cluster")

CLUSTER_PLAN_META = "cluster_plan"
"""Node metadata key of the bootstrap plan (an encoded BootstrapCluster command)."""

CLUSTER_METADATA_META = "cluster_metadata"
"""Node metadata key of the last cluster metadata learned from peers (encode_metadata), kept
by nodes hosting no replica of shard 0."""

Submit = Callable[[int, bytes, tuple[bytes, ...], Callable[[Reply], None]], None]


def validate_command(name: bytes, args: tuple[bytes, ...]) -> ErrorReply | None:
    """The dispatcher's check before a command leaves this node, for any shard's commands."""
    if name in (METADATA_WRITE, METADATA_READ):
        return METADATA.validate(name, args)
    return DATA.validate(name, args)


def is_write_command(name: bytes) -> bool:
    return name == METADATA_WRITE or DATA.is_write(name)


def plan_members(membership: Membership, config: ServerConfig) -> list[Member]:
    """The members of the initial cluster, from the peers list (a peer without a client
    address is taken to listen for clients on its peer host at the default client port)."""
    members = []
    for node_id, entry in sorted(membership.peers.items()):
        client = entry.client_address
        if node_id == membership.node_id:
            client = config.client_address()
        if client is None:
            client = Address(entry.peer_address.host, DEFAULT_CLIENT_PORT)
        members.append(make_member(node_id, str(client), str(entry.peer_address)))
    return members


def bootstrap_plan(membership: Membership, config: ServerConfig) -> BootstrapCluster:
    """The plan every node of the initial cluster computes identically. Raises
    errors.InvalidPlacement for a shard count or replication factor that cannot be placed."""
    members = plan_members(membership, config)
    shards = place_shards(members, config.shards or None, config.replication_factor or None)
    return BootstrapCluster(membership.cluster_id, tuple(members), tuple(shards))


class ClusterState:
    """The cluster as this node knows it: `view` (None until the metadata is known)."""

    def __init__(self, node_id: int, host: Host, submit: Submit,
                 transfer_leader: Callable[[int, int], None],
                 is_connected: Callable[[int], bool]) -> None:
        self.node_id = node_id
        self.host = host
        self.submit = submit
        self.transfer_leader = transfer_leader
        self.is_connected = is_connected
        self.learned_leaders: dict[int, int] = {}  # the dispatcher's, once it exists
        self.view: ClusterView | None = None
        self._encoded = b""  # the view's metadata, encoded (what `greeting` hands peers)
        self._unsaved: bytes | None = None  # learned from a peer, not yet in the store
        self.cluster_id = ""
        self.plan: BootstrapCluster | None = None
        self._plan_shards: dict[int, Shard] = {}
        self._metadata_applied = -1
        self._request_pending = False
        self._ticks = 0
        self._next_request_tick = 1
        self.transfers_started = 0
        self.statistics: dict[int, ShardStatistics] = {}
        self._samples: dict[int, ShardSample] = {}

    # ---- start -------------------------------------------------------------------------------

    def start(self, store: NodeStore, membership: Membership, config: ServerConfig) -> None:
        """Load or make the bootstrap plan; bootstrap the replicas it puts here on the first
        start (the store holds no shard yet)."""
        self.cluster_id = membership.cluster_id
        stored = store.get_meta(CLUSTER_PLAN_META)
        first_start = not store.shard_ids()
        plan: BootstrapCluster | None
        if stored is None and first_start:
            plan = bootstrap_plan(membership, config)
            store.put_meta(CLUSTER_PLAN_META, encode_metadata_command(plan))
        elif stored is not None:
            decoded = decode_metadata_command(stored)
            plan = decoded if isinstance(decoded, BootstrapCluster) else None
        else:
            plan = None  # a data directory from before partitioning: metadata from shard 0
        self.plan = plan
        if plan is not None:
            self._plan_shards = {shard.shard_id: shard for shard in plan.shards}
        if first_start and plan is not None:
            hosted = [s for s in plan.shards if s.replica_on(self.node_id) is not None]
            for shard in hosted:
                self.host.bootstrap_shard(shard.shard_id,
                                          [r.node_id for r in shard.voters()])
            log.info("node %d: bootstrapped %d shard replicas (%s) of %d shards",
                     self.node_id, len(hosted), [s.shard_id for s in hosted],
                     len(plan.shards))

    # ---- the metadata ------------------------------------------------------------------------

    def hosts_metadata(self) -> bool:
        return METADATA_SHARD_ID in self.host.shard_ids()

    def recall(self) -> None:
        """Install the metadata this node already has, before it listens for clients (call
        after host.start): its replica of shard 0's, else the copy it kept from its peers."""
        if self.hosts_metadata():
            self.after_cycles()
            return
        stored = self.host.store.get_meta(CLUSTER_METADATA_META)
        if stored is not None:
            self.offer(stored, "the copy kept in its store", keep=False)

    def after_cycles(self) -> None:
        """Reload the metadata if shard 0 applied something, or keep a copy learned from a
        peer (call between Ready cycles: it uses the store)."""
        if self._unsaved is not None:
            self._save(self._unsaved)
        if not self.hosts_metadata():
            return
        applied = self.host.replica(METADATA_SHARD_ID).applied.index
        if applied == self._metadata_applied:
            return
        self._metadata_applied = applied
        metadata = load_metadata(ReadView(self.host.store.shard(METADATA_SHARD_ID)))
        if metadata is not None:
            self._install(metadata, "its replica of shard 0")

    def offer(self, encoded: bytes, source: str, keep: bool = True) -> None:
        """Metadata from elsewhere (a peer's push, shard 0's leader, the stored copy): installed
        if it is this cluster's and newer than the view; kept in the store (`keep`) by a node
        hosting no replica of shard 0."""
        try:
            metadata = decode_metadata(encoded)
        except errors.CorruptStorage as error:
            log.warning("node %d: ignoring cluster metadata from %s: %s", self.node_id,
                        source, error)
            return
        if self.cluster_id and metadata.cluster_id != self.cluster_id:
            log.warning("node %d: ignoring cluster metadata of cluster %r from %s: this node "
                        "belongs to cluster %r", self.node_id, metadata.cluster_id, source,
                        self.cluster_id)
            return
        if self._install(metadata, source) and keep and not self.hosts_metadata():
            self._unsaved = encoded

    def _save(self, encoded: bytes) -> None:
        try:
            self.host.store.put_meta(CLUSTER_METADATA_META, encoded)
        except errors.DiskFull as error:
            # Only a copy for the next start: the node works without it.
            log.warning("node %d: cannot keep the cluster metadata in the store: %s",
                        self.node_id, error)
        self._unsaved = None

    def _install(self, metadata: ClusterMetadata, source: str) -> bool:
        """Make `metadata` the view's if it is newer; returns whether it was."""
        view = self.view
        if view is not None and metadata.cluster_epoch <= view.metadata.cluster_epoch:
            return False  # the same, or older (a lagging replica, a stale copy)
        if view is None:
            log.info("node %d: cluster metadata known from %s (epoch %d, %d members, "
                     "%d shards)", self.node_id, source, metadata.cluster_epoch,
                     len(metadata.members), len(metadata.shards))
        else:
            log.info("node %d: cluster metadata from %s: epoch %d -> %d", self.node_id,
                     source, view.metadata.cluster_epoch, metadata.cluster_epoch)
        self.view = ClusterView(metadata, self.node_id)
        self._encoded = encode_metadata(metadata)
        self.observe(force=True)
        return True

    def greeting(self, node_id: int) -> list[PeerRecord]:
        """What a peer that connects here is handed after the handshake: the metadata this
        node knows (nothing before it knows it)."""
        return [ClusterMetadataPush(self._encoded)] if self._encoded else []

    def _request_metadata(self) -> None:
        """Bootstrap (no metadata yet, a plan known) or read it (no replica of shard 0)."""
        if self._request_pending:
            return
        if self.view is None and self.plan is not None and self.hosts_metadata():
            self._request_pending = True
            command = encode_metadata_command(self.plan)
            self.submit(METADATA_SHARD_ID, METADATA_WRITE, (command,), self._bootstrapped)
        elif not self.hosts_metadata():
            self._request_pending = True
            self.submit(METADATA_SHARD_ID, METADATA_READ, (), self._read_back)

    def _bootstrapped(self, reply: Reply) -> None:
        self._request_pending = False
        if isinstance(reply, ErrorReply):
            log.info("node %d: bootstrap of the metadata not done yet: %s", self.node_id,
                     reply.message.decode(errors="replace"))

    def _read_back(self, reply: Reply) -> None:
        self._request_pending = False
        if isinstance(reply, bytes):
            self.offer(reply, "shard 0's leader")
        elif reply is None and self.plan is not None:
            # Not bootstrapped yet, and no replica of shard 0 here to propose through:
            # propose the plan at shard 0's leader.
            self._request_pending = True
            command = encode_metadata_command(self.plan)
            self.submit(METADATA_SHARD_ID, METADATA_WRITE, (command,), self._bootstrapped)

    # ---- leaders -----------------------------------------------------------------------------

    def remote_leader(self, shard_id: int) -> int:
        """Where to send a command for a shard this node does not host: the leader an answer
        named, else the shard's preferred leader. 0 for hosted shards (their own replicas
        learn the leader; the dispatcher waits for an election)."""
        if shard_id in self.host.shard_ids():
            return 0
        learned = self.learned_leaders.get(shard_id, 0)
        if learned and learned != self.node_id and self.is_connected(learned):
            return learned
        shard = None
        if self.view is not None:
            shard = self.view.metadata.shards.get(shard_id)
        if shard is None:
            shard = self._plan_shards.get(shard_id)
        if shard is None:
            return 0
        guess = self.view.acting_leader(shard) if self.view else shard.preferred_leader
        return guess if guess != self.node_id else 0

    def observe(self, force: bool = False) -> None:
        """Rebuild the view's observations (leaders, unreachable members) if they changed."""
        view = self.view
        if view is None:
            return
        down = frozenset(n for n in view.metadata.members
                         if n != self.node_id and not self.is_connected(n))
        leaders: dict[int, int] = {}
        hosted = set(self.host.shard_ids())
        for shard_id in view.metadata.shards:
            leader = (self.host.leader_of(shard_id) if shard_id in hosted
                      else self.learned_leaders.get(shard_id, 0))
            if leader and (shard_id in hosted or leader not in down):
                leaders[shard_id] = leader  # a learned leader that is down is forgotten
        applied = {(s, self.node_id): self.host.replica(s).applied.index
                   for s in hosted if s in view.metadata.shards}
        if force or leaders != view.leaders or down != view.down_nodes:
            self.view = view.observe(leaders=leaders, down_nodes=down, applied_indexes=applied)

    # ---- statistics --------------------------------------------------------------------------

    def sample_statistics(self, now_ms: int, served: dict[int, list[int]]) -> None:
        """Sample every shard led here (call between Ready cycles: it reads the store);
        `served` is the dispatcher's [reads, writes] run here per shard."""
        led = [s for s in self.host.shard_ids()
               if s != METADATA_SHARD_ID and self.host.is_leader(s)]
        for shard_id in led:
            reads, writes = served.get(shard_id, (0, 0))
            keys = key_count(ReadView(self.host.store.shard(shard_id)))
            sample = ShardSample(shard_id, now_ms, keys, 0, reads, writes)
            self.statistics[shard_id] = statistics_between(self._samples.get(shard_id), sample)
            self._samples[shard_id] = sample
        for shard_id in set(self.statistics) - set(led):
            del self.statistics[shard_id]  # no longer led here: the new leader counts
            self._samples.pop(shard_id, None)

    # ---- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        self._ticks += 1
        self.observe()
        polling = self.view is None or not self.hosts_metadata()
        if polling and self._ticks >= self._next_request_tick:
            self._next_request_tick = self._ticks + limits.metadata_poll_interval_ticks
            self._request_metadata()
        if self._ticks % limits.leader_balance_interval_ticks == 0:
            self._balance_leaders()

    def _balance_leaders(self) -> None:
        if self.view is None:
            return
        transfers = leader_transfers(self.view)[:limits.leader_transfers_per_round_max]
        for shard_id, target in transfers:
            if shard_id in self.host.shard_ids():
                self.transfer_leader(shard_id, target)
                self.transfers_started += 1
