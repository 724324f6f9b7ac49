"""The host drives Raft, storage and the state machine: writes commit, reads see them."""

from __future__ import annotations

import random

from quorumkv import errors
from quorumkv.host.host import Host, HostConfig
from quorumkv.host.shard_view import ReadView
from quorumkv.kv import state_machine
from quorumkv.kv.reply import SimpleString
from quorumkv.raft.types import Message, MessageType

from .cluster import Cluster


def stored_value(cluster: Cluster, node_id: int, key: bytes) -> object:
    """The value of `key` in the applied data of node_id's replica, read locally."""
    view = ReadView(cluster.stores[node_id].shard(1))
    return state_machine.read(view, b"GET", (key,), cluster.clock[0])


def elect(cluster: Cluster) -> int:
    cluster.run_until(lambda: cluster.leader() != 0)
    return cluster.leader()


def test_a_write_on_the_leader_is_applied_on_every_replica() -> None:
    """SET through the leader returns OK and every replica's store holds the value."""
    cluster = Cluster(3)
    leader = elect(cluster)
    reply = cluster.call(leader, b"SET", b"k", b"v1")
    assert reply == SimpleString(b"OK")
    cluster.run_until(lambda: all(h.replica(1).applied.index == cluster.hosts[leader].replica(1).applied.index
                                  for h in cluster.hosts.values()))
    for node_id in cluster.hosts:
        assert stored_value(cluster, node_id, b"k") == b"v1"


def test_a_follower_refuses_writes_naming_the_leader() -> None:
    """A write submitted to a follower fails definitely with NotLeader and the leader's id."""
    cluster = Cluster(3)
    leader = elect(cluster)
    follower = next(n for n in cluster.hosts if n != leader)
    cluster.run_until(lambda: cluster.hosts[follower].leader_of(1) == leader)
    result = cluster.call(follower, b"SET", b"k", b"v")
    assert isinstance(result, errors.NotLeader)
    assert result.leader_id == leader and result.definite


def test_linearizable_read_after_write_sees_the_write() -> None:
    """A GET after an acknowledged SET returns the new value (ReadIndex read)."""
    cluster = Cluster(3)
    leader = elect(cluster)
    cluster.call(leader, b"SET", b"k", b"one")
    cluster.call(leader, b"SET", b"k", b"two")
    assert cluster.call(leader, b"GET", b"k") == b"two"


def test_a_read_submitted_right_after_a_write_sees_it() -> None:
    """SET and GET submitted together (a client's pipeline): the GET waits for the SET's entry
    too (the read floor), so it returns the new value, not the one before. With leases the read
    index is known at once, before the SET can commit: without the floor the GET says "one"."""
    cluster = Cluster(3, config=HostConfig(read_only="lease"))
    leader = elect(cluster)
    cluster.call(leader, b"SET", b"k", b"one")
    results: list[object] = []
    host = cluster.hosts[leader]
    host.submit(1, b"SET", (b"k", b"two"), results.append)
    host.submit(1, b"GET", (b"k",), results.append)
    cluster.run_until(lambda: len(results) == 2)
    assert results == [SimpleString(b"OK"), b"two"]


def test_a_new_replica_catches_up_by_snapshot_after_compaction() -> None:
    """After the leader compacts its log, a learner added on a new node receives a snapshot
    streamed in chunks and ends with the same data."""
    cluster = Cluster(3, config=HostConfig(log_compaction_entries_min=5, snapshot_chunk_bytes_max=64))
    leader = elect(cluster)
    for i in range(30):
        cluster.call(leader, b"SET", b"key%d" % i, b"value%d" % i)
    assert cluster.stores[leader].log(1).first_index() > 6, "the leader compacted its log"
    cluster.add_learner(leader, 4)
    for i in range(30):
        assert stored_value(cluster, 4, b"key%d" % i) == b"value%d" % i
    assert cluster.hosts[4].replica(1).applied.conf_state.learners == (4,)


def test_a_restarted_node_recovers_its_applied_state_from_the_store() -> None:
    """A host rebuilt on the same store finds its shard, its applied point and its data."""
    cluster = Cluster(3)
    leader = elect(cluster)
    cluster.call(leader, b"SET", b"k", b"v")
    applied = cluster.hosts[leader].replica(1).applied
    store = cluster.stores[leader]
    host = cluster._host(leader, store)
    host.start()
    assert host.replica(1).applied == applied


