"""The CLUSTER replies, in Redis 7's formats, as redis-py's cluster client reads them."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import hiredis
import pytest
import redis
from redis._parsers.helpers import parse_cluster_info, parse_cluster_nodes
from redis.cluster import (
    PRIMARY,
    parse_cluster_shards,
    parse_cluster_shards_unified,
    parse_cluster_slots,
)

from quorumkv.cluster import redis_cluster
from quorumkv.cluster.metadata import ClusterMetadata, Replica, ReplicaRole, make_shard
from quorumkv.cluster.redis_cluster import (
    COUNT_KEYS_IN_SLOT,
    GET_KEYS_IN_SLOT,
    SlotRead,
    cluster_command,
    node_name,
)
from quorumkv.cluster.slot_ranges import slot_total
from quorumkv.cluster.slots import SLOT_COUNT, key_slot
from quorumkv.cluster.view import ClusterView, SlotHealth
from quorumkv.codec.resp import encode_reply
from quorumkv.kv.reply import (
    NOT_AN_INTEGER,
    ErrorReply,
    Map,
    Reply,
    SimpleString,
    VerbatimString,
)

from .cluster_harness import NOW_MS, Cluster, metadata_for, preferred_leaders


def wire(reply: Reply, protocol: int) -> Any:
    """What a client library reads: the reply encoded as the server would, parsed by hiredis."""
    reader = hiredis.Reader()
    reader.feed(encode_reply(reply, protocol))
    return reader.gets()


def as_map(reply: Any) -> dict[str, Any]:
    """A RESP3 map, or RESP2's flat key/value array, as a dict with str keys."""
    pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {key.decode(): value for key, value in pairs}


def view_of(nodes: int = 3, shards: int = 6, node_id: int = 1, **observed: Any) -> ClusterView:
    metadata = metadata_for(nodes, shards)
    return ClusterView(metadata, node_id, observed.pop("leaders", preferred_leaders(metadata)),
                       **observed)


def address(node_id: int) -> tuple[str, int]:
    return "127.0.0.1", 7000 + node_id


@pytest.mark.parametrize("protocol", [2, 3])
def test_cluster_slots_cover_every_slot_once(protocol: int) -> None:
    """redis-py's parse_cluster_slots reads a range per shard, every slot exactly once, the
    leader as primary and the other voters as replicas."""
    view = view_of(5, 20)
    parsed = parse_cluster_slots(wire(redis_cluster.cluster_slots(view), protocol))
    covered = sorted(slot for start, end in parsed for slot in range(start, end + 1))
    assert covered == list(range(SLOT_COUNT))
    for (start, _), nodes in parsed.items():
        shard = view.shard_of_slot(start)
        assert shard is not None
        assert nodes["primary"] == address(view.leader_of(shard.shard_id))
        expected = {address(n) for n in shard.node_ids() if n != shard.preferred_leader}
        assert set(nodes["replicas"]) <= expected


def test_cluster_slots_node_entries() -> None:
    """Each node is [host, port, 40-hex name, {}], as Redis 7 sends it."""
    view = view_of(3, 3)
    entry = wire(redis_cluster.cluster_slots(view), 3)[0]
    host, port, name, extra = entry[2]
    assert (host, extra) == (b"127.0.0.1", {})
    assert len(name) == 40 and int(name, 16) >= 0
    assert name == node_name(view.metadata.cluster_id, view.leader_of(1)).encode() or port


def test_every_leading_node_is_first_seen_as_a_primary() -> None:
    """Walking CLUSTER SLOTS in order, a node that leads a range is never met as a replica
    before it is met as a primary (redis-py keeps the first role it sees per address), and
    after the first range of each leader every replica is listed."""
    view = view_of(5, 20)
    entries = wire(redis_cluster.cluster_slots(view), 2)
    primaries = {tuple(entry[2][:2]) for entry in entries}
    seen: set[tuple[Any, ...]] = set()
    for entry in entries:
        seen.add(tuple(entry[2][:2]))
        for replica in entry[3:]:
            assert tuple(replica[:2]) in seen or tuple(replica[:2]) not in primaries
    assert all(len(entry) == 2 + 3 for entry in entries[len(primaries):])


