"""Routing decisions: plain clients are served anywhere, cluster clients are redirected as
Redis Cluster redirects them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.cluster import routing
from quorumkv.cluster.fan_out import Gather
from quorumkv.cluster.metadata import ClusterMetadata, Replica, ReplicaRole, make_shard
from quorumkv.cluster.routing import ClientRouting, ConnectionMode, mode_after
from quorumkv.cluster.slots import key_slot
from quorumkv.kv.reply import OK, ErrorReply, Reply

from .cluster_harness import Cluster

CLUSTER = ConnectionMode(cluster_aware=True)
READONLY = ConnectionMode(cluster_aware=True, readonly=True)


def keys_on(cluster: Cluster, shard_id: int, count: int, prefix: str = "k") -> list[str]:
    """`count` keys whose slots the shard owns, in distinct slots."""
    found: dict[int, str] = {}
    for index in range(100_000):
        key = f"{prefix}{index}"
        slot = key_slot(key.encode())
        if cluster.view(1).slots[slot] == shard_id and slot not in found:
            found[slot] = key
            if len(found) == count:
                return list(found.values())
    raise AssertionError("not enough keys")


def shard_of(cluster: Cluster, key: str) -> int:
    return cluster.view(1).slots[key_slot(key.encode())]


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(nodes=3, shards=6)


def test_plain_clients_run_here_or_at_the_leader(cluster: Cluster) -> None:
    """A plain client's command runs locally where this node leads, else is forwarded to the
    leader; either way it succeeds from any node."""
    for shard in cluster.metadata.data_shards():
        key = keys_on(cluster, shard.shard_id, 1)[0]
        for node in (1, 2, 3):
            decision = cluster.decide(node, routing.PLAIN, "SET", key, "v")
            if node == shard.preferred_leader:
                assert decision == routing.Local(shard.shard_id)
            else:
                assert decision == routing.Forward(shard.shard_id, shard.preferred_leader)
            assert cluster.plain("SET", key, f"v{node}", node_id=node) == OK
        assert cluster.plain("GET", key, node_id=2) == b"v3"


def test_no_known_leader_waits(cluster: Cluster) -> None:
    """Without a known leader (or with one that is not a member) the command waits."""
    key = keys_on(cluster, 2, 1)[0]
    cluster.leaders[2] = 0
    assert cluster.decide(1, routing.PLAIN, "GET", key) == routing.NoLeader(2)
    assert cluster.decide(1, CLUSTER, "GET", key) == routing.NoLeader(2)
    cluster.leaders[2] = 99
    assert cluster.decide(1, routing.PLAIN, "GET", key) == routing.NoLeader(2)
    assert cluster.decide(1, CLUSTER, "GET", key) == routing.NoLeader(2)


def test_shards_hosted_elsewhere_go_to_their_likely_leader() -> None:
    """Without a known leader, a node hosting no replica of the shard sends the command (or,
    for a cluster client, the client) to the shard's preferred leader instead of waiting."""
    cluster = Cluster(nodes=5, shards=10, factor=3)
    shard = cluster.shard(1)
    key = keys_on(cluster, 1, 1)[0]
    stranger = next(n for n in range(1, 6) if n not in shard.node_ids())
    host = next(n for n in shard.node_ids() if n != shard.preferred_leader)
    cluster.leaders[1] = 0
    assert cluster.decide(stranger, routing.PLAIN, "GET", key) == routing.Forward(
        1, shard.preferred_leader)
    assert cluster.decide(stranger, CLUSTER, "GET", key) == routing.Moved(
        key_slot(key.encode()), f"127.0.0.1:{7000 + shard.preferred_leader}")
    assert cluster.decide(host, routing.PLAIN, "GET", key) == routing.NoLeader(1)


def test_multi_key_reads_and_deletes_split_across_shards(cluster: Cluster) -> None:
    """MGET, EXISTS, DEL and UNLINK over several shards are split and gathered in order."""
    keys = [keys_on(cluster, s, 2, prefix=f"s{s}-")[i] for i in (0, 1) for s in (1, 2, 3, 4)]
    for index, key in enumerate(keys):
        assert cluster.plain("SET", key, f"v{index}") == OK
    request = [keys[3], "missing", keys[0], keys[5], keys[3]]
    decision = cluster.decide(1, routing.PLAIN, "MGET", *request)
    assert isinstance(decision, routing.SplitAcrossShards)
    assert decision.gather is Gather.BY_POSITION and len(decision.parts) >= 3
    assert cluster.plain("MGET", *request) == [b"v3", None, b"v0", b"v5", b"v3"]
    assert cluster.plain("EXISTS", *request) == 4
    assert cluster.plain("DEL", keys[0], keys[1], "missing") == 2
    assert cluster.plain("UNLINK", *keys) == len(keys) - 2
    assert cluster.plain("DBSIZE") == 0


