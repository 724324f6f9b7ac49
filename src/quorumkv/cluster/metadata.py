"""The cluster metadata: who the members are and which shard owns which slots, where.

Theory of operation. Shard 0, the metadata shard, replicates one `ClusterMetadata`:

- the cluster id and the *cluster epoch*, bumped by every change of the metadata;
- the members: node id, the address clients connect to, the address peers connect to,
  labels (free-form key/value pairs such as zone=a, used by placement) and a state
  (joining, active, draining);
- the shards: shard id, the slot ranges the shard owns, its replicas (node id, replica id,
  voter or learner), the node preferred as its leader, and its *epoch*, bumped on every change
  of its replicas or slots. Shard 0 itself is listed, owning no slots.

Leaders are not here: they are observed (each node knows whom its replicas follow), never
replicated, so a leader change costs no metadata write.

Records are immutable values; the metadata state machine (metadata_state_machine.py) builds new
ones. Each record has a msgpack body (`*_body` / `*_from_body`); `encode_record` frames a body
with a format version and a CRC32 of the body, and `decode_record` checks both, so a damaged or
foreign record is refused (errors.CorruptStorage) instead of being misread. `encode_metadata`
frames the whole metadata the same way, for shipping it to nodes that host no replica of
shard 0 and for caching it in a node's own store.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zlib import crc32

import msgpack  # type: ignore[import-untyped,unused-ignore]

from quorumkv import limits
from quorumkv.cluster.slot_ranges import SlotRange, normalize
from quorumkv.errors import CorruptStorage

METADATA_FORMAT_VERSION = 1
METADATA_SHARD_ID = 0
"""The shard holding this metadata; it owns no slots."""


class MemberState(enum.Enum):
    """Where a member is in its life: placement puts new replicas on active members only."""

    JOINING = "joining"
    ACTIVE = "active"
    DRAINING = "draining"


class ReplicaRole(enum.Enum):
    """A voter counts in its shard's quorums; a learner receives the log without voting."""

    VOTER = "voter"
    LEARNER = "learner"


@dataclass(frozen=True, slots=True)
class Member:
    """One node of the cluster. Addresses are "host:port"."""

    node_id: int
    client_address: str
    peer_address: str
    labels: tuple[tuple[str, str], ...] = ()
    state: MemberState = MemberState.ACTIVE

    def label(self, key: str) -> str | None:
        """The value of label `key`, or None."""
        return next((value for name, value in self.labels if name == key), None)


@dataclass(frozen=True, slots=True)
class Replica:
    """One copy of a shard: on node `node_id`, known to the shard's Raft group as
    `replica_id` (unique within the shard, never reused)."""

    node_id: int
    replica_id: int
    role: ReplicaRole = ReplicaRole.VOTER


@dataclass(frozen=True, slots=True)
class Shard:
    """A Raft group owning `slot_ranges` (normalized), hosted by `replicas` (sorted by node)."""

    shard_id: int
    slot_ranges: tuple[SlotRange, ...]
    replicas: tuple[Replica, ...]
    epoch: int = 1
    preferred_leader: int = 0
    """Node id of the replica that should lead when it can (0: none)."""

    def node_ids(self) -> tuple[int, ...]:
        return tuple(replica.node_id for replica in self.replicas)

    def voters(self) -> tuple[Replica, ...]:
        return tuple(r for r in self.replicas if r.role is ReplicaRole.VOTER)

    def replica_on(self, node_id: int) -> Replica | None:
        """This shard's replica on node `node_id`, or None."""
        return next((r for r in self.replicas if r.node_id == node_id), None)


@dataclass(frozen=True)
class ClusterMetadata:
    """Everything shard 0 replicates. The mappings must not be changed in place."""

    cluster_id: str
    cluster_epoch: int
    members: Mapping[int, Member] = field(default_factory=dict)
    shards: Mapping[int, Shard] = field(default_factory=dict)

    def data_shards(self) -> list[Shard]:
        """Every shard but the metadata shard, by shard id."""
        return [self.shards[i] for i in sorted(self.shards) if i != METADATA_SHARD_ID]

    def shards_on(self, node_id: int) -> list[Shard]:
        """The shards with a replica on `node_id`, by shard id."""
        return [self.shards[i] for i in sorted(self.shards)
                if self.shards[i].replica_on(node_id) is not None]