def test_down_replicas_and_unknown_leaders() -> None:
    """Replicas known to be down are left out; a shard in an election shows its preferred
    leader as master."""
    metadata = metadata_for(3, 3)
    leaders = preferred_leaders(metadata)
    del leaders[1]
    down = next(n for n in metadata.shards[2].node_ids() if n != leaders[2])
    view = ClusterView(metadata, 1, leaders, frozenset({down}))
    parsed = parse_cluster_slots(wire(redis_cluster.cluster_slots(view), 2))
    for (start, _), nodes in parsed.items():
        shard = view.shard_of_slot(start)
        assert shard is not None
        assert nodes["primary"] == address(shard.preferred_leader)
        assert address(down) not in nodes["replicas"] or nodes["primary"] == address(down)


@pytest.mark.parametrize("protocol", [2, 3])
def test_cluster_shards(protocol: int) -> None:
    """CLUSTER SHARDS lists each data shard's slots and nodes (master first) with the fields
    of Redis 7; learners show as loading replicas, down nodes as failed."""
    metadata = metadata_for(4, 4)
    shards = dict(metadata.shards)
    first = shards[1]
    learner = next(n for n in (1, 2, 3, 4) if n not in first.node_ids())
    shards[1] = make_shard(1, first.slot_ranges, first.replicas + (
        Replica(learner, 40, ReplicaRole.LEARNER),), first.epoch, first.preferred_leader)
    metadata = ClusterMetadata(metadata.cluster_id, 2, metadata.members, shards)
    down = next(n for n in first.node_ids() if n != first.preferred_leader)
    view = ClusterView(metadata, 1, preferred_leaders(metadata), frozenset({down}),
                       {(1, first.preferred_leader): 1234})
    raw = wire(redis_cluster.cluster_shards(view), protocol)
    # The wire reply itself, in Redis 7's shape: a map per shard (a flat key/value array in
    # RESP2), "slots" a flat list of start, end bounds. Client libraries parse it in their own
    # ways (redis-py 8.2 pairs the bounds, 8.1 did not); that they can parse it at all is
    # checked apart from its shape.
    assert len(parse_cluster_shards_unified(raw)) == len(parse_cluster_shards(raw)) == 4
    parsed = [as_map(shard) for shard in raw]
    assert len(parsed) == 4
    one = parsed[0]
    assert one["slots"] == [first.slot_ranges[0].start, first.slot_ranges[0].end]
    nodes = [as_map(node) for node in one["nodes"]]
    assert [n["role"] for n in nodes] == [b"master", b"replica", b"replica", b"replica"]
    assert set(nodes[0]) == {"id", "port", "ip", "endpoint", "role", "replication-offset",
                             "health"}
    assert nodes[0]["port"] == 7000 + first.preferred_leader
    assert nodes[0]["replication-offset"] == 1234
    health = {n["port"] - 7000: n["health"] for n in nodes}
    assert health[learner] == b"loading" and health[down] == b"failed"
    assert health[first.preferred_leader] == b"online"


def test_cluster_nodes() -> None:
    """CLUSTER NODES as redis-py parses it: every member once, masters with the slots of the
    shards they lead, the others slaves of a leader, myself flagged."""
    view = view_of(4, 8, node_id=2, down_nodes=frozenset({4}))
    reply = redis_cluster.cluster_nodes(view, NOW_MS)
    assert isinstance(reply, VerbatimString) and reply.format == b"txt"
    parsed = parse_cluster_nodes(wire(reply, 3))
    assert sorted(parsed) == [f"127.0.0.1:{7000 + n}" for n in (1, 2, 3, 4)]
    me = parsed["127.0.0.1:7002"]
    assert me["flags"] == "myself,master" and me["master_id"] == "-"
    assert parsed["127.0.0.1:7004"]["flags"] == "master,fail"
    assert not parsed["127.0.0.1:7004"]["connected"]
    covered = sorted(slot for node in parsed.values() for start, *end in node["slots"]
                     for slot in range(int(start), int(end[0] if end else start) + 1))
    assert covered == list(range(SLOT_COUNT))
    lines = wire(reply, 2).decode().splitlines()
    assert all(len(line.split(" ")[0]) == 40 for line in lines)
    assert any("@1700" in line for line in lines)  # host:port@peer-port


