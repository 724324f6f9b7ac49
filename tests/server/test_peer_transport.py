"""Peer connections: handshake, framing, batching, refusal of other clusters, reconnection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from quorumkv import limits
from quorumkv.codec.peer import (
    ClusterMetadataPush,
    ForwardOutcome,
    ForwardRequest,
    ForwardResponse,
    PeerFormatError,
    PeerRecord,
)
from quorumkv.raft.types import Message, MessageType
from quorumkv.server.config import Address
from quorumkv.server.local_cluster import free_port
from quorumkv.server.peer_transport import FrameReader, PeerTransport, _State, frame
from quorumkv.server.storage_identity import PeerStorageIds


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll `condition` until it holds (bounded deadline, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def heartbeat(source: int, target: int, term: int) -> Message:
    return Message(MessageType.HEARTBEAT, group_id=1, source=source, target=target, term=term)


class Pair:
    def __init__(self, cluster_b: str = "c") -> None:
        self.addresses = {1: Address("127.0.0.1", free_port()),
                          2: Address("127.0.0.1", free_port())}
        self.received: dict[int, list[tuple[int, PeerRecord]]] = {1: [], 2: []}
        self.a = PeerTransport(1, "c", self.addresses,
                               lambda s, r: self.received[1].append((s, r)))
        self.b = PeerTransport(2, cluster_b, self.addresses,
                               lambda s, r: self.received[2].append((s, r)))

    async def start(self) -> None:
        await self.a.start(self.addresses[1])
        await self.b.start(self.addresses[2])

    async def close(self) -> None:
        await self.a.close()
        await self.b.close()


def test_frame_reader_splits_partial_and_joined_frames() -> None:
    """Frames cut anywhere and several per read come out whole and in order."""
    stream = b"".join(frame(body) for body in (b"a", b"", b"hello" * 100))
    reader = FrameReader()
    out = []
    for i in range(0, len(stream), 7):
        out.extend(reader.feed(stream[i:i + 7]))
    assert out == [b"a", b"", b"hello" * 100]


def test_frame_reader_refuses_oversize_lengths() -> None:
    """A length prefix over the bound is a format error, not an allocation."""
    with pytest.raises(PeerFormatError, match="exceeds"):
        FrameReader(frame_bytes_max=10).feed(frame(b"x" * 11))


async def test_records_flow_both_ways_in_order() -> None:
    """After the handshake, records sent and flushed arrive in order with their source."""
    pair = Pair()
    await pair.start()
    try:
        await wait_for(lambda: pair.a.is_connected(2) and pair.b.is_connected(1))
        for term in range(1, 101):
            pair.a.send(2, heartbeat(1, 2, term))
        pair.a.flush()
        pair.b.send(1, ForwardRequest(2, 7, 1, b"SET", (b"k", b"v")))
        pair.b.flush()
        await wait_for(lambda: len(pair.received[2]) == 100 and len(pair.received[1]) == 1)
        assert [r.term for _, r in pair.received[2]] == list(range(1, 101))  # type: ignore[union-attr]
        assert {s for s, _ in pair.received[2]} == {1}
        assert pair.received[1][0] == (2, ForwardRequest(2, 7, 1, b"SET", (b"k", b"v")))
    finally:
        await pair.close()


async def test_a_node_of_another_cluster_is_refused_and_both_sides_log_why(
        caplog: pytest.LogCaptureFixture) -> None:
    """Handshakes across clusters fail; the reason is logged by both nodes; nothing is delivered."""
    caplog.set_level(logging.WARNING, logger="quorumkv.peer")
    pair = Pair(cluster_b="other")
    await pair.start()
    try:
        await wait_for(lambda: sum("belongs to cluster" in r.message
                                   for r in caplog.records) >= 2)
        refusing = [r.message for r in caplog.records if "refusing" in r.message]
        refused = [r.message for r in caplog.records if "refused by node" in r.message]
        assert refusing and refused
        assert not pair.a.is_connected(2) and not pair.b.is_connected(1)
        assert pair.a.send_record(2, heartbeat(1, 2, 1)) is False  # no live connection
        assert pair.received == {1: [], 2: []}
    finally:
        await pair.close()


async def test_a_restarted_peer_is_redialed_and_frames_flow_again() -> None:
    """When a peer goes away and comes back, the connection is re-established by backoff."""
    pair = Pair()
    await pair.start()
    try:
        await wait_for(lambda: pair.a.is_connected(2))
        await pair.b.close()
        await wait_for(lambda: not pair.a.is_connected(2))
        pair.b = PeerTransport(2, "c", pair.addresses,
                               lambda s, r: pair.received[2].append((s, r)))
        await pair.b.start(pair.addresses[2])
        await wait_for(lambda: pair.a.is_connected(2))
        pair.a.send(2, heartbeat(1, 2, 9))
        pair.a.flush()
        await wait_for(lambda: len(pair.received[2]) == 1)
    finally:
        await pair.close()


async def test_frames_to_an_absent_peer_are_dropped_and_counted() -> None:
    """Sending to a peer that never answers neither blocks nor grows memory without bound."""
    pair = Pair()
    await pair.a.start(pair.addresses[1])  # node 2 never starts
    try:
        for term in range(50):
            pair.a.send(2, heartbeat(1, 2, term))
        pair.a.flush()
        await wait_for(lambda: pair.a.dropped_frames() >= 50)
        assert pair.a.send_record(99, heartbeat(1, 99, 1)) is False  # unknown peer
    finally:
        await pair.a.close()


async def test_a_peer_with_another_storage_id_is_refused_and_told_its_storage_is_lost(
        caplog: pytest.LogCaptureFixture) -> None:
    """Node 1 knows node 2 with storage id "old"; node 2 comes back with "new": node 1
    refuses it both ways (logged with address, node id and both ids), node 2 is told which
    storage id node 1 knows, and nothing is delivered. Node 2 learns node 1's id."""
    caplog.set_level(logging.WARNING, logger="quorumkv.peer")
    pair = Pair()
    lost: list[tuple[int, str]] = []
    learned: list[tuple[int, str]] = []
    pair.a = PeerTransport(1, "c", pair.addresses, lambda s, r: pair.received[1].append((s, r)),
                           storage_id="one", peer_storage=PeerStorageIds({2: "old"}))
    pair.b = PeerTransport(2, "c", pair.addresses, lambda s, r: pair.received[2].append((s, r)),
                           storage_id="new", on_storage_learned=lambda n, i: learned.append((n, i)),
                           on_storage_lost=lambda n, known: lost.append((n, known)))
    await pair.start()
    try:
        await wait_for(lambda: len(lost) >= 2)  # its dial refused, and its answer to node 1's
        assert set(lost) == {(1, "old")}
        assert learned == [(1, "one")]
        refusing = [r.message for r in caplog.records if "refusing" in r.message]
        assert refusing and all("(node 2)" in m and "storage id new" in m
                                and "storage id old" in m for m in refusing)
        assert not pair.a.is_connected(2) and not pair.b.is_connected(1)
        assert pair.received == {1: [], 2: []}
    finally:
        await pair.close()