def make_shard(shard_id: int, slot_ranges: Iterable[SlotRange], replicas: Iterable[Replica],
               epoch: int = 1, preferred_leader: int = 0) -> Shard:
    """A Shard with its ranges normalized and its replicas sorted by node id."""
    return Shard(shard_id, normalize(slot_ranges),
                 tuple(sorted(replicas, key=lambda r: r.node_id)), epoch, preferred_leader)


def make_member(node_id: int, client_address: str, peer_address: str,
                labels: Mapping[str, str] | Iterable[tuple[str, str]] = (),
                state: MemberState = MemberState.ACTIVE) -> Member:
    """A Member with its labels sorted by key."""
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    return Member(node_id, client_address, peer_address, tuple(sorted(pairs)), state)


def parse_address(text: str) -> tuple[str, int] | None:
    """(host, port) of "host:port" (IPv6 hosts may be bracketed), or None if malformed."""
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


# ---- validation -------------------------------------------------------------------------------


def problems(metadata: ClusterMetadata) -> list[str]:
    """What makes `metadata` inconsistent (empty when it is sound): every replica on a member,
    no node twice in a shard, unique replica ids, at least one voter, valid addresses, and no
    slot owned by two shards."""
    found = [member_problem(member) for member in metadata.members.values()]
    found += [shard_problem(shard, metadata.members) for shard in metadata.shards.values()]
    found.append(overlap_problem(metadata.shards.values()))
    return [problem for problem in found if problem]


def member_problem(member: Member) -> str:
    """What is wrong with `member` alone ("" if nothing)."""
    for address in (member.client_address, member.peer_address):
        if parse_address(address) is None:
            return f"node {member.node_id}: address {address!r} is not host:port"
    return "" if member.node_id > 0 else f"node id {member.node_id} is not positive"


def shard_problem(shard: Shard, members: Mapping[int, Member]) -> str:
    """What is wrong with `shard` given the `members` its replicas are on ("" if nothing)."""
    name = f"shard {shard.shard_id}"
    if not 0 <= shard.shard_id <= limits.shard_id_max:
        return f"{name}: shard ids are within 0..{limits.shard_id_max}"
    if shard.shard_id == METADATA_SHARD_ID and shard.slot_ranges:
        return f"{name}: the metadata shard owns no slots"
    if not all(slot_range.is_valid() for slot_range in shard.slot_ranges):
        return f"{name}: slot ranges {list(shard.slot_ranges)} are not within 0..16383"
    nodes = shard.node_ids()
    if len(set(nodes)) != len(nodes):
        return f"{name}: a node hosts two of its replicas"
    if len({r.replica_id for r in shard.replicas}) != len(shard.replicas):
        return f"{name}: two replicas share a replica id"
    missing = [node for node in nodes if node not in members]
    if missing:
        return f"{name}: replicas on nodes {missing} which are not members"
    if not shard.voters():
        return f"{name}: no voter"
    if shard.preferred_leader and shard.preferred_leader not in nodes:
        return f"{name}: preferred leader {shard.preferred_leader} hosts no replica of it"
    return ""


def overlap_problem(shards: Iterable[Shard]) -> str:
    """The first slot two of `shards` both own ("" if none)."""
    owners: list[tuple[int, int, int]] = sorted(
        (start, end, shard.shard_id) for shard in shards for start, end in shard.slot_ranges)
    for (_, end, owner), (start, _, other) in zip(owners, owners[1:], strict=False):
        if start <= end:
            return f"slot {start} is owned by both shard {owner} and shard {other}"
    return ""


# ---- encoding ---------------------------------------------------------------------------------


