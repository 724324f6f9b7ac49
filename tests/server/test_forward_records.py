"""The peer records the server adds (refusal, forward request/response) round-trip exactly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quorumkv.codec.peer import (
    REFUSED_STORAGE_LOST,
    ForwardOutcome,
    ForwardRequest,
    ForwardResponse,
    HandshakeRefused,
    decode_peer_message,
    encode_peer_message,
)
from quorumkv.kv.reply import ErrorReply, Map, SimpleString, reply_from_wire, reply_to_wire

ids = st.integers(min_value=0, max_value=2**63 - 1)


@given(ids, ids, st.integers(0, 1000), st.binary(max_size=20),
       st.lists(st.binary(max_size=50), max_size=5))
def test_forward_request_round_trips(source: int, request_id: int, shard: int, name: bytes,
                                     args: list[bytes]) -> None:
    """Any forward request decodes to an equal record."""
    record = ForwardRequest(source, request_id, shard, name, tuple(args))
    assert decode_peer_message(encode_peer_message(record)) == record


def test_forward_response_carries_every_reply_kind() -> None:
    """Nested replies survive the trip in kv's wire form, independent of RESP version."""
    reply = [b"x", 1, None, 2.5, True, SimpleString(b"OK"), ErrorReply(b"ERR no"),
             Map([(b"k", [b"v"])])]
    record = ForwardResponse(7, ForwardOutcome.ANSWERED, reply_to_wire(reply), 3)
    decoded = decode_peer_message(encode_peer_message(record))
    assert isinstance(decoded, ForwardResponse)
    assert reply_from_wire(decoded.reply) == reply
    assert decoded.leader_id == 3 and decoded.outcome is ForwardOutcome.ANSWERED


def test_handshake_refusal_round_trips() -> None:
    """The reason, code and known storage id of a refusal reach the refused node intact."""
    record = HandshakeRefused("node 2 belongs to cluster 'x'")
    assert decode_peer_message(encode_peer_message(record)) == record
    lost = HandshakeRefused("node 2's storage was lost", REFUSED_STORAGE_LOST, "ab12")
    assert decode_peer_message(encode_peer_message(lost)) == lost
