"""The peer wire format: what one node sends another, as versioned msgpack (never pickle).

Three kinds of record cross between nodes: Raft messages (raft.types.Message), and the two
records of a snapshot transfer, `SnapshotChunk` and `SnapshotChunkAck`, which the host streams
beside the Raft messages so that the core never holds snapshot data. A connection starts with a
`Handshake` naming the cluster, the node and its storage id (the identity of its data
directory: a node that comes back with its data lost has a new one); a node of another cluster,
or one whose storage is not the one its peers know, is refused with a `HandshakeRefused` saying
why (and, for lost storage, `code = REFUSED_STORAGE_LOST` so the refused node can stop). The
server also proxies client commands to a shard's leader with `ForwardRequest` and relays the
leader's `ForwardResponse` (server/forwarding.py), and hands the cluster metadata it knows to a
peer that connects (`ClusterMetadataPush`), so a node hosting no replica of the metadata shard
learns it within one round trip.

Every frame body is a msgpack array whose first element is `WIRE_FORMAT_VERSION` and second the
record kind. `decode_peer_message` raises `PeerFormatError` (with what was wrong) on anything
it cannot read: a peer's bad frame closes that connection, never the node.

Versions: 1 had no storage id in the handshake and no code in a refusal; a node of version 2
reads a version-1 frame as "another wire format" and refuses it with that reason, so a mixed
cluster says what is wrong instead of misreading records.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgpack

from quorumkv.errors import QuorumKVError
from quorumkv.raft.log import make_entry
from quorumkv.raft.types import ConfState, EntryType, Message, MessageType, SnapshotMeta

WIRE_FORMAT_VERSION = 2

REFUSED_STORAGE_LOST = "storage-lost"
"""HandshakeRefused.code: the caller's storage id is not the one the refusing node knows for
its node id (its data directory was lost or replaced); it must not rejoin under that id."""


class PeerFormatError(QuorumKVError):
    """A peer frame could not be decoded; the connection that carried it is closed."""


class RecordKind(enum.IntEnum):
    HANDSHAKE = 0
    RAFT = 1
    SNAPSHOT_CHUNK = 2
    SNAPSHOT_CHUNK_ACK = 3
    HANDSHAKE_REFUSED = 4
    FORWARD_REQUEST = 5
    FORWARD_RESPONSE = 6
    CLUSTER_METADATA_PUSH = 7


@dataclass(slots=True, frozen=True)
class Handshake:
    """First frame on a peer connection: who is calling, from which cluster, speaking what."""

    cluster_id: str
    node_id: int
    storage_id: str = ""
    wire_version: int = WIRE_FORMAT_VERSION


@dataclass(slots=True, frozen=True)
class SnapshotChunk:
    """One bounded piece of a shard image streamed from `source` to `target`.

    `stream_id` names one transfer; `sequence` counts chunks from 0; `checksum` is the crc32
    of `data`. The last chunk has `last` set; `message` is the Raft SNAPSHOT message the
    receiver steps into its core once the whole image is staged and verified.
    """

    group_id: int
    source: int
    target: int
    stream_id: int
    sequence: int
    data: bytes
    checksum: int
    last: bool
    meta: SnapshotMeta
    message: Message


@dataclass(slots=True, frozen=True)
class SnapshotChunkAck:
    """The receiver has staged chunk `sequence` (accepted) or abandoned the stream (not)."""

    group_id: int
    source: int
    target: int
    stream_id: int
    sequence: int
    accepted: bool


PeerMessage = Message | SnapshotChunk | SnapshotChunkAck


@dataclass(slots=True, frozen=True)
class HandshakeRefused:
    """The answer to a Handshake that is refused (another cluster, wrong node, lost storage);
    then close. `code` is "" or REFUSED_STORAGE_LOST, with `known_storage_id` the storage id
    the refusing node knows for the caller's node id."""

    reason: str
    code: str = ""
    known_storage_id: str = ""


class ForwardOutcome(enum.IntEnum):
    ANSWERED = 0  # `reply` is the command's answer (which may be an error reply)
    RETRY = 1  # nothing was done (not the leader, or the proposal was superseded): retry,
    # at `leader_id` if it is not 0