async def test_the_accepting_side_hands_its_greeting_to_a_peer_that_connects() -> None:
    """Right after the handshake, the node that accepted a connection sends the records its
    greeting names (the cluster metadata it knows) to the node that dialed."""
    pair = Pair()
    pair.b.greeting = lambda node: [ClusterMetadataPush(b"metadata of node 2 for %d" % node)]
    await pair.start()
    try:
        await wait_for(lambda: bool(pair.received[1]))
        assert pair.received[1] == [(2, ClusterMetadataPush(b"metadata of node 2 for 1"))]
        assert pair.received[2] == []  # node 1's greeting is empty
    finally:
        await pair.close()


async def node_waiting_out_its_longest_backoff(pair: Pair) -> None:
    """Node 2 alone, its connection to node 1 failed so often that it redials only every
    peer_reconnect_backoff_ms_max."""
    await pair.b.start(pair.addresses[2])
    await wait_for(lambda: pair.b._raft[1].backoff_ms == limits.peer_reconnect_backoff_ms_max
                   and pair.b._raft[1].state is _State.BACKOFF)


async def test_a_peer_that_dials_in_is_redialed_at_once() -> None:
    """A node that accepts a peer's dial redials that peer now instead of waiting out its
    backoff: by the time the peer's first record arrives, the way back is being opened."""
    pair = Pair()
    await node_waiting_out_its_longest_backoff(pair)
    states: list[_State] = []
    pair.b.on_record = lambda source, record: states.append(pair.b._raft[1].state)
    try:
        await pair.a.start(pair.addresses[1])
        pair.a.send(2, heartbeat(1, 2, 1))
        pair.a.flush()
        await wait_for(lambda: bool(states))
        assert states[0] is not _State.BACKOFF
        await wait_for(lambda: pair.b.is_connected(1))
    finally:
        await pair.close()


async def test_an_answer_to_a_forwarded_command_waits_for_the_connection_back() -> None:
    """While the connection to a peer is down, a ForwardResponse for it is queued and
    delivered once the connection is up (a ForwardRequest is refused: the dispatcher must
    know whether it left)."""
    pair = Pair()
    await node_waiting_out_its_longest_backoff(pair)
    try:
        response = ForwardResponse(7, ForwardOutcome.ANSWERED, b"OK", 2)
        assert pair.b.send_record(1, response) is True
        assert pair.b.send_record(1, ForwardRequest(2, 8, 1, b"GET", (b"k",))) is False
        pair.b.flush()
        await pair.a.start(pair.addresses[1])
        await wait_for(lambda: bool(pair.received[1]))
        assert pair.received[1] == [(2, response)]
    finally:
        await pair.close()


async def test_a_peer_going_away_and_back_is_logged_once_each_way(
        caplog: pytest.LogCaptureFixture) -> None:
    """Over real sockets: a peer that stops is one `unreachable` warning (its redials add
    nothing), and its return one `reachable again` line."""
    caplog.set_level(logging.INFO, logger="quorumkv.peer")
    pair = Pair()
    await pair.start()

    def said(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    try:
        await wait_for(lambda: bool(said("node 1: node 2 reachable")))
        caplog.clear()  # node 2 may have been dialed before it listened: counted from here
        await pair.b.close()
        await wait_for(lambda: bool(said("node 1: node 2 unreachable: ")))
        await wait_for(lambda: pair.a._raft[2].backoff_ms >= 160)  # a few redials failed
        assert len(said("node 1: node 2 unreachable: ")) == 1
        pair.b = PeerTransport(2, "c", pair.addresses,
                               lambda s, r: pair.received[2].append((s, r)))
        await pair.b.start(pair.addresses[2])
        await wait_for(lambda: bool(said("node 1: node 2 reachable again after ")))
        assert len(said("node 1: node 2 unreachable: ")) == 1
    finally:
        await pair.close()
