"""The state machine of shard 0: metadata commands applied in log order, and reads.

Theory of operation. The commands (metadata_commands.py) travel in the log under the internal
name QKV.METADATA inside the ordinary command record, so the host applies shard 0's entries
exactly as it applies the others and only picks another `apply` (state_machines.py).

`apply(store, command)` is deterministic and never raises on bad input: a command that does
not decode or does not fit the current metadata changes nothing and answers an error reply;
one that fits answers +OK. Each command checks everything before it writes (its writes are
collected and made only on success), so an error never leaves half a change behind. Every
change bumps the cluster epoch; a change of a shard's replicas or slots bumps that shard's
epoch.

Commands that change a shard carry the epoch their planner read (`expected_epoch`): if the
shard has changed since, the command is refused with a STALEEPOCH error, so two planners
working from the same old metadata cannot overwrite each other's decision: the second one reads
again and plans again (compare-and-set). assign-slots names the epoch of every shard it takes
slots from as well, and is refused if a current owner of those slots is not named.

The metadata lives in shard 0's key space, one key per member and per shard, so a change writes
only what it changes:

    b"mc"                     -> the cluster record: [cluster id, cluster epoch]
    b"mm" + node id (8 B BE)  -> a member record
    b"ms" + shard id (8 B BE) -> a shard record

each framed by metadata.encode_record (format version and CRC32). `load_metadata(store)` reads
it all back; `read(store, QKV.METADATA-READ)` answers it as one encoded record, which is how a
node that hosts no replica of shard 0 learns the topology.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from quorumkv import limits
from quorumkv.cluster.metadata import (
    METADATA_SHARD_ID,
    ClusterMetadata,
    Member,
    Shard,
    decode_record,
    encode_metadata,
    encode_record,
    make_shard,
    member_body,
    member_from_body,
    member_problem,
    parse_address,
    problems,
    shard_body,
    shard_from_body,
    shard_problem,
)
from quorumkv.cluster.metadata_commands import (
    METADATA_WRITE,
    AddMember,
    AssignSlots,
    BootstrapCluster,
    CreateShard,
    RemoveMember,
    RemoveShard,
    SetMemberState,
    SetShardReplicas,
    UpdateMemberAddress,
    decode_metadata_command,
)
from quorumkv.cluster.slot_ranges import SlotRange, format_ranges, normalize, overlap, subtract
from quorumkv.errors import CorruptStorage, InvalidCommand
from quorumkv.kv.command import Command
from quorumkv.kv.reply import OK, ErrorReply, Reply, arity_error, unknown_command_error
from quorumkv.kv.store import KeyValueStore

METADATA_READ = b"QKV.METADATA-READ"
"""The read answering the whole metadata as one encoded record (nil before bootstrap)."""

_Record = TypeVar("_Record")

CLUSTER_KEY = b"mc"
MEMBER_PREFIX = b"mm"
SHARD_PREFIX = b"ms"


# ---- the store layout -------------------------------------------------------------------------


def member_key(node_id: int) -> bytes:
    return MEMBER_PREFIX + node_id.to_bytes(8, "big")


def shard_key(shard_id: int) -> bytes:
    return SHARD_PREFIX + shard_id.to_bytes(8, "big")


def _prefix_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _scan_prefix(store: KeyValueStore, prefix: bytes) -> list[bytes]:
    """Every value stored under `prefix`, in key order, read in bounded pages."""
    values: list[bytes] = []
    start, end = prefix, _prefix_end(prefix)
    while True:
        rows = store.scan(start, end, limits.store_page_records_max)
        values.extend(value for _, value in rows)
        if len(rows) < limits.store_page_records_max:
            return values
        start = rows[-1][0] + b"\0"


def _decoded(raw: bytes, what: str, parse: Callable[[Any], _Record]) -> _Record:
    """`parse` of the record `raw`; a record that is framed right but shaped wrong is as
    corrupt as one that fails its checksum."""
    try:
        return parse(decode_record(raw, what))
    except (ValueError, TypeError) as error:
        raise CorruptStorage("cluster metadata", f"{what}: {error}") from error


def _cluster_fields(body: Any) -> tuple[str, int]:
    cluster_id, epoch = body
    if not isinstance(cluster_id, str) or type(epoch) is not int:
        raise ValueError(f"[cluster id, epoch] expected, not {body!r:.80}")
    return cluster_id, epoch


def _cluster_record(store: KeyValueStore) -> tuple[str, int] | None:
    raw = store.get(CLUSTER_KEY)
    return None if raw is None else _decoded(raw, "cluster record", _cluster_fields)


def _load_member(store: KeyValueStore, node_id: int) -> Member | None:
    raw = store.get(member_key(node_id))
    return None if raw is None else _decoded(raw, f"member {node_id}", member_from_body)


def _load_shard(store: KeyValueStore, shard_id: int) -> Shard | None:
    raw = store.get(shard_key(shard_id))
    return None if raw is None else _decoded(raw, f"shard {shard_id}", shard_from_body)


def _load_members(store: KeyValueStore) -> dict[int, Member]:
    members = [_decoded(raw, "member", member_from_body)
               for raw in _scan_prefix(store, MEMBER_PREFIX)]
    return {member.node_id: member for member in members}


def _load_shards(store: KeyValueStore) -> dict[int, Shard]:
    shards = [_decoded(raw, "shard", shard_from_body)
              for raw in _scan_prefix(store, SHARD_PREFIX)]
    return {shard.shard_id: shard for shard in shards}


def load_metadata(store: KeyValueStore) -> ClusterMetadata | None:
    """The metadata stored in shard 0's `store`, or None before bootstrap. Raises
    errors.CorruptStorage if a record is damaged."""
    header = _cluster_record(store)
    if header is None:
        return None
    return ClusterMetadata(header[0], header[1], _load_members(store), _load_shards(store))


# ---- applying ---------------------------------------------------------------------------------


def _error(text: str) -> ErrorReply:
    return ErrorReply(b"ERR " + text.encode())


def _stale(shard: Shard, expected_epoch: int) -> ErrorReply | None:
    if shard.epoch == expected_epoch:
        return None
    return ErrorReply(
        b"STALEEPOCH shard %d is at epoch %d, not %d: the metadata changed since it was read; "
        b"read it again and plan again" % (shard.shard_id, shard.epoch, expected_epoch))


class _Change:
    """The writes one command makes, kept until the command is known to succeed."""

    def __init__(self, store: KeyValueStore, cluster_id: str, epoch: int) -> None:
        self.store = store
        self.cluster_id = cluster_id
        self.epoch = epoch
        self.writes: list[tuple[bytes, bytes | None]] = []

    def put_member(self, member: Member) -> None:
        self.writes.append((member_key(member.node_id), encode_record(member_body(member))))

    def put_shard(self, shard: Shard) -> None:
        self.writes.append((shard_key(shard.shard_id), encode_record(shard_body(shard))))

    def delete(self, key: bytes) -> None:
        self.writes.append((key, None))

    def commit(self) -> Reply:
        """Write everything with the cluster epoch bumped; answers +OK."""
        self.writes.append((CLUSTER_KEY, encode_record([self.cluster_id, self.epoch + 1])))
        for key, value in self.writes:
            if value is None:
                self.store.delete(key)
            else:
                self.store.put(key, value)
        return OK


def apply(store: KeyValueStore, command: Command) -> Reply:
    """Apply one committed command of shard 0 to its `store`; answers +OK or an error."""
    if command.name != METADATA_WRITE:
        return unknown_command_error(command.name, command.args)
    if len(command.args) != 1:
        return arity_error(METADATA_WRITE)
    try:
        change = decode_metadata_command(command.args[0])
    except InvalidCommand as error:
        return _error(str(error))
    header = _cluster_record(store)
    if isinstance(change, BootstrapCluster):
        return _bootstrap(store, header, change)
    if header is None:
        return _error("the cluster is not bootstrapped yet: bootstrap it first")
    return _APPLIERS[type(change)](_Change(store, *header), change)


def _bootstrap(store: KeyValueStore, header: tuple[str, int] | None,
               command: BootstrapCluster) -> Reply:
    members = {member.node_id: member for member in command.members}
    shards = {shard.shard_id: shard for shard in command.shards}
    if header is not None:
        same = header[0] == command.cluster_id and _load_members(store) == members and (
            _load_shards(store) == shards)
        # A retried bootstrap of the same cluster is answered as the first one was.
        return OK if same else _error(f"cluster {header[0]!r} is already bootstrapped")
    found = problems(ClusterMetadata(command.cluster_id, 0, members, shards))
    if len(members) != len(command.members) or len(shards) != len(command.shards):
        found.append("a node id or shard id is listed twice")
    if METADATA_SHARD_ID not in shards:
        found.append("the metadata shard 0 is missing")
    if len(members) > limits.cluster_members_max:
        found.append(f"more than {limits.cluster_members_max} members")
    if found:
        return _error("invalid bootstrap: " + "; ".join(found))
    change = _Change(store, command.cluster_id, 0)
    for member in command.members:
        change.put_member(member)
    for shard in command.shards:
        change.put_shard(shard)
    return change.commit()


def _add_member(change: _Change, command: AddMember) -> Reply:
    member = command.member
    if _load_member(change.store, member.node_id) is not None:
        return _error(f"node {member.node_id} is already a member")
    problem = member_problem(member)
    if problem:
        return _error(problem)
    if len(_scan_prefix(change.store, MEMBER_PREFIX)) >= limits.cluster_members_max:
        return _error(f"the cluster has {limits.cluster_members_max} members, the most it may "
                      "have; remove one first")
    change.put_member(member)
    return change.commit()


def _update_member_address(change: _Change, command: UpdateMemberAddress) -> Reply:
    member = _load_member(change.store, command.node_id)
    if member is None:
        return _error(f"node {command.node_id} is not a member")
    for address in (command.client_address, command.peer_address):
        if parse_address(address) is None:
            return _error(f"node {command.node_id}: address {address!r} is not host:port")
    change.put_member(Member(member.node_id, command.client_address, command.peer_address,
                             member.labels, member.state))
    return change.commit()


def _set_member_state(change: _Change, command: SetMemberState) -> Reply:
    member = _load_member(change.store, command.node_id)
    if member is None:
        return _error(f"node {command.node_id} is not a member")
    change.put_member(Member(member.node_id, member.client_address, member.peer_address,
                             member.labels, command.state))
    return change.commit()


def _remove_member(change: _Change, command: RemoveMember) -> Reply:
    if _load_member(change.store, command.node_id) is None:
        return _error(f"node {command.node_id} is not a member")
    hosted = [s.shard_id for s in _load_shards(change.store).values()
              if s.replica_on(command.node_id) is not None]
    if hosted:
        return _error(f"node {command.node_id} still hosts replicas of shards {hosted}: move "
                      "them to other nodes first")
    change.delete(member_key(command.node_id))
    return change.commit()


def _shard_fits(change: _Change, shard: Shard) -> ErrorReply | None:
    members = {node: member for node in shard.node_ids()
               if (member := _load_member(change.store, node)) is not None}
    problem = shard_problem(shard, members)
    return _error(problem) if problem else None


def _create_shard(change: _Change, command: CreateShard) -> Reply:
    if _load_shard(change.store, command.shard_id) is not None:
        return _error(f"shard {command.shard_id} already exists")
    shard = make_shard(command.shard_id, (), command.replicas, 1, command.preferred_leader)
    refused = _shard_fits(change, shard)
    if refused is not None:
        return refused
    change.put_shard(shard)
    return change.commit()


def _set_shard_replicas(change: _Change, command: SetShardReplicas) -> Reply:
    shard = _load_shard(change.store, command.shard_id)
    if shard is None:
        return _error(f"shard {command.shard_id} does not exist")
    refused = _stale(shard, command.expected_epoch)
    if refused is not None:
        return refused
    updated = make_shard(shard.shard_id, shard.slot_ranges, command.replicas, shard.epoch + 1,
                         command.preferred_leader)
    refused = _shard_fits(change, updated)
    if refused is not None:
        return refused
    change.put_shard(updated)
    return change.commit()


def _assign_slots(change: _Change, command: AssignSlots) -> Reply:
    shards = _load_shards(change.store)
    target = shards.get(command.shard_id)
    if target is None:
        return _error(f"shard {command.shard_id} does not exist")
    ranges = normalize(command.slot_ranges)
    refused = _stale(target, command.expected_epoch) or _check_ranges(target, ranges)
    if refused is not None:
        return refused
    donors: dict[int, Shard] = {}
    for shard_id, epoch in command.donor_epochs:
        donor = shards.get(shard_id)
        if donor is None or shard_id == target.shard_id:
            return _error(f"donor shard {shard_id} does not exist or is the target")
        refused = _stale(donor, epoch)
        if refused is not None:
            return refused
        donors[shard_id] = donor
    refused = _check_owners(shards.values(), target, donors, ranges)
    if refused is not None:
        return refused
    change.put_shard(make_shard(target.shard_id, target.slot_ranges + ranges, target.replicas,
                                target.epoch + 1, target.preferred_leader))
    for donor in donors.values():
        change.put_shard(make_shard(donor.shard_id, subtract(donor.slot_ranges, ranges),
                                    donor.replicas, donor.epoch + 1, donor.preferred_leader))
    return change.commit()


def _check_ranges(target: Shard, ranges: tuple[SlotRange, ...]) -> ErrorReply | None:
    if not ranges or not all(slot_range.is_valid() for slot_range in ranges):
        return _error(f"slot ranges [{format_ranges(ranges)}] are empty or not within "
                      "0..16383")
    if target.shard_id == METADATA_SHARD_ID:
        return _error("the metadata shard 0 owns no slots")
    return None


def _check_owners(shards: Iterable[Shard], target: Shard, donors: dict[int, Shard],
                  ranges: tuple[SlotRange, ...]) -> ErrorReply | None:
    """Every current owner of a slot in `ranges` is the target or a named donor, and every
    named donor owns some of them."""
    for shard in shards:
        owned = overlap(shard.slot_ranges, ranges)
        if shard.shard_id == target.shard_id:
            continue
        if owned and shard.shard_id not in donors:
            return ErrorReply(
                b"STALEEPOCH slots %b are owned by shard %d, which the command does not name "
                b"as a donor; read the metadata again and plan again"
                % (format_ranges(owned).encode(), shard.shard_id))
        if not owned and shard.shard_id in donors:
            return _error(f"donor shard {shard.shard_id} owns none of the slots "
                          f"{format_ranges(ranges)}")
    return None


def _remove_shard(change: _Change, command: RemoveShard) -> Reply:
    shard = _load_shard(change.store, command.shard_id)
    if shard is None:
        return _error(f"shard {command.shard_id} does not exist")
    if shard.shard_id == METADATA_SHARD_ID:
        return _error("the metadata shard 0 cannot be removed")
    refused = _stale(shard, command.expected_epoch)
    if refused is not None:
        return refused
    if shard.slot_ranges:
        return _error(f"shard {shard.shard_id} still owns slots "
                      f"{format_ranges(shard.slot_ranges)}: assign them elsewhere first")
    change.delete(shard_key(shard.shard_id))
    return change.commit()


_APPLIERS: dict[type, Callable[[_Change, Any], Reply]] = {
    AddMember: _add_member,
    UpdateMemberAddress: _update_member_address,
    SetMemberState: _set_member_state,
    RemoveMember: _remove_member,
    CreateShard: _create_shard,
    SetShardReplicas: _set_shard_replicas,
    AssignSlots: _assign_slots,
    RemoveShard: _remove_shard,
}


# ---- reading ----------------------------------------------------------------------------------


def read(store: KeyValueStore, name: bytes, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """Answer a read of shard 0: QKV.METADATA-READ gives the encoded metadata (nil before
    bootstrap; decode it with metadata.decode_metadata)."""
    if name != METADATA_READ:
        return unknown_command_error(name, args)
    if args:
        return arity_error(METADATA_READ)
    metadata = load_metadata(store)
    return None if metadata is None else encode_metadata(metadata)


def validate(name: bytes, args: tuple[bytes, ...]) -> ErrorReply | None:
    """The error refusing `name` on shard 0 before it is proposed or read, or None."""
    if name == METADATA_WRITE:
        return None if len(args) == 1 else arity_error(name)
    if name == METADATA_READ:
        return None if not args else arity_error(name)
    return unknown_command_error(name, args)


def is_write(name: bytes) -> bool:
    """Whether `name` changes shard 0 (goes through its log)."""
    return name == METADATA_WRITE