@dataclass(slots=True, frozen=True)
class ForwardRequest:
    """A client command proxied by node `source` to the node it believes leads `shard_id`."""

    source: int
    request_id: int
    shard_id: int
    name: bytes
    args: tuple[bytes, ...]


@dataclass(slots=True, frozen=True)
class ForwardResponse:
    """The leader's answer to ForwardRequest `request_id`: the reply (in the msgpack form of
    kv.reply.reply_to_wire, so that it does not depend on the client's RESP version), or a
    refusal (RETRY, nothing done) naming the leader it knows (0: none)."""

    request_id: int
    outcome: ForwardOutcome
    reply: Any
    leader_id: int = 0


@dataclass(slots=True, frozen=True)
class ClusterMetadataPush:
    """The cluster metadata the sender knows, as `cluster.metadata.encode_metadata` wrote it
    (checksummed, versioned; the receiver keeps it only if its epoch is newer)."""

    metadata: bytes


ForwardRecord = ForwardRequest | ForwardResponse
PeerRecord = (PeerMessage | Handshake | HandshakeRefused | ForwardRequest | ForwardResponse
              | ClusterMetadataPush)


def target_of(message: PeerMessage) -> int:
    """The replica a peer message is addressed to."""
    return message.target


# ---- encoding --------------------------------------------------------------------------------


def _conf_state_fields(conf: ConfState) -> list[Any]:
    return [list(conf.voters), list(conf.learners), list(conf.voters_outgoing),
            list(conf.learners_next), conf.auto_leave]


def _conf_state(fields: list[Any]) -> ConfState:
    voters, learners, outgoing, learners_next, auto_leave = fields
    return ConfState(tuple(voters), tuple(learners), tuple(outgoing), tuple(learners_next),
                     bool(auto_leave))


def _meta_fields(meta: SnapshotMeta | None) -> list[Any] | None:
    if meta is None:
        return None
    return [meta.index, meta.term, _conf_state_fields(meta.conf_state)]


def _meta(fields: list[Any] | None) -> SnapshotMeta | None:
    if fields is None:
        return None
    index, term, conf = fields
    return SnapshotMeta(index, term, _conf_state(conf))


def _message_fields(m: Message) -> list[Any]:
    return [int(m.type), m.group_id, m.source, m.target, m.term, m.log_term, m.index,
            [[e.term, e.index, int(e.type), e.data] for e in m.entries],
            m.commit, m.reject, m.reject_hint, _meta_fields(m.snapshot), m.context]


_MESSAGE_TYPES = {int(kind): kind for kind in MessageType}
_ENTRY_TYPES = {int(kind): kind for kind in EntryType}
"""Enum members by value: a dict lookup, where calling the enum class costs several times more
on the hot path (every entry of every append; an unknown value raises KeyError, reported as a
malformed record)."""


def _message(fields: list[Any]) -> Message:
    (kind, group_id, source, target, term, log_term, index, entries, commit, reject,
     reject_hint, snapshot, context) = fields
    entry_types = _ENTRY_TYPES
    return Message(
        type=_MESSAGE_TYPES[kind], group_id=group_id, source=source, target=target, term=term,
        log_term=log_term, index=index,
        entries=[make_entry(t, i, entry_types[k], d) for t, i, k, d in entries],
        commit=commit, reject=reject, reject_hint=reject_hint, snapshot=_meta(snapshot),
        context=context,
    )


def encode_peer_message(record: PeerRecord) -> bytes:
    """The frame body for one record."""
    if isinstance(record, Message):
        body: list[Any] = [RecordKind.RAFT, _message_fields(record)]
    elif isinstance(record, SnapshotChunk):
        body = [RecordKind.SNAPSHOT_CHUNK,
                [record.group_id, record.source, record.target, record.stream_id,
                 record.sequence, record.data, record.checksum, record.last,
                 _meta_fields(record.meta), _message_fields(record.message)]]
    elif isinstance(record, SnapshotChunkAck):
        body = [RecordKind.SNAPSHOT_CHUNK_ACK,
                [record.group_id, record.source, record.target, record.stream_id,
                 record.sequence, record.accepted]]
    elif isinstance(record, Handshake):
        body = [RecordKind.HANDSHAKE, [record.cluster_id, record.node_id, record.storage_id,
                                       record.wire_version]]
    else:
        body = _encode_server_record(record)
    return msgpack.packb([WIRE_FORMAT_VERSION, *body], use_bin_type=True)  # type: ignore[no-any-return]


