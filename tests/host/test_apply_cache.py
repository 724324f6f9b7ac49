"""The apply cache of slot key counts (host/shard_view.py) changes no result, only reads."""

from __future__ import annotations

import random

from quorumkv.host.shard_view import ApplyCache, ApplyView
from quorumkv.kv import state_machine
from quorumkv.kv.command import Command
from quorumkv.kv.layout import COUNT_PREFIX, VERSION_PREFIX
from quorumkv.storage.memory import MemoryStore
from quorumkv.storage.protocols import ShardState

SHARD = 1


class CountingState:
    """A ShardState that counts the point reads it answers."""

    def __init__(self, state: ShardState) -> None:
        self._state = state
        self.reads: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(key)
        return self._state.get(key)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        return self._state.scan(start, end, limit)


def random_commands(chooser: random.Random, count: int) -> list[Command]:
    commands = []
    for number in range(count):
        key = b"k%d" % chooser.randrange(40)
        kind = chooser.random()
        if kind < 0.5:
            args: tuple[bytes, ...] = (key, b"v%d" % number)
            name = b"SET"
        elif kind < 0.65:
            name, args = b"SET", (key, b"e", b"PX", b"%d" % chooser.randrange(1, 30))
        elif kind < 0.75:
            name, args = b"DEL", (key, b"k%d" % chooser.randrange(40))
        elif kind < 0.8:  # a new collection reads and bumps its slot's version counter
            name, args = b"HSET", (key, b"f%d" % chooser.randrange(3), b"v")
        elif kind < 0.85:
            name, args = b"SADD", (key, b"m%d" % chooser.randrange(3))
        else:
            name, args = b"INCR", (b"n%d" % chooser.randrange(5),)
        commands.append(Command(name, args, 1_000 + number))
    return commands


def apply_in_batches(commands: list[Command], cache: ApplyCache | None,
                     seed: int) -> tuple[MemoryStore, list[object]]:
    store = MemoryStore()
    replies: list[object] = []
    chooser = random.Random(seed)
    position = 0
    while position < len(commands):
        size = chooser.randint(1, 12)
        batch = store.batch()
        view = ApplyView(SHARD, store.shard(SHARD), batch, cache)
        for command in commands[position:position + size]:
            replies.append(state_machine.apply(view, command))
        store.write(batch, sync=False)
        position += size
    return store, replies


def test_cached_and_uncached_apply_give_identical_stores_and_replies() -> None:
    """Applying random writes with one cache kept across batches gives the same replies and
    the same stored records as applying them with no cache kept (each view starts empty)."""
    for seed in range(8):
        commands = random_commands(random.Random(seed), 300)
        cached, cached_replies = apply_in_batches(commands, ApplyCache(), seed)
        plain, plain_replies = apply_in_batches(commands, None, seed)
        assert cached_replies == plain_replies
        assert cached.shard(SHARD).scan(b"", None, 10_000) == \
            plain.shard(SHARD).scan(b"", None, 10_000)


def test_a_set_of_a_new_key_reads_the_store_once_when_its_slot_count_is_cached() -> None:
    """Once a slot's key count has been read, a SET of a new key in that slot reads only the
    key's own record from the store."""
    store = MemoryStore()
    cache = ApplyCache()
    for number, key in enumerate((b"{tag}a", b"{tag}b")):
        batch = store.batch()
        state = CountingState(store.shard(SHARD))
        view = ApplyView(SHARD, state, batch, cache)
        state_machine.apply(view, Command(b"SET", (key, b"v"), 1_000 + number))
        store.write(batch, sync=False)
        count_reads = [read for read in state.reads if read.startswith(COUNT_PREFIX)]
        assert len(count_reads) == (1 if number == 0 else 0)
        assert len(state.reads) == (2 if number == 0 else 1)


def test_a_new_hash_reads_its_slots_version_counter_once() -> None:
    """Once a slot's collection version counter is cached, creating another hash in that slot
    reads only the key's record and the new field from the store (no counter, no count)."""
    store = MemoryStore()
    cache = ApplyCache()
    for number, key in enumerate((b"{tag}a", b"{tag}b")):
        batch = store.batch()
        state = CountingState(store.shard(SHARD))
        view = ApplyView(SHARD, state, batch, cache)
        assert state_machine.apply(view, Command(b"HSET", (key, b"f", b"v"), 1_000 + number)) == 1
        store.write(batch, sync=False)
        counter_reads = [read for read in state.reads if read.startswith(VERSION_PREFIX)]
        assert len(counter_reads) == (1 if number == 0 else 0)
        assert len(state.reads) == (3 if number == 0 else 1)


def test_a_full_cache_starts_over_and_stays_exact() -> None:
    """A cache smaller than the number of slots touched forgets and rereads, never misleads."""
    commands = random_commands(random.Random(99), 400)
    small, small_replies = apply_in_batches(commands, ApplyCache(entries_max=3), 99)
    plain, plain_replies = apply_in_batches(commands, None, 99)
    assert small_replies == plain_replies
    assert small.shard(SHARD).scan(b"", None, 10_000) == plain.shard(SHARD).scan(b"", None, 10_000)