def test_a_full_disk_refuses_writes_definitely_and_the_node_resumes_when_space_returns() -> None:
    """While the leader's disk refuses writes, it stops counting as the leader and new writes
    submitted to it fail with NotLeader (definite: routed elsewhere by the dispatcher); once
    writes succeed again, the stalled cycle completes and the cluster keeps committing."""
    import random

    from quorumkv.storage.faulty_disk import FaultyDiskStore

    cluster = Cluster(3, store_factory=lambda n: FaultyDiskStore(random.Random(n), torn_probability=0.0))
    leader = elect(cluster)
    cluster.call(leader, b"SET", b"k", b"before")
    store = cluster.stores[leader]
    store.fail_writes_next(3)
    first: list[object] = []
    cluster.hosts[leader].submit(1, b"SET", (b"k", b"during"), first.append)
    cluster.hosts[leader].process()  # the persist step fails: the cycle stalls
    refused = cluster.call(leader, b"SET", b"k", b"refused", ticks_max=1)
    assert isinstance(refused, errors.NotLeader) and refused.definite
    assert not cluster.hosts[leader].is_leader(1)
    cluster.run_until(lambda: bool(first))
    assert first[0] == SimpleString(b"OK")
    assert cluster.call(leader, b"GET", b"k") == b"during"


def test_an_expired_key_is_deleted_by_the_leader_on_every_replica() -> None:
    """A key set with PX is invisible after its expiry and then removed from every replica's
    data by a leader-proposed deletion (the same entry applied everywhere)."""
    cluster = Cluster(3)
    leader = elect(cluster)
    cluster.call(leader, b"SET", b"k", b"v", b"PX", b"50")
    cluster.clock[0] += 100
    assert cluster.call(leader, b"GET", b"k") is None
    def gone_everywhere() -> bool:
        return all(not cluster.stores[n].shard(1).scan(b"", None, 10) for n in cluster.hosts)
    cluster.run_until(gone_everywhere)


def test_reads_on_two_followers_at_once_each_get_their_own_answer() -> None:
    """Reads submitted on two followers in the same round are forwarded to the leader and each
    completes with the value (their read contexts do not collide at the leader)."""
    cluster = Cluster(3)
    leader = elect(cluster)
    cluster.call(leader, b"SET", b"k", b"v")
    followers = [n for n in cluster.hosts if n != leader]
    cluster.run_until(lambda: all(cluster.hosts[f].leader_of(1) == leader for f in followers))
    results: dict[int, list[object]] = {f: [] for f in followers}
    for follower in followers:
        cluster.hosts[follower].submit(1, b"GET", (b"k",), results[follower].append)
    cluster.run_until(lambda: all(results.values()))
    assert [results[f][0] for f in followers] == [b"v", b"v"]


def test_a_stalled_node_takes_no_input_so_its_stalled_ready_still_matches_its_core() -> None:
    """While a cycle is stalled by a full disk, the host drops peer messages, holds back
    ticks and refuses reads: the core cannot move past the Ready waiting to be persisted
    (simulator seed 7711 resumed a term-9 Ready after the core had stepped into term 10).
    Routing meanwhile names the new leader seen in the dropped messages."""
    import random

    from quorumkv.storage.faulty_disk import FaultyDiskStore

    cluster = Cluster(3, store_factory=lambda n: FaultyDiskStore(random.Random(n), torn_probability=0.0))
    leader = elect(cluster)
    host = cluster.hosts[leader]
    cluster.stores[leader].fail_writes_next(1_000_000)
    pending: list[object] = []
    host.submit(1, b"SET", (b"k", b"v"), pending.append)
    host.process()  # stalls at persist
    term, role = host.replica(1).node.term, host.replica(1).node.role
    dropped = host.dropped_messages
    for _ in range(5 * cluster.config.election_timeout_ticks):
        cluster.tick()  # the others elect a new leader and message the stalled node
    assert (host.replica(1).node.term, host.replica(1).node.role) == (term, role)
    assert host.dropped_messages > dropped
    new_leader = cluster.leader()
    assert new_leader not in (0, leader) and host.leader_of(1) == new_leader
    read: list[object] = []
    host.submit(1, b"GET", (b"k",), read.append)
    assert isinstance(read[0], errors.NotLeader) and read[0].definite
    assert read[0].leader_id == new_leader
    cluster.stores[leader].fail_writes_next(0)
    cluster.run_until(lambda: bool(pending))
    cluster.run_until(lambda: host.replica(1).node.term >= cluster.hosts[new_leader].replica(1).node.term)