def test_a_node_leading_nothing_is_a_slave() -> None:
    """A node that leads no shard is listed as a slave of the leader of a shard it follows."""
    metadata = metadata_for(3, 3)
    view = ClusterView(metadata, 3, {s: 1 for s in metadata.shards})
    parsed = parse_cluster_nodes(wire(redis_cluster.cluster_nodes(view, NOW_MS), 2))
    slave = parsed["127.0.0.1:7003"]
    assert slave["flags"] == "myself,slave"
    assert slave["master_id"] == node_name(metadata.cluster_id, 1)
    assert slave["slots"] == []


def test_cluster_info() -> None:
    """CLUSTER INFO reads as Redis's name:value lines; slots of shards without a leader are
    counted as pfail."""
    view = view_of(3, 6, leaders={1: 1, 2: 2, 3: 3, 4: 1, 5: 2})
    info = parse_cluster_info(wire(redis_cluster.cluster_info(view), 2))
    assert info["cluster_state"] == "ok"
    assert info["cluster_slots_assigned"] == "16384"
    shard_six = view.metadata.shards[6].slot_ranges[0]
    assert info["cluster_slots_pfail"] == str(len(shard_six))
    assert int(info["cluster_slots_ok"]) == 16384 - len(shard_six)
    assert info["cluster_known_nodes"] == "3" and info["cluster_size"] == "3"
    assert info["cluster_current_epoch"] == "1" and info["cluster_my_epoch"] == "1"
    assert "total_cluster_links_buffer_limit_exceeded" in info


def _slot_counts(view: ClusterView) -> dict[str, Any]:
    info = parse_cluster_info(wire(redis_cluster.cluster_info(view), 2))
    counts = {k: int(info[f"cluster_slots_{k}"]) for k in ("ok", "pfail", "fail")}
    assert sum(counts.values()) == int(info["cluster_slots_assigned"]) == 16384
    return {"state": info["cluster_state"], **counts}


def test_cluster_info_fails_when_a_majority_of_nodes_is_unreachable() -> None:
    """With 2 of 3 nodes unreachable, every shard lacks a quorum from the survivor: the
    state is fail and every slot counts as failed, whatever leaders the survivor last knew
    (its own leaderships included: a leader without its quorum commits nothing)."""
    down = frozenset({2, 3})
    for leaders in ({}, {s: s % 3 + 1 for s in range(7)}):
        assert _slot_counts(view_of(3, 6, leaders=leaders, down_nodes=down)) == {
            "state": "fail", "ok": 0, "pfail": 0, "fail": 16384}


def test_cluster_info_suspects_but_does_not_fail_a_shard_that_keeps_its_quorum() -> None:
    """One node of three unreachable: its shards have no reachable leader yet but a reachable
    majority (an election can end), so they are pfail and the state stays ok."""
    view = view_of(3, 6, down_nodes=frozenset({3}))
    led_by_three = sum(slot_total(s.slot_ranges) for s in view.serving_shards()
                       if view.leader_of(s.shard_id) == 3)
    assert led_by_three > 0
    assert _slot_counts(view) == {"state": "ok", "ok": 16384 - led_by_three,
                                  "pfail": led_by_three, "fail": 0}


def test_cluster_info_judges_shards_hosted_elsewhere_by_their_voters() -> None:
    """On a node that hosts no replica of a shard, the shard fails when a majority of its
    voters is unreachable from there, and is ok while its known leader is reachable."""
    view = view_of(5, 10, node_id=1)
    elsewhere = [s for s in view.serving_shards() if not view.hosts(s)]
    assert elsewhere
    shard = elsewhere[0]
    voters = [r.node_id for r in shard.voters()]
    cut = view.observe(down_nodes=frozenset(voters[:2]))
    assert cut.slot_health(shard) is SlotHealth.FAIL
    assert _slot_counts(cut)["state"] == "fail"
    leader_reachable = view.observe(leaders={shard.shard_id: voters[2]},
                                    down_nodes=frozenset(voters[:2]))
    assert leader_reachable.slot_health(shard) is SlotHealth.OK


