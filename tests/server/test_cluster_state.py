"""The node's cluster state without processes: the bootstrap plan, its storage, leaders."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from quorumkv.cluster.metadata import METADATA_SHARD_ID, ClusterMetadata, encode_metadata
from quorumkv.cluster.metadata_commands import METADATA_WRITE
from quorumkv.codec.peer import ClusterMetadataPush
from quorumkv.host.host import Host
from quorumkv.kv.reply import Reply
from quorumkv.server.cluster_state import (
    CLUSTER_PLAN_META,
    ClusterState,
    bootstrap_plan,
    is_write_command,
    validate_command,
)
from quorumkv.server.config import load_config
from quorumkv.server.membership import Membership
from quorumkv.storage.memory import MemoryStore

PEERS = ",".join(f"{n}=127.0.0.1:{17000 + n}/127.0.0.1:{7000 + n}" for n in (1, 2, 3))


def membership(node_id: int, shards: int = 6) -> tuple[Membership, object]:
    config = load_config({"node_id": node_id, "peers": PEERS, "shards": shards,
                          "data_dir": str(Path("/nonexistent"))}, {})
    return Membership(config.cluster_id, node_id, dict(config.peers)), config


class _NoTransport:
    def send(self, target_node: int, message: object) -> None:
        pass


def cluster_state(store: MemoryStore, node_id: int) -> tuple[ClusterState, list[tuple]]:
    submitted: list[tuple] = []
    host = Host(node_id, store, _NoTransport(), random.Random(1), clock_ms=lambda: 0)

    def submit(shard: int, name: bytes, args: tuple[bytes, ...], reply: object) -> None:
        submitted.append((shard, name, args, reply))

    state = ClusterState(node_id, host, submit, lambda shard, target: None, lambda n: True)
    return state, submitted


def test_every_node_computes_the_same_plan() -> None:
    """The bootstrap plan depends on the initial cluster only, not on the node computing it."""
    plans = [bootstrap_plan(*membership(node_id)) for node_id in (1, 2, 3)]  # type: ignore[arg-type]
    assert plans[0] == plans[1] == plans[2]
    assert [s.shard_id for s in plans[0].shards] == list(range(7))
    assert [m.client_address for m in plans[0].members] == [
        "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]


def test_first_start_bootstraps_the_planned_replicas_and_keeps_the_plan() -> None:
    """A first start bootstraps the replicas the plan puts here and stores the plan; a
    restart bootstraps nothing and finds the same plan; the first tick proposes it."""
    store = MemoryStore()
    state, submitted = cluster_state(store, 2)
    member, config = membership(2)
    state.start(store, member, config)  # type: ignore[arg-type]
    assert state.plan is not None
    hosted = [s.shard_id for s in state.plan.shards if s.replica_on(2) is not None]
    assert sorted(store.shard_ids()) == hosted
    assert store.get_meta(CLUSTER_PLAN_META) is not None
    state.host.start()
    state.tick()
    assert [(shard, name) for shard, name, _, _ in submitted] == [
        (METADATA_SHARD_ID, METADATA_WRITE)]
    again, _ = cluster_state(store, 2)
    again.start(store, member, membership(2, shards=9)[1])  # type: ignore[arg-type]
    assert again.plan == state.plan  # the stored plan, not the new flags
    assert sorted(store.shard_ids()) == hosted


def test_remote_leader_guesses_the_preferred_leader_of_shards_hosted_elsewhere() -> None:
    """For a shard with no replica here, commands go to the leader an answer named, else to
    the preferred leader; for a hosted shard the node waits for its own election."""
    store = MemoryStore()
    state, _ = cluster_state(store, 1)
    member, _ = membership(1)
    config = load_config({"node_id": 1, "peers": PEERS, "shards": 6,
                          "replication_factor": 1}, {})
    state.start(store, member, config)
    state.host.start()
    assert state.plan is not None
    elsewhere = [s for s in state.plan.shards if s.replica_on(1) is None]
    assert elsewhere
    shard = elsewhere[0]
    assert state.remote_leader(shard.shard_id) == shard.preferred_leader
    state.learned_leaders[shard.shard_id] = 3
    assert state.remote_leader(shard.shard_id) == 3
    assert state.remote_leader(store.shard_ids()[0]) == 0


def test_the_dispatcher_checks_metadata_and_data_commands() -> None:
    """Metadata commands are writes and pass the dispatcher's check; kv's checks still apply."""
    reply: Reply = validate_command(METADATA_WRITE, (b"x",))
    assert reply is None and is_write_command(METADATA_WRITE)
    assert validate_command(b"GET", ()) is not None
    assert is_write_command(b"SET") and not is_write_command(b"GET")


def test_metadata_from_peers_only_moves_forward_and_is_known_again_at_the_next_start() -> None:
    """A node hosting no replica of shard 0 installs metadata a peer hands it only if it is
    newer and of its own cluster, hands it on to peers that connect, keeps it in its store,
    and knows it again at its next start before any peer answers."""
    store = MemoryStore()
    config = load_config({"node_id": 2, "peers": PEERS, "shards": 3,
                          "replication_factor": 1}, {})
    member = Membership(config.cluster_id, 2, dict(config.peers))
    state, _ = cluster_state(store, 2)
    state.start(store, member, config)
    state.host.start()
    state.recall()
    assert state.plan is not None and not state.hosts_metadata()
    assert state.view is None and state.greeting(1) == []
    known = ClusterMetadata(state.plan.cluster_id, 2,
                            {m.node_id: m for m in state.plan.members},
                            {s.shard_id: s for s in state.plan.shards})
    state.offer(encode_metadata(known), "node 1")
    assert state.view is not None and state.view.metadata == known
    for stale in (replace(known, cluster_epoch=1), replace(known, cluster_id="other",
                                                           cluster_epoch=9)):
        state.offer(encode_metadata(stale), "node 3")
    state.offer(b"not metadata", "node 3")
    assert state.view.metadata == known
    assert state.greeting(3) == [ClusterMetadataPush(encode_metadata(known))]
    state.after_cycles()  # between Ready cycles: the copy goes to the store
    again, _ = cluster_state(store, 2)
    again.start(store, member, config)
    again.host.start()
    again.recall()
    assert again.view is not None and again.view.metadata == known