def test_a_leader_transfer_asked_of_a_replica_without_a_known_leader_is_dropped() -> None:
    """Leader balancing asks for transfers that may run after the replica lost its leadership
    (they wait while a Ready cycle runs): with no leader known there is nothing to transfer,
    and the request is dropped instead of raising NotLeader out of the node's drive loop (a
    12-shard cluster under bulk load stopped a node this way)."""
    cluster = Cluster(3)
    host = cluster.hosts[1]
    assert host.leader_of(1) == 0
    host.transfer_leader(1, 2)  # no leader known yet: dropped
    leader = elect(cluster)
    assert cluster.call(leader, b"SET", b"k", b"v") == SimpleString(b"OK")


def test_a_stalled_sole_voter_answers_reads_from_its_applied_state() -> None:
    """While a full disk stalls the only voter of a shard, reads answer the applied values (no
    other replica can commit) and writes are refused; disk_full_since_ms is set while stalled
    and cleared once the stalled cycle completes."""
    import random

    from quorumkv.storage.faulty_disk import FaultyDiskStore

    cluster = Cluster(1, store_factory=lambda n: FaultyDiskStore(random.Random(n), torn_probability=0.0))
    leader = elect(cluster)
    host = cluster.hosts[leader]
    assert cluster.call(leader, b"SET", b"k", b"before") == SimpleString(b"OK")
    cluster.stores[leader].fail_writes_next(1_000_000)
    pending: list[object] = []
    host.submit(1, b"SET", (b"k", b"during"), pending.append)
    host.process()  # stalls at persist
    assert host.disk_full_since_ms is not None
    answers: list[object] = []
    for name, args in ((b"GET", (b"k",)), (b"EXISTS", (b"k",)), (b"STRLEN", (b"k",))):
        host.submit(1, name, args, answers.append)
    assert answers == [b"before", 1, 6]
    refused: list[object] = []
    host.submit(1, b"SET", (b"k", b"refused"), refused.append)
    assert isinstance(refused[0], errors.DiskFull)
    cluster.stores[leader].fail_writes_next(0)
    cluster.run_until(lambda: bool(pending))
    assert pending == [SimpleString(b"OK")] and host.disk_full_since_ms is None
    assert cluster.call(leader, b"GET", b"k") == b"during"


def read_index_context(cluster: Cluster, host: Host, follower: int) -> bytes:
    """The context of the READ_INDEX request a GET on `follower` forwards to its leader."""
    host.submit(1, b"GET", (b"k",), lambda result: None)
    host.process()
    sent = [message for target, message in cluster.network.queue
            if isinstance(message, Message) and message.type == MessageType.READ_INDEX
            and message.source == follower]
    assert sent, "the follower forwarded no read index request"
    return sent[-1].context


def test_read_contexts_differ_across_restarts_even_when_the_clock_steps_back() -> None:
    """A follower restarted on its store, its wall clock set back to where it stood in its
    previous life, forwards reads under contexts its previous life never used."""
    cluster = Cluster(3)
    clock_at_first_start = cluster.clock[0]
    leader = elect(cluster)
    follower = next(n for n in cluster.hosts if n != leader)
    cluster.run_until(lambda: cluster.hosts[follower].leader_of(1) == leader)
    first = read_index_context(cluster, cluster.hosts[follower], follower)
    cluster.clock[0] = clock_at_first_start  # the clock steps back before the restart
    restarted = Host(follower, cluster.stores[follower], cluster.network.transport(follower),
                     random.Random(follower + 1000), lambda: cluster.clock[0], cluster.config)
    restarted.start()
    cluster.hosts[follower] = restarted
    cluster.run_until(lambda: restarted.leader_of(1) == leader)
    second = read_index_context(cluster, restarted, follower)
    assert first != second
