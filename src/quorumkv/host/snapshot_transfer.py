"""Streaming shard images to lagging replicas, in bounded, checksummed, acknowledged chunks.

The Raft core never holds snapshot data: when a follower needs entries the leader has
compacted, the core emits one SNAPSHOT message naming a snapshot point. The host hands that
message to `SnapshotSender`, which opens a consistent image of the shard (its applied state,
possibly newer than the point the core named: the follower accepts any newer point) and sends
it as `SnapshotChunk`s, at most `snapshot_chunks_inflight_max` unacknowledged at once, each at
most `snapshot_chunk_bytes_max` long.

On the receiving node, `SnapshotReceiver` stages chunks through the store's SnapshotWriter,
checking checksums, strictly in order (go-back-N): a chunk ahead of the next expected one is
dropped, a duplicate is acknowledged again, and every acknowledgement is cumulative. The
sender resends its unacknowledged chunks after `snapshot_resend_ticks` without progress, so a
network that reorders or loses chunks (a reconnect, the simulator) slows a transfer but never
stops it. Only when the last chunk has been staged
and the writer has verified the whole image does it return the SNAPSHOT message (carrying the
image's real point) for the host to step into its core. The staged image waits there until the
core's Ready asks for that snapshot to be installed.

A transfer that stalls for `snapshot_transfer_timeout_ticks`, or that the receiver rejects,
is abandoned on both sides, and the leader's core is told (report_snapshot) so that it probes
the follower again. Heartbeats and appends keep flowing meanwhile: chunks are separate records.

Each side logs one INFO line when a transfer starts and one when it ends (sent / received,
with the image's bytes and the duration on the injected clock) or is abandoned (and why),
naming the node, the shard, the leader's term, the peer and the snapshot point.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from quorumkv import limits
from quorumkv.codec.peer import SnapshotChunk, SnapshotChunkAck
from quorumkv.errors import DiskFull, SnapshotCorrupt
from quorumkv.raft.types import Message
from quorumkv.storage.protocols import NodeStore, SnapshotReader, SnapshotWriter, StagedSnapshot

log = logging.getLogger("quorumkv.host")

Clock = Callable[[], int]
"""Milliseconds, for durations in the log only (the host's injected clock)."""


def _describe(node_id: int, message: Message, direction: str, peer: int) -> str:
    meta = message.snapshot
    point = f" (snapshot at index {meta.index}, term {meta.term})" if meta is not None else ""
    return (f"node {node_id}: shard {message.group_id} term {message.term}: snapshot "
            f"{direction} node {peer}{point}")


@dataclass(slots=True)
class _OutgoingStream:
    stream_id: int
    target: int
    reader: SnapshotReader
    message: Message
    next_sequence: int = 0
    acknowledged: int = -1
    finished_reading: bool = False
    idle_ticks: int = 0
    unacknowledged: dict[int, SnapshotChunk] = field(default_factory=dict)
    started_ms: int = 0
    bytes_read: int = 0


class SnapshotSender:
    """The sending side for all shards of one node."""

    def __init__(self, store: NodeStore, node_id: int,
                 chunk_bytes_max: int = limits.snapshot_chunk_bytes_max,
                 clock_ms: Clock = lambda: 0) -> None:
        self._store = store
        self._node_id = node_id
        self._chunk_bytes_max = chunk_bytes_max
        self._clock_ms = clock_ms
        self._streams: dict[tuple[int, int], _OutgoingStream] = {}  # (group, target) -> stream
        self._next_stream_id = 1

    def start(self, message: Message) -> list[SnapshotChunk]:
        """Begin streaming for a SNAPSHOT message from the core; returns the first chunks.

        A transfer already running to the same replica of the same shard is replaced."""
        key = (message.group_id, message.target)
        self._close(key, "a newer transfer replaces it")
        reader = self._store.open_snapshot(message.group_id)
        outgoing = replace(message, snapshot=reader.meta)
        stream = _OutgoingStream(self._next_stream_id, message.target, reader, outgoing,
                                 started_ms=self._clock_ms())
        self._next_stream_id += 1
        self._streams[key] = stream
        log.info("%s: started", _describe(self._node_id, outgoing, "to", message.target))
        return self._fill_window(stream)

    def on_ack(self, ack: SnapshotChunkAck) -> tuple[list[SnapshotChunk], bool | None]:
        """Handle a receiver's acknowledgement: (more chunks to send, outcome).

        outcome is True when the whole image was acknowledged, False when the receiver
        abandoned it, None while it goes on."""
        key = (ack.group_id, ack.source)
        stream = self._streams.get(key)
        if stream is None or stream.stream_id != ack.stream_id:
            return [], None
        if not ack.accepted:
            self._close(key, f"node {ack.source} refused it")
            return [], False
        stream.idle_ticks = 0
        for sequence in [q for q in stream.unacknowledged if q <= ack.sequence]:
            del stream.unacknowledged[sequence]  # acknowledgements are cumulative
        stream.acknowledged = max(stream.acknowledged, ack.sequence)
        if stream.finished_reading and not stream.unacknowledged:
            self._close(key, "")
            return [], True
        return self._fill_window(stream), None

    def tick(self, timeout_ticks: int) -> tuple[list[SnapshotChunk], list[tuple[int, int]]]:
        """Age every stream: (chunks to send again, (group, target) of streams abandoned for
        silence). Unacknowledged chunks are resent every `snapshot_resend_ticks` without
        progress."""
        resent: list[SnapshotChunk] = []
        expired = []
        for key, stream in self._streams.items():
            stream.idle_ticks += 1
            if stream.idle_ticks > timeout_ticks:
                expired.append(key)
            elif stream.idle_ticks % limits.snapshot_resend_ticks == 0:
                resent.extend(stream.unacknowledged[q] for q in sorted(stream.unacknowledged))
        for key in expired:
            self._close(key, f"no acknowledgement for {timeout_ticks} ticks")
        return resent, expired

    def abort_group(self, group_id: int) -> None:
        """Stop every transfer of one shard (the replica stepped down or was removed)."""
        for key in [k for k in self._streams if k[0] == group_id]:
            self._close(key, "this replica is no longer the shard's leader")

    def active(self) -> list[tuple[int, int]]:
        return sorted(self._streams)

    def _fill_window(self, stream: _OutgoingStream) -> list[SnapshotChunk]:
        chunks = []
        while (not stream.finished_reading
               and len(stream.unacknowledged) < limits.snapshot_chunks_inflight_max):
            data = stream.reader.read_chunk(self._chunk_bytes_max)
            last = data == b""
            if last:
                stream.finished_reading = True
            chunk = SnapshotChunk(
                group_id=stream.message.group_id, source=self._node_id, target=stream.target,
                stream_id=stream.stream_id, sequence=stream.next_sequence, data=data,
                checksum=zlib.crc32(data), last=last, meta=stream.reader.meta,
                message=stream.message)
            stream.next_sequence += 1
            stream.bytes_read += len(data)
            stream.unacknowledged[chunk.sequence] = chunk
            chunks.append(chunk)
        return chunks

    def _close(self, key: tuple[int, int], abandoned: str) -> None:
        """End a stream: sent whole (`abandoned` empty) or abandoned for that reason."""
        stream = self._streams.pop(key, None)
        if stream is None:
            return
        stream.reader.close()
        what = _describe(self._node_id, stream.message, "to", stream.target)
        elapsed = self._clock_ms() - stream.started_ms
        if abandoned:
            log.info("%s: abandoned after %d ms, %d bytes read: %s", what, elapsed,
                     stream.bytes_read, abandoned)
        else:
            log.info("%s: sent, %d bytes in %d ms", what, stream.bytes_read, elapsed)


@dataclass(slots=True)
class _IncomingStream:
    stream_id: int
    source: int
    writer: SnapshotWriter
    message: Message
    next_sequence: int = 0
    idle_ticks: int = 0
    started_ms: int = 0
    bytes_staged: int = 0


class SnapshotReceiver:
    """The receiving side for all shards of one node."""

    def __init__(self, store: NodeStore, node_id: int, clock_ms: Clock = lambda: 0) -> None:
        self._store = store
        self._node_id = node_id
        self._clock_ms = clock_ms
        self._streams: dict[int, _IncomingStream] = {}  # group -> stream
        self._staged: dict[int, StagedSnapshot] = {}  # group -> verified image awaiting install
        self._finished: dict[int, tuple[int, int, int]] = {}  # group -> (source, stream, last)
        self.images_received = 0  # complete, verified images (each installed or superseded)
        self.bytes_received = 0  # chunk data staged, including transfers later abandoned

    def on_chunk(self, chunk: SnapshotChunk) -> tuple[SnapshotChunkAck | None, Message | None]:
        """Stage one chunk; returns the ack to send (None: drop silently, the sender resends)
        and, after the last chunk, the SNAPSHOT message to step into the core."""
        group = chunk.group_id
        if self._finished.get(group, (0, 0, -1))[:2] == (chunk.source, chunk.stream_id):
            return self._ack(chunk, self._finished[group][2], accepted=True), None
        stream = self._streams.get(group)
        if stream is None or (stream.source, stream.stream_id) != (chunk.source, chunk.stream_id):
            if chunk.sequence != 0:
                return None, None  # its first chunk has not arrived (yet): wait for a resend
            stream = self._open(chunk)
        if chunk.sequence != stream.next_sequence:
            # A duplicate is acknowledged again; a chunk ahead of the next one is dropped.
            ahead = chunk.sequence > stream.next_sequence
            return (None if ahead else self._ack(chunk, stream.next_sequence - 1, True)), None
        try:
            self._stage(stream, chunk)
        except (SnapshotCorrupt, DiskFull) as error:
            self._abandon(group, str(error))  # the leader is told, and sends it again later
            return self._ack(chunk, chunk.sequence, accepted=False), None
        if not chunk.last:
            return self._ack(chunk, chunk.sequence, accepted=True), None
        return self._finish(group, stream, chunk)

    def _open(self, chunk: SnapshotChunk) -> _IncomingStream:
        self._abandon(chunk.group_id, f"node {chunk.source} started a newer transfer")
        writer = self._store.snapshot_writer(chunk.group_id, chunk.meta)
        message = replace(chunk.message, snapshot=chunk.meta)
        stream = _IncomingStream(chunk.stream_id, chunk.source, writer, message,
                                 started_ms=self._clock_ms())
        self._streams[chunk.group_id] = stream
        log.info("%s: started", _describe(self._node_id, message, "from", chunk.source))
        return stream

    def staged(self, group_id: int) -> StagedSnapshot | None:
        return self._staged.get(group_id)

    def take_staged(self, group_id: int) -> StagedSnapshot | None:
        """The verified image for a shard, removed from the receiver (the host installs it)."""
        return self._staged.pop(group_id, None)

    def discard_staged(self, group_id: int, image: StagedSnapshot | None = None) -> None:
        """Release the shard's staged image (only if it is `image`, when one is named): the
        core declined it, or a newer one replaces it."""
        staged = self._staged.get(group_id)
        if staged is None or (image is not None and staged is not image):
            return
        del self._staged[group_id]
        staged.discard()

    def tick(self, timeout_ticks: int) -> None:
        """Abandon transfers that have been silent too long."""
        for group, stream in list(self._streams.items()):
            stream.idle_ticks += 1
            if stream.idle_ticks > timeout_ticks:
                self._abandon(group, f"no chunk for {timeout_ticks} ticks")

    def _stage(self, stream: _IncomingStream, chunk: SnapshotChunk) -> None:
        if zlib.crc32(chunk.data) != chunk.checksum:
            raise SnapshotCorrupt(chunk.group_id, f"chunk {chunk.sequence} failed its checksum")
        if chunk.data:
            stream.writer.write_chunk(chunk.data)
            self.bytes_received += len(chunk.data)
            stream.bytes_staged += len(chunk.data)
        stream.next_sequence += 1
        stream.idle_ticks = 0

    def _finish(self, group: int, stream: _IncomingStream,
                chunk: SnapshotChunk) -> tuple[SnapshotChunkAck, Message | None]:
        del self._streams[group]
        what = _describe(self._node_id, stream.message, "from", stream.source)
        elapsed = self._clock_ms() - stream.started_ms
        try:
            image = stream.writer.finish()
        except (SnapshotCorrupt, DiskFull) as error:
            stream.writer.abort()
            log.info("%s: abandoned after %d ms, %d bytes staged: %s", what, elapsed,
                     stream.bytes_staged, error)
            return self._ack(chunk, chunk.sequence, accepted=False), None
        log.info("%s: received, %d bytes in %d ms", what, stream.bytes_staged, elapsed)
        self.discard_staged(group)  # an older image still waiting is superseded
        self._staged[group] = image
        self.images_received += 1
        self._finished[group] = (chunk.source, chunk.stream_id, chunk.sequence)
        ack = self._ack(chunk, chunk.sequence, accepted=True)
        return ack, replace(chunk.message, snapshot=image.meta)

    def _abandon(self, group: int, reason: str) -> None:
        stream = self._streams.pop(group, None)
        if stream is not None:
            stream.writer.abort()
            log.info("%s: abandoned after %d ms, %d bytes staged: %s",
                     _describe(self._node_id, stream.message, "from", stream.source),
                     self._clock_ms() - stream.started_ms, stream.bytes_staged, reason)

    def _ack(self, chunk: SnapshotChunk, sequence: int, accepted: bool) -> SnapshotChunkAck:
        """Acknowledges every chunk up to `sequence` (or refuses the stream)."""
        return SnapshotChunkAck(chunk.group_id, self._node_id, chunk.source, chunk.stream_id,
                                sequence, accepted)