def test_cluster_info_of_a_node_that_does_not_know_the_metadata_fails() -> None:
    """Before a node knows the metadata it knows no slot: cluster_state:fail, every count 0
    (Redis answers CLUSTER INFO in every state)."""
    info = parse_cluster_info(wire(redis_cluster.cluster_info(None), 2))
    assert info["cluster_state"] == "fail"
    assert all(info[f"cluster_slots_{k}"] == "0" for k in ("assigned", "ok", "pfail", "fail"))


def test_cluster_command_dispatch() -> None:
    """MYID, KEYSLOT, HELP, errors as Redis words them, and slot reads for COUNTKEYSINSLOT /
    GETKEYSINSLOT."""
    view = view_of(3, 3, node_id=2)
    assert cluster_command(view, (b"myid",), NOW_MS) == node_name(
        view.metadata.cluster_id, 2).encode()
    assert cluster_command(view, (b"KEYSLOT", b"foo"), NOW_MS) == 12182
    assert cluster_command(view, (b"KEYSLOT", b"{user1000}.following"), NOW_MS) == key_slot(
        b"user1000")
    assert isinstance(cluster_command(view, (b"HELP",), NOW_MS), list)
    assert cluster_command(view, (b"nope",), NOW_MS) == ErrorReply(
        b"ERR unknown subcommand 'nope'. Try CLUSTER HELP.")
    assert cluster_command(view, (b"KEYSLOT",), NOW_MS) == ErrorReply(
        b"ERR wrong number of arguments for 'cluster|keyslot' command")
    refused = cluster_command(view, (b"ADDSLOTS", b"1"), NOW_MS)
    assert isinstance(refused, ErrorReply) and b"not supported" in refused.message
    slot = key_slot(b"foo")
    shard = view.shard_of_slot(slot)
    assert shard is not None
    assert cluster_command(view, (b"COUNTKEYSINSLOT", b"12182"), NOW_MS) == SlotRead(
        shard.shard_id, COUNT_KEYS_IN_SLOT, (b"12182",))
    assert cluster_command(view, (b"GETKEYSINSLOT", b"12182", b"10"), NOW_MS) == SlotRead(
        shard.shard_id, GET_KEYS_IN_SLOT, (b"12182", b"10"))
    assert cluster_command(view, (b"COUNTKEYSINSLOT", b"16384"), NOW_MS) == ErrorReply(
        b"ERR Invalid slot")
    assert cluster_command(view, (b"COUNTKEYSINSLOT", b"x"), NOW_MS) == NOT_AN_INTEGER
    assert cluster_command(view, (b"GETKEYSINSLOT", b"1", b"-1"), NOW_MS) == ErrorReply(
        b"ERR Invalid slot or number of keys")
    assert isinstance(cluster_command(view, (b"SLOTS",), NOW_MS), list)
    assert isinstance(cluster_command(view, (b"SHARDS",), NOW_MS), list)
    assert isinstance(cluster_command(view, (b"NODES",), NOW_MS), VerbatimString)
    assert isinstance(cluster_command(view, (b"INFO",), NOW_MS), VerbatimString)


def test_keys_in_slot_are_counted_and_listed() -> None:
    """The slot reads count and list one slot's keys from the shard's store."""
    cluster = Cluster(nodes=3, shards=3)
    tagged = [f"{{tag}}:{i}".encode() for i in range(25)]
    for key in tagged:
        cluster.plain("SET", key, "v")
    cluster.plain("SET", "other", "v")
    view = cluster.view(1)
    read = cluster_command(view, (b"COUNTKEYSINSLOT", b"%d" % key_slot(b"tag")), NOW_MS)
    assert isinstance(read, SlotRead)
    assert cluster.execute(read.shard_id, read.name, read.args) == 25
    listing = cluster_command(view, (b"GETKEYSINSLOT", b"%d" % key_slot(b"tag"), b"10"), NOW_MS)
    assert isinstance(listing, SlotRead)
    keys = cluster.execute(listing.shard_id, listing.name, listing.args)
    assert isinstance(keys, list) and len(keys) == 10 and set(keys) <= set(tagged)
    everything = cluster.execute(listing.shard_id, GET_KEYS_IN_SLOT,
                                 (b"%d" % key_slot(b"tag"), b"100"))
    assert sorted(everything) == sorted(tagged)  # type: ignore[type-var,arg-type]