def member_body(member: Member) -> list[Any]:
    return [member.node_id, member.client_address, member.peer_address,
            [list(pair) for pair in member.labels], member.state.value]


def shard_body(shard: Shard) -> list[Any]:
    return [shard.shard_id, [list(r) for r in shard.slot_ranges],
            [[r.node_id, r.replica_id, r.role.value] for r in shard.replicas],
            shard.epoch, shard.preferred_leader]


def member_from_body(body: Any) -> Member:
    """The Member `member_body` made `body` from; raises ValueError otherwise."""
    node_id, client, peer, labels, state = _fields(body, 5, "member")
    pairs = [_fields(pair, 2, "label") for pair in _list(labels, "labels")]
    return Member(_integer(node_id), _text(client), _text(peer),
                  tuple((_text(key), _text(value)) for key, value in pairs), MemberState(state))


def shard_from_body(body: Any) -> Shard:
    """The Shard `shard_body` made `body` from; raises ValueError otherwise."""
    shard_id, ranges, replicas, epoch, preferred = _fields(body, 5, "shard")
    pairs = [_fields(pair, 2, "slot range") for pair in _list(ranges, "slot ranges")]
    triples = [_fields(triple, 3, "replica") for triple in _list(replicas, "replicas")]
    return Shard(_integer(shard_id),
                 tuple(SlotRange(_integer(start), _integer(end)) for start, end in pairs),
                 tuple(Replica(_integer(node), _integer(replica), ReplicaRole(role))
                       for node, replica, role in triples),
                 _integer(epoch), _integer(preferred))


def encode_record(body: Any) -> bytes:
    """`body` framed as [format version, crc32 of the body's bytes, the body's bytes]."""
    payload = msgpack.packb(body, use_bin_type=True)
    return msgpack.packb(  # type: ignore[no-any-return,unused-ignore]
        [METADATA_FORMAT_VERSION, crc32(payload), payload], use_bin_type=True)


def decode_record(data: bytes, what: str) -> Any:
    """The body `encode_record` framed; raises errors.CorruptStorage naming `what` if the frame,
    version or checksum is wrong."""
    try:
        version, checksum, payload = msgpack.unpackb(data, raw=False)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise CorruptStorage("cluster metadata", f"{what}: not a framed record ({error})") from error
    if version != METADATA_FORMAT_VERSION:
        raise CorruptStorage("cluster metadata", f"{what}: format version {version!r} (this "
                             f"build reads {METADATA_FORMAT_VERSION})")
    if not isinstance(payload, bytes) or crc32(payload) != checksum:
        raise CorruptStorage("cluster metadata", f"{what}: checksum mismatch")
    return msgpack.unpackb(payload, raw=False, strict_map_key=True)


def encode_metadata(metadata: ClusterMetadata) -> bytes:
    """The whole metadata as one checksummed, versioned record."""
    return encode_record([
        metadata.cluster_id, metadata.cluster_epoch,
        [member_body(metadata.members[n]) for n in sorted(metadata.members)],
        [shard_body(metadata.shards[s]) for s in sorted(metadata.shards)],
    ])


def decode_metadata(data: bytes) -> ClusterMetadata:
    """The metadata `encode_metadata` produced `data` from; raises errors.CorruptStorage."""
    body = decode_record(data, "metadata")
    try:
        cluster_id, epoch, members, shards = _fields(body, 4, "metadata")
        member_list = [member_from_body(m) for m in _list(members, "members")]
        shard_list = [shard_from_body(s) for s in _list(shards, "shards")]
        return ClusterMetadata(_text(cluster_id), _integer(epoch),
                               {m.node_id: m for m in member_list},
                               {s.shard_id: s for s in shard_list})
    except ValueError as error:
        raise CorruptStorage("cluster metadata", f"metadata: {error}") from error


def _fields(value: Any, count: int, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != count:
        raise ValueError(f"a {what} must be a list of {count} fields, not {value!r:.80}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, not {value!r:.80}")
    return value


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r:.80} is not an integer")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r:.80} is not a string")
    return value