def test_atomic_multi_key_commands_stay_on_one_shard(cluster: Cluster) -> None:
    """MSET and RENAME over two shards are refused for plain clients; on one shard (even over
    two slots) they run, since a shard applies them atomically."""
    one, two = keys_on(cluster, 1, 1)[0], keys_on(cluster, 2, 1)[0]
    refused = cluster.plain("MSET", one, "a", two, "b")
    assert isinstance(refused, ErrorReply) and refused.code == b"CROSSSLOT"
    assert b"MSET needs all its keys on one shard" in refused.message
    assert cluster.plain("MGET", one, two) == [None, None]
    same_a, same_b = keys_on(cluster, 3, 2)
    assert key_slot(same_a.encode()) != key_slot(same_b.encode())
    assert cluster.plain("MSET", same_a, "a", same_b, "b") == OK
    assert cluster.plain("MSETNX", "{t}1", "x", "{t}2", "y") == 1
    assert cluster.plain("RENAME", same_a, same_b) == OK
    rename = cluster.plain("RENAME", same_b, one)
    assert isinstance(rename, ErrorReply) and b"RENAME needs all its keys" in rename.message


def test_cluster_clients_are_redirected(cluster: Cluster) -> None:
    """A cluster client gets -MOVED slot host:port naming the leader's client address."""
    key = "foo"  # slot 12182
    shard = cluster.shard(shard_of(cluster, key))
    leader = shard.preferred_leader
    other = next(n for n in (1, 2, 3) if n != leader)
    assert cluster.decide(leader, CLUSTER, "GET", key) == routing.Local(shard.shard_id)
    moved = cluster.decide(other, CLUSTER, "GET", key)
    assert moved == routing.Moved(12182, f"127.0.0.1:{7000 + leader}")
    assert isinstance(moved, routing.Moved)
    assert moved.reply == ErrorReply(b"MOVED 12182 127.0.0.1:%d" % (7000 + leader))


def test_cross_slot_is_refused_even_on_one_shard(cluster: Cluster) -> None:
    """Keys in two slots get Redis's exact -CROSSSLOT, even when one shard holds both."""
    a, b = keys_on(cluster, 1, 2)
    leader = cluster.shard(1).preferred_leader
    for command in (("MGET", a, b), ("MSET", a, "1", b, "2"), ("DEL", a, b), ("RENAME", a, b)):
        decision = cluster.decide(leader, CLUSTER, *command)
        assert isinstance(decision, routing.CrossSlot)
        assert decision.reply.message == b"CROSSSLOT Keys in request don't hash to the same slot"
    assert cluster.decide(leader, CLUSTER, "MGET", "{u}a", "{u}b") in (
        routing.Local(shard_of(cluster, "u")),
        routing.Moved(key_slot(b"u"), f"127.0.0.1:{7000 + cluster.shard(shard_of(cluster, 'u')).preferred_leader}"))


def test_set_commands_route_by_all_their_keys(cluster: Cluster) -> None:
    """SINTER, SUNIONSTORE, SMOVE and SINTERCARD (keys after numkeys, LIMIT not a key) are
    refused -CROSSSLOT across slots and run where their one slot lives otherwise."""
    a, b = keys_on(cluster, 1, 2)
    leader = cluster.shard(1).preferred_leader
    for command in (("SINTER", a, b), ("SUNIONSTORE", a, b), ("SMOVE", a, b, "m"),
                    ("SINTERCARD", "2", a, b), ("SDIFF", a, a, b)):
        assert isinstance(cluster.decide(leader, CLUSTER, *command), routing.CrossSlot), command
    home = routing.Local(shard_of(cluster, a))
    assert cluster.decide(leader, CLUSTER, "SINTERCARD", "1", a, "LIMIT", "5") == home
    assert cluster.decide(leader, CLUSTER, "SINTERCARD", "2", a, a, "LIMIT", "5") == home
    assert cluster.decide(leader, CLUSTER, "HSET", a, "f", "v") == home