def test_node_names_are_stable_and_distinct() -> None:
    """A node's 40-hex name depends only on the cluster id and node id."""
    names = {node_name("c", n) for n in range(1, 100)}
    assert len(names) == 99 and node_name("c", 1) == node_name("c", 1)
    assert node_name("c", 1) != node_name("d", 1)


# ---- redis-py's RedisCluster against nodes that answer only CLUSTER SLOTS and COMMAND -----------


_COMMANDS: Reply = [
    [b"get", 2, [SimpleString(b"readonly")], 1, 1, 1, [], [], [], []],
    [b"set", -3, [SimpleString(b"write")], 1, 1, 1, [], [], [], []],
]


class _FakeNode(socketserver.BaseRequestHandler):
    """Answers CLUSTER SLOTS from the test's view, COMMAND with GET and SET, GET with this
    node's port, anything else +OK."""

    server: _FakeServer

    def handle(self) -> None:
        reader = hiredis.Reader()
        protocol = 2
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            reader.feed(data)
            while (request := reader.gets()) is not False:
                if request[0].upper() == b"HELLO":  # redis-py 8 speaks RESP3 by default
                    protocol = int(request[1]) if len(request) > 1 else protocol
                    reply: Reply = Map([(b"server", b"redis"), (b"version", b"7.2.0"),
                                        (b"proto", protocol), (b"mode", b"cluster")])
                else:
                    reply = self.server.answer(request)
                self.request.sendall(encode_reply(reply, protocol))


class _FakeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    view: ClusterView | None = None

    def answer(self, request: list[bytes]) -> Reply:
        name = request[0].upper()
        if name == b"CLUSTER" and self.view is not None:
            reply = cluster_command(self.view, tuple(request[1:]), NOW_MS)
            return reply if not isinstance(reply, SlotRead) else 0
        if name == b"COMMAND":
            return _COMMANDS
        if name == b"GET":
            return b"%d" % self.server_address[1]
        return SimpleString(b"OK")


@pytest.fixture
def fake_nodes() -> Iterator[list[_FakeServer]]:
    servers = [_FakeServer(("127.0.0.1", 0), _FakeNode) for _ in range(3)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def test_redis_py_cluster_client_reads_the_topology(fake_nodes: list[_FakeServer]) -> None:
    """redis-py's RedisCluster, unmodified (RESP3, as redis-py 8 speaks by default),
    initializes from CLUSTER SLOTS: every slot is covered, every leading node is a primary,
    and GET goes to the key's shard leader."""
    ports = [server.server_address[1] for server in fake_nodes]
    base = metadata_for(3, 12)
    members = {n: m.__class__(n, f"127.0.0.1:{ports[n - 1]}", m.peer_address, m.labels, m.state)
               for n, m in base.members.items()}
    metadata = ClusterMetadata(base.cluster_id, 1, members, base.shards)
    for server in fake_nodes:
        server.view = ClusterView(metadata, ports.index(server.server_address[1]) + 1,
                                  preferred_leaders(metadata))
    client = redis.RedisCluster(host="127.0.0.1", port=ports[0], socket_timeout=5)
    try:
        manager = client.nodes_manager
        assert len(manager.slots_cache) == SLOT_COUNT
        assert sorted(node.port for node in manager.get_nodes_by_server_type(PRIMARY)) == sorted(
            ports)
        for key in (b"foo", b"bar", b"{user1}:x", b"k17"):
            shard = fake_nodes[0].view.shard_of_slot(key_slot(key))  # type: ignore[union-attr]
            assert shard is not None
            assert client.get(key) == b"%d" % ports[shard.preferred_leader - 1]
    finally:
        client.close()
