"""Snapshot streaming: images arrive whole and verified, or not at all."""

from __future__ import annotations

from dataclasses import replace

from quorumkv import errors
from quorumkv.host.snapshot_transfer import SnapshotReceiver, SnapshotSender
from quorumkv.raft.types import ConfState, Message, MessageType, SnapshotMeta
from quorumkv.storage.memory import MemoryStore

META = SnapshotMeta(5, 5, ConfState(voters=(1, 2, 3)))


def source_store(keys: int) -> MemoryStore:
    store = MemoryStore()
    batch = store.batch()
    batch.compact_log(1, META)
    batch.set_applied(1, META)
    for i in range(keys):
        batch.put(1, b"key%04d" % i, b"value" * 10)
    store.write(batch, sync=True)
    return store


def snapshot_message() -> Message:
    return Message(MessageType.SNAPSHOT, 1, source=1, target=2, term=6, snapshot=META)


def test_an_image_streamed_in_small_chunks_is_staged_whole_and_the_message_released_last() -> None:
    """Chunks flow in a bounded window, each acknowledged; only the last one releases the
    SNAPSHOT message, carrying the image's own point."""
    sender = SnapshotSender(source_store(100), node_id=1, chunk_bytes_max=256)
    receiver = SnapshotReceiver(MemoryStore(), node_id=2)
    chunks = sender.start(snapshot_message())
    released = []
    outcome = None
    while chunks:
        chunk = chunks.pop(0)
        ack, message = receiver.on_chunk(chunk)
        assert ack.accepted
        released.append(message)
        more, outcome = sender.on_ack(ack)
        chunks.extend(more)
    assert outcome is True
    assert all(m is None for m in released[:-1]) and released[-1] is not None
    assert released[-1].snapshot == META
    assert receiver.staged(1) is not None and receiver.staged(1).meta == META


def test_a_chunk_failing_its_checksum_abandons_the_transfer() -> None:
    """A damaged chunk is refused; the sender learns the transfer failed."""
    sender = SnapshotSender(source_store(50), node_id=1, chunk_bytes_max=256)
    receiver = SnapshotReceiver(MemoryStore(), node_id=2)
    first, second = sender.start(snapshot_message())[:2]
    receiver.on_chunk(first)
    ack, message = receiver.on_chunk(replace(second, checksum=second.checksum ^ 1))
    assert not ack.accepted and message is None
    assert sender.on_ack(ack) == ([], False)


def test_a_full_disk_while_staging_refuses_the_chunk_instead_of_failing_the_node() -> None:
    """DiskFull from the store's snapshot writer abandons the transfer with a refusal."""
    class FullWriter:
        def write_chunk(self, data: bytes) -> None:
            raise errors.DiskFull("/data")

        def abort(self) -> None:
            self.aborted = True

    class FullStore(MemoryStore):
        def snapshot_writer(self, shard_id: int, meta: SnapshotMeta) -> FullWriter:  # type: ignore[override]
            return FullWriter()

    sender = SnapshotSender(source_store(10), node_id=1)
    receiver = SnapshotReceiver(FullStore(), node_id=2)
    ack, message = receiver.on_chunk(sender.start(snapshot_message())[0])
    assert not ack.accepted and message is None


def test_discarding_names_the_image_so_a_newer_one_is_kept() -> None:
    """discard_staged(group, image) releases that image only, never a newer one staged since."""
    class Image:
        def __init__(self) -> None:
            self.discarded = False
            self.shard_id = 1
            self.meta = META

        def discard(self) -> None:
            self.discarded = True

    receiver = SnapshotReceiver(MemoryStore(), node_id=2)
    old, new = Image(), Image()
    receiver._staged[1] = new  # type: ignore[assignment]
    receiver.discard_staged(1, old)  # type: ignore[arg-type]
    assert receiver.staged(1) is new and not new.discarded
    receiver.discard_staged(1, new)  # type: ignore[arg-type]
    assert receiver.staged(1) is None and new.discarded


def test_a_transfer_completes_over_a_network_that_reorders_duplicates_and_loses_chunks() -> None:
    """Go-back-N: chunks ahead of the next one are dropped, duplicates re-acknowledged, lost
    ones resent after idle ticks; the image still arrives whole and the sender sees success."""
    import random

    rng = random.Random(7)
    sender = SnapshotSender(source_store(200), node_id=1, chunk_bytes_max=128)
    receiver = SnapshotReceiver(MemoryStore(), node_id=2)
    in_flight: list[object] = list(sender.start(snapshot_message()))
    outcome = None
    released = []
    for _ in range(20_000):
        if outcome is not None:
            break
        if not in_flight:
            resent, expired = sender.tick(timeout_ticks=10_000)
            assert not expired
            in_flight.extend(resent)
            continue
        record = in_flight.pop(rng.randrange(len(in_flight)))  # any order
        if rng.random() < 0.2:
            continue  # lost
        if rng.random() < 0.1:
            in_flight.append(record)  # duplicated
        if hasattr(record, "data"):
            ack, message = receiver.on_chunk(record)  # type: ignore[arg-type]
            if message is not None:
                released.append(message)
            if ack is not None:
                in_flight.append(ack)
        else:
            more, outcome = sender.on_ack(record)  # type: ignore[arg-type]
            in_flight.extend(more)
    assert outcome is True
    assert len(released) == 1 and released[0].snapshot == META


def test_a_repeated_last_chunk_after_completion_is_acknowledged_not_refused() -> None:
    """When the final acknowledgement is lost and the sender resends the last chunk, the
    receiver acknowledges it again instead of refusing the finished transfer."""
    sender = SnapshotSender(source_store(3), node_id=1)
    receiver = SnapshotReceiver(MemoryStore(), node_id=2)
    chunks = sender.start(snapshot_message())
    acks = [receiver.on_chunk(chunk)[0] for chunk in chunks]
    assert all(ack is not None and ack.accepted for ack in acks)
    again, message = receiver.on_chunk(chunks[-1])
    assert again is not None and again.accepted and message is None
