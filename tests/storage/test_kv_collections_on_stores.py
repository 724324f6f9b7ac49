"""Hashes and sets on every node store (memory, faulty disk, RocksDB), applied as the host
applies entries (ApplyView over a WriteBatch, several entries per batch): the same replies and
records as kv's own memory store, kept across a reopen, and carried whole by a snapshot
streamed to another store (what a lagging follower installs)."""

from __future__ import annotations

import random

from quorumkv.host.shard_view import ApplyView, ReadView
from quorumkv.kv import state_machine
from quorumkv.kv.command import Command
from quorumkv.kv.reply import Map, Reply, SetReply
from quorumkv.kv.store import MemoryKeyValueStore
from quorumkv.raft.types import SnapshotMeta
from quorumkv.storage.protocols import NodeStore

from .conftest import StoreFactory
from .test_conformance import VOTERS, before_and_after_reopen, bootstrap, transfer

SHARD = 5


def workload(seed: int) -> list[Command]:
    """Writes over a few hashes and sets: a big hash, deletions of big and small collections,
    overwrites, SPOP, set algebra, renames, expiry and sweeps."""
    chooser = random.Random(seed)
    commands = [Command(b"HSET", (b"{c}big",) + tuple(
        word for n in range(700) for word in (b"f%d" % n, b"v%d" % n)), 1_000)]
    for step in range(300):
        key = chooser.choice([b"{c}h1", b"{c}h2", b"{c}s1", b"{c}s2", b"{c}big", b"other"])
        member = b"m%d" % chooser.randrange(60)
        kind = chooser.random()
        if kind < 0.3:
            name, args = b"HSET", (key, member, b"%d" % step)
        elif kind < 0.55:
            name, args = b"SADD", (key, member, b"x%d" % step)
        elif kind < 0.62:
            name, args = b"SPOP", (key, b"2")
        elif kind < 0.69:
            name, args = b"HDEL", (key, member)
        elif kind < 0.74:
            name, args = b"DEL", (key,)
        elif kind < 0.79:
            name, args = b"SUNIONSTORE", (b"{c}s3", b"{c}s1", b"{c}s2")
        elif kind < 0.83:
            name, args = b"RENAME", (key, chooser.choice([b"{c}h1", b"{c}s2", b"moved"]))
        elif kind < 0.87:
            name, args = b"PEXPIRE", (key, b"%d" % chooser.randrange(1, 50))
        elif kind < 0.92:
            name, args = b"QKV.SWEEP", ()
        else:
            name, args = b"SET", (key, b"string")
        commands.append(Command(name, args, 1_001 + step))
    commands.append(Command(b"DEL", (b"{c}big",), 1_301))
    commands.append(Command(b"HSET", (b"{c}h9", b"a", b"1", b"b", b"2"), 1_301))
    commands.append(Command(b"SADD", (b"{c}s9", b"a", b"b"), 1_301))
    return commands


def apply_in_batches(store: NodeStore, commands: list[Command], seed: int) -> list[Reply]:
    chooser = random.Random(seed)
    replies: list[Reply] = []
    position, index = 0, 0
    while position < len(commands):
        batch = store.batch()
        view = ApplyView(SHARD, store.shard(SHARD), batch)
        for command in commands[position:position + chooser.randint(1, 20)]:
            replies.append(state_machine.apply(view, command))
            position += 1
            index += 1
        batch.set_applied(SHARD, SnapshotMeta(index, 1, VOTERS))
        store.write(batch, sync=True)
    return replies


def contents(store: NodeStore) -> dict[bytes, Reply]:
    view = ReadView(store.shard(SHARD))
    found: dict[bytes, Reply] = {}
    for key in (b"{c}h1", b"{c}h2", b"{c}s1", b"{c}s2", b"{c}s3", b"{c}big", b"other", b"moved", b"{c}h9", b"{c}s9"):
        kind = state_machine.read(view, b"TYPE", (key,), 1_301)
        if kind == b"none" or getattr(kind, "value", b"") == b"none":
            continue
        reply = state_machine.read(view, b"HGETALL" if getattr(kind, "value", b"") == b"hash"
                                   else b"SMEMBERS" if getattr(kind, "value", b"") == b"set"
                                   else b"GET", (key,), 1_301)
        if isinstance(reply, Map):
            reply = Map(sorted(reply.pairs))  # type: ignore[type-var]
        elif isinstance(reply, SetReply):
            reply = SetReply(sorted(reply.items))  # type: ignore[type-var]
        found[key] = reply
    return found


def test_collections_apply_identically_persist_and_travel_in_snapshots(
        stores: StoreFactory, other_stores: StoreFactory) -> None:
    """Replies and records equal kv's memory store; after reopen the hashes and sets read the
    same; a snapshot installed on another store carries every member (and the sweep state)."""
    commands = workload(11)
    reference = MemoryKeyValueStore()
    expected_replies = [state_machine.apply(reference, command) for command in commands]
    source = stores.make()
    bootstrap(source, SHARD)
    assert apply_in_batches(source, commands, 3) == expected_replies
    assert source.shard(SHARD).scan(b"", None, 100_000) == reference.items()
    expected = contents(source)
    assert any(isinstance(v, Map) for v in expected.values())
    assert any(isinstance(v, SetReply) for v in expected.values())
    for current in before_and_after_reopen(stores, source):
        assert contents(current) == expected
        source = current
    target = other_stores.make()
    bootstrap(target, SHARD)
    image = transfer(source, target, SHARD, chunk_bytes=4096)
    batch = target.batch()
    batch.install_snapshot(SHARD, image)
    target.write(batch, sync=True)
    assert contents(target) == expected
    assert target.shard(SHARD).scan(b"", None, 100_000) == reference.items()
    # The follower goes on applying where the image ends, sweeps included.
    tail = [Command(b"QKV.SWEEP", (), 4_000), Command(b"HSET", (b"{c}h1", b"new", b"1"), 4_001)]
    assert apply_in_batches(target, tail, 1) == [state_machine.apply(reference, c) for c in tail]
    assert target.shard(SHARD).scan(b"", None, 100_000) == reference.items()
