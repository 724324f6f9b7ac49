"""The peer wire format round-trips every record and rejects what it cannot read."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumkv.codec.peer import (
    WIRE_FORMAT_VERSION,
    ClusterMetadataPush,
    Handshake,
    PeerFormatError,
    SnapshotChunk,
    SnapshotChunkAck,
    decode_peer_message,
    encode_peer_message,
)
from quorumkv.raft.types import ConfState, Entry, EntryType, Message, MessageType, SnapshotMeta

ids = st.integers(min_value=0, max_value=2**63 - 1)
small_ids = st.integers(min_value=0, max_value=1000)
replica_sets = st.lists(small_ids, max_size=5).map(tuple)
conf_states = st.builds(ConfState, replica_sets, replica_sets, replica_sets, replica_sets,
                        st.booleans())
metas = st.builds(SnapshotMeta, ids, ids, conf_states)
entries = st.builds(Entry, ids, ids, st.sampled_from(EntryType), st.binary(max_size=64))
messages = st.builds(
    Message, st.sampled_from(MessageType), ids, small_ids, small_ids, ids, ids, ids,
    st.lists(entries, max_size=4), ids, st.booleans(), ids, st.none() | metas,
    st.binary(max_size=16))


@given(messages)
def test_raft_messages_round_trip(message: Message) -> None:
    """Every Raft message decodes to an equal message."""
    assert decode_peer_message(encode_peer_message(message)) == message


@given(messages, metas, st.binary(max_size=256), ids, st.booleans())
def test_snapshot_chunks_round_trip(message: Message, meta: SnapshotMeta, data: bytes,
                                    sequence: int, last: bool) -> None:
    """Snapshot chunks and their acknowledgements decode to equal records."""
    chunk = SnapshotChunk(3, 1, 2, 7, sequence, data, 12345, last, meta, message)
    assert decode_peer_message(encode_peer_message(chunk)) == chunk
    ack = SnapshotChunkAck(3, 2, 1, 7, sequence, last)
    assert decode_peer_message(encode_peer_message(ack)) == ack


def test_handshake_round_trips() -> None:
    """A handshake keeps the cluster id, node id, storage id and wire version."""
    handshake = Handshake("cluster-a", 4, "5f0c2a9e4b7d4c1e8a3b6d2f9e0c1a7b")
    assert decode_peer_message(encode_peer_message(handshake)) == handshake


def test_a_version_1_handshake_is_refused_as_another_wire_format() -> None:
    """A node of the previous wire format (handshake without a storage id) is refused with a
    reason naming both versions, not misread."""
    frame = msgpack.packb([1, 0, ["cluster-a", 4, 1]])
    with pytest.raises(PeerFormatError, match="wire format 1, this node speaks 2"):
        decode_peer_message(frame)


def test_cluster_metadata_push_round_trips_and_refuses_text() -> None:
    """A metadata push carries its bytes unchanged; a push whose payload is not bytes is a
    malformed record."""
    push = ClusterMetadataPush(b"\x01\x02encoded")
    assert decode_peer_message(encode_peer_message(push)) == push
    frame = msgpack.packb([WIRE_FORMAT_VERSION, 7, ["text"]])
    with pytest.raises(PeerFormatError, match="must be bytes"):
        decode_peer_message(frame)


def test_other_wire_version_is_refused_with_a_reason() -> None:
    """A frame from a different wire format version is refused, naming both versions."""
    frame = msgpack.packb([WIRE_FORMAT_VERSION + 1, 0, ["c", 1, 1]])
    with pytest.raises(PeerFormatError, match=f"wire format {WIRE_FORMAT_VERSION + 1}"):
        decode_peer_message(frame)


@given(st.binary(max_size=64))
def test_garbage_gives_a_format_error_never_another_exception(frame: bytes) -> None:
    """Arbitrary bytes either decode to a record or raise PeerFormatError."""
    with contextlib.suppress(PeerFormatError):
        decode_peer_message(frame)


@pytest.mark.parametrize("position", ["message", "entry"])
def test_unknown_message_or_entry_type_is_a_format_error(position: str) -> None:
    """A record naming a message type or entry type this node does not know is refused as a
    malformed record (decoding looks both up in tables, not through the enum classes)."""
    message = Message(MessageType.APPEND, 1, 1, 2, 3, 3, 4, [Entry(3, 5, EntryType.NORMAL, b"x")])
    version, kind, fields = msgpack.unpackb(encode_peer_message(message), raw=False)
    if position == "message":
        fields[0] = 99
    else:
        fields[7][0][2] = 99
    with pytest.raises(PeerFormatError, match="malformed"):
        decode_peer_message(msgpack.packb([version, kind, fields], use_bin_type=True))