def test_readonly_reads_may_use_a_follower() -> None:
    """After READONLY a read runs on a voting follower here (possibly stale); a write, a random
    draw, or a read on a node without a voting replica, is redirected to the leader."""
    cluster = Cluster(nodes=5, shards=10, factor=3)
    shard = cluster.shard(1)
    key = keys_on(cluster, 1, 1)[0]
    slot = key_slot(key.encode())
    follower = next(n for n in shard.node_ids() if n != shard.preferred_leader)
    stranger = next(n for n in range(1, 6) if n not in shard.node_ids())
    leader_address = f"127.0.0.1:{7000 + shard.preferred_leader}"
    assert cluster.decide(follower, READONLY, "GET", key) == routing.Local(1, stale_read=True)
    assert cluster.decide(follower, READONLY, "SET", key, "v") == routing.Moved(
        slot, leader_address)
    assert cluster.decide(follower, CLUSTER, "GET", key) == routing.Moved(slot, leader_address)
    assert cluster.decide(stranger, READONLY, "GET", key) == routing.Moved(slot, leader_address)
    assert cluster.decide(follower, READONLY, "HGET", key, "f") == routing.Local(1, stale_read=True)
    for random_read in (("SRANDMEMBER", key), ("HRANDFIELD", key, "2")):  # the leader draws
        assert cluster.decide(follower, READONLY, *random_read) == routing.Moved(
            slot, leader_address)
    shards = dict(cluster.metadata.shards)
    shards[1] = make_shard(1, shard.slot_ranges, shard.replicas + (
        Replica(stranger, 99, ReplicaRole.LEARNER),), shard.epoch + 1, shard.preferred_leader)
    cluster.metadata = ClusterMetadata("c", 2, cluster.metadata.members, shards)
    assert cluster.decide(stranger, READONLY, "GET", key) == routing.Moved(slot, leader_address)


def test_unassigned_slots_are_not_served() -> None:
    """A slot no shard owns is answered -CLUSTERDOWN Hash slot not served, before CROSSSLOT."""
    cluster = Cluster(nodes=3, shards=3)
    shards = dict(cluster.metadata.shards)
    shards[1] = make_shard(1, (), shards[1].replicas, 2, shards[1].preferred_leader)
    cluster.metadata = ClusterMetadata("c", 2, cluster.metadata.members, shards)
    orphan = keys_on(Cluster(nodes=3, shards=3), 1, 1)[0]
    served = keys_on(cluster, 2, 1)[0]
    for mode in (routing.PLAIN, CLUSTER):
        assert cluster.decide(1, mode, "GET", orphan) == routing.Answer(routing.SLOT_NOT_SERVED)
        assert cluster.decide(1, mode, "MGET", orphan, served) == routing.Answer(
            routing.SLOT_NOT_SERVED)
    assert isinstance(cluster.decide(1, CLUSTER, "MGET", served, orphan), routing.CrossSlot)
    assert routing.SLOT_NOT_SERVED.message == b"CLUSTERDOWN Hash slot not served"


def test_arity_and_unknown_commands_come_before_redirection(cluster: Cluster) -> None:
    """A wrong argument count is refused here, not redirected (Redis checks arity first)."""
    assert cluster.decide(1, CLUSTER, "GET") == routing.Answer(
        ErrorReply(b"ERR wrong number of arguments for 'get' command"))
    unknown = cluster.decide(1, CLUSTER, "NOSUCH", "k")
    assert isinstance(unknown, routing.Answer) and isinstance(unknown.reply, ErrorReply)


def test_redirect_routing_treats_every_connection_as_a_cluster_client() -> None:
    """With --client-routing redirect even a plain connection is redirected."""
    cluster = Cluster(nodes=3, shards=3, client_routing=ClientRouting.REDIRECT)
    shard = cluster.shard(shard_of(cluster, "foo"))
    other = next(n for n in (1, 2, 3) if n != shard.preferred_leader)
    assert isinstance(cluster.decide(other, routing.PLAIN, "GET", "foo"), routing.Moved)


def test_keyless_commands_cover_the_cluster_or_this_node(cluster: Cluster) -> None:
    """DBSIZE, KEYS and RANDOMKEY see every shard for a plain client; for cluster clients
    each node answers for the shards it leads, so the nodes together see everything once."""
    keys = [f"key:{i}" for i in range(200)]
    for key in keys:
        cluster.plain("SET", key, "v")
    assert cluster.plain("DBSIZE", node_id=2) == 200
    assert sorted(cluster.plain("KEYS", "*", node_id=3)) == sorted(k.encode() for k in keys)
    per_node = [cluster.run(n, CLUSTER, "DBSIZE") for n in (1, 2, 3)]
    assert sum(per_node) == 200 and all(count > 0 for count in per_node)  # type: ignore[misc]
    listed = [k for n in (1, 2, 3) for k in cluster.run(n, CLUSTER, "KEYS", "*")]  # type: ignore[union-attr]
    assert sorted(listed) == sorted(k.encode() for k in keys)
    assert cluster.plain("RANDOMKEY") in {k.encode() for k in keys}
    chosen = {cluster.carry_out(routing.route(cluster.view(1), routing.PLAIN, ClientRouting.AUTO,
                                              b"RANDOMKEY", (), choice), b"RANDOMKEY", ())
              for choice in range(6)}
    assert len(chosen) > 1


