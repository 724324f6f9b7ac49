"""The commands that change the cluster metadata, and their log record.

Theory of operation. Every change of the topology is one command proposed to shard 0 (the
metadata shard): bootstrap-cluster, add-member, update-member-address, set-member-state,
remove-member, create-shard, set-shard-replicas, assign-slots, remove-shard. Each is a frozen
dataclass here; metadata_state_machine.py says what applying it does.

A command's record is versioned msgpack, [version, kind, field...], with the member, shard and
replica bodies of metadata.py inside. It travels in the log inside the ordinary command record
(kv/command.py) under the internal name QKV.METADATA (`metadata_command`), so shard 0's entries
look like every other shard's. `decode_metadata_command` checks every field and raises
errors.InvalidCommand on anything else.

Commands that change a shard carry the epoch their planner read (`expected_epoch`; for
assign-slots also the epochs of the shards giving up slots), which is what makes them
compare-and-set operations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped,unused-ignore]

from quorumkv.cluster.metadata import (
    Member,
    MemberState,
    Replica,
    Shard,
    member_body,
    member_from_body,
    shard_body,
    shard_from_body,
)
from quorumkv.cluster.slot_ranges import SlotRange
from quorumkv.errors import InvalidCommand
from quorumkv.kv.command import Command

METADATA_COMMAND_FORMAT_VERSION = 1

METADATA_WRITE = b"QKV.METADATA"
"""The command name under which metadata commands travel in the log."""


@dataclass(frozen=True, slots=True)
class BootstrapCluster:
    """Create the cluster: its first members and shards (each shard at epoch 1)."""

    cluster_id: str
    members: tuple[Member, ...]
    shards: tuple[Shard, ...]


@dataclass(frozen=True, slots=True)
class AddMember:
    member: Member


@dataclass(frozen=True, slots=True)
class UpdateMemberAddress:
    node_id: int
    client_address: str
    peer_address: str


@dataclass(frozen=True, slots=True)
class SetMemberState:
    node_id: int
    state: MemberState


@dataclass(frozen=True, slots=True)
class RemoveMember:
    """Remove a member that hosts no replica any more."""

    node_id: int


@dataclass(frozen=True, slots=True)
class CreateShard:
    """A new shard owning no slots yet, at epoch 1."""

    shard_id: int
    replicas: tuple[Replica, ...]
    preferred_leader: int = 0


@dataclass(frozen=True, slots=True)
class SetShardReplicas:
    shard_id: int
    replicas: tuple[Replica, ...]
    preferred_leader: int
    expected_epoch: int


@dataclass(frozen=True, slots=True)
class AssignSlots:
    """Give `slot_ranges` to shard `shard_id`. Every shard owning some of those slots now must
    be named in `donor_epochs` as (shard id, its expected epoch); it loses them."""

    shard_id: int
    slot_ranges: tuple[SlotRange, ...]
    expected_epoch: int
    donor_epochs: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class RemoveShard:
    """Remove a shard that owns no slots any more."""

    shard_id: int
    expected_epoch: int


MetadataCommand = (BootstrapCluster | AddMember | UpdateMemberAddress | SetMemberState
                   | RemoveMember | CreateShard | SetShardReplicas | AssignSlots | RemoveShard)


def _replicas_body(replicas: tuple[Replica, ...]) -> list[Any]:
    return [[r.node_id, r.replica_id, r.role.value] for r in replicas]


def _replicas_from(body: Any) -> tuple[Replica, ...]:
    return shard_from_body([0, [], body, 1, 0]).replicas


def _ranges_from(body: Any) -> tuple[SlotRange, ...]:
    return shard_from_body([0, body, [], 1, 0]).slot_ranges


def _integer_pairs(body: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(body, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(type(x) is int for x in p) for p in body):
        raise ValueError("donor epochs must be a list of [shard id, epoch] pairs")
    return tuple((p[0], p[1]) for p in body)


_ENCODERS: dict[type, tuple[str, Callable[[Any], list[Any]]]] = {
    BootstrapCluster: ("bootstrap-cluster", lambda c: [
        c.cluster_id, [member_body(m) for m in c.members], [shard_body(s) for s in c.shards]]),
    AddMember: ("add-member", lambda c: [member_body(c.member)]),
    UpdateMemberAddress: ("update-member-address",
                          lambda c: [c.node_id, c.client_address, c.peer_address]),
    SetMemberState: ("set-member-state", lambda c: [c.node_id, c.state.value]),
    RemoveMember: ("remove-member", lambda c: [c.node_id]),
    CreateShard: ("create-shard", lambda c: [
        c.shard_id, _replicas_body(c.replicas), c.preferred_leader]),
    SetShardReplicas: ("set-shard-replicas", lambda c: [
        c.shard_id, _replicas_body(c.replicas), c.preferred_leader, c.expected_epoch]),
    AssignSlots: ("assign-slots", lambda c: [
        c.shard_id, [list(r) for r in c.slot_ranges], c.expected_epoch,
        [list(p) for p in c.donor_epochs]]),
    RemoveShard: ("remove-shard", lambda c: [c.shard_id, c.expected_epoch]),
}


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r:.80} is not a string")
    return value


def _integer(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"{value!r:.80} is not an integer")
    return value


_DECODERS: dict[str, tuple[int, Callable[..., MetadataCommand]]] = {
    "bootstrap-cluster": (3, lambda cluster_id, members, shards: BootstrapCluster(
        _text(cluster_id), tuple(member_from_body(m) for m in members),
        tuple(shard_from_body(s) for s in shards))),
    "add-member": (1, lambda member: AddMember(member_from_body(member))),
    "update-member-address": (3, lambda node, client, peer: UpdateMemberAddress(
        _integer(node), _text(client), _text(peer))),
    "set-member-state": (2, lambda node, state: SetMemberState(_integer(node),
                                                               MemberState(state))),
    "remove-member": (1, lambda node: RemoveMember(_integer(node))),
    "create-shard": (3, lambda shard, replicas, preferred: CreateShard(
        _integer(shard), _replicas_from(replicas), _integer(preferred))),
    "set-shard-replicas": (4, lambda shard, replicas, preferred, epoch: SetShardReplicas(
        _integer(shard), _replicas_from(replicas), _integer(preferred), _integer(epoch))),
    "assign-slots": (4, lambda shard, ranges, epoch, donors: AssignSlots(
        _integer(shard), _ranges_from(ranges), _integer(epoch), _integer_pairs(donors))),
    "remove-shard": (2, lambda shard, epoch: RemoveShard(_integer(shard), _integer(epoch))),
}


def encode_metadata_command(command: MetadataCommand) -> bytes:
    """The versioned msgpack record of `command`: [version, kind, field...]."""
    kind, fields = _ENCODERS[type(command)]
    return msgpack.packb(  # type: ignore[no-any-return,unused-ignore]
        [METADATA_COMMAND_FORMAT_VERSION, kind, *fields(command)], use_bin_type=True)


def decode_metadata_command(data: bytes) -> MetadataCommand:
    """The command `encode_metadata_command` produced `data` from; raises InvalidCommand."""
    try:
        record = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise InvalidCommand(f"metadata command is not msgpack ({error})") from error
    if not isinstance(record, list) or len(record) < 2:
        raise InvalidCommand("a metadata command is a list [version, kind, field...]")
    version, kind, fields = record[0], record[1], record[2:]
    if version != METADATA_COMMAND_FORMAT_VERSION or type(version) is not int:
        raise InvalidCommand(f"metadata command format version {version!r} (this build reads "
                             f"{METADATA_COMMAND_FORMAT_VERSION})")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None or len(fields) != decoder[0]:
        raise InvalidCommand(f"unknown metadata command {kind!r:.80} with {len(fields)} fields")
    try:
        return decoder[1](*fields)
    except (ValueError, TypeError) as error:
        raise InvalidCommand(f"metadata command {kind}: {error}") from error


def metadata_command(command: MetadataCommand, timestamp_ms: int) -> Command:
    """The log command carrying `command` (propose it to shard 0)."""
    return Command(METADATA_WRITE, (encode_metadata_command(command),), timestamp_ms)
