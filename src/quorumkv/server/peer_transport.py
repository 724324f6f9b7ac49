"""TCP between the nodes of one cluster: length-prefixed frames of codec.peer records.

Theory of operation. Each node dials every peer (outbound connections) and accepts the peers'
dials (inbound connections). A node only ever writes to its outbound connections and only
reads from its inbound ones, so each direction of a pair of nodes is one TCP stream with one
writer, and a lost connection is redialed by the side that owns it.

Frames: a 4-byte big-endian length, then that many bytes of one `codec.peer` record. A
connection opens with a `Handshake` each way (cluster id, node id, storage id, wire format).
Either side refuses a node of another cluster, or a node whose storage id is not the one it
knows for that node id (its data was lost: storage_identity.py), with a `HandshakeRefused`
saying why, and both sides log the reason (the refusing side with the caller's address); the
dialing side checks that it reached the node it meant to. A node refused for lost storage is
told so (`on_storage_lost`) and stops.

Sending never blocks and never awaits: `send()` encodes and queues; `flush()`, called by the
node once per driver iteration, writes everything queued for a peer with one `writelines`. A
queue is bounded (`peer_send_queue_frames_max`); frames beyond it, and frames queued when a
connection fails, are dropped and counted: Raft tolerates loss and retransmits. When a socket's
buffer passes `peer_write_buffer_bytes_max` the transport pauses us and frames wait in the queue.

Snapshot chunks travel on a second outbound connection per peer, dialed when the first chunk is
sent, so heartbeats and appends are never stuck behind megabytes of shard image.

A lost or refused connection is redialed after an exponential backoff, from
`peer_reconnect_backoff_ms_min` to `peer_reconnect_backoff_ms_max`; but a peer whose own dial
has just been accepted here is evidently up, so the connection to it is redialed at once
instead of waiting out the backoff (a restarted node's first forwarded command is answered
over that connection). Answers to forwarded commands are queued while it is being
(re)established, as Raft messages are, rather than dropped.

Whether each peer is reachable (its Raft connection is up) is told to the operator by
`ReachabilityLog`: one line per change, at most `peer_reachability_log_lines_max` per peer per
`peer_reachability_log_interval_ms`; refusals (another cluster, wrong node, bad frames) are
always warned about, with their reason.

The accepting side of a connection follows its handshake with the records `greeting` gives
for the peer (the cluster metadata this node knows, `ClusterMetadataPush`): the dialing node
has them one round trip after it connects, on a restart without waiting for anything else.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, cast

from quorumkv import limits
from quorumkv.codec.peer import (
    REFUSED_STORAGE_LOST,
    WIRE_FORMAT_VERSION,
    ForwardResponse,
    Handshake,
    HandshakeRefused,
    PeerFormatError,
    PeerRecord,
    SnapshotChunk,
    decode_peer_message,
    encode_peer_message,
)
from quorumkv.server.config import Address
from quorumkv.server.reachability_log import ReachabilityLog
from quorumkv.server.storage_identity import PeerStorageIds

log = logging.getLogger("quorumkv.peer")

_LENGTH = struct.Struct(">I")

RecordHandler = Callable[[int, PeerRecord], None]
"""Called with (source node id, record) for every record received after the handshake."""


class FrameReader:
    """Splits a byte stream into frame bodies (sans-I/O: fed by a Protocol)."""

    def __init__(self, frame_bytes_max: int = limits.peer_frame_bytes_max) -> None:
        self._buffer = bytearray()
        self._frame_bytes_max = frame_bytes_max

    def feed(self, data: bytes) -> list[bytes]:
        """Every complete frame body now available. Raises PeerFormatError on an oversize
        length prefix (the connection must then be closed)."""
        self._buffer += data
        frames = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= 4:
            (length,) = _LENGTH.unpack_from(buffer, offset)
            if length > self._frame_bytes_max:
                raise PeerFormatError(f"peer frame of {length} bytes exceeds "
                                      f"peer_frame_bytes_max ({self._frame_bytes_max})")
            if len(buffer) - offset - 4 < length:
                break
            frames.append(bytes(buffer[offset + 4:offset + 4 + length]))
            offset += 4 + length
        if offset:
            del buffer[:offset]
        return frames


def frame(body: bytes) -> bytes:
    return _LENGTH.pack(len(body)) + body


class _State(enum.Enum):
    IDLE = 0  # never dialed (a snapshot channel before its first chunk)
    CONNECTING = 1  # dialing or handshaking
    READY = 2
    BACKOFF = 3  # waiting to redial
    CLOSED = 4


class _Outbound:
    """One outbound connection to one peer (the Raft channel or the snapshot channel)."""

    def __init__(self, transport: PeerTransport, node_id: int, channel: str) -> None:
        self.owner = transport
        self.node_id = node_id
        self.channel = channel
        self.state = _State.IDLE
        self.queue: deque[bytes] = deque()
        self.protocol: _PeerProtocol | None = None
        self.backoff_ms = limits.peer_reconnect_backoff_ms_min
        self.dropped = 0
        self.handle: asyncio.TimerHandle | None = None
        self.last_error = ""

    def enqueue(self, body: bytes) -> bool:
        if self.state is _State.CLOSED or len(self.queue) >= limits.peer_send_queue_frames_max:
            self.dropped += 1
            return False
        self.queue.append(frame(body))
        if self.state is _State.IDLE:
            self.dial()
        return True

    def dial(self) -> None:
        if self.state is _State.CLOSED:
            return
        self.state = _State.CONNECTING
        self.handle = None
        self.owner.spawn(self._connect())

    async def _connect(self) -> None:
        address = self.owner.peers[self.node_id]
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(
                lambda: _PeerProtocol(self.owner, outbound=self), address.host, address.port)
        except OSError as error:
            self.failed(f"cannot connect to {address}: {error.strerror or error}")

    def handshaken(self, protocol: _PeerProtocol) -> None:
        if self.state is _State.CLOSED:
            protocol.close()
            return
        if self.channel == "raft":
            self.owner.reachability(self.node_id, True, "")
        else:
            log.debug("node %d: %s connection to node %d established", self.owner.node_id,
                      self.channel, self.node_id)
        self.state = _State.READY
        self.protocol = protocol
        self.backoff_ms = limits.peer_reconnect_backoff_ms_min
        self.last_error = ""
        self.owner.mark_dirty(self)
        self.owner.flush()
        if self.channel == "raft":
            self.owner.on_peer_up(self.node_id)

    def failed(self, reason: str, misconfigured: bool = False) -> None:
        """The dial, the handshake or the connection failed: drop the queue, redial later.
        A refusal or a bad frame (`misconfigured`) is always worth a warning."""
        was_ready = self.state is _State.READY
        self.protocol = None
        self.dropped += len(self.queue)
        self.queue.clear()
        if self.state is _State.CLOSED:
            return
        if misconfigured and reason != self.last_error:
            log.warning("node %d: %s connection to node %d: %s", self.owner.node_id,
                        self.channel, self.node_id, reason)
        if self.channel == "raft":
            self.owner.reachability(self.node_id, False, reason)
        elif not misconfigured:
            log.debug("node %d: %s connection to node %d: %s", self.owner.node_id,
                      self.channel, self.node_id, reason)
        self.last_error = reason
        self.state = _State.BACKOFF
        delay = self.backoff_ms
        self.backoff_ms = min(self.backoff_ms * 2, limits.peer_reconnect_backoff_ms_max)
        self.handle = asyncio.get_running_loop().call_later(delay / 1000, self.dial)
        if was_ready and self.channel == "raft":
            self.owner.on_peer_down(self.node_id)

    def write_queued(self) -> None:
        protocol = self.protocol
        if self.state is not _State.READY or protocol is None or protocol.paused:
            return
        if self.queue:
            frames = list(self.queue)
            self.queue.clear()
            protocol.write(frames)

    def close(self) -> None:
        self.state = _State.CLOSED
        if self.handle is not None:
            self.handle.cancel()
        if self.protocol is not None:
            self.protocol.close()
        self.queue.clear()


class _PeerProtocol(asyncio.Protocol):
    """One TCP connection, inbound or outbound, through its handshake and then its frames."""

    def __init__(self, owner: PeerTransport, outbound: _Outbound | None = None) -> None:
        self.owner = owner
        self.outbound = outbound
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.peer_node = outbound.node_id if outbound is not None else 0
        self.handshaken = False
        self.paused = False
        self.closing_reason = ""
        self.timeout: asyncio.TimerHandle | None = None

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.set_write_buffer_limits(high=limits.peer_write_buffer_bytes_max)
        self.owner.connections.add(self)
        self.timeout = asyncio.get_running_loop().call_later(
            limits.peer_handshake_timeout_ms / 1000, self._handshake_timed_out)
        if self.outbound is not None:
            self._send_now(self.owner.handshake())

    def data_received(self, data: bytes) -> None:
        try:
            bodies = self.reader.feed(data)
            for body in bodies:
                if self.transport is None or self.transport.is_closing():
                    return
                self._on_record(decode_peer_message(body))
        except PeerFormatError as error:
            self.close(f"bad frame from node {self.peer_node or '?'}: {error}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.connections.discard(self)
        if self.timeout is not None:
            self.timeout.cancel()
        if self.outbound is not None and self.outbound.protocol in (self, None):
            reason = self.closing_reason or (f"connection lost: {exc}" if exc
                                             else "connection closed by the peer")
            self.outbound.failed(reason, misconfigured=bool(self.closing_reason))

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.outbound is not None:
            self.outbound.write_queued()

    # -- frames

    def write(self, frames: list[bytes]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(frames)

    def _send_now(self, record: PeerRecord) -> None:
        self.write([frame(encode_peer_message(record))])

    def _on_record(self, record: PeerRecord) -> None:
        if isinstance(record, HandshakeRefused):
            # Before our handshake completes (we dialed), or after it (the dialer refused the
            # handshake we answered with).
            self.close(f"refused by node {self.peer_node or '?'}: {record.reason}")
            if record.code == REFUSED_STORAGE_LOST:
                self.owner.on_storage_lost(self.peer_node, record.known_storage_id)
        elif self.handshaken:
            self.owner.on_record(self.peer_node, record)
        elif isinstance(record, Handshake):
            self._on_handshake(record)
        else:
            self.close("peer sent a record before its handshake")

    def _on_handshake(self, hello: Handshake) -> None:
        refusal = self.owner.check_handshake(hello, self.outbound)
        if refusal is not None:
            log.warning("node %d: refusing peer connection from %s (node %d): %s",
                        self.owner.node_id, self._address(), hello.node_id, refusal.reason)
            self._send_now(refusal)
            self.close(refusal.reason)
            return
        self.handshaken = True
        if self.timeout is not None:
            self.timeout.cancel()
        if self.outbound is None:
            self.peer_node = hello.node_id
            self._send_now(self.owner.handshake())
            for record in self.owner.greeting(hello.node_id):
                self._send_now(record)
            self.owner.peer_dialed_in(hello.node_id)
        else:
            self.outbound.handshaken(self)

    def _address(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "an unknown address"

    def _handshake_timed_out(self) -> None:
        if not self.handshaken:
            self.close("no handshake within peer_handshake_timeout_ms")

    def close(self, reason: str = "") -> None:
        if reason and not self.closing_reason:
            self.closing_reason = reason
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class PeerTransport:
    """All peer connections of one node. Implements host.Transport (send never blocks)."""

    def __init__(self, node_id: int, cluster_id: str, peers: dict[int, Address],
                 on_record: RecordHandler,
                 on_peer_up: Callable[[int], None] = lambda node: None,
                 on_peer_down: Callable[[int], None] = lambda node: None,
                 greeting: Callable[[int], list[PeerRecord]] = lambda node: [],
                 storage_id: str = "", peer_storage: PeerStorageIds | None = None,
                 on_storage_learned: Callable[[int, str], None] = lambda node, storage: None,
                 on_storage_lost: Callable[[int, str], None] = lambda node, known: None,
                 ) -> None:
        """`greeting(node)`: the records sent to a peer right after its handshake is accepted.
        `storage_id` is this node's (sent in every handshake); `peer_storage` the storage
        ids known for the peers, to which a first handshake adds (`on_storage_learned` is told,
        to persist it); `on_storage_lost(refusing node, storage id it knows for us)` is called
        when a peer refuses this node because its storage is not the one it knows."""
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.storage_id = storage_id
        self.peer_storage = peer_storage if peer_storage is not None else PeerStorageIds({})
        self.on_storage_learned = on_storage_learned
        self.on_storage_lost = on_storage_lost
        self.peers = {n: a for n, a in peers.items() if n != node_id}
        self.on_record = on_record
        self.on_peer_up = on_peer_up
        self.on_peer_down = on_peer_down
        self.greeting = greeting  # records sent after the handshake on an accepted connection
        self.reachability_log = ReachabilityLog(node_id)
        self._settle_handles: dict[int, asyncio.TimerHandle] = {}
        self.connections: set[_PeerProtocol] = set()
        self._raft = {n: _Outbound(self, n, "raft") for n in self.peers}
        self._snapshot = {n: _Outbound(self, n, "snapshot") for n in self.peers}
        self._dirty: set[_Outbound] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.frames_sent = 0

    async def start(self, listen: Address) -> None:
        """Listen for peers and dial every peer. Raises OSError if the address is taken."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _PeerProtocol(self), listen.host, listen.port, reuse_address=True)
        for outbound in self._raft.values():
            outbound.dial()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sending

    def send(self, target_node: int, message: PeerRecord) -> None:
        """Queue one Raft record for a peer (host.Transport). Never blocks; may drop: frames
        queued while the connection is being (re)established go out once it is."""
        channels = self._snapshot if isinstance(message, SnapshotChunk) else self._raft
        outbound = channels.get(target_node)
        if outbound is not None and outbound.enqueue(encode_peer_message(message)):
            self._dirty.add(outbound)

    def send_record(self, target_node: int, record: PeerRecord) -> bool:
        """Queue one record on a live connection; False if it was not queued (unknown peer,
        connection not established, queue full). A record queued is written unless the
        connection fails first, in which case `on_peer_down` reports it. A ForwardResponse
        is also queued while the connection is being (re)established: the requester waits
        for it anyway (if the connection never comes up, its request times out as before)."""
        outbound = self._raft.get(target_node)
        if outbound is None:
            return False
        if outbound.state is not _State.READY and not isinstance(record, ForwardResponse):
            return False
        if not outbound.enqueue(encode_peer_message(record)):
            return False
        self._dirty.add(outbound)
        return True

    def is_connected(self, node_id: int) -> bool:
        outbound = self._raft.get(node_id)
        return outbound is not None and outbound.state is _State.READY

    def reachability(self, node_id: int, reachable: bool, reason: str) -> None:
        """The Raft connection to `node_id` is up, or failed (`reason`): tell the operator,
        at most once per peer per interval (reachability_log.py)."""
        loop = asyncio.get_running_loop()
        settle_at = self.reachability_log.changed(node_id, reachable, loop.time() * 1000,
                                                  reason)
        if settle_at is not None:
            self._settle_handles[node_id] = loop.call_at(
                settle_at / 1000, lambda: self.reachability_log.settle(
                    node_id, loop.time() * 1000))

    def peer_dialed_in(self, node_id: int) -> None:
        """`node_id`'s dial was accepted: it is up, so a connection to it waiting out its
        backoff is redialed now."""
        outbound = self._raft.get(node_id)
        if outbound is not None and outbound.state is _State.BACKOFF:
            if outbound.handle is not None:
                outbound.handle.cancel()
            outbound.backoff_ms = limits.peer_reconnect_backoff_ms_min
            outbound.dial()

    def mark_dirty(self, outbound: _Outbound) -> None:
        self._dirty.add(outbound)

    def flush(self) -> None:
        """Write everything queued, one writelines per connection."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for outbound in dirty:
            queued = len(outbound.queue)
            outbound.write_queued()
            self.frames_sent += queued - len(outbound.queue)

    # -- handshake policy

    def handshake(self) -> Handshake:
        return Handshake(self.cluster_id, self.node_id, self.storage_id)

    def check_handshake(self, hello: Handshake, outbound: _Outbound | None
                        ) -> HandshakeRefused | None:
        """The refusal of a peer's handshake, or None when it is accepted (then a storage id
        seen for the first time is remembered)."""
        reason = self._misconfiguration(hello, outbound)
        if reason:
            return HandshakeRefused(reason)
        known = self.peer_storage.check(hello.node_id, hello.storage_id)
        if known:
            return HandshakeRefused(
                f"node {hello.node_id} presents storage id {hello.storage_id or '(none)'}, but "
                f"this node knows node {hello.node_id} with storage id {known}: its data "
                f"directory was lost or replaced, and it cannot rejoin as node {hello.node_id}",
                REFUSED_STORAGE_LOST, known)
        if self.peer_storage.learn(hello.node_id, hello.storage_id):
            self.on_storage_learned(hello.node_id, hello.storage_id)
        return None

    def _misconfiguration(self, hello: Handshake, outbound: _Outbound | None) -> str:
        """Why a peer's handshake is refused for its version, cluster or node id ("": none)."""
        if hello.wire_version != WIRE_FORMAT_VERSION:
            return (f"node {hello.node_id} speaks wire format {hello.wire_version}, this node "
                    f"speaks {WIRE_FORMAT_VERSION}; run the same quorumkv version everywhere")
        if hello.cluster_id != self.cluster_id:
            return (f"node {hello.node_id} belongs to cluster {hello.cluster_id!r}, this node "
                    f"to cluster {self.cluster_id!r}; check cluster_id and the peers list")
        if hello.node_id == self.node_id:
            return f"the peer claims this node's own id {self.node_id}; node ids must be unique"
        if outbound is not None and hello.node_id != outbound.node_id:
            return (f"dialed node {outbound.node_id} at {self.peers[outbound.node_id]} but "
                    f"node {hello.node_id} answered; check the peers list")
        return ""

    # -- observation and shutdown

    def dropped_frames(self) -> int:
        return sum(o.dropped for o in (*self._raft.values(), *self._snapshot.values()))

    def status(self) -> dict[int, str]:
        return {n: o.state.name.lower() for n, o in sorted(self._raft.items())}

    async def close(self) -> None:
        self.flush()
        for outbound in (*self._raft.values(), *self._snapshot.values()):
            outbound.close()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        for task in list(self._tasks):
            task.cancel()
        for handle in self._settle_handles.values():
            handle.cancel()
        if self._server is not None:
            await self._server.wait_closed()
