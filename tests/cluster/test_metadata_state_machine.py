"""Shard 0's state machine: topology commands, epochs, compare-and-set, and its store layout."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.cluster import metadata_commands as mc
from quorumkv.cluster import metadata_state_machine as msm
from quorumkv.cluster.metadata import (
    ClusterMetadata,
    MemberState,
    Replica,
    ReplicaRole,
    decode_metadata,
    encode_record,
    make_member,
    problems,
)
from quorumkv.cluster.slot_ranges import SlotRange, slot_total
from quorumkv.errors import CorruptStorage
from quorumkv.kv.command import Command
from quorumkv.kv.reply import OK, ErrorReply, Reply
from quorumkv.kv.store import MemoryKeyValueStore

from .cluster_harness import members, metadata_for

NOW_MS = 1_700_000_000_000


def run(store: MemoryKeyValueStore, command: mc.MetadataCommand) -> Reply:
    return msm.apply(store, mc.metadata_command(command, NOW_MS))


def bootstrapped(nodes: int = 3, shards: int = 6) -> tuple[MemoryKeyValueStore, ClusterMetadata]:
    placed = metadata_for(nodes, shards)
    store = MemoryKeyValueStore()
    reply = run(store, mc.BootstrapCluster(placed.cluster_id, tuple(placed.members.values()),
                                            tuple(placed.shards.values())))
    assert reply == OK
    loaded = msm.load_metadata(store)
    assert loaded is not None
    return store, loaded


def error_text(reply: Reply) -> str:
    assert isinstance(reply, ErrorReply), reply
    return reply.message.decode()


def test_bootstrap_stores_the_placed_cluster() -> None:
    """Bootstrap stores every member and shard, one key each, at cluster epoch 1."""
    placed = metadata_for(3, 6)
    store, loaded = bootstrapped(3, 6)
    assert loaded == ClusterMetadata(placed.cluster_id, 1, placed.members, placed.shards)
    keys = [key for key, _ in store.items()]
    assert keys == sorted([msm.CLUSTER_KEY] + [msm.member_key(n) for n in placed.members]
                          + [msm.shard_key(s) for s in placed.shards])
    encoded = msm.read(store, msm.METADATA_READ, (), NOW_MS)
    assert isinstance(encoded, bytes) and decode_metadata(encoded) == loaded


def test_bootstrap_is_idempotent_for_the_same_cluster_only() -> None:
    """A retried identical bootstrap answers OK and changes nothing; another is refused."""
    store, loaded = bootstrapped()
    before = store.items()
    same = mc.BootstrapCluster(loaded.cluster_id, tuple(loaded.members.values()),
                                tuple(loaded.shards.values()))
    assert run(store, same) == OK
    assert store.items() == before
    other = mc.BootstrapCluster("other", same.members, same.shards)
    assert "already bootstrapped" in error_text(run(store, other))
    assert store.items() == before


def test_bootstrap_refuses_an_inconsistent_cluster() -> None:
    """Overlapping slots, unknown nodes or a missing metadata shard are refused, unwritten."""
    placed = metadata_for(3, 3)
    shards = list(placed.shards.values())
    store = MemoryKeyValueStore()
    missing_zero = mc.BootstrapCluster("c", tuple(placed.members.values()), tuple(shards[1:]))
    assert "metadata shard 0 is missing" in error_text(run(store, missing_zero))
    stranger = mc.BootstrapCluster("c", tuple(members(2)), tuple(shards))
    assert "which are not members" in error_text(run(store, stranger))
    assert len(store) == 0
    assert msm.load_metadata(store) is None
    assert msm.read(store, msm.METADATA_READ, (), NOW_MS) is None


def test_commands_before_bootstrap_are_refused() -> None:
    """Nothing but bootstrap applies to an empty shard 0."""
    store = MemoryKeyValueStore()
    reply = run(store, mc.AddMember(make_member(1, "h:1", "h:2")))
    assert "not bootstrapped" in error_text(reply)
    assert len(store) == 0


def test_member_lifecycle() -> None:
    """Members are added, moved, drained and removed; each change bumps the cluster epoch."""
    store, loaded = bootstrapped()
    new = make_member(9, "10.0.0.9:7009", "10.0.0.9:17009", {"zone": "b"}, MemberState.JOINING)
    assert run(store, mc.AddMember(new)) == OK
    assert "already a member" in error_text(run(store, mc.AddMember(new)))
    assert run(store, mc.UpdateMemberAddress(9, "10.0.0.10:7009", "10.0.0.10:17009")) == OK
    assert "not host:port" in error_text(run(store, mc.UpdateMemberAddress(9, "x", "h:1")))
    assert run(store, mc.SetMemberState(9, MemberState.ACTIVE)) == OK
    after = msm.load_metadata(store)
    assert after is not None and after.cluster_epoch == loaded.cluster_epoch + 3
    assert after.members[9] == make_member(9, "10.0.0.10:7009", "10.0.0.10:17009",
                                           {"zone": "b"}, MemberState.ACTIVE)
    assert run(store, mc.RemoveMember(9)) == OK
    refused = error_text(run(store, mc.RemoveMember(1)))
    assert "node 1 still hosts replicas of shards" in refused
    assert "not a member" in error_text(run(store, mc.RemoveMember(9)))


def test_stale_epochs_are_refused_without_writing() -> None:
    """Two planners read the same epoch: the first change applies, the second gets
    STALEEPOCH and changes nothing (compare-and-set)."""
    store, loaded = bootstrapped()
    shard = loaded.shards[1]
    first = mc.SetShardReplicas(1, shard.replicas[:2], shard.replicas[0].node_id, shard.epoch)
    second = mc.SetShardReplicas(1, shard.replicas[1:], shard.replicas[1].node_id, shard.epoch)
    assert run(store, first) == OK
    before = store.items()
    reply = run(store, second)
    assert isinstance(reply, ErrorReply) and reply.code == b"STALEEPOCH"
    assert f"shard 1 is at epoch {shard.epoch + 1}, not {shard.epoch}" in error_text(reply)
    assert store.items() == before
    after = msm.load_metadata(store)
    assert after is not None and after.shards[1].replicas == shard.replicas[:2]


def test_shard_replicas_must_fit_the_members() -> None:
    """Replica sets naming non-members, repeating a node or without a voter are refused."""
    store, loaded = bootstrapped()
    epoch = loaded.shards[2].epoch
    for replicas, text in (((Replica(1, 1), Replica(8, 8)), "not members"),
                           ((Replica(1, 1), Replica(1, 4)), "hosts two"),
                           ((Replica(1, 1, ReplicaRole.LEARNER),), "no voter")):
        assert text in error_text(run(store, mc.SetShardReplicas(2, replicas, 0, epoch)))
    assert "does not exist" in error_text(run(store, mc.SetShardReplicas(77, (), 0, 1)))


def test_slots_move_between_shards_with_both_epochs_checked() -> None:
    """assign-slots moves slots from a donor naming its epoch; both shards' epochs bump, the
    slots stay covered exactly once."""
    store, loaded = bootstrapped(3, 3)
    donor = loaded.shards[1]
    moved = (SlotRange(donor.slot_ranges[0].start, donor.slot_ranges[0].start + 99),)
    assert run(store, mc.CreateShard(7, donor.replicas, donor.preferred_leader)) == OK
    unnamed = run(store, mc.AssignSlots(7, moved, 1))
    assert isinstance(unnamed, ErrorReply) and unnamed.code == b"STALEEPOCH"
    assert "owned by shard 1, which the command does not name" in error_text(unnamed)
    wrong = run(store, mc.AssignSlots(7, moved, 1, ((1, donor.epoch + 5),)))
    assert isinstance(wrong, ErrorReply) and wrong.code == b"STALEEPOCH"
    idle = run(store, mc.AssignSlots(7, moved, 1, ((1, donor.epoch), (2, 1))))
    assert "donor shard 2 owns none" in error_text(idle)
    assert run(store, mc.AssignSlots(7, moved, 1, ((1, donor.epoch),))) == OK
    after = msm.load_metadata(store)
    assert after is not None and problems(after) == []
    assert after.shards[7].slot_ranges == moved and after.shards[7].epoch == 2
    assert after.shards[1].epoch == donor.epoch + 1
    assert slot_total(after.shards[1].slot_ranges) == slot_total(donor.slot_ranges) - 100
    assert sum(slot_total(s.slot_ranges) for s in after.shards.values()) == 16384


def test_slot_assignment_limits() -> None:
    """Shard 0 owns no slots, ranges must be valid, unowned slots need no donor."""
    store, loaded = bootstrapped(3, 3)
    assert "owns no slots" in error_text(run(store, mc.AssignSlots(0, (SlotRange(1, 1),),
                                                                    loaded.shards[0].epoch)))
    assert "not within" in error_text(run(store, mc.AssignSlots(2, (SlotRange(5, 16384),), 1)))
    assert "not within" in error_text(run(store, mc.AssignSlots(2, (), 1)))
    # Free some slots, then give them to another shard without naming a donor.
    free = (SlotRange(0, 9),)
    assert run(store, mc.CreateShard(8, loaded.shards[1].replicas)) == OK
    assert run(store, mc.AssignSlots(8, free, 1, ((1, loaded.shards[1].epoch),))) == OK
    assert run(store, mc.RemoveShard(8, 2)) != OK  # still owns slots
    assert run(store, mc.AssignSlots(1, free, loaded.shards[1].epoch + 1, ((8, 2),))) == OK
    assert run(store, mc.RemoveShard(8, 3)) == OK
    assert "cannot be removed" in error_text(run(store, mc.RemoveShard(0, 1)))


@given(st.binary(max_size=64))
@settings(max_examples=200)
def test_garbage_commands_answer_errors(data: bytes) -> None:
    """Any bytes as a metadata command give an error reply, never an exception."""
    store, _ = bootstrapped(2, 2)
    before = store.items()
    reply = msm.apply(store, Command(mc.METADATA_WRITE, (data,), NOW_MS))
    assert isinstance(reply, ErrorReply)
    assert store.items() == before


def test_malformed_records_answer_errors() -> None:
    """Well-formed msgpack with the wrong shape is refused with a reason."""
    store, _ = bootstrapped(2, 2)
    for record in ([2, "add-member", []], [1, "no-such-command"], [1, "remove-member", "x"],
                   [1, "set-member-state", 1, "sleeping"], [1, "assign-slots", 1, [[1]], 1, []]):
        reply = msm.apply(store, Command(mc.METADATA_WRITE, (msgpack.packb(record),), NOW_MS))
        assert isinstance(reply, ErrorReply), record
    assert msm.apply(store, Command(b"SET", (b"k", b"v"), NOW_MS)) != OK
    assert msm.apply(store, Command(mc.METADATA_WRITE, (), NOW_MS)) != OK


def test_commands_survive_encoding() -> None:
    """Every command kind decodes to what was encoded."""
    replicas = (Replica(1, 1), Replica(2, 5, ReplicaRole.LEARNER))
    every_kind: list[mc.MetadataCommand] = [
        mc.BootstrapCluster("c", tuple(members(2)), ()),
        mc.AddMember(make_member(3, "h:1", "h:2", {"zone": "a"})),
        mc.UpdateMemberAddress(3, "h:3", "h:4"), mc.SetMemberState(3, MemberState.DRAINING),
        mc.RemoveMember(3), mc.CreateShard(4, replicas, 1),
        mc.SetShardReplicas(4, replicas, 2, 7),
        mc.AssignSlots(4, (SlotRange(0, 5), SlotRange(9, 9)), 3, ((1, 2), (2, 4))),
        mc.RemoveShard(4, 9),
    ]
    for command in every_kind:
        assert mc.decode_metadata_command(mc.encode_metadata_command(command)) == command


def test_replicas_apply_the_same_log_to_the_same_state() -> None:
    """Applying the same commands to two stores gives identical stores and replies."""
    placed = metadata_for(3, 3)
    log: list[mc.MetadataCommand] = [
        mc.BootstrapCluster("c", tuple(placed.members.values()), tuple(placed.shards.values())),
        mc.AddMember(make_member(4, "h:4", "h:5")),
        mc.SetShardReplicas(1, (Replica(4, 4),), 4, 1),
        mc.SetShardReplicas(1, (Replica(1, 1),), 1, 1),  # stale
        mc.CreateShard(5, (Replica(4, 4),)),
        mc.AssignSlots(5, (SlotRange(0, 0),), 1, ((1, 2),)),
    ]
    first, second = MemoryKeyValueStore(), MemoryKeyValueStore()
    replies = [(run(first, c), run(second, c)) for c in log]
    assert all(a == b for a, b in replies)
    assert first.items() == second.items()


def test_validate_and_read_on_shard_zero() -> None:
    """Only the metadata write and read exist on shard 0, with their arities."""
    assert msm.validate(mc.METADATA_WRITE, (b"x",)) is None
    assert msm.validate(msm.METADATA_READ, ()) is None
    assert msm.validate(msm.METADATA_READ, (b"x",)) is not None
    assert msm.validate(b"GET", (b"k",)) is not None
    assert msm.is_write(mc.METADATA_WRITE) and not msm.is_write(msm.METADATA_READ)
    assert isinstance(msm.read(MemoryKeyValueStore(), b"GET", (b"k",), NOW_MS), ErrorReply)


def test_damaged_records_are_reported_not_misread() -> None:
    """A stored record with a bad checksum or a wrong shape raises CorruptStorage."""
    store, _ = bootstrapped(2, 2)
    store.put(msm.member_key(1), store.get(msm.member_key(1))[:-1] + b"?")  # type: ignore[index]
    with pytest.raises(CorruptStorage, match="checksum"):
        msm.load_metadata(store)
    store, _ = bootstrapped(2, 2)
    store.put(msm.CLUSTER_KEY, encode_record(["c", "not an epoch"]))
    with pytest.raises(CorruptStorage, match="cluster record"):
        msm.load_metadata(store)
    store.put(msm.CLUSTER_KEY, encode_record(["c", 1]))
    store.put(msm.shard_key(1), encode_record([1, 2]))
    with pytest.raises(CorruptStorage, match="shard"):
        msm.load_metadata(store)