def test_keys_with_a_hash_tag_asks_one_shard(cluster: Cluster) -> None:
    """KEYS whose pattern fixes the slot ({tag} before any wildcard) runs on one shard."""
    cluster.plain("SET", "{user1}:a", "1")
    cluster.plain("SET", "{user1}:b", "2")
    decision = cluster.decide(1, routing.PLAIN, "KEYS", "{user1}:*")
    assert isinstance(decision, routing.SplitAcrossShards) and len(decision.parts) == 1
    assert sorted(cluster.plain("KEYS", "{user1}:*")) == [b"{user1}:a", b"{user1}:b"]  # type: ignore[type-var]


def test_flushall_empties_every_shard(cluster: Cluster) -> None:
    """FLUSHALL from a plain client empties every shard; from a cluster client, only the
    shards this node leads."""
    for index in range(100):
        cluster.plain("SET", f"x{index}", "v")
    leader = cluster.shard(1).preferred_leader
    assert cluster.run(leader, CLUSTER, "FLUSHALL") == OK
    remaining = cluster.plain("DBSIZE")
    assert isinstance(remaining, int) and 0 < remaining < 100
    assert cluster.plain("FLUSHALL") == OK
    assert cluster.plain("DBSIZE") == 0


def test_a_node_leading_nothing_answers_empty() -> None:
    """A cluster client asking a node that leads no shard gets empty per-node answers."""
    cluster = Cluster(nodes=3, shards=3)
    cluster.leaders = {shard_id: 1 for shard_id in cluster.leaders}
    assert cluster.run(2, CLUSTER, "DBSIZE") == 0
    assert cluster.run(2, CLUSTER, "KEYS", "*") == []
    assert cluster.run(2, CLUSTER, "RANDOMKEY") is None
    assert cluster.run(2, CLUSTER, "FLUSHALL") == OK
    assert cluster.run(2, CLUSTER, "SCAN", "0") == [b"0", []]


def test_connection_modes() -> None:
    """READONLY, READWRITE, ASKING and the CLUSTER topology commands set the mode as Redis
    does; ASKING lasts one command."""
    mode = routing.PLAIN
    assert mode_after(mode, b"GET", (b"k",)) is mode
    assert mode_after(mode, b"CLUSTER", (b"INFO",)) == routing.PLAIN
    assert mode_after(mode, b"CLUSTER", (b"slots",)) == CLUSTER
    assert mode_after(mode, b"CLUSTER", (b"SHARDS",)) == CLUSTER
    assert mode_after(mode, b"READONLY", ()) == READONLY
    assert mode_after(READONLY, b"READWRITE", ()) == CLUSTER
    asking = mode_after(CLUSTER, b"ASKING", ())
    assert asking.asking and asking.cluster_aware
    assert mode_after(asking, b"GET", (b"k",)) == CLUSTER


# ---- plain clients see one database ----------------------------------------------------------

operations = st.lists(st.one_of(
    st.tuples(st.just("SET"), st.integers(0, 15), st.integers(0, 9)),
    st.tuples(st.just("MGET"), st.lists(st.integers(0, 15), min_size=1, max_size=6)),
    st.tuples(st.just("DEL"), st.lists(st.integers(0, 15), min_size=1, max_size=6)),
    st.tuples(st.just("EXISTS"), st.lists(st.integers(0, 15), min_size=1, max_size=6)),
    st.tuples(st.just("DBSIZE")),
    st.tuples(st.just("KEYS")),
), max_size=40)


def _words(operation: tuple[object, ...]) -> tuple[str, ...]:
    name = str(operation[0])
    if name == "SET":
        return (name, f"key{operation[1]}", f"value{operation[2]}")
    if name == "KEYS":
        return (name, "*")
    keys = operation[1] if len(operation) > 1 else []
    assert isinstance(keys, list)
    return (name, *(f"key{k}" for k in keys))


@given(operations, st.integers(1, 3))
@settings(max_examples=100, deadline=None)
def test_plain_clients_see_one_database(ops: list[tuple[object, ...]], node: int) -> None:
    """Any sequence of SET, MGET, DEL, EXISTS, DBSIZE and KEYS from a plain client answers as
    one unpartitioned shard would."""
    cluster = Cluster(nodes=3, shards=7)
    single = Cluster(nodes=1, shards=1)
    for operation in ops:
        command = _words(operation)
        got: Reply = cluster.plain(*command, node_id=node)
        expected: Reply = single.plain(*command)
        if command[0] == "KEYS":
            assert isinstance(got, list) and isinstance(expected, list)
            got, expected = sorted(got), sorted(expected)  # type: ignore[type-var]
        assert got == expected, command