def _encode_server_record(record: HandshakeRefused | ForwardRequest | ForwardResponse
                          | ClusterMetadataPush) -> list[Any]:
    if isinstance(record, HandshakeRefused):
        return [RecordKind.HANDSHAKE_REFUSED,
                [record.reason, record.code, record.known_storage_id]]
    if isinstance(record, ClusterMetadataPush):
        return [RecordKind.CLUSTER_METADATA_PUSH, [record.metadata]]
    if isinstance(record, ForwardRequest):
        return [RecordKind.FORWARD_REQUEST,
                [record.source, record.request_id, record.shard_id, record.name,
                 list(record.args)]]
    return [RecordKind.FORWARD_RESPONSE,
            [record.request_id, int(record.outcome), record.reply, record.leader_id]]


def decode_peer_message(frame: bytes) -> PeerRecord:
    """The record in one frame body. Raises PeerFormatError if it is not a valid record."""
    try:
        version, kind, fields = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise PeerFormatError(f"peer frame is not a msgpack record: {error}") from error
    if version != WIRE_FORMAT_VERSION:
        raise PeerFormatError(
            f"peer speaks wire format {version}, this node speaks {WIRE_FORMAT_VERSION}; "
            "run the same quorumkv version on every node")
    try:
        return _decode_record(RecordKind(kind), fields)
    except PeerFormatError:
        raise
    except Exception as error:
        raise PeerFormatError(f"malformed peer record of kind {kind}: {error}") from error


def _decode_record(kind: RecordKind, fields: list[Any]) -> PeerRecord:
    if kind is RecordKind.RAFT:
        return _message(fields)
    if kind is RecordKind.SNAPSHOT_CHUNK:
        (group_id, source, target, stream_id, sequence, data, checksum, last, meta,
         message) = fields
        decoded_meta = _meta(meta)
        if decoded_meta is None:
            raise PeerFormatError("snapshot chunk without its snapshot point")
        return SnapshotChunk(group_id, source, target, stream_id, sequence, data, checksum,
                             bool(last), decoded_meta, _message(message))
    if kind is RecordKind.SNAPSHOT_CHUNK_ACK:
        group_id, source, target, stream_id, sequence, accepted = fields
        return SnapshotChunkAck(group_id, source, target, stream_id, sequence, bool(accepted))
    if kind is RecordKind.HANDSHAKE:
        cluster_id, node_id, storage_id, wire_version = fields
        return Handshake(str(cluster_id), int(node_id), str(storage_id), int(wire_version))
    return _decode_server_record(kind, fields)


def _decode_server_record(kind: RecordKind, fields: list[Any]) -> PeerRecord:
    if kind is RecordKind.HANDSHAKE_REFUSED:
        reason, code, known_storage_id = fields
        return HandshakeRefused(str(reason), str(code), str(known_storage_id))
    if kind is RecordKind.FORWARD_REQUEST:
        source, request_id, shard_id, name, args = fields
        if not isinstance(name, bytes) or not all(isinstance(a, bytes) for a in args):
            raise PeerFormatError("forwarded command name and arguments must be bytes")
        return ForwardRequest(int(source), int(request_id), int(shard_id), name, tuple(args))
    if kind is RecordKind.CLUSTER_METADATA_PUSH:
        (metadata,) = fields
        if not isinstance(metadata, bytes):
            raise PeerFormatError("pushed cluster metadata must be bytes")
        return ClusterMetadataPush(metadata)
    request_id, outcome, reply, leader_id = fields
    return ForwardResponse(int(request_id), ForwardOutcome(outcome), reply, int(leader_id))
